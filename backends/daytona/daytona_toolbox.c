/* daytona_toolbox.c - the sandbox's toolbox API: process/execute, files (bulk-upload as a
 * streamed multipart body, download, list) and git clone. Reference sections 3 and 5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daytona_internal.h"

char *dt_base64(const struct dt *d, const void *data, size_t len, size_t *out_len)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t n = (len + 2) / 3 * 4;
	char *out = d->host->alloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
		             (i + 2 < len ? p[i + 2] : 0);

		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*o = '\0';
	if (out_len)
		*out_len = n;
	return out;
}

char *dt_shell_quote(const struct dt *d, const char *text)
{
	size_t n = 3;
	char *out, *o;

	for (const char *p = text; *p; p++)
		n += *p == '\'' ? 4 : 1;
	if (!(out = d->host->alloc(n)))
		return NULL;
	o = out;
	*o++ = '\'';
	for (const char *p = text; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* A toolbox call answered "sandbox stopped or unknown": say so with its own code, so the
 * caller can replace the sandbox. */
static int toolbox_check(struct dt *d, const rlm_http_response *resp, const char *what,
                         rlm_error *err)
{
	int rc = dt_check(d, resp, what, err);

	if (rc && dt_sandbox_lost_answer(resp))
		rc = d->host->error_set_http(err, RLM_ESTATE_LOST, resp->status, resp->request_id,
		                             "daytona: %s: sandbox %s is stopped or gone: %.300s",
		                             what, d->sandbox_id,
		                             resp->body.data ? resp->body.data : "");
	return rc;
}

int dt_exec(struct dt *d, const char *command, double timeout_s, const struct dt_limit *lim,
            char **result, size_t *len, int *exit_code, rlm_error *err)
{
	char *url = d->host->str_printf("%s/process/execute", d->toolbox);
	json_object *body = json_object_new_object(), *v;
	const char *text;
	rlm_http_response resp;
	struct dt_req rq;
	int rc;

	*result = NULL;
	*len = 0;
	json_object_object_add(body, "command", json_object_new_string(command));
	if (timeout_s > 0)
		json_object_object_add(body, "timeout",
		                       json_object_new_int64((int64_t)(timeout_s + 0.999)));
	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.body = text;
	rq.body_len = strlen(text);
	/* The HTTP timeout outlives the command's own (reference 3.3: timeout + 5 s). */
	rq.timeout_s = timeout_s > 0 ? timeout_s + 15 : d->cfg.execute_timeout_s;
	rq.max_retries = -1;
	rq.limit = lim;
	rc = url ? dt_send(d, &rq, &resp, err) : dt_nomem(d, err);
	json_object_put(body);
	d->host->free(url);
	if (!url)
		return rc;
	if (rc == 0)
		rc = toolbox_check(d, &resp, "process/execute", err);
	if (rc == 0) {
		json_object *doc = json_tokener_parse(resp.body.data ? resp.body.data : "");

		/* exitCode since 2025-11; `code` before (reference 3.2): accept both. */
		if (doc && (json_object_object_get_ex(doc, "exitCode", &v) ||
		            json_object_object_get_ex(doc, "code", &v)))
			*exit_code = json_object_get_int(v);
		else
			rc = d->host->error_set(err, RLM_EPROTO,
			                        "daytona: process/execute: no exitCode "
			                        "in the answer");
		if (rc == 0 && json_object_object_get_ex(doc, "result", &v)) {
			*len = (size_t)json_object_get_string_len(v);
			if ((*result = d->host->alloc(*len + 1)))
				memcpy(*result, json_object_get_string(v), *len + 1);
			else
				rc = dt_nomem(d, err);
		} else if (rc == 0 && (*result = d->host->alloc(1))) {
			(*result)[0] = '\0';
		}
		json_object_put(doc);
	}
	d->host->http_response_free(&resp);
	return rc;
}

/* ---- upload: the body is preamble, the caller's bytes, epilogue, read in place --------- */

struct multipart {
	const char *seg[2 * 8 + 1];
	size_t len[2 * 8 + 1];
	size_t nseg, cur, off;
};

static size_t mp_read(void *ctx, char *buf, size_t max)
{
	struct multipart *m = ctx;
	size_t got = 0;

	while (got < max && m->cur < m->nseg) {
		size_t n = m->len[m->cur] - m->off;

		if (n > max - got)
			n = max - got;
		memcpy(buf + got, m->seg[m->cur] + m->off, n);
		got += n;
		m->off += n;
		if (m->off == m->len[m->cur]) {
			m->cur++;
			m->off = 0;
		}
	}
	return got;
}

static int mp_rewind(void *ctx)
{
	struct multipart *m = ctx;

	m->cur = m->off = 0;
	return 0;
}

#define DT_BOUNDARY "rlm-daytona-7f3c9a1e5b"

int dt_upload_many(struct dt *d, const char *const *paths, const void *const *data,
                   const size_t *lens, size_t n, const struct dt_limit *lim, rlm_error *err)
{
	struct multipart m;
	char *heads[8] = {0};
	static const char tail[] = "\r\n--" DT_BOUNDARY "--\r\n";
	size_t total = 0;
	char *url = NULL;
	rlm_http_response resp;
	struct dt_req rq;
	int rc = 0;

	if (n == 0 || n > 8)
		return d->host->error_set(err, RLM_EINVAL, "daytona: upload of %zu files", n);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(paths[i], '/') ? strrchr(paths[i], '/') + 1 : paths[i];

		/* Each path part before its file part (reference 3.1). */
		heads[i] = d->host->str_printf(
		        "%s--" DT_BOUNDARY "\r\nContent-Disposition: form-data; "
		        "name=\"files[%zu].path\"\r\n\r\n%s\r\n--" DT_BOUNDARY
		        "\r\nContent-Disposition: form-data; name=\"files[%zu].file\"; "
		        "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
		        i ? "\r\n" : "", i, paths[i], i, base);
		if (!heads[i]) {
			rc = dt_nomem(d, err);
			goto out;
		}
		m.seg[m.nseg] = heads[i];
		m.len[m.nseg++] = strlen(heads[i]);
		m.seg[m.nseg] = data[i];
		m.len[m.nseg++] = lens[i];
	}
	m.seg[m.nseg] = tail;
	m.len[m.nseg++] = sizeof(tail) - 1;
	for (size_t i = 0; i < m.nseg; i++)
		total += m.len[i];
	if (!(url = d->host->str_printf("%s/files/bulk-upload", d->toolbox))) {
		rc = dt_nomem(d, err);
		goto out;
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.ctype = "multipart/form-data; boundary=" DT_BOUNDARY;
	rq.body_len = total;
	rq.timeout_s = 60 + (double)total / (1 << 20); /* a minute plus a second per MiB */
	rq.max_retries = -1;
	rq.read_body = mp_read;
	rq.rewind_body = mp_rewind;
	rq.ctx = &m;
	rq.limit = lim;
	rc = dt_send(d, &rq, &resp, err);
	if (rc == 0)
		rc = toolbox_check(d, &resp, "files/bulk-upload", err);
	d->host->http_response_free(&resp);
out:
	for (size_t i = 0; i < n; i++)
		d->host->free(heads[i]);
	d->host->free(url);
	return rc;
}

int dt_upload(struct dt *d, const void *data, size_t len, const char *path,
              const struct dt_limit *lim, rlm_error *err)
{
	return dt_upload_many(d, &path, &data, &len, 1, lim, err);
}

int dt_download(struct dt *d, const char *path, rlm_buf *out, rlm_error *err)
{
	char *enc = dt_urlencode(d, path), *url;
	rlm_http_response resp;
	struct dt_req rq;
	int rc;

	if (!enc)
		return dt_nomem(d, err);
	url = d->host->str_printf("%s/files/download?path=%s", d->toolbox, enc);
	d->host->free(enc);
	if (!url)
		return dt_nomem(d, err);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.timeout_s = 600;
	rq.max_retries = -1;
	rc = dt_send(d, &rq, &resp, err);
	d->host->free(url);
	if (rc == 0 && resp.status == 404)
		rc = d->host->error_set_http(err, RLM_ENOTFOUND, 404, resp.request_id,
		                             "daytona: download %s: no such file", path);
	else if (rc == 0)
		rc = toolbox_check(d, &resp, "files/download", err);
	if (rc == 0) {
		/* The body is host->alloc'ed and NUL-ended: hand it over without a copy. */
		*out = resp.body;
		if (!out->data && (out->data = d->host->alloc(1)))
			out->data[0] = '\0';
		resp.body.data = NULL;
		resp.body.len = 0;
		if (!out->data)
			rc = dt_nomem(d, err);
	}
	d->host->http_response_free(&resp);
	return rc;
}

int dt_list_files(struct dt *d, const char *path, json_object **out, rlm_error *err)
{
	char *enc = dt_urlencode(d, path ? path : ""), *url;
	int rc;

	if (!enc)
		return dt_nomem(d, err);
	url = d->host->str_printf("%s/files?path=%s", d->toolbox, enc);
	d->host->free(enc);
	rc = url ? dt_json_call(d, "GET", url, NULL, 60, NULL, "files list", out, err)
	         : dt_nomem(d, err);
	d->host->free(url);
	return rc;
}

/* A branch goes to /git/clone as `branch`; anything else (a tag, a commit) is checked out
 * after a default-branch clone, since go-git clones one branch only and answers 404 for a
 * `branch` that is not one (reference 5). */
int dt_git_clone(struct dt *d, const char *url, const char *ref, const char *path,
                 const struct dt_limit *lim, rlm_error *err)
{
	json_object *body = json_object_new_object();
	rlm_error first = RLM_ERROR_INIT;
	char *api = d->host->str_printf("%s/git/clone", d->toolbox);
	int rc;

	if (!api) {
		json_object_put(body);
		return dt_nomem(d, err);
	}
	json_object_object_add(body, "url", json_object_new_string(url));
	json_object_object_add(body, "path", json_object_new_string(path));
	if (ref && *ref)
		json_object_object_add(body, "branch", json_object_new_string(ref));
	rc = dt_json_call(d, "POST", api, body, 600, lim, "git clone", NULL, &first);
	if (rc == RLM_ENOTFOUND && ref && *ref) {
		char *qpath = dt_shell_quote(d, path), *qref = dt_shell_quote(d, ref), *cmd = NULL;
		char *res = NULL;
		size_t len;
		int code = -1;

		json_object_object_del(body, "branch");
		rc = dt_json_call(d, "POST", api, body, 600, lim, "git clone", NULL, err);
		if (rc == 0 &&
		    !(cmd = qpath && qref ? d->host->str_printf("git -C %s checkout -q %s 2>&1",
		                                                qpath, qref)
		                          : NULL))
			rc = dt_nomem(d, err);
		if (rc == 0)
			rc = dt_exec(d, cmd, 300, lim, &res, &len, &code, err);
		if (rc == 0 && code != 0)
			rc = d->host->error_set(
			        err, RLM_ENOTFOUND,
			        "daytona: repo_ref %s is neither a branch nor a tag or "
			        "commit of %s: %.300s",
			        ref, url, res ? res : "");
		d->host->free(qpath);
		d->host->free(qref);
		d->host->free(cmd);
		d->host->free(res);
	} else if (rc) {
		*err = first;
	}
	json_object_put(body);
	d->host->free(api);
	return rc;
}
