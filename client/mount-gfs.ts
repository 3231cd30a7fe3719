#!/usr/bin/env node
// mount.gfs: what mount(8) runs for `mount -t gfs HOST:/VOLUME DIR [-o OPTS]`. It hands over to
// gfs-mount, which returns once the mount is ready.
import { main } from './main.js';

const argv = process.argv.slice(2);
const positionals: string[] = [];
const opts: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '-o') opts.push(argv[++i] ?? '');
  else if (a.startsWith('-o')) opts.push(a.slice(2));
  else if (['-f', '-n', '-s', '-v'].includes(a)) continue; // fake, no-mtab, sloppy, verbose: nothing to do
  else if (a === '-t') i++;
  else positionals.push(a);
}
const cleaned = opts.flatMap((o) => o.split(',')).filter(Boolean);
main([...positionals, ...(cleaned.length ? ['-o', cleaned.join(',')] : [])]).then((code) => process.exit(code));
