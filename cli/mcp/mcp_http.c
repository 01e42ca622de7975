/* mcp_http.c - the streamable HTTP transport: POST /mcp with libmicrohttpd, one thread per
 * connection.
 *
 * Before a body is read: the path must be /mcp, the Host (on a loopback bind) and the Origin
 * must be loopback or allowed (else 403: DNS rebinding), the bearer token must match (else
 * 401), and the announced body must fit (else 413). A tools/call runs on a thread of its own
 * and is answered through a streamed response (SSE when the client accepts it: its progress
 * notifications, then the response; else one JSON object); the connection thread waits for
 * what the call sends and watches the socket, so a client that closes its stream cancels the
 * call (the 2026-07-28 rule; 2025-11-25 clients may also POST notifications/cancelled).
 * Other requests are answered at once. GET has no stream to offer (405); DELETE ends a
 * 2025-11-25 session. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mcp.h"
#include "mhd_lazy.h"

#define CONNECTION_LIMIT  256
#define CONNECTION_IDLE_S 120
#define STREAM_TICK_MS    100
#define KEEPALIVE_S       15.0
#define ENDPOINT          "/mcp"

struct http {
	struct mcp_server *server;
	const struct mcp_options *opts;
	const char *token;
	int loopback_bind;
	pthread_mutex_t mu;
	pthread_cond_t changed;
	int stopping;
	struct stream *streams; /* tools/call in flight */
	int nstreams;
};

/* One POST being read. */
struct request {
	char *body;
	size_t len, cap;
	int too_big;
};

/* A tools/call in flight: owned by its worker thread and by the response (refs). */
struct stream {
	struct http *h;
	pthread_mutex_t mu;
	pthread_cond_t changed;
	int refs;
	char *out; /* bytes waiting to be sent */
	size_t len, off, cap;
	int done;
	int sse;
	int fd; /* the connection's socket */
	double last_sent;
	json_object *msg;
	json_object *id; /* borrowed from msg */
	struct mcp_call call;
	struct mcp_http_headers headers;
	char *hdr_copy[4];
	struct stream *next;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* ---- plain responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const char *body, const char *session)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (session && *session)
		MHD_add_response_header(r, "Mcp-Session-Id", session);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"rlm mcp\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST, DELETE");
	enum MHD_Result ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_object *msg,
                                 const char *session)
{
	char *text = mcp_to_text(msg, NULL);
	enum MHD_Result ok = send_text(c, status, "application/json", text ? text : "{}", session);
	free(text);
	return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, int code,
                                  const char *message)
{
	json_object *e = mcp_error_response(NULL, code, message, NULL);
	enum MHD_Result ok = send_json(c, status, e, NULL);
	json_object_put(e);
	return ok;
}

/* ---- the checks made before a body is read ---- */

/* host[:port] or [v6]:port -> host, into out. */
static void host_part(const char *hostport, char *out, size_t size)
{
	const char *end;
	if (hostport[0] == '[') {
		hostport++;
		end = strchr(hostport, ']');
	} else {
		end = strchr(hostport, ':');
	}
	size_t n = end ? (size_t)(end - hostport) : strlen(hostport);
	snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), hostport);
}

static int origin_allowed(const struct http *h, const char *origin)
{
	if (!origin)
		return 1; /* not a browser */
	for (int i = 0; i < h->opts->norigins; i++)
		if (!strcmp(origin, h->opts->origins[i]))
			return 1;
	const char *rest = !strncasecmp(origin, "http://", 7)    ? origin + 7
	                   : !strncasecmp(origin, "https://", 8) ? origin + 8
	                                                         : NULL;
	if (!rest || strchr(rest, '/') || strchr(rest, '@'))
		return 0;
	char host[256];
	host_part(rest, host, sizeof(host));
	return mcp_host_is_loopback(host);
}

/* DNS rebinding: on a loopback bind, a request naming another host came through a browser
 * that was pointed at us under a foreign name. */
static int host_allowed(const struct http *h, const char *host_header)
{
	if (!h->loopback_bind || !host_header)
		return 1;
	char host[256];
	host_part(host_header, host, sizeof(host));
	return mcp_host_is_loopback(host);
}

static int authorized(const struct http *h, struct MHD_Connection *c)
{
	if (!h->token)
		return 1;
	const char *auth =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || strncasecmp(auth, "Bearer ", 7))
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return mcp_secret_equal(auth, h->token);
}

static int accepts_sse(struct MHD_Connection *c)
{
	const char *accept =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	return accept && strstr(accept, "text/event-stream");
}

/* ---- streams ---- */

static void stream_unref(struct stream *st)
{
	pthread_mutex_lock(&st->mu);
	int last = --st->refs == 0;
	pthread_mutex_unlock(&st->mu);
	if (!last)
		return;
	mcp_call_destroy(&st->call);
	json_object_put(st->msg);
	for (int i = 0; i < 4; i++)
		free(st->hdr_copy[i]);
	free(st->out);
	pthread_cond_destroy(&st->changed);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* Queues one message for the client: an SSE event, or (JSON mode) only the response. */
static void stream_put_locked(struct stream *st, json_object *msg)
{
	size_t len = 0;
	char *text = mcp_to_text(msg, &len);
	if (!text)
		return;
	size_t need = st->len + len + 32;
	if (need > st->cap) {
		size_t cap = st->cap ? st->cap : 4096;
		while (cap < need)
			cap *= 2;
		char *grown = realloc(st->out, cap);
		if (!grown) {
			free(text);
			return;
		}
		st->out = grown;
		st->cap = cap;
	}
	if (st->sse)
		st->len += (size_t)sprintf(st->out + st->len, "event: message\ndata: ");
	memcpy(st->out + st->len, text, len);
	st->len += len;
	if (st->sse) {
		memcpy(st->out + st->len, "\n\n", 2);
		st->len += 2;
	}
	free(text);
	pthread_cond_broadcast(&st->changed);
}

static void stream_emit(void *ctx, json_object *msg)
{
	struct stream *st = ctx;
	pthread_mutex_lock(&st->mu);
	if (st->sse && !st->call.cancelled)
		stream_put_locked(st, msg);
	pthread_mutex_unlock(&st->mu);
}

static void *stream_worker(void *arg)
{
	struct stream *st = arg;
	struct http *h = st->h;
	json_object *resp = mcp_server_handle(h->server, st->msg, &st->call);
	pthread_mutex_lock(&st->mu);
	if (resp && !st->call.cancelled)
		stream_put_locked(st, resp);
	st->done = 1;
	pthread_cond_broadcast(&st->changed);
	pthread_mutex_unlock(&st->mu);
	json_object_put(resp);
	pthread_mutex_lock(&h->mu);
	for (struct stream **link = &h->streams; *link; link = &(*link)->next) {
		if (*link == st) {
			*link = st->next;
			break;
		}
	}
	h->nstreams--;
	pthread_cond_broadcast(&h->changed);
	pthread_mutex_unlock(&h->mu);
	stream_unref(st);
	return NULL;
}

/* 1 when the client closed its end (or the connection broke). */
static int peer_gone(int fd)
{
	struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return 1;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* MHD asks for the next bytes of the response: wait for them, watching the client. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *st = cls;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		if (st->len > st->off) {
			size_t n = st->len - st->off < max ? st->len - st->off : max;
			memcpy(buf, st->out + st->off, n);
			st->off += n;
			if (st->off == st->len)
				st->off = st->len = 0;
			st->last_sent = now_s();
			pthread_mutex_unlock(&st->mu);
			return (ssize_t)n;
		}
		if (st->done) {
			pthread_mutex_unlock(&st->mu);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (st->h->stopping || peer_gone(st->fd)) {
			pthread_mutex_unlock(&st->mu);
			mcp_call_cancel(&st->call); /* closing the stream is the cancellation */
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (st->sse && now_s() - st->last_sent > KEEPALIVE_S && max >= 3) {
			st->last_sent = now_s();
			pthread_mutex_unlock(&st->mu);
			memcpy(buf, ":\n\n",
			       3); /* an SSE comment: keeps proxies and clients waiting */
			return 3;
		}
		struct timespec ts;
		deadline_in(&ts, STREAM_TICK_MS);
		pthread_cond_timedwait(&st->changed, &st->mu, &ts);
	}
}

static void stream_done(void *cls)
{
	struct stream *st = cls;
	if (!st->done)
		mcp_call_cancel(&st->call); /* the response went away before the call ended */
	stream_unref(st);
}

static char *copy_header(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	return v ? strdup(v) : NULL;
}

static void fill_headers(struct MHD_Connection *c, struct mcp_http_headers *hd)
{
	hd->protocol_version =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
	hd->method = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Method");
	hd->name = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Name");
	hd->session = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Session-Id");
}

/* Runs a tools/call on its own thread; the response streams what it sends. Takes msg. */
static enum MHD_Result start_stream(struct http *h, struct MHD_Connection *c, json_object *msg)
{
	struct stream *st = calloc(1, sizeof(*st));
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!st || !ci) {
		free(st);
		json_object_put(msg);
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_INTERNAL_ERROR,
		                  "out of memory");
	}
	st->h = h;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->changed, NULL);
	st->refs = 2; /* the worker and the response */
	st->sse = accepts_sse(c);
	st->fd = ci->connect_fd;
	st->last_sent = now_s();
	st->msg = msg;
	st->id = json_object_object_get(msg, "id");
	mcp_call_init(&st->call);
	st->call.emit = stream_emit;
	st->call.emit_ctx = st;
	st->hdr_copy[0] = copy_header(c, "MCP-Protocol-Version");
	st->hdr_copy[1] = copy_header(c, "Mcp-Method");
	st->hdr_copy[2] = copy_header(c, "Mcp-Name");
	st->hdr_copy[3] = copy_header(c, "Mcp-Session-Id");
	st->headers = (struct mcp_http_headers){st->hdr_copy[0], st->hdr_copy[1], st->hdr_copy[2],
	                                        st->hdr_copy[3]};
	st->call.http = &st->headers;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
	                                                           stream_read, st, stream_done);
	pthread_mutex_lock(&h->mu);
	int busy = h->nstreams >= h->opts->max_inflight || h->stopping;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int started = r && !busy && pthread_create(&t, &attr, stream_worker, st) == 0;
	pthread_attr_destroy(&attr);
	if (started) {
		st->next = h->streams;
		h->streams = st;
		h->nstreams++;
	}
	pthread_mutex_unlock(&h->mu);
	if (!started) {
		if (r)
			MHD_destroy_response(r); /* frees through stream_done: one ref */
		else
			stream_unref(st);
		stream_unref(st);
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_INTERNAL_ERROR,
		                  busy ? "the server runs --max-inflight tool calls already: retry "
		                         "when one is done"
		                       : "cannot start the call");
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        st->sse ? "text/event-stream" : "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ok;
}

/* 2025-11-25 clients cancel over HTTP with a notification naming their request. */
static void cancel_by_id(struct http *h, const char *session, json_object *id)
{
	pthread_mutex_lock(&h->mu);
	for (struct stream *st = h->streams; st; st = st->next) {
		const char *ss = st->headers.session;
		if (json_object_equal(st->id, id) &&
		    ((!ss && !session) || (ss && session && mcp_secret_equal(ss, session))))
			mcp_call_cancel(&st->call);
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- a whole POST ---- */

static enum MHD_Result handle_post(struct http *h, struct MHD_Connection *c, struct request *rq)
{
	if (rq->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, MCP_INVALID_REQUEST,
		                  "Invalid Request: the body is larger than the server's limit "
		                  "(--max-body-bytes)");
	json_tokener *tok = json_tokener_new_ex(64);
	json_object *msg =
	        tok ? json_tokener_parse_ex(tok, rq->body ? rq->body : "", (int)rq->len) : NULL;
	int ok = tok && json_tokener_get_error(tok) == json_tokener_success &&
	         json_tokener_get_parse_end(tok) == rq->len;
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(msg);
		return send_error(c, MHD_HTTP_BAD_REQUEST, MCP_PARSE_ERROR,
		                  "Parse error: the body is not one JSON value");
	}
	struct mcp_http_headers hd;
	fill_headers(c, &hd);
	json_object *cancel_id = mcp_cancelled_request_id(msg);
	if (cancel_id) {
		cancel_by_id(h, hd.session, cancel_id);
		json_object_put(msg);
		return send_text(c, MHD_HTTP_ACCEPTED, NULL, "", NULL);
	}
	struct mcp_call call;
	mcp_call_init(&call);
	call.http = &hd;
	json_object *resp =
	        mcp_server_is_long(msg) ? mcp_server_check(h->server, msg, &call) : NULL;
	enum MHD_Result r;
	if (!resp && mcp_server_is_long(msg)) {
		mcp_call_destroy(&call);
		return start_stream(h, c, msg);
	}
	if (!resp)
		resp = mcp_server_handle(h->server, msg, &call);
	if (resp)
		r = send_json(c, (unsigned)call.http_status, resp, call.session_out);
	else
		r = send_text(c, MHD_HTTP_ACCEPTED, NULL, "", NULL); /* a notification */
	json_object_put(resp);
	json_object_put(msg);
	mcp_call_destroy(&call);
	return r;
}

static enum MHD_Result first_look(struct http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, void **con_cls)
{
	if (strcmp(url, ENDPOINT))
		return send_error(c, MHD_HTTP_NOT_FOUND, MCP_INVALID_REQUEST,
		                  "Not found: the MCP endpoint is " ENDPOINT);
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (!origin_allowed(h, origin) || !host_allowed(h, host))
		return send_error(c, MHD_HTTP_FORBIDDEN, MCP_INVALID_REQUEST,
		                  "Forbidden: this Origin or Host is not allowed (DNS rebinding "
		                  "protection; see --allow-origin)");
	if (!authorized(h, c))
		return send_error(c, MHD_HTTP_UNAUTHORIZED, MCP_INVALID_REQUEST,
		                  "Unauthorized: send Authorization: Bearer <token>");
	if (!strcmp(method, MHD_HTTP_METHOD_DELETE)) {
		const char *session =
		        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Session-Id");
		if (session && !mcp_server_end_session(h->server, session))
			return send_text(c, MHD_HTTP_OK, NULL, "", NULL);
		return send_error(c, MHD_HTTP_NOT_FOUND, MCP_INVALID_REQUEST, "Session not found");
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST))
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, MCP_INVALID_REQUEST,
		                  "Method not allowed: POST JSON-RPC messages to " ENDPOINT
		                  " (this server opens no standalone SSE stream)");
	const char *type =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!type || strncasecmp(type, "application/json", 16))
		return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, MCP_INVALID_REQUEST,
		                  "Unsupported Media Type: the body must be application/json");
	const char *length =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long announced = length ? strtoull(length, NULL, 10) : 0;
	if (announced > h->opts->max_body)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, MCP_INVALID_REQUEST,
		                  "Invalid Request: the body is larger than the server's limit "
		                  "(--max-body-bytes)");
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return MHD_NO;
	if (announced) { /* room for what was announced, up to 1 MiB until it really comes */
		size_t cap = announced < (1u << 20) ? (size_t)announced + 1 : (1u << 20);
		rq->body = malloc(cap);
		rq->cap = rq->body ? cap : 0;
	}
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http *h = cls;
	struct request *rq = *con_cls;
	if (!rq)
		return first_look(h, c, url, method, con_cls);
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->too_big || rq->len + n > h->opts->max_body) {
			rq->too_big = 1; /* read on and drop: the answer is 413 */
			return MHD_YES;
		}
		if (rq->len + n + 1 > rq->cap) {
			size_t cap = rq->cap ? rq->cap : 4096;
			while (cap < rq->len + n + 1)
				cap *= 2;
			char *grown = realloc(rq->body, cap);
			if (!grown)
				return MHD_NO;
			rq->body = grown;
			rq->cap = cap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		return MHD_YES;
	}
	return handle_post(h, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct request *rq = *con_cls;
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fprintf(stderr, "rlm mcp: http: ");
	vfprintf(stderr, fmt, ap);
}

/* ---- the daemon ---- */

static int resolve(const struct mcp_options *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	char port[16];
	snprintf(port, sizeof(port), "%d", o->port);
	int rc = getaddrinfo(o->listen_host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "rlm mcp: --listen %s: %s\n", o->listen_host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void write_port_file(const char *path, unsigned port)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) || rename(tmp, path))
		fprintf(stderr, "rlm mcp: cannot write --port-file %s: %s\n", path,
		        strerror(errno));
}

static void stop_streams(struct http *h)
{
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	for (struct stream *st = h->streams; st; st = st->next)
		mcp_call_cancel(&st->call);
	double next_note = now_s() + 10;
	while (h->nstreams > 0) {
		struct timespec ts;
		deadline_in(&ts, 200);
		pthread_cond_timedwait(&h->changed, &h->mu, &ts);
		if (now_s() > next_note) {
			fprintf(stderr, "rlm mcp: waiting for %d cancelled call%s to stop\n",
			        h->nstreams, h->nstreams == 1 ? "" : "s");
			next_note = now_s() + 10;
		}
	}
	pthread_mutex_unlock(&h->mu);
}

int mcp_http_run(struct mcp_server *s, const struct mcp_options *opts, const char *token,
                 int stop_fd)
{
	char why[512];
	if (mcp_mhd_load(why, sizeof(why))) {
		fprintf(stderr, "rlm mcp: %s\n", why);
		return 3;
	}
	struct http h = {.server = s, .opts = opts, .token = token};
	h.loopback_bind = mcp_host_is_loopback(opts->listen_host);
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.changed, NULL);
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	if (resolve(opts, &ss, &sslen))
		return 2;
	unsigned flags =
	        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(
	        flags, (uint16_t)opts->port, NULL, NULL, on_request, &h, MHD_OPTION_EXTERNAL_LOGGER,
	        mhd_log, &h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_IDLE_S,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &h, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "rlm mcp: cannot listen on %s:%d: %s\n", opts->listen_host,
		        opts->port, strerror(errno));
		pthread_cond_destroy(&h.changed);
		pthread_mutex_destroy(&h.mu);
		return 3;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = info ? info->port : (unsigned)opts->port;
	int v6 = ss.ss_family == AF_INET6;
	fprintf(stderr, "rlm mcp: listening on http://%s%s%s:%u" ENDPOINT "%s\n", v6 ? "[" : "",
	        opts->listen_host, v6 ? "]" : "", port,
	        token ? " (bearer token required)" : " (no auth: loopback only)");
	if (opts->port_file)
		write_port_file(opts->port_file, port);
	for (;;) {
		struct pollfd p = {stop_fd, POLLIN, 0};
		if (poll(&p, 1, -1) > 0 || errno != EINTR)
			break;
	}
	fprintf(stderr, "rlm mcp: stopping (signal)\n");
	stop_streams(&h);
	MHD_stop_daemon(d);
	pthread_cond_destroy(&h.changed);
	pthread_mutex_destroy(&h.mu);
	return 0;
}
