// gfs-csi conformance, in the spirit of kubernetes-csi's csi-sanity: CSI gRPC on a unix socket to
// real gfs-csi processes, over a real gfs-provisioner (gfsd executor, JWT on) and real gfsd nodes
// on loopback whose devices are directories made here. Then the seed's PVC flow as Kubernetes
// would drive it: external-provisioner's calls for a 1Gi ReadWriteMany claim with the seed's
// StorageClass parameters, and kubelet's NodePublishVolume for two pods on two "nodes".
// Teardown unmounts every FUSE and loop mount the test made and kills what it started.
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { ProvisionerClient } from '../provision/client.js';
import { csiService } from '../csi/server.js';
import { Cluster, freePort, pidsUnder, REPO, run, waitFor } from './harness.js';

const SUBNET = 100;
const PROV = join(REPO, 'dist/provision/main.js');
const CSI = join(REPO, 'dist/csi/main.js');
const KEYS = { admin: 'csi-admin-secret', user: 'csi-user-secret' };
const GiB = 1024 ** 3;
const { status } = grpc;

const RWX = { mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
const RWO = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const ROX = { mount: {}, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } };

interface Env { c: Cluster; procs: ChildProcess[]; url: string; admin: ProvisionerClient; clusterId: string }

async function fuseMountsUnder(dir: string): Promise<string[]> {
  return (await fs.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' '))
    .filter((f) => f[1]?.startsWith(dir) && f[2]?.startsWith('fuse')).map((f) => f[1]);
}

async function allMountsUnder(dirs: string[]): Promise<string[]> {
  return (await fs.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1]).filter((m) => m && dirs.some((d) => m.startsWith(d)));
}

/** Two gfsd nodes, a provisioner over them with one directory device each, topology loaded. */
async function setup(t: ExecutionContext): Promise<Env> {
  const mountRoot = await fs.mkdtemp('/tmp/gfs-csi-mounts-');
  process.env.GFS_BRICK_MOUNT_ROOT = mountRoot;
  const c = await Cluster.start(t, { nodes: 2, subnet: SUBNET });
  const procs: ChildProcess[] = [];
  // Registered after the cluster's: ava runs teardowns last-in first-out, so this runs first.
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const mp of (await fuseMountsUnder(c.root)).reverse()) {
      if ((await run('fusermount', ['-uz', mp])).code !== 0) await run('umount', ['-l', mp]);
    }
    for (const pid of [...(await pidsUnder(mountRoot)), ...(await pidsUnder(c.root))]) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await waitFor('brick daemons to exit', async () => (await pidsUnder(mountRoot)).length === 0, 10_000).catch(() => {});
    for (const m of (await allMountsUnder([mountRoot, c.root])).sort((a, b) => b.length - a.length)) {
      if ((await run('umount', [m])).code !== 0) await run('umount', ['-l', m]);
    }
    const loops = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes(`(${mountRoot}`) || l.includes(`(${c.root}`));
    for (const l of loops) await run('losetup', ['-d', l.split(':')[0]]);
    if ((await allMountsUnder([mountRoot])).length === 0) await fs.rm(mountRoot, { recursive: true, force: true });
  });

  const port = await freePort('127.0.0.1');
  const config = join(c.root, 'provisioner.json');
  await fs.writeFile(config, JSON.stringify({
    host: '127.0.0.1', port, use_auth: true, jwt: { admin: { key: KEYS.admin }, user: { key: KEYS.user } },
    glusterfs: { executor: 'gfsd', db: join(c.root, 'provisioner.db'), gfsd_port: c.port, loglevel: 'debug' },
  }));
  procs.push(spawn(process.execPath, [PROV, '--config', config, '--log-file', join(c.root, 'provisioner.log')], { stdio: 'ignore' }));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('gfs-provisioner', async () => (await fetch(`${url}/hello`).catch(() => undefined))?.ok);
  const admin = new ProvisionerClient(url, 'admin', KEYS.admin, 100);
  const cl = await admin.json('POST', '/clusters', {});
  for (const [i, n] of c.nodes.entries()) {
    const node = await admin.async('POST', '/nodes', { zone: i + 1, hostnames: { manage: [n.host], storage: [n.host] }, cluster: cl.id });
    const dev = join(c.root, `dev${i + 1}`);
    await fs.mkdir(dev, { recursive: true });
    await admin.async('POST', '/devices', { name: dev, node: node.id });
  }
  return { c, procs, url, admin, clusterId: cl.id };
}

interface Csi { socket: string; identity: grpc.Client; controller: grpc.Client; node: grpc.Client; log: string }

/** A gfs-csi process on a socket in the test's directory. */
async function startCsi(env: Env, mode: 'controller' | 'node' | 'all', nodeId: string, withProvisioner = true): Promise<Csi> {
  const socket = join(env.c.root, `csi-${nodeId}.sock`);
  const log = join(env.c.root, `csi-${nodeId}.log`);
  const args = [CSI, '--endpoint', `unix://${socket}`, '--mode', mode, '--node-id', nodeId, '--mount-log-dir', join(env.c.root, 'mount-logs'), '--log-level', 'debug', '--log-file', log];
  if (withProvisioner) args.push('--provisioner-url', env.url, '--provisioner-user', 'admin', '--provisioner-key', KEYS.admin);
  env.procs.push(spawn(process.execPath, args, { stdio: 'ignore' }));
  await waitFor(`gfs-csi ${nodeId}`, () => fs.stat(socket).then(() => true, () => false));
  const make = (name: 'Identity' | 'Controller' | 'Node') => new (csiService(name))(`unix://${socket}`, grpc.credentials.createInsecure());
  return { socket, identity: make('Identity'), controller: make('Controller'), node: make('Node'), log };
}

function call<T = any>(client: grpc.Client, method: string, req: object): Promise<T> {
  return new Promise((res, rej) => {
    (client as any)[method](req, { deadline: Date.now() + 300_000 }, (e: grpc.ServiceError | null, r: T) => (e ? rej(e) : res(r)));
  });
}

/** The status code a call ends with (OK = 0). */
async function codeOf(client: grpc.Client, method: string, req: object): Promise<number> {
  try {
    await call(client, method, req);
    return status.OK;
  } catch (e) {
    return (e as grpc.ServiceError).code;
  }
}

const gfsVolumes = async (c: Cluster) => (await c.mustGfs(['volume', 'list'])).split('\n').map((s) => s.trim()).filter(Boolean);

test.serial('conformance: identity, argument checks, idempotent create/delete, validate, list, capacity, publish, expand', async (t) => {
  const env = await setup(t);
  const csi = await startCsi(env, 'all', 'node-1');
  const { controller: ctl, node, identity } = csi;

  // Identity.
  const info = await call(identity, 'GetPluginInfo', {});
  t.is(info.name, 'gfs.csi.gfs.io');
  t.truthy(info.vendor_version);
  const pcaps = (await call(identity, 'GetPluginCapabilities', {})).capabilities;
  t.true(pcaps.some((c: any) => c.service?.type === 'CONTROLLER_SERVICE'));
  t.deepEqual((await call(identity, 'Probe', {})).ready, { value: true });
  const ccaps = (await call(ctl, 'ControllerGetCapabilities', {})).capabilities.map((c: any) => c.rpc.type).sort();
  t.deepEqual(ccaps, ['CREATE_DELETE_VOLUME', 'EXPAND_VOLUME', 'GET_CAPACITY', 'LIST_VOLUMES']);
  t.deepEqual((await call(node, 'NodeGetCapabilities', {})).capabilities.map((c: any) => c.rpc.type), ['GET_VOLUME_STATS']);
  t.is((await call(node, 'NodeGetInfo', {})).node_id, 'node-1');

  // Argument checks: nothing reaches the provisioner.
  const params = { volumetype: 'replicate:2', clusterid: env.clusterId };
  const create = (over: object) => ({ name: 'csi-conf-1', capacity_range: { required_bytes: GiB }, volume_capabilities: [RWO], parameters: params, ...over });
  t.is(await codeOf(ctl, 'CreateVolume', create({ name: '' })), status.INVALID_ARGUMENT, 'missing name');
  t.is(await codeOf(ctl, 'CreateVolume', create({ volume_capabilities: [] })), status.INVALID_ARGUMENT, 'missing capabilities');
  t.is(await codeOf(ctl, 'CreateVolume', create({ volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] })), status.INVALID_ARGUMENT, 'block');
  t.is(await codeOf(ctl, 'CreateVolume', create({ volume_capabilities: [{ mount: {}, access_mode: { mode: 'UNKNOWN' } }] })), status.INVALID_ARGUMENT, 'UNKNOWN mode');
  t.is(await codeOf(ctl, 'CreateVolume', create({ volume_capabilities: [{ mount: {}, access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' } }] })), status.INVALID_ARGUMENT, 'alpha mode');
  t.is(await codeOf(ctl, 'CreateVolume', create({ volume_capabilities: [{ mount: {} }] })), status.INVALID_ARGUMENT, 'no access mode');
  t.is(await codeOf(ctl, 'CreateVolume', create({ parameters: { volumetype: 'disperse:4:2' } })), status.INVALID_ARGUMENT, 'disperse');
  t.is(await codeOf(ctl, 'CreateVolume', create({ parameters: { volumetype: 'mirror' } })), status.INVALID_ARGUMENT, 'bad volumetype');
  t.is(await codeOf(ctl, 'CreateVolume', create({ parameters: { colour: 'blue' } })), status.INVALID_ARGUMENT, 'unknown parameter');
  t.is(await codeOf(ctl, 'CreateVolume', create({ capacity_range: { required_bytes: GiB + 1, limit_bytes: GiB + 2 } })), status.OUT_OF_RANGE, 'whole GiB only');
  t.deepEqual((await env.admin.json('GET', '/volumes')).volumes, [], 'no volume was made by a refused call');

  // GetCapacity, before.
  const capBefore = (await call(ctl, 'GetCapacity', { volume_capabilities: [RWX], parameters: params })).available_capacity;
  t.true(capBefore > 2 * GiB, `capacity ${capBefore}`);

  // Create twice: one volume.
  const first = (await call(ctl, 'CreateVolume', create({}))).volume;
  t.regex(first.volume_id, /^[0-9a-f]{32}$/);
  t.is(first.capacity_bytes, GiB);
  t.is(first.volume_context.volume, 'csi-conf-1');
  t.regex(first.volume_context.device, new RegExp(`^127\\.${SUBNET}\\.\\d+\\.[12]:${env.c.port}:csi-conf-1$`));
  t.regex(first.volume_context['backup-volfile-servers'], /^127\.100\./);
  const again = (await call(ctl, 'CreateVolume', create({}))).volume;
  t.deepEqual(again, first, 'the same name twice is the same volume');
  t.is((await env.admin.json('GET', '/volumes')).volumes.length, 1);
  t.regex((await env.c.mustGfs(['volume', 'info', 'csi-conf-1'])), /Type: Replicate\n[\s\S]*Status: Started/);
  t.is(await codeOf(ctl, 'CreateVolume', create({ capacity_range: { required_bytes: 2 * GiB, limit_bytes: 2 * GiB } })), status.ALREADY_EXISTS, 'other capacity');
  t.is(await codeOf(ctl, 'CreateVolume', create({ parameters: { volumetype: 'none' } })), status.ALREADY_EXISTS, 'other volumetype');
  const capAfter = (await call(ctl, 'GetCapacity', { volume_capabilities: [RWX], parameters: params })).available_capacity;
  t.is(capBefore - capAfter, GiB, 'a 1 GiB replica-2 volume takes 1 GiB of replica-2 capacity');
  const capNone = (await call(ctl, 'GetCapacity', { parameters: { volumetype: 'none' } })).available_capacity;
  t.true(Math.abs(capNone - 2 * capAfter) <= 1024, 'a volumetype none has twice the room');

  // Validate.
  const conf = await call(ctl, 'ValidateVolumeCapabilities', { volume_id: first.volume_id, volume_capabilities: [RWX, RWO, ROX] });
  t.is(conf.confirmed.volume_capabilities.length, 3);
  const refused = await call(ctl, 'ValidateVolumeCapabilities', { volume_id: first.volume_id, volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] });
  t.falsy(refused.confirmed);
  t.regex(refused.message, /block/);
  t.is(await codeOf(ctl, 'ValidateVolumeCapabilities', { volume_id: '0'.repeat(32), volume_capabilities: [RWX] }), status.NOT_FOUND);
  t.is(await codeOf(ctl, 'ValidateVolumeCapabilities', { volume_id: first.volume_id, volume_capabilities: [] }), status.INVALID_ARGUMENT);

  // A second volume (volumetype none), then ListVolumes with paging.
  const second = (await call(ctl, 'CreateVolume', { name: 'csi-conf-2', volume_capabilities: [RWX], parameters: { volumetype: 'none' } })).volume;
  t.is(second.capacity_bytes, GiB, 'no capacity_range: the smallest volume');
  const all = await call(ctl, 'ListVolumes', {});
  t.deepEqual(all.entries.map((e: any) => e.volume.volume_id).sort(), [first.volume_id, second.volume_id].sort());
  const p1 = await call(ctl, 'ListVolumes', { max_entries: 1 });
  t.is(p1.entries.length, 1);
  t.truthy(p1.next_token);
  const p2 = await call(ctl, 'ListVolumes', { max_entries: 1, starting_token: p1.next_token });
  t.is(p2.entries.length, 1);
  t.is(p2.next_token, '');
  t.not(p2.entries[0].volume.volume_id, p1.entries[0].volume.volume_id);
  t.is(await codeOf(ctl, 'ListVolumes', { starting_token: 'garbage' }), status.ABORTED);

  // Publish: a real mount at the target; write and read; stats; readonly; idempotent; unpublish.
  const target = join(env.c.root, 'kubelet', 'pods', 'pod-1', 'volumes', 'kubernetes.io~csi', 'csi-conf-1', 'mount');
  const publish = { volume_id: first.volume_id, target_path: target, volume_capability: RWO, volume_context: first.volume_context };
  t.is(await codeOf(node, 'NodePublishVolume', { ...publish, target_path: '' }), status.INVALID_ARGUMENT, 'missing target');
  t.is(await codeOf(node, 'NodePublishVolume', { ...publish, volume_capability: null }), status.INVALID_ARGUMENT, 'missing capability');
  t.is(await codeOf(node, 'NodePublishVolume', { ...publish, volume_id: '' }), status.INVALID_ARGUMENT, 'missing volume id');
  await call(node, 'NodePublishVolume', publish);
  t.deepEqual(await fuseMountsUnder(target), [target], 'the target is a FUSE mount');
  await call(node, 'NodePublishVolume', publish);
  t.deepEqual(await fuseMountsUnder(target), [target], 'publishing twice mounts once');
  await fs.writeFile(join(target, 'hello.txt'), 'hello from a pod');
  t.is(await fs.readFile(join(target, 'hello.txt'), 'utf8'), 'hello from a pod');
  const vol = await env.admin.json('GET', `/volumes/${first.volume_id}`);
  for (const b of vol.bricks) t.is(await fs.readFile(join(b.path, 'hello.txt'), 'utf8'), 'hello from a pod', `on brick ${b.id}`);
  const stats = (await call(node, 'NodeGetVolumeStats', { volume_id: first.volume_id, volume_path: target })).usage;
  const bytes = stats.find((u: any) => u.unit === 'BYTES');
  t.true(bytes.total > 0.9 * GiB && bytes.total <= GiB, `total ${bytes.total}`);
  t.true(bytes.used > 0 && bytes.available > 0 && bytes.available <= bytes.total);
  t.truthy(stats.find((u: any) => u.unit === 'INODES'));
  t.is(await codeOf(node, 'NodeGetVolumeStats', { volume_id: first.volume_id, volume_path: join(env.c.root, 'nowhere') }), status.NOT_FOUND);
  t.is(await codeOf(node, 'NodeGetVolumeStats', { volume_id: first.volume_id, volume_path: '' }), status.INVALID_ARGUMENT);

  const roTarget = join(env.c.root, 'kubelet', 'pods', 'pod-2', 'mount');
  await call(node, 'NodePublishVolume', { ...publish, target_path: roTarget, volume_capability: ROX, readonly: true });
  t.is(await fs.readFile(join(roTarget, 'hello.txt'), 'utf8'), 'hello from a pod');
  const roErr = await fs.writeFile(join(roTarget, 'nope'), 'x').then(() => undefined, (e) => (e as NodeJS.ErrnoException).code);
  t.is(roErr, 'EROFS', 'a readonly publish is mounted ro');
  await call(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: roTarget });

  // Unpublish: twice, and a path never published, are all fine.
  await call(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: target });
  t.deepEqual(await fuseMountsUnder(target), []);
  await t.throwsAsync(fs.stat(target), { code: 'ENOENT' }, 'the target directory is removed');
  await call(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: target });
  await call(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: join(env.c.root, 'never') });
  t.is(await codeOf(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: '' }), status.INVALID_ARGUMENT);

  // Expand (offline, as advertised): the next publish mounts the grown volume, data kept.
  t.true(pcaps.some((c: any) => c.volume_expansion?.type === 'OFFLINE'));
  const expanded = await call(ctl, 'ControllerExpandVolume', { volume_id: first.volume_id, capacity_range: { required_bytes: 2 * GiB } });
  t.is(expanded.capacity_bytes, 2 * GiB);
  t.false(expanded.node_expansion_required);
  const same = await call(ctl, 'ControllerExpandVolume', { volume_id: first.volume_id, capacity_range: { required_bytes: GiB } });
  t.is(same.capacity_bytes, 2 * GiB, 'a smaller size is already satisfied');
  t.is(await codeOf(ctl, 'ControllerExpandVolume', { volume_id: '0'.repeat(32), capacity_range: { required_bytes: GiB } }), status.NOT_FOUND);
  t.is(await codeOf(ctl, 'ControllerExpandVolume', { volume_id: first.volume_id }), status.INVALID_ARGUMENT);
  t.regex(await env.c.mustGfs(['volume', 'info', 'csi-conf-1']), /Number of Bricks: 2 x 2 = 4/);
  const target2 = join(env.c.root, 'kubelet', 'pods', 'pod-3', 'mount');
  await call(node, 'NodePublishVolume', { ...publish, target_path: target2 });
  const grown = (await call(node, 'NodeGetVolumeStats', { volume_id: first.volume_id, volume_path: target2 })).usage.find((x: any) => x.unit === 'BYTES').total;
  t.true(grown > 1.8 * GiB && grown <= 2 * GiB, `the grown volume has ${grown} bytes`);
  // The data stays on the old bricks and is read through the grown volume: the root's new layout
  // is not committed (it had entries), so a miss on the hashed set searches every set.
  for (const b of vol.bricks) t.is(await fs.readFile(join(b.path, 'hello.txt'), 'utf8'), 'hello from a pod', `still on brick ${b.id}`);
  t.is(await fs.readFile(join(target2, 'hello.txt'), 'utf8'), 'hello from a pod', 'old data readable after expand');
  await fs.writeFile(join(target2, 'after-expand.txt'), 'grown');
  t.is(await fs.readFile(join(target2, 'after-expand.txt'), 'utf8'), 'grown');
  await call(node, 'NodeUnpublishVolume', { volume_id: first.volume_id, target_path: target2 });
  t.is((await call(ctl, 'CreateVolume', create({ capacity_range: { required_bytes: 2 * GiB } }))).volume.capacity_bytes, 2 * GiB);

  // Delete: twice, and an unknown id, succeed; the volume and its bricks are gone.
  t.is(await codeOf(ctl, 'DeleteVolume', { volume_id: '' }), status.INVALID_ARGUMENT);
  await call(ctl, 'DeleteVolume', { volume_id: first.volume_id });
  await call(ctl, 'DeleteVolume', { volume_id: first.volume_id });
  await call(ctl, 'DeleteVolume', { volume_id: '0'.repeat(32) });
  await call(ctl, 'DeleteVolume', { volume_id: 'not-a-gfs-id' });
  await call(ctl, 'DeleteVolume', { volume_id: second.volume_id });
  t.deepEqual((await env.admin.json('GET', '/volumes')).volumes, []);
  t.false((await gfsVolumes(env.c)).some((v) => v.startsWith('csi-conf')));
  t.is((await call(ctl, 'GetCapacity', { volume_capabilities: [RWX], parameters: params })).available_capacity, capBefore, 'the space is back');
  const check = await env.admin.json('GET', '/db/check');
  t.true(check.ok, JSON.stringify(check.problems));
  for (const cl of [csi.identity, csi.controller, csi.node]) cl.close();
});

test.serial("the seed's PVC flow: external-provisioner's CreateVolume for a 1Gi RWX claim, kubelet's NodePublish on two nodes", async (t) => {
  const env = await setup(t);
  // The controller Deployment's driver, and one node plugin per node (these know no provisioner:
  // the PersistentVolume's volumeAttributes carry all a mount needs).
  const ctl = await startCsi(env, 'controller', 'controller');
  const nodeA = await startCsi(env, 'node', 'k8s-node1', false);
  const nodeB = await startCsi(env, 'node', 'k8s-node2', false);

  // external-provisioner at start: who is the driver, does it have a controller.
  t.is((await call(ctl.identity, 'GetPluginInfo', {})).name, 'gfs.csi.gfs.io');
  t.true((await call(ctl.identity, 'GetPluginCapabilities', {})).capabilities.some((c: any) => c.service?.type === 'CONTROLLER_SERVICE'));
  t.deepEqual((await call(ctl.identity, 'Probe', {})).ready, { value: true });
  t.is(await codeOf(ctl.node, 'NodeGetInfo', {}), status.UNIMPLEMENTED, 'the controller serves no Node service');
  t.is(await codeOf(nodeA.controller, 'CreateVolume', {}), status.UNIMPLEMENTED, 'a node plugin serves no Controller service');
  // node-driver-registrar registers each node plugin under its node id.
  t.is((await call(nodeA.node, 'NodeGetInfo', {})).node_id, 'k8s-node1');
  t.is((await call(nodeB.node, 'NodeGetInfo', {})).node_id, 'k8s-node2');

  // The PVC glusterfs-test-vol1 (ReadWriteMany, 1Gi) of StorageClass heketi-sc: the seed's
  // parameters, resturl included (the driver is told the provisioner's address on its command line).
  const pvName = `pvc-${randomUUID()}`;
  const req = {
    name: pvName, capacity_range: { required_bytes: GiB }, volume_capabilities: [{ mount: { fs_type: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
    parameters: { resturl: env.url, clusterid: env.clusterId, volumetype: 'replicate:2' },
  };
  const pv = (await call(ctl.controller, 'CreateVolume', req)).volume;
  t.is(pv.capacity_bytes, GiB);
  // A retry after a timeout (external-provisioner does this) gets the same volume.
  t.deepEqual((await call(ctl.controller, 'CreateVolume', req)).volume, pv);
  const vol = await env.admin.json('GET', `/volumes/${pv.volume_id}`);
  t.is(vol.name, pvName, 'the provisioner keeps the PV name');
  t.is(vol.durability.type, 'replicate');
  t.is(vol.durability.replicate.replica, 2);
  t.is(vol.cluster, env.clusterId);
  t.not(vol.bricks[0].node, vol.bricks[1].node);
  const gi = await env.c.mustGfs(['volume', 'info', pvName]);
  for (const re of [/Type: Replicate/, /Number of Bricks: 1 x 2 = 2/, /Status: Started/]) t.regex(gi, re);

  // kubelet on each node: NodePublishVolume at the pod's volume path (attachRequired: false, no stage).
  const targetOf = (nodeName: string, pod: string) => join(env.c.root, nodeName, 'var/lib/kubelet/pods', pod, 'volumes/kubernetes.io~csi', pvName, 'mount');
  const ta = targetOf('k8s-node1', randomUUID());
  const tb = targetOf('k8s-node2', randomUUID());
  const publish = (target: string) => ({ volume_id: pv.volume_id, target_path: target, volume_capability: req.volume_capabilities[0], readonly: false, volume_context: pv.volume_context });
  await call(nodeA.node, 'NodePublishVolume', publish(ta));
  await call(nodeB.node, 'NodePublishVolume', publish(tb));
  t.deepEqual(await fuseMountsUnder(ta), [ta]);
  t.deepEqual(await fuseMountsUnder(tb), [tb]);

  await fs.writeFile(join(ta, 'from-pod-a.txt'), 'written on k8s-node1');
  t.is(await waitFor('node2 to see node1\'s file', () => fs.readFile(join(tb, 'from-pod-a.txt'), 'utf8').catch(() => undefined)), 'written on k8s-node1');
  await fs.appendFile(join(tb, 'from-pod-a.txt'), ', appended on k8s-node2');
  t.is(await waitFor('node1 to see node2\'s append', async () => {
    const s = await fs.readFile(join(ta, 'from-pod-a.txt'), 'utf8').catch(() => '');
    return s.endsWith('k8s-node2') ? s : undefined;
  }), 'written on k8s-node1, appended on k8s-node2');
  t.is((await call(nodeB.node, 'NodeGetVolumeStats', { volume_id: pv.volume_id, volume_path: tb })).usage[0].unit, 'BYTES');

  // The pods go away, then the claim (reclaimPolicy Delete).
  await call(nodeA.node, 'NodeUnpublishVolume', { volume_id: pv.volume_id, target_path: ta });
  await call(nodeB.node, 'NodeUnpublishVolume', { volume_id: pv.volume_id, target_path: tb });
  t.deepEqual(await fuseMountsUnder(env.c.root), []);
  await call(ctl.controller, 'DeleteVolume', { volume_id: pv.volume_id });
  t.deepEqual((await env.admin.json('GET', '/volumes')).volumes, []);
  t.false((await gfsVolumes(env.c)).includes(pvName));
  for (const s of [ctl, nodeA, nodeB]) for (const cl of [s.identity, s.controller, s.node]) cl.close();
});
