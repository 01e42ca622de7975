/* test_cells.c - splitting a file into cells at "# %%" lines, and reading a notebook's code
 * cells. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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

static void notebook_code_cells_are_read_in_order(void **state)
{
	(void)state;
	const char *nb = "{\"nbformat\": 4, \"nbformat_minor\": 5, \"metadata\": {}, \"cells\": ["
	                 "{\"cell_type\": \"markdown\", \"source\": [\"# Title\\n\"]},"
	                 "{\"cell_type\": \"code\", \"source\": [\"x = 1\\n\", \"y = 2\"]},"
	                 "{\"cell_type\": \"code\", \"source\": []},"
	                 "{\"cell_type\": \"raw\", \"source\": \"raw\"},"
	                 "{\"cell_type\": \"code\", \"source\": \"print(x + y)\"}]}";
	cell *c;
	char why[128] = "";
	assert_true(cells_is_notebook(nb, strlen(nb)));
	int n = cells_from_notebook(nb, strlen(nb), &c, why, sizeof(why));
	assert_int_equal(n, 2);
	assert_string_equal(c[0].code, "x = 1\ny = 2");
	assert_int_equal(c[0].notebook_index, 2);
	assert_int_equal(c[0].first_line, 0);
	assert_string_equal(c[1].code, "print(x + y)");
	assert_int_equal(c[1].notebook_index, 5);
	cells_free(c, n);
}

static void python_source_is_not_a_notebook(void **state)
{
	(void)state;
	const char *py = "x = {'nbformat': 4}\n";
	const char *dict = "{\"a\": 1}";
	assert_false(cells_is_notebook(py, strlen(py)));
	assert_false(cells_is_notebook(dict, strlen(dict)));
}

static void unreadable_notebooks_are_refused_with_a_reason(void **state)
{
	(void)state;
	static const struct {
		const char *json, *why;
	} cases[] = {
	        {"{\"nbformat\": 3, \"worksheets\": []}", "nbformat 3"},
	        {"{\"nbformat\": 4}", "no \"cells\""},
	        {"{\"nbformat\": 4, \"cells\": [{\"source\": \"x\"}]}", "cell_type"},
	        {"{\"nbformat\": 4, \"cells\": [{\"cell_type\": \"code\", \"source\": 5}]}",
	         "must be a string"},
	        {"{\"nbformat\": 4, \"cells\": [{\"cell_type\": \"code\", \"source\": "
	         "\"a\\u0000b\"}]}",
	         "NUL"},
	        {"print(1)", "not a Jupyter notebook"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cell *c = NULL;
		char why[256] = "";
		int n = cells_from_notebook(cases[i].json, strlen(cases[i].json), &c, why,
		                            sizeof(why));
		assert_int_equal(n, -2);
		assert_null(c);
		assert_non_null(strstr(why, cases[i].why));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(file_without_markers_is_one_cell),
	        cmocka_unit_test(markers_split_cells_and_keep_line_numbers),
	        cmocka_unit_test(blank_cells_are_dropped),
	        cmocka_unit_test(comment_only_cells_are_dropped),
	        cmocka_unit_test(notebook_code_cells_are_read_in_order),
	        cmocka_unit_test(python_source_is_not_a_notebook),
	        cmocka_unit_test(unreadable_notebooks_are_refused_with_a_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
