/* cells.c - the cells of a source file: "# %%" lines (the Jupyter percent format) split it,
 * or a Jupyter notebook's code cells are read from its JSON. */
#include "cells.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
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

static int push(cell **cells, int *n, int *cap, const char *start, size_t len, int first_line,
                int notebook_index)
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
	(*cells)[*n].notebook_index = notebook_index;
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
			if (push(&cells, &n, &cap, cell_start, (size_t)(p - cell_start), cell_line,
			         0))
				goto fail;
			cell_start = eol ? eol + 1 : p + len;
			cell_line = line_no + 1;
		}
		line_no++;
		p = eol ? eol + 1 : p + len;
	}
	if (push(&cells, &n, &cap, cell_start, (size_t)(p - cell_start), cell_line, 0))
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

/* The notebook as a JSON object when src parses as one with an "nbformat" key, else NULL. */
static json_object *parse_notebook(const char *src, size_t len)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)src[i]))
		i++;
	if (i == len || src[i] != '{')
		return NULL;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_object *nb = json_tokener_parse_ex(tok, src, (int)(len > 0x7fffffff ? 0 : len));
	json_tokener_free(tok);
	if (!json_object_is_type(nb, json_type_object) ||
	    !json_object_object_get_ex(nb, "nbformat", NULL)) {
		json_object_put(nb);
		return NULL;
	}
	return nb;
}

int cells_is_notebook(const char *src, size_t len)
{
	json_object *nb = parse_notebook(src, len);
	json_object_put(nb);
	return nb != NULL;
}

static int refuse(char *why, size_t why_len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -2;
}

/* Appends one piece of a cell's source; a NUL inside it is refused (Python would). */
static int append_source(json_object *piece, char **buf, size_t *len, int index, char *why,
                         size_t why_len)
{
	if (!json_object_is_type(piece, json_type_string))
		return refuse(why, why_len,
		              "cell %d: \"source\" must be a string or a list of strings", index);
	size_t n = (size_t)json_object_get_string_len(piece);
	const char *s = json_object_get_string(piece);
	if (memchr(s, '\0', n))
		return refuse(why, why_len, "cell %d: the source holds a NUL character", index);
	char *p = realloc(*buf, *len + n + 1);
	if (!p)
		return -1;
	memcpy(p + *len, s, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
	return 0;
}

/* The code of a notebook cell, joined when its source is a list of lines. */
static int cell_source(json_object *c, int index, char **out, size_t *len, char *why,
                       size_t why_len)
{
	json_object *src;
	*out = NULL;
	*len = 0;
	if (!json_object_object_get_ex(c, "source", &src))
		return refuse(why, why_len, "cell %d has no \"source\"", index);
	int rc = 0;
	if (json_object_is_type(src, json_type_array))
		for (size_t i = 0; !rc && i < json_object_array_length(src); i++)
			rc = append_source(json_object_array_get_idx(src, i), out, len, index, why,
			                   why_len);
	else
		rc = append_source(src, out, len, index, why, why_len);
	if (!rc && !*out)
		*out = calloc(1, 1); /* an empty list */
	if (!rc && !*out)
		rc = -1;
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int cells_from_notebook(const char *src, size_t len, cell **out, char *why, size_t why_len)
{
	*out = NULL;
	json_object *nb = parse_notebook(src, len), *v, *list;
	if (!nb)
		return refuse(why, why_len,
		              "not a Jupyter notebook (a JSON object with \"nbformat\" and "
		              "\"cells\")");
	int major = json_object_object_get_ex(nb, "nbformat", &v) ? json_object_get_int(v) : 0;
	if (major != 4) {
		json_object_put(nb);
		return refuse(why, why_len,
		              "nbformat %d is not supported (only 4); convert it with `jupyter "
		              "nbconvert --to notebook`",
		              major);
	}
	if (!json_object_object_get_ex(nb, "cells", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		json_object_put(nb);
		return refuse(why, why_len, "the notebook has no \"cells\" list");
	}
	cell *cells = NULL;
	int n = 0, cap = 0, rc = 0;
	for (size_t i = 0; !rc && i < json_object_array_length(list); i++) {
		json_object *c = json_object_array_get_idx(list, i), *type;
		int index = (int)i + 1;
		if (!json_object_is_type(c, json_type_object) ||
		    !json_object_object_get_ex(c, "cell_type", &type)) {
			rc = refuse(why, why_len, "cell %d has no \"cell_type\"", index);
			break;
		}
		if (strcmp(json_object_get_string(type), "code"))
			continue; /* markdown and raw cells are not code */
		char *code;
		size_t code_len;
		rc = cell_source(c, index, &code, &code_len, why, why_len);
		if (!rc)
			rc = push(&cells, &n, &cap, code, code_len, 0, index);
		free(code);
	}
	json_object_put(nb);
	if (rc) {
		cells_free(cells, n);
		return rc;
	}
	*out = cells;
	return n;
}
