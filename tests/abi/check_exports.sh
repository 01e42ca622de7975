#!/bin/sh
# check_exports.sh LIBRLM INCLUDE_DIR - librlm's dynamic symbol table holds exactly the functions
# the public headers declare with RLM_API: nothing internal leaks out, nothing public is missing.
set -eu
lib=$1
inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$tmp/exported"
# A declaration reads "RLM_API <type> [*]rlm_name(": take the name before the parenthesis.
grep -hv "^#define" "$inc"/*.h | tr '\n' ' ' | grep -o 'RLM_API [^(;]*(' | sed 's/($//; s/.*[ *]//' |
	sort -u >"$tmp/declared"
status=0
if ! [ -s "$tmp/declared" ]; then
	echo "no RLM_API declaration found under $inc" >&2
	exit 1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$extra" ]; then
	echo "exported by $lib but not declared RLM_API in $inc:" >&2
	echo "$extra" | sed 's/^/  /' >&2
	status=1
fi
if [ -n "$missing" ]; then
	echo "declared RLM_API in $inc but not exported by $lib:" >&2
	echo "$missing" | sed 's/^/  /' >&2
	status=1
fi
[ $status = 0 ] && echo "exports: $(wc -l <"$tmp/exported") symbols, all public"
exit $status
