# A small stateful session: each `# %%` cell runs in the same sandbox interpreter, so
# variables carry over from one cell to the next. Run it with:
#   rlm exec examples/demo.py --var 'log_lines=["ok", "error: disk full", "ok", "error: timeout"]'

# %% Cell 1: the injected variable is already there
print(f"{len(log_lines)} log lines received")
errors = [line for line in log_lines if line.startswith("error")]

# %% Cell 2: state from cell 1 is still here
from collections import Counter
kinds = Counter(e.split(": ", 1)[1] for e in errors)
print("errors by kind:", dict(kinds))
add_buffer("notes", f"{len(errors)} errors")

# %% Cell 3: the trailing expression's value is shown, as in a REPL
sum(kinds.values())

# %% Cell 4: SUBMIT ends the task with structured fields
SUBMIT(error_count=len(errors), kinds=dict(kinds), notes=get_buffer("notes"))
