/* mhd_lazy.c - the libmicrohttpd functions mcp_http.c calls, forwarded to libmicrohttpd loaded
 * on first use. mhd_lazy.h says why. Process-wide state, set once under pthread_once and only
 * read after: the table of resolved functions and, when loading failed, the reason. */
#include "mhd_lazy.h"

#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#ifndef RLM_LIBMHD_SONAME
#define RLM_LIBMHD_SONAME "libmicrohttpd.so.12"
#endif

/* Each member, fn_ and the function's name, has the type of a pointer to that function as
 * <microhttpd.h> declares it. */
#define MHD_FUNCTIONS(X)                                                                           \
	X(MHD_start_daemon_va)                                                                     \
	X(MHD_stop_daemon)                                                                         \
	X(MHD_get_daemon_info)                                                                     \
	X(MHD_get_connection_info)                                                                 \
	X(MHD_lookup_connection_value)                                                             \
	X(MHD_create_response_from_buffer)                                                         \
	X(MHD_create_response_from_callback)                                                       \
	X(MHD_add_response_header)                                                                 \
	X(MHD_queue_response)                                                                      \
	X(MHD_destroy_response)

static struct mhd_table {
#define MEMBER(name) __typeof__(&name) fn_##name;
	MHD_FUNCTIONS(MEMBER)
#undef MEMBER
} table;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_failed;
static char load_error[512];

static void load(void)
{
	/* Never closed: the daemon's threads run its code until MHD_stop_daemon returns. */
	void *lib = dlopen(RLM_LIBMHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		snprintf(load_error, sizeof(load_error), "cannot load libmicrohttpd (%s): %s",
		         RLM_LIBMHD_SONAME, why ? why : "unknown dlopen error");
		load_failed = 1;
		return;
	}
	struct mhd_table t;
#define RESOLVE(name)                                                                              \
	*(void **)&t.fn_##name = dlsym(lib, #name);                                                \
	if (!t.fn_##name) {                                                                        \
		const char *why = dlerror();                                                       \
		snprintf(load_error, sizeof(load_error), "%s has no %s: %s", RLM_LIBMHD_SONAME,    \
		         #name, why ? why : "symbol not found");                                   \
		load_failed = 1;                                                                   \
		return;                                                                            \
	}
	MHD_FUNCTIONS(RESOLVE)
#undef RESOLVE
	table = t;
}

int mcp_mhd_load(char *why, size_t size)
{
	pthread_once(&load_once, load);
	if (load_failed && size)
		snprintf(why, size, "%s", load_error);
	return load_failed ? -1 : 0;
}

/* The table once loading succeeded, else NULL. */
static const struct mhd_table *loaded(void)
{
	pthread_once(&load_once, load);
	return load_failed ? NULL : &table;
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	const struct mhd_table *t = loaded();
	if (!t)
		return NULL;
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = t->fn_MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	const struct mhd_table *t = loaded();
	if (t)
		t->fn_MHD_stop_daemon(daemon);
}

/* The arguments after info_type are reserved: libmicrohttpd reads none for any info type. */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
                                                enum MHD_DaemonInfoType info_type, ...)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_get_daemon_info(daemon, info_type) : NULL;
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
                                                        enum MHD_ConnectionInfoType info_type, ...)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_get_connection_info(connection, info_type) : NULL;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_lookup_connection_value(connection, kind, key) : NULL;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_create_response_from_buffer(size, buffer, mode) : NULL;
}

struct MHD_Response *MHD_create_response_from_callback(uint64_t size, size_t block_size,
                                                       MHD_ContentReaderCallback crc, void *crc_cls,
                                                       MHD_ContentReaderFreeCallback crfc)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_create_response_from_callback(size, block_size, crc, crc_cls, crfc)
	         : NULL;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
                                        const char *content)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_add_response_header(response, header, content) : MHD_NO;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
	const struct mhd_table *t = loaded();
	return t ? t->fn_MHD_queue_response(connection, status_code, response) : MHD_NO;
}

void MHD_destroy_response(struct MHD_Response *response)
{
	const struct mhd_table *t = loaded();
	if (t)
		t->fn_MHD_destroy_response(response);
}
