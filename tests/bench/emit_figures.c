/* emit_figures.c - writes three figures through bench/bench_json.h, for test_report.py: a
 * plotted ratio, a label that needs JSON escaping, and a value that is not finite. */
#include <math.h>

#include "bench_json.h"

int main(void)
{
	int bad = 0;
	bad |= bench_json_emit(&(struct bench_figure){.bench = "emit_figures",
	                                              .metric = "exec_x1_p50",
	                                              .label = "rlm exec, p50",
	                                              .value = 0.1,
	                                              .unit = "ms",
	                                              .baseline_label = "floor",
	                                              .baseline = 0.05,
	                                              .target = 1.5,
	                                              .target_op = "<=",
	                                              .plot = "exec",
	                                              .group = "x = 1"});
	bad |= bench_json_emit(&(struct bench_figure){.bench = "emit_figures",
	                                              .metric = "escaped",
	                                              .label = "a \"quoted\\\" label\n\twith\x01",
	                                              .value = 3,
	                                              .unit = "ms"});
	bad |= bench_json_emit(&(struct bench_figure){.bench = "emit_figures",
	                                              .metric = "nan",
	                                              .value = NAN,
	                                              .unit = "s",
	                                              .target = 0,
	                                              .target_op = "=="});
	return bad ? 1 : 0;
}
