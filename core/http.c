/* http.c - the host's shared HTTP helper: one request through libcurl, with retries, backoff,
 * Retry-After and three separate time limits (connect, per attempt, overall deadline), for
 * every plugin that talks HTTP. plugin.h (rlm_http_request) is the contract.
 *
 * libcurl itself is loaded by the first request, not at process start (curl_lazy.h).
 *
 * Process-wide state, created once and never freed (libcurl allows skipping
 * curl_global_cleanup, and tearing it down at exit would race threads still in a request):
 *  - curl_global_init, run once through pthread_once;
 *  - one CURLSH share handle with the DNS cache and the TLS session cache, one mutex per
 *    curl_lock_data kind;
 *  - a pool of idle easy handles, which is where connections are reused. libcurl 7.88 (Debian
 *    12) documents a shared connection cache (CURL_LOCK_DATA_CONNECT) as unsafe between
 *    concurrent threads (KNOWN_BUGS "A shared connection cache is not thread-safe"), so the
 *    share does not hold connections. An easy handle keeps its live connections across
 *    performs and may move between threads as long as one thread uses it at a time: a request
 *    borrows an idle handle (one that last talked to the same origin if there is one) and
 *    gives it back, so connections are reused across requests and threads.
 * Everything else lives in one http_call on the caller's stack. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "curl_lazy.h"
#include "host.h"
#include "rlm/rlm.h"
#include "redact.h"
#include "util.h"

#define DEFAULT_CONNECT_TIMEOUT_S 10.0
#define DEFAULT_TIMEOUT_S         60.0
#define DEFAULT_MAX_RETRIES       4
#define DEFAULT_BACKOFF_S         0.5
#define MAX_BACKOFF_S             30.0
/* A longer Retry-After is not waited out: the response goes back to the caller, for whom a
 * quota that resets in an hour is not a transient fault. */
#define MAX_RETRY_AFTER_S 60.0
/* Bodies collected in memory stop here, so a broken server cannot exhaust memory. */
#define MAX_BODY_BYTES ((size_t)256 << 20)
#define POOL_MAX       16
#define ORIGIN_MAX     256
/* rlm_http_request as of ABI 1.1, when the http slots appeared: every field up to ctx. */
#define REQUEST_SIZE_1_1 (offsetof(rlm_http_request, ctx) + sizeof(void *))

/* --- process-wide state: libcurl init, the share handle, the pool of idle handles --- */

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static int http_init_failed;
static CURLSH *http_share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pooled_handle {
	CURL *curl;
	char origin[ORIGIN_MAX];
} pool[POOL_MAX];
static int pool_len;

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *user)
{
	(void)handle;
	(void)access;
	(void)user;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *user)
{
	(void)handle;
	(void)user;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&share_locks[data]);
}

static void http_init(void)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		http_init_failed = 1;
		return;
	}
	/* Without a share, requests still work; they just do not share DNS and TLS caches. */
	http_share = curl_share_init();
	if (!http_share)
		return;
	curl_share_setopt(http_share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(http_share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(http_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(http_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

static void pool_remove(int i)
{
	memmove(&pool[i], &pool[i + 1], (size_t)(pool_len - i - 1) * sizeof(pool[0]));
	pool_len--;
}

/* An easy handle for origin: an idle one that last talked to it, else the stalest idle one,
 * else a new one. NULL when out of memory. */
static CURL *pool_borrow(const char *origin)
{
	CURL *curl = NULL;
	pthread_mutex_lock(&pool_lock);
	int pick = pool_len ? 0 : -1;
	for (int i = pool_len - 1; i >= 0; i--) {
		if (!strcmp(pool[i].origin, origin)) {
			pick = i;
			break;
		}
	}
	if (pick >= 0) {
		curl = pool[pick].curl;
		pool_remove(pick);
	}
	pthread_mutex_unlock(&pool_lock);
	return curl ? curl : curl_easy_init();
}

/* Gives a handle back with its live connections; the stalest goes when the pool is full. */
static void pool_return(CURL *curl, const char *origin)
{
	/* Reset first, so an idle handle keeps no pointer into a finished call. */
	curl_easy_reset(curl);
	CURL *evicted = NULL;
	pthread_mutex_lock(&pool_lock);
	if (pool_len == POOL_MAX) {
		evicted = pool[0].curl;
		pool_remove(0);
	}
	pool[pool_len].curl = curl;
	snprintf(pool[pool_len].origin, sizeof(pool[0].origin), "%s", origin);
	pool_len++;
	pthread_mutex_unlock(&pool_lock);
	if (evicted)
		curl_easy_cleanup(evicted);
}

/* --- text helpers: header blocks, secrets --- */

typedef int (*header_fn)(void *ctx, const char *name, size_t name_len, const char *value,
                         size_t value_len);

/* Calls fn for every "Name: value" line of a raw header block (the status line and blank
 * lines are skipped), values trimmed; stops early when fn returns non-zero. */
static void each_header(const char *block, header_fn fn, void *ctx)
{
	for (const char *line = block; line && *line;) {
		const char *end = line + strcspn(line, "\r\n");
		const char *colon = memchr(line, ':', (size_t)(end - line));
		if (colon && strncmp(line, "HTTP/", 5)) {
			const char *v = colon + 1, *ve = end;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (fn(ctx, line, (size_t)(colon - line), v, (size_t)(ve - v)))
				return;
		}
		line = end + strspn(end, "\r\n");
	}
}

struct header_find {
	const char *name;
	char *buf;
	size_t size;
	int found;
};

static int header_find_fn(void *ctx, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
	struct header_find *f = ctx;
	if (strlen(f->name) != name_len || strncasecmp(f->name, name, name_len))
		return 0;
	size_t n = value_len < f->size - 1 ? value_len : f->size - 1;
	memcpy(f->buf, value, n);
	f->buf[n] = '\0';
	f->found = 1;
	return 1;
}

static const char *header_in_block(const char *block, const char *name, char *buf, size_t size)
{
	if (!block || !name || !buf || !size)
		return NULL;
	struct header_find f = {name, buf, size, 0};
	each_header(block, header_find_fn, &f);
	return f.found ? buf : NULL;
}

/* A copy of text with secrets masked by the one rule (redact.c). NULL when out of memory. */
static char *mask_secrets(const char *text, const char *const *secrets)
{
	char *out = strdup(text);
	if (out)
		rlm__redact_secrets(out, secrets);
	return out;
}

static int query_name_looks_secret(const char *name, size_t len)
{
	static const char *const words[] = {"key",  "token",      "secret", "password", "passwd",
	                                    "auth", "credential", "sig",    "session"};
	char low[64];
	if (len >= sizeof(low))
		len = sizeof(low) - 1;
	for (size_t i = 0; i < len; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	low[len] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

/* Appends the query part q (after '?', up to '#' or the end) with secret-looking values
 * masked. */
static int append_masked_query(rlm_sb *out, const char *q, size_t len)
{
	int rc = 0;
	for (size_t i = 0; i < len && !rc;) {
		size_t plen = strcspn(q + i, "&#");
		if (i + plen > len)
			plen = len - i;
		const char *eq = memchr(q + i, '=', plen);
		if (eq && query_name_looks_secret(q + i, (size_t)(eq - (q + i)))) {
			rc = rlm_sb_append(out, q + i, (size_t)(eq - (q + i)) + 1);
			rc = rc ? rc : rlm_sb_puts(out, "***");
		} else {
			rc = rlm_sb_append(out, q + i, plen);
		}
		i += plen;
		if (i < len && !rc)
			rc = rlm_sb_append(out, q + i++, 1);
	}
	return rc;
}

char *rlm__http_safe_url(const char *url, const char *const *secrets)
{
	rlm_sb out = {0};
	const char *auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	size_t host_len = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', host_len);
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	/* user:password@host: the password goes. */
	int rc = rlm_sb_append(&out, url, (size_t)((colon ? colon + 1 : auth + host_len) - url));
	if (colon && !rc)
		rc = rlm_sb_printf(&out, "***%.*s", (int)(auth + host_len - at), at);
	const char *rest = auth + host_len;
	const char *q = strchr(rest, '?');
	size_t qlen = q ? strcspn(q + 1, "#") : 0;
	if (!rc)
		rc = rlm_sb_append(&out, rest, q ? (size_t)(q + 1 - rest) : strlen(rest));
	if (q && !rc)
		rc = append_masked_query(&out, q + 1, qlen);
	if (q && !rc)
		rc = rlm_sb_puts(&out, q + 1 + qlen);
	char *masked = rc ? NULL : mask_secrets(out.data ? out.data : "", secrets);
	rlm_sb_free(&out);
	return masked;
}

/* Seconds that one Retry-After-like header asks for, or -1 when it says nothing usable. */
static double retry_after_value(const char *name, size_t name_len, const char *value,
                                size_t value_len, time_t wall_now)
{
	static const char ms[] = "retry-after-ms", ra[] = "retry-after";
	char v[64];
	if (!value_len || value_len >= sizeof(v))
		return -1;
	memcpy(v, value, value_len);
	v[value_len] = '\0';
	char *end;
	long long n = strtoll(v, &end, 10);
	int numeric = end != v && n >= 0 && (*end == '\0' || *end == '.');
	if (name_len == sizeof(ms) - 1 && !strncasecmp(name, ms, name_len))
		return numeric ? (double)n / 1000.0 : -1;
	/* Retry-After, or Daytona's Retry-After-{throttler} (reference/daytona-api.md 6.4). */
	if (name_len < sizeof(ra) - 1 || strncasecmp(name, ra, sizeof(ra) - 1) ||
	    (name_len > sizeof(ra) - 1 && name[sizeof(ra) - 1] != '-'))
		return -1;
	if (numeric)
		return (double)n;
	time_t when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	return when > wall_now ? (double)(when - wall_now) : 0.0;
}

struct retry_after_scan {
	time_t wall_now;
	double max;
};

static int retry_after_fn(void *ctx, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
	struct retry_after_scan *s = ctx;
	double d = retry_after_value(name, name_len, value, value_len, s->wall_now);
	if (d > s->max)
		s->max = d;
	return 0;
}

double rlm__http_retry_after(const char *headers, time_t wall_now)
{
	struct retry_after_scan s = {wall_now, -1};
	each_header(headers, retry_after_fn, &s);
	return s.max;
}

/* --- one call: settings, callbacks, easy-handle setup --- */

typedef struct http_call {
	const rlm_http_request *req;
	const char *method;
	double connect_timeout_s, timeout_s, backoff_s, started;
	int max_attempts;
	unsigned seed; /* jitter PRNG state: per call, so threads never share it */
	CURL *curl;
	struct curl_slist *headers;
	char *safe_url; /* the URL with secrets masked, for logs and messages */
	char origin[ORIGIN_MAX];
	char errbuf[CURL_ERROR_SIZE];
	/* Per attempt: */
	rlm_sb head;      /* header block of the latest response */
	rlm_sb body;      /* body collected in memory */
	long status;      /* from the latest status line */
	size_t sent;      /* request bytes read_body handed out */
	size_t delivered; /* response bytes handed to on_body */
	int abort_code;   /* set when a callback stopped the transfer */
	char abort_reason[160];
	const volatile int *cancel; /* the request's cancel flag (ABI 1.2), or NULL */
} http_call;

static int call_cancelled(const http_call *call)
{
	return call->cancel && *call->cancel;
}

static void call_abort(http_call *call, int code, const char *reason)
{
	call->abort_code = code;
	snprintf(call->abort_reason, sizeof(call->abort_reason), "%s", reason);
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	http_call *call = user;
	size_t len = size * n;
	if (len > 5 && !strncmp(data, "HTTP/", 5)) {
		/* A response starts (an interim 1xx or the final one): keep only its block. */
		rlm_sb_consume(&call->head, call->head.len);
		const char *sp = memchr(data, ' ', len);
		call->status = sp ? strtol(sp + 1, NULL, 10) : 0;
	}
	if (rlm_sb_append(&call->head, data, len)) {
		call_abort(call, RLM_ENOMEM, "out of memory while reading response headers");
		return 0;
	}
	return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
	http_call *call = user;
	const rlm_http_request *req = call->req;
	size_t len = size * n;
	/* Only a 2xx body streams to on_body; an error body is collected for the caller's
	 * message, and a 5xx about to be retried never reaches the consumer. */
	if (req->on_body && call->status >= 200 && call->status < 300) {
		int rc = req->on_body(req->ctx, data, len);
		if (rc) {
			call_abort(call, rc < 0 ? rc : RLM_EIO, "the on_body callback stopped it");
			return 0;
		}
		call->delivered += len;
		return len;
	}
	if (call->body.len + len > MAX_BODY_BYTES) {
		call_abort(call, RLM_EIO, "response body larger than 256 MiB");
		return 0;
	}
	if (rlm_sb_append(&call->body, data, len)) {
		call_abort(call, RLM_ENOMEM, "out of memory while reading the response body");
		return 0;
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
	http_call *call = user;
	size_t max = size * n;
	size_t got = call->req->read_body(call->req->ctx, buf, max);
	/* (size_t)-1 is read_body's way to report a failure (plugin.h has no other). */
	if (got == (size_t)-1 || got > max) {
		call_abort(call, RLM_EIO, "the read_body callback failed");
		return CURL_READFUNC_ABORT;
	}
	call->sent += got;
	return got;
}

/* libcurl rewinds the upload itself when it resends on a fresh connection. */
static int on_seek(void *user, curl_off_t offset, int origin)
{
	http_call *call = user;
	if (offset != 0 || origin != SEEK_SET || !call->req->rewind_body)
		return CURL_SEEKFUNC_CANTSEEK;
	if (call->req->rewind_body(call->req->ctx))
		return CURL_SEEKFUNC_FAIL;
	call->sent = 0;
	return CURL_SEEKFUNC_OK;
}

/* Sockets are close-on-exec from birth: sandboxes are forked from other threads at any time
 * and must not inherit a connection to a provider's API. */
/* libcurl calls this often while data moves and about once a second while it waits. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	http_call *call = user;
	if (!call_cancelled(call))
		return 0;
	call_abort(call, RLM_ECANCELLED, "cancelled");
	return 1;
}

static curl_socket_t open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *addr)
{
	(void)user;
	(void)purpose;
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static long to_ms(double s)
{
	double ms = s * 1000.0 + 0.5;
	/* 0 means "no limit" to libcurl, so the smallest limit is 1 ms. */
	return ms < 1.0 ? 1 : ms > (double)LONG_MAX / 2 ? LONG_MAX / 2 : (long)ms;
}

static int has_header(const rlm_http_request *req, const char *name)
{
	size_t n = strlen(name);
	for (const char *const *h = req->headers; h && *h; h++)
		if (!strncasecmp(*h, name, n) && ((*h)[n] == ':' || (*h)[n] == ';'))
			return 1;
	return 0;
}

static int has_body(const rlm_http_request *req)
{
	return req->read_body || req->body;
}

/* The caller's header lines, plus two suppressions when a body goes out: libcurl's
 * "Expect: 100-continue" (a round trip some servers never answer) and its default
 * form-urlencoded Content-Type (wrong for JSON and binary bodies). */
static int headers_build(http_call *call)
{
	const rlm_http_request *req = call->req;
	const char *extra[2] = {NULL, NULL};
	if (has_body(req) && !has_header(req, "Expect"))
		extra[0] = "Expect:";
	if (has_body(req) && !has_header(req, "Content-Type"))
		extra[1] = "Content-Type:";
	for (const char *const *h = req->headers; h && *h; h++) {
		struct curl_slist *l = curl_slist_append(call->headers, *h);
		if (!l)
			return RLM_ENOMEM;
		call->headers = l;
	}
	for (int i = 0; i < 2; i++) {
		struct curl_slist *l = extra[i] ? curl_slist_append(call->headers, extra[i]) : NULL;
		if (extra[i] && !l)
			return RLM_ENOMEM;
		call->headers = l ? l : call->headers;
	}
	return 0;
}

#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (curl_easy_setopt(call->curl, opt, val) != CURLE_OK) {                          \
			call_abort(call, RLM_EINVAL, "libcurl refused option " #opt);              \
			return RLM_EINVAL;                                                         \
		}                                                                                  \
	} while (0)

/* Method and body. Any method with a body goes out the POST way with the method name
 * replaced, so every verb sends its body with a Content-Length the same way. */
static int easy_setup_body(http_call *call)
{
	const rlm_http_request *req = call->req;
	int post = !strcmp(call->method, "POST");
	if (!has_body(req) && !post) {
		if (!strcmp(call->method, "HEAD"))
			SETOPT(CURLOPT_NOBODY, 1L);
		else if (strcmp(call->method, "GET"))
			SETOPT(CURLOPT_CUSTOMREQUEST, call->method);
		return 0;
	}
	SETOPT(CURLOPT_POST, 1L);
	SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	if (req->read_body) {
		SETOPT(CURLOPT_READFUNCTION, on_read);
		SETOPT(CURLOPT_READDATA, call);
		SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
		SETOPT(CURLOPT_SEEKDATA, call);
	} else {
		SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	if (!post)
		SETOPT(CURLOPT_CUSTOMREQUEST, call->method);
	return 0;
}

/* Every option of the easy handle, in one place: HTTP/2 (for Modal) is a change here. */
static int easy_setup(http_call *call)
{
	if (http_share)
		SETOPT(CURLOPT_SHARE, http_share);
	SETOPT(CURLOPT_URL, call->req->url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L); /* signals are process-wide: unusable from threads */
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_USERAGENT, "rlm/" RLM_VERSION);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, to_ms(call->connect_timeout_s));
	SETOPT(CURLOPT_TIMEOUT_MS, to_ms(call->timeout_s));
	SETOPT(CURLOPT_HTTPHEADER, call->headers);
	SETOPT(CURLOPT_ERRORBUFFER, call->errbuf);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, call);
	SETOPT(CURLOPT_WRITEFUNCTION, on_write);
	SETOPT(CURLOPT_WRITEDATA, call);
	if (call->cancel) {
		SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
		SETOPT(CURLOPT_XFERINFODATA, call);
		SETOPT(CURLOPT_NOPROGRESS, 0L);
	}
	/* An announced oversized body fails before a byte is stored; on_write catches the rest. */
	if (!call->req->on_body)
		SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY_BYTES);
	return easy_setup_body(call);
}

/* --- messages and logs --- */

static void request_id_find(const char *head, char *out, size_t size)
{
	/* OpenAI, Anthropic, AWS-fronted services; Daytona documents none (reference 6). */
	static const char *const names[] = {"x-request-id", "request-id", "x-amzn-requestid",
	                                    "x-amz-request-id"};
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (header_in_block(head, names[i], out, size))
			return;
}

/* Fills err with "METHOD safe-url: message", secrets masked; returns code. */
static int call_error(http_call *call, rlm_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int call_error(http_call *call, rlm_error *err, int code, const char *fmt, ...)
{
	/* Masking happens before any truncation, so a cut can never leave half a secret. */
	char *text = NULL, *full = NULL, *masked = NULL, *clean = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL; /* its contents are undefined after a failure */
	va_end(ap);
	if (text && asprintf(&full, "%s %s: %s", call->method,
	                     call->safe_url ? call->safe_url : "(url)", text) < 0)
		full = NULL;
	if (full)
		masked = mask_secrets(full, call->req->secrets);
	clean = masked ? rlm_redact(masked) : NULL;
	char request_id[RLM_ERROR_REQUEST_ID_MAX];
	request_id_find(call->head.data, request_id, sizeof(request_id));
	rlm_error_set_http(err, code, call->status, request_id, "%s",
	                   clean ? clean : "HTTP request failed (message lost: out of memory)");
	free(clean);
	free(masked);
	free(full);
	free(text);
	return code;
}

static int header_name_is_secret(const char *line)
{
	static const char *const names[] = {"authorization", "proxy-authorization", "cookie",
	                                    "x-api-key", "api-key"};
	size_t n = strcspn(line, ":;");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !strncasecmp(line, names[i], n))
			return 1;
	return query_name_looks_secret(line, n);
}

/* One debug line per attempt: method, URL, headers with credential values left out. */
static void log_attempt(http_call *call, int attempt)
{
	rlm_sb line = {0};
	int rc = rlm_sb_printf(&line, "> %s %s (attempt %d of %d)", call->method, call->safe_url,
	                       attempt, call->max_attempts);
	for (const char *const *h = call->req->headers; h && *h && !rc; h++) {
		if (header_name_is_secret(*h))
			rc = rlm_sb_printf(&line, " [%.*s: <redacted>]", (int)strcspn(*h, ":;"),
			                   *h);
		else
			rc = rlm_sb_printf(&line, " [%s]", *h);
	}
	char *masked = rc ? NULL : mask_secrets(line.data, call->req->secrets);
	if (masked)
		rlm_log(RLM_LOG_DEBUG, "http", "%s", masked);
	free(masked);
	rlm_sb_free(&line);
}

static void log_retry(http_call *call, CURLcode cc, int attempt, double delay)
{
	char why[64];
	if (cc == CURLE_OK)
		snprintf(why, sizeof(why), "HTTP %ld", call->status);
	else
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(cc));
	rlm_log(RLM_LOG_INFO, "http", "%s %s: %s on attempt %d of %d; retrying in %.2f s",
	        call->method, call->safe_url, why, attempt, call->max_attempts, delay);
}

/* --- the attempt loop --- */

static int status_retryable(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

/* Failures where no (complete) response came and another attempt may well succeed. */
static int curl_code_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM: return 1;
	default: return 0;
	}
}

/* Exponential backoff from backoff_s, capped, with equal jitter: half fixed, half random,
 * so clients that failed together spread out yet none retries at once. */
static double backoff_delay(http_call *call, int attempt)
{
	double d = call->backoff_s;
	for (int i = 1; i < attempt && d < MAX_BACKOFF_S; i++)
		d *= 2;
	if (d > MAX_BACKOFF_S)
		d = MAX_BACKOFF_S;
	return d / 2 + d / 2 * ((double)rand_r(&call->seed) / RAND_MAX);
}

/* Seconds to wait before another attempt after attempt number `attempt` ended with cc, or -1
 * when there must be none. */
static double retry_delay(http_call *call, CURLcode cc, int attempt)
{
	const rlm_http_request *req = call->req;
	if (attempt >= call->max_attempts)
		return -1;
	if (cc == CURLE_OK ? !status_retryable(call->status) : !curl_code_retryable(cc))
		return -1;
	if (cc == CURLE_OK && RLM_HAS_FIELD(req, is_final) && req->is_final &&
	    req->is_final(req->ctx, call->status, call->body.data, call->body.len))
		return -1;
	/* Bytes already handed to on_body or taken from read_body cannot be taken back. */
	if (call->delivered || (call->sent && !req->rewind_body))
		return -1;
	double d = cc == CURLE_OK ? rlm__http_retry_after(call->head.data, time(NULL)) : -1;
	if (d > MAX_RETRY_AFTER_S)
		return -1;
	if (d < 0)
		d = backoff_delay(call, attempt);
	/* No attempt starts after the deadline, so a wait that reaches it is pointless. */
	if (req->deadline > 0 && rlm_now() + d >= req->deadline)
		return -1;
	return d;
}

/* Sleeps in slices of at most 100 ms so a cancel is seen while waiting to retry. */
static void sleep_for(const http_call *call, double seconds)
{
	double end = rlm_now() + seconds;
	for (double left = seconds; left > 0 && !call_cancelled(call); left = end - rlm_now()) {
		double slice = left < 0.1 ? left : 0.1;
		struct timespec ts = {(time_t)slice, (long)((slice - (double)(time_t)slice) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* curl_easy_perform with SIGPIPE blocked in this thread. With CURLOPT_NOSIGNAL libcurl leaves
 * SIGPIPE alone, and a write to a peer that hung up (in a TLS library, say) must not kill an
 * embedder that never ignored it; process-wide dispositions are not ours to change. A SIGPIPE
 * raised during the call is consumed. */
static CURLcode perform_without_sigpipe(CURL *curl)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	int was_pending = sigismember(&pending, SIGPIPE);
	CURLcode cc = curl_easy_perform(curl);
	struct timespec zero = {0, 0};
	while (!was_pending && sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
		;
	if (!sigismember(&old, SIGPIPE))
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	return cc;
}

static CURLcode attempt_run(http_call *call, int attempt)
{
	rlm_sb_consume(&call->head, call->head.len);
	rlm_sb_consume(&call->body, call->body.len);
	call->status = 0;
	call->sent = call->delivered = 0;
	call->errbuf[0] = '\0';
	/* An attempt ends at the deadline too: a retry starts late, with timeout_s still whole. */
	double left = call->req->deadline > 0 ? call->req->deadline - rlm_now() : 0;
	curl_easy_setopt(call->curl, CURLOPT_TIMEOUT_MS,
	                 to_ms(left > 0 && left < call->timeout_s ? left : call->timeout_s));
	log_attempt(call, attempt);
	return perform_without_sigpipe(call->curl);
}

static int response_fill(http_call *call, rlm_http_response *resp, rlm_error *err)
{
	long status = 0;
	curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status ? status : call->status;
	request_id_find(call->head.data, resp->request_id, sizeof(resp->request_id));
	resp->body.len = call->body.len;
	resp->body.data = rlm_sb_take(&call->body);
	resp->headers = rlm_sb_take(&call->head);
	if (!resp->body.data || !resp->headers)
		return call_error(call, err, RLM_ENOMEM, "out of memory storing the response");
	rlm_log(RLM_LOG_DEBUG, "http", "< %ld %s %s (%zu bytes, %d attempts, %.3f s)", resp->status,
	        call->method, call->safe_url, resp->body.len, resp->attempts,
	        rlm_now() - call->started);
	return 0;
}

static int transport_error(http_call *call, CURLcode cc, int attempts, rlm_error *err)
{
	int code = RLM_ETRANSIENT;
	if (cc == CURLE_OPERATION_TIMEDOUT)
		code = RLM_ETIMEOUT;
	else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
		code = RLM_EINVAL;
	else if (cc == CURLE_OUT_OF_MEMORY)
		code = RLM_ENOMEM;
	else if (cc == CURLE_FILESIZE_EXCEEDED)
		return call_error(call, err, RLM_EIO, "response body larger than 256 MiB");
	char cut[64] = "";
	if (call->delivered)
		snprintf(cut, sizeof(cut), " (response cut off after %zu bytes)", call->delivered);
	return call_error(call, err, code, "no response after %d attempt%s: %s%s%s%s%s", attempts,
	                  attempts == 1 ? "" : "s", curl_easy_strerror(cc),
	                  call->errbuf[0] ? " (" : "", call->errbuf, call->errbuf[0] ? ")" : "",
	                  cut);
}

static int call_run(http_call *call, rlm_http_response *resp, rlm_error *err)
{
	const rlm_http_request *req = call->req;
	if (req->deadline > 0 && rlm_now() >= req->deadline)
		return call_error(call, err, RLM_ETIMEOUT, "deadline passed before the request");
	CURLcode cc = CURLE_OK;
	int attempt = 0;
	for (;;) {
		if (call_cancelled(call)) {
			call_abort(call, RLM_ECANCELLED, "cancelled");
			break;
		}
		cc = attempt_run(call, ++attempt);
		if (call->abort_code)
			break;
		double delay = retry_delay(call, cc, attempt);
		if (delay < 0)
			break;
		log_retry(call, cc, attempt, delay);
		sleep_for(call, delay);
		if (call_cancelled(call))
			continue;
		if (call->sent && req->rewind_body(req->ctx)) {
			rlm_log(RLM_LOG_WARN, "http", "%s %s: rewind_body failed; not retrying",
			        call->method, call->safe_url);
			break;
		}
	}
	resp->attempts = attempt;
	if (call->abort_code)
		return call_error(call, err, call->abort_code, "transfer stopped: %s",
		                  call->abort_reason);
	if (cc == CURLE_OK)
		return response_fill(call, resp, err);
	return transport_error(call, cc, attempt, err);
}

/* --- entry points --- */

static int method_valid(const char *m)
{
	if (!*m)
		return 0;
	for (; *m; m++)
		if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') || *m == '-' ||
		      *m == '_'))
			return 0;
	return 1;
}

static int request_validate(const rlm_http_request *req, rlm_error *err)
{
	if (!req)
		return rlm_error_set(err, RLM_EINVAL, "http_request: no request");
	if (req->struct_size && req->struct_size < REQUEST_SIZE_1_1)
		return rlm_error_set(err, RLM_EINVAL, "http_request: struct_size %u is too small",
		                     req->struct_size);
	if (!req->url || !*req->url)
		return rlm_error_set(err, RLM_EINVAL, "http_request: no URL");
	if (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))
		return rlm_error_set(err, RLM_EINVAL,
		                     "http_request: unsupported URL scheme (only http and https)");
	if (req->method && !method_valid(req->method))
		return rlm_error_set(err, RLM_EINVAL, "http_request: invalid method");
	if (req->body_len && !req->body && !req->read_body)
		return rlm_error_set(err, RLM_EINVAL, "http_request: body_len without a body");
	for (const char *const *h = req->headers; h && *h; h++)
		if (strpbrk(*h, "\r\n"))
			return rlm_error_set(err, RLM_EINVAL,
			                     "http_request: a header line contains CR or LF");
	return 0;
}

static void origin_of(const char *url, char *out, size_t size)
{
	const char *host = strstr(url, "://");
	size_t n = host ? (size_t)(host + 3 - url) + strcspn(host + 3, "/?#") : strlen(url);
	snprintf(out, size, "%.*s", (int)n, url);
}

static int call_open(http_call *call, const rlm_http_request *req, rlm_error *err)
{
	memset(call, 0, sizeof(*call));
	call->req = req;
	call->cancel = RLM_HAS_FIELD(req, cancel) ? req->cancel : NULL;
	call->method = req->method ? req->method : "GET";
	call->connect_timeout_s =
	        req->connect_timeout_s > 0 ? req->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
	call->timeout_s = req->timeout_s > 0 ? req->timeout_s : DEFAULT_TIMEOUT_S;
	call->backoff_s = req->backoff_s > 0 ? req->backoff_s : DEFAULT_BACKOFF_S;
	int retries = req->max_retries < 0 ? DEFAULT_MAX_RETRIES : req->max_retries;
	call->max_attempts = retries >= INT_MAX - 1 ? INT_MAX : retries + 1;
	call->started = rlm_now();
	/* Seeded from the clock and this stack frame's address, which differs between threads. */
	call->seed = (unsigned)(unsigned long long)(call->started * 1e6) ^
	             (unsigned)((uintptr_t)call >> 4);
	origin_of(req->url, call->origin, sizeof(call->origin));
	call->safe_url = rlm__http_safe_url(req->url, req->secrets);
	call->curl = pool_borrow(call->origin);
	if (!call->safe_url || !call->curl || headers_build(call))
		return rlm_error_set(err, RLM_ENOMEM, "http_request: out of memory");
	if (easy_setup(call))
		return call_error(call, err, RLM_EINVAL, "%s", call->abort_reason);
	return 0;
}

static void call_close(http_call *call)
{
	if (call->curl)
		pool_return(call->curl, call->origin);
	curl_slist_free_all(call->headers);
	rlm_sb_free(&call->head);
	rlm_sb_free(&call->body);
	free(call->safe_url);
}

int rlm_http_send(const rlm_http_request *req, rlm_http_response *resp, rlm_error *err)
{
	if (!resp)
		return rlm_error_set(err, RLM_EINVAL, "http_request: no response struct");
	/* Every field was there in ABI 1.1, when this slot appeared; fields appended later must
	 * be written only when resp->struct_size covers them. */
	memset(resp, 0, sizeof(*resp));
	resp->abi_version = RLM_ABI_VERSION;
	resp->struct_size = sizeof(*resp);
	int rc = request_validate(req, err);
	if (rc)
		return rc;
	/* libcurl is loaded here, by the first request (curl_lazy.h). */
	rc = rlm_curl_load(err);
	if (rc)
		return rc;
	pthread_once(&http_once, http_init);
	if (http_init_failed)
		return rlm_error_set(err, RLM_EIO, "http_request: libcurl failed to initialise");
	http_call call;
	rc = call_open(&call, req, err);
	if (!rc)
		rc = call_run(&call, resp, err);
	call_close(&call);
	return rc;
}

void rlm_http_response_free(rlm_http_response *resp)
{
	if (!resp)
		return;
	free(resp->body.data);
	free(resp->headers);
	resp->body.data = NULL;
	resp->body.len = 0;
	resp->headers = NULL;
}

const char *rlm_http_header(const rlm_http_response *resp, const char *name, char *buf, size_t size)
{
	return resp ? header_in_block(resp->headers, name, buf, size) : NULL;
}
