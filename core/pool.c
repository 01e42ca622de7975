/* pool.c - a pool of sandboxes (rlm/pool.h): admission by slots, creation on the pool's own
 * threads under a host-wide rate limit, warm sandboxes, leases, and shutdown that frees a slot
 * only once the backend's shutdown returned.
 *
 * State: one array of max_live slots, each FREE, CREATING, IDLE (warm, or reused), BUSY
 * (handed out) or CLOSING. Live sandboxes are the slots that are not FREE, so the cap holds by
 * construction. Workers (at most POOL_WORKERS_MAX threads, living as long as the pool) take
 * the next job under the lock: shut a CLOSING slot down, or create one when demand (callers
 * waiting plus the warm target) exceeds what is idle or being created. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "interp_internal.h"
#include "config_internal.h"
#include "limiter.h"
#include "loader.h"
#include "rlm/rlm.h"
#include "util.h"

#define POOL_WORKERS_MAX 64
/* Waits between warm creations that keep failing: doubled from the first to the last. */
#define POOL_BACKOFF_FIRST_S 1.0
#define POOL_BACKOFF_MAX_S   30.0

enum slot_state { SLOT_FREE = 0, SLOT_CREATING, SLOT_IDLE, SLOT_BUSY, SLOT_CLOSING };

struct slot {
	enum slot_state state;
	rlm_interp *interp;
	volatile int cancel;    /* watched while CREATING (and by the interpreter after) */
	unsigned long idle_seq; /* when it became IDLE: acquire takes the oldest (FIFO) */
	int closing_taken;      /* a worker is shutting it down */
};

struct rlm_pool {
	rlm_config *cfg;
	char backend[64];
	char run_id[40];
	char limiter_path[4096];
	long max_live, warm;
	double rate;
	pthread_mutex_t mu;
	pthread_mutex_t cfg_mu; /* json-c objects are not to be read by two threads at once */
	pthread_cond_t changed; /* any slot changed state, a job appeared, or we stop */
	struct slot *slots;
	pthread_t workers[POOL_WORKERS_MAX];
	int n_workers;
	long waiting;           /* callers in acquire */
	long failures_owed;     /* failed creations not yet reported to a waiting caller */
	rlm_error last_failure; /* what the latest failed creation said */
	int consecutive_failures;
	double backoff_until; /* rlm_now() before which no warm creation starts */
	unsigned long idle_seq;
	int stopping;
	int cancelled;
	/* Statistics. */
	long peak_live, created, create_failures, closed;
};

/* ---- counting (under the lock) ---- */

static long count_state(const rlm_pool *p, enum slot_state st)
{
	long n = 0;
	for (long i = 0; i < p->max_live; i++)
		n += p->slots[i].state == st;
	return n;
}

static long count_live(const rlm_pool *p)
{
	return p->max_live - count_state(p, SLOT_FREE);
}

static void note_peak(rlm_pool *p)
{
	long live = count_live(p);
	if (live > p->peak_live)
		p->peak_live = live;
}

/* How many more sandboxes should be created now: callers waiting (less those that will be
 * told of a failure) and the warm target, minus what is idle or on its way. */
static long creations_wanted(const rlm_pool *p)
{
	if (p->stopping || p->cancelled)
		return 0;
	long waiting = p->waiting - p->failures_owed;
	long warm = p->backoff_until > rlm_now() ? 0 : p->warm;
	long want = (waiting > 0 ? waiting : 0) + warm - count_state(p, SLOT_IDLE) -
	            count_state(p, SLOT_CREATING);
	long room = count_state(p, SLOT_FREE);
	return want < room ? want : room;
}

static struct slot *find_state(rlm_pool *p, enum slot_state st)
{
	for (long i = 0; i < p->max_live; i++)
		if (p->slots[i].state == st && !(st == SLOT_CLOSING && p->slots[i].closing_taken))
			return &p->slots[i];
	return NULL;
}

static struct slot *oldest_idle(rlm_pool *p)
{
	struct slot *best = NULL;
	for (long i = 0; i < p->max_live; i++)
		if (p->slots[i].state == SLOT_IDLE &&
		    (!best || p->slots[i].idle_seq < best->idle_seq))
			best = &p->slots[i];
	return best;
}

static struct slot *slot_of(rlm_pool *p, const rlm_interp *in)
{
	for (long i = 0; i < p->max_live; i++)
		if (p->slots[i].interp == in && p->slots[i].state != SLOT_FREE)
			return &p->slots[i];
	return NULL;
}

/* ---- the workers ---- */

static void timed_wait(rlm_pool *p, double until)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double secs = until - rlm_now();
	if (secs > 1)
		secs = 1; /* wake now and then anyway: backoffs end without a signal */
	if (secs < 0.001)
		secs = 0.001;
	long long ns = (long long)ts.tv_nsec + (long long)(secs * 1e9);
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_cond_timedwait(&p->changed, &p->mu, &ts);
}

/* Creates the sandbox of a CREATING slot (called without the lock). */
static int create_sandbox(rlm_pool *p, struct slot *s, rlm_error *err)
{
	int rc = rlm__limiter_take(p->limiter_path, p->rate, 0, &s->cancel, NULL, err);
	rlm_config *mine = NULL;
	if (rc == 0) {
		pthread_mutex_lock(&p->cfg_mu);
		rc = rlm_config_clone(p->cfg, &mine, err);
		pthread_mutex_unlock(&p->cfg_mu);
	}
	if (rc == 0)
		rc = rlm__interp_open_watching(mine, &s->cancel, &s->interp, err);
	rlm_config_free(mine);
	return rc;
}

static void finish_create(rlm_pool *p, struct slot *s, int rc, const rlm_error *err)
{
	if (rc == 0 && !p->stopping && !p->cancelled) {
		s->state = SLOT_IDLE;
		s->idle_seq = ++p->idle_seq;
		p->created++;
		p->consecutive_failures = 0;
		return;
	}
	if (rc == 0) { /* made while we were stopping: shut it down again */
		p->created++;
		s->state = SLOT_CLOSING;
		return;
	}
	s->interp = NULL;
	s->state = SLOT_FREE;
	if (rc == RLM_ECANCELLED)
		return;
	p->create_failures++;
	p->last_failure = *err;
	if (p->waiting > p->failures_owed) {
		p->failures_owed++;
	} else {
		/* Nobody asked for this one (a warm creation): back off before the next. */
		double d = POOL_BACKOFF_FIRST_S;
		for (int i = 0; i < p->consecutive_failures && d < POOL_BACKOFF_MAX_S; i++)
			d *= 2;
		p->backoff_until = rlm_now() + (d < POOL_BACKOFF_MAX_S ? d : POOL_BACKOFF_MAX_S);
	}
	p->consecutive_failures++;
	rlm_log(RLM_LOG_WARN, "pool", "creating a %s sandbox failed: %s", p->backend, err->message);
}

static void *worker_main(void *arg)
{
	rlm_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct slot *s = find_state(p, SLOT_CLOSING);
		if (s) {
			s->closing_taken = 1;
			rlm_interp *in = s->interp;
			pthread_mutex_unlock(&p->mu);
			rlm_interp_close(in);
			pthread_mutex_lock(&p->mu);
			s->interp = NULL;
			s->closing_taken = 0;
			s->state = SLOT_FREE;
			p->closed++;
			pthread_cond_broadcast(&p->changed);
			continue;
		}
		if (creations_wanted(p) > 0 && (s = find_state(p, SLOT_FREE))) {
			s->state = SLOT_CREATING;
			s->cancel = 0;
			s->interp = NULL;
			note_peak(p);
			pthread_mutex_unlock(&p->mu);
			rlm_error err = RLM_ERROR_INIT;
			int rc = create_sandbox(p, s, &err);
			pthread_mutex_lock(&p->mu);
			finish_create(p, s, rc, &err);
			pthread_cond_broadcast(&p->changed);
			continue;
		}
		if (p->stopping && count_live(p) == 0)
			break;
		timed_wait(p, p->backoff_until > rlm_now() ? p->backoff_until : rlm_now() + 1);
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- opening ---- */

static void random_run_id(char *out, size_t size)
{
	unsigned char b[8] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		unsigned long long t =
		        (unsigned long long)(rlm_now() * 1e9) ^ (unsigned long long)getpid();
		memcpy(b, &t, sizeof(b));
	}
	if (fd >= 0)
		close(fd);
	snprintf(out, size, "%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	         b[6], b[7]);
}

static int run_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 36)
		return 0;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
			return 0;
	return 1;
}

/* Whether the plugin declares the option (its option_defs, else its 1.0 options). */
static int has_option(const rlm_plugin_desc *d, const char *name)
{
	rlm_option_def *defs = NULL;
	int found = 0;

	if (rlm__option_defs(d, &defs, NULL) != 0)
		return 0;
	for (const rlm_option_def *o = defs; o && o->name && !found; o++)
		found = !strcmp(o->name, name);
	free(defs);
	return found;
}

/* Adds rlm-run=<id> to the backend's labels, when it has labels. */
static int label_run(rlm_pool *p, const rlm_plugin_desc *d, rlm_error *err)
{
	if (!has_option(d, "labels"))
		return 0;
	char key[128];
	snprintf(key, sizeof(key), "backends.%s.labels", p->backend);
	char *cur = rlm_config_get_json(p->cfg, key);
	json_object *labels = cur ? json_tokener_parse(cur) : NULL;
	free(cur);
	if (!json_object_is_type(labels, json_type_object)) {
		json_object_put(labels);
		labels = json_object_new_object();
	}
	json_object_object_add(labels, "rlm-run", json_object_new_string(p->run_id));
	int rc = rlm_config_set(p->cfg, key, json_object_to_json_string(labels), err);
	json_object_put(labels);
	return rc;
}

static long online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

/* The limits: the caller's options, else the config's pool section, else the backend's. */
static int read_limits(rlm_pool *p, const rlm_pool_options *o, const rlm_plugin_desc *d,
                       rlm_error *err)
{
	unsigned dflt_live = RLM_HAS_FIELD(d, pool_max_live) ? d->pool_max_live : 0;
	double dflt_rate = RLM_HAS_FIELD(d, pool_creates_per_s) ? d->pool_creates_per_s : 0;
	double live = rlm_config_get_number(p->cfg, "pool.max_live", 0);
	double rate = rlm_config_get_number(p->cfg, "pool.creates_per_s", -1);
	double warm = rlm_config_get_number(p->cfg, "pool.warm", 0);
	p->max_live = o->max_live > 0 ? o->max_live
	              : live >= 1     ? (long)live
	              : dflt_live > 0 ? (long)dflt_live
	                              : 2 * online_cores();
	p->rate = o->creates_per_s > 0 ? o->creates_per_s : rate >= 0 ? rate : dflt_rate;
	p->warm = o->warm >= 0 ? o->warm : (long)warm;
	if (p->max_live < 1 || p->max_live > 100000)
		return rlm_error_set(err, RLM_ECONFIG, "pool.max_live must be 1 to 100000, got %ld",
		                     p->max_live);
	if (!(p->rate >= 0) || p->rate > 100000)
		return rlm_error_set(err, RLM_ECONFIG,
		                     "pool.creates_per_s must be 0 (no limit) to 100000");
	if (p->warm < 0 || p->warm > p->max_live)
		p->warm = p->warm < 0 ? 0 : p->max_live;
	return 0;
}

static int pool_setup(rlm_pool *p, const rlm_config *cfg, const rlm_pool_options *o, rlm_error *err)
{
	int rc = rlm_config_clone(cfg, &p->cfg, err);
	if (!rc)
		rc = rlm_config_validate(p->cfg, err);
	if (rc)
		return rc;
	snprintf(p->backend, sizeof(p->backend), "%s",
	         rlm_config_get_string(p->cfg, "backend", "local"));
	if (o->run_id && !run_id_valid(o->run_id))
		return rlm_error_set(err, RLM_EINVAL,
		                     "run id must be 1 to 36 characters of [A-Za-z0-9._-]");
	if (o->run_id)
		snprintf(p->run_id, sizeof(p->run_id), "%s", o->run_id);
	else
		random_run_id(p->run_id, sizeof(p->run_id));
	rlm_plugin *plugin = NULL;
	rc = rlm__plugin_acquire(p->cfg, RLM_PLUGIN_BACKEND, p->backend, &plugin, err);
	if (rc)
		return rc;
	const rlm_plugin_desc *d = rlm__plugin_desc(plugin);
	rc = read_limits(p, o, d, err);
	if (!rc)
		rc = label_run(p, d, err);
	rlm__plugin_release(plugin);
	if (!rc && p->rate > 0)
		rc = rlm__limiter_path(o->limiter_dir, p->backend, p->limiter_path,
		                       sizeof(p->limiter_path), err);
	return rc;
}

int rlm_pool_open(const rlm_config *cfg, const rlm_pool_options *opts, rlm_pool **out,
                  rlm_error *err)
{
	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_pool_open: out is NULL");
	*out = NULL;
	rlm_pool_options none = RLM_POOL_OPTIONS_INIT;
	const rlm_pool_options *o = opts ? opts : &none;
	if (!cfg)
		return rlm_error_set(err, RLM_EINVAL, "rlm_pool_open: no config");
	if (o->struct_size < offsetof(rlm_pool_options, limiter_dir) + sizeof(o->limiter_dir))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_pool_options: struct_size %u is too small (start from "
		                     "RLM_POOL_OPTIONS_INIT)",
		                     o->struct_size);
	rlm_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->cfg_mu, NULL);
	pthread_cond_init(&p->changed, NULL);
	int rc = pool_setup(p, cfg, o, err);
	if (!rc && !(p->slots = calloc((size_t)p->max_live, sizeof(*p->slots))))
		rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	long n = p->max_live < POOL_WORKERS_MAX ? p->max_live : POOL_WORKERS_MAX;
	for (long i = 0; !rc && i < n; i++) {
		if (pthread_create(&p->workers[i], NULL, worker_main, p)) {
			rc = rlm_error_set(err, RLM_ENOMEM, "cannot start a pool thread");
			break;
		}
		p->n_workers++;
	}
	if (rc) {
		rlm_pool_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- leases ---- */

int rlm_pool_acquire(rlm_pool *p, double timeout_s, rlm_interp **out, rlm_error *err)
{
	if (!p || !out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_pool_acquire: no pool or out");
	*out = NULL;
	double deadline = timeout_s > 0 ? rlm_now() + timeout_s : 0;
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	p->waiting++;
	pthread_cond_broadcast(&p->changed);
	for (;;) {
		if (p->stopping || p->cancelled) {
			rc = rlm_error_set(err, RLM_ECANCELLED, "the pool was cancelled");
			break;
		}
		struct slot *s = oldest_idle(p);
		if (s) {
			s->state = SLOT_BUSY;
			*out = s->interp;
			break;
		}
		if (p->failures_owed > 0) {
			p->failures_owed--;
			rc = p->last_failure.code ? p->last_failure.code : RLM_EBACKEND;
			if (err) {
				*err = p->last_failure;
				err->code = rc;
			}
			break;
		}
		if (deadline > 0 && rlm_now() >= deadline) {
			rc = rlm_error_set(
			        err, RLM_ETIMEOUT,
			        "no %s sandbox within %.3g s (pool: %ld live of %ld, %ld "
			        "being created)",
			        p->backend, timeout_s, count_live(p), p->max_live,
			        count_state(p, SLOT_CREATING));
			break;
		}
		timed_wait(p, deadline > 0 ? deadline : rlm_now() + 1);
	}
	p->waiting--;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void rlm_pool_release(rlm_pool *p, rlm_interp *in, int flags)
{
	if (!p || !in)
		return;
	/* A reused interpreter starts its next task with a fresh namespace; one that cannot be
	 * reset (cancelled, broken) is shut down instead. */
	int reuse = (flags & RLM_POOL_REUSE) && rlm_interp_reset(in, NULL) == 0;
	pthread_mutex_lock(&p->mu);
	struct slot *s = slot_of(p, in);
	if (!s || s->state != SLOT_BUSY) {
		pthread_mutex_unlock(&p->mu);
		rlm_log(RLM_LOG_ERROR, "pool",
		        "rlm_pool_release: interpreter %p is not leased from "
		        "this pool; left alone",
		        (void *)in);
		return;
	}
	if (reuse && !p->stopping && !p->cancelled) {
		s->state = SLOT_IDLE;
		s->idle_seq = ++p->idle_seq;
	} else {
		s->state = SLOT_CLOSING;
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
}

const char *rlm_pool_run_id(const rlm_pool *p)
{
	return p ? p->run_id : NULL;
}

void rlm_pool_cancel(rlm_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->cancelled = 1;
	for (long i = 0; i < p->max_live; i++) {
		struct slot *s = &p->slots[i];
		if (s->state == SLOT_CREATING)
			s->cancel = 1;
		else if (s->state == SLOT_BUSY && s->interp)
			rlm_interp_cancel(s->interp);
		else if (s->state == SLOT_IDLE)
			s->state = SLOT_CLOSING;
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
}

char *rlm_pool_stats_json(rlm_pool *p)
{
	if (!p)
		return NULL;
	json_object *o = json_object_new_object();
	pthread_mutex_lock(&p->mu);
	json_object_object_add(o, "backend", json_object_new_string(p->backend));
	json_object_object_add(o, "run_id", json_object_new_string(p->run_id));
	json_object_object_add(o, "max_live", json_object_new_int64(p->max_live));
	json_object_object_add(o, "creates_per_s", json_object_new_double(p->rate));
	json_object_object_add(o, "warm", json_object_new_int64(p->warm));
	json_object_object_add(o, "live", json_object_new_int64(count_live(p)));
	static const char *const names[] = {NULL, "creating", "idle", "busy", "closing"};
	for (int st = SLOT_CREATING; st <= SLOT_CLOSING; st++)
		json_object_object_add(o, names[st],
		                       json_object_new_int64(count_state(p, (enum slot_state)st)));
	json_object_object_add(o, "waiting", json_object_new_int64(p->waiting));
	json_object_object_add(o, "peak_live", json_object_new_int64(p->peak_live));
	json_object_object_add(o, "created", json_object_new_int64(p->created));
	json_object_object_add(o, "create_failures", json_object_new_int64(p->create_failures));
	json_object_object_add(o, "closed", json_object_new_int64(p->closed));
	pthread_mutex_unlock(&p->mu);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char *copy = s ? strdup(s) : NULL;
	json_object_put(o);
	return copy;
}

void rlm_pool_close(rlm_pool *p)
{
	if (!p)
		return;
	if (p->slots) {
		rlm_pool_cancel(p);
		pthread_mutex_lock(&p->mu);
		p->stopping = 1;
		pthread_cond_broadcast(&p->changed);
		pthread_mutex_unlock(&p->mu);
	}
	for (int i = 0; i < p->n_workers; i++)
		pthread_join(p->workers[i], NULL);
	free(p->slots);
	rlm_config_free(p->cfg);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->cfg_mu);
	free(p);
}
