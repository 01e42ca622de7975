/* rlm/plugin.h - the plugin ABI: what a backend or LLM plugin exports and what the host gives it.
 *
 * A plugin is one shared object with one exported symbol, rlm_plugin_entry. The host calls it
 * with its function table; the plugin answers with a static descriptor. Every struct that
 * crosses the boundary starts with abi_version and struct_size; fields are only ever
 * appended, so the side that is newer checks struct_size before touching a later field.
 * A plugin never links against librlm: all it needs from the core comes through rlm_host_api,
 * and anything it hands back to the core is allocated with host->alloc. */
#ifndef RLM_PLUGIN_H
#define RLM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Major changes break compatibility; minor ones only append fields or slots. */
#define RLM_ABI_MAJOR       1
#define RLM_ABI_MINOR       2
#define RLM_ABI_VERSION     ((uint32_t)((RLM_ABI_MAJOR << 16) | RLM_ABI_MINOR))
#define RLM_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define RLM_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)

#if defined(__GNUC__)
#define RLM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RLM_PLUGIN_EXPORT
#endif

#define RLM_PLUGIN_ENTRY_SYMBOL "rlm_plugin_entry"

/* Whether an ops table (sized by its struct_size) has an optional slot, and it is not NULL.
 * RLM_HAS_FIELD (rlm/export.h) is the same check for any field of a versioned struct. */
#define RLM_HAS_SLOT(ops, slot) (RLM_HAS_FIELD(ops, slot) && (ops)->slot != NULL)

typedef enum rlm_plugin_kind {
	RLM_PLUGIN_BACKEND = 1,
	RLM_PLUGIN_LLM = 2,
} rlm_plugin_kind;

/* Capability bits of a backend: what it offers beyond the five required verbs. */
#define RLM_CAP_INTERRUPT      (1u << 0) /* interrupt() stops running user code */
#define RLM_CAP_RUN_COMMAND    (1u << 1) /* run_command() runs a process in the sandbox */
#define RLM_CAP_VOLUME         (1u << 2) /* a durable volume is exposed as VOLUME */
#define RLM_CAP_NESTED_EXECUTE (1u << 3) /* execute() may be called from an exchange callback */
#define RLM_CAP_IS_ALIVE       (1u << 4) /* is_alive() probes the sandbox */
#define RLM_CAP_NET_ISOLATION  (1u << 5) /* can cut the sandbox off the network */
#define RLM_CAP_REMOTE         (1u << 6) /* the sandbox runs on another machine */
/* A fork bomb or a memory bomb inside the sandbox cannot hurt the machine rlm runs on: the
 * sandbox always bounds its processes and its memory (a container's cgroup, or another machine).
 * A static bit: set it only when that holds whatever the config says. rlm-conformance runs its
 * fork-bomb and memory-bomb cases only on a backend that sets it, or when asked (--bombs). */
#define RLM_CAP_CONTAINS_BOMBS (1u << 7)
/* The channel carries any bytes unchanged (a pipe, a socket): the driver may then send a
 * result's output as raw bytes after its frame instead of as JSON strings inside it (ABI 1.2;
 * a host that does not know the flag never asks for it). */
#define RLM_CAP_BINARY_CHANNEL (1u << 8)

/* Option value types, for config validation and `rlm backends describe`. */
typedef enum rlm_option_type {
	RLM_OPT_STRING = 1,
	RLM_OPT_INT = 2,
	RLM_OPT_NUMBER = 3,
	RLM_OPT_BOOL = 4,
	RLM_OPT_STRING_LIST = 5,
	RLM_OPT_OBJECT = 6, /* a JSON object, e.g. env vars or labels */
} rlm_option_type;

/* One option of a plugin's config section. Arrays of these end with a NULL name. */
typedef struct rlm_option_spec {
	const char *name;
	rlm_option_type type;
	const char *default_json; /* JSON text of the default, or NULL for "no default" */
	const char *doc;          /* one line for `rlm backends describe` */
} rlm_option_spec;

/* ---- Option definitions (ABI 1.2) ----
 *
 * rlm_option_spec above has no version of its own, so the richer definitions come through
 * rlm_plugin_desc.option_defs. A plugin that sets option_defs gets its section validated
 * against them (options is then ignored by this host; keep it too, or leave it NULL, for
 * hosts older than 1.2). What the core does with a section, once, before create:
 *  - a key that no definition names is refused (RLM_ECONFIG, with the nearest name);
 *  - each option takes its value from, in this order: the config section (a key set to null
 *    there stays null: "unset, no default"), then the environment variable `env` (when set
 *    and not empty), then default_json; none of these: null;
 *  - the value must have the option's type (an integral number is an INT, a plain string is a
 *    one-element STRING_LIST), and INT/NUMBER must lie within [min, max] for the bounds that
 *    flags name (without RLM_OPTF_MIN / RLM_OPTF_MAX an INT must fit in int32 and a NUMBER
 *    in [-1e9, 1e9]; with them, within the given bounds, at most 2^53 in magnitude);
 *  - with choices, a STRING (or each element of a STRING_LIST) must be one of them;
 *  - RLM_OPTF_REQUIRED: null is refused; RLM_OPTF_NONEMPTY: "" (or a "" element) is refused;
 *  - RLM_OPTF_SECRET: the value is never quoted in an error, never shown by `rlm backends
 *    describe` (its default neither); an env value of it is never logged.
 * Environment values are parsed by type: STRING as is; INT and NUMBER as a number (the whole
 * value); BOOL as 1/0, true/false, yes/no, on/off; STRING_LIST as a JSON list or else a
 * comma-separated list; OBJECT as a JSON object. An unparsable value is an RLM_ECONFIG that
 * names the variable (and, unless the option is secret, quotes the value).
 *
 * An array of definitions ends with an entry whose name is NULL (`{0}`). Every entry starts
 * with struct_size = sizeof(rlm_option_def) as the plugin compiled it (RLM_OPTION_DEF sets
 * it); the core walks the array with the first entry's struct_size as the stride, so fields
 * appended later are read only when the plugin's entries are large enough to hold them. */
#define RLM_OPTF_MIN      (1u << 0) /* min applies (INT, NUMBER) */
#define RLM_OPTF_MAX      (1u << 1) /* max applies (INT, NUMBER) */
#define RLM_OPTF_SECRET   (1u << 2) /* never quoted, shown or logged */
#define RLM_OPTF_REQUIRED (1u << 3) /* null (no config, env or default value) is refused */
#define RLM_OPTF_NONEMPTY (1u << 4) /* STRING: "" is refused; STRING_LIST: "" elements are */

typedef struct rlm_option_def {
	uint32_t struct_size; /* sizeof(rlm_option_def) as compiled; see RLM_OPTION_DEF */
	uint32_t flags;       /* RLM_OPTF_* */
	const char *name;
	rlm_option_type type;
	const char *default_json;   /* JSON text of the default, or NULL: no default (null) */
	const char *doc;            /* one line for `rlm backends describe` */
	double min, max;            /* bounds of an INT or NUMBER, as flags say */
	const char *env;            /* environment variable read when the config leaves it unset */
	const char *const *choices; /* NULL-terminated allowed strings (STRING, STRING_LIST) */
} rlm_option_def;

/* One definition: RLM_OPTION_DEF(.name = "cpus", .type = RLM_OPT_NUMBER, ...). */
#define RLM_OPTION_DEF(...)                                                                        \
	{                                                                                          \
		.struct_size = sizeof(rlm_option_def), __VA_ARGS__                                 \
	}

/* The validated, typed view of a plugin's section (defaults and environment applied), handed
 * to create_opts() and read with the host's opt_* functions. Owned by the core, valid until
 * create_opts() returns: copy what the instance keeps (host->str_dup). */
typedef struct rlm_options rlm_options;

/* A byte buffer handed across the boundary; data is allocated with host->alloc and freed by
 * whoever receives it with host->free (the core, for buffers a plugin returns). */
typedef struct rlm_buf {
	char *data;
	size_t len;
} rlm_buf;

typedef enum rlm_log_level {
	RLM_LOG_ERROR = 0,
	RLM_LOG_WARN = 1,
	RLM_LOG_INFO = 2,
	RLM_LOG_DEBUG = 3,
} rlm_log_level;

/* An HTTP request through the host's libcurl. Requests of the process share DNS and TLS
 * session caches (libcurl's share interface) and a pool of easy handles that keep their
 * connections open, so many sandboxes or LLM calls to the same host do not each pay a TLS
 * handshake. Zero-initialise, then set what you need; note that max_retries 0 then means
 * "no retries". Retries resend the request: a POST whose duplicate would matter (creating
 * a sandbox) must be made safe to repeat by the caller or sent with max_retries 0.
 * The deadline only stops new attempts; one already running may last its timeout_s. */
typedef struct rlm_http_request {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *method; /* "GET", "POST", "PUT", "DELETE", ...; NULL: GET */
	const char *url;
	const char *const *headers; /* "Name: value" lines, NULL-terminated, or NULL */
	const void *body;           /* request body, or NULL (see read_body) */
	size_t body_len;
	double connect_timeout_s;   /* <= 0: 10 s */
	double timeout_s;           /* one attempt, start to end; <= 0: 60 s */
	double deadline;            /* host->now() after which no new attempt starts; 0: none */
	int max_retries;            /* retries of 429, 5xx, empty replies and connection
	                               failures; < 0: 4; 401 and 403 are never retried */
	double backoff_s;           /* first retry delay, doubled each time, jittered; <= 0:
	                               0.5 s. A Retry-After header overrides it. */
	const char *const *secrets; /* strings masked in logs and error messages, NULL-term */
	/* Streaming (optional). read_body supplies body_len bytes in pieces instead of body
	 * (returning (size_t)-1 aborts with RLM_EIO); rewind_body restarts it for a retry
	 * (without it, a failure after the body was sent is not retried). on_body receives a
	 * 2xx response's body instead of resp->body (other statuses keep theirs in resp->body);
	 * a non-zero return aborts the transfer. Bodies kept in memory are capped at 256 MiB. */
	size_t (*read_body)(void *ctx, char *buf, size_t max);
	int (*rewind_body)(void *ctx);
	int (*on_body)(void *ctx, const char *data, size_t len);
	void *ctx;
	/* --- ABI 1.2 --- */
	/* NULL, or a flag that another thread or a signal handler may set: once *cancel is
	 * non-zero the transfer is aborted within about 100 ms, no retry starts, and the call
	 * returns RLM_ECANCELLED. */
	const volatile int *cancel;
	/* NULL, or asked (with ctx) about a response the helper would retry (429, 5xx): non-zero
	 * makes it final, e.g. a 429 whose body says the account's quota is exhausted, which
	 * no retry can fix. body is the response body (not NUL-terminated). */
	int (*is_final)(void *ctx, long status, const char *body, size_t body_len);
} rlm_http_request;

typedef struct rlm_http_response {
	uint32_t abi_version;
	uint32_t struct_size;
	long status;   /* HTTP status of the last attempt */
	rlm_buf body;  /* host->alloc'ed, NUL-terminated (not counted); empty when streamed */
	char *headers; /* raw header block of the last attempt, host->alloc'ed */
	char request_id[RLM_ERROR_REQUEST_ID_MAX]; /* x-request-id (or alike), "" if none */
	int attempts;                              /* how many attempts were made */
} rlm_http_response;

/* A chat message for an LLM plugin. */
typedef struct rlm_llm_message {
	const char *role; /* "system", "user" or "assistant" */
	const char *content;
} rlm_llm_message;

typedef struct rlm_llm_request {
	uint32_t abi_version;
	uint32_t struct_size;
	const rlm_llm_message *messages;
	size_t n_messages;
	const char *model;  /* NULL: the plugin's configured model */
	double timeout_s;   /* the whole call, retries included; <= 0: the plugin's default */
	double temperature; /* < 0: the plugin's configured value */
	long max_tokens;    /* <= 0: the plugin's configured value */
	/* --- ABI 1.2 --- */
	/* NULL, or a cancel flag (see rlm_http_request.cancel): pass it on to the HTTP request;
	 * a cancelled call returns RLM_ECANCELLED. */
	const volatile int *cancel;
} rlm_llm_request;

typedef struct rlm_llm_response {
	uint32_t abi_version;
	uint32_t struct_size;
	rlm_buf text;           /* the answer, host->alloc'ed, NUL-terminated */
	long prompt_tokens;     /* -1 when the provider did not say */
	long completion_tokens; /* -1 when the provider did not say */
	char model[128];        /* the model that answered, "" if unknown */
	char finish_reason[32]; /* "stop", "length", ..., "" if unknown */
} rlm_llm_response;

/* The host table: what plugins must not reimplement. Valid for the process's life. */
typedef struct rlm_host_api {
	uint32_t abi_version;
	uint32_t struct_size;
	void *(*alloc)(size_t size);
	void *(*realloc)(void *ptr, size_t size);
	void (*free)(void *ptr);
	/* Logs a line; secrets (bearer tokens, API keys, values of env vars named as secrets)
	 * are redacted before the line is written anywhere. */
	void (*log)(rlm_log_level level, const char *plugin, const char *fmt, ...)
#if defined(__GNUC__)
	        __attribute__((format(printf, 3, 4)))
#endif
	        ;
	/* Fills err (if non-NULL) with code and a formatted message; returns code. */
	int (*error_set)(rlm_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
	        __attribute__((format(printf, 3, 4)))
#endif
	        ;
	/* Like error_set, and records the provider's HTTP status and request id (may be NULL). */
	int (*error_set_http)(rlm_error *err, int code, long http_status, const char *request_id,
	                      const char *fmt, ...)
#if defined(__GNUC__)
	        __attribute__((format(printf, 5, 6)))
#endif
	        ;
	/* Monotonic clock in seconds. */
	double (*now)(void);
	/* The driver program (driver.py) that must run in the sandbox. */
	const char *driver_script;
	size_t driver_script_len;
	/* Directory for durable local data ($XDG_DATA_HOME/rlm or ~/.local/share/rlm). Static. */
	const char *(*data_dir)(void);
	/* --- ABI 1.1 --- */
	/* Makes an HTTP request, retrying as rlm_http_request says. Returns 0 when a response
	 * arrived, whatever its status (the caller maps statuses to errors); RLM_ETIMEOUT or
	 * RLM_ETRANSIENT when none did; RLM_EINVAL for a bad request. *resp must be freed with
	 * http_response_free either way. */
	int (*http_request)(const rlm_http_request *req, rlm_http_response *resp, rlm_error *err);
	void (*http_response_free)(rlm_http_response *resp);
	/* The value of a response header (case-insensitive name), copied into buf (NUL-ended);
	 * returns buf, or NULL when the header is absent. */
	const char *(*http_header)(const rlm_http_response *resp, const char *name, char *buf,
	                           size_t size);
	/* --- ABI 1.2 --- */
	/* A host->alloc'ed copy of s; NULL when s is NULL or memory is out. */
	char *(*str_dup)(const char *s);
	/* printf into a host->alloc'ed string; NULL when memory is out or fmt is bad. */
	char *(*str_printf)(const char *fmt, ...)
#if defined(__GNUC__)
	        __attribute__((format(printf, 1, 2)))
#endif
	        ;
	/* Sleeps seconds (clamped to [0, 3600]; NaN: 0) in slices of at most 50 ms, so that a
	 * cancel flag (may be NULL) set meanwhile ends it early. 0, or RLM_ECANCELLED. */
	int (*sleep)(double seconds, const volatile int *cancel);
	/* The one redaction rule of rlm (core/redact.c), in place: every byte that belongs to
	 * an occurrence of a secret of 4 or more bytes (or of its JSON-escaped spelling) is
	 * hidden, and each run of hidden bytes becomes "***". Overlapping and adjacent
	 * occurrences merge into one "***"; shorter secrets are ignored (they would mask
	 * ordinary words). secrets is NULL-terminated (NULL: none). The text only shrinks;
	 * returns its new length. */
	size_t (*redact)(char *text, const char *const *secrets);
	/* Readers of an rlm_options view. name must be one of the plugin's option_defs; a
	 * name that is not, or an option of another type, reads as unset. Strings point into
	 * the view (valid while it is). */
	int (*opt_is_set)(const rlm_options *o, const char *name);         /* 1 unless null */
	const char *(*opt_string)(const rlm_options *o, const char *name); /* NULL: unset */
	int64_t (*opt_int)(const rlm_options *o, const char *name);        /* 0: unset */
	double (*opt_number)(const rlm_options *o, const char *name);      /* 0: unset; INT too */
	int (*opt_bool)(const rlm_options *o, const char *name);           /* 0: unset */
	/* NULL-terminated; an empty list (never NULL) when unset. */
	const char *const *(*opt_string_list)(const rlm_options *o, const char *name);
	/* An OBJECT's JSON text ("{}" when unset); name NULL: the whole validated section. */
	const char *(*opt_object_json)(const rlm_options *o, const char *name);
	/* Fields appended after this line exist when struct_size covers them. */
} rlm_host_api;

/* What the core asks start() to launch. */
typedef struct rlm_launch {
	uint32_t abi_version;
	uint32_t struct_size;
	double start_timeout_s; /* give up (and clean up) if the sandbox is not up by then */
	/* --- ABI 1.2 --- */
	/* NULL, or a cancel flag: once *cancel is non-zero, start() gives up within about
	 * 100 ms with RLM_ECANCELLED (shutdown() follows as always). */
	const volatile int *cancel;
} rlm_launch;

/* What an exchange callback tells the backend. */
typedef enum rlm_exchange_action {
	RLM_EXCHANGE_MORE = 0, /* keep reading (after sending *reply, if one was set) */
	RLM_EXCHANGE_DONE = 1, /* the exchange is complete: return 0 from execute() */
} rlm_exchange_action;

/* Called by the backend with every chunk of bytes the driver writes on its channel (chunks
 * may split frames anywhere). May set *reply / *reply_len to bytes the backend must write to
 * the driver's input before reading on; those bytes are owned by the core and stay valid until
 * the next call. Returns an rlm_exchange_action, or a negative rlm_status to abort the
 * exchange (execute() then returns that code). */
typedef int (*rlm_exchange_fn)(void *ctx, const char *chunk, size_t len, const char **reply,
                               size_t *reply_len);

/* One half-duplex exchange with the driver. */
typedef struct rlm_exchange {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *request; /* bytes to write to the driver first; may be empty */
	size_t request_len;
	double deadline; /* host->now() value after which execute() gives up with RLM_ETIMEOUT */
	rlm_exchange_fn on_data;
	void *ctx;
	/* --- ABI 1.2 --- */
	/* NULL, or a flag that another thread or a signal handler may set: once *cancel is
	 * non-zero, execute() returns RLM_ECANCELLED within about 100 ms (wait in bounded
	 * slices, or abort HTTP requests through rlm_http_request.cancel). The driver is then in
	 * an unknown state; the core restarts it or shuts the sandbox down. */
	const volatile int *cancel;
} rlm_exchange;

/* A command to run in the sandbox, outside the driver (optional run_command slot). */
typedef struct rlm_command {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *const *argv; /* NULL-terminated */
	const char *cwd;         /* NULL: the sandbox's work directory */
	const char *const *env;  /* NULL-terminated "K=V" list added to the sandbox env, or NULL */
	double timeout_s;        /* <= 0: no timeout */
	/* --- ABI 1.2 --- */
	const volatile int *cancel; /* NULL, or a cancel flag (see rlm_exchange.cancel) */
} rlm_command;

typedef struct rlm_command_result {
	uint32_t abi_version;
	uint32_t struct_size;
	int exit_code; /* -signal when killed by a signal */
	int timed_out;
	rlm_buf out; /* stdout, host->alloc'ed */
	rlm_buf err; /* stderr, host->alloc'ed */
} rlm_command_result;

/* A backend is a transport to the driver, not an interpreter. Every slot returns 0 or a
 * negative rlm_status and describes failures through err.
 *
 * Cleanup contract: after create() succeeds the core always ends with exactly one shutdown(),
 * whatever happened in between (a failed start included), so start() may leave partial state
 * for shutdown() to undo. If create() fails it must have freed everything itself. */
typedef struct rlm_backend_ops {
	uint32_t abi_version;
	uint32_t struct_size;
	/* Parses config_json (this backend's validated section, defaults filled in) and allocates
	 * an instance. Cheap: no sandbox exists yet. */
	int (*create)(const rlm_host_api *host, const char *config_json, void **instance,
	              rlm_error *err);
	/* Provisions the sandbox (if not yet), puts host->driver_script in it and launches the
	 * driver. Returns once the driver runs; the core then waits for its "ready" frame through
	 * execute() with an empty request. Called again after a failure (a hang, a dead driver):
	 * then it must stop the old driver first and launch a fresh one. */
	int (*start)(void *instance, const rlm_launch *launch, rlm_error *err);
	/* Writes ex->request to the driver, then feeds every chunk it writes back to ex->on_data
	 * until that returns RLM_EXCHANGE_DONE (return 0), ex->deadline passes (RLM_ETIMEOUT) or
	 * the channel closes (RLM_EBACKEND, with the driver's exit status in the message).
	 * RLM_ENOTSUP means it refused before touching the channel, e.g. an exchange nested
	 * inside another (RLM_CAP_NESTED_EXECUTE) that this instance's transport cannot carry. */
	int (*execute)(void *instance, const rlm_exchange *ex, rlm_error *err);
	/* Writes len bytes to remote_path (relative paths are under the sandbox work dir),
	 * making missing parent directories. */
	int (*upload)(void *instance, const void *data, size_t len, const char *remote_path,
	              rlm_error *err);
	/* Reads remote_path into *out (host->alloc'ed; the core frees it). */
	int (*download)(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err);
	/* Tears the sandbox down and frees the instance. Must work in any state. */
	void (*shutdown)(void *instance);
	/* Optional slots: NULL when absent; the capability bits say which exist. */
	int (*interrupt)(void *instance, rlm_error *err);
	int (*run_command)(void *instance, const rlm_command *cmd, rlm_command_result *res,
	                   rlm_error *err);
	int (*is_alive)(void *instance);
	/* Escape hatch for provider knobs. "status" must answer a JSON object; unknown ops
	 * return RLM_ENOTSUP. *out is host->alloc'ed. */
	int (*control)(void *instance, const char *op, const char *arg_json, rlm_buf *out,
	               rlm_error *err);
	/* --- ABI 1.2 --- */
	/* Preferred to create() when present: the same, with the section as a validated, typed
	 * view (rlm_options) instead of JSON text. A plugin that has it may leave create NULL
	 * (such a plugin needs a 1.2 host). */
	int (*create_opts)(const rlm_host_api *host, const rlm_options *opts, void **instance,
	                   rlm_error *err);
	/* Slots appended after this line exist when struct_size covers them. */
} rlm_backend_ops;

/* An LLM plugin: turns messages into an answer. complete() may be called from several threads
 * at once on one instance (llm_query_batched), so it must be thread-safe. */
typedef struct rlm_llm_ops {
	uint32_t abi_version;
	uint32_t struct_size;
	/* Parses config_json (the llm or sub_llm section, validated against the plugin's option
	 * specs, defaults filled in). Must not call the provider: no network here. */
	int (*create)(const rlm_host_api *host, const char *config_json, void **instance,
	              rlm_error *err);
	/* One completion. On success fills resp (the core frees resp->text with host->free). */
	int (*complete)(void *instance, const rlm_llm_request *req, rlm_llm_response *resp,
	                rlm_error *err);
	void (*destroy)(void *instance);
	/* --- ABI 1.2 --- */
	/* Preferred to create() when present (see rlm_backend_ops.create_opts). */
	int (*create_opts)(const rlm_host_api *host, const rlm_options *opts, void **instance,
	                   rlm_error *err);
	/* Slots appended after this line exist when struct_size covers them. */
} rlm_llm_ops;

/* What rlm_plugin_entry hands back. Static storage, valid while the plugin is loaded. */
typedef struct rlm_plugin_desc {
	uint32_t abi_version;
	uint32_t struct_size;
	rlm_plugin_kind kind;
	const char *name;    /* "local", "daytona", ...: the config name */
	const char *summary; /* one line */
	const char *version; /* the plugin's own version */
	uint64_t capabilities;
	const rlm_option_spec *options; /* NULL-name terminated; NULL for none */
	const void *ops; /* rlm_backend_ops * for RLM_PLUGIN_BACKEND, rlm_llm_ops * for LLM */
	/* --- ABI 1.2 --- */
	/* Pool defaults of a backend (rlm/pool.h), used when the config's `pool` section does not
	 * set them: how many sandboxes may live at once (0: twice the online cores, right for a
	 * backend whose sandboxes run on this machine), and how many may be created per second
	 * across the user's processes (0: no limit). */
	unsigned pool_max_live;
	double pool_creates_per_s;
	/* Option definitions with ranges, environment variables, choices and flags (see
	 * rlm_option_def); when set, used instead of options. NULL: options is used. */
	const rlm_option_def *option_defs;
} rlm_plugin_desc;

/* The one symbol a plugin exports. host_abi is RLM_ABI_VERSION of the host. Returns 0 and
 * sets *out, or a negative rlm_status (e.g. when it cannot serve that host ABI). */
typedef int (*rlm_plugin_entry_fn)(const rlm_host_api *host, uint32_t host_abi,
                                   const rlm_plugin_desc **out);

#ifdef __cplusplus
}
#endif
#endif /* RLM_PLUGIN_H */
