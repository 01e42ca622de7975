/* fuzz_decoder.c - libFuzzer target for the driver frame decoder: any bytes, split anywhere,
 * must neither crash nor leak, and every frame it yields must be a JSON object. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rlm_decoder dec;
	rlm_decoder_init(&dec, 1 << 16);
	/* The first byte picks the chunk size, so frames get split at every offset. */
	size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;
	for (size_t off = size ? 1 : 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (rlm_decoder_feed(&dec, (const char *)data + off, n, NULL))
			break;
		json_object *frame;
		while (rlm_decoder_next(&dec, &frame) == 1) {
			if (!json_object_is_type(frame, json_type_object))
				abort();
			(void)rlm_frame_type(frame);
			json_object_put(frame);
		}
	}
	rlm_decoder_free(&dec);
	return 0;
}
