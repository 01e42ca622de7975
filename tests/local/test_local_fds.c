/* test_local_fds.c - a host holding more fds than the sandbox's max_open_files can still open
 * local interpreters: the child closes what it inherited before RLIMIT_NOFILE applies
 * (issue 15: setup failed with "Too many open files" once the host held ~1000 fds). */
#include "local_test.h"

#include <fcntl.h>
#include <sys/resource.h>

#define HOST_FDS 1100 /* above the default max_open_files (1024) */

static void interpreters_open_while_the_host_holds_more_fds_than_max_open_files(void **state)
{
	struct rlimit old, big;
	int fds[HOST_FDS], null_fd;
	rlm_interp *in[2];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	big = old;
	if (big.rlim_cur < 4096)
		big.rlim_cur = 4096;
	if (big.rlim_max != RLIM_INFINITY && big.rlim_max < big.rlim_cur) {
		if (geteuid() != 0)
			skip(); /* the host cannot hold that many fds here */
		big.rlim_max = big.rlim_cur;
	}
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &big), 0);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null_fd >= 0);
	for (int i = 0; i < HOST_FDS; i++) {
		fds[i] = fcntl(null_fd, F_DUPFD_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
	}
	assert_true(fds[HOST_FDS - 1] > 1024);
	for (int i = 0; i < 2; i++)
		in[i] = lt_open(NULL);
	for (int i = 0; i < 2; i++) {
		char *out = lt_run(in[i], "import resource\n"
		                          "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])");
		assert_string_equal(out, "1024\n");
		free(out);
		rlm_interp_close(in[i]);
	}
	for (int i = 0; i < HOST_FDS; i++)
		close(fds[i]);
	close(null_fd);
	setrlimit(RLIMIT_NOFILE, &old);
}

/* Out of fds, an open says which limit to raise (the library never raises it itself), and the
 * interpreters already open keep working. */
static void an_open_past_the_host_fd_limit_names_rlimit_nofile(void **state)
{
	struct rlimit old, low;
	rlm_interp *in[64];
	rlm_error err = RLM_ERROR_INIT;
	int n = 0, rc = 0, fd;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	fd = open("/dev/null",
	          O_RDONLY | O_CLOEXEC); /* the lowest free fd: about how many are open */
	assert_true(fd >= 0);
	close(fd);
	low = old;
	low.rlim_cur = (rlim_t)fd + 16; /* room for a few interpreters, then none */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 64 && (rc = lt_try_open(NULL, &in[n], &err)) == 0)
		n++;
	setrlimit(RLIMIT_NOFILE, &old);
	assert_int_not_equal(rc, 0);
	assert_true(n >= 1);
	if (!strstr(err.message, "RLIMIT_NOFILE soft limit"))
		fail_msg("after %d interpreters: %s", n, err.message);
	for (int i = 0; i < n; i++) {
		char *out = lt_run(in[i], "print(6 * 7)");
		assert_string_equal(out, "42\n");
		free(out);
		rlm_interp_close(in[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                interpreters_open_while_the_host_holds_more_fds_than_max_open_files),
	        cmocka_unit_test(an_open_past_the_host_fd_limit_names_rlimit_nofile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
