/* daytona_transport.c - carries the driver's channel to a Daytona sandbox (DESIGN.md 2).
 *
 * The driver runs under relay.py as a daemon in a toolbox session (runAsync), listening on a
 * Unix socket. Each exchange step is one toolbox process/execute of `python3 -S relay.py
 * --connect`, which hands the daemon the step's input (once per sequence number) and prints
 * the driver's output from the host's offset to the next complete frame. Retried or lost
 * steps therefore neither lose nor repeat a byte.
 *
 * Fallback (force_session, or when the relay daemon cannot run): the driver itself is the
 * session command; input goes through session command input and output is read by polling
 * the command's logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daytona_internal.h"

#define RELAY_MAGIC      "RLMRELAY1 "
#define INLINE_INPUT_MAX (48 * 1024) /* larger inputs are uploaded as a file first */
#define INTERRUPT_S      10.0        /* an interrupt's own budget (it runs beside the exchange) */
/* No step starts after the exchange's deadline, and one under way ends this long after it:
 * an answer already on its way back (a result the driver gave in time, on a loaded machine)
 * is still taken, a stuck request is not waited for. */
#define ANSWER_SLACK_S 2.0

extern const char rlm__daytona_relay[];
extern const size_t rlm__daytona_relay_len;

/* The limit of an exchange's requests: its deadline (plus the slack above) and, from ABI 1.2,
 * its cancel flag. */
static struct dt_limit exchange_limit(const rlm_exchange *ex)
{
	struct dt_limit lim = {ex->deadline + ANSWER_SLACK_S, NULL};

	if (RLM_HAS_FIELD(ex, cancel))
		lim.cancel = ex->cancel;
	return lim;
}

/* 0 while the exchange may start another step; else RLM_ECANCELLED or RLM_ETIMEOUT. */
static int exchange_check(struct dt *d, const rlm_exchange *ex, const struct dt_limit *lim,
                          rlm_error *err)
{
	int rc = dt_limit_check(d, lim, "the exchange", err);

	if (rc == 0 && d->host->now() >= ex->deadline)
		rc = d->host->error_set(err, RLM_ETIMEOUT,
		                        "daytona: the exchange passed its deadline");
	return rc;
}

/* ---- launch ---------------------------------------------------------------------------- */

static int session_exec_async(struct dt *d, const char *command, char **cmd_id,
                              const struct dt_limit *lim, rlm_error *err)
{
	char *url = d->host->str_printf("%s/process/session", d->toolbox);
	json_object *body = json_object_new_object(), *ans = NULL, *v;
	int rc;

	snprintf(d->session_id, sizeof(d->session_id), "rlm-%s-%lu", d->instance_id, ++d->launches);
	json_object_object_add(body, "sessionId", json_object_new_string(d->session_id));
	rc = url ? dt_json_call(d, "POST", url, body, 30, lim, "session create", NULL, err)
	         : dt_nomem(d, err);
	d->host->free(url);
	json_object_put(body);
	if (rc)
		return rc;
	url = d->host->str_printf("%s/process/session/%s/exec", d->toolbox, d->session_id);
	body = json_object_new_object();
	json_object_object_add(body, "command", json_object_new_string(command));
	json_object_object_add(body, "runAsync", json_object_new_boolean(1));
	/* Without it the daemon copies every .../input into the command's stdout log, and the
	 * session fallback would read its own requests back as driver output. */
	json_object_object_add(body, "suppressInputEcho", json_object_new_boolean(1));
	rc = url ? dt_json_call(d, "POST", url, body, 30, lim, "session exec", &ans, err)
	         : dt_nomem(d, err);
	d->host->free(url);
	json_object_put(body);
	if (rc == 0) {
		if (json_object_object_get_ex(ans, "cmdId", &v) && cmd_id) {
			d->host->free(*cmd_id);
			*cmd_id = d->host->str_dup(json_object_get_string(v));
		} else if (cmd_id) {
			rc = d->host->error_set(err, RLM_EPROTO,
			                        "daytona: session exec gave no cmdId");
		}
	}
	json_object_put(ans);
	return rc;
}

static int upload_programs(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	const char *paths[] = {DT_RLM_DIR "/driver.py", DT_RLM_DIR "/relay.py"};
	const void *data[] = {d->host->driver_script, rlm__daytona_relay};
	size_t lens[] = {d->host->driver_script_len, rlm__daytona_relay_len};

	if (!d->host->driver_script || !d->host->driver_script_len)
		return d->host->error_set(err, RLM_EINVAL,
		                          "daytona: the host gave no driver script");
	return dt_upload_many(d, paths, data, lens, 2, lim, err);
}

static char *driver_argv(struct dt *d)
{
	/* VOLUME is where create_body mounted the volume: the same constant. */
	return d->host->str_printf("%s " DT_RLM_DIR "/driver.py%s", d->cfg.python,
	                           d->cfg.volume_name ? " --volume '" DT_VOLUME_PATH "'" : "");
}

static int session_logs(struct dt *d, const char *field, const struct dt_limit *lim,
                        char **stdout_text, size_t *len, int *exited, int *status, rlm_error *err);

int dt_driver_launch(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	char *argv = NULL, *cmd = NULL;
	int rc = 0;

	if ((rc = upload_programs(d, lim, err)))
		return rc;
	if (!(argv = driver_argv(d)))
		return dt_nomem(d, err);
	d->seq = 0;
	d->off = 0;
	if (d->cfg.force_session)
		d->session_mode = 1;
	if (d->session_mode) {
		cmd = d->host->str_printf("exec %s", argv);
		rc = cmd ? session_exec_async(d, cmd, &d->cmd_id, lim, err) : dt_nomem(d, err);
	} else {
		cmd = d->host->str_printf("exec %s " DT_RLM_DIR
		                          "/relay.py --daemon --socket " DT_RLM_DIR
		                          "/driver.sock --log " DT_RLM_DIR "/driver.log -- %s",
		                          d->cfg.python, argv);
		rc = cmd ? session_exec_async(d, cmd, &d->cmd_id, lim, err) : dt_nomem(d, err);
	}
	d->host->free(cmd);
	d->host->free(argv);
	return rc;
}

/* ---- relay steps ----------------------------------------------------------------------- */

/* Sends one request to the relay daemon; *head and *payload describe its answer. The relay
 * waits wait_s in the sandbox; lim bounds the whole request. */
static int relay_call(struct dt *d, const char *op, const char *input, size_t input_len,
                      double wait_s, const struct dt_limit *lim, json_object **head,
                      const char **payload, size_t *plen, char **raw, rlm_error *err)
{
	char *cmd = NULL, *b64 = NULL, *file = NULL, *res = NULL, *magic, *nl;
	char redirect[128];
	size_t len = 0;
	int code = -1, rc;

	*head = NULL;
	*raw = NULL;
	if (input_len > INLINE_INPUT_MAX) {
		file = d->host->str_printf(DT_RLM_DIR "/in-%lu", d->seq);
		if (!file)
			return dt_nomem(d, err);
		if ((rc = dt_upload(d, input, input_len, file, lim, err))) {
			d->host->free(file);
			return rc;
		}
		snprintf(redirect, sizeof(redirect), " --input %s", file);
		cmd = d->host->str_printf(
		        "%s -S " DT_RLM_DIR "/relay.py --connect " DT_RLM_DIR
		        "/driver.sock --op %s --seq %lu --from %llu --wait %.3f%s </dev/null",
		        d->cfg.python, op, d->seq, d->off, wait_s, redirect);
	} else if (input_len) {
		/* The old SDKs' portable form: no quoting issues, works with or without a shell. */
		if (!(b64 = dt_base64(d, input, input_len, NULL)))
			return dt_nomem(d, err);
		cmd = d->host->str_printf("printf '%%s' '%s' | base64 -d | %s -S " DT_RLM_DIR
		                          "/relay.py --connect " DT_RLM_DIR
		                          "/driver.sock --op %s --seq %lu --from %llu --wait %.3f",
		                          b64, d->cfg.python, op, d->seq, d->off, wait_s);
	} else {
		cmd = d->host->str_printf(
		        "%s -S " DT_RLM_DIR "/relay.py --connect " DT_RLM_DIR
		        "/driver.sock --op %s --seq %lu --from %llu --wait %.3f </dev/null",
		        d->cfg.python, op, d->seq, d->off, wait_s);
	}
	d->host->free(b64);
	d->host->free(file);
	if (!cmd)
		return dt_nomem(d, err);
	rc = dt_exec(d, cmd, wait_s + 30, lim, &res, &len, &code, err);
	d->host->free(cmd);
	if (rc)
		return rc;
	magic = strstr(res, RELAY_MAGIC);
	nl = magic ? strchr(magic, '\n') : NULL;
	if (nl) {
		*nl = '\0';
		*head = json_tokener_parse(magic + strlen(RELAY_MAGIC));
	}
	if (!*head) {
		rc = d->host->error_set(err, RLM_EBACKEND,
		                        "daytona: the relay did not answer (exit %d): %.400s", code,
		                        res);
		d->host->free(res);
		return rc;
	}
	{
		json_object *v;
		size_t want = json_object_object_get_ex(*head, "len", &v)
		                      ? (size_t)json_object_get_int64(v)
		                      : 0;

		*payload = nl + 1;
		*plen = (size_t)(res + len - (nl + 1));
		if (want > *plen) {
			json_object_put(*head);
			*head = NULL;
			rc = d->host->error_set(
			        err, RLM_EPROTO,
			        "daytona: the relay's answer was cut short (%zu of %zu bytes)",
			        *plen, want);
			d->host->free(res);
			return rc;
		}
		*plen = want; /* anything after it is the relay's stderr (merged by the daemon) */
	}
	*raw = res;
	return 0;
}

static const char *head_str(json_object *head, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(head, key, &v) && json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

/* The driver's channel closed: say how it ended, as the local backend does. */
static int driver_exited(struct dt *d, int status, rlm_error *err)
{
	if (status < 0)
		return d->host->error_set(err, RLM_EBACKEND, "driver was killed by signal %d%s",
		                          -status, -status == 9 ? " (SIGKILL)" : "");
	return d->host->error_set(err, RLM_EBACKEND, "driver exited with status %d", status);
}

/* The relay daemon is not there: its session command's output says why. */
static int daemon_gone(struct dt *d, const char *why, const struct dt_limit *lim, rlm_error *err)
{
	rlm_error lerr = RLM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;
	int exited = 0, status = 0;

	if (session_logs(d, "output", lim, &text, &len, &exited, &status, &lerr) != 0)
		text = NULL;
	if (exited)
		d->host->error_set(err, RLM_EBACKEND,
		                   "the relay daemon exited with status %d: %.600s", status,
		                   text ? text : "");
	else
		d->host->error_set(err, RLM_EBACKEND, "daytona relay: %s", why);
	d->host->free(text);
	return RLM_EBACKEND;
}

/* An answer from the relay that reports a problem instead of output. */
static int relay_problem(struct dt *d, json_object *head, const struct dt_limit *lim,
                         rlm_error *err)
{
	const char *why = head_str(head, "error");
	json_object *v;

	if (why) {
		/* The daemon is gone: was it the sandbox? */
		if (json_object_object_get_ex(head, "nodaemon", &v) &&
		    dt_sandbox_is_lost(d, lim) == 1)
			return d->host->error_set(
			        err, RLM_EBACKEND,
			        "sandbox %s was found stopped or gone (state lost); "
			        "a new sandbox will replace it",
			        d->sandbox_id);
		if (json_object_object_get_ex(head, "nodaemon", &v) && d->cmd_id)
			return daemon_gone(d, why, lim, err);
		return d->host->error_set(err, RLM_EBACKEND, "daytona relay: %s", why);
	}
	return 0;
}

/* How long one step waits in the sandbox: what is left of the exchange, less a margin for
 * the answer's way back (so the step's request, which the exchange's deadline ends, is not
 * cut off just as the relay answers), at most step_wait_s. */
static double step_wait(struct dt *d, double left, int done)
{
	double wait = left - (left / 4 < 1 ? left / 4 : 1);

	if (wait > d->cfg.step_wait_s)
		wait = d->cfg.step_wait_s;
	return done ? 0 : wait < 0.05 ? 0.05 : wait;
}

/* A failed step: the sandbox's loss and the deadline are said in the exchange's words. */
static int step_failed(struct dt *d, int rc, rlm_error *err)
{
	char why[RLM_ERROR_MESSAGE_MAX];

	if (rc == RLM_ESTATE_LOST)
		return d->host->error_set(err, RLM_EBACKEND,
		                          "sandbox %s was found stopped or gone (state lost); a "
		                          "new sandbox will replace it",
		                          d->sandbox_id);
	if (rc == RLM_ETIMEOUT) {
		snprintf(why, sizeof(why), "%s", err ? err->message : "");
		return d->host->error_set(err, RLM_ETIMEOUT,
		                          "daytona: the exchange passed its deadline (%s)", why);
	}
	return rc;
}

static int relay_exchange(struct dt *d, const rlm_exchange *ex, rlm_error *err)
{
	const struct dt_limit lim = exchange_limit(ex);
	const char *out = ex->request;
	size_t out_len = ex->request_len;
	int done = 0;

	if (out_len)
		d->seq++;
	for (;;) {
		double left = ex->deadline - d->host->now();
		json_object *head = NULL, *v;
		const char *payload = NULL;
		size_t plen = 0;
		char *raw = NULL;
		int rc;

		if (done && !out_len)
			return 0;
		if ((rc = exchange_check(d, ex, &lim, err)))
			return rc;
		rc = relay_call(d, "step", out, out_len, step_wait(d, left, done), &lim, &head,
		                &payload, &plen, &raw, err);
		if (rc)
			return step_failed(d, rc, err);
		out = NULL;
		out_len = 0;
		if ((rc = relay_problem(d, head, &lim, err))) {
			json_object_put(head);
			d->host->free(raw);
			return rc;
		}
		if (done)
			plen = 0; /* after DONE nobody takes bytes: leave them to the next exchange
			           */
		d->off += plen;
		if (plen) {
			const char *reply = NULL;
			size_t reply_len = 0;
			int act = ex->on_data(ex->ctx, payload, plen, &reply, &reply_len);

			if (act < 0) {
				json_object_put(head);
				d->host->free(raw);
				if (err && !err->code)
					d->host->error_set(
					        err, act,
					        "the exchange was aborted by its callback");
				return act;
			}
			if (reply && reply_len) {
				out = reply;
				out_len = reply_len;
				d->seq++;
			}
			done = act == RLM_EXCHANGE_DONE;
		}
		if (!plen && json_object_object_get_ex(head, "exited", &v) &&
		    !json_object_is_type(v, json_type_null)) {
			int status = json_object_get_int(v);

			json_object_put(head);
			d->host->free(raw);
			return driver_exited(d, status, err);
		}
		json_object_put(head);
		d->host->free(raw);
	}
}

/* ---- fallback: session input + log polling --------------------------------------------- */

static int session_logs(struct dt *d, const char *field, const struct dt_limit *lim,
                        char **stdout_text, size_t *len, int *exited, int *status, rlm_error *err)
{
	char *url = d->host->str_printf("%s/process/session/%s/command/%s", d->toolbox,
	                                d->session_id, d->cmd_id);
	json_object *doc = NULL, *v;
	int rc = url ? dt_json_call(d, "GET", url, NULL, 30, lim, "session command", &doc, err)
	             : dt_nomem(d, err);

	d->host->free(url);
	*exited = 0;
	if (rc == 0 && json_object_object_get_ex(doc, "exitCode", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		*exited = 1;
		*status = json_object_get_int(v);
	}
	json_object_put(doc);
	doc = NULL;
	if (rc)
		return rc;
	url = d->host->str_printf("%s/process/session/%s/command/%s/logs", d->toolbox,
	                          d->session_id, d->cmd_id);
	{
		struct dt_req rq = {.method = "GET",
		                    .url = url,
		                    .timeout_s = 30,
		                    .max_retries = -1,
		                    .limit = lim};
		rlm_http_response resp;

		rc = url ? dt_send(d, &rq, &resp, err) : dt_nomem(d, err);
		d->host->free(url);
		if (!url)
			return rc;
		if (rc == 0)
			rc = dt_check(d, &resp, "session logs", err);
		/* JSON {output, stdout, stderr} for SDK >= 0.167, text/plain otherwise (3.4). */
		if (rc == 0 && (doc = json_tokener_parse(resp.body.data ? resp.body.data : "")) &&
		    json_object_object_get_ex(doc, field, &v)) {
			*len = (size_t)json_object_get_string_len(v);
			*stdout_text = d->host->str_dup(json_object_get_string(v));
		} else if (rc == 0) {
			*len = resp.body.len;
			*stdout_text = d->host->str_dup(resp.body.data ? resp.body.data : "");
		}
		if (rc == 0 && !*stdout_text)
			rc = dt_nomem(d, err);
		json_object_put(doc);
		d->host->http_response_free(&resp);
	}
	return rc;
}

static int session_input(struct dt *d, const char *data, size_t len, const struct dt_limit *lim,
                         rlm_error *err)
{
	char *url = d->host->str_printf("%s/process/session/%s/command/%s/input", d->toolbox,
	                                d->session_id, d->cmd_id);
	json_object *body = json_object_new_object();
	int rc;

	json_object_object_add(body, "data", json_object_new_string_len(data, (int)len));
	rc = url ? dt_json_call(d, "POST", url, body, 60, lim, "session input", NULL, err)
	         : dt_nomem(d, err);
	d->host->free(url);
	json_object_put(body);
	return rc;
}

static int session_exchange(struct dt *d, const rlm_exchange *ex, rlm_error *err)
{
	const struct dt_limit lim = exchange_limit(ex);
	double delay = 0.02;
	int rc;

	if (!d->cmd_id)
		return d->host->error_set(err, RLM_EBACKEND, "the driver is not running");
	if (ex->request_len && (rc = session_input(d, ex->request, ex->request_len, &lim, err)))
		return step_failed(d, rc, err);
	for (;;) {
		char *text = NULL;
		size_t len = 0;
		int exited = 0, status = 0;

		if ((rc = exchange_check(d, ex, &lim, err)))
			return rc;
		if ((rc = session_logs(d, "stdout", &lim, &text, &len, &exited, &status, err)))
			return step_failed(d, rc, err);
		if (len > d->off) {
			const char *reply = NULL;
			size_t reply_len = 0;
			int act = ex->on_data(ex->ctx, text + d->off, len - (size_t)d->off, &reply,
			                      &reply_len);

			d->off = len;
			d->host->free(text);
			if (act < 0)
				return act;
			if (reply && reply_len &&
			    (rc = session_input(d, reply, reply_len, &lim, err)))
				return step_failed(d, rc, err);
			if (act == RLM_EXCHANGE_DONE)
				return 0;
			delay = 0.02;
			continue;
		}
		d->host->free(text);
		if (exited)
			return driver_exited(d, status, err);
		if (d->host->now() + delay > ex->deadline)
			return d->host->error_set(err, RLM_ETIMEOUT,
			                          "daytona: the exchange passed its deadline");
		dt_sleep(d, &lim, delay);
		delay = delay * 1.5 > 0.5 ? 0.5 : delay * 1.5;
	}
}

int dt_driver_exchange(struct dt *d, const rlm_exchange *ex, rlm_error *err)
{
	/* The session fallback reads one log stream in order: an exchange nested inside another
	 * (a child RLM's cell while the parent waits in rlm_query) would consume the parent's
	 * bytes. Refuse it at once rather than let both time out. */
	if (d->session_mode && d->exchanges > 0)
		return d->host->error_set(err, RLM_ENOTSUP,
		                          "daytona: nested exchanges (child RLMs) need the relay "
		                          "transport; the session fallback cannot carry them");
	d->exchanges++;
	int rc = d->session_mode ? session_exchange(d, ex, err) : relay_exchange(d, ex, err);
	d->exchanges--;
	return rc;
}

/* ---- interrupt, stop ------------------------------------------------------------------- */

int dt_driver_interrupt(struct dt *d, rlm_error *err)
{
	const struct dt_limit lim = {d->host->now() + INTERRUPT_S, NULL};
	json_object *head = NULL;
	const char *payload;
	size_t plen;
	char *raw = NULL, *cmd, *res = NULL;
	size_t len;
	int rc, code;

	if (!d->toolbox)
		return d->host->error_set(err, RLM_EBACKEND, "interrupt: no sandbox");
	if (d->session_mode) {
		/* The driver is the session command: signal it by its command line. */
		cmd = d->host->str_printf("pkill -INT -f '^%s " DT_RLM_DIR "/driver.py'",
		                          d->cfg.python);
		rc = cmd ? dt_exec(d, cmd, INTERRUPT_S, &lim, &res, &len, &code, err)
		         : dt_nomem(d, err);
		d->host->free(cmd);
		d->host->free(res);
		return rc;
	}
	rc = relay_call(d, "interrupt", NULL, 0, 1, &lim, &head, &payload, &plen, &raw, err);
	if (rc == 0)
		rc = relay_problem(d, head, &lim, err);
	json_object_put(head);
	d->host->free(raw);
	return rc;
}

void dt_driver_stop(struct dt *d, const struct dt_limit *lim)
{
	rlm_error err = RLM_ERROR_INIT;
	char *url;

	if (!d->toolbox || !d->session_id[0])
		return;
	/* Deleting the session kills the daemon and the driver with it. */
	url = d->host->str_printf("%s/process/session/%s", d->toolbox, d->session_id);
	if (url)
		dt_json_call(d, "DELETE", url, NULL, 15, lim, "session delete", NULL, &err);
	d->host->free(url);
	d->session_id[0] = '\0';
	d->host->free(d->cmd_id);
	d->cmd_id = NULL;
}
