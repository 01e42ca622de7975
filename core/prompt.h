/* prompt.h - the conversation with the model: the system prompt, the messages the loop adds
 * (task, nudge, REPL output, last call), the one policy that formats a cell's result for the
 * model, and the extraction of code blocks from its answers. */
#ifndef RLM_PROMPT_H
#define RLM_PROMPT_H

#include <stddef.h>

#include "rlm/interp.h"

struct rlm_prompt_params {
	long max_output_chars; /* what one REPL output may show */
	long max_iterations;
	long max_llm_calls;
	int depth;         /* of the RLM the prompt is for */
	int can_recurse;   /* rlm_query starts a child (else it is a plain llm_query) */
	const char *tools; /* the host tools, one "- `name`: description" line each, or NULL */
};

/* The system prompt. Caller frees. */
char *rlm__system_prompt(const struct rlm_prompt_params *p);

/* What the model is told about `context`, computed on the host. */
struct rlm_context_info {
	const char *type; /* Python type name: "str", "dict", "list", ..., NULL: no context */
	size_t length;    /* characters for str, items for containers */
	size_t lines;     /* for str */
	const char *head; /* the first characters (UTF-8), NULL for none */
	size_t head_len;  /* bytes of head */
};

/* The first user message: the task and a short description of `context`. Caller frees. */
char *rlm__task_message(const char *task, const struct rlm_context_info *ctx);

/* Said when an answer has no code block. Static. */
const char *rlm__nudge_message(void);

/* Asked once max_iterations has run out. Caller frees. */
char *rlm__fallback_message(long iterations);

/* One cell's result as the model sees it, by one policy: rlm_tool_output_to_string (stdout,
 * "[stderr]", "[error]", "[output]"), a notice when the interpreter timed out or restarted,
 * a hint in place of "(no output)", a note with the full counts when the sandbox capped the
 * output, and the whole cut to max_chars characters, head and tail kept with the number of
 * characters left out. Caller frees; NULL when out of memory. */
char *rlm__format_result(const rlm_result *r, long max_chars);

/* Cuts text to max_chars characters (UTF-8 aware): the first and last halves kept around
 * "\n... [K of N characters omitted] ...\n". A copy when it fits. Caller frees. */
char *rlm__truncate_middle(const char *text, long max_chars);

/* Counts characters (UTF-8 sequences) in len bytes. */
size_t rlm__utf8_chars(const char *s, size_t len);

/* The code blocks of an answer: fenced with ```python, ```py, ```python3 or ```repl (any
 * case), several per answer, in order. A fence closes only at a line that is exactly ```
 * indented like the opening one; a fenced block opened inside (```lang ... ```), as in a
 * string holding markdown, nests. Blocks fenced with another language are skipped whole. An
 * unclosed block runs to the end. The opening's indentation is removed from every line.
 * Returns the count (>= 0) and sets *blocks (free with rlm__code_blocks_free), or -1 when out
 * of memory. */
int rlm__extract_code_blocks(const char *text, char ***blocks);
void rlm__code_blocks_free(char **blocks, int n);

#endif
