/* protocol.h - the driver protocol codec: RFC 7464 frames (RS, JSON object, LF) with junk
 * skipping. core/driver/PROTOCOL.md is the contract this implements. */
#ifndef RLM_PROTOCOL_H
#define RLM_PROTOCOL_H

#include <json-c/json.h>
#include <stddef.h>

#include "rlm/error.h"
#include "util.h"

#define RLM_FRAME_RS         0x1e
#define RLM_PROTOCOL_VERSION 1
/* A frame larger than this is a protocol error; results are capped far below it. */
#define RLM_FRAME_MAX_DEFAULT ((size_t)512 * 1024 * 1024)

/* Incremental decoder: feed it chunks split anywhere, take whole frames out. */
typedef struct rlm_decoder {
	rlm_sb buf;     /* bytes of the frame in progress (starts with RS) */
	size_t scanned; /* bytes of buf already searched for LF */
	size_t max_frame;
	size_t junk_bytes; /* bytes skipped outside frames, for logging */
	size_t bad_frames; /* RS ... LF spans that did not parse as a JSON object */
	json_tokener *tok;
	/* A result frame whose output comes as raw bytes after its LF ("stdout_bytes",
	 * "stderr_bytes": see PROTOCOL.md, Raw output), waiting for tail_need bytes. */
	json_object *pending;
	size_t tail_out, tail_need;
} rlm_decoder;

void rlm_decoder_init(rlm_decoder *dec, size_t max_frame);
void rlm_decoder_free(rlm_decoder *dec);
/* Forgets any partial frame (after the channel restarted). */
void rlm_decoder_reset(rlm_decoder *dec);

/* Adds bytes; junk outside frames is dropped as it arrives, so memory stays bounded by the
 * largest frame. Returns 0 or RLM_ENOMEM / RLM_EPROTO (frame over max_frame). */
int rlm_decoder_feed(rlm_decoder *dec, const char *data, size_t len, rlm_error *err);

/* Takes the next whole frame: returns 1 and sets *out (caller puts it), 0 when more bytes are
 * needed. Malformed frames are counted in bad_frames and skipped. A result frame with raw
 * output comes out once its bytes are in, as "stdout" / "stderr" strings like any other; one
 * whose sizes are not whole numbers within max_frame, or whose bytes are not UTF-8, is
 * malformed. */
int rlm_decoder_next(rlm_decoder *dec, json_object **out);

/* Appends RS + the object's JSON + LF to out. */
int rlm_frame_encode(json_object *obj, rlm_sb *out);

/* Where the first byte that is not part of valid UTF-8 sits in s[0..len), as Python's strict
 * decoder judges it (no overlong forms, no surrogates, nothing past U+10FFFF): the driver
 * cannot read a frame holding one. RLM_UTF8_VALID when there is none. */
#define RLM_UTF8_VALID ((size_t)-1)
size_t rlm_utf8_invalid_at(const char *s, size_t len);

/* The frame's "type", or "" when missing. */
const char *rlm_frame_type(json_object *frame);
/* A string member, or NULL when missing or not a string. */
const char *rlm_frame_str(json_object *frame, const char *key);

#endif
