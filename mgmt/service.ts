// The Mgmt gRPC service: each rpc of proto/mgmt.proto mapped to its operation. Changing commands
// run one at a time (node.exclusive); every failure becomes a status whose details are the message.
import * as grpc from '@grpc/grpc-js';
import { MgmtError, notFound, precondition, toServiceError } from './errors.js';
import { brickCarve, brickRemove, brickScan, deviceSetup, deviceTeardown } from './brick-carve.js';
import { replaceBrick, resetBrick, resetBrickLocal, restartShdLocal, stopBrickLocal } from './brick-ops.js';
import type { Node } from './node.js';
import { nodeHello, peerDetach, peerJoin, peerLeave, peerProbe, peerStates, syncVolume } from './peer-ops.js';
import { generateSpec, volumeType } from './volgen.js';
import {
  commitLocal, getVolume, localStatus, releaseLocal, stageLocal, startLocal, stopLocal,
  volumeCreate, volumeDelete, volumeInfo, volumeSet, volumeStart, volumeStatus, volumeStop,
} from './volume-ops.js';
import { DEFAULT_MGMT_PORT, type VolumeDef } from './types.js';

type Handler = (req: any) => Promise<object> | object;

function unary(node: Node, name: string, fn: Handler): grpc.handleUnaryCall<any, any> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then((res) => callback(null, res))
      .catch((err) => {
        if (!(err instanceof MgmtError)) node.log.error({ rpc: name, err }, 'unexpected failure');
        else node.log.debug({ rpc: name, err: err.message }, 'refused');
        callback(toServiceError(err));
      });
  };
}

export function toVolumeInfo(v: VolumeDef): object {
  return {
    name: v.name, id: v.id, type: volumeType(v, v.bricks.length), status: v.status,
    stripe: v.stripe, replica: v.replica, arbiter: v.arbiter, transport: v.transport,
    bricks: v.bricks.map((b) => ({ host: b.host, path: b.path, arbiter: !!b.arbiter, node_uuid: b.nodeUuid })),
    options: v.options, snapshot_count: 0,
  };
}

export function mgmtHandlers(node: Node): grpc.UntypedServiceImplementation {
  const x = <T>(fn: () => Promise<T>) => node.exclusive(fn);
  const table: Record<string, Handler> = {
    GetSpec: (r) => {
      const v = node.store.getVolume(r.volume);
      if (!v) throw notFound(`Volume ${r.volume} does not exist`);
      if (v.status !== 'Started') throw precondition(`Volume ${r.volume} is not started`);
      return { spec_json: JSON.stringify(generateSpec(v, { member: (u) => node.member(u) })) };
    },
    Portmap: (r) => {
      const port = node.bricks.portOf(r.brick_path);
      if (port === undefined) throw notFound(`Brick ${node.self.hostname}:${r.brick_path} is not running`);
      return { port };
    },

    PeerProbe: (r) => x(async () => ({ message: await peerProbe(node, r.host, r.port || DEFAULT_MGMT_PORT) })),
    PeerDetach: (r) => x(async () => { await peerDetach(node, r.host, r.force); return { message: '' }; }),
    PeerStatus: async () => ({ peers: await peerStates(node, false) }),
    PoolList: async () => ({ peers: await peerStates(node, true) }),

    VolumeCreate: (r) => x(async () => { await volumeCreate(node, r); return { message: '' }; }),
    VolumeStart: (r) => x(async () => { await volumeStart(node, r.name, r.force); return { message: '' }; }),
    VolumeStop: (r) => x(async () => { await volumeStop(node, r.name, r.force); return { message: '' }; }),
    VolumeDelete: (r) => x(async () => { await volumeDelete(node, r.name); return { message: '' }; }),
    VolumeSet: (r) => x(async () => { await volumeSet(node, r.name, r.key, r.value); return { message: '' }; }),
    VolumeInfo: (r) => ({ volumes: volumeInfo(node, r.name).map(toVolumeInfo) }),
    VolumeStatus: async (r) => ({ volumes: await volumeStatus(node, r.name) }),
    VolumeList: () => ({ names: node.store.listVolumes().map((v) => v.name) }),
    VolumeResetBrick: (r) => x(async () => { await resetBrick(node, r); return { message: '' }; }),
    VolumeReplaceBrick: (r) => x(async () => { await replaceBrick(node, r); return { message: '' }; }),

    NodeHello: () => nodeHello(node),
    PeerJoin: (r) => peerJoin(node, r.members ?? [], r.volumes_json ?? []),
    PeerLeave: (r) => { peerLeave(node, r.uuid); return {}; },
    SyncVolume: (r) => { syncVolume(node, r.volume_json, r.delete_name); return {}; },
    StageBricks: (r) => stageLocal(node, r),
    CommitBricks: (r) => commitLocal(r),
    ReleaseBricks: (r) => releaseLocal(r),
    StartBricks: (r) => startLocal(node, r),
    StopBricks: (r) => stopLocal(node, r),
    LocalBrickStatus: (r) => { getVolume(node, r.volume); return localStatus(node, r); },
    StopBrick: (r) => stopBrickLocal(node, r),
    ResetBrick: (r) => resetBrickLocal(node, r),
    RestartShd: (r) => restartShdLocal(node, r),
    DeviceSetup: (r) => x(() => deviceSetup(r)),
    DeviceTeardown: (r) => x(() => deviceTeardown(r)),
    BrickCarve: (r) => x(() => brickCarve(r)),
    BrickRemove: (r) => x(() => brickRemove(r)),
    BrickScan: (r) => brickScan(r),
  };
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, fn] of Object.entries(table)) impl[name] = unary(node, name, fn);
  return impl;
}
