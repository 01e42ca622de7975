/* fuzz_grpc.c - libFuzzer target for what the Modal plugin's gRPC client takes from a server:
 * the 5-byte-framed protobuf messages of a response body (split at any offset, decoded as the
 * messages rlm reads) and the header/trailer lines (grpc-status, percent-encoded grpc-message,
 * base64 grpc-status-details-bin holding an RPCStatus with a retry policy). Any bytes must
 * neither crash nor leak; a malformed frame must stop the call, not be delivered.
 *
 * grpc.c is included whole so its static parsers are reached without a server. */
#include "../../backends/modal/grpc.c"

static const ProtobufCMessageDescriptor *const descs[] = {
        &modal__client__task_exec_stdio_read_response__descriptor,
        &modal__client__image_join_streaming_response__descriptor,
        &modal__client__filesystem_runtime_output_batch__descriptor,
        &modal__client__sandbox_get_task_id_response__descriptor,
        &modal__client__task_exec_wait_response__descriptor,
};

static int count_message(void *ctx, const ProtobufCMessage *msg)
{
	int *n = ctx;
	if (!msg)
		abort();
	return ++*n > 1000; /* a callback may stop the stream */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_engine e;
	mg_channel ch;
	struct mg_call c;
	int delivered = 0;

	if (size < 2)
		return 0;
	memset(&e, 0, sizeof(e));
	memset(&ch, 0, sizeof(ch));
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&e.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	ch.e = &e;
	c.ch = &ch;
	c.desc = descs[data[0] % (sizeof(descs) / sizeof(descs[0]))];
	if (data[1] & 1) { /* header and trailer lines, one per '\n' */
		for (size_t off = 2; off < size;) {
			const uint8_t *nl = memchr(data + off, '\n', size - off);
			size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
			char *line = malloc(n);
			if (!line)
				break;
			memcpy(line, data + off, n);
			mg_on_header(line, 1, n, &c);
			free(line);
			off += n;
		}
		if (c.retry_after_s < 0)
			abort();
	} else { /* a response body, in chunks of 1..16 bytes as the transport hands them over */
		size_t chunk = (size_t)(data[1] >> 1) % 16 + 1;
		c.on_message = (data[1] & 2) ? count_message : NULL;
		c.ctx = &delivered;
		for (size_t off = 2; off < size; off += chunk) {
			size_t n = size - off < chunk ? size - off : chunk;
			if (mg_on_data((char *)data + off, 1, n, &c) != n)
				break;
			pthread_mutex_lock(&e.mu);
			int bad = take_bytes(&c);
			pthread_mutex_unlock(&e.mu);
			if (bad || mg_drain_frames(&c))
				break;
		}
		if (c.first)
			protobuf_c_message_free_unpacked(c.first, NULL);
	}
	free(c.in);
	free(c.buf);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&e.mu);
	return 0;
}
