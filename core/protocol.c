/* protocol.c - the driver protocol codec: RFC 7464 frames (RS, JSON object, LF) with junk
 * skipping, so stray bytes on a channel (a warning, a relay's noise) cannot break it. */
#include "protocol.h"

#include <stdint.h>
#include <string.h>

void rlm_decoder_init(rlm_decoder *dec, size_t max_frame)
{
	memset(dec, 0, sizeof(*dec));
	dec->max_frame = max_frame ? max_frame : RLM_FRAME_MAX_DEFAULT;
}

void rlm_decoder_free(rlm_decoder *dec)
{
	json_object_put(dec->pending);
	dec->pending = NULL;
	rlm_sb_free(&dec->buf);
	if (dec->tok)
		json_tokener_free(dec->tok);
	dec->tok = NULL;
}

void rlm_decoder_reset(rlm_decoder *dec)
{
	dec->buf.len = 0;
	dec->scanned = 0;
	json_object_put(dec->pending);
	dec->pending = NULL;
}

/* Outside a frame everything up to the next RS is junk; it is counted and dropped. */
static size_t skip_junk(rlm_decoder *dec, const char *data, size_t len)
{
	const char *rs = memchr(data, RLM_FRAME_RS, len);
	size_t junk = rs ? (size_t)(rs - data) : len;
	dec->junk_bytes += junk;
	return junk;
}

int rlm_decoder_feed(rlm_decoder *dec, const char *data, size_t len, rlm_error *err)
{
	if (dec->buf.len == 0 && !dec->pending) {
		size_t junk = skip_junk(dec, data, len);
		data += junk;
		len -= junk;
	}
	if (len == 0)
		return 0;
	/* next() drains whole frames after every feed, so the buffer holds at most one
	 * partial frame plus this chunk. */
	if (dec->buf.len + len > dec->max_frame + (size_t)(1 << 20))
		return rlm_error_set(err, RLM_EPROTO, "driver frame larger than %zu bytes",
		                     dec->max_frame);
	if (rlm_sb_append(&dec->buf, data, len))
		return rlm_error_set(err, RLM_ENOMEM, "out of memory reading a frame");
	return 0;
}

static json_object *parse_frame(rlm_decoder *dec, const char *text, size_t len)
{
	if (!dec->tok) {
		dec->tok = json_tokener_new_ex(256);
		if (!dec->tok)
			return NULL;
	}
	json_tokener_reset(dec->tok);
	json_object *obj = json_tokener_parse_ex(dec->tok, text, (int)len);
	if (json_tokener_get_error(dec->tok) != json_tokener_success ||
	    json_tokener_get_parse_end(dec->tok) != len ||
	    !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* The raw output sizes of a result frame: 1 when it has them (both whole numbers, their sum
 * within max_frame, no "stdout"/"stderr" string beside them), 0 when it has none, -1 when
 * they are malformed. */
static int tail_sizes(const rlm_decoder *dec, json_object *obj, size_t *out, size_t *err_len)
{
	json_object *o = NULL, *e = NULL;
	int has_o = json_object_object_get_ex(obj, "stdout_bytes", &o);
	int has_e = json_object_object_get_ex(obj, "stderr_bytes", &e);

	if (!has_o && !has_e)
		return 0;
	if (!has_o || !has_e || !json_object_is_type(o, json_type_int) ||
	    !json_object_is_type(e, json_type_int) || strcmp(rlm_frame_type(obj), "result") != 0)
		return -1;
	int64_t a = json_object_get_int64(o), b = json_object_get_int64(e);
	if (a < 0 || b < 0 || a > INT32_MAX || b > INT32_MAX || (uint64_t)a > dec->max_frame ||
	    (uint64_t)b > dec->max_frame - (uint64_t)a)
		return -1;
	*out = (size_t)a;
	*err_len = (size_t)b;
	return 1;
}

/* Fills the pending frame's "stdout" and "stderr" from the raw bytes at the head of the buffer
 * (tail_need of them are there); returns the frame, or NULL when they are not UTF-8. */
static json_object *finish_tail(rlm_decoder *dec)
{
	json_object *obj = dec->pending;
	const char *p = dec->buf.data;
	size_t n_out = dec->tail_out, n_err = dec->tail_need - dec->tail_out;

	dec->pending = NULL;
	if (rlm_utf8_invalid_at(p, dec->tail_need) != RLM_UTF8_VALID) {
		json_object_put(obj);
		obj = NULL;
	} else {
		json_object_object_add(obj, "stdout", json_object_new_string_len(p, (int)n_out));
		json_object_object_add(obj, "stderr",
		                       json_object_new_string_len(p + n_out, (int)n_err));
	}
	rlm_sb_consume(&dec->buf, dec->tail_need);
	dec->scanned = 0;
	return obj;
}

int rlm_decoder_next(rlm_decoder *dec, json_object **out)
{
	*out = NULL;
	for (;;) {
		if (dec->pending) {
			if (dec->buf.len < dec->tail_need)
				return 0;
			if ((*out = finish_tail(dec)))
				return 1;
			dec->bad_frames++;
			continue;
		}
		if (dec->buf.len == 0)
			return 0;
		if (dec->buf.data[0] != RLM_FRAME_RS) {
			/* Junk left behind a frame in the same chunk. */
			const char *rs = memchr(dec->buf.data, RLM_FRAME_RS, dec->buf.len);
			size_t junk = rs ? (size_t)(rs - dec->buf.data) : dec->buf.len;
			dec->junk_bytes += junk;
			rlm_sb_consume(&dec->buf, junk);
			dec->scanned = 0;
			continue;
		}
		size_t from = dec->scanned ? dec->scanned : 1;
		const char *lf = memchr(dec->buf.data + from, '\n', dec->buf.len - from);
		if (!lf) {
			dec->scanned = dec->buf.len;
			return 0;
		}
		size_t frame_end = (size_t)(lf - dec->buf.data);
		/* An RS inside the span means the earlier frame was cut short: the text from
		 * the last RS on is the real frame (RFC 7464 recovery). */
		const char *text = dec->buf.data + 1;
		size_t text_len = frame_end - 1;
		const char *last_rs = memrchr(text, RLM_FRAME_RS, text_len);
		if (last_rs) {
			dec->bad_frames++;
			text_len -= (size_t)(last_rs + 1 - text);
			text = last_rs + 1;
		}
		json_object *obj = parse_frame(dec, text, text_len);
		rlm_sb_consume(&dec->buf, frame_end + 1);
		dec->scanned = 0;
		size_t n_out = 0, n_err = 0;
		int tail = obj ? tail_sizes(dec, obj, &n_out, &n_err) : 0;
		if (tail > 0) {
			json_object_object_del(obj, "stdout_bytes");
			json_object_object_del(obj, "stderr_bytes");
			dec->pending = obj;
			dec->tail_out = n_out;
			dec->tail_need = n_out + n_err;
			continue;
		}
		if (obj && tail == 0) {
			*out = obj;
			return 1;
		}
		json_object_put(obj);
		dec->bad_frames++;
	}
}

int rlm_frame_encode(json_object *obj, rlm_sb *out)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
	        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return RLM_ENOMEM;
	char rs = RLM_FRAME_RS;
	if (rlm_sb_append(out, &rs, 1) || rlm_sb_append(out, s, len) || rlm_sb_append(out, "\n", 1))
		return RLM_ENOMEM;
	return 0;
}

size_t rlm_utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		/* ASCII runs, a word at a time: most text is ASCII. */
		while (i + 8 <= len) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* past U+10FFFF */
		} else {
			return i;
		}
		if (i + n > len || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (size_t k = 2; k < n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += n;
	}
	return RLM_UTF8_VALID;
}

const char *rlm_frame_str(json_object *frame, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(frame, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

const char *rlm_frame_type(json_object *frame)
{
	const char *t = rlm_frame_str(frame, "type");
	return t ? t : "";
}
