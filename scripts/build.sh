#!/usr/bin/env bash
# Compiles the TypeScript into dist/ and marks the programs executable.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p .
for f in dist/brickd/main.js dist/client/main.js dist/client/mount-gfs.js dist/mgmt/gfsd.js dist/mgmt/cli.js dist/provision/main.js dist/provision/cli.js dist/csi/main.js; do
  [ -f "$f" ] && chmod +x "$f"
done
exit 0
