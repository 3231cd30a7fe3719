// deploy/kubernetes/ checked without a cluster: every manifest parses (PyYAML, as kubectl would
// read it) and has what its kind requires; the images are the repository's own (gfs:latest, the
// Dockerfile's) or the standard CSI sidecars; the programs' args are flags the programs have (from
// their --help); the CSIDriver and StorageClass name what gfs-csi's GetPluginInfo answers; the
// sidecars' sockets are the driver's --endpoint; the StorageClass parameters are ones the driver
// accepts and the provisioner's config is one the provisioner accepts.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseParams } from '../csi/capability.js';
import { csiService } from '../csi/server.js';
import { parseConfig } from '../provision/config.js';
import { REPO, run, waitFor } from './harness.js';

const DEPLOY = join(REPO, 'deploy/kubernetes');
const PROGRAMS: Record<string, string> = {
  gfsd: 'dist/mgmt/gfsd.js', 'gfs-provisioner': 'dist/provision/main.js', 'gfs-csi': 'dist/csi/main.js', 'gfs-mount': 'dist/client/main.js',
};
const SIDECAR_RE = /^registry\.k8s\.io\/sig-storage\/(csi-provisioner|csi-attacher|csi-resizer|csi-node-driver-registrar|livenessprobe):v\d+\.\d+\.\d+$/;
const WORKLOADS = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'Pod', 'Job']);

type Doc = Record<string, any> & { file: string };

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await yamlFiles(join(dir, e.name))));
    else if (/\.ya?ml$/.test(e.name)) out.push(join(dir, e.name));
  }
  return out.sort();
}

let loaded: Promise<Doc[]> | undefined;
/** Every document of every manifest, parsed once for all tests. */
function load(): Promise<Doc[]> {
  loaded ??= parseAll();
  return loaded;
}

async function parseAll(): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const file of await yamlFiles(DEPLOY)) {
    const r = await run('python3', ['-c', 'import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))', file]);
    if (r.code !== 0) throw new Error(`${file} does not parse: ${r.stderr}`);
    for (const d of JSON.parse(r.stdout)) docs.push({ ...d, file: file.slice(DEPLOY.length + 1) });
  }
  return docs;
}

const podSpec = (d: Doc) => (d.kind === 'Pod' ? d.spec : d.spec?.template?.spec);
const flagsOf = (args: string[]) => args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
const argValue = (args: string[], flag: string) => {
  const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].split(/=(.*)/s)[1] : args[i + 1];
};

const helpCache = new Map<string, string>();
async function helpOf(program: string): Promise<string> {
  if (!helpCache.has(program)) helpCache.set(program, (await run(process.execPath, [join(REPO, PROGRAMS[program]), '--help'])).stdout);
  return helpCache.get(program)!;
}

/** GetPluginInfo's name, asked of a real gfs-csi. */
async function pluginName(): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'gfs-k8s-'));
  const socket = join(dir, 'csi.sock');
  const proc = spawn(process.execPath, [join(REPO, PROGRAMS['gfs-csi']), '--mode', 'node', '--endpoint', `unix://${socket}`, '--node-id', 'n1'], { stdio: 'ignore' });
  try {
    await waitFor('gfs-csi', () => fs.stat(socket).then(() => true, () => false));
    const client = new (csiService('Identity'))(`unix://${socket}`, grpc.credentials.createInsecure());
    const info = await new Promise<any>((res, rej) => (client as any).GetPluginInfo({}, (e: Error | null, r: any) => (e ? rej(e) : res(r))));
    client.close();
    return info.name;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('every manifest parses and has apiVersion, kind, metadata.name', async (t) => {
  const docs = await load();
  t.true(docs.length >= 20, `${docs.length} documents`);
  for (const d of docs) {
    t.regex(String(d.apiVersion), /^([a-z0-9.]+\/)?v\d+((alpha|beta)\d+)?$/, `${d.file}: apiVersion`);
    t.regex(String(d.kind), /^[A-Z][A-Za-z]+$/, `${d.file}: kind`);
    t.regex(String(d.metadata?.name), /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${d.file}: ${d.kind} metadata.name`);
  }
  const kinds = new Set(docs.map((d) => d.kind));
  for (const k of ['Namespace', 'DaemonSet', 'Deployment', 'Service', 'PersistentVolumeClaim', 'Secret', 'CSIDriver', 'StorageClass', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Pod']) {
    t.true(kinds.has(k), `a ${k} is there`);
  }
});

test('workloads: containers have names, known images and args the programs accept; mounts name volumes', async (t) => {
  const docs = await load();
  const workloads = docs.filter((d) => WORKLOADS.has(d.kind));
  t.true(workloads.length >= 5);
  for (const d of workloads) {
    const where = `${d.file}: ${d.kind}/${d.metadata.name}`;
    const spec = podSpec(d);
    t.truthy(spec?.containers?.length, `${where}: containers`);
    if (d.kind !== 'Pod') {
      const want = d.spec.selector?.matchLabels ?? {};
      t.true(Object.keys(want).length > 0, `${where}: selector`);
      for (const [k, v] of Object.entries(want)) t.is(d.spec.template.metadata.labels?.[k], v, `${where}: the template carries selector label ${k}`);
    }
    const volumes = new Set((spec.volumes ?? []).map((v: any) => v.name));
    for (const c of spec.containers) {
      t.regex(String(c.name), /^[a-z0-9-]+$/, `${where}: container name`);
      t.true(c.image === 'gfs:latest' || SIDECAR_RE.test(c.image), `${where}: image ${c.image}`);
      t.true(Array.isArray(c.args) && c.args.length > 0, `${where}/${c.name}: args`);
      for (const m of c.volumeMounts ?? []) t.true(volumes.has(m.name), `${where}/${c.name}: volume ${m.name} is defined`);
      if (c.image !== 'gfs:latest') continue;
      const program = c.command?.[0];
      if (program === 'sh') continue; // the example pods
      t.truthy(PROGRAMS[program], `${where}/${c.name}: ${program} is a gfs program`);
      const help = await helpOf(program);
      for (const f of flagsOf(c.args)) t.true(help.includes(f), `${where}/${c.name}: ${program} has ${f}`);
      // $(VAR) in args must be an env var of the container.
      for (const a of c.args) {
        for (const m of String(a).matchAll(/\$\(([A-Z_]+)\)/g)) t.true((c.env ?? []).some((e: any) => e.name === m[1]), `${where}/${c.name}: $(${m[1]}) is set`);
      }
    }
    if (spec.serviceAccountName) {
      t.true(docs.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === spec.serviceAccountName), `${where}: service account ${spec.serviceAccountName}`);
    }
  }
});

test('the CSIDriver and StorageClass name the driver; the sidecars use its socket; the node plugin can mount', async (t) => {
  const docs = await load();
  const name = await pluginName();
  const drivers = docs.filter((d) => d.kind === 'CSIDriver');
  t.is(drivers.length, 1);
  t.is(drivers[0].metadata.name, name, 'CSIDriver name = GetPluginInfo name');
  t.false(drivers[0].spec.attachRequired, 'no attach step, so no external-attacher is needed');

  const csiSc = docs.filter((d) => d.kind === 'StorageClass' && d.provisioner !== 'kubernetes.io/glusterfs');
  t.is(csiSc.length, 1);
  const sc = csiSc[0];
  t.is(sc.provisioner, name, 'StorageClass provisioner = the driver');
  t.is(sc.parameters.volumetype, 'replicate:2');
  t.truthy(sc.parameters.clusterid);
  t.true(sc.allowVolumeExpansion);
  t.notThrows(() => parseParams(sc.parameters), 'the driver accepts the parameters');
  t.deepEqual(parseParams(sc.parameters).durability, { type: 'replicate', replicate: { replica: 2 } });

  for (const d of docs.filter((x) => x.metadata.name?.startsWith('gfs-csi') && WORKLOADS.has(x.kind))) {
    const spec = podSpec(d);
    const driver = spec.containers.find((c: any) => c.command?.[0] === 'gfs-csi');
    t.truthy(driver, `${d.metadata.name}: the gfs-csi container`);
    const endpoint = argValue(driver.args, '--endpoint')!;
    t.regex(endpoint, /^unix:\/\/\//);
    const socket = endpoint.replace(/^unix:\/\//, '');
    const mountOf = (c: any, path: string) => (c.volumeMounts ?? []).find((m: any) => m.mountPath === path)?.name;
    const socketVolume = mountOf(driver, dirname(socket));
    t.truthy(socketVolume, `${d.metadata.name}: the socket's directory is a volume`);
    const sidecars = spec.containers.filter((c: any) => SIDECAR_RE.test(c.image));
    t.true(sidecars.length >= 1);
    for (const s of sidecars) {
      t.is(argValue(s.args, '--csi-address'), socket, `${d.metadata.name}/${s.name}: --csi-address = the driver's --endpoint`);
      t.is(mountOf(s, dirname(socket)), socketVolume, `${d.metadata.name}/${s.name}: shares the socket's volume`);
    }
    const mode = argValue(driver.args, '--mode');
    if (d.kind === 'Deployment') {
      t.is(mode, 'controller');
      t.deepEqual(sidecars.map((s: any) => s.image.split('/').pop().split(':')[0]).sort(), ['csi-provisioner', 'csi-resizer']);
      t.truthy(argValue(driver.args, '--provisioner-url'));
      t.true(driver.env.some((e: any) => e.name === 'GFS_PROVISIONER_KEY' && e.valueFrom?.secretKeyRef), 'the JWT key comes from a Secret');
    } else {
      t.is(d.kind, 'DaemonSet');
      t.is(mode, 'node');
      const reg = sidecars.find((s: any) => s.image.includes('node-driver-registrar'));
      t.truthy(reg);
      const regPath = argValue(reg.args, '--kubelet-registration-path')!;
      const plugin = spec.volumes.find((v: any) => v.name === socketVolume);
      t.is(`${plugin.hostPath.path}/${socket.split('/').pop()}`, regPath, 'kubelet finds the socket where the registrar says');
      t.true(regPath.includes(name));
      t.true(driver.securityContext.privileged);
      const kubelet = driver.volumeMounts.find((m: any) => m.mountPath === '/var/lib/kubelet');
      t.is(kubelet?.mountPropagation, 'Bidirectional');
      t.truthy(driver.volumeMounts.find((m: any) => m.mountPath === '/dev/fuse'));
      t.is(spec.volumes.find((v: any) => v.hostPath?.path === '/dev/fuse')?.hostPath.type, 'CharDevice');
    }
  }
});

test('gfsd on storagenode=gfs nodes; the provisioner with a valid config and its db on a PVC; the seed\'s PVC and pods', async (t) => {
  const docs = await load();
  const gfsd = docs.find((d) => d.kind === 'DaemonSet' && d.metadata.name === 'gfsd')!;
  t.deepEqual(gfsd.spec.template.spec.nodeSelector, { storagenode: 'gfs' });
  t.true(gfsd.spec.template.spec.hostNetwork);
  const gc = gfsd.spec.template.spec.containers[0];
  t.regex(argValue(gc.args, '--listen')!, /:24007$/);
  const hostPaths = gfsd.spec.template.spec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path);
  t.true(hostPaths.includes('/var/lib/gfsd') && hostPaths.includes('/var/lib/gfs'), 'state and bricks on the host');

  const prov = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gfs-provisioner')!;
  const ps = prov.spec.template.spec;
  const cfgSecret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === ps.volumes.find((v: any) => v.secret)?.secret.secretName)!;
  const cfg = parseConfig(JSON.parse(cfgSecret.stringData['provisioner.json']));
  t.is(cfg.glusterfs.executor, 'gfsd');
  t.is(cfg.host, '0.0.0.0');
  const dbVolume = ps.volumes.find((v: any) => v.persistentVolumeClaim);
  t.truthy(docs.find((d) => d.kind === 'PersistentVolumeClaim' && d.metadata.name === dbVolume.persistentVolumeClaim.claimName));
  const dbMount = ps.containers[0].volumeMounts.find((m: any) => m.name === dbVolume.name);
  t.true(cfg.glusterfs.db.startsWith(`${dbMount.mountPath}/`), 'the db lives on the PVC');
  const keys = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'gfs-provisioner-keys')!;
  t.is(keys.stringData['admin-key'], cfg.jwt.admin.key, 'the controller signs with the key the provisioner checks');
  const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'gfs-provisioner')!;
  const ctl = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'gfs-csi-controller')!;
  const url = argValue(ctl.spec.template.spec.containers.find((c: any) => c.command?.[0] === 'gfs-csi').args, '--provisioner-url');
  t.is(url, `http://${svc.metadata.name}.${svc.metadata.namespace}.svc:${svc.spec.ports[0].port}`);

  const sc = docs.find((d) => d.kind === 'StorageClass' && d.provisioner !== 'kubernetes.io/glusterfs')!;
  const pvc = docs.find((d) => d.kind === 'PersistentVolumeClaim' && d.metadata.name === 'glusterfs-test-vol1')!;
  t.deepEqual(pvc.spec.accessModes, ['ReadWriteMany']);
  t.is(pvc.spec.resources.requests.storage, '1Gi');
  t.is(pvc.spec.storageClassName, sc.metadata.name);
  const pods = docs.filter((d) => d.kind === 'Pod');
  t.true(pods.length >= 1);
  for (const p of pods) t.true(p.spec.volumes.some((v: any) => v.persistentVolumeClaim?.claimName === pvc.metadata.name));

  const legacy = docs.find((d) => d.kind === 'StorageClass' && d.provisioner === 'kubernetes.io/glusterfs')!;
  t.truthy(legacy, "the seed's own StorageClass for Kubernetes <= 1.25");
  t.regex(legacy.parameters.resturl, /^http:\/\/.*:8080$/);
  t.is(legacy.parameters.volumetype, 'replicate:2');
  t.notThrows(() => parseParams(legacy.parameters), 'the same parameters work with the CSI driver too');
});
