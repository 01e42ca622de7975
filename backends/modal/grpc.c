/* grpc.c - gRPC unary and server-streaming calls over libcurl's HTTP/2 (see grpc.h).
 *
 * A call is one POST of a 5-byte-framed protobuf message with content-type application/grpc
 * and te: trailers. The answer's DATA is parsed frame by frame as it arrives (frames may
 * straddle curl's write callbacks); grpc-status, grpc-message and grpc-status-details-bin are
 * read from whatever header lines curl hands over, which for HTTP/2 includes the trailers. */
#include "grpc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modal.pb-c.h"

#define MG_MAX_MESSAGE        (100u << 20) /* the SDKs' limit */
#define MG_MAX_NESTED_STREAMS 16

struct mg_channel {
	const rlm_host_api *host;
	char *base_url;
	int loopback;
	struct curl_slist *headers;
	CURL *unary;
	CURL *streams[MG_MAX_NESTED_STREAMS]; /* one per nesting level, created when needed */
	int depth;                            /* streams running (a callback may open one) */
	const char *const *call_headers;      /* extra headers of the next calls, not owned */
};

/* The state of one call while curl runs it. */
struct mg_call {
	mg_channel *ch;
	unsigned char *buf; /* undelivered response bytes */
	size_t len, cap;
	int have_status;
	int grpc_status;
	char grpc_message[512];
	double retry_after_s;
	int http_version_ok;
	/* unary: the first message; stream: each message goes to on_message */
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *first;
	mg_message_fn on_message;
	void *ctx;
	int stopped;
	int bad_message;
	double deadline;
	int deadline_hit;
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

static struct curl_slist *mg_build_headers(const char *const *extra)
{
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
                           const char *const *headers)
{
	mg_channel *ch = host->alloc(sizeof(*ch));
	size_t n = strlen(base_url);

	if (!ch)
		return NULL;
	memset(ch, 0, sizeof(*ch));
	ch->host = host;
	while (n && base_url[n - 1] == '/')
		n--;
	ch->base_url = host->alloc(n + 1);
	ch->unary = curl_easy_init();
	ch->headers = mg_build_headers(headers);
	if (!ch->base_url || !ch->unary || !ch->headers) {
		mg_channel_free(ch);
		return NULL;
	}
	memcpy(ch->base_url, base_url, n);
	ch->base_url[n] = 0;
	ch->loopback = mg_url_is_loopback(ch->base_url);
	return ch;
}

int mg_channel_set_headers(mg_channel *ch, const char *const *headers)
{
	struct curl_slist *l = mg_build_headers(headers);

	if (!l)
		return RLM_ENOMEM;
	curl_slist_free_all(ch->headers);
	ch->headers = l;
	return 0;
}

void mg_channel_free(mg_channel *ch)
{
	if (!ch)
		return;
	if (ch->unary)
		curl_easy_cleanup(ch->unary);
	for (int i = 0; i < MG_MAX_NESTED_STREAMS; i++)
		if (ch->streams[i])
			curl_easy_cleanup(ch->streams[i]);
	curl_slist_free_all(ch->headers);
	ch->host->free(ch->base_url);
	ch->host->free(ch);
}

void mg_channel_set_call_headers(mg_channel *ch, const char *const *headers)
{
	ch->call_headers = headers;
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
	case 3: /* INVALID_ARGUMENT */
	case 11: /* OUT_OF_RANGE */ return RLM_EINVAL;
	case 12: /* UNIMPLEMENTED */ return RLM_ENOTSUP;
	default: return mg_retryable(code) ? RLM_ETRANSIENT : RLM_EBACKEND;
	}
}

/* ---- response parsing ------------------------------------------------------------------ */

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
static void mg_parse_details(struct mg_call *c, const char *v, size_t n)
{
	unsigned char *raw = malloc(n + 1);
	Modal__Client__RPCStatus *st;

	if (!raw)
		return;
	st = modal__client__rpcstatus__unpack(NULL, b64decode(v, n, raw), raw);
	for (size_t i = 0; st && i < st->n_details; i++) {
		const char *url = st->details[i]->type_url;
		const char *tail = "modal.client.RPCRetryPolicy";
		size_t ul = strlen(url), tl = strlen(tail);
		if (ul >= tl && strcmp(url + ul - tl, tail) == 0) {
			Modal__Client__RPCRetryPolicy *p = modal__client__rpcretry_policy__unpack(
			        NULL, st->details[i]->value.len, st->details[i]->value.data);
			if (p) {
				c->retry_after_s =
				        p->retry_after_secs < 0.1 ? 0.1 : p->retry_after_secs;
				modal__client__rpcretry_policy__free_unpacked(p, NULL);
			}
		}
	}
	if (st)
		modal__client__rpcstatus__free_unpacked(st, NULL);
	free(raw);
}

static size_t mg_on_header(char *line, size_t size, size_t nitems, void *ud)
{
	struct mg_call *c = ud;
	size_t n = size * nitems, name_len;
	const char *colon = memchr(line, ':', n), *v, *end = line + n;

	if (!colon)
		return n;
	name_len = (size_t)(colon - line);
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if (name_len == 11 && strncasecmp(line, "grpc-status", 11) == 0) {
		c->have_status = 1;
		c->grpc_status = atoi(v);
	} else if (name_len == 12 && strncasecmp(line, "grpc-message", 12) == 0) {
		int out_len = 0;
		char *dec = curl_easy_unescape(NULL, v, (int)(end - v), &out_len);
		if (dec) {
			snprintf(c->grpc_message, sizeof(c->grpc_message), "%.*s", out_len, dec);
			curl_free(dec);
		}
	} else if (name_len == 23 && strncasecmp(line, "grpc-status-details-bin", 23) == 0) {
		mg_parse_details(c, v, (size_t)(end - v));
	}
	return n;
}

/* Delivers every complete frame in c->buf. Returns 0, or -1 to abort the transfer. */
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

static size_t mg_on_data(char *data, size_t size, size_t nitems, void *ud)
{
	struct mg_call *c = ud;
	size_t n = size * nitems;

	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		unsigned char *nb;
		while (cap < c->len + n)
			cap *= 2;
		if (cap > MG_MAX_MESSAGE + 4096 || !(nb = realloc(c->buf, cap)))
			return 0;
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	return mg_drain_frames(c) ? 0 : n;
}

static int mg_on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct mg_call *c = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	if (c->deadline > 0 && c->ch->host->now() > c->deadline) {
		c->deadline_hit = 1;
		return 1;
	}
	return 0;
}

/* ---- calls ----------------------------------------------------------------------------- */

static int mg_perform(mg_channel *ch, CURL *h, const char *path, const ProtobufCMessage *req,
                      double timeout_s, struct mg_call *c, mg_status *st)
{
	size_t plen = protobuf_c_message_get_packed_size(req);
	unsigned char *body = malloc(plen + 5);
	char *url = malloc(strlen(ch->base_url) + strlen(path) + 1);
	char tmo[64];
	struct curl_slist *hdrs = NULL, *t;
	long ms = timeout_s > 0 ? (long)(timeout_s * 1000.0) + 1 : 0;
	long httpver = 0;
	CURLcode cc;

	memset(st, 0, sizeof(*st));
	if (!body || !url) {
		free(body);
		free(url);
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "out of memory");
		return st->code;
	}
	body[0] = 0;
	body[1] = (unsigned char)(plen >> 24);
	body[2] = (unsigned char)(plen >> 16);
	body[3] = (unsigned char)(plen >> 8);
	body[4] = (unsigned char)plen;
	protobuf_c_message_pack(req, body + 5);
	strcpy(url, ch->base_url);
	strcat(url, path);
	/* the channel's headers plus this call's grpc-timeout, on a copy */
	for (struct curl_slist *l = ch->headers; l; l = l->next) {
		if (!(t = curl_slist_append(hdrs, l->data)))
			goto oom;
		hdrs = t;
	}
	for (int i = 0; ch->call_headers && ch->call_headers[i]; i++) {
		if (!(t = curl_slist_append(hdrs, ch->call_headers[i])))
			goto oom;
		hdrs = t;
	}
	if (ms > 0) {
		snprintf(tmo, sizeof(tmo), "grpc-timeout: %ldm", ms);
		if (!(t = curl_slist_append(hdrs, tmo)))
			goto oom;
		hdrs = t;
	}
	/* Every option is set on every call: curl_easy_reset() would make curl 7.88 fail the next
	 * request on the kept HTTP/2 connection ("Error in the HTTP2 framing layer"). */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, (char *)body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(plen + 5));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
	                 ch->loopback ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
	                              : CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (getenv("RLM_MODAL_CURL_VERBOSE"))
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms > 0 ? ms + 2000 : 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mg_on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, mg_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, mg_on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &httpver);
	if (c->stopped) {
		st->code = MG_STOPPED;
	} else if (c->deadline_hit || cc == CURLE_OPERATION_TIMEDOUT) {
		st->code = MG_DEADLINE_EXCEEDED;
		snprintf(st->message, sizeof(st->message), "deadline exceeded");
	} else if (c->bad_message) {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "malformed gRPC message from %s", path);
	} else if (c->have_status) {
		st->code = c->grpc_status;
		snprintf(st->message, sizeof(st->message), "%s", c->grpc_message);
	} else if (cc != CURLE_OK) {
		st->code = MG_UNAVAILABLE; /* no status: the connection failed or was reset */
		snprintf(st->message, sizeof(st->message), "%s", curl_easy_strerror(cc));
	} else if (httpver != CURL_HTTP_VERSION_2_0) {
		st->code = MG_UNAVAILABLE;
		snprintf(st->message, sizeof(st->message), "server did not speak HTTP/2");
	} else {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "no grpc-status in the response");
	}
	st->retry_after_s = c->retry_after_s;
	curl_slist_free_all(hdrs);
	free(body);
	free(url);
	return st->code;
oom:
	curl_slist_free_all(hdrs);
	free(body);
	free(url);
	st->code = MG_INTERNAL;
	snprintf(st->message, sizeof(st->message), "out of memory");
	return st->code;
}

int mg_unary(mg_channel *ch, const char *path, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, double timeout_s,
             mg_status *st)
{
	struct mg_call c;

	memset(&c, 0, sizeof(c));
	c.ch = ch;
	c.desc = resp_desc;
	*resp = NULL;
	mg_perform(ch, ch->unary, path, req, timeout_s, &c, st);
	if (st->code == MG_OK && !c.first) {
		st->code = MG_INTERNAL;
		snprintf(st->message, sizeof(st->message), "%s answered no message", path);
	}
	if (st->code == MG_OK)
		*resp = c.first;
	else if (c.first)
		protobuf_c_message_free_unpacked(c.first, NULL);
	free(c.buf);
	return st->code;
}

int mg_stream(mg_channel *ch, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, double timeout_s, double deadline,
              mg_message_fn on_message, void *ctx, mg_status *st)
{
	struct mg_call c;

	memset(&c, 0, sizeof(c));
	c.ch = ch;
	c.desc = resp_desc;
	c.on_message = on_message;
	c.ctx = ctx;
	c.deadline = deadline;
	if (ch->depth >= MG_MAX_NESTED_STREAMS ||
	    (!ch->streams[ch->depth] && !(ch->streams[ch->depth] = curl_easy_init()))) {
		memset(st, 0, sizeof(*st));
		st->code = MG_RESOURCE_EXHAUSTED;
		snprintf(st->message, sizeof(st->message), "too many nested streams");
		return st->code;
	}
	ch->depth++;
	mg_perform(ch, ch->streams[ch->depth - 1], path, req, timeout_s, &c, st);
	ch->depth--;
	free(c.buf);
	return st->code;
}
