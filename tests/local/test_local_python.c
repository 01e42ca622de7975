/* test_local_python.c - as root, when the python3 first on PATH cannot be run by the sandbox
 * uid, the local backend falls back to the next one that can, and says so once, at warning
 * level, naming the option that chooses (issue 10, item 5). */
#include "local_test.h"

#include <fcntl.h>

/* Opens a local interpreter with stderr going to a file; returns what was written there. */
static char *open_capturing_stderr(rlm_interp **in)
{
	char path[] = "/tmp/rlm-python-test-stderr-XXXXXX", *text;
	int fd = mkstemp(path), saved;
	off_t len;

	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	*in = lt_open(NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	len = lseek(fd, 0, SEEK_END);
	text = calloc(1, (size_t)len + 1);
	assert_int_equal(pread(fd, text, (size_t)len, 0), len);
	close(fd);
	return text;
}

static void an_unreachable_python3_on_path_is_replaced_with_a_warning(void **state)
{
	char top[] = "/tmp/rlm-python-test-XXXXXX", bin[64], link[96], path[256], *log, *out;
	const char *real = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
	rlm_interp *in;

	(void)state;
	if (geteuid() != 0 || !real)
		skip();                /* only root drops to a sandbox uid that can be locked out */
	assert_non_null(mkdtemp(top)); /* 0700 root: the sandbox uid cannot search it */
	snprintf(bin, sizeof(bin), "%s/bin", top);
	assert_int_equal(mkdir(bin, 0755), 0);
	snprintf(link, sizeof(link), "%s/python3", bin);
	assert_int_equal(symlink(real, link), 0);
	snprintf(path, sizeof(path), "%s:/usr/bin:/bin", bin);
	assert_int_equal(setenv("PATH", path, 1), 0);

	log = open_capturing_stderr(&in);
	printf("stderr: %s", log);
	out = lt_run(in, "import sys\nprint(sys.executable)");
	assert_string_equal(out, "/usr/bin/python3\n");
	assert_non_null(strstr(log, "[warn]"));
	assert_non_null(strstr(log, link));
	assert_non_null(strstr(log, "backends.local.python"));
	free(out);
	free(log);
	rlm_interp_close(in);

	/* Once per process, not once per interpreter. */
	log = open_capturing_stderr(&in);
	assert_null(strstr(log, "backends.local.python"));
	free(log);
	rlm_interp_close(in);

	unlink(link);
	rmdir(bin);
	rmdir(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(an_unreachable_python3_on_path_is_replaced_with_a_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
