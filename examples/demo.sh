#!/bin/sh
# `make demo`: a real RLM loop, offline. A deterministic 5 MB server log is the context; the
# "model" is the replay LLM answering from examples/rlm_demo.jsonl, whose code really runs in
# the local sandbox against the log (the counts are computed, not scripted). Then a short
# look at `rlm exec`, and how to put a real model in the replay's place.
set -e
BUILD=${1:-build}
RLM="$BUILD/rlm"
DEMO="$BUILD/demo"
QUESTION="How many errors are in this server log? Break them down by kind and service, and say when they peaked."
mkdir -p "$DEMO"

echo "== a 5 MB server log, generated from a fixed seed: $DEMO/server.log"
python3 examples/make_log.py "$DEMO/server.log"
ls -l "$DEMO/server.log" | awk '{print "   " $5 " bytes"}'
echo
echo "== rlm run: local sandbox, replay LLM (examples/rlm_demo.jsonl)"
echo "   task: $QUESTION"
echo
"$RLM" run -q "$QUESTION" --context "$DEMO/server.log" \
	--llm replay --script examples/rlm_demo.jsonl --trajectory "$DEMO/trajectory.jsonl"
echo
echo "The log was never in a prompt: it was the REPL variable \`context\`, and the answer above"
echo "was computed by the scripted turns' Python in the sandbox. Every turn (prompt, response,"
echo "code, output, timings, usage) is in $DEMO/trajectory.jsonl, in the JSONL format that"
echo "alexzhang13/rlm's visualizer reads."
echo
echo "== rlm exec: stateful cells, no LLM (examples/demo.py)"
"$RLM" exec examples/demo.py \
	--var 'log_lines=["ok", "error: disk full", "ok", "error: timeout", "error: disk full"]'
echo
cat <<TXT
== the same run with a real model writing the code
  OpenAI (or any OpenAI-compatible server):
    OPENAI_API_KEY=... $RLM run --llm openai --model gpt-4o-mini \\
        -q "$QUESTION" --context $DEMO/server.log --trajectory $DEMO/
  a local vLLM / Ollama / llama.cpp server (no key needed):
    $RLM run --llm openai --model qwen2.5-coder:7b --set llm.base_url=http://localhost:11434/v1 \\
        -q "..." --context $DEMO/server.log
  Anthropic:
    ANTHROPIC_API_KEY=... $RLM run --llm anthropic --model claude-sonnet-4-5 -q "..." --context ...
  replay a recorded run offline:
    $RLM run --script $DEMO/trajectory.jsonl -q "$QUESTION" --context $DEMO/server.log
TXT
