#!/usr/bin/env bash
# Builds the kernel and initramfs of the test VM (test/harness/vm.ts) into a cache directory and
# prints that directory on the last line of stdout. Reuses a complete cache at once.
#
#   bash scripts/vm-assets.sh            # build if needed, print the directory
#   bash scripts/vm-assets.sh --force    # rebuild even if cached
#
# The kernel is Debian's own (the version linux-image-amd64 depends on), fetched with
# `apt-get download`: Debian's mirror is the only network access. The initramfs holds a static
# busybox, the modules the tests need (device-mapper, loop, NBD, RBD, iSCSI initiator, NVMe/TCP
# host and target, LIO, 9p, overlayfs) and an /init that mounts the host's root read-only over
# 9p with a tmpfs overlay, chroots into it and runs the harness's boot script.
#
# Cache: $CAIRN_VM_CACHE (default <repo>/.cache/vm)/<kernel-version>/:
#   vmlinux      the uncompressed kernel (ELF with a PVH entry): QEMU starts it directly, which
#                saves the ~4 s the compressed kernel takes to unpack itself under TCG
#   vmlinuz      the kernel as packaged (a fallback)
#   initrd.img   busybox, /init, the boot modules (signatures stripped: faster to load)
#   modules/     the storage-related part of /lib/modules/<version> (fs, net, crypto, lib,
#                drivers/{block,md,scsi,target,nvme,...}) with its modules.dep: the harness
#                shares it into the guest at /lib/modules/<version>, so `modprobe X` and the
#                kernel's own module requests (mount -t xfs) work there
#   config       the kernel's .config; manifest.json: versions, sizes, this script's hash
# The build happens in a temporary directory that is renamed into place, under
# an flock on $CAIRN_VM_CACHE/.lock, so an interrupted build never leaves a half cache and two
# concurrent callers build once. A cache made by an older version of this script (its sha256
# is in manifest.json) is rebuilt.
# Needs (scripts/install-deps.sh): apt, dpkg-deb, kmod (depmod, modprobe), busybox-static, cpio,
# gzip, flock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${CAIRN_VM_CACHE:-$repo/.cache/vm}
force=0
[[ ${1:-} == --force ]] && force=1
self_hash=$(sha256sum "$0" | cut -c1-16)

log() { echo "vm-assets: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Modules loaded by /init, in this order (each with its dependencies first). Names as modprobe
# knows them; a name missing from the kernel fails the build.
MODULES=(
  # boot: virtio devices, the 9p host root, the overlay
  virtio_pci virtio_net virtio-rng 9pnet_virtio 9p overlay
  # block devices
  loop nbd rbd sd_mod sg
  # device-mapper: LVM (thin, snapshots, mirrors, zero), multipath and its path selectors
  dm-mod dm-thin-pool dm-snapshot dm-zero dm-mirror dm-multipath dm-round-robin dm-service-time
  dm-queue-length
  # SCSI device handlers multipath uses, the iSCSI initiator
  scsi_dh_alua scsi_dh_emc scsi_dh_rdac scsi_transport_iscsi iscsi_tcp
  # NVMe over TCP: host and target
  nvme-fabrics nvme-tcp nvmet nvmet-tcp
  # LIO (configfs target): block/file backstores, iSCSI target, loopback fabric
  configfs target_core_mod target_core_iblock target_core_file iscsi_target_mod tcm_loop
)
# ext4, xfs and anything else load on demand in the guest (modprobe, or the kernel's own request
# on mount) from the modules/ tree: xfs alone takes ~1 s to load under TCG.

# The parts of the module tree kept in modules/ (everything else: GPUs, sound, wireless, USB...).
KEEP=(arch block crypto fs lib mm net security virt
  drivers/{ata,base,block,cdrom,char,crypto,dax,dma,firmware,md,nvdimm,nvme,scsi,target,uio,vhost,virtio})

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip flock sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
busybox=/bin/busybox
bbldd=$(ldd "$busybox" 2>&1 || true)
[[ -x $busybox && ($bbldd == *'not a dynamic'* || $bbldd == *statically*) ]] ||
  die "a static busybox is needed at /bin/busybox (apt-get install busybox-static)"

# A complete cache made by this version of the script (the newest, if several kernels).
valid() {
  [[ -s $1/vmlinuz && -s $1/initrd.img && -d $1/modules && -f $1/manifest.json ]] &&
    grep -q "\"recipe\": \"$self_hash\"" "$1/manifest.json"
}
cached() {
  local d best=
  for d in "$root"/*/; do
    d=${d%/}
    valid "$d" || continue
    [[ -z $best || $d -nt $best ]] && best=$d
  done
  [[ -n $best ]] && echo "$best"
}
# Replaced caches and killed builds, an hour on (no guest lives that long).
prune() {
  [[ -d $root ]] && find "$root" -maxdepth 1 \( -name '.old-*' -o -name '.build-*' \) -mmin +60 -exec rm -rf {} + || true
}
# The fast path (and the offline one): no apt at all. A newer Debian kernel is picked up by
# --force or by deleting the cache.
if [[ $force == 0 ]] && cached; then
  prune
  exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock -n 9 || {
  log "waiting for another build (lock $root/.lock)"
  flock 9
}
# Another caller may have built it while this one waited.
if [[ $force == 0 ]] && cached; then exit 0; fi

# The versioned kernel package: linux-image-amd64 is a meta package depending on it.
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(kernel_pkg || true)
if [[ -z $pkg ]]; then
  log "apt knows no linux-image-amd64 (no package lists?): running apt-get update"
  apt-get update -qq >&2
  pkg=$(kernel_pkg || true)
  [[ -n $pkg ]] || die "apt-cache knows no linux-image-amd64"
fi
kver=${pkg#linux-image-}
dir=$root/$kver

started=$SECONDS
build=$(mktemp -d "$root/.build-XXXXXX")
chmod 755 "$build"
trap 'rm -rf "$build"' EXIT
log "building $kver in $build"

# 1. The kernel package (apt-get download writes to the current directory).
(
  cd "$build"
  apt-get download "$pkg" >/dev/null 2>&1 || {
    log "apt-get download $pkg failed: running apt-get update and retrying"
    apt-get update -qq >&2
    apt-get download "$pkg" >&2
  }
)
deb=$(ls "$build"/linux-image-*.deb)
dpkg-deb -x "$deb" "$build/kernel"
rm -f "$deb"
kroot=$build/kernel
[[ -d $kroot/lib/modules/$kver ]] || die "the package has no /lib/modules/$kver"
cp "$kroot/boot/vmlinuz-$kver" "$build/vmlinuz"
cp "$kroot/boot/config-$kver" "$build/config"

# The uncompressed kernel: the ELF image inside the bzImage (xz, gzip or zstd, by its magic).
extract_vmlinux() {
  local img=$1 magic cmd off
  for pair in '\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x1f\x8b\x08:gzip -dc' '\x28\xb5\x2f\xfd:zstd -qdc'; do
    magic=${pair%%:*}
    cmd=${pair#*:}
    for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1 | head -5); do
      tail -c +$((off + 1)) "$img" | $cmd 2>/dev/null >"$build/vmlinux.tmp" || true
      if [[ $(head -c 4 "$build/vmlinux.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
        mv "$build/vmlinux.tmp" "$build/vmlinux"
        return 0
      fi
    done
  done
  rm -f "$build/vmlinux.tmp"
  return 1
}
if grep -q '^CONFIG_PVH=y' "$build/config" && extract_vmlinux "$build/vmlinuz"; then
  log "vmlinux extracted ($(stat -c %s "$build/vmlinux") bytes)"
else
  log "no PVH-bootable vmlinux: the VM boots the compressed kernel (~4 s slower)"
fi

# The module tree the guest gets: the storage-related part, with its own modules.dep.
mdir=$build/modules
mkdir -p "$mdir"
src=$kroot/lib/modules/$kver
for f in "$src"/modules.order "$src"/modules.builtin "$src"/modules.builtin.modinfo; do
  [[ -f $f ]] && cp "$f" "$mdir/"
done
for k in "${KEEP[@]}"; do
  [[ -d $src/kernel/$k ]] || continue
  mkdir -p "$mdir/kernel/$(dirname "$k")"
  cp -a "$src/kernel/$k" "$mdir/kernel/$k"
done
# drivers/net: the virtual devices only (veth, tun, bonding, macvlan...), not the NIC drivers.
mkdir -p "$mdir/kernel/drivers/net"
find "$src/kernel/drivers/net" -maxdepth 1 -name '*.ko*' -exec cp {} "$mdir/kernel/drivers/net/" \;
mkdir -p "$build/mroot/lib/modules"
ln -s "$mdir" "$build/mroot/lib/modules/$kver"
depmod -b "$build/mroot" "$kver"
rm -rf "$build/mroot"
depmod -b "$kroot" "$kver"

# Strips a module's appended signature: the kernel loads it unverified (it taints itself, which
# is harmless here), and verifying 70 signatures costs ~0.5 s of boot under TCG.
strip_signature() {
  local f=$1 size len tail
  size=$(stat -c %s "$f")
  tail=$(tail -c 28 "$f")
  [[ $tail == '~Module signature appended~' ]] || return 0
  len=$(od -An -tu1 -j $((size - 32)) -N4 "$f" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
  truncate -s $((size - 28 - 12 - len)) "$f"
}

# 2. The initramfs tree.
ird=$build/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,lower,rw,newroot,lib/modules}
cp "$busybox" "$ird/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$ird/bin/$applet"
done
ln -s bin "$ird/sbin"
mknod -m 600 "$ird/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$ird/dev/null" c 1 3 2>/dev/null || true

# Resolve every module with its dependencies, in load order, once each. -C /dev/null: the
# host's /etc/modprobe.d must not add options (nbd-client's sets max_part).
declare -A seen=()
: >"$ird/modules.list"
count=0
for m in "${MODULES[@]}"; do
  out=$(modprobe -C /dev/null -d "$kroot" -S "$kver" --show-depends "$m" 2>&1) ||
    die "module $m: $out"
  while read -r kind path _; do
    [[ $kind == insmod ]] || continue
    rel=${path#"$kroot/lib/modules/$kver/"}
    [[ -n ${seen[$rel]:-} ]] && continue
    seen[$rel]=1
    mkdir -p "$ird/lib/modules/$(dirname "$rel")"
    case $rel in
    *.ko.xz)
      xz -dc "$path" >"$ird/lib/modules/${rel%.xz}"
      rel=${rel%.xz}
      ;;
    *.ko.zst)
      zstd -qdc "$path" >"$ird/lib/modules/${rel%.zst}"
      rel=${rel%.zst}
      ;;
    *.ko.gz)
      gzip -dc "$path" >"$ird/lib/modules/${rel%.gz}"
      rel=${rel%.gz}
      ;;
    *) cp "$path" "$ird/lib/modules/$rel" ;;
    esac
    strip_signature "$ird/lib/modules/$rel"
    echo "$rel" >>"$ird/modules.list"
    count=$((count + 1))
  done <<<"$out"
done

# 3. /init. The harness passes nothing on the kernel command line but its own markers: the
# control share (mount tag cairnctl) carries the boot script, the extra shares and the results.
cat >"$ird/init" <<'INIT'
#!/bin/busybox sh
# Cairn test VM init: modules, network, host root (9p, read-only) under a tmpfs overlay, then
# chroot and run the harness's boot script from the control share; power off when it ends.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
say() { echo "cairn-vm: $*"; }
fatal() {
  say "FATAL: $*"
  sync
  poweroff -f
}
say "init started ($(cut -d' ' -f1 /proc/uptime) s)"
failed=
while read -r ko; do
  insmod "/lib/modules/$ko" 2>/tmp.insmod || {
    grep -q 'File exists' /tmp.insmod || failed="$failed ${ko##*/}($(cat /tmp.insmod))"
  }
done </modules.list
[ -n "$failed" ] && say "insmod failed:$failed"

ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
fi

msize=524288
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=$msize,cache=loose hostroot /lower ||
  fatal "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /rw || fatal "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fatal "cannot mount the overlay root"
n=/newroot
mount -t proc proc $n/proc
mount -t sysfs sysfs $n/sys
mount -t devtmpfs devtmpfs $n/dev
mkdir -p $n/dev/pts $n/dev/shm $n/dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $n/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $n/dev/shm
mount -t configfs configfs $n/sys/kernel/config 2>/dev/null
mount -t debugfs debugfs $n/sys/kernel/debug 2>/dev/null
mount -t tmpfs -o mode=0755 tmpfs $n/run
mount -t tmpfs -o mode=1777 tmpfs $n/tmp
mkdir -p $n/run/lock $n/run/cairn-vm
# The module tree (tag cairnmods) at /lib/modules/<version>; the kernel's own module requests
# (mount -t xfs, ...) run the usermode helper in the initramfs root, so they go through a
# helper that runs the guest's modprobe in the new root.
kver=$(uname -r)
mkdir -p $n/lib/modules/$kver
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=$msize,cache=loose cairnmods $n/lib/modules/$kver 2>/dev/null; then
  printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >/bin/cairn-modprobe
  chmod 755 /bin/cairn-modprobe
  echo /bin/cairn-modprobe >/proc/sys/kernel/modprobe
fi
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$msize cairnctl $n/run/cairn-vm ||
  fatal "cannot mount the control share (9p tag cairnctl)"
ctl=$n/run/cairn-vm
# Extra shares: lines "tag guest-path ro|rw".
if [ -f $ctl/shares ]; then
  while read -r tag path mode; do
    [ -n "$tag" ] || continue
    mkdir -p "$n$path"
    opt=trans=virtio,version=9p2000.L,msize=$msize
    [ "$mode" = rw ] || opt=$opt,ro
    mount -t 9p -o $opt "$tag" "$n$path" || fatal "cannot mount share $tag at $path"
  done <$ctl/shares
fi
say "ready ($(cut -d' ' -f1 /proc/uptime) s)"
chroot $n /bin/sh /run/cairn-vm/boot.sh
say "boot script exited with $? ($(cut -d' ' -f1 /proc/uptime) s)"
sync
poweroff -f
INIT
chmod 755 "$ird/init"

(cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -6) >"$build/initrd.img"
rm -rf "$ird" "$kroot"

cat >"$build/manifest.json" <<EOF
{
  "kernel": "$kver",
  "package": "$pkg",
  "recipe": "$self_hash",
  "modules": $count,
  "initrdBytes": $(stat -c %s "$build/initrd.img"),
  "vmlinuzBytes": $(stat -c %s "$build/vmlinuz"),
  "vmlinux": $([[ -f $build/vmlinux ]] && echo true || echo false),
  "modulesTreeBytes": $(du -sb "$build/modules" | cut -f1),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF

# 4. Into place: the old directory (a stale recipe) is moved aside first, then the new one in.
# A guest started before still reads the old module tree over 9p, so old directories go only
# once they are an hour old.
if [[ -e $dir ]]; then
  old=$root/.old-$kver-$(date +%s)
  mv "$dir" "$old"
  touch "$old"
fi
mv "$build" "$dir"
prune
trap - EXIT
log "built $dir in $((SECONDS - started)) s ($count modules, initrd $(stat -c %s "$dir/initrd.img") bytes)"
echo "$dir"
