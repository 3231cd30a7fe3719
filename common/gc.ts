// Imported first by the data daemons (gfs-mount, gfs-brickd): they mark the heap on their own thread.
// V8's concurrent marking runs on helper threads that compete with the event loop, the kernel's
// FUSE work and the bricks for the cores: on 2 cores a 256 MiB write in 1 MiB blocks spent half of
// the mount's CPU in them, and with marking on the main thread it ran ~1.4x faster (mount CPU
// -38%, brick -28%). A runtime flag, as a daemon has no command line of node's own to carry it.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-concurrent-marking');
