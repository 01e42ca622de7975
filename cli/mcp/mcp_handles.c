/* mcp_handles.c - the sandboxes `rlm mcp` owns, and the handles that name them.
 *
 * Every sandbox comes from an rlm_pool, one pool per backend configuration (a backend and the
 * options a client gave), so handles and runs together stay under the pool's limits. A handle
 * is "sbx_" and 32 hex digits from /dev/urandom: knowing one is what lets a client use it.
 * One call uses a handle's sandbox at a time (others wait); a handle idle for longer than
 * handle_idle_s is destroyed by the reaper thread, and mcp_handles_close destroys the rest.
 * Acquisitions are waited for in slices so a cancelled call stops waiting at once; a sandbox
 * whose creation such a call abandoned is shut down by the reaper when it comes (an orphan). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp.h"

#define MAX_POOLS      16
#define ACQUIRE_SLICE  0.25 /* seconds between looks at the cancel flag */
#define REAPER_TICK_MS 250

struct pool_entry {
	char *key; /* backend "\n" canonical options */
	char backend[96];
	rlm_config *cfg; /* the server's config with backend and options applied */
	rlm_pool *pool;
	int orphans; /* abandoned acquisitions whose sandbox may still arrive */
};

struct handle {
	char id[40];
	char backend[96];
	rlm_interp *interp;
	struct pool_entry *pool;
	double last_used;
	int busy;   /* a call uses it */
	int doomed; /* destroy once the call returns */
	struct handle *next;
};

/* An acquired sandbox not (yet) named by a handle: rlm_run's, or sandbox_create's before
 * mcp_handle_add. */
struct lease {
	rlm_interp *interp;
	struct pool_entry *pool;
};

struct mcp_handles {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	rlm_config *cfg;
	double idle_s;
	int max_handles;
	double acquire_s;    /* longest wait for a sandbox */
	double lease_wait_s; /* longest wait for a busy handle */
	struct pool_entry *pools[MAX_POOLS];
	int npools;
	struct handle *handles;
	int nhandles;
	struct lease *leases;
	size_t nleases, cap_leases;
	pthread_t reaper;
	int reaper_started;
	int stopping;
};

static int set_error(rlm_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int set_error(rlm_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return err->code = code;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_ms(struct mcp_handles *h, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&h->changed, &h->mu, &ts);
}

/* The first 8 characters of a handle: enough to follow it in logs, not enough to use it. */
static void log_handle(const char *what, const struct handle *x)
{
	fprintf(stderr, "rlm mcp: sandbox %.8s... (%s) %s\n", x->id, x->backend, what);
}

static long pool_stat(rlm_pool *p, const char *key)
{
	char *s = rlm_pool_stats_json(p);
	json_object *o = s ? json_tokener_parse(s) : NULL, *v;
	long n = json_object_object_get_ex(o, key, &v) ? (long)json_object_get_int64(v) : 0;
	json_object_put(o);
	rlm_free(s);
	return n;
}

/* ---- the reaper: idle handles, orphans ---- */

static void release_handle_locked(struct mcp_handles *h, struct handle **link)
{
	struct handle *x = *link;
	*link = x->next;
	h->nhandles--;
	rlm_pool_release(x->pool->pool, x->interp, 0);
	free(x);
	pthread_cond_broadcast(&h->changed);
}

static void sweep_orphans_locked(struct mcp_handles *h)
{
	for (int i = 0; i < h->npools; i++) {
		struct pool_entry *p = h->pools[i];
		while (p->orphans > 0 && pool_stat(p->pool, "idle") > 0) {
			rlm_interp *in = NULL;
			if (rlm_pool_acquire(p->pool, 0.001, &in, NULL) || !in)
				break;
			rlm_pool_release(p->pool, in, 0);
			p->orphans--;
		}
		if (p->orphans > 0 && pool_stat(p->pool, "creating") == 0 &&
		    pool_stat(p->pool, "idle") == 0)
			p->orphans = 0;
	}
}

static void *reaper_main(void *arg)
{
	struct mcp_handles *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->stopping) {
		double now = now_s();
		for (struct handle **link = &h->handles; *link;) {
			struct handle *x = *link;
			if (!x->busy && now - x->last_used > h->idle_s) {
				log_handle("expired (idle)", x);
				release_handle_locked(h, link);
			} else {
				link = &x->next;
			}
		}
		sweep_orphans_locked(h);
		wait_ms(h, REAPER_TICK_MS);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

int mcp_handles_open(const rlm_config *cfg, const struct mcp_options *opts,
                     struct mcp_handles **out, rlm_error *err)
{
	struct mcp_handles *h = calloc(1, sizeof(*h));
	if (!h)
		return set_error(err, RLM_ENOMEM, "out of memory");
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->changed, NULL);
	h->idle_s = opts->handle_idle_s;
	h->max_handles = opts->max_handles;
	double start = rlm_config_get_number(cfg, "limits.start_timeout_s", 120);
	double exec = rlm_config_get_number(cfg, "limits.execute_timeout_s", 300);
	double grace = rlm_config_get_number(cfg, "limits.hard_deadline_grace_s", 5);
	h->acquire_s = start + 30;
	h->lease_wait_s = exec + grace + 60;
	int rc = rlm_config_clone(cfg, &h->cfg, err);
	if (!rc && pthread_create(&h->reaper, NULL, reaper_main, h) == 0)
		h->reaper_started = 1;
	else if (!rc)
		rc = set_error(err, RLM_ENOMEM, "cannot start the handle reaper thread");
	if (rc) {
		mcp_handles_close(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ---- pools ---- */

/* backend "\n" options with the top-level keys sorted: one pool per distinct configuration. */
static char *pool_key(const char *backend, json_object *options)
{
	json_object *sorted = json_object_new_object();
	if (options) {
		size_t n = (size_t)json_object_object_length(options), k = 0;
		const char **keys = calloc(n + 1, sizeof(*keys));
		json_object_object_foreach(options, key, val)
		{
			(void)val;
			if (keys)
				keys[k++] = key;
		}
		for (size_t i = 1; keys && i < k; i++)
			for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
				const char *t = keys[j];
				keys[j] = keys[j - 1];
				keys[j - 1] = t;
			}
		for (size_t i = 0; keys && i < k; i++)
			json_object_object_add(
			        sorted, keys[i],
			        json_object_get(json_object_object_get(options, keys[i])));
		free(keys);
	}
	const char *text = json_object_to_json_string_ext(sorted, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(backend) + strlen(text) + 2;
	char *key = malloc(len);
	if (key)
		snprintf(key, len, "%s\n%s", backend, text);
	json_object_put(sorted);
	return key;
}

static int pool_config(const rlm_config *base, const char *backend, json_object *options,
                       rlm_config **out, rlm_error *err)
{
	rlm_config *cfg = NULL;
	int rc = rlm_config_clone(base, &cfg, err);
	if (!rc && backend)
		rc = rlm_config_set(cfg, "backend", backend, err);
	if (!rc && options && json_object_object_length(options) > 0) {
		json_object *doc = json_object_new_object(), *b = json_object_new_object();
		json_object_object_add(b, rlm_config_get_string(cfg, "backend", "local"),
		                       json_object_get(options));
		json_object_object_add(doc, "backends", b);
		rc = rlm_config_merge_json(cfg, json_object_to_json_string(doc), "sandbox_create",
		                           err);
		json_object_put(doc);
	}
	if (!rc)
		rc = rlm_config_validate(cfg, err);
	if (rc) {
		rlm_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static int find_pool_locked(struct mcp_handles *h, const char *backend, json_object *options,
                            struct pool_entry **out, rlm_error *err)
{
	const char *name = backend ? backend : rlm_config_get_string(h->cfg, "backend", "local");
	char *key = pool_key(name, options);
	if (!key)
		return set_error(err, RLM_ENOMEM, "out of memory");
	for (int i = 0; i < h->npools; i++) {
		if (!strcmp(h->pools[i]->key, key)) {
			free(key);
			*out = h->pools[i];
			return 0;
		}
	}
	if (h->npools == MAX_POOLS) {
		free(key);
		return set_error(err, RLM_EQUOTA,
		                 "too many distinct sandbox configurations (%d): reuse a backend "
		                 "and options already in use",
		                 MAX_POOLS);
	}
	struct pool_entry *p = calloc(1, sizeof(*p));
	int rc = p ? pool_config(h->cfg, name, options, &p->cfg, err)
	           : set_error(err, RLM_ENOMEM, "out of memory");
	if (!rc) {
		snprintf(p->backend, sizeof(p->backend), "%s", name);
		rc = rlm_pool_open(p->cfg, NULL, &p->pool, err);
	}
	if (rc) {
		if (p)
			rlm_config_free(p->cfg);
		free(p);
		free(key);
		return rc;
	}
	p->key = key;
	h->pools[h->npools++] = p;
	*out = p;
	return 0;
}

static int add_lease_locked(struct mcp_handles *h, rlm_interp *in, struct pool_entry *p)
{
	if (h->nleases == h->cap_leases) {
		size_t cap = h->cap_leases ? h->cap_leases * 2 : 16;
		struct lease *l = realloc(h->leases, cap * sizeof(*l));
		if (!l)
			return -1;
		h->leases = l;
		h->cap_leases = cap;
	}
	h->leases[h->nleases++] = (struct lease){in, p};
	return 0;
}

static struct pool_entry *take_lease_locked(struct mcp_handles *h, rlm_interp *in)
{
	for (size_t i = 0; i < h->nleases; i++) {
		if (h->leases[i].interp == in) {
			struct pool_entry *p = h->leases[i].pool;
			h->leases[i] = h->leases[--h->nleases];
			return p;
		}
	}
	return NULL;
}

int mcp_sandbox_acquire(struct mcp_handles *h, const char *backend, json_object *options,
                        const volatile int *cancel, rlm_interp **out, const rlm_config **cfg,
                        rlm_error *err)
{
	struct pool_entry *p = NULL;
	pthread_mutex_lock(&h->mu);
	int rc = h->stopping ? set_error(err, RLM_ECANCELLED, "the server is stopping")
	                     : find_pool_locked(h, backend, options, &p, err);
	pthread_mutex_unlock(&h->mu);
	if (rc)
		return rc;
	long busy = pool_stat(p->pool, "busy"), max = pool_stat(p->pool, "max_live");
	if (busy >= max)
		return set_error(err, RLM_EQUOTA,
		                 "the %s pool is full: %ld of %ld sandboxes are in use (handles "
		                 "and runs); destroy a handle with sandbox_destroy, or raise "
		                 "pool.max_live",
		                 p->backend, busy, max);
	double deadline = now_s() + h->acquire_s;
	rlm_interp *in = NULL;
	for (;;) {
		rlm_error_clear(err);
		rc = rlm_pool_acquire(p->pool, ACQUIRE_SLICE, &in, err);
		if (rc != RLM_ETIMEOUT)
			break;
		int cancelled = cancel && *cancel;
		if (cancelled || now_s() >= deadline) {
			pthread_mutex_lock(&h->mu);
			p->orphans++;
			pthread_mutex_unlock(&h->mu);
			if (cancelled)
				return set_error(err, RLM_ECANCELLED, "cancelled");
			return set_error(err, RLM_ETIMEOUT, "no %s sandbox within %.0f s",
			                 p->backend, h->acquire_s);
		}
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&h->mu);
	if (add_lease_locked(h, in, p)) {
		pthread_mutex_unlock(&h->mu);
		rlm_pool_release(p->pool, in, 0);
		return set_error(err, RLM_ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&h->mu);
	*out = in;
	if (cfg)
		*cfg = p->cfg;
	return 0;
}

void mcp_sandbox_release(struct mcp_handles *h, rlm_interp *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&h->mu);
	struct pool_entry *p = take_lease_locked(h, in);
	if (p)
		rlm_pool_release(p->pool, in, 0);
	pthread_cond_broadcast(&h->changed);
	pthread_mutex_unlock(&h->mu);
}

/* ---- handles ---- */

static struct handle **find_handle_locked(struct mcp_handles *h, const char *id)
{
	for (struct handle **link = &h->handles; *link; link = &(*link)->next)
		if (mcp_secret_equal((*link)->id, id))
			return link;
	return NULL;
}

int mcp_handle_add(struct mcp_handles *h, rlm_interp *in, const char *backend, char *id,
                   size_t id_size, rlm_error *err)
{
	unsigned char raw[16];
	struct handle *x = calloc(1, sizeof(*x));
	if (!x || mcp_random_bytes(raw, sizeof(raw)) || id_size < sizeof(x->id)) {
		free(x);
		return set_error(err, RLM_EIO, "cannot mint a handle (/dev/urandom)");
	}
	int n = snprintf(x->id, sizeof(x->id), "sbx_");
	for (size_t i = 0; i < sizeof(raw); i++)
		n += snprintf(x->id + n, sizeof(x->id) - (size_t)n, "%02x", raw[i]);
	snprintf(x->backend, sizeof(x->backend), "%s", backend);
	x->interp = in;
	x->last_used = now_s();
	pthread_mutex_lock(&h->mu);
	if (h->nhandles >= h->max_handles) {
		pthread_mutex_unlock(&h->mu);
		free(x);
		return set_error(err, RLM_EQUOTA,
		                 "too many sandbox handles (%d, --max-handles): destroy one with "
		                 "sandbox_destroy first",
		                 h->max_handles);
	}
	x->pool = take_lease_locked(h, in);
	x->next = h->handles;
	h->handles = x;
	h->nhandles++;
	snprintf(id, id_size, "%s", x->id);
	log_handle("created", x);
	pthread_mutex_unlock(&h->mu);
	return 0;
}

int mcp_handle_lease(struct mcp_handles *h, const char *id, const volatile int *cancel,
                     rlm_interp **out, rlm_error *err)
{
	double deadline = now_s() + h->lease_wait_s;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		struct handle **link = find_handle_locked(h, id);
		if (!link || (*link)->doomed) {
			pthread_mutex_unlock(&h->mu);
			return set_error(err, RLM_ENOTFOUND,
			                 "no sandbox has the handle \"%.60s\": it never existed, "
			                 "was destroyed, or expired after %.0f s idle; create one "
			                 "with sandbox_create",
			                 id, h->idle_s);
		}
		struct handle *x = *link;
		if (!x->busy) {
			x->busy = 1;
			x->last_used = now_s();
			*out = x->interp;
			pthread_mutex_unlock(&h->mu);
			return 0;
		}
		if ((cancel && *cancel) || now_s() >= deadline || h->stopping) {
			pthread_mutex_unlock(&h->mu);
			if (cancel && *cancel)
				return set_error(err, RLM_ECANCELLED, "cancelled");
			return set_error(err, RLM_ETIMEOUT,
			                 "the sandbox stayed busy with another call for %.0f s",
			                 h->lease_wait_s);
		}
		wait_ms(h, 100);
	}
}

void mcp_handle_unlease(struct mcp_handles *h, const char *id)
{
	pthread_mutex_lock(&h->mu);
	struct handle **link = find_handle_locked(h, id);
	if (link) {
		(*link)->busy = 0;
		(*link)->last_used = now_s();
		if ((*link)->doomed) {
			log_handle("destroyed", *link);
			release_handle_locked(h, link);
		}
	}
	pthread_cond_broadcast(&h->changed);
	pthread_mutex_unlock(&h->mu);
}

int mcp_handle_destroy(struct mcp_handles *h, const char *id)
{
	pthread_mutex_lock(&h->mu);
	struct handle **link = find_handle_locked(h, id);
	int rc = link && !(*link)->doomed ? 0 : RLM_ENOTFOUND;
	if (!rc && (*link)->busy) {
		(*link)->doomed = 1;
		rlm_interp_cancel((*link)->interp);
	} else if (!rc) {
		log_handle("destroyed", *link);
		release_handle_locked(h, link);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

json_object *mcp_handles_status(struct mcp_handles *h)
{
	json_object *o = json_object_new_object(), *by = json_object_new_object();
	json_object *pools = json_object_new_array();
	pthread_mutex_lock(&h->mu);
	for (struct handle *x = h->handles; x; x = x->next) {
		json_object *n = json_object_object_get(by, x->backend);
		json_object_object_add(by, x->backend,
		                       json_object_new_int(n ? json_object_get_int(n) + 1 : 1));
	}
	json_object_object_add(o, "handles", json_object_new_int(h->nhandles));
	json_object_object_add(o, "handles_by_backend", by);
	json_object_object_add(o, "runs", json_object_new_int((int)h->nleases));
	json_object_object_add(o, "handle_idle_s", json_object_new_double(h->idle_s));
	json_object_object_add(o, "max_handles", json_object_new_int(h->max_handles));
	for (int i = 0; i < h->npools; i++) {
		char *s = rlm_pool_stats_json(h->pools[i]->pool);
		json_object *st = s ? json_tokener_parse(s) : NULL;
		rlm_free(s);
		if (st) {
			json_object_object_del(st, "run_id");
			json_object_array_add(pools, st);
		}
	}
	pthread_mutex_unlock(&h->mu);
	json_object_object_add(o, "pools", pools);
	return o;
}

void mcp_handles_close(struct mcp_handles *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	pthread_cond_broadcast(&h->changed);
	pthread_mutex_unlock(&h->mu);
	if (h->reaper_started)
		pthread_join(h->reaper, NULL);
	pthread_mutex_lock(&h->mu);
	/* The transports waited for their calls; a call still holding a sandbox is cancelled
	 * and given a few seconds to let go. */
	double until = now_s() + 10;
	for (;;) {
		int busy = (int)h->nleases;
		for (struct handle *x = h->handles; x; x = x->next) {
			if (x->busy) {
				rlm_interp_cancel(x->interp);
				busy++;
			}
		}
		if (!busy || now_s() >= until)
			break;
		wait_ms(h, 100);
	}
	int n = h->nhandles;
	while (h->handles) {
		if (h->handles->busy) { /* still used: leave it to the pool's close */
			struct handle *x = h->handles;
			h->handles = x->next;
			free(x);
			continue;
		}
		release_handle_locked(h, &h->handles);
	}
	pthread_mutex_unlock(&h->mu);
	if (n)
		fprintf(stderr, "rlm mcp: destroyed %d sandbox handle%s\n", n, n == 1 ? "" : "s");
	for (int i = 0; i < h->npools; i++) {
		rlm_pool_close(h->pools[i]->pool);
		rlm_config_free(h->pools[i]->cfg);
		free(h->pools[i]->key);
		free(h->pools[i]);
	}
	free(h->leases);
	rlm_config_free(h->cfg);
	pthread_cond_destroy(&h->changed);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
