// Command line of gfs-brickd: parsing and validation with one clear message per mistake.
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { isGfid } from '../common/gfid.js';

export const USAGE = `usage: gfs-brickd --brick-path DIR --listen HOST:PORT --volume NAME --volume-id UUID --auth-file FILE
                  [--log-level LEVEL] [--log-file FILE] [--pid-file FILE] [--help]

Serves one brick (a local directory) of a gfs volume over gRPC.
  --brick-path DIR     the brick directory (must exist)
  --listen HOST:PORT   address to listen on, e.g. 0.0.0.0:49152 or [::1]:49152
  --volume NAME        the volume's name
  --volume-id UUID     the volume's id; must match the brick's trusted.gfs.volume-id if set
  --auth-file FILE     file whose first line is the volume secret
  --log-level LEVEL    trace, debug, info, warn, error, fatal (default: GFS_LOG_LEVEL or info)
  --log-file FILE      log there instead of stderr
  --pid-file FILE      write the pid there once listening
exit codes: 0 ok, 1 cannot serve the brick, 2 bad arguments, 98 port already in use
`;

export class UsageError extends Error {}

export interface BrickdOptions {
  brickPath: string;
  host: string;
  port: number;
  listen: string;
  volume: string;
  volumeId: string;
  secret: string;
  logLevel?: string;
  logFile?: string;
  pidFile?: string;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--listen '${text}' is not HOST:PORT (e.g. 127.0.0.1:49152)`);
  }
  return { host: m[1] ?? m[2], port };
}

/** The parsed options, or null when --help was asked for. Throws UsageError. */
export async function parseCli(argv: string[]): Promise<BrickdOptions | null> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'brick-path': { type: 'string' }, listen: { type: 'string' }, volume: { type: 'string' },
        'volume-id': { type: 'string' }, 'auth-file': { type: 'string' }, 'log-level': { type: 'string' },
        'log-file': { type: 'string' }, 'pid-file': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  if (values.help) return null;
  for (const k of ['brick-path', 'listen', 'volume', 'volume-id', 'auth-file']) {
    if (typeof values[k] !== 'string' || values[k] === '') throw new UsageError(`missing --${k} (see --help)`);
  }
  const str = (k: string) => values[k] as string;
  const { host, port } = parseListen(str('listen'));
  const volumeId = str('volume-id').toLowerCase();
  if (!isGfid(volumeId)) throw new UsageError(`--volume-id '${str('volume-id')}' is not a UUID`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(str('volume'))) throw new UsageError(`--volume '${str('volume')}' is not a valid volume name`);
  const level = values['log-level'] as string | undefined;
  if (level !== undefined && !LEVELS.includes(level)) throw new UsageError(`--log-level '${level}' is not one of ${LEVELS.join(', ')}`);
  let secret: string;
  try {
    secret = (await readFile(str('auth-file'), 'utf8')).split(/\r?\n/)[0].trim();
  } catch (err) {
    throw new UsageError(`cannot read --auth-file '${str('auth-file')}': ${(err as Error).message}`);
  }
  if (!secret) throw new UsageError(`--auth-file '${str('auth-file')}' holds no secret on its first line`);
  return {
    brickPath: str('brick-path'), host, port, listen: str('listen'), volume: str('volume'), volumeId, secret,
    logLevel: level, logFile: values['log-file'] as string | undefined, pidFile: values['pid-file'] as string | undefined,
  };
}
