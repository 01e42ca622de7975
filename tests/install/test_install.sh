#!/bin/sh
# `cmake --install` into a scratch prefix, then MOVE the install somewhere else (an install must
# not depend on where it was made, nor on the build tree), and check that:
# - the installed `rlm` starts with no RPATH or library path set by this test (its own RUNPATH
#   is $ORIGIN-relative), lists the plugins of the moved install and none of the build tree,
#   and runs a cell on the local backend;
# - the README's example builds against the moved install with pkg-config (rlm.pc) and with
#   find_package(rlm), and both binaries run and SUBMIT (a consumer may set its own rpath);
# - the author's kit: rlm-conformance (--help, --list, --filter, --skip), the backend template
#   built out of tree with pkg-config rlm-plugin and with rlm::plugin, not linked to librlm,
#   passing the installed suite (bombs skipped), and the mock installed as source only.
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

# The author's kit: rlm-conformance, the backend template and the mock as sources (the mock is
# not a plugin users see), rlm-plugin.pc and rlm::plugin (headers only).
conf="$prefix/bin/rlm-conformance"
docs="$prefix/share/doc/rlm/examples"
"$conf" --help > "$tmp/conf-help.txt"
for opt in --list --skip --filter --plugin --config --bombs --with; do
	grep -q -- "$opt" "$tmp/conf-help.txt" || fail "rlm-conformance --help does not document $opt"
done
test -f "$docs/mock-backend/mock_backend.c" || fail "the mock backend's source is not installed"
! ls "$libdir"/rlm/plugins/rlm-backend-mock.so 2> /dev/null || fail "the mock is an installed plugin"
test "$("$conf" --list | wc -l)" -gt 40 || fail "rlm-conformance --list lists too few cases"
test "$("$conf" --list --filter bomb)" = "test_memory_bomb_is_memory_error_or_state_lost
test_fork_bomb_is_contained" || fail "--filter bomb (a substring) does not select the two bombs"
test "$("$conf" --list --filter 'test_*_bomb_*' --skip test_fork_bomb_is_contained)" = \
	test_memory_bomb_is_memory_error_or_state_lost || fail "--filter GLOB --skip NAME"
rc=0
"$conf" --list --skip no_such_case > /dev/null 2>&1 || rc=$?
test $rc -eq 2 || fail "--skip with a pattern that matches no case exits $rc, not 2"

# The template, copied out of the install, built both ways; neither .so needs librlm.
cp -r "$docs/backend-template" "$tmp/tpl-make"
cp -r "$docs/backend-template" "$tmp/tpl-cmake"
make -C "$tmp/tpl-make" CFLAGS="-O2 -Werror" > "$tmp/tpl-make.log" 2>&1 ||
	{ cat "$tmp/tpl-make.log"; fail "the template does not build with pkg-config rlm-plugin"; }
cmake -S "$tmp/tpl-cmake" -B "$tmp/tpl-cmake/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_FLAGS=-Werror > "$tmp/tpl-cmake.log" 2>&1 &&
	cmake --build "$tmp/tpl-cmake/build" >> "$tmp/tpl-cmake.log" 2>&1 ||
	{ cat "$tmp/tpl-cmake.log"; fail "the template does not build with find_package(rlm)"; }
for so in "$tmp/tpl-make/rlm-backend-template.so" "$tmp/tpl-cmake/build/rlm-backend-template.so"; do
	readelf -d "$so" > "$tmp/tpl-dynamic.txt"
	! grep -q 'NEEDED.*librlm' "$tmp/tpl-dynamic.txt" || fail "$so links librlm"
	nm -D --defined-only "$so" | grep -q ' T rlm_plugin_entry$' || fail "$so exports no entry"
done

# The installed suite passes on both; the bombs are skipped (the template declares no
# RLM_CAP_CONTAINS_BOMBS), and no process of its sandboxes outlives them.
run_conf() {
	env -u LD_LIBRARY_PATH -u RLM_PLUGIN_PATH -u RLM_CONFIG -u RLM_BACKEND \
		HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_DATA_HOME="$tmp/home/data" \
		"$conf" "$@"
}
run_conf --plugin "$tmp/tpl-cmake/build/rlm-backend-template.so" > "$tmp/tpl-conf.txt" 2>&1 ||
	{ cat "$tmp/tpl-conf.txt"; fail "the installed rlm-conformance fails the template"; }
grep -q 'SKIPPED \] test_fork_bomb_is_contained' "$tmp/tpl-conf.txt" ||
	fail "the fork bomb was not skipped for a backend without RLM_CAP_CONTAINS_BOMBS"
grep -q 'no process of a closed sandbox was left running' "$tmp/tpl-conf.txt" ||
	fail "no leftover-process check"
(cd "$tmp/tpl-make" && run_conf --plugin ./rlm-backend-template.so \
	--filter test_exec_keeps_state_between_cells) > "$tmp/tpl-conf2.txt" 2>&1 ||
	{ cat "$tmp/tpl-conf2.txt"; fail "the pkg-config build fails the suite"; }
grep -q 'PASSED  \] 1 test' "$tmp/tpl-conf2.txt" || fail "--filter NAME did not run one case"
echo "1 passed, 0 failed"
