#!/bin/sh
# The docker-compose set-up job: waits for every gfsd, probes the peers, then creates and starts a
# distributed-replicated volume (replica 2 over 4 bricks). Safe to run again.
set -eu
NODES=${GFS_NODES:-"node1 node2 node3 node4"}
VOLUME=${GFS_VOLUME:-gv0}
first=$(echo "$NODES" | awk '{print $1}')
gfs() { command gfs --remote-host "$first" --mode=script "$@"; }

for n in $NODES; do
  i=0
  until command gfs --remote-host "$n" peer status >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 120 ] && { echo "gfsd on $n did not come up" >&2; exit 1; }
    sleep 1
  done
done
for n in $NODES; do [ "$n" = "$first" ] || gfs peer probe "$n"; done
if ! gfs volume info "$VOLUME" >/dev/null 2>&1; then
  bricks=""
  for n in $NODES; do bricks="$bricks $n:/data/brick1"; done
  # force: in a container the brick directory sits on the container's root file system.
  gfs volume create "$VOLUME" replica 2 $bricks force
fi
gfs volume info "$VOLUME" | grep -q 'Status: Started' || gfs volume start "$VOLUME"
gfs volume info "$VOLUME"
