/* curl_lazy.c - the libcurl functions http.c calls, forwarded to libcurl loaded on first use.
 * curl_lazy.h says why. Process-wide state, set once under pthread_once and only read after:
 * the table of resolved functions and, when loading failed, the reason. */
#include "curl_lazy.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

#ifndef RLM_LIBCURL_SONAME
#define RLM_LIBCURL_SONAME "libcurl.so.4"
#endif

/* Each member, fn_ and the function's name (curl.h has macros of the bare names), has the type
 * of a pointer to the libcurl function of that name, straight from <curl/curl.h>: a header
 * that changes a prototype changes the table with it. */
#define CURL_FUNCTIONS(X)                                                                          \
	X(curl_global_init)                                                                        \
	X(curl_share_init)                                                                         \
	X(curl_share_setopt)                                                                       \
	X(curl_easy_init)                                                                          \
	X(curl_easy_reset)                                                                         \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_strerror)                                                                      \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)                                                                     \
	X(curl_getdate)

static struct curl_table {
#define MEMBER(name) __typeof__(&(name)) fn_##name;
	CURL_FUNCTIONS(MEMBER)
#undef MEMBER
} table;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_failed;
static char load_error[512];

static void load(void)
{
	const char *file = secure_getenv("RLM_LIBCURL");
	if (!file || !*file)
		file = RLM_LIBCURL_SONAME;
	/* RTLD_LOCAL: libcurl's symbols stay out of the global scope, as a DT_NEEDED would not;
	 * the handle is never closed (http.c's share and handle pool live until exit). */
	void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		snprintf(load_error, sizeof(load_error), "cannot load libcurl (%s): %s", file,
		         why ? why : "unknown dlopen error");
		load_failed = 1;
		return;
	}
	struct curl_table t;
#define RESOLVE(name)                                                                              \
	*(void **)&t.fn_##name = dlsym(lib, #name);                                                \
	if (!t.fn_##name) {                                                                        \
		const char *why = dlerror();                                                       \
		snprintf(load_error, sizeof(load_error), "%s has no %s: %s", file, #name,          \
		         why ? why : "symbol not found");                                          \
		load_failed = 1;                                                                   \
		return;                                                                            \
	}
	CURL_FUNCTIONS(RESOLVE)
#undef RESOLVE
	table = t;
}

int rlm_curl_load(rlm_error *err)
{
	pthread_once(&load_once, load);
	if (load_failed)
		return rlm_error_set(err, RLM_EIO, "http_request: %s", load_error);
	return 0;
}

/* The table once loading succeeded, else NULL. */
static const struct curl_table *loaded(void)
{
	pthread_once(&load_once, load);
	return load_failed ? NULL : &table;
}

/* The forwarders. Names in parentheses: curl.h defines function-like macros of the same names
 * (the typecheck wrappers), which must not expand here. */

CURLcode(curl_global_init)(long flags)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_global_init(flags) : CURLE_FAILED_INIT;
}

CURLSH *(curl_share_init)(void)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_share_init() : NULL;
}

/* libcurl reads the one argument after option by the option's kind (lib/share.c): an int for
 * SHARE and UNSHARE, a function for the lock callbacks, a pointer for the rest. */
CURLSHcode(curl_share_setopt)(CURLSH *share, CURLSHoption option, ...)
{
	const struct curl_table *t = loaded();
	if (!t)
		return CURLSHE_NOT_BUILT_IN;
	va_list ap;
	va_start(ap, option);
	CURLSHcode rc;
	switch (option) {
	case CURLSHOPT_SHARE:
	case CURLSHOPT_UNSHARE: rc = t->fn_curl_share_setopt(share, option, va_arg(ap, int)); break;
	case CURLSHOPT_LOCKFUNC:
	case CURLSHOPT_UNLOCKFUNC:
		rc = t->fn_curl_share_setopt(share, option, va_arg(ap, void (*)(void)));
		break;
	default: rc = t->fn_curl_share_setopt(share, option, va_arg(ap, void *)); break;
	}
	va_end(ap);
	return rc;
}

CURL *(curl_easy_init)(void)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_easy_init() : NULL;
}

void(curl_easy_reset)(CURL *curl)
{
	const struct curl_table *t = loaded();
	if (t)
		t->fn_curl_easy_reset(curl);
}

void(curl_easy_cleanup)(CURL *curl)
{
	const struct curl_table *t = loaded();
	if (t)
		t->fn_curl_easy_cleanup(curl);
}

/* The argument's type follows from the option number's range, as libcurl itself reads it
 * (lib/setopt.c): long, object pointer, function pointer, curl_off_t, blob pointer. */
CURLcode(curl_easy_setopt)(CURL *curl, CURLoption option, ...)
{
	const struct curl_table *t = loaded();
	if (!t)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = t->fn_curl_easy_setopt(curl, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = t->fn_curl_easy_setopt(curl, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = t->fn_curl_easy_setopt(curl, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = t->fn_curl_easy_setopt(curl, option, va_arg(ap, curl_off_t));
	else
		rc = t->fn_curl_easy_setopt(curl, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode(curl_easy_perform)(CURL *curl)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_easy_perform(curl) : CURLE_FAILED_INIT;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode(curl_easy_getinfo)(CURL *curl, CURLINFO info, ...)
{
	const struct curl_table *t = loaded();
	if (!t)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = t->fn_curl_easy_getinfo(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *(curl_easy_strerror)(CURLcode code)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_easy_strerror(code) : "libcurl could not be loaded";
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *data)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_slist_append(list, data) : NULL;
}

void(curl_slist_free_all)(struct curl_slist *list)
{
	const struct curl_table *t = loaded();
	if (t)
		t->fn_curl_slist_free_all(list);
}

time_t(curl_getdate)(const char *p, const time_t *unused)
{
	const struct curl_table *t = loaded();
	return t ? t->fn_curl_getdate(p, unused) : (time_t)-1;
}
