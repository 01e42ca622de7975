/* grpc.c - gRPC unary, client-streaming and server-streaming calls over libcurl's HTTP/2 (see
 * grpc.h).
 *
 * A call is one POST of 5-byte-framed protobuf messages (one, or a client stream's several,
 * packed one at a time by the read callback) with content-type application/grpc and te:
 * trailers. grpc-status, grpc-message and grpc-status-details-bin are read from whatever
 * header lines curl hands over, which for HTTP/2 includes the trailers.
 *
 * Bounds. The caller waits on its call in slices (1 s, or 50 ms when it watches a cancel flag)
 * and takes it off the engine once the deadline passes or the flag is set; curl's own
 * CURLOPT_TIMEOUT, a little longer, is a second line of defence.
 *
 * The engine. One thread per process owns a curl multi handle; a call is an easy handle the
 * caller builds, queues and then waits on. The multi handle's connection cache is what makes
 * calls to one host share one HTTP/2 connection: over TLS, curl multiplexes them (PIPEWAIT
 * makes concurrent first calls wait for the first connection instead of opening more). The
 * engine's callbacks only copy bytes and header fields into the call under the engine lock;
 * the caller takes the bytes, parses frames and runs callbacks on its own thread.
 *
 * Cleartext (loopback only) works around a libcurl 7.88 bug (curl issue #10634, fixed in
 * 8.0.0): a request that asks for HTTP/2 with prior knowledge on a reused connection fails
 * with "Error in the HTTP2 framing layer". So per origin, one call (the opener) connects with
 * prior knowledge while the others wait; once its connection answers, the rest ask for plain
 * HTTP/2, which curl carries on the existing connection. Such a call must never open a
 * connection itself (curl would send an HTTP/1.1 Upgrade, which gRPC servers refuse): its
 * open-socket callback refuses, before a byte is sent, and the engine queues it again as the
 * origin's next opener.
 *
 * Many streams. A connection carries at most min(the server's SETTINGS_MAX_CONCURRENT_STREAMS,
 * CURLMOPT_MAX_CONCURRENT_STREAMS = 100) calls at once, and every live sandbox keeps a stream
 * open, so 256 sandboxes need several connections. Over TLS curl opens them itself. In
 * cleartext, a call that finds every connection full is refused as above and goes again as
 * the opener of a new one, with CURLOPT_FRESH_CONNECT: without it, a stream that ended in the
 * meantime let the opener's prior-knowledge request ride the old connection, the 7.88 bug,
 * and every call on it failed ("Error in the HTTP2 framing layer"). The others wait for the
 * opener only until its request is on the wire. */
#include "grpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "modal.pb-c.h"

#define MG_MAX_MESSAGE (100u << 20) /* the SDKs' limit */
#define MG_MAX_ORIGINS 64

/* Cleartext origins and the state of their one connection. */
enum { H2C_NONE, H2C_OPENING, H2C_LIVE };

struct mg_origin {
	char *base; /* "http://127.0.0.1:port" */
	int state;
	struct mg_call *held; /* calls waiting for the opener */
};

struct mg_engine {
	pthread_mutex_t mu;
	pthread_t thread;
	CURLM *multi;
	int refs;
	int stop;
	struct mg_call *queued;  /* to add to the multi handle */
	struct mg_call *cancels; /* to take off it */
	struct mg_origin origins[MG_MAX_ORIGINS];
	int n_origins;
};

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mg_engine *engine;

struct mg_channel {
	const rlm_host_api *host;
	struct mg_engine *e;
	pthread_mutex_t mu; /* guards headers */
	char *base_url;
	char *ca_file;
	int h2c; /* cleartext HTTP/2: loopback http:// only */
	struct curl_slist *headers;
};

enum { CALL_NEW, CALL_QUEUED, CALL_ACTIVE, CALL_DONE };

/* One call. Fields under "engine" are shared with the engine thread (e->mu); the rest
 * belong to the calling thread. */
struct mg_call {
	mg_channel *ch;
	CURL *easy;
	pthread_cond_t cv;
	/* engine */
	int state;
	struct mg_call *next;
	unsigned char *in; /* received, not yet taken by the caller */
	size_t in_len, in_cap;
	int too_big;
	CURLcode cc;
	int cancel;
	int have_status, grpc_status;
	/* the request body, read by curl through mg_on_read */
	const ProtobufCMessage *const *msgs;
	size_t n_msgs, next_msg;
	unsigned char *frame; /* the message being sent, framed */
	size_t frame_len, frame_pos, frame_cap;
	char grpc_message[512];
	double retry_after_s;
	struct mg_origin *origin; /* cleartext only */
	int opener, refused;
	/* caller */
	unsigned char *buf; /* taken bytes, not yet a whole frame */
	size_t len, cap;
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *first;
	mg_message_fn on_message;
	void *ctx;
	int stopped;
	int bad_message;
	int deadline_hit;
	int aborted;                  /* the caller's cancel flag ended it */
	char errbuf[CURL_ERROR_SIZE]; /* curl's own words on a failed transfer */
};

int mg_url_is_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	size_t n;

	h = h ? h + 3 : url;
	n = strcspn(h, ":/");
	if (*h == '[')
		return strncmp(h, "[::1]", 5) == 0;
	return (n == 9 && strncmp(h, "127.0.0.1", 9) == 0) ||
	       (n == 9 && strncasecmp(h, "localhost", 9) == 0);
}

int mg_retryable(int code)
{
	return code == MG_CANCELLED || code == MG_UNKNOWN || code == MG_DEADLINE_EXCEEDED ||
	       code == MG_INTERNAL || code == MG_UNAVAILABLE;
}

int mg_to_rlm(int code)
{
	switch (code) {
	case MG_OK: return 0;
	case MG_UNAUTHENTICATED:
	case MG_PERMISSION_DENIED: return RLM_EAUTH;
	case MG_RESOURCE_EXHAUSTED: return RLM_EQUOTA;
	case MG_NOT_FOUND: return RLM_ENOTFOUND;
	case MG_DEADLINE_EXCEEDED: return RLM_ETIMEOUT;
	case MG_INVALID_ARGUMENT:
	case 11: /* OUT_OF_RANGE */ return RLM_EINVAL;
	case MG_UNIMPLEMENTED: return RLM_ENOTSUP;
	case MG_TRANSPORT: return RLM_EBACKEND;
	case MG_CALLER_CANCELLED: return RLM_ECANCELLED;
	default: return mg_retryable(code) ? RLM_ETRANSIENT : RLM_EBACKEND;
	}
}

/* ---- response parsing (engine thread) -------------------------------------------------- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decodes base64 (padded or not) into out (at least 3/4 of n); returns the length. */
static size_t b64decode(const char *s, size_t n, unsigned char *out)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

/* grpc-status-details-bin: an RPCStatus whose details may hold Modal's RPCRetryPolicy. */
static double retry_after_of(const char *v, size_t n)
{
	unsigned char *raw = malloc(n + 1);
	Modal__Client__RPCStatus *st;
	double after = 0;

	if (!raw)
		return 0;
	st = modal__client__rpcstatus__unpack(NULL, b64decode(v, n, raw), raw);
	for (size_t i = 0; st && i < st->n_details; i++) {
		const char *url = st->details[i]->type_url;
		const char *tail = "modal.client.RPCRetryPolicy";
		size_t ul = strlen(url), tl = strlen(tail);
		if (ul >= tl && strcmp(url + ul - tl, tail) == 0) {
			Modal__Client__RPCRetryPolicy *p = modal__client__rpcretry_policy__unpack(
			        NULL, st->details[i]->value.len, st->details[i]->value.data);
			if (p) {
				after = p->retry_after_secs < 0.1 ? 0.1 : p->retry_after_secs;
				modal__client__rpcretry_policy__free_unpacked(p, NULL);
			}
		}
	}
	if (st)
		modal__client__rpcstatus__free_unpacked(st, NULL);
	free(raw);
	return after;
}

static void release_held(struct mg_engine *e, struct mg_origin *o);

static size_t mg_on_header(char *line, size_t size, size_t nitems, void *ud)
{
	struct mg_call *c = ud;
	struct mg_engine *e = c->ch->e;
	size_t n = size * nitems, name_len;
	const char *colon = memchr(line, ':', n), *v, *end = line + n;

	pthread_mutex_lock(&e->mu);
	if (c->opener && c->origin->state == H2C_OPENING && n > 7 && !strncmp(line, "HTTP/2 ", 7)) {
		c->origin->state = H2C_LIVE; /* the connection answers: the others may ride it */
		release_held(e, c->origin);
	}
	if (!colon)
		goto out;
	name_len = (size_t)(colon - line);
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if (name_len == 11 && strncasecmp(line, "grpc-status", 11) == 0) {
		/* curl's header buffer is not NUL-terminated: parse within [v, end). A status
		 * that is not a plain number is UNKNOWN. */
		int code = v < end ? 0 : -1;
		for (const char *d = v; d < end && code >= 0; d++)
			code = *d >= '0' && *d <= '9' && code < 100000 ? code * 10 + (*d - '0')
			                                               : -1;
		c->have_status = 1;
		c->grpc_status = code >= 0 ? code : MG_UNKNOWN;
	} else if (name_len == 12 && strncasecmp(line, "grpc-message", 12) == 0) {
		int out_len = 0;
		/* (a length of 0 would make curl take strlen() of a buffer without a NUL) */
		char *dec = end > v ? curl_easy_unescape(NULL, v, (int)(end - v), &out_len) : NULL;
		c->grpc_message[0] = 0;
		if (dec) {
			snprintf(c->grpc_message, sizeof(c->grpc_message), "%.*s", out_len, dec);
			curl_free(dec);
		}
	} else if (name_len == 23 && strncasecmp(line, "grpc-status-details-bin", 23) == 0) {
		c->retry_after_s = retry_after_of(v, (size_t)(end - v));
	}
out:
	pthread_mutex_unlock(&e->mu);
	return n;
}

static size_t mg_on_data(char *data, size_t size, size_t nitems, void *ud)
{
	struct mg_call *c = ud;
	struct mg_engine *e = c->ch->e;
	size_t n = size * nitems;

	pthread_mutex_lock(&e->mu);
	if (c->in_len + n > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 16384;
		unsigned char *nb = NULL;
		while (cap < c->in_len + n)
			cap *= 2;
		/* The caller takes the bytes as they come; a backlog this big is a broken peer. */
		if (cap > MG_MAX_MESSAGE + 65536 || !(nb = realloc(c->in, cap))) {
			c->too_big = 1;
			pthread_mutex_unlock(&e->mu);
			return 0;
		}
		c->in = nb;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, data, n);
	c->in_len += n;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&e->mu);
	return n;
}

/* The request body: each message framed when curl wants its bytes (engine thread). */
static size_t mg_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct mg_call *c = ud;
	size_t max = size * nitems, out = 0;

	if (c->opener) {
		/* curl wants the body: the connection is up and carries the request, so the
		 * others may ride it without waiting for the answer (a stream that answers only
		 * when output comes would hold them back). A call that finds no room on it is
		 * refused by mg_open_socket and becomes the next opener. */
		struct mg_engine *e = c->ch->e;
		pthread_mutex_lock(&e->mu);
		if (c->origin->state == H2C_OPENING) {
			c->origin->state = H2C_LIVE;
			release_held(e, c->origin);
		}
		pthread_mutex_unlock(&e->mu);
	}
	while (out < max) {
		if (c->frame_pos == c->frame_len) {
			const ProtobufCMessage *m;
			size_t plen;
			if (c->next_msg == c->n_msgs)
				break;
			m = c->msgs[c->next_msg++];
			plen = protobuf_c_message_get_packed_size(m);
			if (plen + 5 > c->frame_cap) {
				unsigned char *nf = realloc(c->frame, plen + 5);
				if (!nf)
					return CURL_READFUNC_ABORT;
				c->frame = nf;
				c->frame_cap = plen + 5;
			}
			c->frame[0] = 0;
			c->frame[1] = (unsigned char)(plen >> 24);
			c->frame[2] = (unsigned char)(plen >> 16);
			c->frame[3] = (unsigned char)(plen >> 8);
			c->frame[4] = (unsigned char)plen;
			protobuf_c_message_pack(m, c->frame + 5);
			c->frame_len = plen + 5;
			c->frame_pos = 0;
		}
		size_t n = c->frame_len - c->frame_pos;
		if (n > max - out)
			n = max - out;
		memcpy(buf + out, c->frame + c->frame_pos, n);
		c->frame_pos += n;
		out += n;
	}
	return out;
}

/* curl rewinds the body to send it again (a reused connection that turned out dead). */
static int mg_on_seek(void *ud, curl_off_t offset, int origin)
{
	struct mg_call *c = ud;

	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	c->next_msg = 0;
	c->frame_len = c->frame_pos = 0;
	return CURL_SEEKFUNC_OK;
}

/* A cleartext call that may only ride an existing connection refuses to open one. */
static curl_socket_t mg_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct mg_call *c = ud;

	(void)purpose;
	if (c->origin && !c->opener) {
		c->refused = 1; /* engine thread only: read there after the transfer ends */
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ---- the engine thread ----------------------------------------------------------------- */

/* Moves the calls held for o's connection back to the queue (e->mu held). */
static void release_held(struct mg_engine *e, struct mg_origin *o)
{
	if (o->held)
		curl_multi_wakeup(e->multi);
	while (o->held) {
		struct mg_call *c = o->held;
		o->held = c->next;
		c->next = e->queued;
		e->queued = c;
	}
}

/* The call is over: its caller may go on and free it, so it must be on no list (e->mu). */
static void finish(struct mg_engine *e, struct mg_call *c, CURLcode cc)
{
	for (struct mg_call **p = &e->cancels; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->state = CALL_DONE;
	c->cc = cc;
	pthread_cond_signal(&c->cv);
}

/* Adds a queued call to the multi handle, or holds it while its origin connects (e->mu). */
static void activate(struct mg_engine *e, struct mg_call *c)
{
	struct mg_origin *o = c->origin;

	if (c->cancel) {
		finish(e, c, CURLE_ABORTED_BY_CALLBACK);
		return;
	}
	mg_on_seek(c, 0, SEEK_SET); /* (again, for a call queued again) the body from its start */
	if (o) {
		if (o->state == H2C_OPENING) {
			c->next = o->held;
			o->held = c;
			return;
		}
		c->opener = o->state == H2C_NONE;
		c->refused = 0;
		if (c->opener)
			o->state = H2C_OPENING;
		curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION,
		                 c->opener ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
		                           : CURL_HTTP_VERSION_2_0);
		/* Prior knowledge must never ride an existing connection (the 7.88 bug above):
		 * the opener is here because no connection had room, or none is left, so a new
		 * one is what it needs even when a stream on the old one has ended since. */
		curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, c->opener ? 1L : 0L);
	}
	if (curl_multi_add_handle(e->multi, c->easy) != CURLM_OK) {
		if (o && c->opener) {
			o->state = H2C_NONE;
			release_held(e, o);
		}
		finish(e, c, CURLE_FAILED_INIT);
		return;
	}
	c->state = CALL_ACTIVE;
}

/* A transfer ended (e->mu held). */
static void transfer_done(struct mg_engine *e, struct mg_call *c, CURLcode cc)
{
	struct mg_origin *o = c->origin;

	curl_multi_remove_handle(e->multi, c->easy);
	if (o && c->opener && o->state == H2C_OPENING) {
		o->state = H2C_NONE; /* it never got an answer: let the next one try */
		release_held(e, o);
	}
	if (o && c->refused && !c->cancel) {
		/* No connection to ride (gone, or full): nothing was sent, so go again as the
		 * origin's opener. */
		if (o->state == H2C_LIVE)
			o->state = H2C_NONE;
		c->state = CALL_QUEUED;
		c->next = e->queued;
		e->queued = c;
		curl_multi_wakeup(e->multi);
		return;
	}
	finish(e, c, cc);
}

static void *engine_main(void *arg)
{
	struct mg_engine *e = arg;
	int running = 0;

	for (;;) {
		CURLMsg *msg;
		int left;

		pthread_mutex_lock(&e->mu);
		if (e->stop && !running && !e->queued) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		while (e->cancels) {
			struct mg_call *c = e->cancels;
			e->cancels = c->next;
			if (c->state == CALL_ACTIVE) {
				curl_multi_remove_handle(e->multi, c->easy);
				if (c->origin && c->opener && c->origin->state == H2C_OPENING) {
					c->origin->state = H2C_NONE;
					release_held(e, c->origin);
				}
				finish(e, c, CURLE_ABORTED_BY_CALLBACK);
			}
		}
		while (e->queued) {
			struct mg_call *c = e->queued;
			e->queued = c->next;
			activate(e, c);
		}
		pthread_mutex_unlock(&e->mu);
		curl_multi_perform(e->multi, &running);
		while ((msg = curl_multi_info_read(e->multi, &left))) {
			struct mg_call *c = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			pthread_mutex_lock(&e->mu);
			transfer_done(e, c, msg->data.result);
			pthread_mutex_unlock(&e->mu);
		}
		curl_multi_poll(e->multi, NULL, 0, 1000, NULL);
	}
	return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static struct mg_engine *engine_acquire(void)
{
	struct mg_engine *e;

	pthread_once(&curl_once, curl_init_once);
	if (!curl_ok)
		return NULL;
	pthread_mutex_lock(&engine_lock);
	if ((e = engine)) {
		e->refs++;
		pthread_mutex_unlock(&engine_lock);
		return e;
	}
	if (!(e = calloc(1, sizeof(*e))) || !(e->multi = curl_multi_init())) {
		free(e);
		pthread_mutex_unlock(&engine_lock);
		return NULL;
	}
	pthread_mutex_init(&e->mu, NULL);
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		curl_multi_cleanup(e->multi);
		pthread_mutex_destroy(&e->mu);
		free(e);
		pthread_mutex_unlock(&engine_lock);
		return NULL;
	}
	e->refs = 1;
	engine = e;
	pthread_mutex_unlock(&engine_lock);
	return e;
}

/* With its last channel the engine stops, so the plugin can be unloaded. */
static void engine_release(struct mg_engine *e)
{
	pthread_mutex_lock(&engine_lock);
	if (--e->refs > 0) {
		pthread_mutex_unlock(&engine_lock);
		return;
	}
	engine = NULL;
	pthread_mutex_unlock(&engine_lock);
	pthread_mutex_lock(&e->mu);
	e->stop = 1;
	pthread_mutex_unlock(&e->mu);
	curl_multi_wakeup(e->multi);
	pthread_join(e->thread, NULL);
	curl_multi_cleanup(e->multi);
	for (int i = 0; i < e->n_origins; i++)
		free(e->origins[i].base);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

/* The cleartext origin of base (e->mu held); NULL when the table is full (then every call
 * connects with prior knowledge and no reuse, which is slow but correct). */
static struct mg_origin *origin_of(struct mg_engine *e, const char *base)
{
	for (int i = 0; i < e->n_origins; i++)
		if (strcmp(e->origins[i].base, base) == 0)
			return &e->origins[i];
	if (e->n_origins == MG_MAX_ORIGINS || !(e->origins[e->n_origins].base = strdup(base)))
		return NULL;
	e->origins[e->n_origins].state = H2C_NONE;
	return &e->origins[e->n_origins++];
}

/* ---- channels -------------------------------------------------------------------------- */

static struct curl_slist *mg_build_headers(const char *const *extra)
{
	/* te: trailers as gRPC asks; whether Modal's front end refuses a request without it is
	 * UNVERIFIED, and libcurl 8.12-8.13 would drop it (curl issue 17122): 7.88 keeps it. */
	static const char *const fixed[] = {"content-type: application/grpc", "te: trailers",
	                                    "Accept:", "Expect:", NULL};
	struct curl_slist *l = NULL, *t;

	for (int i = 0; fixed[i]; i++) {
		if (!(t = curl_slist_append(l, fixed[i])))
			goto fail;
		l = t;
	}
	for (int i = 0; extra && extra[i]; i++) {
		if (!(t = curl_slist_append(l, extra[i])))
			goto fail;
		l = t;
	}
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

mg_channel *mg_channel_new(const rlm_host_api *host, const char *base_url,
                           const char *const *headers, const char *ca_file)
{
	mg_channel *ch = host->alloc(sizeof(*ch));
	size_t n = strlen(base_url);

	if (!ch)
		return NULL;
	memset(ch, 0, sizeof(*ch));
	ch->host = host;
	pthread_mutex_init(&ch->mu, NULL);
	while (n && base_url[n - 1] == '/')
		n--;
	ch->base_url = host->alloc(n + 1);
	ch->headers = mg_build_headers(headers);
	if (ca_file && *ca_file && (ch->ca_file = host->alloc(strlen(ca_file) + 1)))
		strcpy(ch->ca_file, ca_file);
	if (!ch->base_url || !ch->headers || (ca_file && *ca_file && !ch->ca_file) ||
	    !(ch->e = engine_acquire())) {
		mg_channel_free(ch);
		return NULL;
	}
	memcpy(ch->base_url, base_url, n);
	ch->base_url[n] = 0;
	ch->h2c = mg_url_is_loopback(ch->base_url) && strncmp(ch->base_url, "http://", 7) == 0;
	return ch;
}

int mg_channel_set_headers(mg_channel *ch, const char *const *headers)
{
	struct curl_slist *l = mg_build_headers(headers), *old;

	if (!l)
		return RLM_ENOMEM;
	pthread_mutex_lock(&ch->mu);
	old = ch->headers;
	ch->headers = l;
	pthread_mutex_unlock(&ch->mu);
	curl_slist_free_all(old);
	return 0;
}

void mg_channel_free(mg_channel *ch)
{
	if (!ch)
		return;
	if (ch->e)
		engine_release(ch->e);
	curl_slist_free_all(ch->headers);
	pthread_mutex_destroy(&ch->mu);
	ch->host->free(ch->base_url);
	ch->host->free(ch->ca_file);
	ch->host->free(ch);
}

/* ---- calls (calling thread) ------------------------------------------------------------ */

/* RLM_MODAL_CURL_VERBOSE: curl's trace on stderr, text only, with the values of the token
 * and bearer headers masked (the trace prints every request header). */
static int mg_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	static const char *const secret[] = {"x-modal-token-secret", "authorization",
	                                     "x-modal-auth-token", NULL};
	const char *prefix = type == CURLINFO_TEXT         ? "* "
	                     : type == CURLINFO_HEADER_IN  ? "< "
	                     : type == CURLINFO_HEADER_OUT ? "> "
	                                                   : NULL;
	const char *p = data, *end = data + size;

	(void)h, (void)ud;
	if (!prefix)
		return 0; /* bodies are protobuf */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int masked = 0;
		for (int i = 0; secret[i] && !masked; i++) {
			size_t k = strlen(secret[i]);
			/* "name: value" lines, and curl's "h2h3 [name: value]" ones */
			const char *q = n > 6 && !strncmp(p, "h2h3 [", 6) ? p + 6 : p;
			if ((size_t)(p + n - q) > k && !strncasecmp(q, secret[i], k) &&
			    q[k] == ':') {
				fprintf(stderr, "%s%.*s: ***%s\n", prefix, (int)(q + k - p), p,
				        q != p ? "]" : "");
				masked = 1;
			}
		}
		if (!masked && n)
			fprintf(stderr, "%s%.*s\n", prefix,
			        (int)(n > 0 && p[n - 1] == '\r' ? n - 1 : n), p);
		p += n + 1;
	}
	return 0;
}

/* Delivers every complete frame in c->buf. Returns 0, or -1 to stop the call. */
static int mg_drain_frames(struct mg_call *c)
{
	size_t pos = 0;
	int rc = 0;

	while (c->len - pos >= 5) {
		const unsigned char *f = c->buf + pos;
		uint32_t mlen = ((uint32_t)f[1] << 24) | ((uint32_t)f[2] << 16) |
		                ((uint32_t)f[3] << 8) | (uint32_t)f[4];
		ProtobufCMessage *m;

		if (f[0] != 0 || mlen > MG_MAX_MESSAGE) { /* compression is never negotiated */
			c->bad_message = 1;
			rc = -1;
			break;
		}
		if (c->len - pos - 5 < mlen)
			break;
		m = protobuf_c_message_unpack(c->desc, NULL, mlen, f + 5);
		pos += 5 + (size_t)mlen;
		if (!m) {
			c->bad_message = 1;
			rc = -1;
			break;
		}
		if (!c->on_message) {
			if (!c->first)
				c->first = m;
			else
				protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		if (c->on_message(c->ctx, m)) {
			protobuf_c_message_free_unpacked(m, NULL);
			c->stopped = 1;
			rc = -1;
			break;
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	memmove(c->buf, c->buf + pos, c->len - pos);
	c->len -= pos;
	return rc;
}

/* Appends the engine's bytes to the caller's buffer (e->mu held). 0 or -1 (no memory). */
static int take_bytes(struct mg_call *c)
{
	if (c->len + c->in_len > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		unsigned char *nb;
		while (cap < c->len + c->in_len)
			cap *= 2;
		if (!(nb = realloc(c->buf, cap)))
			return -1;
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, c->in, c->in_len);
	c->len += c->in_len;
	c->in_len = 0;
	return 0;
}

/* Asks the engine to drop the call and waits until it has (e->mu held). */
static void cancel_and_wait(struct mg_engine *e, struct mg_call *c)
{
	c->cancel = 1;
	if (c->state == CALL_ACTIVE) {
		c->next = e->cancels;
		e->cancels = c;
	}
	/* held for an opener that may take its connect timeout: done now, at the deadline */
	for (struct mg_call **p = c->origin ? &c->origin->held : NULL; p && *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			finish(e, c, CURLE_ABORTED_BY_CALLBACK);
			break;
		}
	curl_multi_wakeup(e->multi); /* a queued call is finished when the engine takes it */
	while (c->state != CALL_DONE)
		pthread_cond_wait(&c->cv, &e->mu);
}

/* Queues the call and feeds the frames to it as they come, until the transfer ends, a
 * callback stops it, the deadline passes or *cancel is set. */
static void run_call(mg_channel *ch, struct mg_call *c, double deadline, const volatile int *cancel)
{
	struct mg_engine *e = ch->e;

	pthread_mutex_lock(&e->mu);
	c->origin = ch->h2c ? origin_of(e, ch->base_url) : NULL;
	c->state = CALL_QUEUED;
	c->next = e->queued;
	e->queued = c;
	curl_multi_wakeup(e->multi);
	for (;;) {
		if (c->in_len) {
			int stop = take_bytes(c) ? (c->bad_message = 1) : 0;
			pthread_mutex_unlock(&e->mu);
			if (!stop)
				stop = mg_drain_frames(c);
			pthread_mutex_lock(&e->mu);
			if (stop) {
				cancel_and_wait(e, c);
				break;
			}
			continue;
		}
		if (c->state == CALL_DONE)
			break;
		if (cancel && *cancel) {
			c->aborted = 1;
			cancel_and_wait(e, c);
			break;
		}
		double left = deadline - ch->host->now(), slice = cancel ? 0.05 : 1.0;
		if (left <= 0) {
			c->deadline_hit = 1;
			cancel_and_wait(e, c);
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (left > slice)
			left = slice;
		ts.tv_sec += (time_t)left;
		ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
}

/* Transfer failures that no retry can fix: a certificate that does not verify, a CA file that
 * cannot be read, a scheme this channel refuses, a malformed URL. */
static int permanent(CURLcode cc)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT: return 1;
	default: return 0;
	}
}

static int mg_perform(mg_channel *ch, const char *path, const ProtobufCMessage *const *msgs,
                      size_t n_msgs, const char *const *extra, const mg_bounds *b,
                      struct mg_call *c, mg_status *st)
{
	char *url = malloc(strlen(ch->base_url) + strlen(path) + 1);
	char tmo[64];
	struct curl_slist *hdrs = NULL, *t;
	double left = b->deadline - ch->host->now();
	long ms = left > 0 ? (long)(left * 1000.0) + 1 : 0;
	curl_off_t body_len = 0;
	long httpver = 0;
	int oom = 0;

	memset(st, 0, sizeof(*st));
	c->ch = ch;
	if (b->deadline <= 0) { /* every call has a deadline: a caller without one is a bug */
		free(url);
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "%s called without a deadline", path);
		return st->code;
	}
	if (b->cancel && *b->cancel) {
		free(url);
		st->code = MG_CALLER_CANCELLED;
		snprintf(st->message, sizeof(st->message), "cancelled");
		return st->code;
	}
	if (ms <= 0) {
		free(url);
		st->code = MG_DEADLINE_EXCEEDED;
		snprintf(st->message, sizeof(st->message), "deadline exceeded");
		return st->code;
	}
	if (!url || !(c->easy = curl_easy_init()))
		goto oom;
	pthread_cond_init(&c->cv, NULL);
	c->msgs = msgs;
	c->n_msgs = n_msgs;
	for (size_t i = 0; i < n_msgs; i++)
		body_len += (curl_off_t)protobuf_c_message_get_packed_size(msgs[i]) + 5;
	strcpy(url, ch->base_url);
	strcat(url, path);
	/* the channel's headers, this call's extra ones and its grpc-timeout, on a copy */
	pthread_mutex_lock(&ch->mu);
	for (struct curl_slist *l = ch->headers; l && !oom; l = l->next)
		if ((t = curl_slist_append(hdrs, l->data)))
			hdrs = t;
		else
			oom = 1;
	pthread_mutex_unlock(&ch->mu);
	for (int i = 0; extra && extra[i] && !oom; i++)
		if ((t = curl_slist_append(hdrs, extra[i])))
			hdrs = t;
		else
			oom = 1;
	if (!oom) {
		/* at most 8 digits, in milliseconds or, for longer deadlines, seconds */
		if (ms <= 99999999L)
			snprintf(tmo, sizeof(tmo), "grpc-timeout: %ldm", ms);
		else
			snprintf(tmo, sizeof(tmo), "grpc-timeout: %ldS", ms / 1000 + 1);
		if ((t = curl_slist_append(hdrs, tmo)))
			hdrs = t;
		else
			oom = 1;
	}
	if (oom) {
		pthread_cond_destroy(&c->cv);
		goto oom;
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (char *)c);
	curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(c->easy, CURLOPT_READFUNCTION, mg_on_read);
	curl_easy_setopt(c->easy, CURLOPT_READDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_SEEKFUNCTION, mg_on_seek);
	curl_easy_setopt(c->easy, CURLOPT_SEEKDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, body_len);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION,
	                 ch->h2c ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS);
	/* cleartext only to loopback; TLS (ALPN h2, verified) everywhere else */
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, ch->h2c ? "http" : "https");
	if (ch->ca_file)
		curl_easy_setopt(c->easy, CURLOPT_CAINFO, ch->ca_file);
	curl_easy_setopt(c->easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	if (getenv("RLM_MODAL_CURL_VERBOSE")) {
		curl_easy_setopt(c->easy, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c->easy, CURLOPT_DEBUGFUNCTION, mg_debug);
	}
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, ms < 10000 ? ms : 10000L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, ms + 2000);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, mg_on_data);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, mg_on_header);
	curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, mg_open_socket);
	curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, c);
	run_call(ch, c, b->deadline, b->cancel);
	curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &httpver);
	if (c->stopped) {
		st->code = MG_STOPPED;
	} else if (c->aborted) {
		st->code = MG_CALLER_CANCELLED;
		snprintf(st->message, sizeof(st->message), "cancelled");
	} else if (c->deadline_hit || c->cc == CURLE_OPERATION_TIMEDOUT) {
		st->code = MG_DEADLINE_EXCEEDED;
		snprintf(st->message, sizeof(st->message), "deadline exceeded");
	} else if (c->bad_message || c->too_big) {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "malformed gRPC message from %s", path);
	} else if (c->have_status) {
		st->code = c->grpc_status;
		snprintf(st->message, sizeof(st->message), "%s", c->grpc_message);
	} else if (c->cc != CURLE_OK) {
		/* No status: the connection failed or was reset (retried), or could never work. */
		st->code = permanent(c->cc) ? MG_TRANSPORT : MG_UNAVAILABLE;
		snprintf(st->message, sizeof(st->message), "%s",
		         *c->errbuf ? c->errbuf : curl_easy_strerror(c->cc));
	} else if (httpver != CURL_HTTP_VERSION_2_0) {
		st->code = MG_UNAVAILABLE;
		snprintf(st->message, sizeof(st->message), "server did not speak HTTP/2");
	} else {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "no grpc-status in the response");
	}
	st->retry_after_s = c->retry_after_s;
	curl_easy_cleanup(c->easy);
	pthread_cond_destroy(&c->cv);
	curl_slist_free_all(hdrs);
	free(c->in);
	free(c->buf);
	free(c->frame);
	free(url);
	return st->code;
oom:
	if (c->easy)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(hdrs);
	free(url);
	st->code = MG_INTERNAL;
	snprintf(st->message, sizeof(st->message), "out of memory");
	return st->code;
}

static int mg_one_answer(mg_channel *ch, const char *path, const ProtobufCMessage *const *reqs,
                         size_t n, const char *const *extra,
                         const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                         const mg_bounds *b, mg_status *st)
{
	struct mg_call c;

	memset(&c, 0, sizeof(c));
	c.desc = resp_desc;
	*resp = NULL;
	mg_perform(ch, path, reqs, n, extra, b, &c, st);
	if (st->code == MG_OK && !c.first) {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "%s answered no message", path);
	}
	if (st->code == MG_OK)
		*resp = c.first;
	else if (c.first)
		protobuf_c_message_free_unpacked(c.first, NULL);
	return st->code;
}

int mg_unary(mg_channel *ch, const char *path, const ProtobufCMessage *req,
             const char *const *extra, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, const mg_bounds *b, mg_status *st)
{
	return mg_one_answer(ch, path, &req, 1, extra, resp_desc, resp, b, st);
}

int mg_client_stream(mg_channel *ch, const char *path, const ProtobufCMessage *const *reqs,
                     size_t n, const char *const *extra,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                     const mg_bounds *b, mg_status *st)
{
	return mg_one_answer(ch, path, reqs, n, extra, resp_desc, resp, b, st);
}

int mg_stream(mg_channel *ch, const char *path, const ProtobufCMessage *req,
              const char *const *extra, const ProtobufCMessageDescriptor *resp_desc,
              const mg_bounds *b, mg_message_fn on_message, void *ctx, mg_status *st)
{
	struct mg_call c;

	memset(&c, 0, sizeof(c));
	c.desc = resp_desc;
	c.on_message = on_message;
	c.ctx = ctx;
	return mg_perform(ch, path, &req, 1, extra, b, &c, st);
}
