// `gfs volume heal VOL [full | info | split-brain ...]`: as gluster's CLI runs glfsheal, this runs
// the heal helper (gfs-shd --once) locally; it builds the volume's graph from gfsd's spec and talks
// to the bricks itself. Output laid out as gluster's.
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HEAL_USAGE = 'volume heal <VOLNAME> [full | info | split-brain {bigger-file <FILE> | latest-mtime <FILE> | source-brick <HOSTNAME:BRICKNAME> <FILE>}]';

interface InfoJson { bricks: { brick: string; connected: boolean; entries: { path: string; splitBrain: boolean }[] }[] }

function helper(remote: string, volume: string, args: string[]): Promise<{ code: number; json: any }> {
  const shd = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'client', 'shd.js');
  return new Promise((res) => {
    execFile(process.execPath, [shd, '--volfile-server', remote, '--volume', volume, '--once', ...args], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      let json: any;
      try { json = JSON.parse(String(stdout).trim().split('\n').pop() ?? ''); } catch { json = { error: String(stderr).trim() || String(err?.message ?? 'heal helper failed') }; }
      res({ code: err ? 1 : 0, json });
    });
  });
}

export function formatHealInfo(info: InfoJson): string {
  return info.bricks.map((b) => {
    const lines = [`Brick ${b.brick}`];
    if (!b.connected) return [...lines, 'Status: Transport endpoint is not connected', 'Number of entries: -', ''].join('\n');
    for (const e of b.entries) lines.push(e.splitBrain ? `${e.path} - Is in split-brain` : e.path);
    lines.push('Status: Connected', `Number of entries: ${b.entries.length}`, '');
    return lines.join('\n');
  }).join('\n');
}

/** Runs the command; returns [exit code, text for stdout or stderr]. */
export async function volumeHeal(remote: string, args: string[], json: boolean): Promise<{ ok: boolean; text: string }> {
  const [volume, sub, ...rest] = args;
  const what = sub === 'full' ? 'full' : 'index';
  if (sub === undefined || sub === 'full') {
    const r = await helper(remote, volume, [sub === 'full' ? 'full' : 'heal']);
    if (r.code !== 0) return { ok: false, text: `Launching heal operation to perform ${what} self heal on volume ${volume} has been unsuccessful:\n${r.json.error}` };
    return { ok: true, text: json ? JSON.stringify({ result: 'success', ...r.json }) : `Launching heal operation to perform ${what} self heal on volume ${volume} has been successful \nUse heal info commands to check status.` };
  }
  if (sub === 'info') {
    const r = await helper(remote, volume, ['info']);
    if (r.code !== 0) return { ok: false, text: `${r.json.error}\nVolume heal failed.` };
    return { ok: true, text: json ? JSON.stringify(r.json) : formatHealInfo(r.json as InfoJson) };
  }
  if (sub === 'split-brain') {
    const [how, a, b] = rest;
    const file = how === 'source-brick' ? b : a;
    const brick = how === 'source-brick' ? a : undefined;
    if (!['bigger-file', 'latest-mtime', 'source-brick'].includes(how ?? '') || !file) return { ok: false, text: `Usage: gfs ${HEAL_USAGE}` };
    const r = await helper(remote, volume, ['split-brain', how, file, ...(brick ? [brick] : [])]);
    if (r.code !== 0) return { ok: false, text: `Healing ${file} failed: ${r.json.error}.\nVolume heal failed.` };
    return { ok: true, text: json ? JSON.stringify({ result: 'success', ...r.json }) : `Healed ${file}.` };
  }
  return { ok: false, text: `Usage: gfs ${HEAL_USAGE}` };
}
