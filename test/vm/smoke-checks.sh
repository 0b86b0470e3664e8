#!/usr/bin/env bash
# Runs in the test VM (test/vm/guest.test.ts): proves that the guest kernel and the host's tools
# do what the LVM driver and the iSCSI/NVMe-oF/NBD exports and connectors will need. Each check
# writes $XCHG/pattern.bin (made by the host) to a device at an offset, reads it back into
# $XCHG/<check>.out for the host to compare, and reports facts in $XCHG/<check>.json. A line per
# check goes to $XCHG/results.jsonl: {"name", "rc", "ms"}; its log to $XCHG/<check>.log.
# The checks are also recipes: each one sets up and tears down the thing it tests.
set -u
: "${XCHG:?the exchange directory}"
PATTERN=$XCHG/pattern.bin
OFFSET_MIB=3 # where the pattern goes on each device

ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds.
wait_for() {
  local end=$(($(ms) + $1 * 1000))
  shift
  until "$@" 2>/dev/null; do
    (($(ms) < end)) || {
      echo "timed out waiting for: $*" >&2
      return 1
    }
    sleep 0.1
  done
}

# roundtrip NAME DEVICE: the pattern to DEVICE at OFFSET_MIB, and back into $XCHG/NAME.out.
roundtrip() {
  local bytes
  bytes=$(stat -c %s "$PATTERN")
  dd if="$PATTERN" of="$2" bs=1M seek=$OFFSET_MIB oflag=direct conv=fsync status=none
  # Drop any cached page so the read-back comes from the device.
  blockdev --flushbufs "$2"
  dd if="$2" of="$XCHG/$1.out" bs=1M skip=$OFFSET_MIB count=$((bytes / 1048576)) iflag=direct status=none
}

# LVM: a loop-backed VG, a thin pool, a thin LV.
check_lvm() {
  local img=/tmp/lvm-pv.img loopdev
  truncate -s 512M $img
  loopdev=$(losetup -f --show $img)
  pvcreate -q "$loopdev"
  vgcreate -q cairnvm "$loopdev"
  lvcreate -q --type thin-pool -L 128M -n pool cairnvm
  lvcreate -q -V 256M -T cairnvm/pool -n thin1
  lvs --noheadings -o lv_name,segtype,lv_size --units b --nosuffix cairnvm
  roundtrip lvm /dev/cairnvm/thin1
  local size seg used
  size=$(blockdev --getsize64 /dev/cairnvm/thin1)
  seg=$(lvs --noheadings -o segtype cairnvm/thin1 | tr -d ' ')
  used=$(lvs --noheadings -o data_percent cairnvm/pool | tr -d ' ')
  ls -l /dev/mapper/
  dmsetup table
  printf '{"device":"/dev/cairnvm/thin1","size":%s,"segtype":"%s","poolDataPercent":%s}\n' \
    "$size" "$seg" "$used" >"$XCHG/lvm.json"
  lvremove -qy cairnvm
  vgremove -qy cairnvm
  pvremove -qy "$loopdev"
  losetup -d "$loopdev"
  rm -f $img
}

# NVMe/TCP: an nvmet target on a loop device in this guest, `nvme connect` to it on 127.0.0.1.
check_nvme() {
  local img=/tmp/nvme.img loopdev cfs=/sys/kernel/config/nvmet nqn=nqn.2024-01.io.cairn:vm-smoke port=14420
  truncate -s 64M $img
  loopdev=$(losetup -f --show $img)
  mkdir $cfs/subsystems/$nqn
  echo 1 >$cfs/subsystems/$nqn/attr_allow_any_host
  mkdir $cfs/subsystems/$nqn/namespaces/1
  echo "$loopdev" >$cfs/subsystems/$nqn/namespaces/1/device_path
  echo 1 >$cfs/subsystems/$nqn/namespaces/1/enable
  mkdir $cfs/ports/1
  echo tcp >$cfs/ports/1/addr_trtype
  echo ipv4 >$cfs/ports/1/addr_adrfam
  echo 127.0.0.1 >$cfs/ports/1/addr_traddr
  echo $port >$cfs/ports/1/addr_trsvcid
  ln -s $cfs/subsystems/$nqn $cfs/ports/1/subsystems/$nqn
  nvme discover -t tcp -a 127.0.0.1 -s $port
  nvme connect -t tcp -a 127.0.0.1 -s $port -n $nqn
  # The namespace's block device: the one whose controller's subsystem has our NQN.
  local dev=
  find_ns() {
    local b
    for b in /sys/block/nvme*n*; do
      [[ -e $b ]] || continue
      if grep -qx "$nqn" "$b/device/subsysnqn" 2>/dev/null || grep -qx "$nqn" "$b/device/device/subsysnqn" 2>/dev/null ||
        grep -qx "$nqn" "$b/../../subsysnqn" 2>/dev/null; then
        dev=/dev/${b##*/}
        [[ -b $dev ]] && return 0
      fi
    done
    return 1
  }
  wait_for 10 find_ns
  nvme list
  ls -l /sys/block/nvme* || true
  local size
  size=$(blockdev --getsize64 "$dev")
  roundtrip nvme "$dev"
  printf '{"device":"%s","size":%s}\n' "$dev" "$size" >"$XCHG/nvme.json"
  nvme disconnect -n $nqn
  wait_for 10 test ! -e "$dev"
  rm $cfs/ports/1/subsystems/$nqn
  rmdir $cfs/ports/1
  echo 0 >$cfs/subsystems/$nqn/namespaces/1/enable
  rmdir $cfs/subsystems/$nqn/namespaces/1
  rmdir $cfs/subsystems/$nqn
  losetup -d "$loopdev"
  rm -f $img
}

# The SCSI disk of an iSCSI session to TARGET, LUN (iscsiadm sessions -> sysfs).
iscsi_disk() {
  local target=$1 lun=$2 s
  for s in /sys/class/iscsi_session/session*; do
    [[ $(cat "$s/targetname" 2>/dev/null) == "$target" ]] || continue
    local d
    for d in "$s"/device/target*/*:*:*:"$lun"/block/*; do
      [[ -e $d ]] && echo "/dev/${d##*/}" && return 0
    done
  done
  return 1
}

# iSCSI with tgt: tgtd on 127.0.0.1:13260 in this guest, open-iscsi logs in to it.
check_iscsi_tgt() {
  local img=/tmp/tgt.img iqn=iqn.2024-01.io.cairn:vm-smoke-tgt portal=127.0.0.1:13260
  truncate -s 64M $img
  tgtd --iscsi portal=$portal
  wait_for 10 tgtadm --lld iscsi --op show --mode sys
  tgtadm --lld iscsi --op new --mode target --tid 1 -T $iqn
  tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b $img
  tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL
  iscsiadm -m discovery -t sendtargets -p $portal
  iscsiadm -m node -T $iqn -p $portal --login
  local dev
  wait_for 10 iscsi_disk $iqn 1
  dev=$(iscsi_disk $iqn 1)
  wait_for 10 test -b "$dev"
  iscsiadm -m session
  local size
  size=$(blockdev --getsize64 "$dev")
  roundtrip iscsi_tgt "$dev"
  printf '{"device":"%s","size":%s,"initiator":"%s"}\n' "$dev" "$size" \
    "$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)" >"$XCHG/iscsi_tgt.json"
  iscsiadm -m node -T $iqn -p $portal --logout
  iscsiadm -m node -T $iqn -p $portal -o delete
  wait_for 10 test ! -b "$dev"
  tgtadm --lld iscsi --op delete --mode target --tid 1
  tgtadm --op delete --mode system
  rm -f $img
}

# iSCSI with LIO (configfs, no targetcli): a fileio backstore exported on 127.0.0.1:13261.
check_iscsi_lio() {
  local img=/tmp/lio.img iqn=iqn.2024-01.io.cairn:vm-smoke-lio portal=127.0.0.1:13261
  local t=/sys/kernel/config/target initiator
  initiator=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
  truncate -s 64M $img
  mkdir -p $t/core/fileio_0/disk0
  echo "fd_dev_name=$img,fd_dev_size=$((64 * 1048576))" >$t/core/fileio_0/disk0/control
  echo 1 >$t/core/fileio_0/disk0/enable
  mkdir -p $t/iscsi/$iqn/tpgt_1/lun/lun_0
  ln -s $t/core/fileio_0/disk0 $t/iscsi/$iqn/tpgt_1/lun/lun_0/disk0
  mkdir $t/iscsi/$iqn/tpgt_1/np/$portal
  # An ACL for this initiator, mapping LUN 0; no CHAP.
  mkdir -p $t/iscsi/$iqn/tpgt_1/acls/$initiator/lun_0
  ln -s $t/iscsi/$iqn/tpgt_1/lun/lun_0 $t/iscsi/$iqn/tpgt_1/acls/$initiator/lun_0/lun0
  echo 0 >$t/iscsi/$iqn/tpgt_1/attrib/authentication
  echo 1 >$t/iscsi/$iqn/tpgt_1/enable
  iscsiadm -m discovery -t sendtargets -p $portal
  iscsiadm -m node -T $iqn -p $portal --login
  local dev
  wait_for 10 iscsi_disk $iqn 0
  dev=$(iscsi_disk $iqn 0)
  wait_for 10 test -b "$dev"
  local size
  size=$(blockdev --getsize64 "$dev")
  roundtrip iscsi_lio "$dev"
  printf '{"device":"%s","size":%s}\n' "$dev" "$size" >"$XCHG/iscsi_lio.json"
  iscsiadm -m node -T $iqn -p $portal --logout
  iscsiadm -m node -T $iqn -p $portal -o delete
  wait_for 10 test ! -b "$dev"
  echo 0 >$t/iscsi/$iqn/tpgt_1/enable
  rm $t/iscsi/$iqn/tpgt_1/acls/$initiator/lun_0/lun0
  rmdir $t/iscsi/$iqn/tpgt_1/acls/$initiator/lun_0 $t/iscsi/$iqn/tpgt_1/acls/$initiator
  rmdir $t/iscsi/$iqn/tpgt_1/np/$portal
  rm $t/iscsi/$iqn/tpgt_1/lun/lun_0/disk0
  rmdir $t/iscsi/$iqn/tpgt_1/lun/lun_0 $t/iscsi/$iqn/tpgt_1 $t/iscsi/$iqn
  rmdir $t/core/fileio_0/disk0 $t/core/fileio_0
  rm -f $img
}

# Kernel NBD: qemu-nbd serves a file on 127.0.0.1:10810, nbd-client attaches /dev/nbd0.
check_nbd() {
  local img=/tmp/nbd.img port=10810 pidfile=/tmp/qemu-nbd.pid
  truncate -s 64M $img
  qemu-nbd -f raw -b 127.0.0.1 -p $port -x smoke --persistent --fork --pid-file=$pidfile $img
  nbd-client 127.0.0.1 $port /dev/nbd0 -N smoke
  wait_for 10 test "$(cat /sys/block/nbd0/size 2>/dev/null || echo 0)" != 0
  local size
  size=$(blockdev --getsize64 /dev/nbd0)
  roundtrip nbd /dev/nbd0
  printf '{"device":"/dev/nbd0","size":%s}\n' "$size" >"$XCHG/nbd.json"
  nbd-client -d /dev/nbd0
  wait_for 10 test "$(cat /sys/block/nbd0/size)" = 0
  kill "$(cat $pidfile)"
  rm -f $img
}

run_check() {
  local name=$1 t0 rc
  t0=$(ms)
  (
    set -euo pipefail
    "check_$name"
  ) >"$XCHG/$name.log" 2>&1
  rc=$?
  printf '{"name":"%s","rc":%d,"ms":%d}\n' "$name" $rc $(($(ms) - t0)) >>"$XCHG/results.jsonl"
  echo "check $name: rc=$rc in $(($(ms) - t0)) ms"
}

for c in ${CHECKS:-lvm nvme iscsi_tgt iscsi_lio nbd}; do
  run_check "$c"
done
