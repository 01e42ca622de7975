/* test_protocol.c - the frame codec: framing, junk skipping, split chunks, malformed frames. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "protocol.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
