/* modal_exec.c - execs through the task command router (reference 4.2): start, stdin by
 * offset, stdout/stderr read by offset and resumed after a dropped stream, wait; and on top
 * of them the backend's run_command and interrupt slots.
 *
 * Any thread may run these (interrupt comes from another thread while the main one reads the
 * driver's output): every call fetches the router channel through router_get(), and a JWT
 * refresh after UNAUTHENTICATED is done once however many threads saw it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_internal.h"

/* ---- the router RPCs ------------------------------------------------------------------- */

int mx_start(struct modal *m, const char *exec_id, const mx_spec *spec, rlm_error *err)
{
	Modal__Client__TaskExecStartRequest req = MODAL__CLIENT__TASK_EXEC_START_REQUEST__INIT;
	Modal__Client__TaskExecStartResponse *resp = NULL;
	Modal__Client__TaskExecStartRequest__EnvEntry *entries = NULL, **ptrs = NULL;
	size_t n_env = 0, bytes = 0;
	char *env_copy = NULL;
	int rc;

	/* The SDKs refuse more than 64 KiB of arguments (ARG_MAX); so does this. */
	for (size_t i = 0; i < spec->argc; i++)
		bytes += strlen(spec->argv[i]) + 1;
	if (bytes > 65536)
		return m->host->error_set(err, RLM_EINVAL,
		                          "modal: command arguments are %zu bytes (at most 65536)",
		                          bytes);
	for (const char *const *e = spec->env; e && *e; e++)
		n_env++;
	if (n_env) {
		size_t total = 0;
		for (size_t i = 0; i < n_env; i++)
			total += strlen(spec->env[i]) + 1;
		entries = m->host->alloc(n_env * sizeof(*entries));
		ptrs = m->host->alloc(n_env * sizeof(*ptrs));
		env_copy = m->host->alloc(total);
		if (!entries || !ptrs || !env_copy) {
			rc = nomem(m, err);
			goto out;
		}
		char *p = env_copy;
		for (size_t i = 0; i < n_env; i++) {
			char *eq;
			strcpy(p, spec->env[i]);
			modal__client__task_exec_start_request__env_entry__init(&entries[i]);
			if (!(eq = strchr(p, '='))) {
				rc = m->host->error_set(
				        err, RLM_EINVAL,
				        "modal: environment entry \"%s\" has no '='", p);
				goto out;
			}
			*eq = 0;
			entries[i].key = p;
			entries[i].value = eq + 1;
			ptrs[i] = &entries[i];
			p += strlen(spec->env[i]) + 1;
		}
		req.n_env = n_env;
		req.env = ptrs;
	}
	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	req.n_command_args = spec->argc;
	req.command_args = spec->argv;
	req.stdout_config = MODAL__CLIENT__TASK_EXEC_STDOUT_CONFIG__TASK_EXEC_STDOUT_CONFIG_PIPE;
	req.stderr_config = (Modal__Client__TaskExecStderrConfig)spec->stderr_cfg;
	req.workdir = (char *)(spec->workdir ? spec->workdir : m->workdir);
	req.timeout_secs = spec->timeout_secs; /* 0 is not sent: no timeout */
	rc = rt_call(m, RT_PATH("TaskExecStart"), &req.base,
	             &modal__client__task_exec_start_response__descriptor, &resp, 0, err);
	if (!rc)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	m->host->free(entries);
	m->host->free(ptrs);
	m->host->free(env_copy);
	return rc;
}

int mx_stdin(struct modal *m, const char *exec_id, uint64_t offset, const void *data, size_t len,
             int eof, rlm_error *err)
{
	Modal__Client__TaskExecStdinWriteRequest req =
	        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_REQUEST__INIT;
	Modal__Client__TaskExecStdinWriteResponse *resp = NULL;
	int rc;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	req.offset = offset;
	req.data.data = (uint8_t *)data;
	req.data.len = len;
	req.eof = eof;
	if ((rc = rt_call(m, RT_PATH("TaskExecStdinWrite"), &req.base,
	                  &modal__client__task_exec_stdin_write_response__descriptor, &resp, 0,
	                  err)))
		return rc;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

int mx_wait(struct modal *m, const char *exec_id, double wait_s, int *exited, int *code, int *sig)
{
	Modal__Client__TaskExecWaitRequest req = MODAL__CLIENT__TASK_EXEC_WAIT_REQUEST__INIT;
	Modal__Client__TaskExecWaitResponse *resp = NULL;
	double end = m->host->now() + wait_s;
	int refreshed = 0, rc = -1;
	mg_status st;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	/* TaskExecWait blocks server-side, 60 s per call like the SDKs; retryable failures are
	 * retried until wait_s has passed. */
	for (;;) {
		double left = end - m->host->now();
		unsigned gen;
		mg_channel *ch = router_get(m, &gen);
		if (left <= 0)
			return -1;
		if (mg_unary(ch, RT_PATH("TaskExecWait"), &req.base, NULL,
		             &modal__client__task_exec_wait_response__descriptor,
		             (ProtobufCMessage **)&resp, left < 60 ? left : 60, &st) == MG_OK)
			break;
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			rlm_error ignored = RLM_ERROR_INIT;
			refreshed = 1;
			if (router_refresh(m, gen, &ignored))
				return -1;
			continue;
		}
		if (!mg_retryable(st.code))
			return -1;
		if (st.code != MG_DEADLINE_EXCEEDED)
			sleep_s(st.code == MG_UNAVAILABLE ? 0.05 : 1);
	}
	if (resp->exit_status_case == MODAL__CLIENT__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_CODE) {
		*exited = 1;
		*code = resp->code;
		*sig = 0;
		rc = 0;
	} else if (resp->exit_status_case ==
	           MODAL__CLIENT__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_SIGNAL) {
		*exited = 0;
		*code = 128 + resp->signal;
		*sig = resp->signal;
		rc = 0;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* Reading an exec's output by offset. sink gets the bytes; a non-zero return stops. */
struct reader {
	struct modal *m;
	uint64_t *offset;
	int (*sink)(void *ctx, const uint8_t *data, size_t len);
	void *ctx;
	uint64_t pos; /* where this stream stands; differs from *offset after a nested read */
	int progressed;
	int restart;
	int stop_rc; /* what the sink asked for: >0 done, <0 an rlm error */
};

static int on_stdio(void *ctx, const ProtobufCMessage *msg)
{
	struct reader *r = ctx;
	const Modal__Client__TaskExecStdioReadResponse *resp = (const void *)msg;
	int rc;

	if (!resp->data.len)
		return 0;
	*r->offset += resp->data.len;
	r->pos += resp->data.len;
	r->progressed = 1;
	rc = r->sink(r->ctx, resp->data.data, resp->data.len);
	if (rc) {
		r->stop_rc = rc;
		return 1;
	}
	/* A nested exchange run by the sink read on from *offset with its own stream: what this
	 * stream would send next was consumed there, so reopen at *offset. */
	if (r->pos != *r->offset) {
		r->restart = 1;
		return 1;
	}
	return 0;
}

int mx_read(struct modal *m, const char *exec_id, int fd, uint64_t *offset, double deadline,
            int (*sink)(void *, const uint8_t *, size_t), void *ctx, rlm_error *err)
{
	struct reader r = {m, offset, sink, ctx, 0, 0, 0, 0};
	double delay = 0.01;
	int retries = 0, refreshed = 0, rc;

	for (;;) {
		Modal__Client__TaskExecStdioReadRequest req =
		        MODAL__CLIENT__TASK_EXEC_STDIO_READ_REQUEST__INIT;
		mg_status st;
		unsigned gen;
		mg_channel *ch = router_get(m, &gen);

		req.task_id = m->task_id;
		req.exec_id = (char *)exec_id;
		req.offset = *offset;
		req.file_descriptor = (Modal__Client__TaskExecStdioFileDescriptor)fd;
		r.progressed = 0;
		r.restart = 0;
		r.stop_rc = 0;
		r.pos = *offset;
		mg_stream(ch, RT_PATH("TaskExecStdioRead"), &req.base, NULL,
		          &modal__client__task_exec_stdio_read_response__descriptor, 0, deadline,
		          on_stdio, &r, &st);
		if (st.code == MG_STOPPED && r.restart)
			continue;
		if (st.code == MG_STOPPED)
			return r.stop_rc; /* > 0: the sink is done; < 0: its error */
		if (st.code == MG_OK)
			return 0;
		if (deadline > 0 && m->host->now() >= deadline)
			return m->host->error_set(err, RLM_ETIMEOUT, "modal: exec deadline passed");
		if (r.progressed) {
			retries = 0;
			delay = 0.01;
		}
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if ((rc = router_refresh(m, gen, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || retries++ >= 10)
			return rpc_error(m, "TaskExecStdioRead", &st, err);
		m->host->log(RLM_LOG_DEBUG, MODAL,
		             "fd %d stream ended with %d at offset %llu; resuming", fd, st.code,
		             (unsigned long long)*offset);
		sleep_s(delay);
		delay *= 2;
	}
}

/* ---- whole execs ----------------------------------------------------------------------- */

struct collect {
	struct modal *m;
	rlm_buf *buf;
	size_t cap;
};

static int collect_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct collect *c = ctx;
	rlm_buf *b = c->buf;

	if (b->len + len + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *nd;
		while (cap < b->len + len + 1)
			cap *= 2;
		if (!(nd = c->m->host->realloc(b->data, cap)))
			return RLM_ENOMEM;
		b->data = nd;
		c->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return 0;
}

/* The stderr reader of mx_run, on its own thread: an exec whose output is not drained may
 * block (reference 8), so both streams are read at once. */
struct err_reader {
	struct modal *m;
	const char *exec_id;
	double deadline;
	struct collect c;
	uint64_t off;
	int rc;
	rlm_error err;
};

static void *read_stderr(void *arg)
{
	struct err_reader *r = arg;

	r->rc = mx_read(r->m, r->exec_id, 1, &r->off, r->deadline, collect_sink, &r->c, &r->err);
	return NULL;
}

static int ensure_buf(struct modal *m, rlm_buf *b)
{
	if (!b->data && !(b->data = m->host->alloc(1)))
		return -1;
	b->data[b->len] = 0;
	return 0;
}

void mx_result_free(struct modal *m, mx_result *res)
{
	m->host->free(res->out.data);
	m->host->free(res->err.data);
	memset(res, 0, sizeof(*res));
}

int mx_run(struct modal *m, const mx_spec *spec, const void *in, size_t in_len, int has_input,
           double timeout_s, mx_result *res, rlm_error *err)
{
	char exec_id[40];
	uint64_t off = 0;
	double deadline = m->host->now() + (timeout_s > 0 ? timeout_s : m->exec_timeout_s);
	struct collect out = {m, &res->out, 0};
	struct err_reader er;
	pthread_t thread;
	int rc, have_thread = 0, waited;

	memset(res, 0, sizeof(*res));
	memset(&er, 0, sizeof(er));
	new_uuid(exec_id);
	if ((rc = mx_start(m, exec_id, spec, err)))
		return rc;
	for (size_t pos = 0; has_input;) {
		size_t n = in_len - pos > (16u << 20) ? (16u << 20) : in_len - pos;
		if ((rc = mx_stdin(m, exec_id, pos, (const char *)in + pos, n, pos + n == in_len,
		                   err)))
			return rc;
		pos += n;
		if (pos == in_len)
			break;
	}
	if (spec->stderr_cfg ==
	    MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE) {
		er.m = m;
		er.exec_id = exec_id;
		er.deadline = deadline;
		er.c.m = m;
		er.c.buf = &res->err;
		er.err = (rlm_error)RLM_ERROR_INIT;
		if (pthread_create(&thread, NULL, read_stderr, &er) != 0)
			return m->host->error_set(err, RLM_ENOMEM, "modal: cannot start a thread");
		have_thread = 1;
	}
	rc = mx_read(m, exec_id, 0, &off, deadline, collect_sink, &out, err);
	if (have_thread) {
		pthread_join(thread, NULL);
		if (!rc && er.rc && er.rc != RLM_ETIMEOUT) {
			rc = er.rc;
			*err = er.err;
		}
	}
	if (rc == RLM_ETIMEOUT) {
		res->timed_out = 1;
		rc = 0;
	}
	if (rc) {
		mx_result_free(m, res);
		return rc;
	}
	/* Output is complete: the exec has ended or is about to (or its time is up). */
	waited = mx_wait(m, exec_id, res->timed_out ? 5 : deadline - m->host->now() + 5,
	                 &res->exited, &res->code, &res->signal);
	if (waited < 0 && !res->timed_out) {
		mx_result_free(m, res);
		return m->host->error_set(err, RLM_EBACKEND, "modal: %s did not finish",
		                          spec->argv[0]);
	}
	if (waited < 0) { /* timed out and still running: reported as killed */
		res->exited = 0;
		res->signal = 9;
		res->code = 137;
	}
	if (ensure_buf(m, &res->out) || ensure_buf(m, &res->err)) {
		mx_result_free(m, res);
		return nomem(m, err);
	}
	return 0;
}

/* ---- the backend slots ----------------------------------------------------------------- */

int modal_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                      rlm_error *err)
{
	struct modal *m = instance;
	mx_spec spec;
	mx_result r;
	size_t argc = 0;
	int rc;

	if (!cmd || !cmd->argv || !cmd->argv[0] || !res)
		return m->host->error_set(err, RLM_EINVAL, "run_command: no argv");
	if (!m->task_id)
		return m->host->error_set(err, RLM_EBACKEND, "run_command: no sandbox");
	while (cmd->argv[argc])
		argc++;
	memset(&spec, 0, sizeof(spec));
	spec.argv = (char **)cmd->argv;
	spec.argc = argc;
	spec.stderr_cfg = MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE;
	spec.workdir = cmd->cwd;
	spec.env = cmd->env;
	/* The server kills the command at its timeout; the client waits a little longer. */
	if (cmd->timeout_s > 0)
		spec.timeout_secs = (uint32_t)(cmd->timeout_s + 0.999);
	rc = mx_run(m, &spec, "", 0, 1, cmd->timeout_s > 0 ? cmd->timeout_s + 5 : 0, &r, err);
	if (rc)
		return rc;
	res->exit_code = r.exited ? r.code : -r.signal;
	res->timed_out = r.timed_out || (cmd->timeout_s > 0 && !r.exited && r.signal == 9);
	res->out = r.out;
	res->err = r.err;
	return 0;
}

int modal_interrupt(void *instance, rlm_error *err)
{
	struct modal *m = instance;
	char *argv[] = {"sh", "-c", "kill -INT \"$(cat .rlm/driver.pid)\""};
	mx_spec spec = {
	        argv, 3,    MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE,
	        NULL, NULL, 0};
	mx_result r;
	int rc;

	/* life_mu: the sandbox cannot be replaced (its ids freed) while this runs. */
	pthread_mutex_lock(&m->life_mu);
	if (!m->task_id || !m->driver_running)
		rc = m->host->error_set(err, RLM_EBACKEND, "modal: interrupt: no driver running");
	else
		rc = mx_run(m, &spec, NULL, 0, 0, 15, &r, err);
	pthread_mutex_unlock(&m->life_mu);
	if (rc)
		return rc;
	if (!r.exited || r.code != 0)
		rc = m->host->error_set(err, RLM_EBACKEND,
		                        "modal: interrupt failed (status %d): %s", r.code,
		                        r.err.data);
	mx_result_free(m, &r);
	return rc;
}
