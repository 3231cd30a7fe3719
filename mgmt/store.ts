// The workdir: this node's identity, its peers and every volume definition, as JSON files written
// atomically (tmp file + fsync + rename) so a crash never leaves half a record.
//   WORKDIR/glusterd.info            UUID=...
//   WORKDIR/peers/<uuid>.json        a Member
//   WORKDIR/vols/<name>/info.json    a VolumeDef
//   WORKDIR/vols/<name>/auth         the volume secret, for the brick daemons (--auth-file)
//   WORKDIR/run/<name>/*.pid         brick daemon pid files;  WORKDIR/logs/  logs
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Member, VolumeDef } from './types.js';

export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class Store {
  readonly uuid: string;
  private readonly peers = new Map<string, Member>();
  private readonly volumes = new Map<string, VolumeDef>();

  constructor(readonly workdir: string) {
    for (const d of ['peers', 'vols', 'run', 'logs']) mkdirSync(join(workdir, d), { recursive: true });
    this.uuid = this.loadUuid();
    for (const f of readdirSync(join(workdir, 'peers'))) {
      if (!f.endsWith('.json')) continue;
      const m = JSON.parse(readFileSync(join(workdir, 'peers', f), 'utf8')) as Member;
      this.peers.set(m.uuid, m);
    }
    for (const name of readdirSync(join(workdir, 'vols'))) {
      const file = join(workdir, 'vols', name, 'info.json');
      if (existsSync(file)) this.volumes.set(name, JSON.parse(readFileSync(file, 'utf8')) as VolumeDef);
    }
  }

  private loadUuid(): string {
    const file = join(this.workdir, 'glusterd.info');
    if (existsSync(file)) {
      const m = /^UUID=(\S+)$/m.exec(readFileSync(file, 'utf8'));
      if (m) return m[1];
    }
    const uuid = randomUUID();
    writeFileAtomic(file, `UUID=${uuid}\n`);
    return uuid;
  }

  // --- peers ---
  listPeers(): Member[] {
    return [...this.peers.values()].sort((a, b) => a.hostname.localeCompare(b.hostname) || a.port - b.port);
  }
  getPeer(uuid: string): Member | undefined {
    return this.peers.get(uuid);
  }
  putPeer(m: Member): void {
    writeFileAtomic(join(this.workdir, 'peers', `${m.uuid}.json`), JSON.stringify(m, null, 2));
    this.peers.set(m.uuid, m);
  }
  removePeer(uuid: string): void {
    rmSync(join(this.workdir, 'peers', `${uuid}.json`), { force: true });
    this.peers.delete(uuid);
  }

  // --- volumes ---
  listVolumes(): VolumeDef[] {
    return [...this.volumes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  getVolume(name: string): VolumeDef | undefined {
    return this.volumes.get(name);
  }
  putVolume(v: VolumeDef): void {
    const dir = join(this.workdir, 'vols', v.name);
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'auth'), v.secret, 0o600);
    writeFileAtomic(join(dir, 'info.json'), JSON.stringify(v, null, 2));
    this.volumes.set(v.name, v);
  }
  removeVolume(name: string): void {
    rmSync(join(this.workdir, 'vols', name), { recursive: true, force: true });
    rmSync(join(this.workdir, 'run', name), { recursive: true, force: true });
    this.volumes.delete(name);
  }

  authFile(volume: string): string {
    return join(this.workdir, 'vols', volume, 'auth');
  }
  runDir(volume: string): string {
    return join(this.workdir, 'run', volume);
  }
  logDir(): string {
    return join(this.workdir, 'logs');
  }
}
