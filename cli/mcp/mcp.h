/* mcp.h - `rlm mcp`, the MCP server: the pieces its files share.
 *
 * mcp_main.c parses the options, builds the config, installs the signal handling and runs one
 * transport (mcp_stdio.c or mcp_http.c) until a signal, stdin's end or a fatal error. Both
 * transports hand every JSON-RPC message to mcp_server.c, which negotiates the protocol
 * revision per request (2025-11-25 after `initialize`, 2026-07-28 stateless from `_meta`),
 * validates and dispatches; the tools are in mcp_tools.c, their sandboxes and the handles
 * that name them in mcp_handles.c, argument checking against the tools' own JSON Schemas in
 * mcp_schema.c, the test-only fixture tools in mcp_fixtures.c. Logs go to stderr only. */
#ifndef RLM_CLI_MCP_H
#define RLM_CLI_MCP_H

#include <json-c/json.h>
#include <pthread.h>
#include <stddef.h>

#include "rlm/rlm.h"

/* The two revisions served; older 2025 revisions are accepted by `initialize` too (their
 * messages are a subset of 2025-11-25's). */
#define MCP_MODERN_VERSION "2026-07-28"
#define MCP_LEGACY_VERSION "2025-11-25"

/* JSON-RPC and MCP error codes. */
enum mcp_error_code {
	MCP_PARSE_ERROR = -32700,
	MCP_INVALID_REQUEST = -32600,
	MCP_METHOD_NOT_FOUND = -32601,
	MCP_INVALID_PARAMS = -32602,
	MCP_INTERNAL_ERROR = -32603,
	MCP_HEADER_MISMATCH = -32020,
	MCP_MISSING_CLIENT_CAPABILITY = -32021,
	MCP_UNSUPPORTED_VERSION = -32022,
};

/* What `rlm mcp` was started with. Strings point into argv or the environment. */
struct mcp_options {
	int http;                  /* 0: stdio */
	char listen_host[256];     /* --listen ADDR:PORT */
	int port;                  /* default 8765; 0: any free port (printed on stderr) */
	const char *token_env;     /* --token-env NAME */
	int no_auth;               /* --no-auth (loopback only) */
	double handle_idle_s;      /* --handle-idle-s */
	int max_handles;           /* --max-handles */
	size_t max_body;           /* --max-body-bytes: one HTTP body or stdio line */
	int max_inflight;          /* --max-inflight: tool calls running at once */
	int fixtures;              /* --conformance-fixtures (test only) */
	const char **context_dirs; /* --context-dir (repeatable); none given: the cwd */
	int ncontext_dirs;
	const char *trajectory_dir; /* --trajectory-dir */
	const char **origins;       /* --allow-origin (repeatable) */
	int norigins;
	const char *port_file; /* --port-file: where the bound port is written (tests) */
};

/* ---- one request in flight ---- */

/* Sends a notification for this request (progress). msg is borrowed. */
typedef void (*mcp_emit_fn)(void *ctx, json_object *msg);

/* HTTP request headers the protocol checks; NULL members when absent. */
struct mcp_http_headers {
	const char *protocol_version; /* MCP-Protocol-Version */
	const char *method;           /* Mcp-Method */
	const char *name;             /* Mcp-Name */
	const char *session;          /* Mcp-Session-Id */
};

struct mcp_call {
	/* Set by the transport. */
	volatile int cancelled;
	mcp_emit_fn emit; /* NULL: notifications are dropped */
	void *emit_ctx;
	const struct mcp_http_headers *http; /* NULL on stdio */
	/* Filled by mcp_server_handle. */
	int http_status;             /* what an HTTP transport answers with (200 by default) */
	char session_out[64];        /* a session minted by `initialize` over HTTP, else "" */
	char version[16];            /* the revision this request is served in */
	int modern;                  /* 1: 2026-07-28 (stateless) */
	json_object *progress_token; /* borrowed from the request, NULL when none */
	json_object *meta;           /* the request's _meta (borrowed), NULL when none */
	double progress;             /* last progress value sent (they must increase) */
	/* What cancelling must poke besides the flag (interrupt a cell); guarded by mu. */
	pthread_mutex_t mu;
	void (*on_cancel)(void *ctx);
	void *on_cancel_ctx;
};

void mcp_call_init(struct mcp_call *c);
void mcp_call_destroy(struct mcp_call *c);
/* Sets the flag and runs the cancel hook; safe from any thread, idempotent. */
void mcp_call_cancel(struct mcp_call *c);
void mcp_call_set_cancel_hook(struct mcp_call *c, void (*fn)(void *), void *ctx);
/* Sends notifications/progress when the request carried a progress token. progress is raised
 * a little above the last value sent when it would not increase; total <= 0: none. */
void mcp_call_progress(struct mcp_call *c, double progress, double total, const char *message);

/* ---- the server ---- */

struct mcp_server;
struct mcp_handles;

int mcp_server_new(const rlm_config *cfg, const struct mcp_options *opts, struct mcp_server **out,
                   rlm_error *err);
/* Cancels nothing by itself: the transports cancel their calls first. Destroys every
 * sandbox (handles, then pools). */
void mcp_server_free(struct mcp_server *s);

/* Handles one parsed JSON-RPC message (request or notification). Returns the response to send
 * (caller puts it), or NULL for a notification. Tool calls may take long: the transports run
 * them on threads of their own (mcp_server_is_long tells which). */
json_object *mcp_server_handle(struct mcp_server *s, json_object *msg, struct mcp_call *call);
/* The checks mcp_server_handle starts with (JSON-RPC shape, revision, HTTP headers), alone:
 * an error response, or NULL when the request may go on. For transports that must choose
 * the HTTP status before running a long request. */
json_object *mcp_server_check(struct mcp_server *s, json_object *msg, struct mcp_call *call);
/* 1 when msg is a request that may run long (tools/call): run it off the reading thread. */
int mcp_server_is_long(json_object *msg);
/* For the transport: `notifications/cancelled`'s request id, else NULL (borrowed). */
json_object *mcp_cancelled_request_id(json_object *msg);
/* An error response (id may be NULL). */
json_object *mcp_error_response(json_object *id, int code, const char *message, json_object *data);
/* Serialises a message as one line of JSON (no newline inside); caller frees. */
char *mcp_to_text(json_object *msg, size_t *len);
/* Drops an HTTP session (`DELETE /mcp`); 0 when it existed. */
int mcp_server_end_session(struct mcp_server *s, const char *session);
/* 1 when session names a live HTTP session. */
int mcp_server_has_session(struct mcp_server *s, const char *session);
const struct mcp_options *mcp_server_options(const struct mcp_server *s);

/* ---- tools (mcp_tools.c) ---- */

struct mcp_tools_env {
	const rlm_config *cfg;
	const struct mcp_options *opts;
	struct mcp_handles *handles;
};

/* The tools/list array, in its fixed order (fixtures last when enabled). New reference. */
json_object *mcp_tools_list(const struct mcp_tools_env *env);
/* Runs a tool. Returns a CallToolResult (isError set for tool execution errors), or NULL with
 * *code and message set for a protocol error (unknown tool: -32602). */
json_object *mcp_tools_call(const struct mcp_tools_env *env, const char *name, json_object *args,
                            struct mcp_call *call, int *code, char *message, size_t message_size);
/* The client capability a tool needs (a key of clientCapabilities), or NULL. */
const char *mcp_tools_required_capability(const struct mcp_tools_env *env, const char *name);
/* The prompts (analyze, code, decompose; the fixtures' too when fixtures is set). */
json_object *mcp_prompts_list(int fixtures);
json_object *mcp_prompts_get(const char *name, json_object *args, int fixtures, int *code,
                             char *message, size_t message_size);

/* A tool result: structuredContent plus its text rendering. Takes structured. */
json_object *mcp_tool_result(json_object *structured, const char *text, int is_error);
/* A tool execution error: {error: {code, message}} and the message as text. */
json_object *mcp_tool_error(const char *code, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* ---- fixtures (mcp_fixtures.c): test-only tools the conformance suite calls ---- */
json_object *mcp_fixtures_list(void);
/* NULL when name is not a fixture. */
json_object *mcp_fixtures_call(const char *name, json_object *args, struct mcp_call *call);
/* The client capability a fixture needs, or NULL. */
const char *mcp_fixtures_required_capability(const char *name);
json_object *mcp_fixtures_prompts_list(void);
/* NULL when name is not a fixture prompt, or (*missing_arg set) when an argument is missing. */
json_object *mcp_fixtures_prompts_get(const char *name, json_object *args, int *missing_arg);

/* ---- argument checking (mcp_schema.c) ---- */

/* Checks value against the subset of JSON Schema the tools use (type, properties, required,
 * additionalProperties false, enum, minimum, maximum, minLength, maxLength, items, maxItems).
 * 0 when it conforms; else writes "path: what is wrong" to message. */
int mcp_schema_check(json_object *schema, json_object *value, char *message, size_t size);

/* ---- handles (mcp_handles.c) ---- */

/* Sandboxes the server owns: the named ones (handles from sandbox_create) and the anonymous
 * ones of rlm_run; each comes from a pool per backend configuration, so all count against
 * the pool's limits. */
int mcp_handles_open(const rlm_config *cfg, const struct mcp_options *opts,
                     struct mcp_handles **out, rlm_error *err);
/* Destroys every sandbox, waits for them to be gone, frees. */
void mcp_handles_close(struct mcp_handles *h);

/* A new sandbox from the pool for (backend, options); options is a JSON object or NULL.
 * Waits for it (cancellable through *cancel). */
int mcp_sandbox_acquire(struct mcp_handles *h, const char *backend, json_object *options,
                        const volatile int *cancel, rlm_interp **out, const rlm_config **cfg,
                        rlm_error *err);
/* Gives it back (the sandbox is shut down). */
void mcp_sandbox_release(struct mcp_handles *h, rlm_interp *in);

/* Names an acquired sandbox: writes the new handle (NUL-terminated) to id. */
int mcp_handle_add(struct mcp_handles *h, rlm_interp *in, const char *backend, char *id,
                   size_t id_size, rlm_error *err);
/* Leases the sandbox a handle names for one call (waits while another call uses it).
 * RLM_ENOTFOUND for an unknown or expired handle. */
int mcp_handle_lease(struct mcp_handles *h, const char *id, const volatile int *cancel,
                     rlm_interp **out, rlm_error *err);
void mcp_handle_unlease(struct mcp_handles *h, const char *id);
/* Destroys a handle's sandbox (cancelling a call that uses it). RLM_ENOTFOUND if unknown. */
int mcp_handle_destroy(struct mcp_handles *h, const char *id);
/* {handles, by_backend, idle_s, max, pools: [pool stats]}. */
json_object *mcp_handles_status(struct mcp_handles *h);

/* ---- small helpers (mcp_util.c) ---- */

/* Fills buf with n random bytes from /dev/urandom; 0 on success. */
int mcp_random_bytes(void *buf, size_t n);
/* Standard base64 (with padding); caller frees. */
char *mcp_base64_encode(const unsigned char *data, size_t len);
/* Decodes standard base64 (padding optional, no whitespace); NULL when invalid. */
unsigned char *mcp_base64_decode(const char *text, size_t text_len, size_t *out_len);
/* 1 when data[0..len) is valid UTF-8 without NUL. */
int mcp_utf8_valid(const char *data, size_t len);
/* 1 for 127.0.0.0/8, ::1 and "localhost". */
int mcp_host_is_loopback(const char *host);
/* Items of a JSON array; 0 for anything else, NULL included (json-c asserts on those). */
size_t mcp_array_len(json_object *a);
/* Constant-time equality of two NUL-terminated strings. */
int mcp_secret_equal(const char *a, const char *b);

/* The entry point, called from cli/rlm.c. */
int rlm_cli_mcp(int argc, char **argv);

/* Transports: run until *stop or the end of input; return an exit status. */
int mcp_stdio_run(struct mcp_server *s, const struct mcp_options *opts, int stop_fd);
int mcp_http_run(struct mcp_server *s, const struct mcp_options *opts, const char *token,
                 int stop_fd);

#endif /* RLM_CLI_MCP_H */
