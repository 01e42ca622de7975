/* grpc.h - a small gRPC client over libcurl's HTTP/2, for the Modal backend.
 *
 * Every call of every channel in the process goes through one engine: a thread that drives a
 * curl multi handle, so calls to the same host share one HTTP/2 connection (multiplexed
 * streams), however many sandboxes and threads make them. Callers block in mg_unary() or
 * mg_stream(); received bytes are handed to the calling thread, which parses the 5-byte
 * frames and runs the message callbacks itself, so a callback may make further calls (a
 * nested exchange) without stalling the engine. Cleartext HTTP/2 with prior knowledge is used
 * only for loopback hosts, TLS with ALPN h2 otherwise. Messages are protobuf-c; status comes
 * from grpc-status/grpc-message in the trailers (or the headers of a trailers-only answer).
 * Channels are thread-safe: several threads may call through one channel at once.
 *
 * Every call has a deadline (mg_bounds): there is no way to make a call that may wait for ever.
 * A call may also watch a cancel flag, which ends it within about 50 ms. */
#ifndef RLM_MODAL_GRPC_H
#define RLM_MODAL_GRPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "rlm/plugin.h"

/* gRPC status codes used by name. */
enum {
	MG_OK = 0,
	MG_CANCELLED = 1,
	MG_UNKNOWN = 2,
	MG_INVALID_ARGUMENT = 3,
	MG_DEADLINE_EXCEEDED = 4,
	MG_NOT_FOUND = 5,
	MG_PERMISSION_DENIED = 7,
	MG_RESOURCE_EXHAUSTED = 8,
	MG_FAILED_PRECONDITION = 9,
	MG_ABORTED = 10,
	MG_UNIMPLEMENTED = 12,
	MG_INTERNAL = 13,
	MG_UNAVAILABLE = 14,
	MG_UNAUTHENTICATED = 16,
	MG_STOPPED = 1000,          /* not gRPC: the message callback asked to stop the stream */
	MG_TRANSPORT = 1001,        /* not gRPC: a transport failure retrying cannot fix (TLS
	                             * verification, a refused scheme, a bad URL) */
	MG_CALLER_CANCELLED = 1002, /* not gRPC: the caller's cancel flag was set */
};

/* What bounds a call: it ends by deadline (host->now() value; required, > 0: a call without
 * one fails at once with MG_INTERNAL), sent to the server as grpc-timeout too; and, when cancel
 * is not NULL, within about 50 ms of *cancel becoming non-zero (MG_CALLER_CANCELLED). */
typedef struct mg_bounds {
	double deadline;
	const volatile int *cancel;
} mg_bounds;

/* The outcome of one call: a gRPC status code, its message, and a server-directed retry
 * delay (RPCRetryPolicy detail; 0 when none). */
typedef struct mg_status {
	int code;
	char message[512];
	double retry_after_s;
} mg_status;

typedef struct mg_channel mg_channel;

/* Creates a channel to base_url ("https://host[:port]" or "http://127.0.0.1:port"). headers
 * (NULL-terminated "name: value" lines, copied) go on every call. ca_file (may be NULL)
 * replaces the system CA bundle for TLS. Returns NULL on failure (out of memory, or the
 * engine thread could not start). */
mg_channel *mg_channel_new(const rlm_host_api *host, const char *base_url,
                           const char *const *headers, const char *ca_file);
/* Replaces the channel's metadata (e.g. a refreshed bearer token). 0 or RLM_ENOMEM. */
int mg_channel_set_headers(mg_channel *ch, const char *const *headers);
/* Frees the channel; no call may be running on it. The engine stops with its last channel. */
void mg_channel_free(mg_channel *ch);
/* 1 when url's host is 127.0.0.1, ::1 or localhost. */
int mg_url_is_loopback(const char *url);

/* One unary call: path is "/pkg.Service/Method"; extra (NULL or NULL-terminated "name:
 * value" lines) goes with this call only. On MG_OK *resp is the unpacked answer (free with
 * protobuf_c_message_free_unpacked). Returns st->code. */
int mg_unary(mg_channel *ch, const char *path, const ProtobufCMessage *req,
             const char *const *extra, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, const mg_bounds *b, mg_status *st);

/* A client-streaming call: the n messages of reqs are sent in order as one request stream
 * (packed one at a time as the transfer needs them, so their data is not copied whole), then
 * the one answer is read as for mg_unary. */
int mg_client_stream(mg_channel *ch, const char *path, const ProtobufCMessage *const *reqs,
                     size_t n, const char *const *extra,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                     const mg_bounds *b, mg_status *st);

/* Receives each message of a server stream, unpacked (freed after the callback returns).
 * Runs on the calling thread. Non-zero stops the stream (st->code MG_STOPPED). */
typedef int (*mg_message_fn)(void *ctx, const ProtobufCMessage *msg);

/* A server-streaming call, ended by the server (its status), the callback, the deadline
 * (MG_DEADLINE_EXCEEDED) or the cancel flag (MG_CALLER_CANCELLED). Returns st->code. */
int mg_stream(mg_channel *ch, const char *path, const ProtobufCMessage *req,
              const char *const *extra, const ProtobufCMessageDescriptor *resp_desc,
              const mg_bounds *b, mg_message_fn on_message, void *ctx, mg_status *st);

/* 1 for codes a client retries (CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
 * UNAVAILABLE). */
int mg_retryable(int code);
/* The rlm_status for a failed gRPC code (MG_CALLER_CANCELLED: RLM_ECANCELLED). */
int mg_to_rlm(int code);

#endif /* RLM_MODAL_GRPC_H */
