/* test_curl_lazy.c - libcurl is loaded by the first HTTP request, not at process start
 * (core/curl_lazy.c). The oracle is this process's own /proc/self/maps. Linked with the
 * internal archive, which (like librlm) does not link libcurl.
 *
 * Usage: test_curl_lazy            the lazy-load behaviour (cmocka, in this order)
 *        test_curl_lazy concurrent  the first use comes from 16 threads at once: libcurl is
 *                                   loaded and initialised once, every request succeeds
 *        test_curl_lazy load-fails  with RLM_LIBCURL set to a file that cannot serve: a request
 *                                   fails with RLM_EIO naming the file and dlerror's reason,
 *                                   and the forwarders fail without crashing */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host.h"
#include "http.h"
#include "rlm/rlm.h"

/* Whether a file whose name starts with "libcurl" is mapped into this process. */
static int libcurl_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *slash = strrchr(line, '/');
		found = slash && !strncmp(slash + 1, "libcurl", 7);
	}
	fclose(f);
	return found;
}

/* --- a one-shot loopback HTTP server: answers one request with 200 "ok" --- */

static int server_fd = -1;

static void answer_one(int c);

/* Answers (intptr_t)arg connections, one request each, then returns. */
static void *serve_n(void *arg)
{
	for (intptr_t i = 0; i < (intptr_t)arg; i++) {
		int c = accept(server_fd, NULL, NULL);
		if (c < 0)
			return NULL;
		answer_one(c);
	}
	return NULL;
}

static void answer_one(int c)
{
	char buf[4096];
	size_t len = 0;
	/* Read the request head (a GET has no body), then answer. */
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	                             "Connection: close\r\n\r\nok";
	ssize_t w = write(c, answer, sizeof(answer) - 1);
	(void)w;
	close(c);
}

/* Listens on a loopback port and answers n requests in a thread; returns the port. */
static int server_start(pthread_t *thread, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	server_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(server_fd >= 0);
	assert_int_equal(bind(server_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(server_fd, 64), 0);
	assert_int_equal(getsockname(server_fd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(pthread_create(thread, NULL, serve_n, (void *)(intptr_t)n), 0);
	return ntohs(a.sin_port);
}

static int http_get(const char *url, rlm_http_response *resp, rlm_error *err)
{
	rlm_http_request req = {.abi_version = RLM_ABI_VERSION, .struct_size = sizeof(req)};
	req.url = url;
	req.max_retries = 0;
	req.timeout_s = 60;
	return rlm__host()->http_request(&req, resp, err);
}

/* --- the tests, run in this order in one process --- */

static void process_start_maps_no_libcurl(void **state)
{
	(void)state;
	assert_false(libcurl_mapped());
}

static void a_local_interpreter_leaves_libcurl_unloaded(void **state)
{
	(void)state;
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	rlm_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	if (rlm_interp_open(cfg, &in, &err))
		fail_msg("open: %s", err.message);
	if (rlm_interp_execute(in, "x = 1", NULL, &res, &err))
		fail_msg("execute: %s", err.message);
	rlm_result_free(res);
	rlm_interp_close(in);
	rlm_config_free(cfg);
	assert_false(libcurl_mapped());
}

static void the_first_request_loads_libcurl(void **state)
{
	(void)state;
	pthread_t thread;
	int port = server_start(&thread, 1);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	rlm_http_response resp;
	rlm_error err = RLM_ERROR_INIT;
	int rc = http_get(url, &resp, &err);
	pthread_join(thread, NULL);
	close(server_fd);
	if (rc)
		fail_msg("request: %s", err.message);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body.len, 2);
	assert_memory_equal(resp.body.data, "ok", 2);
	rlm_http_response_free(&resp);
	assert_true(libcurl_mapped());
}

/* A Retry-After in HTTP-date form is parsed by libcurl's curl_getdate: it works through the
 * forwarder, in a process that already loaded libcurl or not. */
static void retry_after_dates_parse_through_the_forwarder(void **state)
{
	(void)state;
	assert_true(rlm__http_retry_after("Retry-After: Thu, 01 Jan 1970 00:01:40 GMT\r\n", 40) ==
	            60.0);
}

/* --- the first use from many threads at once --- */

#define THREADS 16

static pthread_barrier_t start_line;
static char concurrent_url[64];

static void *request_at_once(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start_line);
	rlm_http_response resp;
	rlm_error err = RLM_ERROR_INIT;
	intptr_t ok = http_get(concurrent_url, &resp, &err) == 0 && resp.status == 200 &&
	              resp.body.len == 2 && !memcmp(resp.body.data, "ok", 2);
	if (!ok)
		fprintf(stderr, "request failed: %s\n", err.message);
	rlm_http_response_free(&resp);
	return (void *)ok;
}

static void the_first_use_from_many_threads_loads_once(void **state)
{
	(void)state;
	assert_false(libcurl_mapped());
	pthread_t server, threads[THREADS];
	int port = server_start(&server, THREADS);
	snprintf(concurrent_url, sizeof(concurrent_url), "http://127.0.0.1:%d/", port);
	pthread_barrier_init(&start_line, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, request_at_once, NULL), 0);
	int succeeded = 0;
	for (int i = 0; i < THREADS; i++) {
		void *ok;
		pthread_join(threads[i], &ok);
		succeeded += ok != NULL;
	}
	pthread_join(server, NULL);
	close(server_fd);
	pthread_barrier_destroy(&start_line);
	assert_int_equal(succeeded, THREADS);
	assert_true(libcurl_mapped());
}

/* --- RLM_LIBCURL names a file that cannot serve --- */

static int load_fails(void)
{
	const char *file = getenv("RLM_LIBCURL");
	const char *want = getenv("EXPECT_IN_MESSAGE");
	rlm_http_response resp;
	rlm_error err = RLM_ERROR_INIT;
	int rc = http_get("http://127.0.0.1:9/", &resp, &err);
	printf("rc %d, message: %s\n", rc, err.message);
	int ok = rc == RLM_EIO && file && strstr(err.message, file) && want &&
	         strstr(err.message, want);
	/* A second request, and a date only libcurl parses: the same answer, no crash. */
	rlm_error err2 = RLM_ERROR_INIT;
	ok = ok && http_get("http://127.0.0.1:9/", &resp, &err2) == RLM_EIO &&
	     !strcmp(err.message, err2.message);
	ok = ok && rlm__http_retry_after("Retry-After: Thu, 01 Jan 1970 00:01:40 GMT\r\n", 0) < 0;
	ok = ok && !libcurl_mapped();
	printf("%s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "load-fails"))
		return load_fails();
	if (argc > 1 && !strcmp(argv[1], "concurrent")) {
		const struct CMUnitTest concurrent[] = {
		        cmocka_unit_test(the_first_use_from_many_threads_loads_once),
		};
		return cmocka_run_group_tests(concurrent, NULL, NULL);
	}
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(process_start_maps_no_libcurl),
	        cmocka_unit_test(a_local_interpreter_leaves_libcurl_unloaded),
	        cmocka_unit_test(the_first_request_loads_libcurl),
	        cmocka_unit_test(retry_after_dates_parse_through_the_forwarder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
