#!/bin/sh
# `make demo`: stateful Python execution with SUBMIT on the local backend.
set -e
BUILD=${1:-build}
RLM="$BUILD/rlm"
export RLM_PLUGIN_PATH="$BUILD/plugins"
echo "== rlm backends"
"$RLM" backends
echo
echo "== rlm exec examples/demo.py (4 cells, one interpreter)"
"$RLM" exec examples/demo.py \
	--var 'log_lines=["ok", "error: disk full", "ok", "error: timeout", "error: disk full"]'
echo
echo "== the same cells as JSON, one object per cell"
"$RLM" exec --json examples/demo.py --var 'log_lines=["error: x"]' | cut -c1-160
echo
echo "== a cell that raises keeps the session alive; exit status 1"
"$RLM" exec -c 'x = 1/0' || echo "(exit status $?)"
echo
echo "== rlm smoke --backend local"
"$RLM" smoke --backend local
