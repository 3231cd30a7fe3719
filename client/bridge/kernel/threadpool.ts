// libuv reads UV_THREADPOOL_SIZE once, when its pool first runs work. Where the event loop cannot
// poll /dev/fuse (device.ts), every outstanding read of it holds a pool thread, so gfs-mount
// imports this module before anything else.
const DEFAULT_SIZE = 32;

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(DEFAULT_SIZE);

export const THREADPOOL_SIZE = Number(process.env.UV_THREADPOOL_SIZE) || 4;
