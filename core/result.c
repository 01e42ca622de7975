/* result.c - the result of one cell: built from the driver's result frame, freed, and
 * rendered as JSON. */
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "util.h"

static char *dup_member(json_object *obj, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return strdup(json_object_get_string(v));
}

static long long int_member(json_object *obj, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	return json_object_get_int64(v);
}

static rlm_exec_error *error_from_object(json_object *e)
{
	if (!e || !json_object_is_type(e, json_type_object))
		return NULL;
	rlm_exec_error *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->type = dup_member(e, "type");
	x->message = dup_member(e, "message");
	x->traceback = dup_member(e, "traceback");
	x->line = dup_member(e, "line");
	if (!x->type)
		x->type = strdup("Error");
	if (!x->message)
		x->message = strdup("");
	if (!x->traceback)
		x->traceback = strdup("");
	if (!x->line)
		x->line = strdup(x->type ? x->type : "Error");
	return x;
}

rlm_result *rlm__result_from_frame(json_object *f)
{
	rlm_result *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stdout_text = dup_member(f, "stdout");
	r->stderr_text = dup_member(f, "stderr");
	if (!r->stdout_text)
		r->stdout_text = strdup("");
	if (!r->stderr_text)
		r->stderr_text = strdup("");
	r->stdout_chars = (size_t)int_member(f, "stdout_chars");
	r->stderr_chars = (size_t)int_member(f, "stderr_chars");
	r->truncated = int_member(f, "truncated") != 0;
	r->timed_out = int_member(f, "timed_out") != 0;
	json_object *v = NULL;
	if (json_object_object_get_ex(f, "error", &v))
		r->error = error_from_object(v);
	if (json_object_object_get_ex(f, "submit", &v) && !json_object_is_type(v, json_type_null))
		r->submit_json = strdup(json_object_to_json_string_ext(
		        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	r->value = dup_member(f, "value");
	if (json_object_object_get_ex(f, "locals", &v) && json_object_is_type(v, json_type_object))
		r->locals_json = strdup(json_object_to_json_string_ext(
		        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	return r;
}

rlm_result *rlm__result_synthetic(const char *type, const char *message, int timed_out,
                                  int state_lost)
{
	rlm_result *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stdout_text = strdup("");
	r->stderr_text = strdup("");
	r->error = calloc(1, sizeof(*r->error));
	if (r->error) {
		r->error->type = strdup(type);
		r->error->message = strdup(message);
		r->error->traceback = strdup("");
		rlm_sb line = {0};
		rlm_sb_printf(&line, "%s: %s", type, message);
		r->error->line = rlm_sb_take(&line);
	}
	r->timed_out = timed_out;
	r->state_lost = state_lost;
	return r;
}

void rlm_result_free(rlm_result *r)
{
	if (!r)
		return;
	free(r->stdout_text);
	free(r->stderr_text);
	if (r->error) {
		free(r->error->type);
		free(r->error->message);
		free(r->error->traceback);
		free(r->error->line);
		free(r->error);
	}
	free(r->submit_json);
	free(r->value);
	free(r->locals_json);
	free(r);
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *rlm__result_to_object(const rlm_result *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "stdout",
	                       json_object_new_string(r->stdout_text ? r->stdout_text : ""));
	json_object_object_add(o, "stderr",
	                       json_object_new_string(r->stderr_text ? r->stderr_text : ""));
	json_object_object_add(o, "stdout_chars", json_object_new_int64((int64_t)r->stdout_chars));
	json_object_object_add(o, "stderr_chars", json_object_new_int64((int64_t)r->stderr_chars));
	json_object_object_add(o, "truncated", json_object_new_boolean(r->truncated));
	json_object *e = NULL;
	if (r->error) {
		e = json_object_new_object();
		json_object_object_add(e, "type", str_or_null(r->error->type));
		json_object_object_add(e, "message", str_or_null(r->error->message));
		json_object_object_add(e, "traceback", str_or_null(r->error->traceback));
		json_object_object_add(e, "line", str_or_null(r->error->line));
	}
	json_object_object_add(o, "error", e);
	json_object *submit = r->submit_json ? json_tokener_parse(r->submit_json) : NULL;
	json_object_object_add(o, "submit", submit);
	json_object_object_add(o, "value", str_or_null(r->value));
	json_object_object_add(o, "timed_out", json_object_new_boolean(r->timed_out));
	json_object_object_add(o, "state_lost", json_object_new_boolean(r->state_lost));
	json_object_object_add(o, "duration_ms", json_object_new_double(r->duration_ms));
	json_object_object_add(o, "host_calls", json_object_new_int64(r->host_calls));
	return o;
}

char *rlm_result_to_json(const rlm_result *r)
{
	if (!r)
		return NULL;
	json_object *o = rlm__result_to_object(r);
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}
