#!/usr/bin/env bash
# Installs the system packages Cairn's drivers and tests use, when they are missing:
# xfsprogs and btrfs-progs (reflink file systems), qemu-utils (qemu-img), e2fsprogs (mkfs.ext4),
# util-linux (losetup, fallocate), and Ceph (ceph-mon ceph-osd ceph-common rbd-fuse) for the rbd
# driver's tests, which start a private single-node cluster, with librbd-dev and librados-dev for
# the driver's in-process fast path (native/rbd, built by npm run build). Debian/Ubuntu; run as root.
set -euo pipefail
packages=(util-linux e2fsprogs xfsprogs btrfs-progs qemu-utils ceph-mon ceph-osd ceph-common rbd-fuse librbd-dev librados-dev)
# The VM tier (test/harness/vm.ts, scripts/vm-assets.sh): QEMU, a static busybox and cpio/kmod
# for the initramfs, and the storage tools the guest runs (it runs the host's own binaries over
# 9p): LVM with thin pools, the iSCSI initiator, multipath, nvme-cli, the NBD client, tgt and
# qemu-nbd (qemu-utils). open-iscsi, multipath-tools and tgt ship daemons that must not start on
# the host: see the policy-rc.d guard below.
packages+=(qemu-system-x86 busybox-static cpio kmod lvm2 thin-provisioning-tools open-iscsi multipath-tools)
packages+=(nvme-cli nbd-client tgt libnbd-bin libiscsi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No package may start its daemon here (iscsid, multipathd, tgtd, udevd...): a host without
  # systemd would run them for nothing (and multipathd could claim the host's devices). A
  # policy-rc.d that says no, unless the host has its own, for the install only.
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then
    rm -f "$guard"
    trap - EXIT
  fi
fi
# Loop devices are how the local connector attaches volumes.
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
if [ ! -e /dev/loop-control ]; then
  echo "error: /dev/loop-control is missing: this host cannot attach loop devices" >&2
  exit 1
fi
