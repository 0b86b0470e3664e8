# cairn-csi: the Cairn CSI plugin (controller and node). Build: docker build -t cairn-csi:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY proto ./proto
# --ignore-scripts: `prepare` would build before the sources are in place; better-sqlite3's own
# install step (a prebuilt binary) is run by the rebuild.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 && npx tsc -p tsconfig.json

FROM node:20-bookworm-slim
# What the node plugin runs: losetup, mount, umount, blkid (util-linux, mount), mkfs/resize2fs,
# mkfs.xfs/xfs_growfs, mkfs.btrfs/btrfs, and cmp (diffutils) for the blank-device check; the
# iSCSI, NVMe-oF and NBD initiators' tools (iscsiadm, multipath, nvme, nbd-client).
RUN apt-get update \
  && apt-get install -y --no-install-recommends util-linux mount e2fsprogs xfsprogs btrfs-progs diffutils \
    open-iscsi multipath-tools nvme-cli nbd-client \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The runtime dependencies only; --ignore-scripts again keeps `prepare` (tsc) from running.
RUN npm ci --omit=dev --ignore-scripts && npm rebuild better-sqlite3 && npm cache clean --force
COPY proto ./proto
COPY --from=build /app/dist/src ./dist/src
ENTRYPOINT ["node", "/app/dist/src/csi/main.js"]
