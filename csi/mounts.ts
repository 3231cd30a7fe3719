// Mounting a gfs volume for the Node service: gfs-mount (the sibling program in this build) as a
// daemon per target path, found again through /proc/self/mountinfo, unmounted with fusermount and
// umount as a last resort. No state of our own: the kernel's mount table is the truth, so a
// restarted node plugin still knows what it mounted.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GFS_MOUNT = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

export interface MountEntry { target: string; source: string; fstype: string }

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function mountAt(target: string): Promise<MountEntry | undefined> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  let found: MountEntry | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 10) continue;
    const sep = f.indexOf('-');
    if (unescape(f[4]) === target) found = { target, fstype: f[sep + 1], source: unescape(f[sep + 2]) };
  }
  return found; // the last one wins: it is the one on top
}

export function runCmd(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, out: `${stderr}${stdout}`.trim() });
    });
  });
}

/** Starts a gfs-mount daemon for source at target; resolves when the mount is ready. */
export async function gfsMount(source: string, target: string, options: string[], logDir: string): Promise<void> {
  const logName = target.replace(/^\//, '').replace(/\//g, '-');
  const args = [GFS_MOUNT, source, target, '--log-file', join(logDir, `${logName}.log`)];
  if (options.length) args.push('-o', options.join(','));
  const r = await runCmd(process.execPath, args);
  if (r.code !== 0) throw new Error(r.out || `gfs-mount exited with ${r.code}`);
}

/** Unmounts target: fusermount -u, then umount, then a lazy umount for a dead FUSE daemon. */
export async function unmount(target: string): Promise<void> {
  const tries: [string, string[]][] = [['fusermount', ['-u', target]], ['umount', [target]], ['umount', ['-l', target]]];
  let last = '';
  for (const [cmd, args] of tries) {
    const r = await runCmd(cmd, args, 60_000);
    if (r.code === 0 || !(await mountAt(target))) return;
    last = r.out;
  }
  throw new Error(`cannot unmount ${target}: ${last}`);
}
