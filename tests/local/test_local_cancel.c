/* test_local_cancel.c - the local backend honours the ABI 1.2 cancel flags: a cell spinning
 * in `while True: pass` and a running command return RLM_ECANCELLED soon after another thread
 * cancels, and rlm_interp_close then leaves nothing of the sandbox running. */
#include "local_test.h"

#include <pthread.h>

/* Generous, for a loaded machine: the backend polls the flag every 100 ms. */
#define PROMPT_S 5.0

struct canceller {
	rlm_interp *in;
	char marker[PATH_MAX]; /* cancels once this file exists */
	double cancelled_at;
};

static void *cancel_when_marked(void *arg)
{
	struct canceller *c = arg;
	double give_up = lt_now() + 60;

	while (!lt_exists(c->marker) && lt_now() < give_up) {
		struct timespec ts = {0, 5 * 1000000};
		nanosleep(&ts, NULL);
	}
	c->cancelled_at = lt_now();
	rlm_interp_cancel(c->in);
	return NULL;
}

static void start_canceller(pthread_t *t, struct canceller *c, rlm_interp *in, const char *dir,
                            const char *name)
{
	c->in = in;
	snprintf(c->marker, sizeof(c->marker), "%s/%s", dir, name);
	assert_int_equal(pthread_create(t, NULL, cancel_when_marked, c), 0);
}

static void a_spinning_cell_is_cancelled_promptly_and_close_leaves_nothing(void **state)
{
	static const char *const settings[] = {"limits.execute_timeout_s=120", NULL};
	rlm_interp *in = lt_open(settings);
	char *workdir = lt_status(in, "workdir"), *pid_text = lt_status(in, "pid");
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	struct canceller c;
	pthread_t t;
	int driver, child = 0, rc;
	FILE *f;

	(void)state;
	assert_non_null(workdir);
	assert_non_null(pid_text);
	driver = lt_pidfd(atoi(pid_text));
	assert_true(driver >= 0);
	start_canceller(&t, &c, in, workdir, "spinning");
	/* A child of its own too, which close must end with the driver. */
	rc = rlm_interp_execute(in,
	                        "import subprocess\n"
	                        "p = subprocess.Popen(['sleep', '1000'])\n"
	                        "open('child', 'w').write(str(p.pid))\n"
	                        "open('spinning', 'w').close()\n"
	                        "while True:\n"
	                        "    pass\n",
	                        NULL, &r, &err);
	double returned_at = lt_now();
	pthread_join(t, NULL);
	printf("execute returned %s %.0f ms after the cancel: %s\n", rlm_status_name(rc),
	       (returned_at - c.cancelled_at) * 1000, err.message);
	assert_int_equal(rc, RLM_ECANCELLED);
	assert_null(r);
	assert_true(returned_at - c.cancelled_at < PROMPT_S);

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/child", workdir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &child), 1);
	fclose(f);
	int child_fd = lt_pidfd(child);
	assert_true(child_fd >= 0);

	rlm_interp_close(in);
	int driver_left = !lt_pidfd_exited(driver, 0), child_left = !lt_pidfd_exited(child_fd, 0);
	if (driver_left)
		lt_pidfd_kill(driver);
	if (child_left)
		lt_pidfd_kill(child_fd);
	close(driver);
	close(child_fd);
	assert_false(driver_left);
	assert_false(child_left);
	assert_false(lt_exists(workdir));
	free(workdir);
	free(pid_text);
}

static void a_running_command_is_cancelled_promptly(void **state)
{
	static const char *const argv[] = {"sh", "-c", "touch started; exec sleep 1000", NULL};
	rlm_interp *in = lt_open(NULL);
	char *workdir = lt_status(in, "workdir");
	rlm_command_output *out = NULL;
	rlm_error err = RLM_ERROR_INIT;
	struct canceller c;
	pthread_t t;
	int rc;

	(void)state;
	assert_non_null(workdir);
	start_canceller(&t, &c, in, workdir, "started");
	rc = rlm_interp_run_command(in, argv, NULL, 120, &out, &err);
	double returned_at = lt_now();
	pthread_join(t, NULL);
	printf("run_command returned %s %.0f ms after the cancel: %s\n", rlm_status_name(rc),
	       (returned_at - c.cancelled_at) * 1000, err.message);
	assert_int_equal(rc, RLM_ECANCELLED);
	assert_true(returned_at - c.cancelled_at < PROMPT_S);
	rlm_command_output_free(out);
	rlm_interp_close(in);
	assert_false(lt_exists(workdir));
	free(workdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(a_spinning_cell_is_cancelled_promptly_and_close_leaves_nothing),
	        cmocka_unit_test(a_running_command_is_cancelled_promptly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
