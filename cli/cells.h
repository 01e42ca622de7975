/* cells.h - the cells of a source file: split at "# %%" lines (the Jupyter percent format), or
 * read from a Jupyter notebook's code cells. */
#ifndef RLM_CLI_CELLS_H
#define RLM_CLI_CELLS_H

#include <stddef.h>

typedef struct cell {
	char *code;
	int first_line;     /* 1-based line of the cell's first code line in the file; 0 in a
	                     * notebook */
	int notebook_index; /* 1-based index among the notebook's cells (markdown included); 0
	                     * in a percent-format file */
} cell;

/* Splits src into cells; *out is malloc'ed (free with cells_free). A file without markers is
 * one cell; cells that hold only blank and comment lines are dropped. Returns the count, -1 on
 * ENOMEM. */
int cells_split(const char *src, cell **out);
void cells_free(cell *cells, int n);

/* Whether src is a Jupyter notebook: a JSON object with an "nbformat" key. */
int cells_is_notebook(const char *src, size_t len);

/* Reads the code cells of a notebook (nbformat 4: cells whose cell_type is "code", their
 * source a string or a list of strings); *out as cells_split gives it, empty cells dropped.
 * Returns the count, -1 on ENOMEM, -2 when src is not a notebook rlm can read (why says
 * what is wrong). */
int cells_from_notebook(const char *src, size_t len, cell **out, char *why, size_t why_len);

#endif
