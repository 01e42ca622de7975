/* test_redact.c - secrets never reach a log line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "redact.h"

static void bearer_token_is_masked(void **state)
{
	(void)state;
	char *s = rlm_redact("Authorization: Bearer abc.def-123 sent");
	assert_null(strstr(s, "abc.def-123"));
	assert_non_null(strstr(s, "sent"));
	free(s);
}

static void sk_key_is_masked(void **state)
{
	(void)state;
	char *s = rlm_redact("key sk-proj-ABCDEF123456 used");
	assert_null(strstr(s, "ABCDEF123456"));
	free(s);
}

static void key_value_pairs_are_masked(void **state)
{
	(void)state;
	char *s = rlm_redact("url?api_key=s3cr3tvalue&x=1 {\"token\": \"tok_98765\"}");
	assert_null(strstr(s, "s3cr3tvalue"));
	assert_null(strstr(s, "tok_98765"));
	assert_non_null(strstr(s, "x=1"));
	free(s);
}

static void secret_env_values_are_masked(void **state)
{
	(void)state;
	setenv("MY_SERVICE_API_KEY", "zz-very-private-zz", 1);
	char *s = rlm_redact("the key is zz-very-private-zz, plainly");
	assert_null(strstr(s, "zz-very-private-zz"));
	assert_non_null(strstr(s, "plainly"));
	free(s);
	unsetenv("MY_SERVICE_API_KEY");
}

static void ordinary_text_is_unchanged(void **state)
{
	(void)state;
	char *s = rlm_redact("driver exited with status 3");
	assert_string_equal(s, "driver exited with status 3");
	free(s);
}

/* The one rule (redact.c): each run of bytes covered by a secret of 4+ bytes becomes "***". */
static void rule_masks(const char *text, const char *const *secrets, const char *want)
{
	char *buf = strdup(text);
	size_t n = rlm__redact_secrets(buf, secrets);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
	free(buf);
}

static void rule_short_secrets_are_ignored(void **state)
{
	(void)state;
	const char *const s[] = {"abc", "", NULL};
	rule_masks("abc abc", s, "abc abc");
}

static void rule_overlapping_secrets_leave_no_piece(void **state)
{
	(void)state;
	const char *const s[] = {"abcdX", "Xyz12", NULL};
	rule_masks("[abcdXyz12]", s, "[***]");
	const char *const t[] = {"aaaa", NULL};
	rule_masks("aaaaaa b aaaa", t, "*** b ***");
}

static void rule_secret_at_the_boundaries(void **state)
{
	(void)state;
	const char *const s[] = {"s3cret", NULL};
	rule_masks("s3cret mid s3cret", s, "*** mid ***");
	rule_masks("s3cret", s, "***");
}

static void rule_empty_or_no_list_changes_nothing(void **state)
{
	(void)state;
	const char *const none[] = {NULL};
	rule_masks("text s3cret", none, "text s3cret");
	rule_masks("text s3cret", NULL, "text s3cret");
	rule_masks("", none, "");
}

static void rule_json_escaped_spelling_is_masked(void **state)
{
	(void)state;
	const char *const s[] = {"pa\"ss", NULL};
	rule_masks("{\"k\":\"pa\\\"ss\"}", s, "{\"k\":\"***\"}");
}

static void rule_very_long_text(void **state)
{
	(void)state;
	size_t n = 1u << 20;
	char *buf = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (i % 100 == 50) ? 'K' : 'x';
	buf[n] = '\0';
	memcpy(buf + n - 8, "tok12345", 8);
	const char *const s[] = {"tok12345", NULL};
	size_t len = rlm__redact_secrets(buf, s);
	assert_int_equal(len, n - 8 + 3);
	assert_string_equal(buf + len - 3, "***");
	assert_null(strstr(buf, "tok1"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(bearer_token_is_masked),
	        cmocka_unit_test(rule_short_secrets_are_ignored),
	        cmocka_unit_test(rule_overlapping_secrets_leave_no_piece),
	        cmocka_unit_test(rule_secret_at_the_boundaries),
	        cmocka_unit_test(rule_empty_or_no_list_changes_nothing),
	        cmocka_unit_test(rule_json_escaped_spelling_is_masked),
	        cmocka_unit_test(rule_very_long_text),
	        cmocka_unit_test(sk_key_is_masked),
	        cmocka_unit_test(key_value_pairs_are_masked),
	        cmocka_unit_test(secret_env_values_are_masked),
	        cmocka_unit_test(ordinary_text_is_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
