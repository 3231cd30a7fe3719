# One image for every gfs role: gfsd nodes (bricks started by gfsd), the set-up job and a FUSE client.
# Built from this repository alone: Debian and npm packages, nothing else downloaded.
FROM node:20-bookworm-slim AS build
WORKDIR /opt/gfs
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY common common
COPY proto proto
COPY brickd brickd
COPY client client
COPY mgmt mgmt
COPY provision provision
COPY csi csi
COPY scripts scripts
COPY test test
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfuse2 fuse3 attr xfsprogs procps iproute2 \
 && rm -rf /var/lib/apt/lists/* \
 && echo user_allow_other >> /etc/fuse.conf
WORKDIR /opt/gfs
COPY --from=build /opt/gfs/package.json ./
COPY --from=build /opt/gfs/node_modules node_modules
COPY --from=build /opt/gfs/dist dist
COPY proto proto
COPY scripts/compose-setup.sh scripts/compose-setup.sh
RUN chmod +x dist/mgmt/cli.js dist/mgmt/gfsd.js dist/brickd/main.js dist/client/main.js dist/client/mount-gfs.js \
 && ln -s /opt/gfs/dist/mgmt/cli.js /usr/local/bin/gfs \
 && ln -s /opt/gfs/dist/mgmt/gfsd.js /usr/local/bin/gfsd \
 && ln -s /opt/gfs/dist/brickd/main.js /usr/local/bin/gfs-brickd \
 && ln -s /opt/gfs/dist/client/main.js /usr/local/bin/gfs-mount \
 && ln -s /opt/gfs/dist/client/mount-gfs.js /sbin/mount.gfs \
 && ln -s /opt/gfs/dist/provision/main.js /usr/local/bin/gfs-provisioner \
 && ln -s /opt/gfs/dist/provision/cli.js /usr/local/bin/gfs-provisioner-cli \
 && chmod +x dist/csi/main.js && ln -s /opt/gfs/dist/csi/main.js /usr/local/bin/gfs-csi
EXPOSE 24007 49152-49251
CMD ["gfsd", "--help"]
