/* mcp_stdio.c - the stdio transport: one JSON-RPC message per line on stdin and stdout.
 *
 * The reading thread answers quick requests itself and runs each tools/call on a thread of
 * its own, so a `notifications/cancelled` for it can be read while it runs (the call is then
 * cancelled and its response never written, as the spec asks). stdout is the protocol
 * channel only: fd 1 is pointed at stderr at start, so nothing else can write to it. The end
 * of stdin or a stop signal cancels what runs and returns. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mcp.h"

#define READ_CHUNK 65536

struct job {
	struct stdio *io;
	json_object *msg;
	json_object *id; /* borrowed from msg */
	struct mcp_call call;
	pthread_t thread;
	struct job *next;
};

struct stdio {
	struct mcp_server *server;
	int out_fd;
	int out_broken;
	pthread_mutex_t write_mu;
	pthread_mutex_t mu;
	pthread_cond_t changed;
	struct job *jobs;
	int njobs;
};

static void write_line(struct stdio *io, json_object *msg)
{
	size_t len = 0;
	char *text = mcp_to_text(msg, &len);
	if (!text)
		return;
	pthread_mutex_lock(&io->write_mu);
	text[len] = '\n';
	for (size_t off = 0; off < len + 1 && !io->out_broken;) {
		ssize_t w = write(io->out_fd, text + off, len + 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			io->out_broken = 1;
		else
			off += (size_t)w;
	}
	pthread_mutex_unlock(&io->write_mu);
	free(text);
}

static void emit(void *ctx, json_object *msg)
{
	struct job *j = ctx;
	if (!j->call.cancelled)
		write_line(j->io, msg);
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct stdio *io = j->io;
	json_object *resp = mcp_server_handle(io->server, j->msg, &j->call);
	/* A cancelled request gets no response (basic/utilities/cancellation). */
	if (resp && !j->call.cancelled)
		write_line(io, resp);
	json_object_put(resp);
	pthread_mutex_lock(&io->mu);
	for (struct job **link = &io->jobs; *link; link = &(*link)->next) {
		if (*link == j) {
			*link = j->next;
			break;
		}
	}
	io->njobs--;
	pthread_cond_broadcast(&io->changed);
	pthread_mutex_unlock(&io->mu);
	mcp_call_destroy(&j->call);
	json_object_put(j->msg);
	free(j);
	return NULL;
}

static void start_job(struct stdio *io, json_object *msg, int max_inflight)
{
	json_object *id = json_object_object_get(msg, "id");
	pthread_mutex_lock(&io->mu);
	int busy = io->njobs >= max_inflight;
	pthread_mutex_unlock(&io->mu);
	struct job *j = busy ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(r, "id", json_object_get(id));
		json_object_object_add(r, "result",
		                       mcp_tool_error("busy",
		                                      "the server runs %d tool calls already "
		                                      "(--max-inflight): retry when one is done",
		                                      max_inflight));
		write_line(io, r);
		json_object_put(r);
		json_object_put(msg);
		return;
	}
	j->io = io;
	j->msg = msg;
	j->id = id;
	mcp_call_init(&j->call);
	j->call.emit = emit;
	j->call.emit_ctx = j;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&io->mu);
	j->next = io->jobs;
	io->jobs = j;
	io->njobs++;
	if (pthread_create(&j->thread, &attr, job_main, j)) {
		io->jobs = j->next;
		io->njobs--;
		pthread_mutex_unlock(&io->mu);
		json_object *r = mcp_error_response(id, MCP_INTERNAL_ERROR,
		                                    "cannot start a thread for the call", NULL);
		write_line(io, r);
		json_object_put(r);
		mcp_call_destroy(&j->call);
		json_object_put(msg);
		free(j);
	} else {
		pthread_mutex_unlock(&io->mu);
	}
	pthread_attr_destroy(&attr);
}

static void cancel_request(struct stdio *io, json_object *id)
{
	pthread_mutex_lock(&io->mu);
	for (struct job *j = io->jobs; j; j = j->next)
		if (json_object_equal(j->id, id))
			mcp_call_cancel(&j->call);
	pthread_mutex_unlock(&io->mu);
}

static void handle_line(struct stdio *io, const char *line, size_t len, int max_inflight)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	json_tokener *tok = json_tokener_new_ex(64);
	json_object *msg = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
	int ok = tok && json_tokener_get_error(tok) == json_tokener_success &&
	         json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(msg);
		json_object *r = mcp_error_response(
		        NULL, MCP_PARSE_ERROR, "Parse error: the line is not one JSON value", NULL);
		write_line(io, r);
		json_object_put(r);
		return;
	}
	json_object *cancel_id = mcp_cancelled_request_id(msg);
	if (cancel_id) {
		cancel_request(io, cancel_id);
		json_object_put(msg);
		return;
	}
	if (mcp_server_is_long(msg)) {
		start_job(io, msg, max_inflight);
		return;
	}
	struct mcp_call call;
	mcp_call_init(&call);
	json_object *resp = mcp_server_handle(io->server, msg, &call);
	if (resp)
		write_line(io, resp);
	json_object_put(resp);
	mcp_call_destroy(&call);
	json_object_put(msg);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Cancels every call and waits for their threads (they must be gone before the server is
 * freed). A call that ignores cancellation is waited for; the wait says so every 10 s. */
static void drain(struct stdio *io)
{
	pthread_mutex_lock(&io->mu);
	for (struct job *j = io->jobs; j; j = j->next)
		mcp_call_cancel(&j->call);
	double next_note = now_s() + 10;
	while (io->njobs > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&io->changed, &io->mu, &ts);
		if (now_s() > next_note) {
			fprintf(stderr, "rlm mcp: waiting for %d cancelled call%s to stop\n",
			        io->njobs, io->njobs == 1 ? "" : "s");
			next_note = now_s() + 10;
		}
	}
	pthread_mutex_unlock(&io->mu);
}

int mcp_stdio_run(struct mcp_server *s, const struct mcp_options *opts, int stop_fd)
{
	struct stdio io = {.server = s};
	io.out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
	if (io.out_fd < 0 || dup2(2, 1) < 0) {
		fprintf(stderr, "rlm mcp: cannot set up stdout: %s\n", strerror(errno));
		return 3;
	}
	pthread_mutex_init(&io.write_mu, NULL);
	pthread_mutex_init(&io.mu, NULL);
	pthread_cond_init(&io.changed, NULL);
	size_t cap = READ_CHUNK * 2, len = 0;
	char *buf = malloc(cap);
	int skipping = 0; /* inside a line longer than max_body: drop it up to its end */
	const char *why = "stdin closed";
	while (buf && !io.out_broken) {
		struct pollfd p[2] = {{0, POLLIN, 0}, {stop_fd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			why = "poll failed";
			break;
		}
		if (p[1].revents) {
			why = "signal";
			break;
		}
		if (!p[0].revents)
			continue;
		if (cap - len < READ_CHUNK) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				why = "out of memory";
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t r = read(0, buf + len, READ_CHUNK);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		size_t start = 0;
		for (char *nl; (nl = memchr(buf + start, '\n', len - start)) != NULL;) {
			size_t line_len = (size_t)(nl - (buf + start));
			if (!skipping)
				handle_line(&io, buf + start, line_len, opts->max_inflight);
			skipping = 0;
			start += line_len + 1;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
		if (len > opts->max_body) {
			if (!skipping) {
				json_object *e =
				        mcp_error_response(NULL, MCP_INVALID_REQUEST,
				                           "Invalid Request: the message is longer "
				                           "than the server's limit "
				                           "(--max-body-bytes)",
				                           NULL);
				write_line(&io, e);
				json_object_put(e);
			}
			skipping = 1;
			len = 0;
		}
	}
	if (len && !skipping && !io.out_broken)
		handle_line(&io, buf, len, opts->max_inflight);
	fprintf(stderr, "rlm mcp: stopping (%s)\n", io.out_broken ? "stdout closed" : why);
	free(buf);
	drain(&io);
	close(io.out_fd);
	pthread_cond_destroy(&io.changed);
	pthread_mutex_destroy(&io.mu);
	pthread_mutex_destroy(&io.write_mu);
	return 0;
}
