#!/bin/sh
# `make demo-eval`: rlm eval, offline. 20 generated long-context tasks (10 needle-in-a-haystack,
# 10 counting), run on the local backend with the replay LLM standing in for a model. Its one
# solver script, examples/eval_solver.jsonl, answers every task of both families with code that
# finds the answer in `context` inside the sandbox (nothing is scripted but the code); then the
# report, as text and as one HTML page.
set -e
BUILD=${1:-build}
RLM="$BUILD/rlm"
DEMO="$BUILD/demo-eval"
rm -rf "$DEMO"
mkdir -p "$DEMO"

echo "== 20 tasks from the generators (20,000-character contexts, fixed seed): $DEMO/tasks.jsonl"
"$RLM" eval gen sniah --n 10 --length 20000 --seed 1 >"$DEMO/tasks.jsonl"
"$RLM" eval gen count --n 10 --length 20000 --seed 1 >>"$DEMO/tasks.jsonl"
echo
echo "== rlm eval: local sandboxes, 4 at a time, replay LLM (examples/eval_solver.jsonl)"
"$RLM" eval "$DEMO/tasks.jsonl" --out "$DEMO/out" --backend local --concurrency 4 \
	--script examples/eval_solver.jsonl --set llm.match=key
echo
echo "== rlm eval report"
"$RLM" eval report "$DEMO/out" --html "$DEMO/out/report.html"
echo
cat <<TXT
One row per task is in $DEMO/out/results.jsonl, each run's trajectory in
$DEMO/out/trajectories/, and the page $DEMO/out/report.html needs nothing but a browser.
Running the same \`rlm eval\` command again resumes: finished tasks are kept, nothing reruns.

== the same eval with a real model writing the code
  OPENAI_API_KEY=... $RLM eval $DEMO/tasks.jsonl --out $DEMO/gpt --llm openai \\
      --model gpt-4o-mini --concurrency 8 --task-timeout 600
  split over a Slurm array of 4 (one shard per array task, then one report):
    sbatch --array=0-3 --wrap "$RLM eval $DEMO/tasks.jsonl --out $DEMO/gpt --llm openai ..."
    $RLM eval report $DEMO/gpt --html $DEMO/gpt/report.html
TXT
