/* test_redact.c - secrets never reach a log line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(bearer_token_is_masked),
	        cmocka_unit_test(sk_key_is_masked),
	        cmocka_unit_test(key_value_pairs_are_masked),
	        cmocka_unit_test(secret_env_values_are_masked),
	        cmocka_unit_test(ordinary_text_is_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
