#!/bin/sh
# `cmake --install` into a scratch prefix, then MOVE the install somewhere else (an install must
# not depend on where it was made, nor on the build tree), and check that:
# - the installed `rlm` starts with no RPATH or library path set by this test (its own RUNPATH
#   is $ORIGIN-relative), lists the plugins of the moved install and none of the build tree,
#   and runs a cell on the local backend;
# - the README's example builds against the moved install with pkg-config (rlm.pc) and with
#   find_package(rlm), and both binaries run and SUBMIT (a consumer may set its own rpath).
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd -P)
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
mv "$tmp/prefix" "$tmp/moved"
prefix="$tmp/moved"
libdir=$(ls -d "$prefix"/lib* | head -n 1)
test -f "$prefix/include/rlm/rlm.h"
test -f "$prefix/include/rlm/plugin.h"
ls "$libdir"/rlm/plugins/rlm-backend-local.so > /dev/null
ls "$prefix"/bin/rlm > /dev/null

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# The installed binary finds librlm through its own $ORIGIN-relative RUNPATH, and nothing of
# the build tree is baked into it.
readelf -d "$prefix/bin/rlm" > "$tmp/dynamic.txt"
grep -q 'R.*PATH.*\$ORIGIN/\.\./lib' "$tmp/dynamic.txt" || fail "no \$ORIGIN RUNPATH in bin/rlm"
! grep -q "$build" "$tmp/dynamic.txt" || fail "bin/rlm's RUNPATH names the build tree"

# Run it as a user would: no library path, no plugin path, no config, a scratch home.
run_installed() {
	env -u LD_LIBRARY_PATH -u RLM_PLUGIN_PATH -u RLM_CONFIG -u RLM_BACKEND \
		HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_DATA_HOME="$tmp/home/data" \
		"$prefix/bin/rlm" "$@"
}
mkdir -p "$tmp/home"
run_installed backends > "$tmp/backends.txt" 2>&1 || { cat "$tmp/backends.txt"; fail "rlm backends"; }
grep -q "^daytona .*$libdir/rlm/plugins/rlm-backend-daytona.so" "$tmp/backends.txt" ||
	{ cat "$tmp/backends.txt"; fail "the moved install's daytona plugin is not listed"; }
grep -q "^modal .*$libdir/rlm/plugins/rlm-backend-modal.so" "$tmp/backends.txt" ||
	{ cat "$tmp/backends.txt"; fail "the moved install's modal plugin is not listed"; }
! grep -q "$build" "$tmp/backends.txt" ||
	{ cat "$tmp/backends.txt"; fail "the installed rlm looked in the build tree"; }
run_installed backends describe modal > "$tmp/describe.txt" 2>&1 ||
	{ cat "$tmp/describe.txt"; fail "rlm backends describe modal"; }
run_installed exec --backend local -c 'print(6 * 7)' > "$tmp/exec.txt" 2>&1 ||
	{ cat "$tmp/exec.txt"; fail "rlm exec on the local backend"; }
grep -qx 42 "$tmp/exec.txt" || { cat "$tmp/exec.txt"; fail "rlm exec printed no 42"; }

# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
test "$(pkg-config --variable=plugindir rlm)" -ef "$libdir/rlm/plugins" ||
	fail "rlm.pc's plugindir is not the moved install's"
cc -std=c11 -Wall -Werror "$src/examples/embed.c" $(pkg-config --cflags --libs rlm) \
	-Wl,-rpath,"$libdir" -o "$tmp/embed_pc"
"$tmp/embed_pc" | grep -q 'submitted: {"total":6}'

# find_package(rlm)
mkdir "$tmp/consumer"
sed "s#@EMBED_C@#$src/examples/embed.c#" "$src/tests/install/CMakeLists.txt.in" \
	> "$tmp/consumer/CMakeLists.txt"
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_RPATH="$libdir" > "$tmp/consumer.log"
cmake --build "$tmp/consumer/build" > "$tmp/consumer-build.log"
"$tmp/consumer/build/embed" | grep -q 'submitted: {"total":6}'
echo "1 passed, 0 failed"
