/* source.c - reading the command line's inputs whole and checking code text (see source.h). */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "signals.h"

int cli_read_input(const char *cmd, const char *path, char **data, size_t *len)
{
	int stdin_ = !strcmp(path, "-");
	const char *shown = stdin_ ? "standard input" : path;
	int fd = stdin_ ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_input_error(cmd, "cannot open %s: %s", shown, strerror(errno));
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int e = buf ? 0 : ENOMEM;
	while (!e) {
		if (cap - n < 2) {
			char *p = cap < ((size_t)-1) / 2 ? realloc(buf, cap * 2) : NULL;
			if (!p) {
				e = ENOMEM;
				break;
			}
			buf = p;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - n - 1);
		if (got > 0)
			n += (size_t)got;
		else if (got == 0)
			break;
		else if (errno != EINTR || cli_signal_received())
			e = errno;
	}
	if (!stdin_)
		close(fd);
	if (e) {
		free(buf);
		if (cli_signal_received())
			return cli_signal_exit_status();
		return cli_input_error(cmd, "cannot read %s: %s", shown, strerror(e));
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

/* Length of the UTF-8 sequence starting at s (at most left bytes), 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t cli_utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq(u + i, len - i);
		if (!n)
			return i;
		i += n;
	}
	return len;
}

/* 1-based line and column (in characters) of byte offset at in s, which is valid UTF-8 up
 * to there. */
static void line_column(const char *s, size_t at, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < at; i++) {
		if (s[i] == '\n')
			*line += 1, *col = 1;
		else if (((unsigned char)s[i] & 0xc0) != 0x80)
			*col += 1;
	}
}

int cli_check_code(const char *cmd, const char *name, const char *s, size_t len)
{
	size_t line, col;
	const char *nul = memchr(s, '\0', len);
	size_t bad = cli_utf8_invalid_at(s, nul ? (size_t)(nul - s) : len);
	if (nul && bad == (size_t)(nul - s)) {
		line_column(s, bad, &line, &col);
		return cli_input_error(cmd,
		                       "%s:%zu:%zu: a NUL byte at offset %zu; Python source cannot "
		                       "hold one",
		                       name, line, col, bad);
	}
	if (bad < len) {
		line_column(s, bad, &line, &col);
		return cli_input_error(
		        cmd,
		        "%s:%zu:%zu: bytes that are not UTF-8 (0x%02x at offset %zu); "
		        "code must be UTF-8",
		        name, line, col, (unsigned char)s[bad], bad);
	}
	return 0;
}

size_t cli_bom_len(const char *s, size_t len)
{
	return len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3) ? 3 : 0;
}
