/* test_protocol.c - the frame codec (framing, junk skipping, split chunks, malformed frames,
 * UTF-8 checks), then the host's side of the protocol against a real driver on the local
 * backend: what it sends is readable, refusals and forged frames, NUL characters in output,
 * and a cell that came back only after the hard deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol.h"
#include "rlm/rlm.h"

static int take_all(rlm_decoder *d, json_object **frames, int max)
{
	int n = 0;
	json_object *f;
	while (n < max && rlm_decoder_next(d, &f) == 1)
		frames[n++] = f;
	return n;
}

static void put_all(json_object **frames, int n)
{
	for (int i = 0; i < n; i++)
		json_object_put(frames[i]);
}

static void encode_then_decode_round_trips(void **state)
{
	(void)state;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("exec"));
	json_object_object_add(o, "code", json_object_new_string("print('é\\n')\n"));
	rlm_sb sb = {0};
	assert_int_equal(rlm_frame_encode(o, &sb), 0);
	assert_int_equal(sb.data[0], 0x1e);
	assert_int_equal(sb.data[sb.len - 1], '\n');
	assert_null(memchr(sb.data, '\n', sb.len - 1));
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	assert_int_equal(rlm_decoder_feed(&d, sb.data, sb.len, NULL), 0);
	json_object *f[4];
	assert_int_equal(take_all(&d, f, 4), 1);
	assert_string_equal(rlm_frame_type(f[0]), "exec");
	assert_string_equal(rlm_frame_str(f[0], "code"), "print('é\\n')\n");
	put_all(f, 1);
	json_object_put(o);
	rlm_sb_free(&sb);
	rlm_decoder_free(&d);
}

static void junk_between_frames_is_skipped_and_counted(void **state)
{
	(void)state;
	const char in[] = "warning: noise\n\x1e{\"type\":\"a\"}\nmore junk\x1e{\"type\":\"b\"}\n";
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	assert_int_equal(rlm_decoder_feed(&d, in, sizeof(in) - 1, NULL), 0);
	json_object *f[4];
	assert_int_equal(take_all(&d, f, 4), 2);
	assert_string_equal(rlm_frame_type(f[0]), "a");
	assert_string_equal(rlm_frame_type(f[1]), "b");
	assert_int_equal(d.junk_bytes, strlen("warning: noise\n") + strlen("more junk"));
	put_all(f, 2);
	rlm_decoder_free(&d);
}

static void frames_split_into_single_bytes_decode(void **state)
{
	(void)state;
	const char in[] =
	        "\x1e{\"type\":\"result\",\"stdout\":\"h\\u00e9\"}\n\x1e{\"type\":\"x\"}\n";
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	json_object *f[4];
	int n = 0;
	for (size_t i = 0; i < sizeof(in) - 1; i++) {
		assert_int_equal(rlm_decoder_feed(&d, in + i, 1, NULL), 0);
		n += take_all(&d, f + n, 4 - n);
	}
	assert_int_equal(n, 2);
	assert_string_equal(rlm_frame_str(f[0], "stdout"), "hé");
	put_all(f, n);
	rlm_decoder_free(&d);
}

static void malformed_frame_is_skipped(void **state)
{
	(void)state;
	const char in[] = "\x1e{not json\n\x1e[1,2]\n\x1e{\"type\":\"ok\"}\n";
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	assert_int_equal(rlm_decoder_feed(&d, in, sizeof(in) - 1, NULL), 0);
	json_object *f[4];
	assert_int_equal(take_all(&d, f, 4), 1);
	assert_string_equal(rlm_frame_type(f[0]), "ok");
	assert_int_equal(d.bad_frames, 2);
	put_all(f, 1);
	rlm_decoder_free(&d);
}

static void truncated_frame_recovers_at_next_rs(void **state)
{
	(void)state;
	/* RFC 7464: a frame cut short is followed by a new RS; the decoder takes the new one. */
	const char in[] = "\x1e{\"type\":\"cut\x1e{\"type\":\"whole\"}\n";
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	assert_int_equal(rlm_decoder_feed(&d, in, sizeof(in) - 1, NULL), 0);
	json_object *f[4];
	assert_int_equal(take_all(&d, f, 4), 1);
	assert_string_equal(rlm_frame_type(f[0]), "whole");
	put_all(f, 1);
	rlm_decoder_free(&d);
}

static void oversized_frame_is_a_protocol_error(void **state)
{
	(void)state;
	rlm_decoder d;
	rlm_decoder_init(&d, 16);
	char big[4096];
	memset(big, 'x', sizeof(big));
	big[0] = 0x1e;
	rlm_error err = RLM_ERROR_INIT;
	int rc = 0;
	for (int i = 0; i < 1024 && rc == 0; i++)
		rc = rlm_decoder_feed(&d, big + (i ? 1 : 0), sizeof(big) - 1, &err);
	assert_int_equal(rc, RLM_EPROTO);
	assert_non_null(strstr(err.message, "larger than"));
	rlm_decoder_free(&d);
}

/* A result frame with raw output: its bytes follow the LF (stdout, then stderr), whatever
 * they hold (an RS, an LF, a NUL), and the frame comes out with them as strings. */
static void raw_output_after_a_result_frame_is_read_by_its_sizes(void **state)
{
	(void)state;
	static const char in[] = "\x1e{\"type\":\"result\",\"id\":\"e1\",\"stdout\":null,"
	                         "\"stderr\":null,\"stdout_bytes\":7,\"stderr_bytes\":4}\n"
	                         "a\x1e\nb\0\xc3\xa9"
	                         "err\n"
	                         "\x1e{\"type\":\"pong\",\"id\":\"p\"}\n";
	size_t len = sizeof(in) - 1;
	for (size_t step = 1; step <= len; step++) {
		rlm_decoder d;
		json_object *f[4];
		int n = 0;
		rlm_decoder_init(&d, 0);
		for (size_t off = 0; off < len; off += step) {
			size_t k = len - off < step ? len - off : step;
			assert_int_equal(rlm_decoder_feed(&d, in + off, k, NULL), 0);
			n += take_all(&d, f + n, 4 - n);
		}
		assert_int_equal(n, 2);
		json_object *o;
		assert_true(json_object_object_get_ex(f[0], "stdout", &o));
		assert_int_equal(json_object_get_string_len(o), 7);
		assert_memory_equal(json_object_get_string(o), "a\x1e\nb\0\xc3\xa9", 7);
		assert_string_equal(rlm_frame_str(f[0], "stderr"), "err\n");
		assert_false(json_object_object_get_ex(f[0], "stdout_bytes", NULL));
		assert_string_equal(rlm_frame_type(f[1]), "pong");
		assert_int_equal(d.bad_frames, 0);
		assert_int_equal(d.junk_bytes, 0);
		put_all(f, n);
		rlm_decoder_free(&d);
	}
}

/* Sizes that are not two whole numbers within max_frame, on a result frame, make the frame
 * malformed (skipped, counted); so do raw bytes that are not UTF-8. The next frame decodes. */
static void malformed_raw_output_is_a_bad_frame(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":-1,\"stderr_bytes\":0}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":1.5,\"stderr_bytes\":0}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":\"3\",\"stderr_bytes\":0}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":3}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":70000,\"stderr_bytes\":0}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":40000,\"stderr_bytes\":40000}\n",
	        "\x1e{\"type\":\"pong\",\"stdout_bytes\":1,\"stderr_bytes\":0}\n",
	        "\x1e{\"type\":\"result\",\"stdout_bytes\":2,\"stderr_bytes\":0}\n\xff\xfe",
	};
	static const char next[] = "\x1e{\"type\":\"pong\",\"id\":\"p\"}\n";
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rlm_decoder d;
		json_object *f[2];
		rlm_decoder_init(&d, 1 << 16);
		assert_int_equal(rlm_decoder_feed(&d, bad[i], strlen(bad[i]), NULL), 0);
		assert_int_equal(rlm_decoder_feed(&d, next, sizeof(next) - 1, NULL), 0);
		assert_int_equal(take_all(&d, f, 2), 1);
		assert_string_equal(rlm_frame_type(f[0]), "pong");
		assert_int_equal(d.bad_frames, 1);
		put_all(f, 1);
		rlm_decoder_free(&d);
	}
}

static void junk_alone_uses_no_memory(void **state)
{
	(void)state;
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	char junk[65536];
	memset(junk, 'j', sizeof(junk));
	for (int i = 0; i < 100; i++)
		assert_int_equal(rlm_decoder_feed(&d, junk, sizeof(junk), NULL), 0);
	assert_int_equal(d.buf.len, 0);
	assert_int_equal(d.junk_bytes, 100 * sizeof(junk));
	rlm_decoder_free(&d);
}

static void utf8_check_finds_the_first_bad_byte(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t want;
	} cases[] = {
	        {"", RLM_UTF8_VALID},
	        {"plain ascii, longer than one word", RLM_UTF8_VALID},
	        {"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", RLM_UTF8_VALID},
	        {"abcdefghij\xff", 10},
	        {"\xc3", 0},               /* cut short */
	        {"ab\xc3(", 2},            /* bad continuation */
	        {"\xc0\xaf", 0},           /* overlong */
	        {"\xe0\x80\xaf", 0},       /* overlong */
	        {"x\xed\xa0\x80", 1},      /* surrogate */
	        {"\xf4\x90\x80\x80", 0},   /* past U+10FFFF */
	        {"\xf0\x9f\x98", 0},       /* cut short */
	        {"ok\xe2\x82\xac\x80", 5}, /* stray continuation byte */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = rlm_utf8_invalid_at(cases[i].text, strlen(cases[i].text));
		if (got != cases[i].want)
			fail_msg("case %zu: got %zu, want %zu", i, got, cases[i].want);
	}
}

static void nul_character_in_a_frame_keeps_what_follows(void **state)
{
	(void)state;
	const char in[] = "\x1e{\"type\":\"result\",\"stdout\":\"a\\u0000b\"}\n";
	rlm_decoder d;
	rlm_decoder_init(&d, 0);
	assert_int_equal(rlm_decoder_feed(&d, in, sizeof(in) - 1, NULL), 0);
	json_object *f[1] = {NULL}, *v;
	assert_int_equal(take_all(&d, f, 1), 1);
	assert_true(json_object_object_get_ex(f[0], "stdout", &v));
	assert_int_equal(json_object_get_string_len(v), 3);
	assert_memory_equal(json_object_get_string(v), "a\0b", 3);
	put_all(f, 1);
	rlm_decoder_free(&d);
}

/* ---- the host's side, against a real driver ------------------------------------------- */

#define GRACE_S "5"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_local(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "local", &err) ||
	    rlm_config_set(cfg, "limits.execute_timeout_s", "20", &err) ||
	    rlm_config_set(cfg, "limits.hard_deadline_grace_s", GRACE_S, &err) ||
	    rlm_interp_open(cfg, &in, &err)) {
		rlm_config_free(cfg);
		fail_msg("opening a local interpreter: %s", err.message);
	}
	rlm_config_free(cfg);
	*state = in;
	return 0;
}

static int close_local(void **state)
{
	rlm_interp_close(*state);
	return 0;
}

static rlm_result *run_cell(rlm_interp *in, const char *code, double timeout_s)
{
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	o.timeout_s = timeout_s;
	int rc = rlm_interp_execute_ex(in, code, &o, &r, &err);
	if (rc)
		fail_msg("execute: %s: %s\n--- code:\n%s", rlm_status_name(rc), err.message, code);
	return r;
}

static void expect_repr(rlm_interp *in, const char *code, const char *want)
{
	rlm_result *r = run_cell(in, code, 0);
	if (r->error || !r->value || strcmp(r->value, want))
		fail_msg("%s: want %s, got %s", code, want, r->error ? r->error->line : r->value);
	rlm_result_free(r);
}

static void assert_contains(const char *text, const char *part)
{
	if (!text || !strstr(text, part))
		fail_msg("'%s' not found in '%s'", part, text ? text : "(null)");
}

static void code_that_is_not_utf8_is_refused_at_once_naming_where(void **state)
{
	rlm_interp *in = *state;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	double t0 = now_s();
	int rc = rlm_interp_execute(in, "x = 1\nprint('\xff')\n", NULL, &r, &err);
	assert_int_equal(rc, RLM_EINVAL);
	assert_null(r);
	assert_contains(err.message, "code is not valid UTF-8: byte 0xff at offset 13 (line 2)");
	assert_true(now_s() - t0 < 5);
	expect_repr(in, "'still' + ' here'", "'still here'");
}

static void vars_that_are_not_utf8_are_refused_naming_the_variable(void **state)
{
	rlm_interp *in = *state;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	int rc = rlm_interp_execute(in, "x", "{\"fine\": \"\xc3\xa9\", \"text\": [\"a\xc3\"]}", &r,
	                            &err);
	assert_int_equal(rc, RLM_EINVAL);
	assert_contains(err.message, "the value of 'text' is not valid UTF-8");
	assert_contains(err.message, "offset 26");
	rc = rlm_interp_execute(in, "x", "{\"na\xffme\": 1}", &r, &err);
	assert_int_equal(rc, RLM_EINVAL);
	assert_contains(err.message, "a variable name is not valid UTF-8");
}

static int answer_not_utf8(void *ctx, const char *name, const char *args_json,
                           const char *kwargs_json, char **value_json, char **error_message)
{
	(void)ctx;
	(void)name;
	(void)args_json;
	(void)kwargs_json;
	*error_message = NULL;
	*value_json = strdup("\"caf\xe9\"");
	return 0;
}

static void host_answer_that_is_not_utf8_fails_the_call_not_the_channel(void **state)
{
	rlm_interp *in = *state;
	rlm_interp_set_call_handler(in, answer_not_utf8, NULL);
	rlm_result *r = run_cell(in, "llm_query('q')", 10);
	rlm_interp_set_call_handler(in, NULL, NULL);
	assert_non_null(r->error);
	assert_string_equal(r->error->type, "RuntimeError");
	assert_contains(r->error->message,
	                "llm_query: the host's answer is not valid UTF-8 (byte 0xe9 at offset 4)");
	assert_int_equal(r->timed_out, 0);
	rlm_result_free(r);
}

static void a_refused_cell_is_an_error_at_once_and_loses_nothing(void **state)
{
	rlm_interp *in = *state;
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	rlm_result_free(run_cell(in, "kept = 'yes'", 0));
	o.timeout_s = 1e10; /* the driver refuses a timeout it cannot arm */
	double t0 = now_s();
	int rc = rlm_interp_execute_ex(in, "1", &o, &r, &err);
	assert_int_equal(rc, RLM_EPROTO);
	assert_null(r);
	assert_contains(err.message,
	                "the sandbox driver refused the cell: exec: field 'timeout_s'");
	assert_true(now_s() - t0 < 30);
	r = run_cell(in, "kept", 0);
	assert_int_equal(r->state_lost, 0);
	assert_string_equal(r->value, "'yes'");
	rlm_result_free(r);
}

/* What cell code writes into the driver's channel fd, found through the driver object. */
#define FORGE_PRELUDE                                                                              \
	"import gc, json, os\n"                                                                    \
	"drv = next(o for o in gc.get_objects() if type(o).__name__ == 'Driver')\n"                \
	"def forged(rid, **extra):\n"                                                              \
	"    f = {'type': 'result', 'id': rid, 'stdout': 'forged\\n', 'stderr': '',\n"             \
	"         'stdout_chars': 7, 'stderr_chars': 0, 'truncated': False, 'error': None,\n"      \
	"         'submit': {'forged': True}, 'value': None, 'timed_out': False,\n"                \
	"         'duration_ms': 0}\n"                                                             \
	"    f.update(extra)\n"                                                                    \
	"    os.write(drv.out_fd, ('\\x1e' + json.dumps(f) + '\\n').encode())\n"

static void forged_results_cannot_answer_a_later_cell(void **state)
{
	rlm_interp *in = *state;
	rlm_error err = RLM_ERROR_INIT;
	/* A thread left running writes results for every id it can guess, once the host has
	 * the cell's real result (the "go" file comes after), so they sit in the channel when
	 * the next cell's exchange starts reading. */
	rlm_result *r =
	        run_cell(in,
	                 FORGE_PRELUDE "import threading, time\n"
	                               "mine = drv.exec_id\n"
	                               "n = int(mine[1:].split('-')[0])\n"
	                               "def forge():\n"
	                               "    while not os.path.exists('go'):\n"
	                               "        time.sleep(0.005)\n"
	                               "    forged('not-an-id')\n"
	                               "    for k in range(n + 1, n + 20):\n"
	                               "        forged('e%d' % k)\n"
	                               "        forged('e%d%s' % (k, mine[len('e%d' % n):]))\n"
	                               "    open('forged.done', 'w').close()\n"
	                               "threading.Thread(target=forge, daemon=True).start()\n"
	                               "print('real')\n",
	                 0);
	assert_null(r->error);
	assert_string_equal(r->stdout_text, "real\n");
	rlm_result_free(r);
	assert_int_equal(rlm_interp_upload(in, "", 0, "go", &err), 0);
	void *data = NULL;
	size_t len = 0;
	double deadline = now_s() + 60;
	while (rlm_interp_download(in, "forged.done", &data, &len, &err) != 0) {
		if (now_s() > deadline)
			fail_msg("the forging thread did not finish: %s", err.message);
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	rlm_free(data);
	for (int i = 0; i < 3; i++) {
		r = run_cell(in, "print('second')\n'real value'", 0);
		assert_null(r->error);
		assert_null(r->submit_json);
		assert_string_equal(r->stdout_text, "second\n");
		assert_string_equal(r->value, "'real value'");
		rlm_result_free(r);
	}
}

static void forged_refusal_of_its_own_cell_ends_only_that_cell(void **state)
{
	rlm_interp *in = *state;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	rlm_result_free(run_cell(in, "kept = 1", 0));
	int rc = rlm_interp_execute(in,
	                            FORGE_PRELUDE
	                            "forged(drv.exec_id, refused=True, error={"
	                            "'type': 'ProtocolError', 'message': 'made up'})\n",
	                            NULL, &r, &err);
	assert_int_equal(rc, RLM_EPROTO);
	assert_contains(err.message, "refused the cell: made up");
	r = run_cell(in, "kept", 0);
	assert_int_equal(r->state_lost, 0);
	assert_string_equal(r->value, "1");
	rlm_result_free(r);
	/* Without an id the host cannot tell which frame was refused: it restarts the driver. */
	rc = rlm_interp_execute(in,
	                        FORGE_PRELUDE "forged(None, refused=True)\nimport time\n"
	                                      "time.sleep(30)\n",
	                        NULL, &r, &err);
	assert_int_equal(rc, RLM_EPROTO);
	r = run_cell(in, "'kept' in globals()", 0);
	assert_int_equal(r->state_lost, 1);
	assert_string_equal(r->value, "False");
	rlm_result_free(r);
}

static void nul_characters_in_output_reach_every_view_of_the_result(void **state)
{
	rlm_interp *in = *state;
	rlm_result *r = run_cell(in,
	                         "import sys\nsys.stdout.write('a\\0b')\n"
	                         "n = sys.stderr.write('c\\0d\\0')\n",
	                         0);
	assert_null(r->error);
	assert_int_equal(r->stdout_len, 3);
	assert_memory_equal(r->stdout_text, "a\0b", 4);
	assert_int_equal(r->stderr_len, 4);
	assert_memory_equal(r->stderr_text, "c\0d\0", 5);
	assert_int_equal(r->truncated, 0);
	char *j = rlm_result_to_json(r);
	assert_contains(j, "\"stdout\":\"a\\u0000b\"");
	assert_contains(j, "\"stderr\":\"c\\u0000d\\u0000\"");
	rlm_free(j);
	rlm_tool_output *t = rlm_tool_output_from_result(r, NULL);
	assert_int_equal(t->stdout_len, 3);
	assert_int_equal(t->stderr_len, 4);
	size_t len = 0;
	char *text = rlm_tool_output_to_string_len(t, &len);
	assert_int_equal(len, 17);
	assert_memory_equal(text, "a\0b\n[stderr]\nc\0d\0", 18);
	rlm_free(text);
	j = rlm_tool_output_to_json(t);
	assert_contains(j, "\"stdout\":\"a\\u0000b\"");
	rlm_free(j);
	rlm_tool_output_free(t);
	rlm_result_free(r);
}

/* The cell ignores its timeout (SIGALRM ignored) and swallows the host's interrupt: it comes
 * back, but only after the hard deadline, and must not look like a cell that completed. */
static void cell_back_only_after_the_hard_deadline_says_so(void **state)
{
	rlm_interp *in = *state;
	rlm_result_free(run_cell(in, "kept = 'state'", 0));
	rlm_result *r = run_cell(in,
	                         "import signal, time\n"
	                         "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
	                         "try:\n"
	                         "    time.sleep(120)\n"
	                         "except KeyboardInterrupt:\n"
	                         "    pass\n"
	                         "print('came back')\n",
	                         1);
	assert_int_equal(r->timed_out, 1);
	assert_int_equal(r->state_lost, 0);
	assert_non_null(r->error);
	assert_string_equal(r->error->type, "DeadlineExceeded");
	assert_contains(r->error->message, "hard deadline (1 s timeout + " GRACE_S " s grace)");
	assert_contains(r->error->line, "DeadlineExceeded: ");
	assert_string_equal(r->stdout_text, "came back\n");
	rlm_result_free(r);
	expect_repr(in, "kept", "'state'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(encode_then_decode_round_trips),
	        cmocka_unit_test(junk_between_frames_is_skipped_and_counted),
	        cmocka_unit_test(frames_split_into_single_bytes_decode),
	        cmocka_unit_test(malformed_frame_is_skipped),
	        cmocka_unit_test(truncated_frame_recovers_at_next_rs),
	        cmocka_unit_test(oversized_frame_is_a_protocol_error),
	        cmocka_unit_test(junk_alone_uses_no_memory),
	        cmocka_unit_test(raw_output_after_a_result_frame_is_read_by_its_sizes),
	        cmocka_unit_test(malformed_raw_output_is_a_bad_frame),
	        cmocka_unit_test(utf8_check_finds_the_first_bad_byte),
	        cmocka_unit_test(nul_character_in_a_frame_keeps_what_follows),
	        cmocka_unit_test_setup_teardown(
	                code_that_is_not_utf8_is_refused_at_once_naming_where, open_local,
	                close_local),
	        cmocka_unit_test_setup_teardown(
	                vars_that_are_not_utf8_are_refused_naming_the_variable, open_local,
	                close_local),
	        cmocka_unit_test_setup_teardown(
	                host_answer_that_is_not_utf8_fails_the_call_not_the_channel, open_local,
	                close_local),
	        cmocka_unit_test_setup_teardown(
	                a_refused_cell_is_an_error_at_once_and_loses_nothing, open_local,
	                close_local),
	        cmocka_unit_test_setup_teardown(forged_results_cannot_answer_a_later_cell,
	                                        open_local, close_local),
	        cmocka_unit_test_setup_teardown(forged_refusal_of_its_own_cell_ends_only_that_cell,
	                                        open_local, close_local),
	        cmocka_unit_test_setup_teardown(
	                nul_characters_in_output_reach_every_view_of_the_result, open_local,
	                close_local),
	        cmocka_unit_test_setup_teardown(cell_back_only_after_the_hard_deadline_says_so,
	                                        open_local, close_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
