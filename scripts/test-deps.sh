#!/usr/bin/env bash
# The tests mount real filesystems (XFS, btrfs, ext4 images on loop devices, tmpfs, a bindfs
# FUSE mount) and check sharing with xfs_io; install what they need where we can (root on Debian/Ubuntu).
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
need=()
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v setfattr >/dev/null || need+=(attr)
command -v setfacl >/dev/null || need+=(acl)
command -v losetup >/dev/null || need+=(mount)
# bindfs: a FUSE filesystem without RENAME_NOREPLACE (EINVAL), for the publish fallback;
# python3: the deep-tree and race helpers of the walker and adversarial tests.
command -v bindfs >/dev/null || need+=(bindfs)
command -v python3 >/dev/null || need+=(python3)
# rsync: a contender of the snapshot benchmark (bench/snapshot.ts; diff -rq is in diffutils).
command -v rsync >/dev/null || need+=(rsync)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-deps: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or the filesystem tests skip" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}"
apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; }
