#!/usr/bin/env node
// gfs: the command line of the management plane (as the gluster CLI). Talks to gfsd at
// --remote-host (default 127.0.0.1:24007); prints what gluster prints; exits 1 on any failure.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, isUnreachable } from './errors.js';
import { callMgmt } from './peer-client.js';
import { HEAL_USAGE, volumeHeal } from './cli-heal.js';
import {
  formatPeerStatus, formatPoolList, formatVolumeInfo, formatVolumeStatus, peersJson,
  type WirePeer, type WireVolume, type WireVolumeStatus,
} from './cli-format.js';
import { DEFAULT_MGMT_PORT, parseHostPort } from './types.js';

const CALL_TIMEOUT_MS = 120_000;

interface Globals { remote: string; script: boolean; yes: boolean; json: boolean; help: boolean }

class Usage extends Error {}
class Failed extends Error {}

interface Command { usage: string; help: string; run: (g: Globals, args: string[]) => Promise<void> }

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

async function rpc<T = any>(g: Globals, method: string, req: object, prefix: string): Promise<T> {
  try {
    return await callMgmt<T>(g.remote, method, req, CALL_TIMEOUT_MS);
  } catch (err) {
    if (isUnreachable(err)) throw new Failed('Connection failed. Please check if gfsd is operational.');
    throw new Failed(`${prefix}: failed: ${fromServiceError(err).message}`);
  }
}

function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const done = () => {
      process.stdin.removeAllListeners();
      process.stdin.pause();
      process.stdin.destroy();
      resolve(buf.split('\n')[0] ?? '');
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => { buf += chunk; if (buf.includes('\n')) done(); });
    process.stdin.on('end', done);
    process.stdin.on('error', done);
  });
}

/** Asks on stdin unless --mode=script or --yes; anything but y aborts with exit 1. */
async function confirm(g: Globals, question: string, prefix: string): Promise<void> {
  if (g.script || g.yes) return;
  process.stdout.write(question);
  const answer = (await readLine()).trim().toLowerCase();
  if (answer !== 'y' && answer !== 'yes') {
    process.stdout.write('\n');
    throw new Failed(`${prefix}: aborted`);
  }
}

function success(g: Globals, text: string, extra: object = {}): void {
  out(g.json ? JSON.stringify({ result: 'success', message: text, ...extra }) : text);
}

function need(args: string[], min: number, max: number): void {
  if (args.length < min || args.length > max) throw new Usage();
}

const num = (s: string | undefined): number => {
  if (s === undefined || !/^\d+$/.test(s)) throw new Usage();
  return Number(s);
};

const COMMANDS: Record<string, Command> = {
  'peer probe': {
    usage: 'peer probe <HOSTNAME>[:PORT]', help: 'probe peer specified by <HOSTNAME>',
    async run(g, args) {
      need(args, 1, 1);
      const { host, port } = parseHostPort(args[0]);
      const res = await rpc<{ message: string }>(g, 'PeerProbe', { host, port }, 'peer probe');
      success(g, res.message ? `peer probe: success. ${res.message}` : 'peer probe: success');
    },
  },
  'peer detach': {
    usage: 'peer detach <HOSTNAME> [force]', help: 'detach peer specified by <HOSTNAME>',
    async run(g, args) {
      need(args, 1, 2);
      if (args[1] !== undefined && args[1] !== 'force') throw new Usage();
      await confirm(g, 'All clients mounted through the peer which is getting detached need to be remounted using one of the other active peers in the trusted storage pool to ensure client gets notification on any changes done on the gluster configuration and if the same has been done do you want to proceed? (y/n) ', 'peer detach');
      await rpc(g, 'PeerDetach', { host: parseHostPort(args[0]).host, force: args[1] === 'force' }, 'peer detach');
      success(g, 'peer detach: success');
    },
  },
  'peer status': {
    usage: 'peer status', help: 'list status of peers',
    async run(g, args) {
      need(args, 0, 0);
      const res = await rpc<{ peers: WirePeer[] }>(g, 'PeerStatus', {}, 'peer status');
      out(g.json ? JSON.stringify(peersJson(res.peers ?? [])) : formatPeerStatus(res.peers ?? []));
    },
  },
  'pool list': {
    usage: 'pool list', help: 'list all the nodes in the pool (including localhost)',
    async run(g, args) {
      need(args, 0, 0);
      const res = await rpc<{ peers: WirePeer[] }>(g, 'PoolList', {}, 'pool list');
      out(g.json ? JSON.stringify(peersJson(res.peers ?? [])) : formatPoolList(res.peers ?? []));
    },
  },
  'volume create': {
    usage: 'volume create <NEW-VOLNAME> [stripe <COUNT>] [replica <COUNT> [arbiter <COUNT>]] [transport <tcp>] <NEW-BRICK>... [force]',
    help: 'create a new volume of specified type with mentioned bricks',
    async run(g, args) {
      if (args.length < 2) throw new Usage();
      const name = args[0];
      const req = { name, stripe: 0, replica: 0, arbiter: 0, transport: 'tcp', bricks: [] as string[], force: false };
      let i = 1;
      for (; i < args.length; i++) {
        const a = args[i];
        if (a === 'stripe') req.stripe = num(args[++i]);
        else if (a === 'replica') req.replica = num(args[++i]);
        else if (a === 'arbiter') { if (!req.replica) throw new Failed(`volume create: ${name}: failed: arbiter must follow replica <COUNT>`); req.arbiter = num(args[++i]); }
        else if (a === 'transport') { req.transport = args[++i] ?? ''; if (!req.transport) throw new Usage(); }
        else break;
      }
      const rest = args.slice(i);
      if (rest[rest.length - 1] === 'force') { req.force = true; rest.pop(); }
      if (rest.length === 0) throw new Usage();
      req.bricks = rest;
      await rpc(g, 'VolumeCreate', req, `volume create: ${name}`);
      success(g, `volume create: ${name}: success: please start the volume to access data`, { volume: name });
    },
  },
  'volume start': {
    usage: 'volume start <VOLNAME> [force]', help: 'start volume specified by <VOLNAME>',
    async run(g, args) {
      need(args, 1, 2);
      if (args[1] !== undefined && args[1] !== 'force') throw new Usage();
      await rpc(g, 'VolumeStart', { name: args[0], force: args[1] === 'force' }, `volume start: ${args[0]}`);
      success(g, `volume start: ${args[0]}: success`, { volume: args[0] });
    },
  },
  'volume stop': {
    usage: 'volume stop <VOLNAME> [force]', help: 'stop volume specified by <VOLNAME>',
    async run(g, args) {
      need(args, 1, 2);
      if (args[1] !== undefined && args[1] !== 'force') throw new Usage();
      const prefix = `volume stop: ${args[0]}`;
      await confirm(g, 'Stopping volume will make its data inaccessible. Do you want to continue? (y/n) ', prefix);
      await rpc(g, 'VolumeStop', { name: args[0], force: args[1] === 'force' }, prefix);
      success(g, `${prefix}: success`, { volume: args[0] });
    },
  },
  'volume delete': {
    usage: 'volume delete <VOLNAME>', help: 'delete volume specified by <VOLNAME>',
    async run(g, args) {
      need(args, 1, 1);
      const prefix = `volume delete: ${args[0]}`;
      await confirm(g, 'Deleting volume will erase all information about the volume. Do you want to continue? (y/n) ', prefix);
      await rpc(g, 'VolumeDelete', { name: args[0] }, prefix);
      success(g, `${prefix}: success`, { volume: args[0] });
    },
  },
  'volume set': {
    usage: 'volume set <VOLNAME> <KEY> <VALUE>', help: 'set options for volume <VOLNAME>',
    async run(g, args) {
      need(args, 3, 3);
      await rpc(g, 'VolumeSet', { name: args[0], key: args[1], value: args[2] }, `volume set: ${args[0]}`);
      success(g, 'volume set: success', { volume: args[0] });
    },
  },
  'volume reset-brick': {
    usage: 'volume reset-brick <VOLNAME> <SOURCE-BRICK> {{start} | {<NEW-BRICK> commit}} [force]',
    help: 'reset-brick operations: take a brick offline (start), then bring its (new, maybe empty) directory back (commit force)',
    async run(g, args) {
      need(args, 3, 5);
      const [name, source, third, action, force] = args;
      const req = third === 'start'
        ? (need(args, 3, 3), { name, source, target: source, action: 'start', force: false })
        : { name, source, target: third, action: action ?? '', force: force === 'force' };
      if (req.action !== 'start' && (req.action !== 'commit' || (force !== undefined && force !== 'force'))) throw new Usage();
      await rpc(g, 'VolumeResetBrick', req, 'volume reset-brick');
      success(g, `volume reset-brick: success${req.action === 'start' ? ': reset-brick start operation successful' : ': reset-brick commit force operation successful'}`, { volume: name });
    },
  },
  'volume replace-brick': {
    usage: 'volume replace-brick <VOLNAME> <SOURCE-BRICK> <NEW-BRICK> {commit force}',
    help: 'replace-brick operations: move a brick to a new directory or node; heal fills it',
    async run(g, args) {
      need(args, 5, 5);
      const [name, source, target, commit, force] = args;
      if (commit !== 'commit' || force !== 'force') throw new Usage();
      await rpc(g, 'VolumeReplaceBrick', { name, source, target, action: 'commit', force: true }, 'volume replace-brick');
      success(g, 'volume replace-brick: success: replace-brick commit force operation successful', { volume: name });
    },
  },
  'volume heal': {
    usage: HEAL_USAGE, help: 'self-heal commands on volume specified by <VOLNAME>',
    async run(g, args) {
      if (args.length < 1) throw new Usage();
      const r = await volumeHeal(g.remote, args, g.json);
      if (!r.ok) throw new Failed(r.text);
      out(r.text);
    },
  },
  'volume info': {
    usage: 'volume info [all|<VOLNAME>]', help: 'list information of all volumes',
    async run(g, args) {
      need(args, 0, 1);
      const name = args[0] ?? 'all';
      const res = await rpc<{ volumes: WireVolume[] }>(g, 'VolumeInfo', { name }, `volume info: ${name}`);
      out(g.json ? JSON.stringify({ volumes: res.volumes ?? [] }) : formatVolumeInfo(res.volumes ?? []));
    },
  },
  'volume status': {
    usage: 'volume status [all|<VOLNAME>]', help: 'display status of all or specified volume(s)',
    async run(g, args) {
      need(args, 0, 1);
      const name = args[0] ?? 'all';
      const res = await rpc<{ volumes: WireVolumeStatus[] }>(g, 'VolumeStatus', { name }, `volume status: ${name}`);
      out(g.json ? JSON.stringify({ volumes: res.volumes ?? [] }) : formatVolumeStatus(res.volumes ?? []));
    },
  },
  'volume list': {
    usage: 'volume list', help: 'list all volumes in cluster',
    async run(g, args) {
      need(args, 0, 0);
      const res = await rpc<{ names: string[] }>(g, 'VolumeList', {}, 'volume list');
      const names = res.names ?? [];
      out(g.json ? JSON.stringify({ volumes: names }) : names.length ? names.join('\n') : 'No volumes present in cluster');
    },
  },
};

const GLOBAL_USAGE = `Usage: gfs [--remote-host HOST[:PORT]] [--mode=script] [--yes] [--json] COMMAND [ARGS...]

Options:
  --remote-host HOST[:PORT]  gfsd to talk to (default 127.0.0.1:${DEFAULT_MGMT_PORT})
  --mode=script              never ask for confirmation
  --yes                      answer yes to every question
  --json                     machine-readable output
  --help                     this help; 'gfs volume --help', 'gfs peer --help' for a group`;

function groupHelp(group?: string): string {
  const rows = Object.entries(COMMANDS).filter(([k]) => !group || k.startsWith(`${group} `));
  return rows.map(([, c]) => `${c.usage}\n\t- ${c.help}`).join('\n');
}

function parseGlobals(argv: string[]): { g: Globals; rest: string[] } {
  const g: Globals = { remote: `127.0.0.1:${DEFAULT_MGMT_PORT}`, script: false, yes: false, json: false, help: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--remote-host' || a.startsWith('--remote-host=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Usage();
      const { host, port } = parseHostPort(v);
      g.remote = `${host}:${port}`;
    } else if (a === '--mode=script' || (a === '--mode' && argv[i + 1] === 'script' && ++i)) g.script = true;
    else if (a === '--yes' || a === '-y') g.yes = true;
    else if (a === '--json') g.json = true;
    else if (a === '--help' || a === '-h' || a === 'help') g.help = true;
    else rest.push(a);
  }
  return { g, rest };
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseGlobals(argv);
  } catch {
    process.stderr.write(`${GLOBAL_USAGE}\n`);
    return 1;
  }
  const { g, rest } = parsed;
  const group = rest[0];
  const key = rest.slice(0, 2).join(' ');
  const cmd = COMMANDS[key];
  if (g.help || !cmd) {
    if (g.help && cmd) { out(`Usage: gfs ${cmd.usage}\n\t- ${cmd.help}`); return 0; }
    if (group && Object.keys(COMMANDS).some((k) => k.startsWith(`${group} `))) {
      out(groupHelp(group));
      return g.help ? 0 : 1;
    }
    if (g.help || !group) { out(`${GLOBAL_USAGE}\n\nCommands:\n${groupHelp()}`); return g.help ? 0 : 1; }
    process.stderr.write(`unrecognized command: ${rest.join(' ')}\n${GLOBAL_USAGE}\n`);
    return 1;
  }
  try {
    await cmd.run(g, rest.slice(2));
    return 0;
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`Usage: gfs ${cmd.usage}\n`);
      return 1;
    }
    if (e instanceof Failed) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    const code = (e as { code?: unknown }).code;
    process.stderr.write(`${key}: failed: ${(e as Error).message ?? e}${code === grpc.status.INTERNAL ? ' (internal error)' : ''}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
