#!/bin/sh
# `cmake --install` into a scratch prefix, then build the README's example against it twice:
# with pkg-config (rlm.pc) and with find_package(rlm); both binaries must run and SUBMIT.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
libdir=$(ls -d "$tmp/prefix"/lib* | head -n 1)
test -f "$tmp/prefix/include/rlm/rlm.h"
test -f "$tmp/prefix/include/rlm/plugin.h"
ls "$libdir"/rlm/plugins/rlm-backend-local.so > /dev/null
ls "$tmp"/prefix/bin/rlm > /dev/null

# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -Wall -Werror "$src/examples/embed.c" $(pkg-config --cflags --libs rlm) \
	-Wl,-rpath,"$libdir" -o "$tmp/embed_pc"
"$tmp/embed_pc" | grep -q 'submitted: {"total":6}'

# find_package(rlm)
mkdir "$tmp/consumer"
sed "s#@EMBED_C@#$src/examples/embed.c#" "$src/tests/install/CMakeLists.txt.in" \
	> "$tmp/consumer/CMakeLists.txt"
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
	-DCMAKE_BUILD_RPATH="$libdir" > "$tmp/consumer.log"
cmake --build "$tmp/consumer/build" > "$tmp/consumer-build.log"
"$tmp/consumer/build/embed" | grep -q 'submitted: {"total":6}'
echo "1 passed, 0 failed"
