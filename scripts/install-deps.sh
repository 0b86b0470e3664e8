#!/usr/bin/env bash
# Installs the system packages Cairn's drivers and tests use, when they are missing:
# xfsprogs and btrfs-progs (reflink file systems), qemu-utils (qemu-img), e2fsprogs (mkfs.ext4),
# util-linux (losetup, fallocate), and Ceph (ceph-mon ceph-osd ceph-common rbd-fuse) for the rbd
# driver's tests, which start a private single-node cluster. Debian/Ubuntu; run as root.
set -euo pipefail
packages=(util-linux e2fsprogs xfsprogs btrfs-progs qemu-utils ceph-mon ceph-osd ceph-common rbd-fuse)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Loop devices are how the local connector attaches volumes.
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
if [ ! -e /dev/loop-control ]; then
  echo "error: /dev/loop-control is missing: this host cannot attach loop devices" >&2
  exit 1
fi
