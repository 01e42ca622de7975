/* rlm/export.h - RLM_API marks the functions librlm exports; RLM_HAS_FIELD reads versioned
 * structs.
 *
 * librlm is built with hidden visibility: only what a public header declares with RLM_API is
 * in its dynamic symbol table (a test compares `nm -D` against the headers). Plugins do not
 * link librlm; for them this marker is inert. */
#ifndef RLM_EXPORT_H
#define RLM_EXPORT_H

#include <stddef.h> /* size_t, for RLM_HAS_FIELD */

#if defined(__GNUC__)
#define RLM_API __attribute__((visibility("default")))
#else
#define RLM_API
#endif

/* Whether a versioned struct (one with a struct_size member, set by its *_INIT macro or
 * _init() function, or by the plugin ABI's rules) is long enough to hold member: the side that
 * is newer must check this before touching a field appended after the other side's version, as
 * SQLite checks iVersion. */
#define RLM_HAS_FIELD(ptr, member)                                                                 \
	((ptr) != NULL &&                                                                          \
	 (size_t)((const char *)&(ptr)->member - (const char *)(ptr)) + sizeof((ptr)->member) <=   \
	         (size_t)(ptr)->struct_size)

#endif /* RLM_EXPORT_H */
