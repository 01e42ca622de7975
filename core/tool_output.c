/* tool_output.c - maps a cell's result to the tool-output shape harnesses consume (rllm's
 * CodeToolOutput: name, output, error, metadata, stdout, stderr) and renders it. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "rlm/tool_output.h"
#include "util.h"

static char *error_text(const rlm_result *r)
{
	if (r->error && r->error->line && *r->error->line)
		return strdup(r->error->line);
	if (r->timed_out)
		return strdup("TimeoutError: the cell timed out");
	return NULL;
}

static char *metadata_json(const rlm_result *r)
{
	json_object *m = json_object_new_object();
	json_object_object_add(m, "duration_ms", json_object_new_double(r->duration_ms));
	json_object_object_add(m, "timed_out", json_object_new_boolean(r->timed_out));
	json_object_object_add(m, "state_lost", json_object_new_boolean(r->state_lost));
	json_object_object_add(m, "truncated", json_object_new_boolean(r->truncated));
	json_object_object_add(m, "stdout_chars", json_object_new_int64((int64_t)r->stdout_chars));
	json_object_object_add(m, "stderr_chars", json_object_new_int64((int64_t)r->stderr_chars));
	json_object_object_add(m, "host_calls", json_object_new_int64(r->host_calls));
	json_object_object_add(m, "submitted", json_object_new_boolean(r->submit_json != NULL));
	json_object_object_add(m, "error_type",
	                       r->error && r->error->type ? json_object_new_string(r->error->type)
	                                                  : NULL);
	char *s = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
	return s;
}

/* A copy of len bytes of text (NUL characters kept) with a NUL behind them. */
static char *dup_text(const char *text, size_t len, size_t *out_len)
{
	len = rlm__text_len(text, len);
	char *copy = malloc(len + 1);
	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	*out_len = len;
	return copy;
}

rlm_tool_output *rlm_tool_output_from_result(const rlm_result *r, const char *name)
{
	if (!r)
		return NULL;
	rlm_tool_output *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->name = strdup(name ? name : "python");
	t->output = rlm_strdup0(r->submit_json ? r->submit_json : r->value);
	t->error = error_text(r);
	t->metadata_json = metadata_json(r);
	t->stdout_text = dup_text(r->stdout_text, r->stdout_len, &t->stdout_len);
	t->stderr_text = dup_text(r->stderr_text, r->stderr_len, &t->stderr_len);
	if (!t->name || !t->metadata_json || !t->stdout_text || !t->stderr_text) {
		rlm_tool_output_free(t);
		return NULL;
	}
	return t;
}

void rlm_tool_output_free(rlm_tool_output *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->output);
	free(t->error);
	free(t->metadata_json);
	free(t->stdout_text);
	free(t->stderr_text);
	free(t);
}

/* Appends a part of len bytes, separated from what came before by exactly one newline. */
static void add_part(rlm_sb *sb, const char *prefix, const char *text, size_t len)
{
	if (sb->len && sb->data[sb->len - 1] != '\n')
		rlm_sb_puts(sb, "\n");
	if (prefix)
		rlm_sb_puts(sb, prefix);
	rlm_sb_append(sb, text, len);
}

char *rlm_tool_output_to_string_len(const rlm_tool_output *t, size_t *len)
{
	rlm_sb sb = {0};
	size_t out_len = rlm__text_len(t->stdout_text, t->stdout_len);
	size_t err_len = rlm__text_len(t->stderr_text, t->stderr_len);
	if (out_len)
		add_part(&sb, NULL, t->stdout_text, out_len);
	if (err_len)
		add_part(&sb, "[stderr]\n", t->stderr_text, err_len);
	if (t->error)
		add_part(&sb, "[error] ", t->error, strlen(t->error));
	if (t->output)
		add_part(&sb, "[output] ", t->output, strlen(t->output));
	if (!sb.len)
		rlm_sb_puts(&sb, "(no output)");
	if (len)
		*len = sb.len;
	return rlm_sb_take(&sb);
}

char *rlm_tool_output_to_string(const rlm_tool_output *t)
{
	return rlm_tool_output_to_string_len(t, NULL);
}

char *rlm_tool_output_to_json(const rlm_tool_output *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "output", t->output ? json_object_new_string(t->output) : NULL);
	json_object_object_add(o, "error", t->error ? json_object_new_string(t->error) : NULL);
	json_object_object_add(o, "metadata", json_tokener_parse(t->metadata_json));
	json_object_object_add(
	        o, "stdout",
	        json_object_new_string_len(t->stdout_text,
	                                   (int)rlm__text_len(t->stdout_text, t->stdout_len)));
	json_object_object_add(
	        o, "stderr",
	        json_object_new_string_len(t->stderr_text,
	                                   (int)rlm__text_len(t->stderr_text, t->stderr_len)));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}
