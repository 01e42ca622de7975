/* test_loader.c - the plugin loader seen through the public API, plus the mock's faults.
 *
 * Plugins come from $RLM_TEST_PLUGIN_DIR (set by the build): rlm-backend-mock.so, and the
 * broken ones: -badabi (next major ABI), -noentry (no rlm_plugin_entry), -notaplugin (a text
 * file), -crash (its entry point dereferences NULL), -liar (claims run_command, its ops table
 * ends at shutdown). Each refusal must say which file and why, since that message is all a
 * plugin author gets. -short is the mock with an ops table that ends at shutdown: it must
 * work, with every optional feature absent. The mock's fault options check that the core
 * survives a misbehaving transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <json-c/json.h>

#include "loader.h"
#include "rlm/rlm.h"

/* Under AddressSanitizer its own handler reports a SIGSEGV, so the signal's name is not in
 * the message (the crash still is). */
#if defined(__SANITIZE_ADDRESS__)
#define SEGV_NAME "crashed"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEGV_NAME "crashed"
#endif
#endif
#ifndef SEGV_NAME
#define SEGV_NAME "SIGSEGV"
#endif

static const char *plugin_dir;

/* A config on backend `name` that searches only the test plugin dir, with short timeouts,
 * then the given "key.path=value" assignments (NULL-terminated, may be NULL). */
static rlm_config *make_config(const char *backend, const char *const *assignments)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	json_object *path = json_object_new_array();

	json_object_array_add(path, json_object_new_string(plugin_dir));
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	if (rlm_config_set(cfg, "plugin_path", json_object_to_json_string(path), &err) != 0 ||
	    rlm_config_set(cfg, "backend", backend, &err) != 0 ||
	    rlm_config_set(cfg, "limits.execute_timeout_s", "10", &err) != 0 ||
	    rlm_config_set(cfg, "limits.hard_deadline_grace_s", "2", &err) != 0)
		fail_msg("config: %s", err.message);
	json_object_put(path);
	for (size_t i = 0; assignments && assignments[i]; i++) {
		if (rlm_config_set_assignment(cfg, assignments[i], &err) != 0)
			fail_msg("config %s: %s", assignments[i], err.message);
	}
	return cfg;
}

/* Opens backend with the assignments; returns the status and fills err / *out. */
static int try_open(const char *backend, const char *const *assignments, rlm_interp **out,
                    rlm_error *err)
{
	rlm_config *cfg = make_config(backend, assignments);
	int rc;

	*out = NULL;
	rc = rlm_interp_open(cfg, out, err);
	rlm_config_free(cfg);
	if (rc != 0)
		assert_null(*out);
	return rc;
}

static rlm_interp *open_mock(const char *const *assignments)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp;
	int rc = try_open("mock", assignments, &interp, &err);

	if (rc != 0)
		fail_msg("open mock: %s: %s", rlm_status_name(rc), err.message);
	return interp;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

/* Runs print(1) and checks that it printed "1". */
static void expect_print_works(rlm_interp *interp)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	int rc = rlm_interp_execute(interp, "print(1)", NULL, &res, &err);

	if (rc != 0)
		fail_msg("execute: %s: %s", rlm_status_name(rc), err.message);
	if (res->error)
		fail_msg("print(1) raised: %s", res->error->line);
	assert_string_equal(res->stdout_text, "1\n");
	rlm_result_free(res);
}

/* Expects open(backend) to fail with code and a message holding every needle. */
static void expect_open_refused(const char *backend, const char *const *assignments, int code,
                                const char *const *needles)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp;
	int rc = try_open(backend, assignments, &interp, &err);

	if (rc != code)
		fail_msg("expected %s, got %s: %s", rlm_status_name(code), rlm_status_name(rc),
		         err.message);
	assert_int_equal(err.code, code);
	for (size_t i = 0; needles[i]; i++)
		assert_contains(err.message, needles[i]);
}

/* The entry of rlm_plugins_json whose file or name mentions what; caller puts *doc. */
static json_object *find_plugin(const char *what, json_object **doc)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = make_config("mock", NULL);
	char *text = rlm_plugins_json(cfg, &err);

	rlm_config_free(cfg);
	if (!text)
		fail_msg("rlm_plugins_json: %s", err.message);
	*doc = json_tokener_parse(text);
	assert_non_null(*doc);
	assert_true(json_object_is_type(*doc, json_type_array));
	for (size_t i = 0; i < json_object_array_length(*doc); i++) {
		json_object *p = json_object_array_get_idx(*doc, i), *v;

		if ((json_object_object_get_ex(p, "name", &v) &&
		     strcmp(json_object_get_string(v), what) == 0) ||
		    (json_object_object_get_ex(p, "file", &v) &&
		     strstr(json_object_get_string(v), what))) {
			rlm_free(text);
			return p;
		}
	}
	fail_msg("%s not in rlm_plugins_json: %s", what, text);
	return NULL;
}

static void test_mock_backend_loads_and_executes(void **state)
{
	rlm_interp *interp = open_mock(NULL);

	(void)state;
	expect_print_works(interp);
	rlm_interp_close(interp);
}

static void test_plugins_json_lists_mock_with_options(void **state)
{
	static const char *const names[] = {
	        "fail_start",  "drop_after_bytes", "garbage", "slow_reply_ms",
	        "fail_upload", "max_memory_mb",    NULL};
	json_object *doc, *mock = find_plugin("mock", &doc), *options, *v;

	(void)state;
	assert_true(json_object_object_get_ex(mock, "kind", &v));
	assert_string_equal(json_object_get_string(v), "backend");
	assert_false(json_object_object_get_ex(mock, "error", NULL));
	assert_true(json_object_object_get_ex(mock, "options", &options));
	for (size_t i = 0; names[i]; i++) {
		size_t j, n = json_object_array_length(options);

		for (j = 0; j < n; j++) {
			json_object *o = json_object_array_get_idx(options, j);

			if (json_object_object_get_ex(o, "name", &v) &&
			    strcmp(json_object_get_string(v), names[i]) == 0)
				break;
		}
		if (j == n)
			fail_msg("option %s not listed", names[i]);
		assert_true(json_object_object_get_ex(json_object_array_get_idx(options, j), "doc",
		                                      NULL));
	}
	json_object_put(doc);
}

static void test_plugins_json_reports_broken_plugin(void **state)
{
	json_object *doc, *bad = find_plugin("badabi", &doc);

	(void)state;
	assert_true(json_object_object_get_ex(bad, "error", NULL));
	json_object_put(doc);
}

static void test_wrong_abi_is_refused_with_both_versions(void **state)
{
	char theirs[32], ours[32];
	const char *needles[] = {"rlm-backend-badabi.so", "ABI", theirs, ours, NULL};

	(void)state;
	snprintf(theirs, sizeof(theirs), "%d.0", RLM_ABI_MAJOR + 1);
	snprintf(ours, sizeof(ours), "%d.%d", RLM_ABI_MAJOR, RLM_ABI_MINOR);
	expect_open_refused("badabi", NULL, RLM_EPLUGIN, needles);
}

static void test_missing_entry_symbol_is_refused(void **state)
{
	const char *needles[] = {"rlm-backend-noentry.so", "rlm_plugin_entry", NULL};

	(void)state;
	expect_open_refused("noentry", NULL, RLM_EPLUGIN, needles);
}

static void test_text_file_is_refused_naming_it(void **state)
{
	const char *needles[] = {"rlm-backend-notaplugin.so", NULL};

	(void)state;
	expect_open_refused("notaplugin", NULL, RLM_EPLUGIN, needles);
}

static void test_unknown_backend_lists_searched_paths(void **state)
{
	const char *needles[] = {"nosuchbackend", plugin_dir, NULL};

	(void)state;
	expect_open_refused("nosuchbackend", NULL, RLM_ENOTFOUND, needles);
}

static void test_unknown_mock_option_suggests_nearest(void **state)
{
	const char *const set[] = {"backends.mock.garbag=true", NULL};
	const char *needles[] = {"garbag", "garbage", NULL};

	(void)state;
	expect_open_refused("mock", set, RLM_ECONFIG, needles);
}

static void test_mock_fail_start_is_an_error(void **state)
{
	const char *const set[] = {"backends.mock.fail_start=true", NULL};
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp;
	int rc = try_open("mock", set, &interp, &err);

	(void)state;
	assert_true(rc < 0);
	assert_contains(err.message, "injected start failure");
}

static void test_mock_garbage_between_frames_is_skipped(void **state)
{
	const char *const set[] = {"backends.mock.garbage=true", NULL};
	rlm_interp *interp = open_mock(set);

	(void)state;
	expect_print_works(interp);
	expect_print_works(interp);
	rlm_interp_close(interp);
}

static void test_mock_dropped_channel_is_reported(void **state)
{
	const char *const set[] = {"backends.mock.drop_after_bytes=1", NULL};
	rlm_interp *interp = open_mock(set);
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	int rc = rlm_interp_execute(interp, "print(1)", NULL, &res, &err);

	(void)state;
	if (rc == 0) {
		assert_int_equal(res->state_lost, 1);
		rlm_result_free(res);
	}
	rlm_interp_close(interp);
	interp = open_mock(NULL);
	expect_print_works(interp);
	rlm_interp_close(interp);
}

static void test_mock_slow_replies_work(void **state)
{
	const char *const set[] = {"backends.mock.slow_reply_ms=50", NULL};
	rlm_interp *interp = open_mock(set);

	(void)state;
	expect_print_works(interp);
	rlm_interp_close(interp);
}

static void test_mock_upload_failure_is_an_error(void **state)
{
	const char *const set[] = {"backends.mock.fail_upload=true", NULL};
	rlm_interp *interp = open_mock(set);
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_upload(interp, "x", 1, "f.txt", &err);

	(void)state;
	assert_true(rc < 0);
	assert_contains(err.message, "injected upload failure");
	rlm_interp_close(interp);
}

/* Whether a test plugin's .so is mapped in this process right now (RTLD_NOLOAD loads
 * nothing). */
static int plugin_is_loaded(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/rlm-backend-%s.so", plugin_dir, name);
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h)
		dlclose(h);
	return h != NULL;
}

/* `rlm backends` lists every file on the path: one that crashes in its entry point is
 * probed in a child, so the listing survives and names it. */
static void test_plugins_json_survives_crashing_plugin_and_names_it(void **state)
{
	json_object *doc, *crash = find_plugin("crash", &doc), *v;

	(void)state;
	assert_true(json_object_object_get_ex(crash, "error", &v));
	assert_contains(json_object_get_string(v), "rlm-backend-crash.so");
	assert_contains(json_object_get_string(v), "crashed in rlm_plugin_entry()");
	assert_contains(json_object_get_string(v), SEGV_NAME);
	assert_true(json_object_object_get_ex(crash, "file", &v));
	assert_contains(json_object_get_string(v), "rlm-backend-crash.so");
	json_object_put(doc);
}

/* Listing describes plugins from the probe child: nothing is loaded into this process (the
 * leaky mock, which no test here opens: a plugin that was opened stays mapped). */
static void test_plugins_json_loads_nothing_here(void **state)
{
	json_object *doc;

	(void)state;
	assert_non_null(find_plugin("leaky", &doc));
	json_object_put(doc);
	assert_int_equal(rlm__plugin_refcount("leaky"), 0);
	assert_false(plugin_is_loaded("leaky"));
}

static void test_crashing_plugin_is_refused_naming_file_and_signal(void **state)
{
	const char *needles[] = {"rlm-backend-crash.so", "crashed in rlm_plugin_entry()", SEGV_NAME,
	                         NULL};

	(void)state;
	expect_open_refused("crash", NULL, RLM_EPLUGIN, needles);
	/* and this process is still here, able to load a good plugin */
	rlm_interp_close(open_mock(NULL));
}

static void test_capability_without_slot_is_refused(void **state)
{
	const char *needles[] = {"rlm-backend-liar.so", "\"liar\"", "RLM_CAP_RUN_COMMAND",
	                         "run_command slot", NULL};

	(void)state;
	expect_open_refused("liar", NULL, RLM_EPLUGIN, needles);
}

/* An ops table may end at shutdown (ABI 1.0's required slots). Its optional slots lie past
 * struct_size and hold poison functions there: the core must treat them as absent. */
static void test_ops_table_ending_at_shutdown_works_without_optional_features(void **state)
{
	rlm_interp *interp;
	rlm_error err = RLM_ERROR_INIT;
	const char *argv[] = {"true", NULL};
	rlm_command_output *out = NULL;
	rlm_config *cfg = make_config("short", NULL);
	char *status;
	json_object *doc, *caps;

	(void)state;
	if (rlm_interp_open(cfg, &interp, &err) != 0)
		fail_msg("open short: %s: %s", rlm_status_name(err.code), err.message);
	expect_print_works(interp);
	assert_int_equal(rlm_interp_interrupt(interp, &err), RLM_ENOTSUP);
	assert_int_equal(rlm_interp_run_command(interp, argv, NULL, 5, &out, &err), RLM_ENOTSUP);
	assert_null(out);
	status = rlm_interp_status_json(interp);
	doc = json_tokener_parse(status);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "capabilities", &caps));
	assert_int_equal(json_object_array_length(caps), 0);
	json_object_put(doc);
	rlm_free(status);
	expect_print_works(interp);
	rlm_interp_close(interp);
	assert_int_equal(rlm_backend_control(cfg, "short", "status", NULL, &status, &err),
	                 RLM_ENOTSUP);
	rlm_config_free(cfg);
}

static void test_plugin_stays_loaded_while_an_interpreter_lives(void **state)
{
	(void)state;
	rlm_interp *a = open_mock(NULL);
	rlm_interp *b = open_mock(NULL);
	assert_int_equal(rlm__plugin_refcount("mock"), 2);
	rlm_interp_close(a);
	assert_int_equal(rlm__plugin_refcount("mock"), 1);
	assert_true(plugin_is_loaded("mock"));
	expect_print_works(b); /* its code is still mapped */
	rlm_interp_close(b);
	assert_int_equal(rlm__plugin_refcount("mock"), 0);
	/* ...and after: a plugin that loaded stays mapped (loader.c), so the next open does not
	 * load it, and what it links, again. */
	assert_true(plugin_is_loaded("mock"));
	b = open_mock(NULL);
	assert_int_equal(rlm__plugin_refcount("mock"), 1);
	expect_print_works(b);
	rlm_interp_close(b);
}

/* The status answer of a mini plugin (tests/abi/mini_backend.c): the section it was created
 * with, as the host validated it. Caller puts it. */
static json_object *mini_status(const char *backend, const char *const *assignments)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = make_config(backend, assignments);
	char *status = NULL;
	json_object *doc;

	if (rlm_backend_control(cfg, backend, "status", NULL, &status, &err) != 0)
		fail_msg("%s status: %s: %s", backend, rlm_status_name(err.code), err.message);
	rlm_config_free(cfg);
	doc = json_tokener_parse(status);
	if (!doc)
		fail_msg("%s status is not JSON: %s", backend, status);
	rlm_free(status);
	return doc;
}

static void assert_member(json_object *doc, const char *key, const char *json)
{
	json_object *v;

	if (!json_object_object_get_ex(doc, key, &v))
		fail_msg("no %s in %s", key, json_object_to_json_string(doc));
	assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), json);
}

/* Issue 11's "done when": a plugin built against the 1.1 headers still loads and runs, and its
 * 1.0-style options still get the section validated with defaults filled in. */
static void test_abi11_plugin_loads_validates_and_runs(void **state)
{
	rlm_interp *interp;
	rlm_error err = RLM_ERROR_INIT;
	const char *level5[] = {"backends.abi11.level=5", NULL};
	const char *typo[] = {"backends.abi11.levle=5", NULL};
	const char *wrong_type[] = {"backends.abi11.level=\"high\"", NULL};
	const char *typo_needles[] = {"backends.abi11", "levle", "level", NULL};
	const char *type_needles[] = {"backends.abi11.level", NULL};
	json_object *doc;

	(void)state;
	if (try_open("abi11", NULL, &interp, &err) != 0)
		fail_msg("open abi11: %s: %s", rlm_status_name(err.code), err.message);
	expect_print_works(interp);
	rlm_interp_close(interp);
	doc = mini_status("abi11", NULL);
	assert_member(doc, "label", "\"abi11\"");
	assert_member(doc, "level", "3");
	json_object_put(doc);
	doc = mini_status("abi11", level5);
	assert_member(doc, "level", "5");
	json_object_put(doc);
	expect_open_refused("abi11", typo, RLM_ECONFIG, typo_needles);
	expect_open_refused("abi11", wrong_type, RLM_ECONFIG, type_needles);
}

/* A 1.2 plugin may leave create NULL when it has create_opts; the typed view reaches it. */
static void test_create_opts_only_plugin_loads_and_runs(void **state)
{
	rlm_interp *interp;
	rlm_error err = RLM_ERROR_INIT;
	const char *set[] = {"backends.optsonly.level=9", "backends.optsonly.label=x", NULL};
	const char *too_big[] = {"backends.optsonly.level=10", NULL};
	const char *needles[] = {"backends.optsonly.level", "9", NULL};
	json_object *doc;

	(void)state;
	if (try_open("optsonly", NULL, &interp, &err) != 0)
		fail_msg("open optsonly: %s: %s", rlm_status_name(err.code), err.message);
	expect_print_works(interp);
	rlm_interp_close(interp);
	doc = mini_status("optsonly", NULL);
	assert_member(doc, "via", "\"create_opts\"");
	assert_member(doc, "label", "\"opts\"");
	assert_member(doc, "level", "3");
	json_object_put(doc);
	doc = mini_status("optsonly", set);
	assert_member(doc, "label", "\"x\"");
	assert_member(doc, "level", "9");
	json_object_put(doc);
	expect_open_refused("optsonly", too_big, RLM_ECONFIG, needles);
}

/* Neither create nor create_opts: refused at load, naming the plugin and both slots. */
static void test_plugin_without_create_is_refused_naming_it(void **state)
{
	const char *needles[] = {"\"nocreate\"", "rlm-backend-nocreate.so", "create_opts", NULL};

	(void)state;
	expect_open_refused("nocreate", NULL, RLM_EPLUGIN, needles);
}

/* A secret option's default is never shown by rlm_plugins_json (`rlm backends describe`), nor
 * is a secret value quoted in a validation error. */
static void test_secret_option_is_hidden_in_describe_and_errors(void **state)
{
	json_object *doc, *p = find_plugin("optsonly", &doc), *opts, *v;
	const char *bad[] = {"backends.optsonly.token=[\"sk-live-abcdef123456\"]", NULL};
	const char *needles[] = {"backends.optsonly.token", NULL};
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp;
	int found = 0;

	(void)state;
	assert_null(strstr(json_object_to_json_string(doc), "C0FFEE"));
	assert_true(json_object_object_get_ex(p, "options", &opts));
	for (size_t i = 0; i < json_object_array_length(opts); i++) {
		json_object *o = json_object_array_get_idx(opts, i);
		if (!json_object_object_get_ex(o, "name", &v) ||
		    strcmp(json_object_get_string(v), "token"))
			continue;
		found = 1;
		assert_true(json_object_object_get_ex(o, "secret", &v));
		assert_true(json_object_get_boolean(v));
		assert_true(json_object_object_get_ex(o, "default", &v));
		assert_string_equal(json_object_get_string(v), "***");
	}
	assert_true(found);
	json_object_put(doc);
	expect_open_refused("optsonly", bad, RLM_ECONFIG, needles);
	assert_int_equal(try_open("optsonly", bad, &interp, &err), RLM_ECONFIG);
	assert_null(strstr(err.message, "abcdef123456"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mock_backend_loads_and_executes),
	        cmocka_unit_test(test_plugins_json_lists_mock_with_options),
	        cmocka_unit_test(test_plugins_json_reports_broken_plugin),
	        cmocka_unit_test(test_wrong_abi_is_refused_with_both_versions),
	        cmocka_unit_test(test_missing_entry_symbol_is_refused),
	        cmocka_unit_test(test_text_file_is_refused_naming_it),
	        cmocka_unit_test(test_unknown_backend_lists_searched_paths),
	        cmocka_unit_test(test_unknown_mock_option_suggests_nearest),
	        cmocka_unit_test(test_mock_fail_start_is_an_error),
	        cmocka_unit_test(test_mock_garbage_between_frames_is_skipped),
	        cmocka_unit_test(test_mock_dropped_channel_is_reported),
	        cmocka_unit_test(test_mock_slow_replies_work),
	        cmocka_unit_test(test_mock_upload_failure_is_an_error),
	        cmocka_unit_test(test_plugin_stays_loaded_while_an_interpreter_lives),
	        cmocka_unit_test(test_plugins_json_survives_crashing_plugin_and_names_it),
	        cmocka_unit_test(test_plugins_json_loads_nothing_here),
	        cmocka_unit_test(test_crashing_plugin_is_refused_naming_file_and_signal),
	        cmocka_unit_test(test_capability_without_slot_is_refused),
	        cmocka_unit_test(test_ops_table_ending_at_shutdown_works_without_optional_features),
	        cmocka_unit_test(test_abi11_plugin_loads_validates_and_runs),
	        cmocka_unit_test(test_create_opts_only_plugin_loads_and_runs),
	        cmocka_unit_test(test_plugin_without_create_is_refused_naming_it),
	        cmocka_unit_test(test_secret_option_is_hidden_in_describe_and_errors),
	};

	plugin_dir = getenv("RLM_TEST_PLUGIN_DIR");
	if (!plugin_dir || !*plugin_dir) {
		fprintf(stderr, "test_loader: set RLM_TEST_PLUGIN_DIR to the test plugins' dir\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
