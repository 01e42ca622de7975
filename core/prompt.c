/* prompt.c - the conversation with the model: what it is told (system prompt, task, nudges,
 * the last call), how a cell's result is shown to it (one policy, documented in the README),
 * and how its code blocks are read out of its answers. */
#include "prompt.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rlm/tool_output.h"
#include "util.h"

/* How much of `context` the first message quotes. */
#define CONTEXT_PREVIEW_CHARS 240

char *rlm__system_prompt(const struct rlm_prompt_params *p)
{
	rlm_sb sb = {0};
	rlm_sb_puts(&sb,
	            "You are a Recursive Language Model (RLM). You solve a task by writing Python "
	            "that runs in a persistent REPL, reading what it prints, and writing more, "
	            "until you can give the answer.\n\n");
	if (p->depth > 0)
		rlm_sb_printf(&sb,
		              "You are a child RLM at depth %d: another RLM handed you this task "
		              "and will read your answer.\n\n",
		              p->depth);
	rlm_sb_printf(
	        &sb,
	        "HOW A TURN WORKS\n"
	        "- Put code in fenced blocks that open with ```repl (or ```python) and close with "
	        "a line holding only ```. Every such block in your reply runs, in order, in one "
	        "namespace; variables, imports and functions stay for the whole task.\n"
	        "- You see only what the code prints, its errors, and the value of a last bare "
	        "expression. Each block's output is cut to %ld characters (the start and the end "
	        "are kept), so print counts, summaries and short slices, not whole documents.\n"
	        "- You have %ld turns in all. A reply without a code block uses one up.\n\n",
	        p->max_output_chars, p->max_iterations);
	rlm_sb_puts(
	        &sb,
	        "WHAT THE REPL GIVES YOU\n"
	        "- `context`: the input of the task. It may be far larger than you could read at "
	        "once and it is not in this conversation (only a short description is). Look at "
	        "it with code: type, length, a few slices; then search, split, filter, count.\n"
	        "- `llm_query(prompt, model=None)` -> str: asks a language model one question. "
	        "Use it on pieces small enough to read (up to a few tens of thousands of "
	        "characters) to classify, extract or summarise what plain code cannot.\n"
	        "- `llm_query_batched(prompts, model=None)` -> list of str: many prompts at once, "
	        "answered concurrently, in the same order; far faster than a loop of llm_query. A "
	        "prompt that fails comes back as a string starting with \"[ERROR]\" while the "
	        "others still answer.\n");
	if (p->can_recurse)
		rlm_sb_puts(&sb,
		            "- `rlm_query(prompt, context=None)` -> str: hands a sub-task to a "
		            "child RLM like you, with a REPL namespace of its own where "
		            "`context` is what you pass, and returns its answer. Use it for "
		            "sub-tasks that need several steps of their own.\n");
	else
		rlm_sb_puts(&sb, "- `rlm_query(prompt, context=None)` -> str: at this depth it is "
		                 "a single llm_query (the context, if any, is appended to the "
		                 "prompt); prefer llm_query.\n");
	if (p->tools && *p->tools)
		rlm_sb_printf(&sb,
		              "- Host tools: functions that run outside the sandbox, called like "
		              "any Python function; arguments and results must be JSON values, "
		              "and a failure raises RuntimeError:\n%s",
		              p->tools);
	rlm_sb_printf(
	        &sb,
	        "- `add_buffer(name, value)`, `get_buffer(name)`, `clear_buffer(name=None)`: named "
	        "lists for notes and partial results.\n"
	        "- `SUBMIT(answer=...)`: ends the task; `answer` is your final answer (other "
	        "keyword fields are allowed and come back as JSON). Call it from code once you "
	        "have checked the result.\n\n"
	        "BUDGET\n"
	        "- llm_query, every prompt of llm_query_batched and every model call of a child "
	        "RLM share %ld calls for the whole task. Past that they raise RuntimeError: "
	        "finish with plain Python.\n\n"
	        "A GOOD WAY TO WORK\n"
	        "1. Look first: print the type and length of `context` and a few short slices.\n"
	        "2. Plan what plain code can do and what needs a model; split big inputs into "
	        "chunks a model can read.\n"
	        "3. Work in steps, keep results in variables, print what you need to check.\n"
	        "4. Check the answer against the data, then SUBMIT(answer=...).\n\n"
	        "For example:\n"
	        "```repl\n"
	        "print(type(context), len(context))\n"
	        "print(context[:500])\n"
	        "```\n",
	        p->max_llm_calls);
	return rlm_sb_take(&sb);
}

size_t rlm__utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

/* Byte offset of the start of character number `chars` (or len). */
static size_t utf8_offset(const char *s, size_t len, size_t chars)
{
	size_t i = 0, seen = 0;
	for (; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (seen == chars)
				return i;
			seen++;
		}
	}
	return len;
}

char *rlm__task_message(const char *task, const struct rlm_context_info *ctx)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "TASK:\n%s\n\n", task ? task : "");
	if (!ctx || !ctx->type) {
		rlm_sb_puts(&sb, "There is no `context` for this task (it is None).\n\nStart with "
		                 "a ```repl block.");
		return rlm_sb_take(&sb);
	}
	int is_str = !strcmp(ctx->type, "str");
	rlm_sb_printf(&sb, "The REPL holds the input in `context`: a %s of %zu %s%s", ctx->type,
	              ctx->length, is_str ? "character" : "item", ctx->length == 1 ? "" : "s");
	if (is_str)
		rlm_sb_printf(&sb, " in %zu line%s", ctx->lines, ctx->lines == 1 ? "" : "s");
	rlm_sb_puts(&sb, ".\n");
	if (ctx->head && ctx->head_len) {
		size_t cut = utf8_offset(ctx->head, ctx->head_len, CONTEXT_PREVIEW_CHARS);
		const char *more = cut < ctx->head_len ? " ..." : "";
		if (is_str) {
			json_object *q = json_object_new_string_len(ctx->head, (int)cut);
			rlm_sb_printf(
			        &sb, "It starts with (JSON-quoted): %s%s\n",
			        json_object_to_json_string_ext(
			                q, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			        more);
			json_object_put(q);
		} else {
			rlm_sb_printf(&sb, "As JSON it starts with: %.*s%s\n", (int)cut, ctx->head,
			              more);
		}
	}
	rlm_sb_puts(&sb, "Nothing more of it is in this conversation: inspect it with code.\n\n"
	                 "Start by looking at `context` in a ```repl block.");
	return rlm_sb_take(&sb);
}

const char *rlm__nudge_message(void)
{
	return "Your reply had no code block, so nothing ran. Write Python in a ```repl block "
	       "(closed by a line holding only ```) to work on the task, and call "
	       "SUBMIT(answer=...) from code when you are done.";
}

char *rlm__fallback_message(long iterations)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb,
	              "You have used all %ld turns: no more code will run. From what the REPL "
	              "showed above, give your final answer to the task now, as plain text, "
	              "without code blocks.",
	              iterations);
	return rlm_sb_take(&sb);
}

char *rlm__truncate_middle(const char *text, long max_chars)
{
	size_t len = strlen(text);
	size_t total = rlm__utf8_chars(text, len);
	if (max_chars <= 0 || total <= (size_t)max_chars)
		return strdup(text);
	size_t head = (size_t)max_chars / 2, tail = (size_t)max_chars - head;
	size_t head_end = utf8_offset(text, len, head);
	size_t tail_start = utf8_offset(text, len, total - tail);
	rlm_sb sb = {0};
	rlm_sb_append(&sb, text, head_end);
	rlm_sb_printf(&sb, "\n... [%zu of %zu characters omitted] ...\n", total - head - tail,
	              total);
	rlm_sb_append(&sb, text + tail_start, len - tail_start);
	return rlm_sb_take(&sb);
}

char *rlm__format_result(const rlm_result *r, long max_chars)
{
	rlm_tool_output *t = rlm_tool_output_from_result(r, "python");
	char *text = t ? rlm_tool_output_to_string(t) : NULL;
	rlm_tool_output_free(t);
	if (!text)
		return NULL;
	char *body;
	if (!strcmp(text, "(no output)"))
		body = strdup("(no output: the code ran and printed nothing; print() what you want "
		              "to see)");
	else
		body = rlm__truncate_middle(text, max_chars);
	free(text);
	if (!body)
		return NULL;
	rlm_sb sb = {0};
	rlm_sb_puts(&sb, body);
	free(body);
	if (r->truncated)
		rlm_sb_printf(&sb,
		              "\n[output cut by the sandbox: stdout had %zu characters and stderr "
		              "%zu; print less, or slices]",
		              r->stdout_chars, r->stderr_chars);
	if (r->state_lost)
		rlm_sb_puts(&sb, "\n[the interpreter was restarted: variables defined earlier are "
		                 "gone]");
	return rlm_sb_take(&sb);
}

/* ---- code blocks ---- */

static int our_language(const char *word, size_t len)
{
	static const char *const langs[] = {"python", "py", "python3", "repl"};
	for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++)
		if (strlen(langs[i]) == len && !strncasecmp(word, langs[i], len))
			return 1;
	return 0;
}

/* Length of line without trailing whitespace (CR included). */
static size_t trimmed_len(const char *line, size_t len)
{
	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	return len;
}

static size_t indent_of(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i;
}

static int is_bare_fence(const char *rest, size_t len)
{
	return trimmed_len(rest, len) == 3 && !memcmp(rest, "```", 3);
}

/* An opening fence (after indentation): ``` then an optional language word. Sets *ours. */
static int is_opening_fence(const char *rest, size_t len, int *ours)
{
	if (len < 3 || memcmp(rest, "```", 3) || (len > 3 && rest[3] == '`'))
		return 0;
	const char *w = rest + 3;
	size_t wl = 0;
	while (3 + wl < len && !isspace((unsigned char)w[wl]) && w[wl] != '`')
		wl++;
	*ours = wl && our_language(w, wl);
	return 1;
}

struct block_list {
	char **items;
	int n, cap;
};

static int push_block(struct block_list *bl, rlm_sb *code)
{
	size_t i = 0;
	while (i < code->len && isspace((unsigned char)code->data[i]))
		i++;
	if (i == code->len) { /* nothing but whitespace: nothing to run */
		rlm_sb_free(code);
		return 0;
	}
	if (bl->n == bl->cap) {
		int cap = bl->cap ? bl->cap * 2 : 4;
		char **p = realloc(bl->items, (size_t)cap * sizeof(*p));
		if (!p)
			return -1;
		bl->items = p;
		bl->cap = cap;
	}
	char *text = rlm_sb_take(code);
	if (!text)
		text = strdup("");
	if (!text)
		return -1;
	bl->items[bl->n++] = text;
	return 0;
}

int rlm__extract_code_blocks(const char *text, char ***blocks)
{
	struct block_list bl = {0};
	rlm_sb code = {0};
	int inside = 0, ours = 0, nest = 0, failed = 0;
	size_t open_indent = 0;
	*blocks = NULL;
	for (const char *line = text; line && *line && !failed;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		size_t ind = indent_of(line, len);
		const char *rest = line + ind;
		size_t rlen = len - ind;
		int lang_ours = 0;
		if (!inside) {
			if (is_opening_fence(rest, rlen, &lang_ours)) {
				inside = 1;
				ours = lang_ours;
				nest = 0;
				open_indent = ind;
				code.len = 0;
			}
		} else if (is_bare_fence(rest, rlen) && nest == 0 && ind == open_indent) {
			inside = 0;
			if (ours && push_block(&bl, &code))
				failed = 1;
		} else {
			/* Content; a fenced block opened inside it nests until its bare fence. */
			if (is_bare_fence(rest, rlen))
				nest -= nest > 0;
			else if (is_opening_fence(rest, rlen, &lang_ours))
				nest++;
			if (ours) {
				size_t drop = ind < open_indent ? ind : open_indent;
				if (rlm_sb_append(&code, line + drop, len - drop) ||
				    rlm_sb_append(&code, "\n", 1))
					failed = 1;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	if (!failed && inside && ours && push_block(&bl, &code)) /* unclosed: runs to the end */
		failed = 1;
	rlm_sb_free(&code);
	if (failed) {
		rlm__code_blocks_free(bl.items, bl.n);
		return -1;
	}
	*blocks = bl.items;
	return bl.n;
}

void rlm__code_blocks_free(char **blocks, int n)
{
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
}
