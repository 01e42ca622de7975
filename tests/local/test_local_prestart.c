/* test_local_prestart.c - backends.local.prestart: an open takes over the sandbox started
 * ahead by the open before it, which has every property of one it would have started itself
 * (fresh work dir and uid, same isolation and limits, scrubbed environment, nothing of the
 * previous interpreter); a spare goes only to its own config and thread, each thread having
 * its own; and none outlives the process that made it. */
#include "local_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/wait.h>

static const char *const prestart[] = {"backends.local.prestart=true", NULL};

/* Our one child process other than exclude (the spare's driver); fails unless there is
 * exactly one. */
static pid_t other_child(pid_t exclude)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], buf[512], *p;
		long pid = strtol(e->d_name, &p, 10), ppid = 0;
		FILE *f;

		if (*p || pid <= 0 || pid == exclude)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
			sscanf(p + 1, " %*c %ld", &ppid);
		fclose(f);
		if (ppid == getpid()) {
			found = (pid_t)pid;
			n++;
		}
	}
	closedir(d);
	assert_int_equal(n, 1);
	return found;
}

static pid_t status_pid(rlm_interp *in)
{
	char *s = lt_status(in, "pid");
	pid_t pid = s ? (pid_t)atoi(s) : 0;

	free(s);
	return pid;
}

static void the_next_open_takes_over_the_sandbox_started_ahead(void **state)
{
	rlm_interp *a, *b;
	char *a_dir, *b_dir, *a_uid, *b_uid, *a_iso, *b_iso, *out;
	pid_t spare;

	(void)state;
	a = lt_open(prestart);
	free(lt_run(a, "x = 41"));
	spare = other_child(status_pid(a));
	a_dir = lt_status(a, "workdir");
	a_uid = lt_status(a, "uid");
	a_iso = lt_status(a, "isolation");
	rlm_interp_close(a);

	b = lt_open(prestart);
	assert_int_equal(status_pid(b), spare);
	b_dir = lt_status(b, "workdir");
	b_uid = lt_status(b, "uid");
	b_iso = lt_status(b, "isolation");
	assert_string_not_equal(a_dir, b_dir);
	assert_string_equal(a_iso, b_iso);
	if (geteuid() == 0)
		assert_string_not_equal(a_uid, b_uid); /* a fresh uid per sandbox */
	out = lt_run(b, "import os\n"
	                "print('x' in globals(), os.getcwd() == os.environ['HOME'], os.getuid(),\n"
	                "      sorted(k for k in os.environ if k.startswith('RLM_TEST')))");
	char want[128];
	snprintf(want, sizeof(want), "False True %s []\n", b_uid);
	assert_string_equal(out, want);
	free(out);
	out = lt_run(b, "print(os.getcwd())");
	assert_int_equal(strncmp(out, b_dir, strlen(b_dir)), 0);
	free(out);
	rlm_interp_close(b);
	free(a_dir), free(b_dir), free(a_uid), free(b_uid), free(a_iso), free(b_iso);
}

static void a_spare_made_for_another_config_is_not_used(void **state)
{
	const char *const small[] = {"backends.local.prestart=true", "backends.local.memory_mb=512",
	                             NULL};
	const char *const big[] = {"backends.local.prestart=true", "backends.local.memory_mb=1024",
	                           NULL};
	rlm_interp *a, *b;
	pid_t spare;
	char *out;

	(void)state;
	a = lt_open(small);
	spare = other_child(status_pid(a));
	rlm_interp_close(a);
	b = lt_open(big);
	assert_int_not_equal(status_pid(b), spare);
	out = lt_run(b, "import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)");
	assert_string_equal(out, "1024\n");
	free(out);
	rlm_interp_close(b);
}

/* A spare that died while it waited is not handed over: the open starts its own sandbox. */
static void a_dead_spare_is_replaced_by_a_fresh_start(void **state)
{
	rlm_interp *a, *b;
	pid_t spare;
	int pidfd;

	(void)state;
	a = lt_open(prestart);
	spare = other_child(status_pid(a));
	pidfd = lt_pidfd(spare);
	assert_true(pidfd >= 0);
	lt_pidfd_kill(pidfd);
	assert_true(lt_pidfd_exited(pidfd, 30));
	close(pidfd);
	rlm_interp_close(a);
	b = lt_open(prestart);
	assert_int_not_equal(status_pid(b), spare);
	free(lt_run(b, "pass"));
	rlm_interp_close(b);
}

/* A driver restarted after a crash keeps its own work dir, and leaves the thread's spare
 * (made for the same config) in place rather than starting another. */
static void a_restart_keeps_the_spare_in_place(void **state)
{
	rlm_interp *a, *b;
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	pid_t driver, spare;
	int pidfd;

	(void)state;
	a = lt_open(prestart);
	driver = status_pid(a);
	spare = other_child(driver);
	pidfd = lt_pidfd(driver);
	assert_true(pidfd >= 0);
	lt_pidfd_kill(pidfd);
	assert_true(lt_pidfd_exited(pidfd, 30));
	close(pidfd);
	/* The cell finds the driver dead; the interpreter restarts it (state lost). */
	if (rlm_interp_execute(a, "pass", NULL, &r, &err) == 0)
		rlm_result_free(r);
	free(lt_run(a, "pass"));
	assert_int_not_equal(status_pid(a), driver);
	rlm_interp_close(a);
	b = lt_open(prestart);
	assert_int_equal(status_pid(b), spare);
	rlm_interp_close(b);
}

static void *open_and_close(void *arg)
{
	pid_t *spare = arg;
	rlm_interp *in = lt_open(prestart);

	*spare = other_child(status_pid(in));
	rlm_interp_close(in);
	return NULL;
}

/* The parent-death signal follows the thread that forked a driver: a spare made on another
 * thread is never handed over (it dies with that thread). */
static void a_spare_goes_only_to_the_thread_that_made_it(void **state)
{
	pthread_t t;
	pid_t spare = 0;
	rlm_interp *in;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, open_and_close, &spare), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(spare > 0); /* the thread made one (other_child found exactly one) */
	/* It dies with its thread (the parent-death signal): wait for that, so the open below
	 * finds it dead rather than racing the signal. */
	int pidfd = lt_pidfd(spare);
	assert_true(pidfd >= 0);
	assert_true(lt_pidfd_exited(pidfd, 30));
	close(pidfd);
	in = lt_open(prestart);
	assert_int_not_equal(status_pid(in), spare);
	free(lt_run(in, "pass"));
	rlm_interp_close(in);
}

/* Every child of ours, into out (at most max); returns how many. */
static int children(pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) && n < max) {
		char path[300], buf[512], *p;
		long pid = strtol(e->d_name, &p, 10), ppid = 0;
		FILE *f;

		if (*p || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
			sscanf(p + 1, " %*c %ld", &ppid);
		fclose(f);
		if (ppid == getpid())
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

struct thread_opens {
	pid_t second;       /* the driver of the thread's second interpreter */
	bool started_ahead; /* it was running before that open */
};

/* Opens and closes one interpreter, then opens another: no assertions here (cmocka's belong
 * on the main thread), the main thread checks what is recorded. */
static void *open_twice(void *arg)
{
	struct thread_opens *r = arg;
	rlm_interp *in = lt_open(prestart);
	pid_t before[256];
	int n;

	rlm_interp_close(in);
	n = children(before, 256);
	in = lt_open(prestart);
	r->second = status_pid(in);
	for (int i = 0; i < n; i++)
		r->started_ahead |= before[i] == r->second;
	rlm_interp_close(in);
	return NULL;
}

/* Each thread has a spare of its own: another thread's opens neither take nor end it. */
static void each_thread_has_a_spare_of_its_own(void **state)
{
	struct thread_opens r = {0, false};
	pthread_t t;
	rlm_interp *in;
	pid_t spare;

	(void)state;
	in = lt_open(prestart);
	spare = other_child(status_pid(in));
	rlm_interp_close(in);
	assert_int_equal(pthread_create(&t, NULL, open_twice, &r), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(r.started_ahead);
	assert_int_not_equal(r.second, spare);
	in = lt_open(prestart);
	assert_int_equal(status_pid(in), spare);
	rlm_interp_close(in);
}

/* The spare is ended at exit like a closed interpreter: its driver dead, its work dir gone
 * (the parent-death signal alone would leave the directory behind). */
static void no_spare_outlives_the_process_that_made_it(void **state)
{
	int report[2], go[2], status, pidfd;
	pid_t child, spare = 0;
	char dir[PATH_MAX] = "", link[64];
	struct stat st;

	(void)state;
	assert_int_equal(pipe(report), 0);
	assert_int_equal(pipe(go), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		rlm_interp *in = lt_open(prestart);
		pid_t s = other_child(status_pid(in));
		char c;

		rlm_interp_close(in);
		if (write(report[1], &s, sizeof(s)) != (ssize_t)sizeof(s) ||
		    read(go[0], &c, 1) != 1)
			_exit(2);
		exit(0); /* a normal exit: destructors run */
	}
	close(report[1]);
	close(go[0]);
	assert_int_equal(read(report[0], &spare, sizeof(spare)), (ssize_t)sizeof(spare));
	pidfd = lt_pidfd(spare);
	assert_true(pidfd >= 0);
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)spare);
	/* The driver chdirs into its work dir just before saying ready: wait for that. */
	for (double until = lt_now() + 30; lt_now() < until; usleep(10000)) {
		ssize_t n = readlink(link, dir, sizeof(dir) - 1);
		dir[n > 0 ? n : 0] = '\0';
		if (strstr(dir, "/rlm-"))
			break;
	}
	assert_non_null(strstr(dir, "/rlm-"));
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(lt_pidfd_exited(pidfd, 30));
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(errno, ENOENT);
	close(pidfd);
	close(report[0]);
	close(go[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        /* First, while the process has no spare: the thread's open must make one. */
	        cmocka_unit_test(a_spare_goes_only_to_the_thread_that_made_it),
	        cmocka_unit_test(the_next_open_takes_over_the_sandbox_started_ahead),
	        cmocka_unit_test(a_spare_made_for_another_config_is_not_used),
	        cmocka_unit_test(a_dead_spare_is_replaced_by_a_fresh_start),
	        cmocka_unit_test(a_restart_keeps_the_spare_in_place),
	        cmocka_unit_test(each_thread_has_a_spare_of_its_own),
	        cmocka_unit_test(no_spare_outlives_the_process_that_made_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
