/* bench_json.h - a bench's figures in machine-readable form, for bench/report.py.
 *
 * When env RLM_BENCH_JSON names a file, bench_json_emit() appends one JSON object per figure
 * to it, one line each, written with a single write() on an O_APPEND descriptor so that lines
 * from several benches (or threads) never interleave. Unset: it does nothing. The Python
 * twin is bench/bench_json.py; `make bench` points both at build/bench/figures.jsonl and then
 * runs bench/report.py on it.
 *
 * One line (fields after "unit" are optional; an absent string field is left out):
 *   {"bench":"bench_local","metric":"exec_x1_p50","label":"exec `x = 1` p50","value":0.085,
 *    "unit":"ms","baseline_label":"floor: pipe loop","baseline":0.05,"ratio":1.7,
 *    "target":1.5,"target_op":"<=","plot":"exec","series":"rlm","group":"x = 1"}
 * - metric: stable id, unique within the bench (a rerun's line with the same bench+metric is
 *   folded into a median by the report). label: what a reader sees.
 * - baseline_label + baseline: the figure it is compared with, in the same unit. ratio:
 *   value / baseline unless set explicitly (.ratio != 0, e.g. an inverted ratio).
 * - target + target_op ("<=", "<", ">=", ">", "=="): the goal. It applies to the ratio when the
 *   line has a baseline, else to the value itself (e.g. "overhead < 1 ms", "errors == 0").
 * - plot: the report's SVG panel the figure is drawn in: "exec" (per-exec latency) or "start"
 *   (start time); any other name gets a panel of its own. Only time units (s, ms, us) plot.
 *   series: "rlm" (default) or "baseline" (drawn in the baseline colour). group: bars with
 *   the same group are drawn together under that heading (e.g. "x = 1", "10 KB print").
 *   An "rlm" line's baseline is drawn too, as a "baseline" bar in the same group, once per
 *   baseline_label (a "baseline" line's own baseline is the rlm figure: not drawn again).
 * The report prints every line, known to it or not; a new figure needs no change there.
 *
 * Usage (designated initializers; every field not named is 0/NULL):
 *   bench_json_emit(&(struct bench_figure){.bench = "bench_local", .metric = "exec_x1_p50",
 *           .label = "exec `x = 1` p50", .value = p50 * 1e3, .unit = "ms",
 *           .baseline_label = "floor: pipe loop", .baseline = floor * 1e3,
 *           .target = 1.5, .target_op = "<=", .plot = "exec", .group = "x = 1"});
 * Header-only and static: each bench includes it once. */
#ifndef RLM_BENCH_JSON_H
#define RLM_BENCH_JSON_H

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench_figure {
	const char *bench, *metric, *label;
	double value;
	const char *unit;
	const char *baseline_label; /* NULL: no baseline (then .baseline is ignored) */
	double baseline;
	double ratio;          /* 0: value / baseline when there is a baseline */
	double target;         /* read only when target_op is set */
	const char *target_op; /* NULL: no target */
	const char *plot, *series, *group;
};

struct bench_json_buf {
	char text[4096];
	size_t len;
	int overflow;
};

static void bench_json_put(struct bench_json_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(b->text) - b->len;
	int n = vsnprintf(b->text + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		b->overflow = 1;
	else
		b->len += (size_t)n;
}

static void bench_json_string(struct bench_json_buf *b, const char *key, const char *s)
{
	if (!s)
		return;
	bench_json_put(b, "%s\"%s\":\"", b->len > 1 ? "," : "", key);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			bench_json_put(b, "\\%c", *p);
		else if (*p < 0x20)
			bench_json_put(b, "\\u%04x", *p);
		else
			bench_json_put(b, "%c", *p);
	}
	bench_json_put(b, "\"");
}

/* JSON has no NaN or infinity: a figure that is not finite is written as null. */
static void bench_json_number(struct bench_json_buf *b, const char *key, double v)
{
	if (isfinite(v))
		bench_json_put(b, ",\"%s\":%.6g", key, v);
	else
		bench_json_put(b, ",\"%s\":null", key);
}

/* Appends f as one line to $RLM_BENCH_JSON; 0 when written or when the variable is unset,
 * -1 (with a message on stderr) when the line could not be written whole. */
static int bench_json_emit(const struct bench_figure *f)
{
	const char *path = getenv("RLM_BENCH_JSON");
	if (!path || !*path)
		return 0;
	struct bench_json_buf b = {.len = 0};
	bench_json_put(&b, "{");
	bench_json_string(&b, "bench", f->bench);
	bench_json_string(&b, "metric", f->metric);
	bench_json_string(&b, "label", f->label ? f->label : f->metric);
	bench_json_number(&b, "value", f->value);
	bench_json_string(&b, "unit", f->unit ? f->unit : "");
	if (f->baseline_label) {
		bench_json_string(&b, "baseline_label", f->baseline_label);
		bench_json_number(&b, "baseline", f->baseline);
		bench_json_number(&b, "ratio", f->ratio != 0 ? f->ratio : f->value / f->baseline);
	} else if (f->ratio != 0) {
		bench_json_number(&b, "ratio", f->ratio);
	}
	if (f->target_op) {
		bench_json_number(&b, "target", f->target);
		bench_json_string(&b, "target_op", f->target_op);
	}
	bench_json_string(&b, "plot", f->plot);
	bench_json_string(&b, "series", f->plot ? (f->series ? f->series : "rlm") : NULL);
	bench_json_string(&b, "group", f->group);
	bench_json_put(&b, "}\n");
	if (b.overflow) {
		fprintf(stderr,
		        "bench_json: %s/%s: the line is longer than %zu bytes, not written\n",
		        f->bench, f->metric, sizeof(b.text));
		return -1;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	ssize_t n = fd < 0 ? -1 : write(fd, b.text, b.len);
	int saved = errno;
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)b.len) {
		fprintf(stderr, "bench_json: cannot append to %s: %s\n", path,
		        n < 0 ? strerror(saved) : "short write");
		return -1;
	}
	return 0;
}

#endif
