/* eval_run.c - rlm_eval_run: the runner behind `rlm eval`.
 *
 * One pass checks the task file, picks the tasks of the shard and drops those an earlier run
 * finished; a preflight opens the LLM plugin and gets one sandbox (so a broken setup fails
 * before any task); then worker threads take tasks in file order: acquire a sandbox from the
 * pool (or open one when the task's options change the sandbox config), rlm_run in it with the
 * task's time limit and the eval's stop flag, release it, classify, retry infrastructure
 * failures, score, and append the row. A watcher thread turns the caller's cancel flag into
 * the stop flag and a pool cancel. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eval_internal.h"
#include "interp_internal.h"
#include "llm.h"
#include "loader.h"
#include "rlm/rlm.h"
#include "rlm/eval.h"
#include "util.h"

#define EVAL_DEFAULT_WORKERS   4
#define EVAL_WORKERS_MAX       1024
#define EVAL_DEFAULT_RETRIES   2
#define EVAL_DEFAULT_ACQUIRE_S 600.0
#define EVAL_DEFAULT_SCORER_S  60.0
/* A run that ends with RLM_ETIMEOUT after this share of the task's time limit ran out of the
 * task's own time (task_error); earlier, a call's own deadline passed (infra_error). */
#define EVAL_TIME_LIMIT_SHARE 0.9
/* Pause before a retry: the first, doubled each attempt, at most the last. */
#define EVAL_BACKOFF_FIRST_S 0.25
#define EVAL_BACKOFF_MAX_S   8.0
/* How many tasks in a row may end infra_error, before any succeeded, until the eval stops as
 * unusable: at least this, at least the number of workers, at most the tasks to run. */
#define EVAL_BREAKER_MIN 3

enum task_status { ST_NONE = 0, ST_OK, ST_TASK_ERROR, ST_INFRA_ERROR };
static const char *const status_names[] = {"missing", "ok", "task_error", "infra_error"};

/* A task the eval covers and the row that stands for it. */
struct tstate {
	size_t task;              /* index in tasks */
	int prior;                /* status of its row from an earlier run */
	int now;                  /* status of the row this run wrote */
	double duration_s, score; /* of the row that counts (score NaN: none) */
	long tokens_in, tokens_out, llm_calls;
};

struct eval {
	const rlm_config *cfg;
	const rlm_eval_options *o;
	const char *default_scorer;
	struct eval_tasks tasks;
	struct tstate *sel;
	size_t nsel;
	size_t *queue; /* indexes in sel of the tasks to run, in file order */
	size_t nqueue, next;
	char *results_path, *traj_dir;
	int fd;
	rlm_pool *pool;
	long workers, retries, breaker;
	long max_live;        /* the pool's, once open */
	char run_id[40];      /* the pool's, once open */
	double creates_per_s; /* idem */
	double task_timeout_s, scorer_timeout_s, acquire_timeout_s;
	pthread_mutex_t mu;
	volatile int stop; /* every run, acquire and scorer of the eval watches it */
	int user_cancelled;
	int stop_code;
	char stop_message[RLM_ERROR_MESSAGE_MAX];
	int any_success;   /* a task of this run finished ok or task_error */
	long infra_streak; /* tasks in a row that ended infra_error while none had succeeded */
	long finished, kept, ok, task_error, infra_error, scored;
	double score_sum;
	double t0;
	int watching;
	int pool_opened;
};

/* ---- options ---- */

static int check_options(const rlm_config *cfg, const rlm_eval_options *o, rlm_eval_summary **out,
                         rlm_error *err)
{
	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_run: out is NULL");
	*out = NULL;
	if (!cfg || !o)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_run: no config or options");
	if (o->struct_size < offsetof(rlm_eval_options, progress_ctx) + sizeof(o->progress_ctx))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_eval_options: struct_size %u is too small (start from "
		                     "RLM_EVAL_OPTIONS_INIT or rlm_eval_options_init)",
		                     o->struct_size);
	if (!o->tasks_path || !*o->tasks_path)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_run: no task file");
	if (!o->out_dir || !*o->out_dir)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_run: no output directory");
	if (o->concurrency < 0 || o->concurrency > EVAL_WORKERS_MAX)
		return rlm_error_set(err, RLM_EINVAL, "concurrency must be 1 to %d, got %ld",
		                     EVAL_WORKERS_MAX, o->concurrency);
	if (o->shard_count < 0 ||
	    (o->shard_count > 0 && (o->shard_index < 0 || o->shard_index >= o->shard_count)))
		return rlm_error_set(err, RLM_EINVAL, "shard %ld/%ld: K must be 0 to N-1",
		                     o->shard_index, o->shard_count);
	if (o->limit < 0 || o->task_timeout_s < 0 || o->retries < -1 || o->retries > 100)
		return rlm_error_set(err, RLM_EINVAL,
		                     "limit, task time limit and retries (at most 100) cannot be "
		                     "negative");
	return 0;
}

void rlm_eval_options_init(rlm_eval_options *opts)
{
	if (!opts)
		return;
	rlm_eval_options init = RLM_EVAL_OPTIONS_INIT;
	*opts = init;
}

/* ---- selection and resume ---- */

static int status_of(const char *name)
{
	for (int s = ST_OK; s <= ST_INFRA_ERROR; s++)
		if (!strcmp(name, status_names[s]))
			return s;
	return ST_NONE;
}

static void state_from_row(struct tstate *t, json_object *row)
{
	t->prior = status_of(json_object_get_string(json_object_object_get(row, "status")));
	t->duration_s = rlm__eval_number(row, "duration_s", 0);
	t->score = rlm__eval_number(row, "score", NAN);
	t->tokens_in = (long)rlm__eval_number(row, "tokens_in", 0);
	t->tokens_out = (long)rlm__eval_number(row, "tokens_out", 0);
	t->llm_calls = (long)rlm__eval_number(row, "llm_calls", 0);
}

static char *results_name(const rlm_eval_options *o)
{
	rlm_sb sb = {0};
	if (o->shard_count > 0)
		rlm_sb_printf(&sb, "%s/results.shard-%ld-of-%ld.jsonl", o->out_dir, o->shard_index,
		              o->shard_count);
	else
		rlm_sb_printf(&sb, "%s/results.jsonl", o->out_dir);
	return rlm_sb_take(&sb);
}

/* The tasks of the shard (the first `limit` of them), their rows from earlier runs, and the
 * queue of those to run: no row yet, or an infra_error row. */
static int select_tasks(struct eval *e, rlm_error *err)
{
	const rlm_eval_options *o = e->o;
	e->sel = calloc(e->tasks.n, sizeof(*e->sel));
	e->queue = calloc(e->tasks.n, sizeof(*e->queue));
	e->results_path = results_name(o);
	if (!e->sel || !e->queue || !e->results_path)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->tasks.n; i++) {
		if (o->shard_count > 1 &&
		    rlm_eval_shard_of(e->tasks.v[i].id, o->shard_count) != o->shard_index)
			continue;
		if (o->limit > 0 && (long)e->nsel >= o->limit)
			break;
		e->sel[e->nsel].task = i;
		e->sel[e->nsel].score = NAN;
		e->nsel++;
	}
	struct eval_results prior = {0};
	int rc = rlm__eval_results_read(e->results_path, NULL, &prior, err);
	for (size_t k = 0; !rc && k < e->nsel; k++) {
		struct tstate *t = &e->sel[k];
		json_object *row = rlm__eval_results_get(&prior, e->tasks.v[t->task].id);
		if (row)
			state_from_row(t, row);
		if (t->prior == ST_OK || t->prior == ST_TASK_ERROR) {
			e->kept++;
			e->ok += t->prior == ST_OK;
			e->task_error += t->prior == ST_TASK_ERROR;
			if (!isnan(t->score)) {
				e->scored++;
				e->score_sum += t->score;
			}
		} else {
			e->queue[e->nqueue++] = k;
		}
	}
	rlm__eval_results_free(&prior);
	return rc;
}

/* ---- output files ---- */

/* Opens the results file for appending; a file whose last line lacks its newline (written by
 * something else) gets one, so the next row starts on a line of its own. */
static int open_results(struct eval *e, rlm_error *err)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%s/trajectories", e->o->out_dir);
	e->traj_dir = rlm_sb_take(&sb);
	if (!e->traj_dir)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	int rc = rlm__eval_make_dirs(e->traj_dir, err);
	if (rc)
		return rc;
	e->fd = open(e->results_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (e->fd < 0)
		return rlm_error_set(err, RLM_EIO, "cannot open %s: %s", e->results_path,
		                     strerror(errno));
	struct stat st;
	char last = '\n';
	if (fstat(e->fd, &st) == 0 && st.st_size > 0) {
		int rfd = open(e->results_path, O_RDONLY | O_CLOEXEC);
		if (rfd >= 0 && pread(rfd, &last, 1, st.st_size - 1) != 1)
			last = '\n';
		if (rfd >= 0)
			close(rfd);
	}
	if (last != '\n' && write(e->fd, "\n", 1) != 1)
		return rlm_error_set(err, RLM_EIO, "cannot write %s: %s", e->results_path,
		                     strerror(errno));
	return 0;
}

/* ---- what a run left in its trajectory ---- */

struct traj_facts {
	long iterations, llm_calls, tokens_in, tokens_out;
	char *last_error; /* the error line of the last block the root ran, or NULL */
	int found;        /* a summary line was there */
};

static void read_trajectory(const char *path, struct traj_facts *f)
{
	memset(f, 0, sizeof(*f));
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return;
	char *buf = NULL;
	size_t cap = 0;
	while (getline(&buf, &cap, fp) > 0) {
		json_object *o = json_tokener_parse(buf), *v, *blocks, *usage;
		const char *type = json_object_get_string(json_object_object_get(o, "type"));
		if (type && !strcmp(type, "iteration") &&
		    json_object_get_int(json_object_object_get(o, "depth")) == 0 &&
		    json_object_object_get_ex(o, "code_blocks", &blocks) &&
		    json_object_array_length(blocks) > 0) {
			json_object *last = json_object_array_get_idx(
			        blocks, json_object_array_length(blocks) - 1);
			json_object *res = json_object_object_get(last, "result");
			free(f->last_error);
			f->last_error = json_object_object_get_ex(res, "error", &v) && v
			                        ? strdup(json_object_get_string(v))
			                        : NULL;
		} else if (type && !strcmp(type, "summary")) {
			f->found = 1;
			f->iterations =
			        json_object_get_int(json_object_object_get(o, "iterations"));
			if (json_object_object_get_ex(o, "usage", &usage)) {
				f->llm_calls = (long)rlm__eval_number(usage, "llm_calls", 0);
				f->tokens_in = (long)rlm__eval_number(usage, "prompt_tokens", 0);
				f->tokens_out =
				        (long)rlm__eval_number(usage, "completion_tokens", 0);
			}
		}
		json_object_put(o);
	}
	free(buf);
	fclose(fp);
}

/* ---- one task ---- */

struct outcome {
	int status;
	int code; /* the rlm_run / acquire error, 0 when none */
	char *answer;
	double score;
	long iterations, llm_calls, tokens_in, tokens_out;
	double duration_s;
	int attempt;
	char error[RLM_ERROR_MESSAGE_MAX + 256];
};

static int is_fatal(int code)
{
	return code == RLM_EAUTH || code == RLM_EQUOTA || code == RLM_ECONFIG ||
	       code == RLM_EPLUGIN;
}

static void stop_eval(struct eval *e, int code, const char *message)
{
	pthread_mutex_lock(&e->mu);
	if (!e->stop) {
		e->stop = 1;
		e->stop_code = code;
		snprintf(e->stop_message, sizeof(e->stop_message), "%.*s",
		         (int)sizeof(e->stop_message) - 1, message);
	}
	rlm_pool *pool = e->pool;
	pthread_mutex_unlock(&e->mu);
	if (pool)
		rlm_pool_cancel(pool);
}

static int open_sandbox(struct eval *e, const struct eval_task *t, const rlm_config *cfg,
                        rlm_interp **in, rlm_error *err)
{
	if (!t->private_sandbox)
		return rlm_pool_acquire(e->pool, e->acquire_timeout_s, in, err);
	/* watching the stop flag from the start: a slow creation is cancelled too */
	return rlm__interp_open_watching(cfg, &e->stop, in, err);
}

static void close_sandbox(struct eval *e, const struct eval_task *t, rlm_interp *in)
{
	if (!in)
		return;
	if (t->private_sandbox)
		rlm_interp_close(in);
	else
		rlm_pool_release(e->pool, in, 0);
}

static char *traj_path(const struct eval *e, const struct eval_task *t)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%s/%s.jsonl", e->traj_dir, t->file_stem);
	return rlm_sb_take(&sb);
}

/* What rlm_run's outcome means for the task (see the README's "Failures"). */
static void classify(struct eval *e, int rc, const rlm_run_result *res, const rlm_error *err,
                     double run_s, const char *trajectory, struct outcome *oc)
{
	struct traj_facts f;
	if (rc == 0 && res->answer) {
		oc->status = ST_OK;
		oc->answer = strdup(res->answer);
		oc->iterations = res->iterations;
		oc->llm_calls = res->usage.llm_calls;
		oc->tokens_in = res->usage.prompt_tokens;
		oc->tokens_out = res->usage.completion_tokens;
		return;
	}
	read_trajectory(trajectory, &f);
	oc->iterations = rc == 0 ? res->iterations : f.iterations;
	oc->llm_calls = rc == 0 ? res->usage.llm_calls : f.llm_calls;
	oc->tokens_in = rc == 0 ? res->usage.prompt_tokens : f.tokens_in;
	oc->tokens_out = rc == 0 ? res->usage.completion_tokens : f.tokens_out;
	if (rc == 0) {
		oc->status = ST_TASK_ERROR;
		snprintf(oc->error, sizeof(oc->error), "no answer after %d iteration%s%s%s%s",
		         res->iterations, res->iterations == 1 ? "" : "s",
		         res->fallback ? " (the last call for an answer gave none)" : "",
		         f.last_error ? "; the last block raised " : "",
		         f.last_error ? f.last_error : "");
	} else if (rc == RLM_ETIMEOUT && e->task_timeout_s > 0 &&
	           run_s >= EVAL_TIME_LIMIT_SHARE * e->task_timeout_s) {
		oc->status = ST_TASK_ERROR;
		oc->code = rc;
		snprintf(oc->error, sizeof(oc->error), "the task's time limit (%g s) ran out: %s",
		         e->task_timeout_s, err->message);
	} else if (rc == RLM_EBUDGET) {
		oc->status = ST_TASK_ERROR;
		oc->code = rc;
		snprintf(oc->error, sizeof(oc->error), "%s [%s]", err->message,
		         rlm_status_name(rc));
	} else {
		oc->status = ST_INFRA_ERROR;
		oc->code = rc;
		snprintf(oc->error, sizeof(oc->error), "%s [%s]", err->message,
		         rlm_status_name(rc));
	}
	free(f.last_error);
}

/* One attempt: a sandbox, rlm_run, the sandbox back. oc->status stays ST_NONE when the eval
 * was stopped meanwhile (the task gets no row). */
static void attempt_task(struct eval *e, const struct eval_task *t, json_object *task,
                         const rlm_config *cfg, struct outcome *oc)
{
	double t0 = rlm_now();
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *in = NULL;
	int rc = open_sandbox(e, t, cfg, &in, &err);
	if (rc) {
		oc->duration_s = rlm_now() - t0;
		if (e->stop)
			return;
		oc->status = ST_INFRA_ERROR;
		oc->code = rc;
		snprintf(oc->error, sizeof(oc->error), "no sandbox: %s [%s]", err.message,
		         rlm_status_name(rc));
		return;
	}
	json_object *ctx = NULL, *file = NULL;
	json_object_object_get_ex(task, "context", &ctx);
	json_object_object_get_ex(task, "context_file", &file);
	char *ctx_path =
	        file ? rlm__eval_resolve(e->tasks.dir, json_object_get_string(file)) : NULL;
	char *trajectory = traj_path(e, t);
	rlm_run_options ro = RLM_RUN_OPTIONS_INIT;
	ro.task = json_object_get_string(json_object_object_get(task, "query"));
	if (ctx && json_object_is_type(ctx, json_type_string)) {
		ro.context = json_object_get_string(ctx);
		ro.context_len = (size_t)json_object_get_string_len(ctx);
	}
	ro.context_file = ctx_path;
	ro.trajectory_path = trajectory;
	ro.interp = in;
	ro.timeout_s = e->task_timeout_s;
	ro.cancel = &e->stop;
	if (RLM_HAS_FIELD(e->o, llm_ctx)) {
		ro.llm = e->o->llm;
		ro.llm_ctx = e->o->llm_ctx;
	}
	rlm_run_result *res = NULL;
	double r0 = rlm_now();
	rc = (file && !ctx_path) || !trajectory ? rlm_error_set(&err, RLM_ENOMEM, "out of memory")
	                                        : rlm_run(cfg, &ro, &res, &err);
	double run_s = rlm_now() - r0;
	close_sandbox(e, t, in);
	oc->duration_s = rlm_now() - t0;
	if (!(rc && e->stop))
		classify(e, rc, res, &err, run_s, trajectory, oc);
	rlm_run_result_free(res);
	free(ctx_path);
	free(trajectory);
}

static void keep_attempt_trajectory(const struct eval *e, const struct eval_task *t, int attempt)
{
	char *from = traj_path(e, t);
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%s.attempt-%d", from ? from : "", attempt);
	char *to = rlm_sb_take(&sb);
	if (from && to)
		rename(from, to); /* none there (no run started) is fine */
	free(from);
	free(to);
}

static void backoff(struct eval *e, int attempt)
{
	double d = EVAL_BACKOFF_FIRST_S;
	for (int i = 1; i < attempt && d < EVAL_BACKOFF_MAX_S; i++)
		d *= 2;
	double until = rlm_now() + (d < EVAL_BACKOFF_MAX_S ? d : EVAL_BACKOFF_MAX_S);
	while (!e->stop && rlm_now() < until) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void score_outcome(struct eval *e, const struct eval_task *t, json_object *task,
                          struct outcome *oc)
{
	const char *scorer = t->scorer ? t->scorer : e->default_scorer;
	int cmd = !strncmp(scorer, "cmd:", 4);
	oc->score = NAN;
	if (!t->has_expected && !cmd)
		return;
	if (oc->status == ST_TASK_ERROR) {
		oc->score = 0; /* a task that should have been scored and gave no answer */
		return;
	}
	if (oc->status != ST_OK)
		return;
	json_object *expected = json_object_object_get(task, "expected");
	json_object *file;
	if (json_object_object_get_ex(task, "context_file", &file)) {
		/* the command gets a path it can open from wherever it runs */
		char *p = rlm__eval_resolve(e->tasks.dir, json_object_get_string(file));
		char *abs = p ? realpath(p, NULL) : NULL;
		json_object_object_add(task, "context_file", json_object_new_string(abs ? abs : p));
		free(p);
		free(abs);
	}
	rlm_error err = RLM_ERROR_INIT;
	double s = NAN;
	if (rlm__eval_score(scorer, oc->answer, expected, task, e->scorer_timeout_s, &e->stop, &s,
	                    &err)) {
		if (e->stop && err.code == RLM_ECANCELLED) {
			oc->status = ST_NONE;
			return;
		}
		snprintf(oc->error, sizeof(oc->error), "scorer: %s", err.message);
		return;
	}
	oc->score = s;
}

static json_object *json_number(double v, const char *fmt)
{
	char buf[64];
	snprintf(buf, sizeof(buf), fmt, v);
	return json_object_new_double_s(v, buf);
}

/* trajectory_written: the final attempt left a trajectory (a run that never started, e.g.
 * for want of a sandbox, has none: the row says null). */
static json_object *make_row(const struct eval_task *t, json_object *task, const struct outcome *oc,
                             int trajectory_written)
{
	json_object *row = json_object_new_object(), *exp = NULL;
	json_object_object_add(row, "id", json_object_new_string(t->id));
	json_object_object_add(row, "status", json_object_new_string(status_names[oc->status]));
	json_object_object_add(row, "answer",
	                       oc->answer ? json_object_new_string(oc->answer) : NULL);
	json_object_object_get_ex(task, "expected", &exp);
	json_object_object_add(row, "expected", exp ? json_object_get(exp) : NULL);
	json_object_object_add(row, "score",
	                       isnan(oc->score) ? NULL : json_number(oc->score, "%.6g"));
	json_object_object_add(row, "iterations", json_object_new_int64(oc->iterations));
	json_object_object_add(row, "llm_calls", json_object_new_int64(oc->llm_calls));
	json_object_object_add(row, "tokens_in", json_object_new_int64(oc->tokens_in));
	json_object_object_add(row, "tokens_out", json_object_new_int64(oc->tokens_out));
	json_object_object_add(row, "duration_s", json_number(oc->duration_s, "%.3f"));
	json_object_object_add(row, "attempt", json_object_new_int(oc->attempt));
	json_object_object_add(row, "error",
	                       oc->error[0] ? json_object_new_string(oc->error) : NULL);
	char rel[256];
	snprintf(rel, sizeof(rel), "trajectories/%s.jsonl", t->file_stem);
	json_object_object_add(row, "trajectory",
	                       trajectory_written ? json_object_new_string(rel) : NULL);
	return row;
}

/* Called with the lock held: the progress callback's view. */
static void report_progress(struct eval *e, const struct eval_task *t, const struct outcome *oc)
{
	if (!e->o->on_progress)
		return;
	rlm_eval_progress p = {0};
	p.total = (long)e->nsel;
	p.kept = e->kept;
	p.finished = e->finished;
	p.done = e->kept + e->finished;
	p.to_run = (long)e->nqueue;
	p.ok = e->ok;
	p.task_error = e->task_error;
	p.infra_error = e->infra_error;
	p.mean_score = e->scored ? e->score_sum / (double)e->scored : NAN;
	p.elapsed_s = rlm_now() - e->t0;
	p.eta_s = e->finished ? p.elapsed_s / (double)e->finished * (double)(p.to_run - e->finished)
	                      : -1;
	p.id = t->id;
	p.status = status_names[oc->status];
	p.error = oc->error[0] ? oc->error : NULL;
	p.score = oc->score;
	p.duration_s = oc->duration_s;
	p.attempt = oc->attempt;
	e->o->on_progress(e->o->progress_ctx, &p);
}

/* Appends the row and counts it; decides whether the eval must stop. */
static void finish_task(struct eval *e, size_t k, json_object *task, const struct outcome *oc)
{
	struct tstate *st = &e->sel[k];
	const struct eval_task *t = &e->tasks.v[st->task];
	char *traj = traj_path(e, t);
	struct stat tst;
	json_object *row = make_row(t, task, oc, traj && stat(traj, &tst) == 0);
	free(traj);
	rlm_error err = RLM_ERROR_INIT;
	pthread_mutex_lock(&e->mu);
	int rc = rlm__eval_row_append(e->fd, row, &err);
	json_object_put(row);
	if (rc) {
		pthread_mutex_unlock(&e->mu);
		stop_eval(e, rc, err.message);
		return;
	}
	st->now = oc->status;
	st->duration_s = oc->duration_s;
	st->score = oc->score;
	st->tokens_in = oc->tokens_in;
	st->tokens_out = oc->tokens_out;
	st->llm_calls = oc->llm_calls;
	e->finished++;
	e->ok += oc->status == ST_OK;
	e->task_error += oc->status == ST_TASK_ERROR;
	e->infra_error += oc->status == ST_INFRA_ERROR;
	if (!isnan(oc->score)) {
		e->scored++;
		e->score_sum += oc->score;
	}
	if (oc->status != ST_INFRA_ERROR)
		e->any_success = 1;
	else if (!e->any_success)
		e->infra_streak++;
	int unusable = !e->any_success && e->infra_streak >= e->breaker;
	report_progress(e, t, oc);
	pthread_mutex_unlock(&e->mu);
	if (oc->status == ST_INFRA_ERROR && is_fatal(oc->code)) {
		stop_eval(e, oc->code, oc->error);
	} else if (unusable) {
		char msg[RLM_ERROR_MESSAGE_MAX];
		snprintf(msg, sizeof(msg), "the first %ld tasks all failed; the last: %.900s",
		         e->infra_streak, oc->error);
		stop_eval(e, oc->code ? oc->code : RLM_EBACKEND, msg);
	}
}

/* base: the worker's own copy of the eval's config (a config is not shared between threads:
 * reading one as JSON caches text inside it). */
static void run_task(struct eval *e, size_t k, const rlm_config *base)
{
	const struct eval_task *t = &e->tasks.v[e->sel[k].task];
	json_object *task = NULL;
	rlm_config *own = NULL;
	struct outcome oc = {0};
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm__eval_task_read(&e->tasks, t, &task, &err);
	json_object *options = NULL;
	if (!rc && t->has_options && json_object_object_get_ex(task, "options", &options))
		rc = rlm__eval_task_config(base, options, t->id, &own, &err);
	if (rc) {
		oc.status = ST_INFRA_ERROR;
		oc.code = rc;
		oc.attempt = 1;
		oc.score = NAN;
		snprintf(oc.error, sizeof(oc.error), "%s [%s]", err.message, rlm_status_name(rc));
		finish_task(e, k, NULL, &oc);
		return;
	}
	const rlm_config *cfg = own ? own : base;
	for (int attempt = 1;; attempt++) {
		free(oc.answer);
		memset(&oc, 0, sizeof(oc));
		oc.attempt = attempt;
		attempt_task(e, t, task, cfg, &oc);
		if (oc.status == ST_NONE || oc.status != ST_INFRA_ERROR || attempt > e->retries ||
		    is_fatal(oc.code) || e->stop)
			break;
		keep_attempt_trajectory(e, t, attempt);
		backoff(e, attempt);
		if (e->stop) {
			oc.status = ST_NONE; /* stopped between attempts: in flight, so no row */
			break;
		}
	}
	if (oc.status != ST_NONE)
		score_outcome(e, t, task, &oc);
	if (oc.status != ST_NONE)
		finish_task(e, k, task, &oc);
	free(oc.answer);
	rlm_config_free(own);
	json_object_put(task);
}

struct worker {
	struct eval *e;
	rlm_config *cfg; /* its own copy */
	pthread_t thread;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct eval *e = w->e;
	for (;;) {
		pthread_mutex_lock(&e->mu);
		size_t k = 0;
		int have = !e->stop && e->next < e->nqueue;
		if (have)
			k = e->queue[e->next++];
		pthread_mutex_unlock(&e->mu);
		if (!have)
			return NULL;
		run_task(e, k, w->cfg);
	}
}

/* Turns the caller's cancel flag into the eval's stop and a pool cancel. */
static void *watcher_main(void *arg)
{
	struct eval *e = arg;
	for (;;) {
		pthread_mutex_lock(&e->mu);
		int watching = e->watching;
		int cancel = e->o->cancel && *e->o->cancel && !e->user_cancelled;
		if (cancel)
			e->user_cancelled = 1;
		pthread_mutex_unlock(&e->mu);
		if (!watching)
			return NULL;
		if (cancel)
			stop_eval(e, RLM_ECANCELLED, "cancelled");
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* ---- preflight and the pool ---- */

/* Opens (and closes) the LLM plugins the runs will use: a bad llm section, a missing plugin or
 * replay script fails here, before any task. No request is sent. */
static int preflight_llm(const rlm_config *cfg, rlm_error *err)
{
	rlm_llm *llm = NULL;
	int rc = rlm__llm_open(cfg, "llm", &llm, err);
	rlm__llm_close(llm);
	const char *sub = rlm_config_get_string(cfg, "sub_llm.provider", NULL);
	if (!rc && sub && *sub) {
		llm = NULL;
		rc = rlm__llm_open(cfg, "sub_llm", &llm, err);
		rlm__llm_close(llm);
	}
	return rc;
}

/* The pool's limits: the caller's, else --concurrency as max_live, else the backend's declared
 * account-wide defaults divided among the shards (a machine-local default, 0 in the plugin,
 * is not divided). The config's pool section, when set, is left to the pool. */
static int pool_options(const struct eval *e, rlm_pool_options *po, rlm_error *err)
{
	rlm_pool_options init = RLM_POOL_OPTIONS_INIT;
	*po = init;
	const rlm_pool_options *given = e->o->pool;
	if (given) {
		size_t n = given->struct_size < sizeof(*po) ? given->struct_size : sizeof(*po);
		memcpy(po, given, n);
		po->struct_size = sizeof(*po);
	}
	if (po->max_live <= 0 && e->o->concurrency > 0)
		po->max_live = e->o->concurrency;
	long shards = e->o->shard_count;
	if (shards <= 1)
		return 0;
	const char *backend = rlm_config_get_string(e->cfg, "backend", "local");
	rlm_plugin *p = NULL;
	int rc = rlm__plugin_acquire(e->cfg, RLM_PLUGIN_BACKEND, backend, &p, err);
	if (rc)
		return rc;
	const rlm_plugin_desc *d = rlm__plugin_desc(p);
	unsigned live = RLM_HAS_FIELD(d, pool_max_live) ? d->pool_max_live : 0;
	double rate = RLM_HAS_FIELD(d, pool_creates_per_s) ? d->pool_creates_per_s : 0;
	rlm__plugin_release(p);
	if (po->max_live <= 0 && live > 0 && rlm_config_get_number(e->cfg, "pool.max_live", 0) <= 0)
		po->max_live = (long)live / shards > 0 ? (long)live / shards : 1;
	if (po->creates_per_s <= 0 && rate > 0 &&
	    rlm_config_get_number(e->cfg, "pool.creates_per_s", -1) < 0)
		po->creates_per_s = rate / (double)shards;
	return 0;
}

static json_object *pool_stats(rlm_pool *pool)
{
	char *s = rlm_pool_stats_json(pool);
	json_object *o = s ? json_tokener_parse(s) : NULL;
	rlm_free(s);
	return o;
}

static long pool_stat(rlm_pool *pool, const char *key)
{
	json_object *o = pool_stats(pool), *v;
	long n = json_object_object_get_ex(o, key, &v) ? (long)json_object_get_int64(v) : 1;
	json_object_put(o);
	return n;
}

static double pool_rate(rlm_pool *pool)
{
	json_object *o = pool_stats(pool), *v;
	double r =
	        json_object_object_get_ex(o, "creates_per_s", &v) ? json_object_get_double(v) : 0;
	json_object_put(o);
	return r;
}

/* Modal has no list API, so no gc can find what a SIGKILLed eval left: its sandboxes get a
 * lifetime derived from the task's time limit (the time limit, the start, and 5 minutes), so
 * nothing runs for long after the host died. A shorter lifetime in the config is kept. */
static int lifetime_config(const struct eval *e, rlm_config **out, rlm_error *err)
{
	int rc = rlm_config_clone(e->cfg, out, err);
	const char *backend = rlm_config_get_string(e->cfg, "backend", "local");
	if (rc || e->task_timeout_s <= 0 || strcmp(backend, "modal") != 0)
		return rc;
	double start = rlm_config_get_number(e->cfg, "limits.start_timeout_s", 120);
	double life = e->task_timeout_s + start + 300;
	double set = rlm_config_get_number(e->cfg, "backends.modal.timeout_s", 0);
	if (set > 0 && set <= life)
		return 0;
	char value[64];
	snprintf(value, sizeof(value), "%.0f", life);
	return rlm_config_set(*out, "backends.modal.timeout_s", value, err);
}

static int open_pool(struct eval *e, rlm_error *err)
{
	rlm_pool_options po;
	rlm_config *pcfg = NULL;
	int rc = pool_options(e, &po, err);
	rlm_pool *pool = NULL;
	if (!rc)
		rc = lifetime_config(e, &pcfg, err);
	if (!rc)
		rc = rlm_pool_open(pcfg, &po, &pool, err);
	rlm_config_free(pcfg);
	if (rc)
		return rc;
	pthread_mutex_lock(&e->mu);
	e->pool = pool;
	e->pool_opened = 1;
	pthread_mutex_unlock(&e->mu);
	long live = pool_stat(pool, "max_live");
	e->max_live = live;
	snprintf(e->run_id, sizeof(e->run_id), "%s", rlm_pool_run_id(pool));
	e->creates_per_s = pool_rate(pool);
	e->workers = e->o->concurrency > 0         ? e->o->concurrency
	             : po.max_live > 0             ? po.max_live
	             : live < EVAL_DEFAULT_WORKERS ? live
	                                           : EVAL_DEFAULT_WORKERS;
	if (e->workers > (long)e->nqueue)
		e->workers = (long)e->nqueue;
	if (e->workers < 1)
		e->workers = 1;
	e->breaker = e->workers > EVAL_BREAKER_MIN ? e->workers : EVAL_BREAKER_MIN;
	if (e->breaker > (long)e->nqueue)
		e->breaker = (long)e->nqueue;
	/* One sandbox before any task: a backend that cannot make one fails here. It goes back
	 * to the pool unused, for the first task. */
	rlm_interp *in = NULL;
	rc = rlm_pool_acquire(pool, e->acquire_timeout_s, &in, err);
	if (!rc)
		rlm_pool_release(pool, in, RLM_POOL_REUSE);
	return rc;
}

/* ---- the summary ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double rlm__eval_quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	size_t rank = (size_t)ceil(q * (double)n);
	return v[rank ? rank - 1 : 0];
}

static rlm_eval_summary *make_summary(struct eval *e)
{
	rlm_eval_summary *s = calloc(1, sizeof(*s));
	double *times = calloc(e->nsel + 1, sizeof(*times));
	if (!s || !times) {
		free(s);
		free(times);
		return NULL;
	}
	size_t nt = 0;
	double sum = 0;
	s->total = (long)e->nsel;
	for (size_t k = 0; k < e->nsel; k++) {
		const struct tstate *t = &e->sel[k];
		int st = t->now ? t->now : t->prior;
		s->ok += st == ST_OK;
		s->task_error += st == ST_TASK_ERROR;
		s->infra_error += st == ST_INFRA_ERROR;
		s->missing += st == ST_NONE;
		if (st == ST_NONE)
			continue;
		times[nt++] = t->duration_s;
		s->tokens_in += t->tokens_in;
		s->tokens_out += t->tokens_out;
		s->llm_calls += t->llm_calls;
		if (!isnan(t->score)) {
			s->scored++;
			sum += t->score;
		}
	}
	s->mean_score = s->scored ? sum / (double)s->scored : NAN;
	s->p50_s = rlm__eval_quantile(times, nt, 0.5);
	s->p95_s = rlm__eval_quantile(times, nt, 0.95);
	free(times);
	s->kept = e->kept;
	s->to_run = (long)e->nqueue;
	s->finished = e->finished;
	s->wall_s = e->t0 > 0 ? rlm_now() - e->t0 : 0;
	s->tasks_per_min = s->wall_s > 0 ? (double)e->finished * 60.0 / s->wall_s : 0;
	s->cancelled = e->user_cancelled;
	if (e->stop_code && !e->user_cancelled) {
		s->stop_code = e->stop_code;
		snprintf(s->stop_message, sizeof(s->stop_message), "%s", e->stop_message);
		s->unusable = !e->any_success;
	}
	s->workers = e->pool_opened ? e->workers : 0;
	s->max_live = e->max_live;
	memcpy(s->run_id, e->run_id, sizeof(s->run_id));
	s->creates_per_s = e->creates_per_s;
	s->results_path = e->results_path;
	e->results_path = NULL;
	return s;
}

void rlm_eval_summary_free(rlm_eval_summary *s)
{
	if (!s)
		return;
	free(s->results_path);
	free(s);
}

/* ---- the run ---- */

static int run_workers(struct eval *e, rlm_error *err)
{
	struct worker *w = calloc((size_t)e->workers, sizeof(*w));
	if (!w)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	int rc = 0;
	long started = 0;
	/* the copies are made here, on one thread, before any worker reads the config */
	for (long i = 0; !rc && i < e->workers; i++) {
		w[i].e = e;
		rc = rlm_config_clone(e->cfg, &w[i].cfg, err);
	}
	for (; !rc && started < e->workers; started++)
		if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]))
			break;
	if (!rc && !started)
		rc = rlm_error_set(err, RLM_ENOMEM, "cannot start a worker thread");
	for (long i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	for (long i = 0; i < e->workers; i++)
		rlm_config_free(w[i].cfg);
	free(w);
	return rc;
}

static int run_eval(struct eval *e, rlm_error *err)
{
	/* A caller's llm callback replaces the llm and sub_llm sections: no plugin to check. */
	int rc = RLM_HAS_FIELD(e->o, llm_ctx) && e->o->llm ? 0 : preflight_llm(e->cfg, err);
	if (!rc)
		rc = open_results(e, err);
	if (rc)
		return rc;
	e->t0 = rlm_now();
	pthread_t watcher;
	e->watching = 1;
	if (pthread_create(&watcher, NULL, watcher_main, e))
		return rlm_error_set(err, RLM_ENOMEM, "cannot start a thread");
	rc = open_pool(e, err);
	if (rc && e->user_cancelled)
		rc = 0; /* cancelled during the preflight: nothing ran, the summary says so */
	else if (!rc)
		rc = run_workers(e, err);
	pthread_mutex_lock(&e->mu);
	e->watching = 0;
	pthread_mutex_unlock(&e->mu);
	pthread_join(watcher, NULL);
	rlm_pool_close(e->pool);
	e->pool = NULL;
	return rc;
}

int rlm_eval_run(const rlm_config *cfg, const rlm_eval_options *opts, rlm_eval_summary **out,
                 rlm_error *err)
{
	int rc = check_options(cfg, opts, out, err);
	if (rc)
		return rc;
	struct eval e = {.cfg = cfg, .o = opts, .fd = -1};
	e.default_scorer = opts->scorer && *opts->scorer ? opts->scorer : "exact";
	e.retries = opts->retries >= 0 ? opts->retries : EVAL_DEFAULT_RETRIES;
	e.task_timeout_s = opts->task_timeout_s;
	e.scorer_timeout_s =
	        opts->scorer_timeout_s > 0 ? opts->scorer_timeout_s : EVAL_DEFAULT_SCORER_S;
	e.acquire_timeout_s =
	        opts->acquire_timeout_s > 0 ? opts->acquire_timeout_s : EVAL_DEFAULT_ACQUIRE_S;
	pthread_mutex_init(&e.mu, NULL);
	rc = rlm__eval_tasks_load(opts->tasks_path, cfg, e.default_scorer, &e.tasks, err);
	if (!rc)
		rc = select_tasks(&e, err);
	if (!rc && !opts->dry_run && e.nqueue > 0)
		rc = run_eval(&e, err);
	if (!rc && !(*out = make_summary(&e)))
		rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	if (e.fd >= 0)
		close(e.fd);
	rlm__eval_tasks_free(&e.tasks);
	free(e.sel);
	free(e.queue);
	free(e.results_path);
	free(e.traj_dir);
	pthread_mutex_destroy(&e.mu);
	return rc;
}
