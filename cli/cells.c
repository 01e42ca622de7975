/* cells.c - splits a source file into cells at "# %%" lines (the Jupyter percent format). */
#include "cells.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* "# %%" at the start of a line, optionally followed by a title or [markdown]. */
static int is_marker(const char *line, size_t len)
{
	return len >= 4 && !strncmp(line, "# %%", 4);
}

/* A cell of only blank and comment lines does nothing: the text above the first marker is
 * usually a file's header comment. */
static int empty_cell(const char *s, size_t len)
{
	int in_comment = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			in_comment = 0;
		else if (s[i] == '#')
			in_comment = 1;
		else if (!in_comment && !isspace((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

static int push(cell **cells, int *n, int *cap, const char *start, size_t len, int first_line)
{
	if (empty_cell(start, len))
		return 0;
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 8;
		cell *p = realloc(*cells, (size_t)ncap * sizeof(cell));
		if (!p)
			return -1;
		*cells = p;
		*cap = ncap;
	}
	char *code = malloc(len + 1);
	if (!code)
		return -1;
	memcpy(code, start, len);
	code[len] = '\0';
	(*cells)[*n].code = code;
	(*cells)[*n].first_line = first_line;
	(*n)++;
	return 0;
}

int cells_split(const char *src, cell **out)
{
	cell *cells = NULL;
	int n = 0, cap = 0, line_no = 1, cell_line = 1;
	const char *cell_start = src, *p = src;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (is_marker(p, len)) {
			if (push(&cells, &n, &cap, cell_start, (size_t)(p - cell_start), cell_line))
				goto fail;
			cell_start = eol ? eol + 1 : p + len;
			cell_line = line_no + 1;
		}
		line_no++;
		p = eol ? eol + 1 : p + len;
	}
	if (push(&cells, &n, &cap, cell_start, (size_t)(p - cell_start), cell_line))
		goto fail;
	*out = cells;
	return n;
fail:
	cells_free(cells, n);
	return -1;
}

void cells_free(cell *cells, int n)
{
	for (int i = 0; i < n; i++)
		free(cells[i].code);
	free(cells);
}
