/* test_cells.c - splitting a file into cells at "# %%" lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cells.h"

static void file_without_markers_is_one_cell(void **state)
{
	(void)state;
	cell *c;
	int n = cells_split("x = 1\nprint(x)\n", &c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].code, "x = 1\nprint(x)\n");
	cells_free(c, n);
}

static void markers_split_cells_and_keep_line_numbers(void **state)
{
	(void)state;
	cell *c;
	int n = cells_split("# %%\nx = 1\n# %% second\ny = 2\n\n# %% [markdown]\nz = 3", &c);
	assert_int_equal(n, 3);
	assert_string_equal(c[0].code, "x = 1\n");
	assert_int_equal(c[0].first_line, 2);
	assert_string_equal(c[1].code, "y = 2\n\n");
	assert_int_equal(c[1].first_line, 4);
	assert_string_equal(c[2].code, "z = 3");
	cells_free(c, n);
}

static void blank_cells_are_dropped(void **state)
{
	(void)state;
	cell *c;
	int n = cells_split("\n# %%\n\n   \n# %%\nx\n", &c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].code, "x\n");
	cells_free(c, n);
}

static void comment_only_cells_are_dropped(void **state)
{
	(void)state;
	cell *c;
	int n = cells_split("# header comment\n# more\n\n# %%\nx = '#'\n# %%\n# just a note\n", &c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].code, "x = '#'\n");
	cells_free(c, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(file_without_markers_is_one_cell),
	        cmocka_unit_test(markers_split_cells_and_keep_line_numbers),
	        cmocka_unit_test(blank_cells_are_dropped),
	        cmocka_unit_test(comment_only_cells_are_dropped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
