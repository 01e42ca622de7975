/* test_pool.c - the sandbox pool (rlm/pool.h) on the local backend, and the creation limiter it
 * shares between processes (core/limiter.c). Oracles are counts and orderings, never timings:
 * every wait has a generous deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "limiter.h"
#include "rlm/rlm.h"
#include "util.h"

#define WAIT_S 120.0 /* far beyond what any step takes, even under load */

static rlm_config *local_config(void)
{
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	assert_int_equal(rlm_config_set(cfg, "backend", "local", &err), 0);
	return cfg;
}

static long stat_of(rlm_pool *p, const char *key)
{
	char *s = rlm_pool_stats_json(p);
	json_object *o = json_tokener_parse(s), *v;
	long n = json_object_object_get_ex(o, key, &v) ? (long)json_object_get_int64(v) : -1;
	json_object_put(o);
	rlm_free(s);
	return n;
}

/* Polls a statistic until it reaches want (deadline WAIT_S). */
static void wait_stat(rlm_pool *p, const char *key, long want)
{
	double end = rlm_now() + WAIT_S;
	while (stat_of(p, key) != want && rlm_now() < end) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(stat_of(p, key), want);
}

static rlm_pool *open_pool(rlm_config *cfg, long max_live, long warm)
{
	rlm_pool_options o = RLM_POOL_OPTIONS_INIT;
	o.max_live = max_live;
	o.warm = warm;
	rlm_pool *p = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_pool_open(cfg, &o, &p, &err);
	if (rc)
		fail_msg("rlm_pool_open: %s", err.message);
	return p;
}

/* --- admission under contention --- */

#define ACQUIRERS 64
#define MAX_LIVE  3

struct contention {
	rlm_pool *pool;
	pthread_mutex_t mu;
	int holding, max_holding, failures;
	char message[RLM_ERROR_MESSAGE_MAX];
};

static void *acquirer(void *arg)
{
	struct contention *c = arg;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	int rc = rlm_pool_acquire(c->pool, WAIT_S, &in, &err);
	if (rc == 0) {
		pthread_mutex_lock(&c->mu);
		if (++c->holding > c->max_holding)
			c->max_holding = c->holding;
		pthread_mutex_unlock(&c->mu);
		/* A fresh sandbox per task: nothing of an earlier task is visible. */
		rc = rlm_interp_execute(in, "print('leak' in globals()); leak = 1", NULL, &r, &err);
		if (rc == 0 && strcmp(r->stdout_text, "False\n"))
			rc = RLM_EPROTO, snprintf(err.message, sizeof(err.message), "state leaked");
		rlm_result_free(r);
		pthread_mutex_lock(&c->mu);
		c->holding--;
		pthread_mutex_unlock(&c->mu);
		rlm_pool_release(c->pool, in, 0);
	}
	if (rc) {
		pthread_mutex_lock(&c->mu);
		c->failures++;
		snprintf(c->message, sizeof(c->message), "%s", err.message);
		pthread_mutex_unlock(&c->mu);
	}
	return NULL;
}

static void max_live_holds_under_64_acquirers(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	struct contention c = {.pool = open_pool(cfg, MAX_LIVE, 0)};
	pthread_mutex_init(&c.mu, NULL);
	pthread_t t[ACQUIRERS];
	for (int i = 0; i < ACQUIRERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, acquirer, &c), 0);
	for (int i = 0; i < ACQUIRERS; i++)
		pthread_join(t[i], NULL);
	if (c.failures)
		fail_msg("%d acquirers failed: %s", c.failures, c.message);
	assert_true(c.max_holding <= MAX_LIVE);
	assert_true(stat_of(c.pool, "peak_live") <= MAX_LIVE);
	assert_int_equal(stat_of(c.pool, "created"), ACQUIRERS);
	wait_stat(c.pool, "closed", ACQUIRERS);
	assert_int_equal(stat_of(c.pool, "live"), 0);
	rlm_pool_close(c.pool);
	rlm_config_free(cfg);
}

/* --- warm sandboxes --- */

static void warm_sandbox_is_created_ahead_and_handed_out(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_pool *p = open_pool(cfg, 1, 1);
	wait_stat(p, "idle", 1); /* made with nobody asking */
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_pool_acquire(p, WAIT_S, &in, &err), 0);
	/* max_live 1: the sandbox handed out can only be the warm one. */
	assert_int_equal(stat_of(p, "created"), 1);
	assert_int_equal(stat_of(p, "busy"), 1);
	rlm_pool_release(p, in, 0);
	rlm_pool_close(p);
	rlm_config_free(cfg);
}

static void reuse_keeps_the_sandbox_with_a_fresh_namespace(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_pool *p = open_pool(cfg, 1, 0);
	rlm_interp *in = NULL, *again = NULL;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	assert_int_equal(rlm_pool_acquire(p, WAIT_S, &in, &err), 0);
	assert_int_equal(rlm_interp_execute(in, "secret = 1", NULL, &r, &err), 0);
	rlm_result_free(r);
	rlm_pool_release(p, in, RLM_POOL_REUSE);
	assert_int_equal(rlm_pool_acquire(p, WAIT_S, &again, &err), 0);
	assert_ptr_equal(again, in);
	assert_int_equal(rlm_interp_execute(again, "print('secret' in globals())", NULL, &r, &err),
	                 0);
	assert_string_equal(r->stdout_text, "False\n");
	rlm_result_free(r);
	assert_int_equal(stat_of(p, "created"), 1);
	rlm_pool_release(p, again, 0);
	rlm_pool_close(p);
	rlm_config_free(cfg);
}

/* --- failures and cancellation --- */

static void failing_creation_fails_the_waiter_instead_of_hanging(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_set(cfg, "backends.local.python", "/nonexistent/python3", &err),
	                 0);
	rlm_pool *p = open_pool(cfg, 2, 0);
	rlm_interp *in = NULL;
	int rc = rlm_pool_acquire(p, WAIT_S, &in, &err);
	assert_true(rc < 0);
	assert_int_not_equal(rc, RLM_ETIMEOUT);
	assert_null(in);
	assert_true(stat_of(p, "create_failures") >= 1);
	rlm_pool_close(p);
	rlm_config_free(cfg);
}

struct blocked {
	rlm_pool *pool;
	int rc;
};

static void *blocked_acquire(void *arg)
{
	struct blocked *b = arg;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	b->rc = rlm_pool_acquire(b->pool, WAIT_S, &in, &err);
	if (in)
		rlm_pool_release(b->pool, in, 0);
	return NULL;
}

static void cancel_wakes_a_waiting_acquire(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_pool *p = open_pool(cfg, 1, 0);
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_pool_acquire(p, WAIT_S, &in, &err), 0);
	struct blocked b = {p, 0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, blocked_acquire, &b), 0);
	wait_stat(p, "waiting", 1);
	rlm_pool_cancel(p);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, RLM_ECANCELLED);
	/* The interpreter handed out is cancelled too. */
	rlm_result *r = NULL;
	assert_int_equal(rlm_interp_execute(in, "1", NULL, &r, &err), RLM_ECANCELLED);
	rlm_pool_release(p, in, 0);
	rlm_pool_close(p);
	rlm_config_free(cfg);
}

/* The pool section sets the limits; options left at INIT take them, the backend's default
 * (local: twice the cores) fills what neither says. */
static void pool_section_sets_the_limits(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_error err = RLM_ERROR_INIT;
	rlm_pool *p = open_pool(cfg, 0, -1);
	assert_int_equal(stat_of(p, "max_live"), 2 * sysconf(_SC_NPROCESSORS_ONLN));
	rlm_pool_close(p);
	assert_int_equal(rlm_config_set_assignment(cfg, "pool.max_live=5", &err), 0);
	assert_int_equal(rlm_config_set_assignment(cfg, "pool.warm=1", &err), 0);
	p = open_pool(cfg, 0, -1);
	assert_int_equal(stat_of(p, "max_live"), 5);
	assert_int_equal(stat_of(p, "warm"), 1);
	rlm_pool_close(p);
	rlm_config_free(cfg);
}

static void unstamped_pool_options_are_einval(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_pool_options o;
	memset(&o, 0, sizeof(o));
	rlm_pool *p = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_pool_open(cfg, &o, &p, &err), RLM_EINVAL);
	assert_null(p);
	rlm_config_free(cfg);
}

/* --- the shared creation limiter --- */

#define LIMIT_PROCS 4
#define LIMIT_TAKES 5
#define LIMIT_RATE  40.0

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Four processes take tokens from one bucket: every reserved start, whoever made it, is at
 * least 1/rate after the one before. */
static void limiter_spaces_creations_across_processes(void **state)
{
	(void)state;
	char dir[] = "/tmp/rlm-limiter-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[4200];
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm__limiter_path(dir, "local", path, sizeof(path), &err), 0);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	for (int i = 0; i < LIMIT_PROCS; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			for (int k = 0; k < LIMIT_TAKES; k++) {
				double started = 0;
				rlm_error e = RLM_ERROR_INIT;
				if (rlm__limiter_take(path, LIMIT_RATE, 0, NULL, &started, &e))
					_exit(1);
				if (write(fds[1], &started, sizeof(started)) != sizeof(started))
					_exit(1);
			}
			_exit(0);
		}
	}
	close(fds[1]);
	double starts[LIMIT_PROCS * LIMIT_TAKES];
	size_t n = 0;
	while (n < LIMIT_PROCS * LIMIT_TAKES &&
	       read(fds[0], &starts[n], sizeof(double)) == sizeof(double))
		n++;
	close(fds[0]);
	for (int i = 0; i < LIMIT_PROCS; i++) {
		int status = 0;
		wait(&status);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(n, LIMIT_PROCS * LIMIT_TAKES);
	qsort(starts, n, sizeof(double), compare_doubles);
	for (size_t i = 1; i < n; i++)
		assert_true(starts[i] - starts[i - 1] >= 1.0 / LIMIT_RATE - 1e-4);
	unlink(path);
	rmdir(dir);
}

static void limiter_refuses_a_backlog_beyond_the_deadline(void **state)
{
	(void)state;
	char dir[] = "/tmp/rlm-limiter-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[4200];
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm__limiter_path(dir, "slow", path, sizeof(path), &err), 0);
	/* 0.01 per second: the first token is now, the second 100 s later. */
	assert_int_equal(rlm__limiter_take(path, 0.01, 0, NULL, NULL, &err), 0);
	assert_int_equal(rlm__limiter_take(path, 0.01, rlm_now() + 5, NULL, NULL, &err),
	                 RLM_ETIMEOUT);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(max_live_holds_under_64_acquirers),
	        cmocka_unit_test(warm_sandbox_is_created_ahead_and_handed_out),
	        cmocka_unit_test(reuse_keeps_the_sandbox_with_a_fresh_namespace),
	        cmocka_unit_test(failing_creation_fails_the_waiter_instead_of_hanging),
	        cmocka_unit_test(cancel_wakes_a_waiting_acquire),
	        cmocka_unit_test(unstamped_pool_options_are_einval),
	        cmocka_unit_test(pool_section_sets_the_limits),
	        cmocka_unit_test(limiter_spaces_creations_across_processes),
	        cmocka_unit_test(limiter_refuses_a_backlog_beyond_the_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
