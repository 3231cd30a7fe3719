// docker-compose.yml and the Dockerfile, checked without a Docker engine: `docker-compose config`
// (Debian's docker-compose) must accept the file, and what it names must exist in this repository.
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, run } from './harness.js';

interface Service { image?: string; build?: unknown; command?: string[]; devices?: string[]; cap_add?: string[]; depends_on?: unknown; volumes?: string[] }

async function config(): Promise<{ services: Record<string, Service>; volumes: Record<string, unknown> }> {
  const r = await run('docker-compose', ['-f', join(REPO, 'docker-compose.yml'), 'config']);
  if (r.code !== 0) throw new Error(`docker-compose config failed: ${r.stderr}`);
  // docker-compose depends on PyYAML, so python3 can turn its output into JSON for us.
  const j = await run('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: r.stdout });
  if (j.code !== 0) throw new Error(j.stderr);
  return JSON.parse(j.stdout);
}

test('docker-compose config accepts the file: four gfsd nodes, a set-up job and a FUSE client', async (t) => {
  const c = await config();
  t.deepEqual(Object.keys(c.services).sort(), ['client', 'node1', 'node2', 'node3', 'node4', 'setup']);
  for (const n of ['node1', 'node2', 'node3', 'node4']) {
    const s = c.services[n];
    t.deepEqual(s.command, ['gfsd', '--listen', `${n}:24007`, '--workdir', '/var/lib/gfsd']);
    t.true(s.volumes!.some((v) => /^node\d-bricks:\/data(:rw)?$/.test(v)), `${n} keeps its bricks on a named volume`);
  }
  const client = c.services.client;
  t.true(client.devices!.some((d) => d.startsWith('/dev/fuse')));
  t.true(client.cap_add!.includes('SYS_ADMIN'));
  t.regex(client.command!.join(' '), /gfs-mount -N node1:gv0 \/mnt\/gv0/);
  t.deepEqual(client.depends_on, { setup: { condition: 'service_completed_successfully' } });
  t.deepEqual(c.services.setup.command, ['/opt/gfs/scripts/compose-setup.sh']);
});

test('the Dockerfile copies only what exists and links every program the compose file runs', async (t) => {
  const docker = await readFile(join(REPO, 'Dockerfile'), 'utf8');
  for (const m of docker.matchAll(/^COPY (?!--from)(\S+)/gm)) t.true(existsSync(join(REPO, m[1])), `COPY ${m[1]} exists`);
  const linked = [...docker.matchAll(/ln -s \/opt\/gfs\/(\S+) \/(?:usr\/local\/bin|sbin)\/(\S+)/g)].map((m) => ({ target: m[1], name: m[2] }));
  for (const l of linked) t.true(existsSync(join(REPO, l.target)), `${l.target} is built`);
  const names = linked.map((l) => l.name);
  for (const p of ['gfs', 'gfsd', 'gfs-brickd', 'gfs-mount', 'mount.gfs']) t.true(names.includes(p), `${p} on PATH in the image`);
  const c = await config();
  for (const [name, s] of Object.entries(c.services)) {
    const prog = s.command?.[0];
    if (prog && !prog.startsWith('/') && prog !== 'sh') t.true(names.includes(prog), `${name} runs ${prog}, which the image has`);
  }
  // The set-up script uses only CLI commands that exist and answers no questions.
  const setup = await readFile(join(REPO, 'scripts/compose-setup.sh'), 'utf8');
  t.regex(setup, /--mode=script/);
  t.regex(setup, /volume create "\$VOLUME" replica 2/);
});
