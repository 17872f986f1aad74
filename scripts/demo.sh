#!/usr/bin/env bash
# `npm run demo`: shows a clone against a copy. Where the current directory's filesystem cannot
# clone and we are root on Linux, it makes a temporary XFS image for the demo and removes it after.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$PWD}"
if node bin/clonefile.js probe --json "$dir" | grep -q '"clone": true'; then
  exec node bin/clonefile.js demo "$dir"
fi
if [ "$(uname -s)" != Linux ] || [ "$(id -u)" -ne 0 ]; then
  exec node bin/clonefile.js demo "$dir"   # explains how to get a filesystem that clones
fi
bash scripts/test-deps.sh
work=$(mktemp -d /tmp/clonefile-demo-XXXXXX)
cleanup() { umount "$work/mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
truncate -s 3G "$work/xfs.img"
mkfs.xfs -q -m reflink=1 "$work/xfs.img"
mkdir "$work/mnt"
mount -o loop "$work/xfs.img" "$work/mnt"
echo "($dir cannot clone; using a temporary XFS filesystem at $work/mnt)"
node bin/clonefile.js demo "$work/mnt"
