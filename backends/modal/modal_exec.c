/* modal_exec.c - execs through the task command router (reference 4.2): start, stdin by
 * offset (unary writes for the driver's channel, a resumable client stream for uploads, as the
 * SDKs), stdout/stderr read by offset and resumed after a dropped stream, wait; and on top of
 * them the backend's run_command and interrupt slots. Everything runs within the caller's
 * mg_bounds (modal_internal.h).
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

/* The Python SDK's largest unary stdin write (TASK_COMMAND_ROUTER_MAX_BUFFER_SIZE), and the
 * SDKs' chunk for streamed stdin and its resume budget (modal-client@69519aef,
 * py/modal/io_streams.py, go/task_command_router_client.go). */
#define STDIN_UNARY_MAX     (16u << 20)
#define STDIN_STREAM_CHUNK  (256u << 10)
#define STDIN_STREAM_RESUME 9

int mx_start(struct modal *m, const mg_bounds *b, const char *exec_id, const mx_spec *spec,
             rlm_error *err)
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
	rc = rt_call(m, b, RT_PATH("TaskExecStart"), &req.base,
	             &modal__client__task_exec_start_response__descriptor, &resp, err);
	if (!rc)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	m->host->free(entries);
	m->host->free(ptrs);
	m->host->free(env_copy);
	return rc;
}

int mx_stdin(struct modal *m, const mg_bounds *b, const char *exec_id, uint64_t offset,
             const void *data, size_t len, int eof, rlm_error *err)
{
	size_t pos = 0;
	int rc;

	do {
		Modal__Client__TaskExecStdinWriteRequest req =
		        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_REQUEST__INIT;
		Modal__Client__TaskExecStdinWriteResponse *resp = NULL;
		size_t n = len - pos > STDIN_UNARY_MAX ? STDIN_UNARY_MAX : len - pos;
		req.task_id = m->task_id;
		req.exec_id = (char *)exec_id;
		req.offset = offset + pos;
		req.data.data = (uint8_t *)data + pos;
		req.data.len = n;
		req.eof = eof && pos + n == len;
		if ((rc = rt_call(m, b, RT_PATH("TaskExecStdinWrite"), &req.base,
		                  &modal__client__task_exec_stdin_write_response__descriptor, &resp,
		                  err)))
			return rc;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		pos += n;
	} while (pos < len);
	return 0;
}

/* TaskExecStdinStatus: how many bytes the router took, and whether stdin is closed. */
static int stdin_status(struct modal *m, const mg_bounds *b, const char *exec_id, uint64_t *taken,
                        int *closed, rlm_error *err)
{
	Modal__Client__TaskExecStdinStatusRequest req =
	        MODAL__CLIENT__TASK_EXEC_STDIN_STATUS_REQUEST__INIT;
	Modal__Client__TaskExecStdinStatusResponse *resp = NULL;
	int rc;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	if ((rc = rt_call(m, b, RT_PATH("TaskExecStdinStatus"), &req.base,
	                  &modal__client__task_exec_stdin_status_response__descriptor, &resp, err)))
		return rc;
	*taken = resp->num_bytes_written;
	*closed = resp->closed;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* One TaskExecStdinWriteStream from offset: start, the data in 256 KiB messages, end. The
 * messages point into data; grpc.c packs them one at a time. 0 when the router took it all,
 * RLM_ENOMEM, or 1 with the failure in st. */
static int stdin_stream_once(struct modal *m, const mg_bounds *b, const char *exec_id,
                             const uint8_t *data, size_t len, uint64_t offset, mg_status *st)
{
	size_t n_data = (len - offset + STDIN_STREAM_CHUNK - 1) / STDIN_STREAM_CHUNK;
	size_t n = n_data + 2, i = 0;
	Modal__Client__TaskExecStdinWriteStreamRequest *msgs = m->host->alloc(n * sizeof(*msgs));
	const ProtobufCMessage **ptrs = m->host->alloc(n * sizeof(*ptrs));
	Modal__Client__TaskExecStdinWriteStreamStart start =
	        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_STREAM_START__INIT;
	Modal__Client__TaskExecStdinWriteStreamEnd end =
	        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_STREAM_END__INIT;
	Modal__Client__TaskExecStdinWriteStreamResponse *resp = NULL;
	unsigned gen;
	mg_channel *ch = router_get(m, &gen);

	if (!msgs || !ptrs) {
		m->host->free(msgs);
		m->host->free(ptrs);
		return RLM_ENOMEM;
	}
	start.task_id = m->task_id;
	start.exec_id = (char *)exec_id;
	start.offset = offset;
	for (i = 0; i < n; i++) {
		modal__client__task_exec_stdin_write_stream_request__init(&msgs[i]);
		ptrs[i] = &msgs[i].base;
	}
	msgs[0].payload_case = MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_STREAM_REQUEST__PAYLOAD_START;
	msgs[0].start = &start;
	for (i = 1; i <= n_data; i++) {
		size_t at = (size_t)offset + (i - 1) * STDIN_STREAM_CHUNK;
		msgs[i].payload_case =
		        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_STREAM_REQUEST__PAYLOAD_DATA;
		msgs[i].data.data = (uint8_t *)data + at;
		msgs[i].data.len = len - at > STDIN_STREAM_CHUNK ? STDIN_STREAM_CHUNK : len - at;
	}
	msgs[n - 1].payload_case = MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_STREAM_REQUEST__PAYLOAD_END;
	msgs[n - 1].end = &end;
	if (mg_client_stream(ch, RT_PATH("TaskExecStdinWriteStream"), ptrs, n, NULL,
	                     &modal__client__task_exec_stdin_write_stream_response__descriptor,
	                     (ProtobufCMessage **)&resp, b, st) == MG_OK)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	m->host->free(msgs);
	m->host->free(ptrs);
	return st->code == MG_OK ? 0 : 1;
}

int mx_stdin_stream(struct modal *m, const mg_bounds *b, const char *exec_id, const void *data,
                    size_t len, rlm_error *err)
{
	uint64_t offset = 0;
	int rc;

	for (int attempt = 0;; attempt++) {
		mg_status st;
		unsigned gen;
		int closed = 0;
		router_get(m, &gen);
		if ((rc = stdin_stream_once(m, b, exec_id, data, len, offset, &st)) <= 0)
			return rc ? nomem(m, err) : 0;
		if (st.code == MG_FAILED_PRECONDITION || st.code == MG_ABORTED) {
			m->host->log(RLM_LOG_DEBUG, MODAL, "exec %s stopped taking its input: %s",
			             exec_id, st.message);
			return MX_EXITED_EARLY;
		}
		/* Like the SDKs: resumable are the retryable codes and UNAUTHENTICATED (after a
		 * new JWT); anything else, a set flag or the deadline ends it. */
		if ((!mg_retryable(st.code) && st.code != MG_UNAUTHENTICATED) ||
		    attempt >= STDIN_STREAM_RESUME || m->host->now() >= b->deadline)
			return rpc_error(m, "TaskExecStdinWriteStream", &st, err);
		if (st.code == MG_UNAUTHENTICATED && (rc = router_refresh(m, b, gen, err)))
			return rc;
		if ((rc = stdin_status(m, b, exec_id, &offset, &closed, err)))
			return rc;
		if (closed && offset == len) { /* it all arrived; only the answer was lost */
			m->host->log(RLM_LOG_DEBUG, MODAL,
			             "stdin stream: complete, answer lost (%d)", st.code);
			return 0;
		}
		if (closed || offset > len)
			return m->host->error_set(err, RLM_EBACKEND,
			                          "modal: stdin stream broke (%s) and the router "
			                          "reports %llu of %zu bytes%s",
			                          st.message, (unsigned long long)offset, len,
			                          closed ? " with stdin closed" : "");
		m->host->log(RLM_LOG_DEBUG, MODAL, "stdin stream: status %d; resuming at %llu",
		             st.code, (unsigned long long)offset);
	}
}

int mx_wait(struct modal *m, const mg_bounds *b, const char *exec_id, int *exited, int *code,
            int *sig)
{
	Modal__Client__TaskExecWaitRequest req = MODAL__CLIENT__TASK_EXEC_WAIT_REQUEST__INIT;
	Modal__Client__TaskExecWaitResponse *resp = NULL;
	rlm_error ignored = RLM_ERROR_INIT;
	int refreshed = 0, rc = -1;
	mg_status st;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	/* TaskExecWait blocks server-side, 60 s per call like the SDKs; retryable failures are
	 * retried while b holds. */
	for (;;) {
		unsigned gen;
		mg_channel *ch = router_get(m, &gen);
		mg_bounds one = mb_within(m, b, 60);
		if (mb_check(m, b, "TaskExecWait", &ignored))
			return -1;
		if (mg_unary(ch, RT_PATH("TaskExecWait"), &req.base, NULL,
		             &modal__client__task_exec_wait_response__descriptor,
		             (ProtobufCMessage **)&resp, &one, &st) == MG_OK)
			break;
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if (router_refresh(m, b, gen, &ignored))
				return -1;
			continue;
		}
		if (!mg_retryable(st.code))
			return -1;
		if (st.code != MG_DEADLINE_EXCEEDED &&
		    mb_sleep(m, b, st.code == MG_UNAVAILABLE ? 0.05 : 1, "TaskExecWait", &ignored))
			return -1;
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

int mx_read(struct modal *m, const mg_bounds *b, const char *exec_id, int fd, uint64_t *offset,
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
		          &modal__client__task_exec_stdio_read_response__descriptor, b, on_stdio,
		          &r, &st);
		if (st.code == MG_STOPPED && r.restart)
			continue;
		if (st.code == MG_STOPPED)
			return r.stop_rc; /* > 0: the sink is done; < 0: its error */
		if (st.code == MG_OK)
			return 0;
		if (st.code == MG_CALLER_CANCELLED)
			return rpc_error(m, "TaskExecStdioRead", &st, err);
		if (m->host->now() >= b->deadline)
			return m->host->error_set(err, RLM_ETIMEOUT, "modal: exec deadline passed");
		if (r.progressed) {
			retries = 0;
			delay = 0.01;
		}
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if ((rc = router_refresh(m, b, gen, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || retries++ >= 10)
			return rpc_error(m, "TaskExecStdioRead", &st, err);
		m->host->log(RLM_LOG_DEBUG, MODAL,
		             "fd %d stream ended with %d at offset %llu; resuming", fd, st.code,
		             (unsigned long long)*offset);
		if ((rc = mb_sleep(m, b, delay, "TaskExecStdioRead", err)))
			return rc == RLM_ETIMEOUT
			               ? m->host->error_set(err, RLM_ETIMEOUT,
			                                    "modal: exec deadline passed")
			               : rc;
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
	const mg_bounds *b;
	const char *exec_id;
	struct collect c;
	uint64_t off;
	int rc;
	rlm_error err;
};

static void *read_stderr(void *arg)
{
	struct err_reader *r = arg;

	r->rc = mx_read(r->m, r->b, r->exec_id, 1, &r->off, collect_sink, &r->c, &r->err);
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

/* The exec's input: a stream when there are bytes (as the SDKs upload), else a bare EOF. A
 * process that stopped taking it early is no error here: its exit status and stderr say what
 * happened. */
static int send_input(struct modal *m, const mg_bounds *b, const char *exec_id, const void *in,
                      size_t in_len, rlm_error *err)
{
	int rc;

	if (!in_len)
		return mx_stdin(m, b, exec_id, 0, "", 0, 1, err);
	rc = mx_stdin_stream(m, b, exec_id, in, in_len, err);
	return rc == MX_EXITED_EARLY ? 0 : rc;
}

int mx_run(struct modal *m, const mg_bounds *b, const mx_spec *spec, const void *in, size_t in_len,
           int has_input, mx_result *res, rlm_error *err)
{
	char exec_id[40];
	uint64_t off = 0;
	struct collect out = {m, &res->out, 0};
	struct err_reader er;
	pthread_t thread;
	int rc, have_thread = 0, waited;

	memset(res, 0, sizeof(*res));
	memset(&er, 0, sizeof(er));
	new_uuid(exec_id);
	if ((rc = mx_start(m, b, exec_id, spec, err)))
		return rc;
	if (has_input && (rc = send_input(m, b, exec_id, in, in_len, err)))
		return rc;
	if (spec->stderr_cfg ==
	    MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE) {
		er.m = m;
		er.b = b;
		er.exec_id = exec_id;
		er.c.m = m;
		er.c.buf = &res->err;
		er.err = (rlm_error)RLM_ERROR_INIT;
		if (pthread_create(&thread, NULL, read_stderr, &er) != 0)
			return m->host->error_set(err, RLM_ENOMEM, "modal: cannot start a thread");
		have_thread = 1;
	}
	rc = mx_read(m, b, exec_id, 0, &off, collect_sink, &out, err);
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
	/* Output is complete: the exec has ended or is about to; or its time is up. Either way
	 * the status is waited for a little (5 s) past the deadline, no longer. */
	mg_bounds wb = *b;
	wb.deadline = (res->timed_out ? m->host->now() : b->deadline) + 5;
	waited = mx_wait(m, &wb, exec_id, &res->exited, &res->code, &res->signal);
	if (b->cancel && *b->cancel) {
		mx_result_free(m, res);
		return m->host->error_set(err, RLM_ECANCELLED, "modal: %s: cancelled",
		                          spec->argv[0]);
	}
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
	mg_bounds b;
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
	/* The server kills the command at its timeout; the client waits a little longer. Without
	 * one the command gets execute_timeout_s. */
	if (cmd->timeout_s > 0)
		spec.timeout_secs = (uint32_t)(cmd->timeout_s + 0.999);
	b = mb_budget(m, cmd->timeout_s > 0 ? cmd->timeout_s + 5 : m->exec_timeout_s,
	              RLM_HAS_FIELD(cmd, cancel) ? cmd->cancel : NULL);
	rc = mx_run(m, &b, &spec, "", 0, 1, &r, err);
	if (rc)
		return rc;
	res->exit_code = r.exited ? r.code : -r.signal;
	res->timed_out = r.timed_out || (cmd->timeout_s > 0 && !r.exited && r.signal == 9);
	res->out = r.out;
	res->err = r.err;
	return 0;
}

/* The interrupt's own budget: a tiny exec, normally done in well under a second. */
#define INTERRUPT_BUDGET_S 10

int modal_interrupt(void *instance, rlm_error *err)
{
	struct modal *m = instance;
	char *argv[] = {"sh", "-c", "kill -INT \"$(cat .rlm/driver.pid)\""};
	mx_spec spec = {
	        argv, 3,    MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE,
	        NULL, NULL, 0};
	mg_bounds b = mb_budget(m, INTERRUPT_BUDGET_S, NULL);
	mx_result r;
	int rc;

	/* life_mu: the sandbox cannot be replaced (its ids freed) while this runs. */
	if ((rc = mb_lock(m, &m->life_mu, &b, "interrupt", err)))
		return rc;
	if (!m->task_id || !m->driver_running)
		rc = m->host->error_set(err, RLM_EBACKEND, "modal: interrupt: no driver running");
	else
		rc = mx_run(m, &b, &spec, NULL, 0, 0, &r, err);
	pthread_mutex_unlock(&m->life_mu);
	if (rc)
		return rc;
	if (r.timed_out)
		rc = m->host->error_set(err, RLM_ETIMEOUT,
		                        "modal: interrupt: no answer within %d s",
		                        INTERRUPT_BUDGET_S);
	else if (!r.exited || r.code != 0)
		rc = m->host->error_set(err, RLM_EBACKEND,
		                        "modal: interrupt failed (status %d): %s", r.code,
		                        r.err.data);
	mx_result_free(m, &r);
	return rc;
}
