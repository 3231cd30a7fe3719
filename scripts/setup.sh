#!/usr/bin/env bash
# Idempotent set-up for a Debian machine (run as root): Debian packages FUSE needs, npm packages,
# the build, and the programs on PATH (gfs, gfsd, gfs-brickd, gfs-mount; mount.gfs for mount -t gfs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (FUSE mounts, brick xattrs in the trusted namespace and /usr/local/bin need it)" >&2
  exit 1
fi

# Debian packages: libfuse2 for fuse-native's binding, fuse3 for fusermount/fuse.conf, attr for getfattr, acl for setfacl, strace (what ls -l asks),
# xfsprogs for provisioned bricks, docker-compose to check docker-compose.yml without an engine;
# sqlite3, rsync, git, util-linux (flock) and python3 (fcntl locks) for the real workloads of test/workloads.test.ts.
need=()
for pkg in libfuse2 fuse3 attr acl strace xfsprogs docker-compose sqlite3 rsync git util-linux python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "setup: /dev/fuse is missing: this machine cannot mount FUSE file systems" >&2; exit 1; }
grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null || echo user_allow_other >> /etc/fuse.conf

# npm packages, only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
# npm 11 may skip install scripts: fuse-native ships prebuilt binaries, check that they load.
node -e "require('fuse-native')" 2>/dev/null || { echo "setup: fuse-native's binding does not load (is libfuse2 installed?)" >&2; exit 1; }
node -e "require('@napi-rs/xattr')" 2>/dev/null || { echo "setup: @napi-rs/xattr does not load" >&2; exit 1; }
node -e "require('lmdb')" 2>/dev/null || { echo "setup: lmdb's binding does not load" >&2; exit 1; }

say "building"
bash scripts/build.sh

link() { ln -sf "$ROOT/$1" "$2"; }
link dist/mgmt/cli.js /usr/local/bin/gfs
link dist/mgmt/gfsd.js /usr/local/bin/gfsd
link dist/brickd/main.js /usr/local/bin/gfs-brickd
link dist/client/main.js /usr/local/bin/gfs-mount
link dist/client/mount-gfs.js /sbin/mount.gfs
# `mount -t glusterfs` (the Kubernetes in-tree plugin's) reaches gfs too, unless GlusterFS's own client is installed.
[ -e /sbin/mount.glusterfs ] && [ ! -L /sbin/mount.glusterfs ] || link dist/client/mount-gfs.js /sbin/mount.glusterfs
link dist/provision/main.js /usr/local/bin/gfs-provisioner
link dist/provision/cli.js /usr/local/bin/gfs-provisioner-cli
link dist/csi/main.js /usr/local/bin/gfs-csi
say "ready: gfs, gfsd, gfs-brickd, gfs-mount in /usr/local/bin; mount.gfs in /sbin"
