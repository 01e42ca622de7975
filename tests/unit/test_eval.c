/* test_eval.c - the parts of rlm eval that need no sandbox: every scorer (rlm_eval_score), the
 * shard hash and the shard from the environment, whole-line row appends, quantiles, and the
 * task generators' determinism and expected answers. The runner is tested end to end in
 * tests/eval/test_eval.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_internal.h"
#include "rlm/rlm.h"
#include "util.h"

static double score(const char *scorer, const char *answer, const char *expected_json)
{
	double s = -1;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_eval_score(scorer, answer, expected_json, NULL, 30, &s, &err);
	if (rc)
		fail_msg("%s(%s, %s): %s", scorer, answer, expected_json, err.message);
	return s;
}

static int score_fails(const char *scorer, const char *answer, const char *expected_json,
                       const char *task_json, double timeout_s, rlm_error *err)
{
	double s = -1;
	return rlm_eval_score(scorer, answer, expected_json, task_json, timeout_s, &s, err);
}

/* ---- exact, contains, regex ---- */

static void test_exact_trims_and_folds_case(void **state)
{
	(void)state;
	assert_true(score("exact", "  Paris\n", "\"paris\"") == 1.0);
	assert_true(score("exact", "ÉCOLE ΑΘΗΝΑ Москва", "\"école αθηνα москва\"") == 1.0);
	assert_true(score("exact", "Paris, France", "\"paris\"") == 0.0);
	assert_true(score("exact", "42", "42") == 1.0); /* a number expected: its JSON text */
}

static void test_exact_takes_the_best_of_several_expected(void **state)
{
	(void)state;
	assert_true(score("exact", "NYC", "[\"New York\", \"nyc\"]") == 1.0);
	assert_true(score("exact", "Boston", "[\"New York\", \"nyc\"]") == 0.0);
}

static void test_contains_is_a_folded_substring(void **state)
{
	(void)state;
	assert_true(score("contains", "The capital is PARIS.", "\"paris\"") == 1.0);
	assert_true(score("contains", "The capital is Lyon.", "\"paris\"") == 0.0);
}

static void test_regex_is_extended_and_matches_anywhere(void **state)
{
	(void)state;
	assert_true(score("regex", "answer: 2024-05-01", "\"[0-9]{4}-[0-9]{2}-[0-9]{2}\"") == 1.0);
	assert_true(score("regex", "answer: May 1st", "\"^[0-9]+$\"") == 0.0);
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(score_fails("regex", "x", "\"(\"", NULL, 0, &err), RLM_EINVAL);
	assert_non_null(strstr(err.message, "bad pattern"));
}

/* ---- numeric ---- */

static void test_numeric_is_one_when_equal_and_decays_by_distance(void **state)
{
	(void)state;
	assert_true(score("numeric", "42", "42") == 1.0);
	assert_true(fabs(score("numeric", "41", "42") - 0.75) < 1e-12);
	assert_true(fabs(score("numeric", "45", "42") - pow(0.75, 3)) < 1e-12);
	assert_true(fabs(score("numeric", "42.5", "42") - pow(0.75, 0.5)) < 1e-12);
	assert_true(score("numeric", "no idea", "42") == 0.0);
}

static void test_numeric_reads_the_number_in_an_answer(void **state)
{
	(void)state;
	assert_true(score("numeric", "There are 1,234 records.", "1234") == 1.0);
	assert_true(score("numeric", "Out of 500 records, 42 have it.", "42") == 1.0);
	assert_true(score("numeric", "-7", "\"-7\"") == 1.0);
	assert_true(score("numeric", "item-3", "3") == 1.0);
	assert_true(score("numeric", "1.5e3", "1500") == 1.0);
	double v;
	assert_int_equal(rlm__eval_number_in("  17  ", &v), 1);
	assert_true(v == 17);
	assert_int_equal(rlm__eval_number_in("none", &v), 0);
}

/* ---- f1 ---- */

static void test_f1_is_token_overlap(void **state)
{
	(void)state;
	assert_true(score("f1", "The Eiffel Tower", "\"eiffel tower\"") == 1.0); /* article gone */
	/* answer tokens {red, big, ball}, expected {red, ball}: p 2/3, r 1 -> 0.8 */
	assert_true(fabs(score("f1", "red big ball", "\"red ball\"") - 0.8) < 1e-12);
	assert_true(score("f1", "blue", "\"red\"") == 0.0);
	assert_true(score("f1", "", "\"\"") == 1.0);
	/* a token matches once: {x, x, y} against {y, y} has one in common, p 1/3, r 1/2 */
	assert_true(fabs(score("f1", "x x y", "\"y y\"") - 0.4) < 1e-12);
}

/* ---- cmd: ---- */

static void test_cmd_gets_task_and_answer_as_json(void **state)
{
	(void)state;
	const char *cmd = "cmd:python3 -c \"import json,sys; d=json.load(sys.stdin); "
	                  "print(0.25 if d['answer']=='x' and d['task']['id']=='t1' and "
	                  "d['expected']==[1] else 0)\"";
	double s = -1;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_eval_score(cmd, "x", "[1]", "{\"id\":\"t1\"}", 30, &s, &err), 0);
	assert_true(s == 0.25);
}

static void test_cmd_that_prints_no_number_is_an_error(void **state)
{
	(void)state;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(score_fails("cmd:echo nope", "x", NULL, NULL, 30, &err), RLM_EBACKEND);
	assert_non_null(strstr(err.message, "not one number"));
	assert_int_equal(score_fails("cmd:echo oops >&2; exit 3", "x", NULL, NULL, 30, &err),
	                 RLM_EBACKEND);
	assert_non_null(strstr(err.message, "exited with status 3"));
	assert_non_null(strstr(err.message, "oops"));
}

static void test_cmd_past_its_deadline_is_killed(void **state)
{
	(void)state;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = rlm_now();
	/* the group is killed: the sleep's child too, so the pipes close */
	assert_int_equal(score_fails("cmd:sleep 30 & sleep 30", "x", NULL, NULL, 0.3, &err),
	                 RLM_ETIMEOUT);
	assert_true(rlm_now() - t0 < 20);
}

static void test_cmd_that_reads_no_input_still_scores(void **state)
{
	(void)state;
	/* 1 MiB of answer to a command that never reads it: no SIGPIPE, no hang */
	char *big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, 'a', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	double s = -1;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_eval_score("cmd:echo 1", big, NULL, NULL, 30, &s, &err), 0);
	assert_true(s == 1.0);
	free(big);
}

static void test_unknown_scorer_is_refused(void **state)
{
	(void)state;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(score_fails("fuzzy", "x", "\"x\"", NULL, 0, &err), RLM_EINVAL);
	assert_int_equal(score_fails("cmd:", "x", "\"x\"", NULL, 0, &err), RLM_EINVAL);
}

/* ---- shards ---- */

static void test_fnv1a64_known_values(void **state)
{
	(void)state;
	assert_true(rlm_eval_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	assert_true(rlm_eval_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(rlm_eval_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
	assert_int_equal(rlm_eval_shard_of("foobar", 7), (long)(0x85944171f73967e8ULL % 7));
}

static void test_shard_from_slurm_and_kubernetes(void **state)
{
	(void)state;
	long k, n;
	rlm_error err = RLM_ERROR_INIT;
	unsetenv("JOB_COMPLETION_INDEX");
	setenv("SLURM_ARRAY_TASK_ID", "12", 1);
	setenv("SLURM_ARRAY_TASK_MIN", "10", 1);
	setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
	assert_int_equal(rlm_eval_shard_from_env(0, &k, &n, &err), 0);
	assert_int_equal(k, 2);
	assert_int_equal(n, 4);
	setenv("SLURM_ARRAY_TASK_ID", "20", 1); /* a stepped array: not a shard */
	assert_int_equal(rlm_eval_shard_from_env(0, &k, &n, &err), RLM_EINVAL);
	unsetenv("SLURM_ARRAY_TASK_ID");
	unsetenv("SLURM_ARRAY_TASK_MIN");
	unsetenv("SLURM_ARRAY_TASK_COUNT");
	setenv("JOB_COMPLETION_INDEX", "3", 1);
	assert_int_equal(rlm_eval_shard_from_env(0, &k, &n, &err), RLM_EINVAL); /* no --shards */
	assert_int_equal(rlm_eval_shard_from_env(8, &k, &n, &err), 0);
	assert_int_equal(k, 3);
	assert_int_equal(n, 8);
	assert_int_equal(rlm_eval_shard_from_env(3, &k, &n, &err), RLM_EINVAL);
	unsetenv("JOB_COMPLETION_INDEX");
	assert_int_equal(rlm_eval_shard_from_env(0, &k, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rlm_eval_shard_from_env(4, &k, &n, &err), RLM_EINVAL);
}

/* ---- rows ---- */

static void test_row_is_appended_whole_with_one_newline(void **state)
{
	(void)state;
	char path[] = "/tmp/rlm-test-eval-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_WRONLY | O_APPEND);
	json_object *row =
	        json_tokener_parse("{\"id\":\"a\\nb\",\"status\":\"ok\",\"answer\":\"x/y\"}");
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm__eval_row_append(fd, row, &err), 0);
	assert_int_equal(rlm__eval_row_append(fd, row, &err), 0);
	close(fd);
	json_object_put(row);
	struct eval_results r = {0};
	assert_int_equal(rlm__eval_results_read(path, NULL, &r, &err), 0);
	assert_int_equal(r.n, 1); /* the same id twice: the last row stands */
	assert_int_equal(r.bad_lines, 0);
	rlm__eval_results_free(&r);
	FILE *f = fopen(path, "r");
	char buf[256];
	int lines = 0;
	while (fgets(buf, sizeof(buf), f))
		lines++;
	fclose(f);
	assert_int_equal(lines, 2);
	unlink(path);
}

static void test_quantile_by_nearest_rank(void **state)
{
	(void)state;
	double v[] = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
	assert_true(rlm__eval_quantile(v, 10, 0.5) == 5);
	assert_true(rlm__eval_quantile(v, 10, 0.95) == 10);
	assert_true(rlm__eval_quantile(v, 0, 0.5) == 0);
}

/* ---- generators ---- */

struct lines {
	rlm_sb text;
	int n;
};

static int collect(void *ctx, const char *line, size_t len)
{
	struct lines *l = ctx;
	rlm_sb_append(&l->text, line, len);
	rlm_sb_puts(&l->text, "\n");
	l->n++;
	return 0;
}

static char *generate(const char *family, long n, long length, uint64_t seed, int *count)
{
	struct lines l = {0};
	rlm_eval_gen_options g = RLM_EVAL_GEN_OPTIONS_INIT;
	g.family = family;
	g.n = n;
	g.length = length;
	g.seed = seed;
	g.emit = collect;
	g.emit_ctx = &l;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_eval_generate(&g, &err))
		fail_msg("generate: %s", err.message);
	*count = l.n;
	return rlm_sb_take(&l.text);
}

static void test_generators_are_deterministic(void **state)
{
	(void)state;
	int n1, n2, n3;
	char *a = generate("sniah", 5, 3000, 7, &n1), *b = generate("sniah", 5, 3000, 7, &n2);
	char *c = generate("sniah", 5, 3000, 8, &n3);
	assert_int_equal(n1, 5);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	free(a);
	free(b);
	free(c);
	/* task i does not depend on n */
	char *two = generate("count", 2, 2000, 1, &n1), *five = generate("count", 5, 2000, 1, &n2);
	assert_memory_equal(two, five, strlen(two));
	free(two);
	free(five);
}

static void test_generated_answers_are_in_the_context(void **state)
{
	(void)state;
	int n;
	char *text = generate("sniah", 3, 5000, 3, &n);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_object *t = json_tokener_parse(line), *ctx, *exp;
		assert_true(json_object_object_get_ex(t, "context", &ctx));
		assert_true(json_object_object_get_ex(t, "expected", &exp));
		char needle[64];
		snprintf(needle, sizeof(needle), "is: %s.", json_object_get_string(exp));
		assert_non_null(strstr(json_object_get_string(ctx), needle));
		long len = json_object_get_string_len(ctx);
		assert_true(len > 4500 && len < 5500);
		json_object_put(t);
	}
	free(text);
	text = generate("count", 3, 4000, 3, &n);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_object *t = json_tokener_parse(line), *ctx, *exp, *meta, *label;
		json_object_object_get_ex(t, "context", &ctx);
		json_object_object_get_ex(t, "expected", &exp);
		json_object_object_get_ex(t, "metadata", &meta);
		json_object_object_get_ex(meta, "label", &label);
		char want[64];
		snprintf(want, sizeof(want), "| label: %s\n", json_object_get_string(label));
		long count = 0;
		for (const char *p = json_object_get_string(ctx); (p = strstr(p, want)); p++)
			count++;
		assert_int_equal(count, json_object_get_int64(exp));
		json_object_put(t);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_trims_and_folds_case),
	        cmocka_unit_test(test_exact_takes_the_best_of_several_expected),
	        cmocka_unit_test(test_contains_is_a_folded_substring),
	        cmocka_unit_test(test_regex_is_extended_and_matches_anywhere),
	        cmocka_unit_test(test_numeric_is_one_when_equal_and_decays_by_distance),
	        cmocka_unit_test(test_numeric_reads_the_number_in_an_answer),
	        cmocka_unit_test(test_f1_is_token_overlap),
	        cmocka_unit_test(test_cmd_gets_task_and_answer_as_json),
	        cmocka_unit_test(test_cmd_that_prints_no_number_is_an_error),
	        cmocka_unit_test(test_cmd_past_its_deadline_is_killed),
	        cmocka_unit_test(test_cmd_that_reads_no_input_still_scores),
	        cmocka_unit_test(test_unknown_scorer_is_refused),
	        cmocka_unit_test(test_fnv1a64_known_values),
	        cmocka_unit_test(test_shard_from_slurm_and_kubernetes),
	        cmocka_unit_test(test_row_is_appended_whole_with_one_newline),
	        cmocka_unit_test(test_quantile_by_nearest_rank),
	        cmocka_unit_test(test_generators_are_deterministic),
	        cmocka_unit_test(test_generated_answers_are_in_the_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
