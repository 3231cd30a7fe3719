// The node flags the data daemons (gfs-brickd, the gfs-mount daemon, the self-heal daemon) are
// started with, by whoever spawns them. Each large message costs node's http2 and grpc-js fresh
// buffers outside the heap, and V8 starts a small heap with low limits, so that memory set off a
// full collection every ~30 MiB moved: 32 on the brick for a fresh volume's first 1 GiB write, 36-43
// on the mount for a cold 1 GiB read. A 64 MiB starting old space leaves them to young collections
// (0 and 22 full ones), and the brick's peak RSS falls (155 -> 130 MB). A heap's starting size is
// fixed when node starts: common/gc.ts's runtime flags come too late for it, and NODE_OPTIONS
// refuses it.
export const DATA_DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
