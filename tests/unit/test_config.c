/* test_config.c - unit tests of the layered configuration (core/config.c): defaults, merging,
 * files, environment, --set overrides, validation messages and plugin option sections. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

/* cmocka needs these four first; a separate block keeps clang-format's include sorting off it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

/* Every variable the config reads, cleared around each test so the runner's environment
 * cannot leak in. */
static const char *const config_vars[] = {
        "RLM_CONFIG",      "RLM_BACKEND",     "RLM_PLUGIN_PATH",    "RLM_EXECUTE_TIMEOUT_S",
        "RLM_LOG_LEVEL",   "DAYTONA_API_URL", "MODAL_SERVER_URL",   "XDG_CONFIG_HOME",
        "DAYTONA_API_KEY", "MODAL_TOKEN_ID",  "MODAL_TOKEN_SECRET", NULL,
};

static int clear_env(void **state)
{
	const char *const *var;

	(void)state;
	for (var = config_vars; *var; var++)
		unsetenv(*var);
	return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

static rlm_config *new_config(void)
{
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;

	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	assert_non_null(cfg);
	return cfg;
}

static void assert_json_equal(const rlm_config *cfg, const char *key, const char *expected)
{
	char *json = rlm_config_get_json(cfg, key);

	if (!json || strcmp(json, expected) != 0)
		fail_msg("%s: expected %s, got %s", key, expected, json ? json : "(absent)");
	rlm_free(json);
}

/* A scratch directory under /tmp; remove_temp_dir deletes the files the test made in it. */
static void make_temp_dir(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/rlm_test_config_XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const char *text, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void remove_temp_dir(const char *dir, const char *const *names)
{
	char path[PATH_MAX];

	for (; *names; names++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *names);
		remove(path);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* ---- Defaults and merging ---- */

static void test_defaults_present(void **state)
{
	rlm_config *cfg = new_config();

	(void)state;
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "local");
	assert_string_equal(rlm_config_get_string(cfg, "log_level", NULL), "warn");
	assert_json_equal(cfg, "plugin_path", "[]");
	assert_json_equal(cfg, "llm.provider", "null");
	assert_json_equal(cfg, "sub_llm.headers", "{}");
	assert_json_equal(cfg, "backends", "{}");
	assert_true(rlm_config_get_number(cfg, "limits.execute_timeout_s", 0) == 300);
	assert_true(rlm_config_get_number(cfg, "limits.hard_deadline_grace_s", 0) == 5);
	assert_true(rlm_config_get_number(cfg, "limits.start_timeout_s", 0) == 120);
	assert_true(rlm_config_get_number(cfg, "limits.max_output_chars", 0) == 20000);
	assert_true(rlm_config_get_number(cfg, "limits.max_iterations", 0) == 20);
	assert_true(rlm_config_get_number(cfg, "limits.max_llm_calls", 0) == 100);
	assert_true(rlm_config_get_number(cfg, "limits.max_depth", 0) == 1);
	assert_true(rlm_config_get_number(cfg, "limits.llm_call_timeout_s", 0) == 60);
	assert_true(rlm_config_get_number(cfg, "limits.llm_concurrency", 0) == 8);
	rlm_config_free(cfg);
}

static void test_validate_accepts_defaults(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_validate(cfg, &err), 0);
	rlm_config_free(cfg);
}

static void test_merge_overrides_scalar(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"backend\":\"daytona\"}", "a.json", &err),
	                 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "daytona");
	rlm_config_free(cfg);
}

static void test_merge_nested_keeps_siblings(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"limits\":{\"max_iterations\":30}}", "a.json", &err),
	        0);
	assert_true(rlm_config_get_number(cfg, "limits.max_iterations", 0) == 30);
	assert_true(rlm_config_get_number(cfg, "limits.max_llm_calls", 0) == 100);
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"llm\":{\"headers\":{\"A\":\"1\"}}}", "a.json", &err),
	        0);
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"llm\":{\"headers\":{\"B\":\"2\"}}}", "b.json", &err),
	        0);
	assert_json_equal(cfg, "llm.headers", "{\"A\":\"1\",\"B\":\"2\"}");
	rlm_config_free(cfg);
}

static void test_merge_replaces_arrays(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"plugin_path\":[\"/a\",\"/b\"]}", "1", &err),
	                 0);
	assert_int_equal(rlm_config_merge_json(cfg, "{\"plugin_path\":[\"/c\"]}", "2", &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/c\"]");
	rlm_config_free(cfg);
}

static void test_merge_unknown_key_suggests_nearest(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"limits\":{\"max_iteration\":5}}", "rlm.json", &err),
	        RLM_ECONFIG);
	assert_int_equal(err.code, RLM_ECONFIG);
	assert_string_equal(err.message, "rlm.json: unknown key \"limits.max_iteration\" "
	                                 "(did you mean \"limits.max_iterations\"?)");
	rlm_config_free(cfg);
}

static void test_merge_key_in_wrong_section_suggests_full_path(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"max_iterations\":5}", "rlm.json", &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "did you mean \"limits.max_iterations\"?");
	rlm_config_free(cfg);
}

static void test_merge_unknown_key_far_from_all_lists_known_keys(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"zzzzzzzzzzzz\":1}", "x", &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "unknown key \"zzzzzzzzzzzz\"");
	assert_contains(err.message, "known keys: backend, plugin_path");
	rlm_config_free(cfg);
}

static void test_merge_error_leaves_config_unchanged(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char *before, *after;

	(void)state;
	before = rlm_config_get_json(cfg, NULL);
	/* The valid keys come first, so a merge in place would already have applied them. */
	assert_int_equal(rlm_config_merge_json(cfg,
	                                       "{\"backend\":\"modal\",\"limits\":{\"max_depth\":3,"
	                                       "\"bogus\":1}}",
	                                       "rlm.json", &err),
	                 RLM_ECONFIG);
	after = rlm_config_get_json(cfg, NULL);
	assert_string_equal(before, after);
	rlm_free(before);
	rlm_free(after);
	rlm_config_free(cfg);
}

static void test_merge_type_error_names_key_and_origin(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"limits\":{\"max_depth\":-1}}", "f.json", &err),
	        RLM_ECONFIG);
	assert_string_equal(
	        err.message,
	        "f.json: \"limits.max_depth\" must be a whole number from 0 to 64, got -1");
	rlm_config_free(cfg);
}

static void test_merge_zero_max_depth_accepted(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"limits\":{\"max_depth\":0}}", "f", &err),
	                 0);
	assert_true(rlm_config_get_number(cfg, "limits.max_depth", -1) == 0);
	rlm_config_free(cfg);
}

static void test_merge_backend_section_must_be_object(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"backends\":{\"local\":5}}", "f", &err),
	                 RLM_ECONFIG);
	assert_string_equal(err.message, "f: \"backends.local\" must be an object, got 5");
	rlm_config_free(cfg);
}

static void test_merge_backend_section_keys_are_free_form(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(
	                         cfg, "{\"backends\":{\"local\":{\"anything\":[1,2]}}}", "f", &err),
	                 0);
	assert_json_equal(cfg, "backends.local.anything", "[1,2]");
	rlm_config_free(cfg);
}

static void test_merge_log_level_must_be_known(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"log_level\":\"loud\"}", "f", &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "one of error, warn, info, debug");
	rlm_config_free(cfg);
}

static void test_merge_top_level_not_object(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "[1]", "api", &err), RLM_ECONFIG);
	assert_contains(err.message, "api: the top level must be a JSON object, got array");
	rlm_config_free(cfg);
}

/* ---- Files ---- */

static void test_load_file_merges(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX];
	const char *const files[] = {"rlm.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "rlm.json",
	           "{\n  \"backend\": \"modal\",\n  \"llm\": {\"model\": \"m\"}\n}\n", path,
	           sizeof(path));
	assert_int_equal(rlm_config_load_file(cfg, path, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "modal");
	assert_string_equal(rlm_config_get_string(cfg, "llm.model", NULL), "m");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_load_file_invalid_json_reports_line_and_column(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX];
	const char *const files[] = {"bad.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "bad.json", "{\n  \"backend\": \"local\"\n  \"log_level\": \"info\"\n}\n",
	           path, sizeof(path));
	assert_int_equal(rlm_config_load_file(cfg, path, &err), RLM_ECONFIG);
	assert_contains(err.message, path);
	assert_contains(err.message, "invalid JSON at line 3");
	assert_contains(err.message, "separator");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_load_file_missing(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_load_file(cfg, "/nonexistent/rlm.json", &err), RLM_ENOTFOUND);
	assert_contains(err.message, "/nonexistent/rlm.json");
	assert_contains(err.message, "No such file or directory");
	rlm_config_free(cfg);
}

static void test_load_file_directory_is_io_error(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_load_file(cfg, "/tmp", &err), RLM_EIO);
	assert_contains(err.message, "/tmp");
	rlm_config_free(cfg);
}

static void test_load_file_top_level_not_object(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX];
	const char *const files[] = {"list.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "list.json", "[\"local\"]\n", path, sizeof(path));
	assert_int_equal(rlm_config_load_file(cfg, path, &err), RLM_ECONFIG);
	assert_contains(err.message, "top level must be a JSON object, got array");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_load_file_unknown_key_names_file(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX], expected[PATH_MAX + 64];
	const char *const files[] = {"rlm.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "rlm.json", "{\"bakend\":\"local\"}", path, sizeof(path));
	assert_int_equal(rlm_config_load_file(cfg, path, &err), RLM_ECONFIG);
	snprintf(expected, sizeof(expected),
	         "%s: unknown key \"bakend\" (did you mean \"backend\"?)", path);
	assert_string_equal(err.message, expected);
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

/* ---- --set ---- */

static void test_set_json_value(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "limits.max_iterations", "42", &err), 0);
	assert_json_equal(cfg, "limits.max_iterations", "42");
	assert_int_equal(rlm_config_set(cfg, "plugin_path", "[\"/opt/rlm\"]", &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/opt/rlm\"]");
	rlm_config_free(cfg);
}

static void test_set_plain_string(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "llm.model", "gpt-4o-mini", &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "llm.model", NULL), "gpt-4o-mini");
	assert_int_equal(rlm_config_set(cfg, "llm.provider", "\"openai\"", &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "llm.provider", NULL), "openai");
	rlm_config_free(cfg);
}

static void test_set_null_value(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "llm.model", "m", &err), 0);
	assert_int_equal(rlm_config_set(cfg, "llm.model", "null", &err), 0);
	assert_json_equal(cfg, "llm.model", "null");
	rlm_config_free(cfg);
}

static void test_set_nested_backends_path_creates_objects(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "backends.daytona.labels.team", "rlm", &err), 0);
	assert_json_equal(cfg, "backends.daytona", "{\"labels\":{\"team\":\"rlm\"}}");
	assert_int_equal(rlm_config_set(cfg, "backends.daytona.auto_stop_min", "15", &err), 0);
	assert_json_equal(cfg, "backends.daytona",
	                  "{\"labels\":{\"team\":\"rlm\"},\"auto_stop_min\":15}");
	rlm_config_free(cfg);
}

static void test_set_unknown_key(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "limits.max_iteration", "5", &err), RLM_ECONFIG);
	assert_string_equal(err.message, "--set: unknown key \"limits.max_iteration\" "
	                                 "(did you mean \"limits.max_iterations\"?)");
	rlm_config_free(cfg);
}

static void test_set_type_error(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "limits.max_iterations", "abc", &err), RLM_ECONFIG);
	assert_string_equal(err.message, "--set: \"limits.max_iterations\" must be a whole number "
	                                 "from 1 to 100000, got \"abc\"");
	assert_true(rlm_config_get_number(cfg, "limits.max_iterations", 0) == 20);
	rlm_config_free(cfg);
}

static void test_set_count_must_be_whole(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "limits.max_iterations", "2.5", &err), RLM_ECONFIG);
	assert_contains(err.message, "must be a whole number from 1 to 100000, got 2.5");
	assert_int_equal(rlm_config_set(cfg, "limits.execute_timeout_s", "2.5", &err), 0);
	rlm_config_free(cfg);
}

/* Every numeric key of the schema has a range, checked when the layer is merged; the message
 * names the key, the range and the value, and the config keeps its old value. */
static void expect_set_refused(const char *key, const char *value, const char *message)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char *before = rlm_config_get_json(cfg, key);

	assert_int_equal(rlm_config_set(cfg, key, value, &err), RLM_ECONFIG);
	assert_int_equal(err.code, RLM_ECONFIG);
	assert_string_equal(err.message, message);
	assert_json_equal(cfg, key, before);
	rlm_free(before);
	rlm_config_free(cfg);
}

static void test_set_numbers_out_of_range_are_refused(void **state)
{
	(void)state;
	expect_set_refused("limits.execute_timeout_s", "1e300",
	                   "--set: \"limits.execute_timeout_s\" must be a number from 0.001 to "
	                   "604800, got 1e300");
	expect_set_refused("limits.execute_timeout_s", "inf",
	                   "--set: \"limits.execute_timeout_s\" must be a number from 0.001 to "
	                   "604800, got \"inf\"");
	expect_set_refused("limits.execute_timeout_s", "nan",
	                   "--set: \"limits.execute_timeout_s\" must be a number from 0.001 to "
	                   "604800, got \"nan\"");
	expect_set_refused("limits.execute_timeout_s", "0",
	                   "--set: \"limits.execute_timeout_s\" must be a number from 0.001 to "
	                   "604800, got 0");
	expect_set_refused("limits.max_output_chars", "1e20",
	                   "--set: \"limits.max_output_chars\" must be a whole number from 1 to "
	                   "10000000, got 1e20");
	expect_set_refused("limits.max_output_chars", "100000000000000000000",
	                   "--set: \"limits.max_output_chars\" must be a whole number from 1 to "
	                   "10000000, got 18446744073709551615");
	expect_set_refused("limits.hard_deadline_grace_s", "1e9",
	                   "--set: \"limits.hard_deadline_grace_s\" must be a number from 0.001 "
	                   "to 3600, got 1e9");
	expect_set_refused("limits.start_timeout_s", "-1",
	                   "--set: \"limits.start_timeout_s\" must be a number from 0.001 to "
	                   "86400, got -1");
	expect_set_refused("limits.llm_call_timeout_s", "86401",
	                   "--set: \"limits.llm_call_timeout_s\" must be a number from 0.001 to "
	                   "86400, got 86401");
	expect_set_refused("limits.max_iterations", "0",
	                   "--set: \"limits.max_iterations\" must be a whole number from 1 to "
	                   "100000, got 0");
	expect_set_refused("limits.max_llm_calls", "1e7",
	                   "--set: \"limits.max_llm_calls\" must be a whole number from 1 to "
	                   "1000000, got 1e7");
	expect_set_refused("limits.max_depth", "65",
	                   "--set: \"limits.max_depth\" must be a whole number from 0 to 64, "
	                   "got 65");
	expect_set_refused("limits.llm_concurrency", "100000",
	                   "--set: \"limits.llm_concurrency\" must be a whole number from 1 to "
	                   "1024, got 100000");
	expect_set_refused("llm.temperature", "3",
	                   "--set: \"llm.temperature\" must be a number from 0 to 2, or null, "
	                   "got 3");
	expect_set_refused("sub_llm.max_tokens", "4294967296",
	                   "--set: \"sub_llm.max_tokens\" must be a whole number from 1 to "
	                   "2147483647, or null, got 4294967296");
	expect_set_refused("llm.max_retries", "1000",
	                   "--set: \"llm.max_retries\" must be a whole number from 0 to 20, got "
	                   "1000");
}

/* The bounds themselves are inside. */
static void test_set_numbers_at_range_bounds_are_accepted(void **state)
{
	static const char *const ok[] = {
	        "limits.execute_timeout_s=604800",
	        "limits.execute_timeout_s=0.001",
	        "limits.max_output_chars=10000000",
	        "limits.max_depth=64",
	        "limits.max_depth=0",
	        "llm.temperature=2",
	        "llm.temperature=null",
	        "llm.max_tokens=2147483647",
	        "llm.max_retries=0",
	        NULL,
	};
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	for (size_t i = 0; ok[i]; i++) {
		if (rlm_config_set_assignment(cfg, ok[i], &err) != 0)
			fail_msg("%s: %s", ok[i], err.message);
	}
	assert_int_equal(rlm_config_validate(cfg, &err), 0);
	rlm_config_free(cfg);
}

/* A file is held to the same ranges as --set. */
static void test_merge_number_out_of_range_names_file(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_merge_json(cfg, "{\"limits\":{\"max_output_chars\":1e999}}",
	                                       "rlm.json", &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "rlm.json: \"limits.max_output_chars\" must be a whole number "
	                             "from 1 to 10000000, got ");
	rlm_config_free(cfg);
}

/* Values that arrive outside the document (a per-call timeout) are checked against the same
 * schema range. */
static void test_check_number_uses_the_schema_range(void **state)
{
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(
	        rlm__config_check_number("limits.execute_timeout_s", 30, "--timeout", &err), 0);
	assert_int_equal(
	        rlm__config_check_number("limits.execute_timeout_s", INFINITY, "--timeout", &err),
	        RLM_ECONFIG);
	assert_string_equal(err.message, "--timeout: \"limits.execute_timeout_s\" must be a number "
	                                 "from 0.001 to 604800, got inf");
	assert_int_equal(
	        rlm__config_check_number("limits.execute_timeout_s", NAN, "--timeout", &err),
	        RLM_ECONFIG);
	assert_int_equal(rlm__config_check_number("limits.max_depth", 1.5, NULL, &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "whole number");
	assert_int_equal(rlm__config_check_number("backend", 1, NULL, &err), RLM_EINVAL);
	assert_int_equal(rlm__config_check_number("limits.nope", 1, NULL, &err), RLM_EINVAL);
}

/* A string-list key takes a plain string as a one-element list, from any layer. */
static void test_set_string_list_from_plain_string(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set_assignment(cfg, "plugin_path=/opt/rlm/plugins", &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/opt/rlm/plugins\"]");
	assert_int_equal(rlm_config_set(cfg, "plugin_path", "\"/quoted\"", &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/quoted\"]");
	assert_int_equal(rlm_config_set(cfg, "plugin_path", "", &err), 0);
	assert_json_equal(cfg, "plugin_path", "[]");
	assert_int_equal(rlm_config_merge_json(cfg, "{\"plugin_path\":\"/from/file\"}", "f", &err),
	                 0);
	assert_json_equal(cfg, "plugin_path", "[\"/from/file\"]");
	assert_int_equal(rlm_config_set(cfg, "plugin_path", "7", &err), RLM_ECONFIG);
	assert_contains(err.message, "must be a list of strings");
	rlm_config_free(cfg);
}

static void test_set_invalid_key_path(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "limits..max_depth", "1", &err), RLM_EINVAL);
	assert_contains(err.message, "invalid key path \"limits..max_depth\"");
	rlm_config_free(cfg);
}

static void test_set_assignment_splits_at_first_equals(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set_assignment(cfg, "llm.base_url=http://h/v1?a=b", &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "llm.base_url", NULL), "http://h/v1?a=b");
	rlm_config_free(cfg);
}

static void test_set_assignment_without_equals(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set_assignment(cfg, "limits.max_iterations", &err), RLM_EINVAL);
	assert_contains(err.message, "expected key.path=value");
	assert_contains(err.message, "\"limits.max_iterations\"");
	rlm_config_free(cfg);
}

static void test_set_assignment_empty_key(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set_assignment(cfg, "=5", &err), RLM_EINVAL);
	assert_contains(err.message, "expected key.path=value");
	rlm_config_free(cfg);
}

/* ---- Environment ---- */

static void test_env_layering_file_then_env_then_set(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(
	        rlm_config_merge_json(cfg, "{\"backend\":\"from-file\"}", "rlm.json", &err), 0);
	setenv("RLM_BACKEND", "from-env", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "from-env");
	assert_int_equal(rlm_config_set_assignment(cfg, "backend=from-set", &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "from-set");
	rlm_config_free(cfg);
}

static void test_env_execute_timeout_invalid(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_EXECUTE_TIMEOUT_S", "soon", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	assert_contains(err.message, "RLM_EXECUTE_TIMEOUT_S");
	assert_contains(err.message, "\"soon\"");
	setenv("RLM_EXECUTE_TIMEOUT_S", "-3", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	rlm_config_free(cfg);
}

/* The variable is held to the key's range too, and the message quotes the value readably. */
static void test_env_execute_timeout_out_of_range(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_EXECUTE_TIMEOUT_S", "1e300", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	assert_string_equal(err.message, "RLM_EXECUTE_TIMEOUT_S: \"limits.execute_timeout_s\" must "
	                                 "be a number from 0.001 to 604800, got 1e+300");
	setenv("RLM_EXECUTE_TIMEOUT_S", "inf", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	assert_json_equal(cfg, "limits.execute_timeout_s", "300");
	rlm_config_free(cfg);
}

static void test_env_execute_timeout_valid(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_EXECUTE_TIMEOUT_S", "45", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_json_equal(cfg, "limits.execute_timeout_s", "45");
	setenv("RLM_EXECUTE_TIMEOUT_S", "1.5", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_true(rlm_config_get_number(cfg, "limits.execute_timeout_s", 0) == 1.5);
	rlm_config_free(cfg);
}

static void test_env_error_leaves_config_unchanged(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_BACKEND", "modal", 1);
	setenv("RLM_EXECUTE_TIMEOUT_S", "0", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "local");
	rlm_config_free(cfg);
}

static void test_env_plugin_path_prepends(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "plugin_path", "[\"/cfg\"]", &err), 0);
	setenv("RLM_PLUGIN_PATH", "/env1::/env2", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/env1\",\"/env2\",\"/cfg\"]");
	/* Applying the environment again must not list the directories twice. */
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_json_equal(cfg, "plugin_path", "[\"/env1\",\"/env2\",\"/cfg\"]");
	rlm_config_free(cfg);
}

static void test_env_urls_go_to_backend_sections(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("DAYTONA_API_URL", "http://127.0.0.1:3000/api", 1);
	setenv("MODAL_SERVER_URL", "http://127.0.0.1:4000", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backends.daytona.api_url", NULL),
	                    "http://127.0.0.1:3000/api");
	assert_string_equal(rlm_config_get_string(cfg, "backends.modal.server_url", NULL),
	                    "http://127.0.0.1:4000");
	rlm_config_free(cfg);
}

static void test_env_log_level_is_case_insensitive(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_LOG_LEVEL", "DEBUG", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "log_level", NULL), "debug");
	rlm_config_free(cfg);
}

static void test_env_log_level_invalid_names_variable(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_LOG_LEVEL", "loud", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), RLM_ECONFIG);
	assert_contains(err.message, "RLM_LOG_LEVEL: \"log_level\" must be one of");
	rlm_config_free(cfg);
}

static void test_env_never_stores_secrets(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char *doc;

	(void)state;
	setenv("DAYTONA_API_KEY", "secret-daytona", 1);
	setenv("MODAL_TOKEN_ID", "secret-modal-id", 1);
	setenv("MODAL_TOKEN_SECRET", "secret-modal", 1);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	doc = rlm_config_get_json(cfg, "");
	assert_non_null(doc);
	assert_null(strstr(doc, "secret"));
	rlm_free(doc);
	rlm_config_free(cfg);
}

/* ---- Default files ---- */

static void test_default_files_rlm_config_temp(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX];
	const char *const files[] = {"custom.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "custom.json", "{\"limits\":{\"max_depth\":2}}", path, sizeof(path));
	setenv("RLM_CONFIG", path, 1);
	assert_int_equal(rlm_config_load_default_files(cfg, &err), 0);
	assert_true(rlm_config_get_number(cfg, "limits.max_depth", 0) == 2);
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_default_files_rlm_config_missing(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	setenv("RLM_CONFIG", "/nonexistent/custom.json", 1);
	assert_int_equal(rlm_config_load_default_files(cfg, &err), RLM_ENOTFOUND);
	assert_contains(err.message, "/nonexistent/custom.json");
	assert_contains(err.message, "RLM_CONFIG");
	rlm_config_free(cfg);
}

/* Runs load_default_files from inside dir, with XDG_CONFIG_HOME at xdg. */
static int load_defaults_in(rlm_config *cfg, const char *dir, const char *xdg, rlm_error *err)
{
	char cwd[PATH_MAX];
	int r;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	r = rlm_config_load_default_files(cfg, err);
	assert_int_equal(chdir(cwd), 0);
	return r;
}

static void test_default_files_none_existing_is_ok(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64];
	const char *const files[] = {NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	assert_int_equal(load_defaults_in(cfg, dir, dir, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "local");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_default_files_prefers_local_rlm_json(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX], sub[PATH_MAX];
	const char *const files[] = {"rlm/config.json", "rlm", "rlm.json", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "rlm.json", "{\"backend\":\"from-cwd\"}", path, sizeof(path));
	snprintf(sub, sizeof(sub), "%s/rlm", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(dir, "rlm/config.json", "{\"backend\":\"from-xdg\"}", path, sizeof(path));
	assert_int_equal(load_defaults_in(cfg, dir, dir, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "from-cwd");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

static void test_default_files_falls_back_to_xdg(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;
	char dir[64], path[PATH_MAX], sub[PATH_MAX];
	const char *const files[] = {"rlm/config.json", "rlm", NULL};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/rlm", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(dir, "rlm/config.json", "{\"backend\":\"from-xdg\"}", path, sizeof(path));
	assert_int_equal(load_defaults_in(cfg, dir, dir, &err), 0);
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "from-xdg");
	remove_temp_dir(dir, files);
	rlm_config_free(cfg);
}

/* ---- Reading ---- */

static void test_get_json_whole_document_and_absent_key(void **state)
{
	rlm_config *cfg = new_config();
	char *doc;

	(void)state;
	doc = rlm_config_get_json(cfg, "");
	assert_non_null(doc);
	assert_true(doc[0] == '{');
	assert_contains(doc, "\"limits\":{");
	rlm_free(doc);
	assert_null(rlm_config_get_json(cfg, "limits.nope"));
	assert_null(rlm_config_get_json(cfg, "backend.deeper"));
	rlm_config_free(cfg);
}

static void test_getters_fall_back_on_absent_or_wrong_type(void **state)
{
	rlm_config *cfg = new_config();

	(void)state;
	assert_string_equal(rlm_config_get_string(cfg, "limits.max_depth", "fb"), "fb");
	assert_string_equal(rlm_config_get_string(cfg, "llm.model", "fb"), "fb");
	assert_true(rlm_config_get_number(cfg, "backend", 7.5) == 7.5);
	assert_int_equal(rlm_config_get_bool(cfg, "nope", 1), 1);
	assert_int_equal(rlm_config_get_bool(cfg, "backend", 0), 0);
	rlm_config_free(cfg);
}

static void test_get_bool_reads_booleans(void **state)
{
	rlm_config *cfg = new_config();
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "backends.local.network", "true", &err), 0);
	assert_int_equal(rlm_config_get_bool(cfg, "backends.local.network", 0), 1);
	rlm_config_free(cfg);
}

static void test_lookup_returns_owned_object(void **state)
{
	rlm_config *cfg = new_config();
	json_object *limits;

	(void)state;
	limits = rlm__config_lookup(cfg, "limits");
	assert_true(json_object_is_type(limits, json_type_object));
	assert_ptr_equal(rlm__config_lookup(cfg, ""), rlm__config_root(cfg));
	assert_null(rlm__config_lookup(cfg, "limits.nope"));
	rlm_config_free(cfg);
}

static void test_clone_is_deep(void **state)
{
	rlm_config *cfg = new_config(), *copy = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm_config_set(cfg, "backends.local.env", "{\"A\":\"1\"}", &err), 0);
	assert_int_equal(rlm_config_clone(cfg, &copy, &err), 0);
	assert_int_equal(rlm_config_set(copy, "backends.local.env.A", "2", &err), 0);
	assert_int_equal(rlm_config_set(copy, "backend", "modal", &err), 0);
	assert_json_equal(cfg, "backends.local.env.A", "\"1\"");
	assert_string_equal(rlm_config_get_string(cfg, "backend", NULL), "local");
	assert_true(rlm__config_lookup(cfg, "backends.local") !=
	            rlm__config_lookup(copy, "backends.local"));
	rlm_config_free(cfg);
	assert_json_equal(copy, "backends.local.env.A", "2");
	rlm_config_free(copy);
}

/* ---- Plugin options ---- */

static const rlm_option_spec local_specs[] = {
        {"python", RLM_OPT_STRING, "\"python3\"", "interpreter to run"},
        {"memory_mb", RLM_OPT_INT, "2048", "memory limit"},
        {"cpu_s", RLM_OPT_NUMBER, "1.5", "CPU limit"},
        {"network", RLM_OPT_BOOL, "false", "allow network"},
        {"mounts", RLM_OPT_STRING_LIST, "[]", "extra mounts"},
        {"env", RLM_OPT_OBJECT, "{}", "extra env"},
        {"volume", RLM_OPT_STRING, NULL, "volume name"},
        {NULL, 0, NULL, NULL},
};

/* Applies local_specs to the section written as JSON; returns the code, fills err. */
static int apply_section(const char *section_json, json_object **out, rlm_error *err)
{
	json_object *section = section_json ? json_tokener_parse(section_json) : NULL;
	int r;

	if (section_json)
		assert_non_null(section);
	r = rlm__options_apply(local_specs, section, "backends.local", out, err);
	json_object_put(section);
	return r;
}

static void assert_option_json(json_object *opts, const char *name, const char *expected)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(opts, name, &v));
	assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), expected);
}

static void test_options_apply_defaults(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section(NULL, &out, &err), 0);
	assert_option_json(out, "python", "\"python3\"");
	assert_option_json(out, "memory_mb", "2048");
	assert_option_json(out, "cpu_s", "1.5");
	assert_option_json(out, "network", "false");
	assert_option_json(out, "mounts", "[]");
	assert_option_json(out, "env", "{}");
	assert_option_json(out, "volume", "null");
	json_object_put(out);
}

static void test_options_apply_section_values_win(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"memory_mb\":512,\"volume\":\"v\"}", &out, &err), 0);
	assert_option_json(out, "memory_mb", "512");
	assert_option_json(out, "volume", "\"v\"");
	assert_option_json(out, "python", "\"python3\"");
	json_object_put(out);
}

static void test_options_apply_unknown_option_suggestion(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"memroy_mb\":512}", &out, &err), RLM_ECONFIG);
	assert_null(out);
	assert_string_equal(
	        err.message,
	        "backends.local: unknown option \"memroy_mb\" (did you mean \"memory_mb\"?)");
}

static void test_options_apply_unknown_option_far_lists_options(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"qqqqqqqq\":1}", &out, &err), RLM_ECONFIG);
	assert_contains(err.message, "known options: python, memory_mb");
}

/* Applies {name: value_json}, expects RLM_ECONFIG and the message. */
static void assert_option_rejected(const char *name, const char *value_json, const char *message)
{
	char section[256];
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	snprintf(section, sizeof(section), "{\"%s\":%s}", name, value_json);
	assert_int_equal(apply_section(section, &out, &err), RLM_ECONFIG);
	assert_null(out);
	assert_string_equal(err.message, message);
}

static void test_options_apply_string_type_error(void **state)
{
	(void)state;
	assert_option_rejected("python", "3",
	                       "backends.local.python must be a string, got number 3");
}

static void test_options_apply_int_type_error(void **state)
{
	(void)state;
	assert_option_rejected("memory_mb", "\"lots\"",
	                       "backends.local.memory_mb must be an integer, got string \"lots\"");
	assert_option_rejected("memory_mb", "2.5",
	                       "backends.local.memory_mb must be an integer from -2147483648 to "
	                       "2147483647, got number 2.5");
}

static void test_options_apply_number_type_error(void **state)
{
	(void)state;
	assert_option_rejected("cpu_s", "true",
	                       "backends.local.cpu_s must be a number, got boolean true");
}

static void test_options_apply_bool_type_error(void **state)
{
	(void)state;
	assert_option_rejected("network", "\"yes\"",
	                       "backends.local.network must be a boolean, got string \"yes\"");
}

static void test_options_apply_string_list_type_error(void **state)
{
	(void)state;
	assert_option_rejected(
	        "mounts", "[\"/a\",1]",
	        "backends.local.mounts must be a list of strings, got array [\"/a\",1]");
}

/* A plain string stands for the one-element list, as for the core's string-list keys. */
static void test_options_apply_string_is_a_one_element_list(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"mounts\":\"data\"}", &out, &err), 0);
	assert_option_json(out, "mounts", "[\"data\"]");
	json_object_put(out);
}

/* Specs carry no range yet: integers must fit in int32, numbers stay within 1e9. */
static void test_options_apply_numbers_out_of_generic_range(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_option_rejected("memory_mb", "1e20",
	                       "backends.local.memory_mb must be an integer from -2147483648 to "
	                       "2147483647, got number 1e20");
	assert_option_rejected("memory_mb", "100000000000000000000",
	                       "backends.local.memory_mb must be an integer from -2147483648 to "
	                       "2147483647, got number 18446744073709551615");
	assert_option_rejected("memory_mb", "2147483648",
	                       "backends.local.memory_mb must be an integer from -2147483648 to "
	                       "2147483647, got number 2147483648");
	assert_option_rejected("cpu_s", "1e300",
	                       "backends.local.cpu_s must be a number from -1000000000 to "
	                       "1000000000, got number 1e300");
	assert_option_rejected("cpu_s", "-1e10",
	                       "backends.local.cpu_s must be a number from -1000000000 to "
	                       "1000000000, got number -1e10");
	assert_int_equal(apply_section("{\"memory_mb\":2147483647,\"cpu_s\":1e9}", &out, &err), 0);
	assert_option_json(out, "memory_mb", "2147483647");
	json_object_put(out);
}

/* NaN and Infinity cannot come from JSON text (strict parsing), but an embedder may build the
 * section with json-c. */
static void test_options_apply_nan_and_infinity_refused(void **state)
{
	json_object *section = json_object_new_object(), *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	json_object_object_add(section, "cpu_s", json_object_new_double(NAN));
	assert_int_equal(rlm__options_apply(local_specs, section, "backends.local", &out, &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "backends.local.cpu_s must be a number");
	json_object_object_add(section, "cpu_s", json_object_new_double(INFINITY));
	assert_int_equal(rlm__options_apply(local_specs, section, "backends.local", &out, &err),
	                 RLM_ECONFIG);
	json_object_object_add(section, "cpu_s", NULL);
	json_object_object_add(section, "memory_mb", json_object_new_double(-INFINITY));
	assert_int_equal(rlm__options_apply(local_specs, section, "backends.local", &out, &err),
	                 RLM_ECONFIG);
	assert_contains(err.message, "backends.local.memory_mb must be an integer");
	assert_null(out);
	json_object_put(section);
}

static void test_options_apply_object_type_error(void **state)
{
	(void)state;
	assert_option_rejected("env", "[]", "backends.local.env must be an object, got array []");
}

static void test_options_apply_integral_double_accepted_for_int(void **state)
{
	json_object *out = NULL, *v = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"memory_mb\":1024.0}", &out, &err), 0);
	assert_true(json_object_object_get_ex(out, "memory_mb", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), 1024);
	json_object_put(out);
}

static void test_options_apply_null_means_unset(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("{\"memory_mb\":null,\"mounts\":null}", &out, &err), 0);
	assert_option_json(out, "memory_mb", "null");
	assert_option_json(out, "mounts", "null");
	json_object_put(out);
}

static void test_options_apply_section_not_object(void **state)
{
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(apply_section("[1]", &out, &err), RLM_ECONFIG);
	assert_string_equal(err.message, "backends.local must be an object, got array");
}

static void test_options_apply_bad_default_is_plugin_error(void **state)
{
	static const rlm_option_spec bad[] = {
	        {"size", RLM_OPT_INT, "\"big\"", "a wrong default"},
	        {NULL, 0, NULL, NULL},
	};
	json_object *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm__options_apply(bad, NULL, "backends.x", &out, &err), RLM_EPLUGIN);
	assert_contains(err.message, "backends.x.size");
}

static void test_options_apply_no_specs_refuses_any_key(void **state)
{
	json_object *section = json_tokener_parse("{\"a\":1}"), *out = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	assert_int_equal(rlm__options_apply(NULL, section, "backends.x", &out, &err), RLM_ECONFIG);
	assert_contains(err.message, "takes no options");
	json_object_put(section);
}

/* ---- Nearest ---- */

static void test_nearest_finds_close_word(void **state)
{
	const char *const words[] = {"backend", "plugin_path", "log_level", NULL};

	(void)state;
	assert_string_equal(rlm__nearest("bakend", words), "backend");
	assert_string_equal(rlm__nearest("log_levl", words), "log_level");
}

static void test_nearest_returns_null_when_far(void **state)
{
	const char *const words[] = {"backend", "plugin_path", "log_level", NULL};

	(void)state;
	assert_null(rlm__nearest("temperature", words));
	assert_null(rlm__nearest("xyz", words));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, clear_env, clear_env)
	const struct CMUnitTest tests[] = {
	        T(test_defaults_present),
	        T(test_validate_accepts_defaults),
	        T(test_merge_overrides_scalar),
	        T(test_merge_nested_keeps_siblings),
	        T(test_merge_replaces_arrays),
	        T(test_merge_unknown_key_suggests_nearest),
	        T(test_merge_key_in_wrong_section_suggests_full_path),
	        T(test_merge_unknown_key_far_from_all_lists_known_keys),
	        T(test_merge_error_leaves_config_unchanged),
	        T(test_merge_type_error_names_key_and_origin),
	        T(test_merge_zero_max_depth_accepted),
	        T(test_merge_backend_section_must_be_object),
	        T(test_merge_backend_section_keys_are_free_form),
	        T(test_merge_log_level_must_be_known),
	        T(test_merge_top_level_not_object),
	        T(test_load_file_merges),
	        T(test_load_file_invalid_json_reports_line_and_column),
	        T(test_load_file_missing),
	        T(test_load_file_directory_is_io_error),
	        T(test_load_file_top_level_not_object),
	        T(test_load_file_unknown_key_names_file),
	        T(test_set_json_value),
	        T(test_set_plain_string),
	        T(test_set_null_value),
	        T(test_set_nested_backends_path_creates_objects),
	        T(test_set_unknown_key),
	        T(test_set_type_error),
	        T(test_set_count_must_be_whole),
	        T(test_set_numbers_out_of_range_are_refused),
	        T(test_set_numbers_at_range_bounds_are_accepted),
	        T(test_merge_number_out_of_range_names_file),
	        T(test_check_number_uses_the_schema_range),
	        T(test_set_string_list_from_plain_string),
	        T(test_set_invalid_key_path),
	        T(test_set_assignment_splits_at_first_equals),
	        T(test_set_assignment_without_equals),
	        T(test_set_assignment_empty_key),
	        T(test_env_layering_file_then_env_then_set),
	        T(test_env_execute_timeout_invalid),
	        T(test_env_execute_timeout_valid),
	        T(test_env_execute_timeout_out_of_range),
	        T(test_env_error_leaves_config_unchanged),
	        T(test_env_plugin_path_prepends),
	        T(test_env_urls_go_to_backend_sections),
	        T(test_env_log_level_is_case_insensitive),
	        T(test_env_log_level_invalid_names_variable),
	        T(test_env_never_stores_secrets),
	        T(test_default_files_rlm_config_temp),
	        T(test_default_files_rlm_config_missing),
	        T(test_default_files_none_existing_is_ok),
	        T(test_default_files_prefers_local_rlm_json),
	        T(test_default_files_falls_back_to_xdg),
	        T(test_get_json_whole_document_and_absent_key),
	        T(test_getters_fall_back_on_absent_or_wrong_type),
	        T(test_get_bool_reads_booleans),
	        T(test_lookup_returns_owned_object),
	        T(test_clone_is_deep),
	        T(test_options_apply_defaults),
	        T(test_options_apply_section_values_win),
	        T(test_options_apply_unknown_option_suggestion),
	        T(test_options_apply_unknown_option_far_lists_options),
	        T(test_options_apply_string_type_error),
	        T(test_options_apply_int_type_error),
	        T(test_options_apply_number_type_error),
	        T(test_options_apply_bool_type_error),
	        T(test_options_apply_string_list_type_error),
	        T(test_options_apply_string_is_a_one_element_list),
	        T(test_options_apply_numbers_out_of_generic_range),
	        T(test_options_apply_nan_and_infinity_refused),
	        T(test_options_apply_object_type_error),
	        T(test_options_apply_integral_double_accepted_for_int),
	        T(test_options_apply_null_means_unset),
	        T(test_options_apply_section_not_object),
	        T(test_options_apply_bad_default_is_plugin_error),
	        T(test_options_apply_no_specs_refuses_any_key),
	        T(test_nearest_finds_close_word),
	        T(test_nearest_returns_null_when_far),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
