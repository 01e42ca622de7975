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
	t->stdout_text = strdup(r->stdout_text ? r->stdout_text : "");
	t->stderr_text = strdup(r->stderr_text ? r->stderr_text : "");
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

/* Appends a part, separated from what came before by exactly one newline. */
static void add_part(rlm_sb *sb, const char *prefix, const char *text)
{
	if (sb->len && sb->data[sb->len - 1] != '\n')
		rlm_sb_puts(sb, "\n");
	if (prefix)
		rlm_sb_puts(sb, prefix);
	rlm_sb_puts(sb, text);
}

char *rlm_tool_output_to_string(const rlm_tool_output *t)
{
	rlm_sb sb = {0};
	if (t->stdout_text && *t->stdout_text)
		add_part(&sb, NULL, t->stdout_text);
	if (t->stderr_text && *t->stderr_text)
		add_part(&sb, "[stderr]\n", t->stderr_text);
	if (t->error)
		add_part(&sb, "[error] ", t->error);
	if (t->output)
		add_part(&sb, "[output] ", t->output);
	if (!sb.len)
		rlm_sb_puts(&sb, "(no output)");
	return rlm_sb_take(&sb);
}

char *rlm_tool_output_to_json(const rlm_tool_output *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "output", t->output ? json_object_new_string(t->output) : NULL);
	json_object_object_add(o, "error", t->error ? json_object_new_string(t->error) : NULL);
	json_object_object_add(o, "metadata", json_tokener_parse(t->metadata_json));
	json_object_object_add(o, "stdout", json_object_new_string(t->stdout_text));
	json_object_object_add(o, "stderr", json_object_new_string(t->stderr_text));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}
