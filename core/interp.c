/* interp.c - the interpreter: a persistent Python REPL in a sandbox, whatever the backend.
 * It owns the plugin reference and the backend instance, runs the ready handshake, turns each
 * cell into one exchange with the driver (answering host calls mid-exchange), and enforces
 * the hard deadline: interrupt, then restart with state_lost.
 *
 * Exchanges nest: a call handler may run cells in a child scope on the same interpreter while
 * the cell that made the call waits for its reply (rlm_query's child RLM). The nested exchange
 * reads the same byte stream, so the stack of exchanges shares one decoder and a frame is
 * handed to whichever exchange on the stack waits for it. A nested exchange never restarts
 * the driver under the exchanges below it: it marks the interpreter broken, they all fail,
 * and the outermost one restarts and reports state_lost. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backend.h"
#include "config_internal.h"
#include "host.h"
#include "interp_internal.h"
#include "loader.h"
#include "protocol.h"
#include "rlm/rlm.h"
#include "util.h"

enum { RLM_ID_BATCH = 32 };

struct rlm_interp {
	rlm_config *cfg;
	rlm_plugin *plugin;
	const rlm_plugin_desc *desc;
	const rlm_backend_ops *ops;
	void *inst;
	int running;         /* the driver answered "ready" and has not failed since */
	int state_lost_owed; /* a restart failed: the next result must say state_lost */
	unsigned long seq;   /* request counter, the readable half of every request id */
	/* Random halves of the next request ids, fetched RLM_ID_BATCH at a time (one getrandom
	 * per cell was one system call in ten of a cell's round trip); id_left are unused. */
	unsigned long long id_random[RLM_ID_BATCH];
	size_t id_left;
	double exec_timeout_s;
	double grace_s;
	double start_timeout_s;
	long max_output;
	rlm_call_handler call_fn;
	void *call_ctx;
	json_object *ready;         /* the driver's ready frame */
	struct exchange_state *top; /* the innermost exchange in flight, NULL when idle */
	/* A nested exchange left the channel in an unknown state: every exchange on the stack
	 * fails and the outermost restarts the driver. What broke it, for that result: */
	int broken;
	char broken_type[32];
	char broken_msg[RLM_ERROR_MESSAGE_MAX];
	volatile int cancel_own;   /* set by rlm_interp_cancel unless a shared flag is watched */
	volatile int *cancel;      /* the flag watched: &cancel_own or the caller's */
	struct interp_tool *tools; /* rlm_interp_register_tool, in registration order */
	size_t n_tools;
};

/* A host tool: sandbox code calls it by name (rlm_interp_register_tool). */
struct interp_tool {
	char *name;
	char *description; /* NULL: none */
	rlm_call_handler fn;
	void *ctx;
};

/* One exchange in flight: what we wait for, and what came. */
struct exchange_state {
	rlm_interp *in;
	struct exchange_state *outer; /* the exchange whose call handler runs this one, or NULL */
	rlm_decoder own_dec;
	rlm_decoder *dec; /* own_dec, or the outer exchange's: one stream, one decoder */
	const char *want_type;
	const char *want_id; /* NULL: any id */
	json_object *answer;
	rlm_sb reply;
	unsigned host_calls;
	int in_call;       /* a call handler runs: it may start nested exchanges */
	int call_nestable; /* the driver serves nested cells while that call waits */
};

/* Scope names: what PROTOCOL.md allows. */
#define SCOPE_MAX 64

#define NO_LLM_MESSAGE                                                                             \
	"no LLM configured: %s() needs an LLM provider (set llm.provider in the config, "          \
	"or give the interpreter a call handler)"

/* Longest tool name, and most tools, one interpreter takes. */
#define TOOL_NAME_MAX 64
#define TOOLS_MAX     64

/* Whether name is one of the driver's host calls (the rest would be tools). */
static int is_llm_call(const char *name)
{
	return !strcmp(name, "llm_query") || !strcmp(name, "llm_query_batched") ||
	       !strcmp(name, "rlm_query");
}

static int default_call_handler(void *ctx, const char *name, const char *args_json,
                                const char *kwargs_json, char **value_json, char **error_message)
{
	(void)ctx;
	(void)args_json;
	(void)kwargs_json;
	*value_json = NULL;
	rlm_sb sb = {0};
	if (is_llm_call(name))
		rlm_sb_printf(&sb, NO_LLM_MESSAGE, name);
	else
		rlm_sb_printf(&sb, "no host tool named %s on this interpreter", name);
	*error_message = rlm_sb_take(&sb);
	return RLM_ENOTSUP;
}

static struct interp_tool *find_tool(rlm_interp *in, const char *name)
{
	for (size_t i = 0; i < in->n_tools; i++)
		if (!strcmp(in->tools[i].name, name))
			return &in->tools[i];
	return NULL;
}

/* A request id: the counter and 64 random bits. Sandbox code can write frames into the
 * channel (PROTOCOL.md, "What sandbox code can do to the channel"); since it cannot guess
 * the id of a request not sent yet, a frame it forges can never answer a later request. */
static void next_id(rlm_interp *in, char prefix, char *id, size_t size)
{
	unsigned long long r;
	if (!in->id_left && getrandom(in->id_random, sizeof(in->id_random), GRND_NONBLOCK) ==
	                            (ssize_t)sizeof(in->id_random))
		in->id_left = RLM_ID_BATCH;
	if (in->id_left) {
		/* Each is used once: a forged frame still cannot guess an id not sent yet. */
		r = in->id_random[--in->id_left];
		in->id_random[in->id_left] = 0;
	} else {
		r = (unsigned long long)(rlm_now() * 1e9) ^
		    ((unsigned long long)(uintptr_t)in << 16);
	}
	snprintf(id, size, "%c%lu-%016llx", prefix, ++in->seq, r);
}

static const char *json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Replaces each byte that is not part of valid UTF-8 with '?', so that text can go into a
 * frame the driver reads. */
static void utf8_scrub(char *s)
{
	size_t len = strlen(s), at = 0, bad;
	while ((bad = rlm_utf8_invalid_at(s + at, len - at)) != RLM_UTF8_VALID) {
		s[at + bad] = '?';
		at += bad + 1;
	}
}

/* Answers one `call` frame by appending a `reply` frame to st->reply. */
static int answer_call(struct exchange_state *st, json_object *call)
{
	rlm_interp *in = st->in;
	const char *id = rlm_frame_str(call, "id");
	const char *name = rlm_frame_str(call, "name");
	json_object *args = NULL, *kwargs = NULL;
	json_object_object_get_ex(call, "args", &args);
	json_object_object_get_ex(call, "kwargs", &kwargs);
	json_object *nestable = NULL;
	char *value = NULL, *message = NULL;
	rlm_call_handler fn = in->call_fn ? in->call_fn : default_call_handler;
	void *fn_ctx = in->call_ctx;
	struct interp_tool *tool = name ? find_tool(in, name) : NULL;
	if (tool) {
		fn = tool->fn;
		fn_ctx = tool->ctx;
	}
	st->call_nestable = json_object_object_get_ex(call, "nestable", &nestable) &&
	                    json_object_is_type(nestable, json_type_boolean) &&
	                    json_object_get_boolean(nestable);
	st->in_call = 1;
	int rc = fn(fn_ctx, name ? name : "", args ? json_text(args) : "[]",
	            kwargs ? json_text(kwargs) : "{}", &value, &message);
	st->in_call = 0;
	st->host_calls++;
	json_object *reply = json_object_new_object();
	json_object_object_add(reply, "type", json_object_new_string("reply"));
	json_object_object_add(reply, "id", json_object_new_string(id ? id : ""));
	size_t bad = value ? rlm_utf8_invalid_at(value, strlen(value)) : RLM_UTF8_VALID;
	if (rc == 0 && bad != RLM_UTF8_VALID) {
		/* The driver cannot read a frame that is not UTF-8: the call fails instead. */
		free(message);
		rlm_sb sb = {0};
		rlm_sb_printf(
		        &sb, "%s: the host's answer is not valid UTF-8 (byte 0x%02x at offset %zu)",
		        name ? name : "host call", (unsigned char)value[bad], bad);
		message = rlm_sb_take(&sb);
		rc = RLM_EINVAL;
	}
	if (message)
		utf8_scrub(message);
	json_object *parsed = rc == 0 && value ? json_tokener_parse(value) : NULL;
	if (rc == 0 && (parsed || (value && !strcmp(value, "null")))) {
		json_object_object_add(reply, "ok", json_object_new_boolean(1));
		json_object_object_add(reply, "value", parsed);
	} else {
		json_object_put(parsed);
		json_object_object_add(reply, "ok", json_object_new_boolean(0));
		json_object_object_add(
		        reply, "error",
		        json_object_new_string(message   ? message
		                               : rc == 0 ? "host call returned invalid JSON"
		                                         : rlm_strerror(rc)));
	}
	free(value);
	free(message);
	rc = rlm_frame_encode(reply, &st->reply);
	json_object_put(reply);
	return rc;
}

/* Whether f is the driver's refusal of a frame it could not take (PROTOCOL.md: a result
 * with "refused": true). */
static int is_refusal(json_object *f)
{
	json_object *v = NULL;
	return !strcmp(rlm_frame_type(f), "result") &&
	       json_object_object_get_ex(f, "refused", &v) && json_object_get_boolean(v);
}

/* The wanted frame, or (for a control request) the driver's error result with its id. A
 * refusal without an id (the driver could not read the id of what it refused) answers the
 * innermost exchange, the one that wrote last: waiting on would only run out its deadline. */
static int frame_matches(struct exchange_state *st, json_object *f)
{
	const char *type = rlm_frame_type(f);
	if (strcmp(type, st->want_type) && !(st->want_id && !strcmp(type, "result")))
		return 0;
	if (!st->want_id)
		return 1;
	const char *id = rlm_frame_str(f, "id");
	if (!id)
		return st == st->in->top && is_refusal(f);
	return !strcmp(id, st->want_id);
}

/* Hands f to the exchange on the stack that waits for it (e.g. the waiting cell's own result
 * when it timed out while a child ran). Returns 1 when one took it. */
static int route_frame(struct exchange_state *st, json_object *f)
{
	for (struct exchange_state *x = st; x; x = x->outer) {
		if (!x->answer && frame_matches(x, f)) {
			x->answer = f;
			return 1;
		}
	}
	return 0;
}

static int on_data(void *ctx, const char *chunk, size_t len, const char **reply, size_t *reply_len)
{
	struct exchange_state *st = ctx;
	rlm_interp *in = st->in;
	rlm_error err = RLM_ERROR_INIT;
	st->reply.len = 0;
	if (*in->cancel) /* a backend that predates rlm_exchange.cancel stops here */
		return RLM_ECANCELLED;
	int rc = rlm_decoder_feed(st->dec, chunk, len, &err);
	if (rc) {
		rlm_log(RLM_LOG_ERROR, "interp", "%s", err.message);
		return rc;
	}
	json_object *f;
	/* Stops at this exchange's answer: what follows is for the exchanges below. */
	while (!st->answer && !in->broken && rlm_decoder_next(st->dec, &f) == 1) {
		if (route_frame(st, f))
			continue;
		if (!strcmp(rlm_frame_type(f), "call")) {
			rc = answer_call(st, f);
			json_object_put(f);
			if (rc)
				return rc;
			continue;
		}
		rlm_log(RLM_LOG_DEBUG, "interp", "dropping unexpected %s frame", rlm_frame_type(f));
		json_object_put(f);
	}
	if (in->broken)
		return RLM_ESTATE_LOST;
	if (st->answer)
		return RLM_EXCHANGE_DONE;
	if (st->reply.len) {
		*reply = st->reply.data;
		*reply_len = st->reply.len;
	}
	return RLM_EXCHANGE_MORE;
}

static void exchange_init(struct exchange_state *st, rlm_interp *in, const char *want_type,
                          const char *want_id)
{
	memset(st, 0, sizeof(*st));
	st->in = in;
	st->outer = in->top;
	st->want_type = want_type;
	st->want_id = want_id;
	rlm_decoder_init(&st->own_dec, 0);
	st->dec = st->outer ? st->outer->dec : &st->own_dec;
}

static void exchange_free(struct exchange_state *st)
{
	rlm_decoder_free(&st->own_dec);
	rlm_sb_free(&st->reply);
	json_object_put(st->answer);
	st->answer = NULL;
}

/* Runs one exchange: sends request (may be NULL) and waits for the wanted frame. */
static int run_exchange(rlm_interp *in, struct exchange_state *st, const char *request,
                        size_t request_len, double timeout_s, rlm_error *err)
{
	rlm_exchange ex = {
	        .abi_version = RLM_ABI_VERSION,
	        .struct_size = sizeof(ex),
	        .request = request ? request : "",
	        .request_len = request ? request_len : 0,
	        .deadline = rlm_now() + timeout_s,
	        .on_data = on_data,
	        .ctx = st,
	        .cancel = in->cancel,
	};
	struct exchange_state *below = in->top;
	in->top = st;
	int rc = in->ops->execute(in->inst, &ex, err);
	in->top = below;
	/* A code handed back from our own callback (a cancel, say) comes with no message. */
	if (rc < 0 && err && err->code == 0)
		rlm_error_set(err, rc, "%s",
		              rc == RLM_ECANCELLED ? "the interpreter was cancelled"
		                                   : rlm_strerror(rc));
	return rc;
}

/* A nested exchange failed in a way only a restart can fix. It must not restart the driver
 * under the exchanges below it, so it records why and leaves that to the outermost one. */
static int mark_broken(rlm_interp *in, const char *type, const char *why, rlm_error *err)
{
	in->broken = 1;
	in->running = 0;
	in->state_lost_owed = 1;
	snprintf(in->broken_type, sizeof(in->broken_type), "%s", type);
	snprintf(in->broken_msg, sizeof(in->broken_msg), "%s", why);
	return rlm_error_set(err, RLM_ESTATE_LOST,
	                     "%s; the sandbox driver must be restarted, so the cell that made this "
	                     "host call ends with state_lost",
	                     why);
}

/* The error a nested exchange returns when one nested deeper broke the channel. */
static int broken_error(rlm_interp *in, rlm_error *err)
{
	return rlm_error_set(err, RLM_ESTATE_LOST,
	                     "%s; the sandbox driver must be restarted, so the cell that made this "
	                     "host call ends with state_lost",
	                     in->broken_msg);
}

/* Whether the call handler running now may use the interpreter for a nested exchange (what
 * names it, for messages). 0 when nothing is in flight, too. */
static int check_nested(rlm_interp *in, const char *what, int is_exec, rlm_error *err)
{
	struct exchange_state *top = in->top;
	if (!top)
		return 0;
	if (!(in->desc->capabilities & RLM_CAP_NESTED_EXECUTE))
		return rlm_error_set(
		        err, RLM_ENOTSUP,
		        "%s from inside a host call handler needs a backend that can nest "
		        "exchanges; backend %s cannot (no nested_execute capability)",
		        what, in->desc->name);
	if (!top->in_call)
		return rlm_error_set(
		        err, RLM_EINVAL,
		        "%s: the interpreter is in the middle of an exchange; only a host "
		        "call handler may use it then",
		        what);
	if (in->broken || !in->running)
		return broken_error(in, err);
	if (!is_exec)
		return 0;
	if (!top->call_nestable)
		return rlm_error_set(
		        err, RLM_ENOTSUP,
		        "%s: the host call came from a thread other than the cell's main "
		        "thread, and the driver runs nested cells only while a cell's "
		        "main thread waits",
		        what);
	for (struct exchange_state *x = top; x; x = x->outer)
		if (x->answer)
			return rlm_error_set(
			        err, RLM_ETIMEOUT,
			        "%s: the cell that made this host call has already ended "
			        "(it timed out or was interrupted)",
			        what);
	return 0;
}

static int validate_scope(const char *scope, rlm_error *err)
{
	size_t n = strlen(scope);
	int ok = n > 0 && n <= SCOPE_MAX;
	for (const char *p = scope; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-';
	if (!ok)
		return rlm_error_set(err, RLM_EINVAL,
		                     "scope must be 1 to %d characters of [A-Za-z0-9_.-]",
		                     SCOPE_MAX);
	return 0;
}

/* Whether every string in v, object keys included, is valid UTF-8. */
static int json_utf8_ok(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return rlm_utf8_invalid_at(json_object_get_string(v),
		                           (size_t)json_object_get_string_len(v)) == RLM_UTF8_VALID;
	case json_type_array:
		for (size_t i = 0, n = json_object_array_length(v); i < n; i++)
			if (!json_utf8_ok(json_object_array_get_idx(v, i)))
				return 0;
		return 1;
	case json_type_object: {
		json_object_object_foreach(v, key, val)
		{
			if (rlm_utf8_invalid_at(key, strlen(key)) != RLM_UTF8_VALID ||
			    !json_utf8_ok(val))
				return 0;
		}
		return 1;
	}
	default: return 1;
	}
}

/* vars_json holds a byte that is not UTF-8 at offset bad: the error names the variable. */
static int vars_utf8_error(const char *vars_json, size_t bad, rlm_error *err)
{
	unsigned char byte = (unsigned char)vars_json[bad];
	json_object *vars = json_tokener_parse(vars_json);
	if (json_object_is_type(vars, json_type_object)) {
		json_object_object_foreach(vars, key, val)
		{
			if (rlm_utf8_invalid_at(key, strlen(key)) != RLM_UTF8_VALID) {
				json_object_put(vars);
				return rlm_error_set(
				        err, RLM_EINVAL,
				        "vars: a variable name is not valid UTF-8 (byte "
				        "0x%02x at offset %zu of vars_json)",
				        byte, bad);
			}
			if (!json_utf8_ok(val)) {
				rlm_error_set(err, RLM_EINVAL,
				              "vars: the value of '%.64s' is not valid UTF-8 (byte "
				              "0x%02x "
				              "at offset %zu of vars_json)",
				              key, byte, bad);
				json_object_put(vars);
				return RLM_EINVAL;
			}
		}
	}
	json_object_put(vars);
	return rlm_error_set(err, RLM_EINVAL,
	                     "vars_json is not valid UTF-8 (byte 0x%02x at offset %zu)", byte, bad);
}

/* Code, vars and output names go to the driver inside one JSON frame, which must be UTF-8:
 * one stray byte would make the whole frame unreadable. The error says where it is. */
static int check_utf8_input(const char *code, const rlm_exec_options *o, rlm_error *err)
{
	size_t bad = rlm_utf8_invalid_at(code, strlen(code));
	if (bad != RLM_UTF8_VALID) {
		int line = 1;
		for (size_t i = 0; i < bad; i++)
			line += code[i] == '\n';
		return rlm_error_set(err, RLM_EINVAL,
		                     "code is not valid UTF-8: byte 0x%02x at offset %zu (line %d)",
		                     (unsigned char)code[bad], bad, line);
	}
	if (o->vars_json &&
	    (bad = rlm_utf8_invalid_at(o->vars_json, strlen(o->vars_json))) != RLM_UTF8_VALID)
		return vars_utf8_error(o->vars_json, bad, err);
	for (size_t i = 0; o->output_names && o->output_names[i]; i++) {
		const char *name = o->output_names[i];
		if ((bad = rlm_utf8_invalid_at(name, strlen(name))) != RLM_UTF8_VALID)
			return rlm_error_set(err, RLM_EINVAL,
			                     "output_names[%zu] is not valid UTF-8 (byte 0x%02x at "
			                     "offset %zu)",
			                     i, (unsigned char)name[bad], bad);
	}
	return 0;
}

static int cancelled_error(rlm_error *err)
{
	return rlm_error_set(err, RLM_ECANCELLED, "the interpreter was cancelled");
}

/* Starts (or restarts) the driver and waits for its ready frame. */
static int start_driver(rlm_interp *in, rlm_error *err)
{
	in->running = 0;
	if (*in->cancel)
		return cancelled_error(err);
	rlm_launch launch = {.abi_version = RLM_ABI_VERSION,
	                     .struct_size = sizeof(launch),
	                     .start_timeout_s = in->start_timeout_s,
	                     .cancel = in->cancel};
	int rc = in->ops->start(in->inst, &launch, err);
	if (rc)
		return rc;
	struct exchange_state st;
	exchange_init(&st, in, "ready", NULL);
	rc = run_exchange(in, &st, NULL, 0, in->start_timeout_s, err);
	if (rc == 0) {
		json_object_put(in->ready);
		in->ready = st.answer;
		st.answer = NULL;
		in->running = 1;
	} else if (rc == RLM_ETIMEOUT) {
		rlm_error_set(err, RLM_ETIMEOUT,
		              "the sandbox driver did not say ready within %.0f s "
		              "(limits.start_timeout_s)",
		              in->start_timeout_s);
	} else {
		char why[RLM_ERROR_MESSAGE_MAX];
		snprintf(why, sizeof(why), "%s", err ? err->message : "");
		rlm_error_set(err, rc, "the sandbox driver failed to start: %s", why);
	}
	exchange_free(&st);
	return rc;
}

static void read_limits(rlm_interp *in)
{
	in->exec_timeout_s = rlm_config_get_number(in->cfg, "limits.execute_timeout_s", 300);
	in->grace_s = rlm_config_get_number(in->cfg, "limits.hard_deadline_grace_s", 5);
	in->start_timeout_s = rlm_config_get_number(in->cfg, "limits.start_timeout_s", 120);
	in->max_output = (long)rlm_config_get_number(in->cfg, "limits.max_output_chars", 20000);
}

/* Loads the plugin and creates the backend instance from the validated config section. */
static int create_backend(rlm_interp *in, rlm_error *err)
{
	const char *name = rlm_config_get_string(in->cfg, "backend", "local");
	int rc = rlm__backend_create(in->cfg, name, &in->plugin, &in->inst, err);
	if (rc)
		return rc;
	in->desc = rlm__plugin_desc(in->plugin);
	in->ops = in->desc->ops;
	return 0;
}

int rlm_interp_open(const rlm_config *cfg, rlm_interp **out, rlm_error *err)
{
	return rlm__interp_open_watching(cfg, NULL, out, err);
}

int rlm__interp_open_watching(const rlm_config *cfg, volatile int *cancel, rlm_interp **out,
                              rlm_error *err)
{
	*out = NULL;
	rlm_interp *in = calloc(1, sizeof(*in));
	if (!in)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	in->cancel = cancel ? cancel : &in->cancel_own;
	int rc = rlm_config_clone(cfg, &in->cfg, err);
	if (!rc)
		rc = rlm_config_validate(in->cfg, err);
	if (!rc) {
		read_limits(in);
		rc = create_backend(in, err);
	}
	if (!rc)
		rc = start_driver(in, err);
	if (rc) {
		rlm_interp_close(in);
		return rc;
	}
	*out = in;
	return 0;
}

static int restart_after_failure(rlm_interp *in, rlm_error *err)
{
	int rc = start_driver(in, err);
	if (rc) {
		in->state_lost_owed = 1;
		rlm_log(RLM_LOG_ERROR, "interp", "restarting the sandbox driver failed: %s",
		        err ? err->message : "");
	}
	return rc;
}

static json_object *build_exec_frame(rlm_interp *in, const char *id, const char *code,
                                     const rlm_exec_options *o, double timeout_s, rlm_error *err)
{
	json_object *vars = NULL;
	if (o->vars_json && *o->vars_json) {
		vars = json_tokener_parse(o->vars_json);
		if (!vars || !json_object_is_type(vars, json_type_object)) {
			json_object_put(vars);
			rlm_error_set(err, RLM_EINVAL,
			              "vars must be a JSON object mapping names to values");
			return NULL;
		}
	}
	json_object *f = json_object_new_object();
	json_object_object_add(f, "type", json_object_new_string("exec"));
	json_object_object_add(f, "id", json_object_new_string(id));
	json_object_object_add(f, "code", json_object_new_string(code));
	json_object_object_add(f, "vars", vars ? vars : json_object_new_object());
	json_object *names = NULL;
	if (o->output_names) {
		names = json_object_new_array();
		for (const char *const *n = o->output_names; *n; n++)
			json_object_array_add(names, json_object_new_string(*n));
	}
	json_object_object_add(f, "output_names", names);
	json_object_object_add(f, "timeout_s", json_object_new_double(timeout_s));
	long max_output = o->max_output_chars > 0 ? o->max_output_chars : in->max_output;
	json_object_object_add(f, "max_output", json_object_new_int64(max_output));
	if (o->scope)
		json_object_object_add(f, "scope", json_object_new_string(o->scope));
	if (RLM_HAS_FIELD(o, locals) && o->locals)
		json_object_object_add(f, "locals", json_object_new_boolean(1));
	if (in->desc->capabilities & RLM_CAP_BINARY_CHANNEL)
		json_object_object_add(f, "raw_output", json_object_new_boolean(1));
	if (in->n_tools) {
		json_object *tools = json_object_new_array();
		for (size_t i = 0; i < in->n_tools; i++)
			json_object_array_add(tools, json_object_new_string(in->tools[i].name));
		json_object_object_add(f, "tools", tools);
	}
	return f;
}

/* The cell ran past its hard deadline: interrupt, wait a grace period, else restart (or,
 * nested, leave the restart to the outermost exchange). Either way the result's error is a
 * DeadlineExceeded naming the deadline: the cell did not complete, whatever it printed. */
static int recover_from_hang(rlm_interp *in, struct exchange_state *st, double timeout_s,
                             int nested, rlm_result **out, rlm_error *err)
{
	rlm_error ierr = RLM_ERROR_INIT;
	char msg[512];
	if (RLM_HAS_SLOT(in->ops, interrupt) && in->ops->interrupt(in->inst, &ierr) == 0 &&
	    run_exchange(in, st, NULL, 0, in->grace_s, &ierr) == 0) {
		*out = rlm__result_from_frame(st->answer);
		if (!*out)
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		rlm_exec_error *raised = (*out)->error;
		snprintf(msg, sizeof(msg),
		         "the cell ran past its hard deadline (%g s timeout + %g s grace) and was "
		         "stopped by an interrupt%s%s",
		         timeout_s, in->grace_s, raised ? "; it ended with " : "",
		         raised ? raised->line : "");
		(*out)->timed_out = 1;
		if (rlm__result_set_error(*out, "DeadlineExceeded", msg,
		                          raised ? raised->traceback : "")) {
			rlm_result_free(*out);
			*out = NULL;
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		}
		return 0;
	}
	if (nested) {
		snprintf(msg, sizeof(msg),
		         "a nested cell ran past its hard deadline (%g s timeout + %g s grace): it "
		         "ignored its timeout and an interrupt for %g s more",
		         timeout_s, in->grace_s, 2 * in->grace_s);
		return mark_broken(in, "DeadlineExceeded", msg, err);
	}
	snprintf(msg, sizeof(msg),
	         "the cell ran past its hard deadline (%g s timeout + %g s grace): it ignored its "
	         "timeout and an interrupt for %g s more; the interpreter was restarted and its "
	         "state was lost",
	         timeout_s, in->grace_s, 2 * in->grace_s);
	int rc = restart_after_failure(in, err);
	if (rc)
		return rc;
	*out = rlm__result_synthetic("DeadlineExceeded", msg, 1, 1);
	return *out ? 0 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
}

/* The channel closed mid-cell (the driver exited or was killed): restart and say so. */
static int recover_from_death(rlm_interp *in, const rlm_error *why, int nested, rlm_result **out,
                              rlm_error *err)
{
	char msg[RLM_ERROR_MESSAGE_MAX + 128];
	if (nested)
		return mark_broken(in, "SandboxDriverExited", why->message, err);
	snprintf(msg, sizeof(msg), "%s; the interpreter was restarted and its state was lost",
	         why->message);
	int rc = restart_after_failure(in, err);
	if (rc)
		return rc;
	*out = rlm__result_synthetic("SandboxDriverExited", msg, 0, 1);
	return *out ? 0 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
}

/* A nested exchange broke the channel: the outermost restarts the driver and its cell's
 * result says why and that the state was lost. */
static int recover_from_broken(rlm_interp *in, rlm_result **out, rlm_error *err)
{
	char msg[RLM_ERROR_MESSAGE_MAX + 128];
	char type[sizeof(in->broken_type)];
	snprintf(msg, sizeof(msg), "%s; the interpreter was restarted and its state was lost",
	         in->broken_msg);
	snprintf(type, sizeof(type), "%s", in->broken_type);
	in->broken = 0;
	int rc = restart_after_failure(in, err);
	if (rc)
		return rc;
	in->state_lost_owed = 0; /* this result says it */
	*out = rlm__result_synthetic(type, msg, 0, 1);
	return *out ? 0 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
}

/* The driver refused the exec frame (a ProtocolError result) instead of running it. With the
 * exec's id, nothing ran and the channel is in order. Without one the driver could not read
 * which frame it refused, so it is restarted before the next cell. */
static int refused_error(rlm_interp *in, json_object *answer, int nested, rlm_error *err)
{
	json_object *error = NULL, *message = NULL;
	json_object_object_get_ex(answer, "error", &error);
	json_object_object_get_ex(error, "message", &message);
	char why[RLM_ERROR_MESSAGE_MAX];
	snprintf(why, sizeof(why), "the sandbox driver refused the cell: %s",
	         message ? json_object_get_string(message) : "no reason given");
	if (!rlm_frame_str(answer, "id")) {
		if (nested)
			return mark_broken(in, "ProtocolError", why, err);
		in->running = 0;
		in->state_lost_owed = 1;
	}
	return rlm_error_set(err, RLM_EPROTO, "%s", why);
}

/* Outside any exchange: a broken mark left behind has done its work (running is 0 and the
 * state loss is owed), so the next exchange starts clean. */
static int ensure_running(rlm_interp *in, int *state_lost, rlm_error *err)
{
	in->broken = 0;
	if (in->running)
		return 0;
	int rc = start_driver(in, err);
	if (rc == 0 && in->state_lost_owed) {
		*state_lost = 1;
		in->state_lost_owed = 0;
	}
	return rc;
}

int rlm_interp_execute_ex(rlm_interp *in, const char *code, const rlm_exec_options *opts,
                          rlm_result **out, rlm_error *err)
{
	*out = NULL;
	if (!in || !code)
		return rlm_error_set(err, RLM_EINVAL, "rlm_interp_execute: no interpreter or code");
	if (*in->cancel)
		return cancelled_error(err);
	rlm_exec_options none = RLM_EXEC_OPTIONS_INIT;
	const rlm_exec_options *o = opts ? opts : &none;
	if (o->struct_size < offsetof(rlm_exec_options, scope) + sizeof(o->scope))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_exec_options: struct_size %u is too small (start from "
		                     "RLM_EXEC_OPTIONS_INIT or rlm_exec_options_init)",
		                     o->struct_size);
	int state_lost = 0, rc;
	int nested = in->top != NULL;
	if (o->scope && (rc = validate_scope(o->scope, err)))
		return rc;
	if ((rc = check_utf8_input(code, o, err)))
		return rc;
	if (nested && !o->scope)
		return rlm_error_set(
		        err, RLM_EINVAL,
		        "a cell run from inside a host call handler needs a scope: the "
		        "main namespace is running the cell that made the call");
	rc = nested ? check_nested(in, "a nested cell", 1, err)
	            : ensure_running(in, &state_lost, err);
	if (rc)
		return rc;
	double timeout_s = o->timeout_s > 0 ? o->timeout_s : in->exec_timeout_s;
	char id[48];
	next_id(in, 'e', id, sizeof(id));
	json_object *frame = build_exec_frame(in, id, code, o, timeout_s, err);
	if (!frame)
		return err ? err->code : RLM_EINVAL;
	rlm_sb req = {0};
	rc = rlm_frame_encode(frame, &req);
	json_object_put(frame);
	if (rc)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory encoding the cell");

	struct exchange_state st;
	exchange_init(&st, in, "result", id);
	double t0 = rlm_now();
	rlm_error xerr = RLM_ERROR_INIT;
	rc = run_exchange(in, &st, req.data, req.len, timeout_s + in->grace_s, &xerr);
	rlm_sb_free(&req);
	if (rc == 0 && is_refusal(st.answer)) {
		rc = refused_error(in, st.answer, nested, err);
	} else if (rc == 0) {
		*out = rlm__result_from_frame(st.answer);
		rc = *out ? 0 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
	} else if (in->broken) {
		rc = nested ? broken_error(in, err) : recover_from_broken(in, out, err);
	} else if (rc == RLM_ETIMEOUT) {
		rc = recover_from_hang(in, &st, timeout_s, nested, out, err);
	} else if (rc == RLM_EBACKEND) {
		rc = recover_from_death(in, &xerr, nested, out, err);
	} else if (rc == RLM_ECANCELLED) {
		/* The cell was abandoned mid-way: the driver must be restarted before any
		 * further use (there is none unless the flag is cleared). */
		if (nested)
			mark_broken(in, "Cancelled", "the interpreter was cancelled", NULL);
		in->running = 0;
		in->state_lost_owed = 1;
		if (err)
			*err = xerr;
	} else if (rc == RLM_ENOTSUP) {
		/* The backend refused before touching the channel (e.g. a nested exchange its
		 * transport cannot carry): nothing to recover, the caller gets the refusal. */
		if (err)
			*err = xerr;
	} else if (nested) {
		rc = mark_broken(in, "ProtocolError", xerr.message, err);
	} else {
		/* A protocol or callback failure: the channel's position is unknown, so the
		 * driver is restarted before the next cell. */
		in->running = 0;
		in->state_lost_owed = 1;
		if (err)
			*err = xerr;
	}
	if (*out) {
		(*out)->duration_ms = (rlm_now() - t0) * 1000.0;
		(*out)->host_calls = st.host_calls;
		(*out)->state_lost |= state_lost;
	}
	exchange_free(&st);
	return rc;
}

int rlm_interp_execute(rlm_interp *in, const char *code, const char *vars_json, rlm_result **out,
                       rlm_error *err)
{
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	o.vars_json = vars_json;
	return rlm_interp_execute_ex(in, code, &o, out, err);
}

/* Sends a simple control frame (reset, drop_scope, ping, shutdown; scope may be NULL) and
 * waits for its answer. A driver that refuses it answers an error result: RLM_EPROTO. */
static int simple_request(rlm_interp *in, const char *type, const char *scope,
                          const char *answer_type, double timeout_s, rlm_error *err)
{
	char id[48];
	next_id(in, type[0], id, sizeof(id));
	json_object *f = json_object_new_object();
	json_object_object_add(f, "type", json_object_new_string(type));
	json_object_object_add(f, "id", json_object_new_string(id));
	if (scope)
		json_object_object_add(f, "scope", json_object_new_string(scope));
	rlm_sb req = {0};
	int rc = rlm_frame_encode(f, &req);
	json_object_put(f);
	if (rc)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	struct exchange_state st;
	exchange_init(&st, in, answer_type, id);
	rc = run_exchange(in, &st, req.data, req.len, timeout_s, err);
	if (rc == 0 && strcmp(rlm_frame_type(st.answer), answer_type)) {
		json_object *error = NULL, *message = NULL;
		json_object_object_get_ex(st.answer, "error", &error);
		json_object_object_get_ex(error, "message", &message);
		rc = rlm_error_set(err, RLM_EPROTO, "the driver refused %s: %s", type,
		                   message ? json_object_get_string(message) : "no reason given");
	}
	rlm_sb_free(&req);
	exchange_free(&st);
	return rc;
}

/* After a failed control request: the channel's position is unknown. Nested, the restart is
 * left to the outermost exchange. A refusal (RLM_EPROTO) leaves the channel in order. */
static int control_failed(rlm_interp *in, int nested, int rc, rlm_error *err)
{
	if (rc == RLM_EPROTO || rc == RLM_ESTATE_LOST)
		return rc;
	if (in->broken)
		return broken_error(in, err);
	if (nested) {
		char why[RLM_ERROR_MESSAGE_MAX];
		snprintf(why, sizeof(why), "%s", err ? err->message : rlm_strerror(rc));
		mark_broken(in, "ProtocolError", why, NULL);
		return rc;
	}
	in->running = 0;
	return rc;
}

int rlm_interp_reset(rlm_interp *in, rlm_error *err)
{
	int lost = 0;
	if (in->top)
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_interp_reset from inside a host call handler: the main "
		                     "namespace is running the cell that made the call");
	int rc = ensure_running(in, &lost, err);
	if (rc)
		return rc;
	rc = simple_request(in, "reset", NULL, "reset_done", in->grace_s + 5, err);
	return rc ? control_failed(in, 0, rc, err) : 0;
}

int rlm_interp_drop_scope(rlm_interp *in, const char *scope, rlm_error *err)
{
	if (!in || !scope)
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_interp_drop_scope: no interpreter or scope");
	int rc = validate_scope(scope, err);
	if (rc)
		return rc;
	int nested = in->top != NULL;
	if (nested) {
		if ((rc = check_nested(in, "rlm_interp_drop_scope", 0, err)))
			return rc;
	} else {
		in->broken = 0;
		if (!in->running)
			return 0; /* the restart that comes next drops every scope */
	}
	rc = simple_request(in, "drop_scope", scope, "scope_dropped", in->grace_s + 5, err);
	return rc ? control_failed(in, nested, rc, err) : 0;
}

void rlm_exec_options_init(rlm_exec_options *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = sizeof(*opts);
}

void rlm_interp_cancel(rlm_interp *in)
{
	if (in)
		*in->cancel = 1;
}

void rlm_interp_set_cancel_flag(rlm_interp *in, volatile int *flag)
{
	if (in)
		in->cancel = flag ? flag : &in->cancel_own;
}

int rlm_interp_interrupt(rlm_interp *in, rlm_error *err)
{
	if (!RLM_HAS_SLOT(in->ops, interrupt))
		return rlm_error_set(err, RLM_ENOTSUP, "backend %s cannot interrupt",
		                     in->desc->name);
	return in->ops->interrupt(in->inst, err);
}

int rlm_interp_upload(rlm_interp *in, const void *data, size_t len, const char *remote_path,
                      rlm_error *err)
{
	if (!remote_path || !*remote_path || (!data && len))
		return rlm_error_set(err, RLM_EINVAL, "upload: no path or data");
	if (*in->cancel)
		return cancelled_error(err);
	return in->ops->upload(in->inst, data, len, remote_path, err);
}

int rlm_interp_download(rlm_interp *in, const char *remote_path, void **data, size_t *len,
                        rlm_error *err)
{
	*data = NULL;
	*len = 0;
	if (!remote_path || !*remote_path)
		return rlm_error_set(err, RLM_EINVAL, "download: no path");
	if (*in->cancel)
		return cancelled_error(err);
	rlm_buf buf = {0};
	int rc = in->ops->download(in->inst, remote_path, &buf, err);
	if (rc)
		return rc;
	/* Re-home the bytes in our allocator with a NUL behind them. */
	char *copy = malloc(buf.len + 1);
	if (!copy) {
		rlm__host()->free(buf.data);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	if (buf.len)
		memcpy(copy, buf.data, buf.len);
	copy[buf.len] = '\0';
	rlm__host()->free(buf.data);
	*data = copy;
	*len = buf.len;
	return 0;
}

int rlm_interp_run_command(rlm_interp *in, const char *const *argv, const char *cwd,
                           double timeout_s, rlm_command_output **out, rlm_error *err)
{
	*out = NULL;
	if (!RLM_HAS_SLOT(in->ops, run_command))
		return rlm_error_set(err, RLM_ENOTSUP, "backend %s cannot run commands",
		                     in->desc->name);
	if (!argv || !argv[0])
		return rlm_error_set(err, RLM_EINVAL, "run_command: empty argv");
	if (*in->cancel)
		return cancelled_error(err);
	rlm_command cmd = {.abi_version = RLM_ABI_VERSION,
	                   .struct_size = sizeof(cmd),
	                   .argv = argv,
	                   .cwd = cwd,
	                   .timeout_s = timeout_s,
	                   .cancel = in->cancel};
	rlm_command_result res = {RLM_ABI_VERSION, sizeof(res), 0, 0, {0}, {0}};
	int rc = in->ops->run_command(in->inst, &cmd, &res, err);
	if (rc)
		return rc;
	rlm_command_output *o = calloc(1, sizeof(*o));
	if (o) {
		o->exit_code = res.exit_code;
		o->timed_out = res.timed_out;
		o->stdout_data = calloc(1, res.out.len + 1);
		o->stderr_data = calloc(1, res.err.len + 1);
	}
	if (!o || !o->stdout_data || !o->stderr_data) {
		rlm_command_output_free(o);
		rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	} else {
		memcpy(o->stdout_data, res.out.data ? res.out.data : "", res.out.len);
		memcpy(o->stderr_data, res.err.data ? res.err.data : "", res.err.len);
		o->stdout_len = res.out.len;
		o->stderr_len = res.err.len;
		*out = o;
	}
	rlm__host()->free(res.out.data);
	rlm__host()->free(res.err.data);
	return rc;
}

void rlm_command_output_free(rlm_command_output *o)
{
	if (!o)
		return;
	free(o->stdout_data);
	free(o->stderr_data);
	free(o);
}

void rlm_interp_set_call_handler(rlm_interp *in, rlm_call_handler fn, void *ctx)
{
	in->call_fn = fn;
	in->call_ctx = ctx;
}

/* What sandbox code could not call as name(...): PROTOCOL.md's rules for tool names. */
static int check_tool_name(const char *name, rlm_error *err)
{
	static const char *const keywords[] = {
	        "False",  "None",   "True",    "and",      "as",       "assert", "async",
	        "await",  "break",  "class",   "continue", "def",      "del",    "elif",
	        "else",   "except", "finally", "for",      "from",     "global", "if",
	        "import", "in",     "is",      "lambda",   "nonlocal", "not",    "or",
	        "pass",   "raise",  "return",  "try",      "while",    "with",   "yield"};
	static const char *const own[] = {"SUBMIT",       "add_buffer", "get_buffer",
	                                  "clear_buffer", "llm_query",  "llm_query_batched",
	                                  "rlm_query",    "VOLUME",     "print"};
	size_t n = name ? strlen(name) : 0;
	int ok = n > 0 && n <= TOOL_NAME_MAX && !(name[0] >= '0' && name[0] <= '9');
	for (size_t i = 0; ok && i < n; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		     (name[i] >= '0' && name[i] <= '9') || name[i] == '_';
	if (!ok)
		return rlm_error_set(err, RLM_EINVAL,
		                     "tool name \"%.80s\": must be an ASCII Python identifier of 1 "
		                     "to %d characters",
		                     name ? name : "(null)", TOOL_NAME_MAX);
	if (n > 4 && name[0] == '_' && name[1] == '_' && name[n - 1] == '_' && name[n - 2] == '_')
		return rlm_error_set(err, RLM_EINVAL, "tool name %s: dunder names are reserved",
		                     name);
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (!strcmp(name, keywords[i]))
			return rlm_error_set(err, RLM_EINVAL,
			                     "tool name %s: a Python keyword cannot be called",
			                     name);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (!strcmp(name, own[i]))
			return rlm_error_set(err, RLM_EINVAL,
			                     "tool name %s: reserved by the sandbox driver", name);
	return 0;
}

static void tool_free(struct interp_tool *t)
{
	free(t->name);
	free(t->description);
}

int rlm_interp_register_tool(rlm_interp *in, const char *name, const char *description,
                             rlm_call_handler fn, void *ctx, rlm_error *err)
{
	if (!in)
		return rlm_error_set(err, RLM_EINVAL, "rlm_interp_register_tool: no interpreter");
	int rc = check_tool_name(name, err);
	if (rc)
		return rc;
	if (in->top)
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_interp_register_tool: a cell is running; register tools "
		                     "between cells");
	struct interp_tool *t = find_tool(in, name);
	if (!fn) {
		if (t) {
			tool_free(t);
			size_t at = (size_t)(t - in->tools);
			memmove(t, t + 1, (in->n_tools - at - 1) * sizeof(*t));
			in->n_tools--;
		}
		return 0;
	}
	char *desc = description && *description ? strdup(description) : NULL;
	if (description && *description && !desc)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	if (t) {
		free(t->description);
		t->description = desc;
		t->fn = fn;
		t->ctx = ctx;
		return 0;
	}
	if (in->n_tools == TOOLS_MAX) {
		free(desc);
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_interp_register_tool: at most %d tools per interpreter",
		                     TOOLS_MAX);
	}
	struct interp_tool *grown = realloc(in->tools, (in->n_tools + 1) * sizeof(*grown));
	char *copy = strdup(name);
	if (grown)
		in->tools = grown;
	if (!grown || !copy) {
		free(desc);
		free(copy);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	in->tools[in->n_tools++] = (struct interp_tool){copy, desc, fn, ctx};
	return 0;
}

char *rlm__interp_tools_text(const rlm_interp *in)
{
	if (!in || !in->n_tools)
		return NULL;
	rlm_sb sb = {0};
	for (size_t i = 0; i < in->n_tools; i++) {
		const struct interp_tool *t = &in->tools[i];
		if (t->description)
			rlm_sb_printf(&sb, "- `%s`: %s\n", t->name, t->description);
		else
			rlm_sb_printf(&sb, "- `%s(...)`\n", t->name);
	}
	return rlm_sb_take(&sb);
}

static json_object *capability_names(uint64_t caps)
{
	static const char *const names[] = {"interrupt",      "run_command",    "volume",
	                                    "nested_execute", "is_alive",       "net_isolation",
	                                    "remote",         "contains_bombs", "binary_channel"};
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (caps & (1ull << i))
			json_object_array_add(a, json_object_new_string(names[i]));
	return a;
}

json_object *rlm__capability_names(uint64_t caps)
{
	return capability_names(caps);
}

char *rlm_interp_status_json(rlm_interp *in)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "backend", json_object_new_string(in->desc->name));
	json_object_object_add(o, "plugin_file",
	                       json_object_new_string(rlm__plugin_file(in->plugin)));
	json_object_object_add(o, "capabilities", capability_names(in->desc->capabilities));
	json_object_object_add(o, "running", json_object_new_boolean(in->running));
	json_object_object_add(o, "driver", in->ready ? json_object_get(in->ready) : NULL);
	json_object *status = NULL;
	rlm_buf buf = {0};
	if (RLM_HAS_SLOT(in->ops, control) &&
	    in->ops->control(in->inst, "status", NULL, &buf, NULL) == 0 && buf.data) {
		/* buf is not NUL-terminated by contract: parse with its length. */
		json_tokener *tok = json_tokener_new();
		status = json_tokener_parse_ex(tok, buf.data, (int)buf.len);
		json_tokener_free(tok);
	}
	rlm__host()->free(buf.data);
	json_object_object_add(o, "backend_status", status);
	char *s = strdup(json_text(o));
	json_object_put(o);
	return s;
}

void rlm_interp_close(rlm_interp *in)
{
	if (!in)
		return;
	if (in->inst) {
		if (in->running) {
			rlm_error ignored = RLM_ERROR_INIT;
			simple_request(in, "shutdown", NULL, "bye", 2.0, &ignored);
		}
		in->ops->shutdown(in->inst);
	}
	rlm__plugin_release(in->plugin);
	json_object_put(in->ready);
	rlm_config_free(in->cfg);
	for (size_t i = 0; i < in->n_tools; i++)
		tool_free(&in->tools[i]);
	free(in->tools);
	free(in);
}
