/* test_options.c - ABI 1.2 option definitions (core/config.c, core/options.c): where a value
 * comes from (config > env > default, null stays null), environment parsing per type, ranges,
 * choices, REQUIRED / NONEMPTY / SECRET, the typed view's readers, and create_opts preferred
 * to create. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "host.h"

#define ENV_HOST   "RLM_TEST_OPT_HOST"
#define ENV_PORT   "RLM_TEST_OPT_PORT"
#define ENV_RATIO  "RLM_TEST_OPT_RATIO"
#define ENV_FAST   "RLM_TEST_OPT_FAST"
#define ENV_TAGS   "RLM_TEST_OPT_TAGS"
#define ENV_LABELS "RLM_TEST_OPT_LABELS"
#define ENV_TOKEN  "RLM_TEST_OPT_TOKEN"
#define SECRET     "sk-test-very-secret-4242"

static const char *const modes[] = {"fast", "safe", NULL};

static const rlm_option_def defs[] = {
        RLM_OPTION_DEF(.name = "host", .type = RLM_OPT_STRING, .default_json = "\"localhost\"",
                       .doc = "host", .env = ENV_HOST),
        RLM_OPTION_DEF(.name = "port", .type = RLM_OPT_INT, .default_json = "8080", .doc = "port",
                       .env = ENV_PORT, .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 1,
                       .max = 65535),
        RLM_OPTION_DEF(.name = "ratio", .type = RLM_OPT_NUMBER, .default_json = "0.5",
                       .doc = "ratio", .env = ENV_RATIO, .flags = RLM_OPTF_MIN | RLM_OPTF_MAX,
                       .min = 0, .max = 1),
        RLM_OPTION_DEF(.name = "fast", .type = RLM_OPT_BOOL, .default_json = "false", .doc = "fast",
                       .env = ENV_FAST),
        RLM_OPTION_DEF(.name = "tags", .type = RLM_OPT_STRING_LIST, .default_json = "[]",
                       .doc = "tags", .env = ENV_TAGS, .flags = RLM_OPTF_NONEMPTY),
        RLM_OPTION_DEF(.name = "labels", .type = RLM_OPT_OBJECT, .doc = "labels",
                       .env = ENV_LABELS),
        RLM_OPTION_DEF(.name = "mode", .type = RLM_OPT_STRING, .default_json = "\"safe\"",
                       .doc = "mode", .choices = modes),
        RLM_OPTION_DEF(.name = "token", .type = RLM_OPT_STRING, .doc = "API token",
                       .env = ENV_TOKEN, .flags = RLM_OPTF_SECRET | RLM_OPTF_NONEMPTY),
        RLM_OPTION_DEF(.name = "nodefault", .type = RLM_OPT_STRING, .doc = "no default"),
        {0},
};

static void clear_env(void)
{
	const char *names[] = {ENV_HOST, ENV_PORT,   ENV_RATIO, ENV_FAST,
	                       ENV_TAGS, ENV_LABELS, ENV_TOKEN};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

static int setup(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

/* Applies defs to section_json (NULL: no section); returns the status, *out the result. */
static int apply(const rlm_option_def *d, const char *section_json, json_object **out,
                 rlm_error *err)
{
	json_object *section = section_json ? json_tokener_parse(section_json) : NULL;
	int rc;

	if (section_json && !section)
		fail_msg("bad test JSON: %s", section_json);
	*out = NULL;
	rc = rlm__option_defs_apply(d, section, "backends.t", out, err);
	json_object_put(section);
	if (rc)
		assert_null(*out);
	return rc;
}

static json_object *apply_ok(const char *section_json)
{
	rlm_error err = RLM_ERROR_INIT;
	json_object *out;

	if (apply(defs, section_json, &out, &err) != 0)
		fail_msg("apply %s: %s", section_json ? section_json : "(none)", err.message);
	return out;
}

/* Expects apply to fail with code and a message holding each needle and none of absent. */
static void expect_refused(const rlm_option_def *d, const char *section_json, int code,
                           const char *const *needles, const char *absent)
{
	rlm_error err = RLM_ERROR_INIT;
	json_object *out;
	int rc = apply(d, section_json, &out, &err);

	if (rc != code)
		fail_msg("%s: expected %s, got %s: %s", section_json ? section_json : "(none)",
		         rlm_status_name(code), rlm_status_name(rc), err.message);
	for (size_t i = 0; needles && needles[i]; i++)
		if (!strstr(err.message, needles[i]))
			fail_msg("expected \"%s\" in \"%s\"", needles[i], err.message);
	if (absent && strstr(err.message, absent))
		fail_msg("\"%s\" must not appear in \"%s\"", absent, err.message);
}

static void assert_value(json_object *o, const char *name, const char *json)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, name, &v))
		fail_msg("no %s in %s", name, json_object_to_json_string(o));
	assert_string_equal(v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null",
	                    json);
}

static void config_beats_env_beats_default(void **state)
{
	json_object *o;

	(void)state;
	o = apply_ok(NULL);
	assert_value(o, "host", "\"localhost\"");
	assert_value(o, "port", "8080");
	assert_value(o, "nodefault", "null");
	assert_value(o, "token", "null");
	json_object_put(o);
	setenv(ENV_HOST, "from-env", 1);
	setenv(ENV_PORT, "9090", 1);
	o = apply_ok("{}");
	assert_value(o, "host", "\"from-env\"");
	assert_value(o, "port", "9090"); /* an integral env number is an INT */
	json_object_put(o);
	o = apply_ok("{\"host\":\"from-config\",\"port\":7070}");
	assert_value(o, "host", "\"from-config\"");
	assert_value(o, "port", "7070");
	json_object_put(o);
	/* null in the config stays null: neither the env nor the default fills it. */
	o = apply_ok("{\"host\":null}");
	assert_value(o, "host", "null");
	json_object_put(o);
	/* An empty env var counts as unset. */
	setenv(ENV_HOST, "", 1);
	o = apply_ok(NULL);
	assert_value(o, "host", "\"localhost\"");
	json_object_put(o);
	clear_env();
}

static void env_values_are_parsed_by_type(void **state)
{
	json_object *o;

	(void)state;
	setenv(ENV_RATIO, "0.25", 1);
	setenv(ENV_FAST, "Yes", 1);
	setenv(ENV_TAGS, "a, b ,c", 1);
	setenv(ENV_LABELS, "{\"team\":\"x\"}", 1);
	setenv(ENV_TOKEN, SECRET, 1);
	o = apply_ok(NULL);
	assert_value(o, "ratio", "0.25");
	assert_value(o, "fast", "true");
	assert_value(o, "tags", "[\"a\",\"b\",\"c\"]");
	assert_value(o, "labels", "{\"team\":\"x\"}");
	assert_value(o, "token", "\"" SECRET "\"");
	json_object_put(o);
	setenv(ENV_FAST, "off", 1);
	setenv(ENV_TAGS, "[\"x,y\",\"z\"]", 1);
	o = apply_ok(NULL);
	assert_value(o, "fast", "false");
	assert_value(o, "tags", "[\"x,y\",\"z\"]");
	json_object_put(o);
	clear_env();
}

static void bad_env_values_name_the_variable(void **state)
{
	(void)state;
	{
		const char *n[] = {ENV_PORT, "backends.t.port", "12x", NULL};
		setenv(ENV_PORT, "12x", 1);
		expect_refused(defs, NULL, RLM_ECONFIG, n, NULL);
		clear_env();
	}
	{
		const char *n[] = {ENV_FAST, "maybe", NULL};
		setenv(ENV_FAST, "maybe", 1);
		expect_refused(defs, NULL, RLM_ECONFIG, n, NULL);
		clear_env();
	}
	{
		const char *n[] = {ENV_LABELS, NULL};
		setenv(ENV_LABELS, "{not json", 1);
		expect_refused(defs, NULL, RLM_ECONFIG, n, NULL);
		clear_env();
	}
	{
		/* Out of range from the env: the variable is named too. */
		const char *n[] = {ENV_PORT, "65535", NULL};
		setenv(ENV_PORT, "70000", 1);
		expect_refused(defs, NULL, RLM_ECONFIG, n, NULL);
		clear_env();
	}
}

static const rlm_option_def secret_int[] = {
        RLM_OPTION_DEF(.name = "pin", .type = RLM_OPT_INT, .doc = "a secret number",
                       .env = ENV_PORT, .flags = RLM_OPTF_SECRET | RLM_OPTF_MAX, .max = 10),
        {0},
};

static void secret_values_are_never_quoted(void **state)
{
	(void)state;
	{
		/* An unparsable env value of a secret option: named, not quoted. */
		const char *n[] = {ENV_PORT, "backends.t.pin", NULL};
		setenv(ENV_PORT, "98765-secret-pin", 1);
		expect_refused(secret_int, NULL, RLM_ECONFIG, n, "98765");
		clear_env();
	}
	{
		const char *n[] = {"backends.t.pin", "(secret)", NULL};
		expect_refused(secret_int, "{\"pin\":\"" SECRET "\"}", RLM_ECONFIG, n, SECRET);
		expect_refused(secret_int, "{\"pin\":987654321}", RLM_ECONFIG, n, "987654321");
	}
	{
		const char *n[] = {"backends.t.token", NULL};
		expect_refused(defs, "{\"token\":42424242}", RLM_ECONFIG, n, "42424242");
	}
}

static void ranges_are_enforced(void **state)
{
	const char *port[] = {"backends.t.port", "1", "65535", NULL};
	const char *ratio[] = {"backends.t.ratio", NULL};
	json_object *o;

	(void)state;
	expect_refused(defs, "{\"port\":0}", RLM_ECONFIG, port, NULL);
	expect_refused(defs, "{\"port\":65536}", RLM_ECONFIG, port, NULL);
	expect_refused(defs, "{\"port\":1.5}", RLM_ECONFIG, port, NULL);
	expect_refused(defs, "{\"ratio\":1.01}", RLM_ECONFIG, ratio, NULL);
	expect_refused(defs, "{\"ratio\":-0.01}", RLM_ECONFIG, ratio, NULL);
	o = apply_ok("{\"port\":1,\"ratio\":1}");
	assert_value(o, "port", "1");
	json_object_put(o);
	o = apply_ok("{\"port\":65535,\"ratio\":0}");
	assert_value(o, "port", "65535");
	json_object_put(o);
	o = apply_ok("{\"port\":80.0}"); /* an integral number is an INT */
	assert_value(o, "port", "80");
	json_object_put(o);
}

static void choices_are_enforced(void **state)
{
	const char *n[] = {"backends.t.mode", "fast", "safe", "\"quick\"", NULL};
	json_object *o;

	(void)state;
	expect_refused(defs, "{\"mode\":\"quick\"}", RLM_ECONFIG, n, NULL);
	o = apply_ok("{\"mode\":\"fast\"}");
	assert_value(o, "mode", "\"fast\"");
	json_object_put(o);
}

static const rlm_option_def required[] = {
        RLM_OPTION_DEF(.name = "key", .type = RLM_OPT_STRING, .doc = "the key", .env = ENV_TOKEN,
                       .flags = RLM_OPTF_REQUIRED | RLM_OPTF_SECRET),
        {0},
};

static void required_and_nonempty(void **state)
{
	const char *req[] = {"backends.t.key", "required", ENV_TOKEN, NULL};
	const char *empty[] = {"backends.t.tags", "empty", NULL};
	const char *empty_token[] = {"backends.t.token", "empty", NULL};
	json_object *o;

	(void)state;
	expect_refused(required, NULL, RLM_ECONFIG, req, NULL);
	expect_refused(required, "{\"key\":null}", RLM_ECONFIG, req, NULL);
	setenv(ENV_TOKEN, SECRET, 1);
	assert_int_equal(apply(required, NULL, &o, &(rlm_error){0}), 0);
	assert_value(o, "key", "\"" SECRET "\"");
	json_object_put(o);
	clear_env();
	expect_refused(defs, "{\"tags\":[\"a\",\"\"]}", RLM_ECONFIG, empty, NULL);
	expect_refused(defs, "{\"token\":\"\"}", RLM_ECONFIG, empty_token, NULL);
	o = apply_ok("{\"tags\":\"solo\"}"); /* a plain string is a one-element list */
	assert_value(o, "tags", "[\"solo\"]");
	json_object_put(o);
	o = apply_ok("{\"tags\":\"\"}"); /* and "" the empty list, as --set tags= gives */
	assert_value(o, "tags", "[]");
	json_object_put(o);
}

static void unknown_key_names_the_nearest(void **state)
{
	const char *n[] = {"backends.t", "\"prot\"", "\"port\"", NULL};

	(void)state;
	expect_refused(defs, "{\"prot\":1}", RLM_ECONFIG, n, NULL);
}

/* ---- the typed view ---- */

static rlm_options *view_of(const char *section_json, json_object **filled)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_options *v = NULL;

	*filled = apply_ok(section_json);
	if (rlm__options_view_new(defs, *filled, &v, &err) != 0)
		fail_msg("view: %s", err.message);
	return v;
}

static void view_reads_each_type(void **state)
{
	json_object *filled;
	rlm_options *v = view_of("{\"host\":\"h\",\"port\":22,\"ratio\":0.75,\"fast\":true,"
	                         "\"tags\":[\"a\",\"b\"],\"labels\":{\"k\":\"v\"}}",
	                         &filled);
	const rlm_host_api *h = rlm__host();
	const char *const *tags;

	(void)state;
	assert_true(RLM_HAS_FIELD(h, opt_object_json));
	assert_string_equal(h->opt_string(v, "host"), "h");
	assert_int_equal(h->opt_int(v, "port"), 22);
	assert_true(h->opt_number(v, "port") == 22.0); /* an INT reads as a NUMBER too */
	assert_true(h->opt_number(v, "ratio") == 0.75);
	assert_int_equal(h->opt_bool(v, "fast"), 1);
	tags = h->opt_string_list(v, "tags");
	assert_string_equal(tags[0], "a");
	assert_string_equal(tags[1], "b");
	assert_null(tags[2]);
	assert_string_equal(h->opt_object_json(v, "labels"), "{\"k\":\"v\"}");
	assert_int_equal(h->opt_is_set(v, "host"), 1);
	assert_int_equal(h->opt_is_set(v, "nodefault"), 0);
	assert_int_equal(h->opt_is_set(v, "labels"), 1);
	/* The whole section, defaults filled in. */
	assert_non_null(strstr(h->opt_object_json(v, NULL), "\"mode\":\"safe\""));
	rlm__options_view_free(v);
	json_object_put(filled);
}

static void view_unknown_or_mistyped_names_read_unset(void **state)
{
	json_object *filled;
	rlm_options *v = view_of("{\"labels\":null}", &filled);
	const rlm_host_api *h = rlm__host();

	(void)state;
	assert_int_equal(h->opt_is_set(v, "nope"), 0);
	assert_null(h->opt_string(v, "nope"));
	assert_int_equal(h->opt_int(v, "nope"), 0);
	assert_true(h->opt_number(v, "nope") == 0.0);
	assert_int_equal(h->opt_bool(v, "nope"), 0);
	assert_non_null(h->opt_string_list(v, "nope"));
	assert_null(h->opt_string_list(v, "nope")[0]);
	assert_string_equal(h->opt_object_json(v, "nope"), "{}");
	assert_null(h->opt_string(v, NULL));
	/* Another type's reader: unset, not a conversion. */
	assert_null(h->opt_string(v, "port"));
	assert_int_equal(h->opt_int(v, "host"), 0);
	assert_int_equal(h->opt_int(v, "ratio"), 0);
	assert_int_equal(h->opt_bool(v, "port"), 0);
	/* Unset values of each type. */
	assert_null(h->opt_string(v, "nodefault"));
	assert_string_equal(h->opt_object_json(v, "labels"), "{}");
	assert_null(h->opt_string_list(v, "tags")[0]); /* default [] */
	rlm__options_view_free(v);
	json_object_put(filled);
	/* A NULL view reads as all unset. */
	assert_null(h->opt_string(NULL, "host"));
	assert_int_equal(h->opt_is_set(NULL, "host"), 0);
}

/* ---- create_opts preferred to create ---- */

static int created_by; /* 1: create, 2: create_opts */
static char seen_host[64];

static int fake_create(const rlm_host_api *host, const char *config_json, void **instance,
                       rlm_error *err)
{
	(void)host;
	(void)config_json;
	(void)err;
	created_by = 1;
	*instance = &created_by;
	return 0;
}

static int fake_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                            rlm_error *err)
{
	const char *s = host->opt_string(opts, "host");

	(void)err;
	created_by = 2;
	snprintf(seen_host, sizeof(seen_host), "%s", s ? s : "(unset)");
	*instance = &created_by;
	return 0;
}

static void create_opts_is_preferred_to_create(void **state)
{
	rlm_plugin_desc desc = {.abi_version = RLM_ABI_VERSION,
	                        .struct_size = sizeof(rlm_plugin_desc),
	                        .kind = RLM_PLUGIN_BACKEND,
	                        .name = "t",
	                        .option_defs = defs};
	rlm_error err = RLM_ERROR_INIT;
	json_object *section = json_tokener_parse("{\"host\":\"example\"}");
	void *inst = NULL;

	(void)state;
	created_by = 0;
	assert_int_equal(rlm__plugin_instance_create(&desc, fake_create, fake_create_opts, section,
	                                             "backends.t", &inst, NULL, &err),
	                 0);
	assert_int_equal(created_by, 2);
	assert_string_equal(seen_host, "example");
	created_by = 0;
	assert_int_equal(rlm__plugin_instance_create(&desc, fake_create, NULL, section,
	                                             "backends.t", &inst, NULL, &err),
	                 0);
	assert_int_equal(created_by, 1);
	/* A section that fails validation reaches neither. */
	json_object_put(section);
	section = json_tokener_parse("{\"port\":0}");
	created_by = 0;
	assert_int_equal(rlm__plugin_instance_create(&desc, fake_create, fake_create_opts, section,
	                                             "backends.t", &inst, NULL, &err),
	                 RLM_ECONFIG);
	assert_int_equal(created_by, 0);
	assert_null(inst);
	json_object_put(section);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(config_beats_env_beats_default, setup),
	        cmocka_unit_test_setup(env_values_are_parsed_by_type, setup),
	        cmocka_unit_test_setup(bad_env_values_name_the_variable, setup),
	        cmocka_unit_test_setup(secret_values_are_never_quoted, setup),
	        cmocka_unit_test_setup(ranges_are_enforced, setup),
	        cmocka_unit_test_setup(choices_are_enforced, setup),
	        cmocka_unit_test_setup(required_and_nonempty, setup),
	        cmocka_unit_test_setup(unknown_key_names_the_nearest, setup),
	        cmocka_unit_test_setup(view_reads_each_type, setup),
	        cmocka_unit_test_setup(view_unknown_or_mistyped_names_read_unset, setup),
	        cmocka_unit_test_setup(create_opts_is_preferred_to_create, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
