// One pino logger per process; level from --log-level or GFS_LOG_LEVEL.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level?: string, destination?: string): Logger {
  const lvl = level ?? process.env.GFS_LOG_LEVEL ?? 'info';
  const dest = destination ? pino.destination({ dest: destination, mkdir: true, sync: true }) : pino.destination(2);
  return pino({ name, level: lvl, base: { pid: process.pid, name } }, dest);
}
