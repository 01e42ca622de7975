#!/bin/sh
# Runs one Node test file against an rlm executable, or exits 77 (skipped) saying why.
# Usage: run_node_test.sh PATH_TO_RLM TEST_FILE [node --test args]
rlm=$1
test_file=$2
shift 2
dir=$(dirname "$test_file")
if ! command -v node >/dev/null 2>&1; then
	echo "SKIPPED: node is not installed (Node 20 or newer runs the MCP client tests)"
	exit 77
fi
if [ ! -d "$dir/node_modules/@modelcontextprotocol/sdk" ]; then
	echo "SKIPPED: $dir/node_modules is missing: run \`make node-deps\` (npm ci) first"
	exit 77
fi
RLM_BIN=$rlm exec node --test --test-reporter=tap "$@" "$test_file"
