/* test_tool_output.c - mapping a result to the tool-output shape, to_string and JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "rlm/tool_output.h"

static rlm_result *result_from(const char *frame_json)
{
	json_object *f = json_tokener_parse(frame_json);
	assert_non_null(f);
	rlm_result *r = rlm__result_from_frame(f);
	json_object_put(f);
	assert_non_null(r);
	return r;
}

static void error_line_becomes_error_field(void **state)
{
	(void)state;
	rlm_result *r = result_from(
	        "{\"type\":\"result\",\"stdout\":\"before\\n\",\"stderr\":\"\",\"error\":{\"type\":"
	        "\"ZeroDivisionError\",\"message\":\"division by "
	        "zero\",\"traceback\":\"Traceback...\\n"
	        "ZeroDivisionError: division by zero\\n\",\"line\":\"ZeroDivisionError: division "
	        "by "
	        "zero\"}}");
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	assert_string_equal(t->name, "python");
	assert_string_equal(t->error, "ZeroDivisionError: division by zero");
	assert_null(t->output);
	char *s = rlm_tool_output_to_string(t);
	assert_string_equal(s, "before\n[error] ZeroDivisionError: division by zero");
	free(s);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void submit_is_the_output(void **state)
{
	(void)state;
	rlm_result *r = result_from("{\"type\":\"result\",\"stdout\":\"\",\"submit\":{\"a\":1},"
	                            "\"value\":\"'ignored'\"}");
	rlm_tool_output *t = rlm_tool_output_from_result(r, "repl");
	assert_string_equal(t->output, "{\"a\":1}");
	json_object *m = json_tokener_parse(t->metadata_json);
	json_object *v;
	assert_true(json_object_object_get_ex(m, "submitted", &v) && json_object_get_boolean(v));
	json_object_put(m);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void value_is_the_output_without_submit(void **state)
{
	(void)state;
	rlm_result *r = result_from("{\"type\":\"result\",\"value\":\"42\"}");
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	char *s = rlm_tool_output_to_string(t);
	assert_string_equal(s, "[output] 42");
	free(s);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void empty_result_says_no_output(void **state)
{
	(void)state;
	rlm_result *r = result_from("{\"type\":\"result\"}");
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	char *s = rlm_tool_output_to_string(t);
	assert_string_equal(s, "(no output)");
	free(s);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void stderr_gets_its_own_header(void **state)
{
	(void)state;
	rlm_result *r =
	        result_from("{\"type\":\"result\",\"stdout\":\"out\",\"stderr\":\"warn\\n\"}");
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	char *s = rlm_tool_output_to_string(t);
	assert_string_equal(s, "out\n[stderr]\nwarn\n");
	free(s);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void synthetic_timeout_maps_with_state_lost(void **state)
{
	(void)state;
	rlm_result *r = rlm__result_synthetic("TimeoutError", "gave up", 1, 1);
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	assert_string_equal(t->error, "TimeoutError: gave up");
	char *j = rlm_tool_output_to_json(t);
	json_object *o = json_tokener_parse(j);
	json_object *meta, *v;
	assert_true(json_object_object_get_ex(o, "metadata", &meta));
	assert_true(json_object_object_get_ex(meta, "state_lost", &v) &&
	            json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "stdout", &v));
	json_object_put(o);
	free(j);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void result_json_has_every_field(void **state)
{
	(void)state;
	rlm_result *r =
	        result_from("{\"type\":\"result\",\"stdout\":\"x\",\"submit\":{\"k\":[1]}}");
	char *j = rlm_result_to_json(r);
	json_object *o = json_tokener_parse(j);
	const char *keys[] = {"stdout",    "stderr",      "error",      "submit",
	                      "value",     "timed_out",   "state_lost", "duration_ms",
	                      "truncated", "stdout_chars"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_true(json_object_object_get_ex(o, keys[i], NULL));
	json_object_put(o);
	free(j);
	rlm_result_free(r);
}

static void nul_in_output_is_kept_with_its_length(void **state)
{
	(void)state;
	rlm_result *r = result_from("{\"type\":\"result\",\"stdout\":\"a\\u0000b\","
	                            "\"stderr\":\"\\u0000\"}");
	assert_int_equal(r->stdout_len, 3);
	assert_memory_equal(r->stdout_text, "a\0b", 4);
	assert_int_equal(r->stderr_len, 1);
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	assert_int_equal(t->stdout_len, 3);
	assert_memory_equal(t->stdout_text, "a\0b", 4);
	size_t len = 0;
	char *s = rlm_tool_output_to_string_len(t, &len);
	assert_int_equal(len, 14);
	assert_memory_equal(s, "a\0b\n[stderr]\n\0", 15);
	free(s);
	char *j = rlm_tool_output_to_json(t);
	assert_non_null(strstr(j, "\"stdout\":\"a\\u0000b\""));
	assert_non_null(strstr(j, "\"stderr\":\"\\u0000\""));
	free(j);
	j = rlm_result_to_json(r);
	assert_non_null(strstr(j, "\"stdout\":\"a\\u0000b\""));
	free(j);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

static void nul_in_an_error_message_is_shown_not_cut(void **state)
{
	(void)state;
	rlm_result *r = result_from("{\"type\":\"result\",\"error\":{\"type\":\"ValueError\","
	                            "\"message\":\"bad\\u0000tail\",\"traceback\":\"\","
	                            "\"line\":\"ValueError: bad\\u0000tail\"}}");
	assert_string_equal(r->error->message, "bad\\x00tail");
	assert_string_equal(r->error->line, "ValueError: bad\\x00tail");
	rlm_result_free(r);
}

static void result_filled_in_by_hand_without_lengths_still_maps(void **state)
{
	(void)state;
	rlm_result r;
	memset(&r, 0, sizeof(r));
	r.stdout_text = (char *)"by hand\n";
	r.stderr_text = (char *)"";
	rlm_tool_output *t = rlm_tool_output_from_result(&r, NULL);
	assert_int_equal(t->stdout_len, 8);
	char *s = rlm_tool_output_to_string(t);
	assert_string_equal(s, "by hand\n");
	free(s);
	rlm_tool_output_free(t);
	char *j = rlm_result_to_json(&r);
	assert_non_null(strstr(j, "\"stdout\":\"by hand\\n\""));
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(error_line_becomes_error_field),
	        cmocka_unit_test(submit_is_the_output),
	        cmocka_unit_test(value_is_the_output_without_submit),
	        cmocka_unit_test(empty_result_says_no_output),
	        cmocka_unit_test(stderr_gets_its_own_header),
	        cmocka_unit_test(synthetic_timeout_maps_with_state_lost),
	        cmocka_unit_test(result_json_has_every_field),
	        cmocka_unit_test(nul_in_output_is_kept_with_its_length),
	        cmocka_unit_test(nul_in_an_error_message_is_shown_not_cut),
	        cmocka_unit_test(result_filled_in_by_hand_without_lengths_still_maps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
