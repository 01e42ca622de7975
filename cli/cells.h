/* cells.h - splits a source file into cells at "# %%" lines (the Jupyter percent format). */
#ifndef RLM_CLI_CELLS_H
#define RLM_CLI_CELLS_H

#include <stddef.h>

typedef struct cell {
	char *code;
	int first_line; /* 1-based line of the cell's first code line in the file */
} cell;

/* Splits src into cells; *out is malloc'ed (free with cells_free). A file without markers is
 * one cell; cells that hold only blank and comment lines are dropped. Returns the count, -1 on
 * ENOMEM. */
int cells_split(const char *src, cell **out);
void cells_free(cell *cells, int n);

#endif
