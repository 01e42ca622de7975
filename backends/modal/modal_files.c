/* modal_files.c - moving files into and out of a Modal sandbox, binary safe (reference 4.3,
 * 4.4, 3.6), three ways:
 *
 *  - fs-tools, what the SDKs do now: exec /__modal/.bin/modal-sandbox-fs-tools with
 *    {"WriteFile":{"path":...}} (the bytes on stdin) or {"ReadFile":{"path":...}} (the bytes on
 *    stdout); on failure stderr holds {"error_kind": ..., "message": ...}.
 *  - legacy: the control plane's ContainerFilesystemExec (open, write/read, close), each step
 *    drained through ContainerFilesystemExecGetOutput. Deprecated by the SDKs and refused for
 *    V2 sandboxes, so only tried for V1 ids ("sb-...").
 *  - shell: exec sh -c 'cat > "$1"' / cat, through the same exec RPCs; any image with a shell.
 *
 * Writes stream the bytes to the helper's stdin as the SDKs do (TaskExecStdinWriteStream,
 * 256 KiB messages, resumed after a broken stream). Everything runs within the caller's
 * bounds, and each helper exec within execute_timeout_s.
 *
 * With file_transfer = auto the first way that is available is kept for the sandbox. The
 * helper binary is injected by Modal, but that every image and worker version has it is
 * UNVERIFIED (reference 9): "unavailable" is a start refused with NOT_FOUND, INVALID_ARGUMENT,
 * FAILED_PRECONDITION or UNIMPLEMENTED, or an exit of 126/127 with no JSON error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_internal.h"

#define FS_TOOLS_BIN   "/__modal/.bin/modal-sandbox-fs-tools"
#define LEGACY_CHUNK   (16u << 20) /* the Python SDK's write chunk */
#define FS_UNAVAILABLE 1           /* internal: this way is not offered; try the next */

static const char *const mode_names[] = {"auto", "fs-tools", "legacy", "shell"};

const char *fs_mode_name(int mode)
{
	return mode >= 0 && mode <= FS_SHELL ? mode_names[mode] : "?";
}

int fs_mode_of(const char *name)
{
	for (int i = 0; i <= FS_SHELL; i++)
		if (strcmp(name, mode_names[i]) == 0)
			return i;
	return -1;
}

/* path made absolute against the work dir (fs-tools wants absolute paths). */
static char *abs_path(struct modal *m, const char *path)
{
	size_t n = strlen(m->workdir) + strlen(path) + 2;
	char *p = m->host->alloc(n);

	if (!p)
		return NULL;
	if (path[0] == '/')
		snprintf(p, n, "%s", path);
	else
		snprintf(p, n, "%s/%s", m->workdir, path);
	return p;
}

static int unavailable_start(int rc)
{
	return rc == RLM_ENOTFOUND || rc == RLM_EINVAL || rc == RLM_ENOTSUP || rc == RLM_EBACKEND;
}

/* ---- fs-tools -------------------------------------------------------------------------- */

/* The error an fs-tools run reports: its JSON on stderr, mapped onto rlm's codes. */
static int fs_tools_error(struct modal *m, const char *op, const char *path, const mx_result *r,
                          rlm_error *err)
{
	json_object *doc = json_tokener_parse(r->err.data), *v;
	const char *kind = "", *msg = r->err.data;
	int code = RLM_EIO, rc;

	if (doc && json_object_object_get_ex(doc, "error_kind", &v))
		kind = json_object_get_string(v);
	if (doc && json_object_object_get_ex(doc, "message", &v))
		msg = json_object_get_string(v);
	if (strcmp(kind, "NotFound") == 0 || strcmp(kind, "NotDirectory") == 0)
		code = RLM_ENOTFOUND;
	else if (strcmp(kind, "FileTooLarge") == 0)
		code = RLM_EQUOTA;
	else if (strcmp(kind, "NotSupported") == 0)
		code = RLM_ENOTSUP;
	rc = m->host->error_set(err, code, "modal: %s %s failed (exit %d)%s%s%s%s", op, path,
	                        r->exited ? r->code : 128 + r->signal, *kind ? ": " : "", kind,
	                        msg && *msg ? ": " : "", msg ? msg : "");
	json_object_put(doc);
	return rc;
}

static int fs_tools(struct modal *m, const mg_bounds *b, const char *op, const char *path,
                    const void *in, size_t in_len, rlm_buf *out, rlm_error *err)
{
	json_object *doc = json_object_new_object(), *args = json_object_new_object();
	char *argv[2] = {FS_TOOLS_BIN, NULL};
	mx_spec spec = {
	        argv, 2,    MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE,
	        NULL, NULL, 0};
	mx_result r;
	int rc;

	json_object_object_add(args, "path", json_object_new_string(path));
	json_object_object_add(doc, op, args);
	argv[1] = (char *)json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
	rc = mx_run(m, b, &spec, in, in_len, 1, &r, err);
	json_object_put(doc);
	if (rc)
		return unavailable_start(rc) ? FS_UNAVAILABLE : rc;
	if (r.timed_out) {
		rc = m->host->error_set(err, RLM_ETIMEOUT, "modal: %s %s did not finish in time",
		                        op, path);
	} else if (r.exited && r.code == 0) {
		if (out) {
			*out = r.out;
			r.out.data = NULL;
		}
		rc = 0;
	} else if (r.exited && (r.code == 126 || r.code == 127) && r.err.data[0] != '{') {
		rc = FS_UNAVAILABLE;
	} else {
		rc = fs_tools_error(m, op, path, &r, err);
	}
	mx_result_free(m, &r);
	return rc;
}

/* ---- the legacy file API --------------------------------------------------------------- */

struct fs_drain {
	struct modal *m;
	rlm_buf *out; /* NULL: output is not wanted */
	size_t cap;
	int eof;
	int errno_code;
	char error[256];
	int nomem;
};

static int on_fs_batch(void *ctx, const ProtobufCMessage *msg)
{
	struct fs_drain *d = ctx;
	const Modal__Client__FilesystemRuntimeOutputBatch *b = (const void *)msg;

	for (size_t i = 0; d->out && i < b->n_output; i++) {
		size_t n = b->output[i].len;
		if (d->out->len + n + 1 > d->cap) {
			size_t cap = d->cap ? d->cap : 65536;
			char *nd;
			while (cap < d->out->len + n + 1)
				cap *= 2;
			if (!(nd = d->m->host->realloc(d->out->data, cap))) {
				d->nomem = 1;
				return 1;
			}
			d->out->data = nd;
			d->cap = cap;
		}
		memcpy(d->out->data + d->out->len, b->output[i].data, n);
		d->out->len += n;
		d->out->data[d->out->len] = 0;
	}
	if (b->error) {
		d->errno_code = (int)b->error->error_code;
		snprintf(d->error, sizeof(d->error), "%s",
		         b->error->error_message ? b->error->error_message : "");
	}
	if (b->eof) {
		d->eof = 1;
		return 1;
	}
	return 0;
}

/* One ContainerFilesystemExec step, drained to its eof. *fd gets the descriptor of an open.
 * FS_UNAVAILABLE when the server does not offer the API. */
static int legacy_step(struct modal *m, const mg_bounds *b,
                       Modal__Client__ContainerFilesystemExecRequest *req, const char *what,
                       const char *path, char **fd, rlm_buf *out, rlm_error *err)
{
	Modal__Client__ContainerFilesystemExecResponse *resp = NULL;
	struct fs_drain d = {m, out, 0, 0, 0, "", 0};
	int rc;

	req->task_id = m->task_id;
	if ((rc = cp_call(m, b, CP_PATH("ContainerFilesystemExec"), &req->base,
	                  &modal__client__container_filesystem_exec_response__descriptor, &resp,
	                  err)))
		return rc == RLM_ENOTSUP || rc == RLM_EBACKEND ? FS_UNAVAILABLE : rc;
	if (fd && !(*fd = m->host->str_dup(resp->file_descriptor ? resp->file_descriptor : ""))) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return nomem(m, err);
	}
	/* Like the SDKs: long-poll for 55 s at a time; a stream that ends without eof is asked
	 * again, 10 times at most on errors. */
	for (int tries = 0; !d.eof;) {
		Modal__Client__ContainerFilesystemExecGetOutputRequest g =
		        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_GET_OUTPUT_REQUEST__INIT;
		mg_status st;
		mg_bounds one = mb_within(m, b, 60); /* the SDKs' 55 s long poll, and some */
		g.exec_id = resp->exec_id;
		g.timeout = 55;
		mg_stream(m->cp, CP_PATH("ContainerFilesystemExecGetOutput"), &g.base, NULL,
		          &modal__client__filesystem_runtime_output_batch__descriptor, &one,
		          on_fs_batch, &d, &st);
		if (d.nomem) {
			rc = nomem(m, err);
			break;
		}
		if (d.eof)
			break;
		if (st.code == MG_CALLER_CANCELLED) {
			rc = rpc_error(m, "ContainerFilesystemExecGetOutput", &st, err);
			break;
		}
		if (m->host->now() >= b->deadline) {
			rc = m->host->error_set(err, RLM_ETIMEOUT, "modal: %s %s timed out", what,
			                        path);
			break;
		}
		if (st.code != MG_OK && (!mg_retryable(st.code) || ++tries > 10)) {
			rc = rpc_error(m, "ContainerFilesystemExecGetOutput", &st, err);
			break;
		}
		if (st.code != MG_OK && (rc = mb_sleep(m, b, 0.1, what, err)))
			break;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (!rc && d.errno_code)
		rc = m->host->error_set(err, d.errno_code == 2 ? RLM_ENOTFOUND : RLM_EIO,
		                        "modal: %s %s failed: errno %d: %s", what, path,
		                        d.errno_code, d.error);
	return rc;
}

static int legacy_close(struct modal *m, const mg_bounds *b, char *fd, const char *path,
                        rlm_error *err)
{
	Modal__Client__ContainerFilesystemExecRequest req =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__INIT;
	Modal__Client__ContainerFileCloseRequest close =
	        MODAL__CLIENT__CONTAINER_FILE_CLOSE_REQUEST__INIT;

	close.file_descriptor = fd;
	req.file_exec_request_oneof_case =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__FILE_EXEC_REQUEST_ONEOF_FILE_CLOSE_REQUEST;
	req.file_close_request = &close;
	return legacy_step(m, b, &req, "close", path, NULL, NULL, err);
}

static int legacy_open(struct modal *m, const mg_bounds *b, const char *path, const char *mode,
                       char **fd, rlm_error *err)
{
	Modal__Client__ContainerFilesystemExecRequest req =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__INIT;
	Modal__Client__ContainerFileOpenRequest open =
	        MODAL__CLIENT__CONTAINER_FILE_OPEN_REQUEST__INIT;

	open.path = (char *)path;
	open.mode = (char *)mode;
	req.file_exec_request_oneof_case =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__FILE_EXEC_REQUEST_ONEOF_FILE_OPEN_REQUEST;
	req.file_open_request = &open;
	return legacy_step(m, b, &req, "open", path, fd, NULL, err);
}

static int legacy_write(struct modal *m, const mg_bounds *b, const char *path, const void *data,
                        size_t len, rlm_error *err)
{
	char *fd = NULL;
	int rc, crc;

	if ((rc = legacy_open(m, b, path, "wb", &fd, err)))
		return rc;
	for (size_t pos = 0; pos < len && !rc;) {
		Modal__Client__ContainerFilesystemExecRequest req =
		        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__INIT;
		Modal__Client__ContainerFileWriteRequest w =
		        MODAL__CLIENT__CONTAINER_FILE_WRITE_REQUEST__INIT;
		size_t n = len - pos > LEGACY_CHUNK ? LEGACY_CHUNK : len - pos;
		w.file_descriptor = fd;
		w.data.data = (uint8_t *)data + pos;
		w.data.len = n;
		req.file_exec_request_oneof_case =
		        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__FILE_EXEC_REQUEST_ONEOF_FILE_WRITE_REQUEST;
		req.file_write_request = &w;
		rc = legacy_step(m, b, &req, "write", path, NULL, NULL, err);
		pos += n;
	}
	/* Closed whatever happened: the close flushes, so its error counts too. */
	crc = legacy_close(m, b, fd, path, rc ? &(rlm_error)RLM_ERROR_INIT : err);
	m->host->free(fd);
	return rc ? (rc == FS_UNAVAILABLE ? RLM_EBACKEND : rc) : (crc == FS_UNAVAILABLE ? 0 : crc);
}

static int legacy_read(struct modal *m, const mg_bounds *b, const char *path, rlm_buf *out,
                       rlm_error *err)
{
	Modal__Client__ContainerFilesystemExecRequest req =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__INIT;
	Modal__Client__ContainerFileReadRequest rd =
	        MODAL__CLIENT__CONTAINER_FILE_READ_REQUEST__INIT;
	char *fd = NULL;
	int rc;

	if ((rc = legacy_open(m, b, path, "rb", &fd, err)))
		return rc;
	rd.file_descriptor = fd; /* no n: the whole file */
	req.file_exec_request_oneof_case =
	        MODAL__CLIENT__CONTAINER_FILESYSTEM_EXEC_REQUEST__FILE_EXEC_REQUEST_ONEOF_FILE_READ_REQUEST;
	req.file_read_request = &rd;
	rc = legacy_step(m, b, &req, "read", path, NULL, out, err);
	legacy_close(m, b, fd, path, &(rlm_error)RLM_ERROR_INIT);
	m->host->free(fd);
	return rc == FS_UNAVAILABLE ? RLM_EBACKEND : rc;
}

/* ---- the shell ------------------------------------------------------------------------- */

static int shell(struct modal *m, const mg_bounds *b, int writing, const char *path, const void *in,
                 size_t in_len, rlm_buf *out, rlm_error *err)
{
	char *wargv[] = {"sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"", "sh",
	                 (char *)path};
	char *rargv[] = {"cat", "--", (char *)path};
	mx_spec spec = {writing ? wargv : rargv,
	                writing ? 5 : 3,
	                MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_PIPE,
	                NULL,
	                NULL,
	                0};
	mx_result r;
	int rc;

	if ((rc = mx_run(m, b, &spec, in, in_len, 1, &r, err)))
		return rc;
	if (r.timed_out)
		rc = m->host->error_set(err, RLM_ETIMEOUT, "modal: %s %s did not finish in time",
		                        writing ? "writing" : "reading", path);
	else if (!r.exited || r.code != 0)
		rc = m->host->error_set(
		        err, strstr(r.err.data, "No such file") ? RLM_ENOTFOUND : RLM_EIO,
		        "modal: %s %s failed (exit %d): %s", writing ? "writing" : "reading", path,
		        r.exited ? r.code : 128 + r.signal, r.err.data);
	else if (out) {
		*out = r.out;
		r.out.data = NULL;
	}
	mx_result_free(m, &r);
	return rc;
}

/* ---- the chain ------------------------------------------------------------------------- */

/* Runs the transfer the configured way, or (auto) the first available way, remembered; all of
 * it within execute_timeout_s and the caller's bounds. */
static int transfer(struct modal *m, const mg_bounds *outer, int writing, const char *path,
                    const void *data, size_t len, rlm_buf *out, rlm_error *err)
{
	mg_bounds bb = mb_within(m, outer, m->exec_timeout_s), *b = &bb;
	char *abs = abs_path(m, path);
	int first = m->fs_mode == FS_AUTO ? FS_TOOLS : m->fs_mode;
	int last = m->fs_mode == FS_AUTO ? FS_SHELL : m->fs_mode;
	int rc = FS_UNAVAILABLE;

	if (!abs)
		return nomem(m, err);
	for (int mode = first; mode <= last && rc == FS_UNAVAILABLE; mode++) {
		if (mode == FS_TOOLS)
			rc = fs_tools(m, b, writing ? "WriteFile" : "ReadFile", abs, data, len, out,
			              err);
		else if (mode == FS_LEGACY && m->fs_mode == FS_AUTO &&
		         strncmp(m->sandbox_id, "sb-", 3) != 0)
			rc = FS_UNAVAILABLE; /* V2 sandboxes refuse it */
		else if (mode == FS_LEGACY && writing) {
			/* open(wb) does not make parents: mkdir -p first (best effort) */
			char *argv[] = {"sh", "-c", "mkdir -p \"$(dirname \"$1\")\"", "sh", abs};
			mx_spec spec = {argv, 5, 0, NULL, NULL, 0};
			mx_result r;
			if (mx_run(m, b, &spec, NULL, 0, 1, &r, &(rlm_error)RLM_ERROR_INIT) == 0)
				mx_result_free(m, &r);
			rc = legacy_write(m, b, abs, data, len, err);
		} else if (mode == FS_LEGACY)
			rc = legacy_read(m, b, abs, out, err);
		else
			rc = shell(m, b, writing, abs, data, len, out, err);
		if (rc != FS_UNAVAILABLE && m->fs_mode == FS_AUTO) { /* it answered: keep it */
			m->fs_mode = mode;
			m->host->log(RLM_LOG_DEBUG, MODAL, "files move by %s", fs_mode_name(mode));
		}
	}
	if (rc == FS_UNAVAILABLE)
		rc = m->host->error_set(err, RLM_ENOTSUP,
		                        "modal: file transfer (%s) is not available in sandbox %s",
		                        fs_mode_name(m->fs_mode), m->sandbox_id);
	m->host->free(abs);
	return rc;
}

int modal_write_file(struct modal *m, const mg_bounds *b, const char *path, const void *data,
                     size_t len, rlm_error *err)
{
	return transfer(m, b, 1, path, data, len, NULL, err);
}

int modal_read_file(struct modal *m, const mg_bounds *b, const char *path, rlm_buf *out,
                    rlm_error *err)
{
	out->data = NULL;
	out->len = 0;
	return transfer(m, b, 0, path, NULL, 0, out, err);
}
