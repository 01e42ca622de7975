#!/bin/sh
# The MCP conformance suite against `rlm mcp --http --no-auth --conformance-fixtures` on a free
# loopback port: the 2026-07-28 requirements (conformance 0.2.0-alpha.12) and the 2025-11-25
# active suite (conformance 0.1.16), each with its expected-failures baseline (a reason on
# every line). Exits 77 (skipped) when Node or the npm modules are missing.
# Usage: run_conformance.sh PATH_TO_RLM TESTS_MCP_DIR
rlm=$1
dir=$2
if ! command -v node >/dev/null 2>&1; then
	echo "SKIPPED: node is not installed (Node 20 or newer runs the conformance suite)"
	exit 77
fi
for v in 2026-07-28 2025-11-25; do
	if [ ! -f "$dir/node_modules/conformance-$v/dist/index.js" ]; then
		echo "SKIPPED: $dir/node_modules is missing the conformance suite: run \`make node-deps\`"
		exit 77
	fi
done
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
"$rlm" mcp --http --no-auth --listen 127.0.0.1:0 --port-file "$work/port" \
	--conformance-fixtures 2>"$work/server.log" &
server=$!
i=0
while [ ! -s "$work/port" ]; do
	i=$((i + 1))
	if [ $i -gt 900 ] || ! kill -0 "$server" 2>/dev/null; then
		echo "rlm mcp did not start:"; cat "$work/server.log"; exit 1
	fi
	sleep 0.1
done
url="http://127.0.0.1:$(cat "$work/port")/mcp"
cd "$work" || exit 1
status=0
# Node 20: node20/register.mjs supplies the one Node 22 API the suite imports.
echo "== conformance 0.2.0-alpha.12, --requirements 2026-07-28, against $url"
node --import "$dir/node20/register.mjs" "$dir/node_modules/conformance-2026-07-28/dist/index.js" \
	server --url "$url" --requirements 2026-07-28 --timeout 60000 \
	--expected-failures "$dir/conformance/baseline-2026-07-28.yml" -o "$work/2026" || status=1
echo "== conformance 0.1.16, --suite active (2025-11-25), against $url"
node --import "$dir/node20/register.mjs" "$dir/node_modules/conformance-2025-11-25/dist/index.js" \
	server --url "$url" --suite active \
	--expected-failures "$dir/conformance/baseline-2025-11-25.yml" -o "$work/2025" || status=1
kill -TERM "$server"
wait "$server" || { echo "rlm mcp did not stop cleanly:"; cat "$work/server.log"; status=1; }
exit $status
