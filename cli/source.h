/* source.h - reading what the user hands the command line (code, a context, --var values)
 * and checking that code is text Python accepts: no NUL byte, valid UTF-8, a leading BOM
 * dropped as Python drops it. */
#ifndef RLM_CLI_SOURCE_H
#define RLM_CLI_SOURCE_H

#include <stddef.h>

/* Reads path whole ("-": standard input). *data is malloc'ed and NUL-terminated (the NUL is
 * not counted in *len). On failure prints "rlm CMD: cannot read PATH: why" and returns
 * EXIT_USAGE (128 + the signal when one interrupted the read); 0 on success. */
int cli_read_input(const char *cmd, const char *path, char **data, size_t *len);

/* Offset of the first byte where s stops being valid UTF-8 (overlong forms, surrogates and
 * code points past U+10FFFF are invalid), len when it is valid throughout. */
size_t cli_utf8_invalid_at(const char *s, size_t len);

/* Checks the code read from name (a file, "-c", "<stdin>"): a NUL byte or bytes that are not
 * UTF-8 are refused, naming where (name:line:column and the byte offset). Prints and returns
 * EXIT_USAGE, or 0 when the code is fine. */
int cli_check_code(const char *cmd, const char *name, const char *s, size_t len);

/* 3 when s starts with the UTF-8 byte order mark, else 0. */
size_t cli_bom_len(const char *s, size_t len);

#endif
