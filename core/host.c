/* host.c - the host table the core hands to plugins: allocator, redacting logger, error
 * helpers, clock, driver script, data directory, HTTP helper (http.c). */
#include "host.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "redact.h"
#include "util.h"

extern char **environ;

static int log_threshold = RLM_LOG_WARN;
static char data_dir_path[4096];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void)
{
	const char *lvl = getenv("RLM_LOG_LEVEL");
	if (lvl) {
		if (!strcmp(lvl, "error"))
			log_threshold = RLM_LOG_ERROR;
		else if (!strcmp(lvl, "info"))
			log_threshold = RLM_LOG_INFO;
		else if (!strcmp(lvl, "debug"))
			log_threshold = RLM_LOG_DEBUG;
	}
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(data_dir_path, sizeof(data_dir_path), "%s/rlm", xdg);
	else if (geteuid() == 0)
		/* Root's home is private (0700), so sandboxes running under their own uids
		 * could not reach volumes there; system data lives under /var/lib. */
		snprintf(data_dir_path, sizeof(data_dir_path), "/var/lib/rlm");
	else
		snprintf(data_dir_path, sizeof(data_dir_path), "%s/.local/share/rlm",
		         home && *home ? home : "/tmp");
}

static const char *host_data_dir(void)
{
	pthread_once(&host_once, host_init);
	return data_dir_path;
}

static int name_looks_secret(const char *name, size_t len)
{
	static const char *const words[] = {"KEY",    "TOKEN",      "SECRET", "PASSWORD",
	                                    "PASSWD", "CREDENTIAL", "AUTH"};
	char up[128];
	if (len >= sizeof(up))
		len = sizeof(up) - 1;
	for (size_t i = 0; i < len; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	up[len] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(up, words[i]))
			return 1;
	return 0;
}

/* The values of environment variables whose names look secret. Values under 6 bytes are left
 * out: a TOKENIZERS_PARALLELISM=false or AUTH_MODE=1 is not a credential, and masking it
 * would hide ordinary words. */
static void mask_env_secrets(char *buf)
{
	size_t n = 0, k = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	const char **secrets = malloc((n + 1) * sizeof(*secrets));
	if (!secrets)
		return;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq && strlen(eq + 1) >= 6 && name_looks_secret(*e, (size_t)(eq - *e)))
			secrets[k++] = eq + 1;
	}
	secrets[k] = NULL;
	rlm__redact_secrets(buf, secrets);
	free(secrets);
}

static int token_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '~' ||
	       c == '+' || c == '/' || c == '=';
}

/* Marks the token that follows each occurrence of a marker ("Bearer ", "sk-", "api_key=") as
 * hidden: the marker says it is a credential, whatever its length. */
static void mark_after(const char *buf, const char *marker, int case_insensitive,
                       unsigned char *hidden)
{
	size_t m = strlen(marker);
	const char *p = buf;
	while ((p = case_insensitive ? strcasestr(p, marker) : strstr(p, marker))) {
		p += m;
		while (*p == '"' || *p == ' ' || *p == ':')
			p++;
		while (*p && token_char(*p))
			hidden[p++ - buf] = 1;
	}
}

/* The rule of redact.c: the tokens after the markers, then the values of secret-looking
 * environment variables, each run of hidden bytes written as RLM_REDACT_MASK. */
char *rlm_redact(const char *s)
{
	static const char *const markers[] = {
	        "bearer ",   "api_key=",   "api-key=",    "apikey=",   "token=",    "secret=",
	        "password=", "x-api-key:", "\"api_key\"", "\"token\"", "\"secret\""};
	const size_t mask_len = sizeof(RLM_REDACT_MASK) - 1;
	if (!s)
		s = "";
	size_t len = strlen(s);
	unsigned char *hidden = calloc(len + 1, 1);
	/* A run of one hidden byte grows to the mask's length: room for the worst case. */
	char *buf = malloc(len * mask_len + 1);
	if (!hidden || !buf) {
		free(hidden);
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		mark_after(s, markers[i], 1, hidden);
	mark_after(s, "sk-", 0, hidden);
	size_t w = 0;
	for (size_t r = 0; r < len;) {
		if (!hidden[r]) {
			buf[w++] = s[r++];
			continue;
		}
		while (r < len && hidden[r])
			r++;
		memcpy(buf + w, RLM_REDACT_MASK, mask_len);
		w += mask_len;
	}
	buf[w] = '\0';
	free(hidden);
	mask_env_secrets(buf);
	return buf;
}

void rlm_log(rlm_log_level level, const char *who, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	pthread_once(&host_once, host_init);
	if ((int)level > log_threshold)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	char *clean = rlm_redact(line);
	fprintf(stderr, "rlm[%s] %s: %s\n", names[level & 3], who ? who : "core",
	        clean ? clean : "(log line dropped: out of memory)");
	free(clean);
}

static char *host_str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *host_str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	if (!fmt)
		return NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int rlm__host_sleep(double seconds, const volatile int *cancel)
{
	if (!(seconds > 0)) /* NaN too */
		seconds = 0;
	if (seconds > 3600)
		seconds = 3600;
	double end = rlm_now() + seconds;
	for (;;) {
		if (cancel && *cancel)
			return RLM_ECANCELLED;
		double left = end - rlm_now();
		if (left <= 0)
			return 0;
		if (left > 0.05)
			left = 0.05;
		struct timespec ts = {0, (long)(left * 1e9)};
		nanosleep(&ts, NULL);
	}
}

static const rlm_host_api host_table = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_host_api),
        .alloc = malloc,
        .realloc = realloc,
        .free = free,
        .log = rlm_log,
        .error_set = rlm_error_set,
        .error_set_http = rlm_error_set_http,
        .now = rlm_now,
        .driver_script = rlm__driver_script,
        .driver_script_len = 0, /* patched in rlm__host(): a length is not a constant expression */
        .data_dir = host_data_dir,
        .http_request = rlm_http_send,
        .http_response_free = rlm_http_response_free,
        .http_header = rlm_http_header,
        .str_dup = host_str_dup,
        .str_printf = host_str_printf,
        .sleep = rlm__host_sleep,
        .redact = rlm__redact_secrets,
        .opt_is_set = rlm__opt_is_set,
        .opt_string = rlm__opt_string,
        .opt_int = rlm__opt_int,
        .opt_number = rlm__opt_number,
        .opt_bool = rlm__opt_bool,
        .opt_string_list = rlm__opt_string_list,
        .opt_object_json = rlm__opt_object_json,
};

static rlm_host_api host_copy;
static pthread_once_t copy_once = PTHREAD_ONCE_INIT;

static void copy_init(void)
{
	host_copy = host_table;
	host_copy.driver_script_len = rlm__driver_script_len;
}

const rlm_host_api *rlm__host(void)
{
	pthread_once(&copy_once, copy_init);
	return &host_copy;
}
