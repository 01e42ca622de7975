/* eval_report.c - rlm_eval_report: results of one or many evals (shards, directories) merged
 * by id, summed up as text, JSON, or one self-contained HTML page (inline CSS, inline SVG
 * charts, no script, nothing fetched). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval_internal.h"
#include "rlm/eval.h"
#include "util.h"

#define HIST_SCORE_BINS 10
#define HIST_TIME_BINS  12
#define CELL_SHOWN      240   /* characters of a long cell shown before "more" */
#define CELL_MAX        20000 /* characters of a long cell kept at all */
#define TOP_ERRORS      5

/* ---- gathering ---- */

static int is_results_name(const char *name)
{
	size_t n = strlen(name);
	if (!strcmp(name, "results.jsonl"))
		return 1;
	return n > 20 && !strncmp(name, "results.shard-", 14) && !strcmp(name + n - 6, ".jsonl");
}

static int add_dir(const char *dir, struct eval_results *r, json_object *sources, rlm_error *err)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return rlm_error_set(err, RLM_EINVAL, "cannot read %s: %s", dir, strerror(errno));
	int rc = 0, found = 0;
	for (int i = 0; i < n; i++) {
		if (!rc && is_results_name(names[i]->d_name)) {
			rlm_sb sb = {0};
			rlm_sb_printf(&sb, "%s/%s", dir, names[i]->d_name);
			char *path = rlm_sb_take(&sb);
			rc = path ? rlm__eval_results_read(path, dir, r, err)
			          : rlm_error_set(err, RLM_ENOMEM, "out of memory");
			if (path)
				json_object_array_add(sources, json_object_new_string(path));
			free(path);
			found++;
		}
		free(names[i]);
	}
	free(names);
	if (!rc && !found)
		rc = rlm_error_set(err, RLM_EINVAL,
		                   "%s holds no results.jsonl or "
		                   "results.shard-K-of-N.jsonl",
		                   dir);
	return rc;
}

static int gather(const char *const *paths, size_t npaths, struct eval_results *r,
                  json_object *sources, rlm_error *err)
{
	if (!paths || npaths == 0)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_report: no results given");
	for (size_t i = 0; i < npaths; i++) {
		struct stat st;
		if (!paths[i] || stat(paths[i], &st) != 0)
			return rlm_error_set(err, RLM_EINVAL, "cannot read %s: %s",
			                     paths[i] ? paths[i] : "(null)", strerror(errno));
		int rc;
		if (S_ISDIR(st.st_mode)) {
			rc = add_dir(paths[i], r, sources, err);
		} else {
			const char *slash = strrchr(paths[i], '/');
			char *dir =
			        slash ? strndup(paths[i], (size_t)(slash - paths[i])) : strdup(".");
			rc = dir ? rlm__eval_results_read(paths[i], dir, r, err)
			         : rlm_error_set(err, RLM_ENOMEM, "out of memory");
			json_object_array_add(sources, json_object_new_string(paths[i]));
			free(dir);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- statistics ---- */

struct stats {
	size_t tasks;
	long ok, task_error, infra_error, other;
	long scored, retried, scorer_errors;
	double score_sum, time_max, iterations_sum;
	double p50_s, p95_s;
	long tokens_in, tokens_out, llm_calls;
	double *times, *scores; /* of the rows that have them */
	size_t ntimes, nscores;
	json_object *errors; /* error text (first line, cut) -> count */
};

static const char *str(json_object *row, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(row, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void count_error(struct stats *s, const char *status, const char *error)
{
	char key[160];
	snprintf(key, sizeof(key), "%s: %.120s", status, error);
	key[strcspn(key, "\n")] = '\0';
	json_object *n;
	long have = json_object_object_get_ex(s->errors, key, &n) ? json_object_get_int64(n) : 0;
	json_object_object_add(s->errors, key, json_object_new_int64(have + 1));
}

static int compute(const struct eval_results *r, struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->tasks = r->n;
	s->times = calloc(r->n + 1, sizeof(double));
	s->scores = calloc(r->n + 1, sizeof(double));
	s->errors = json_object_new_object();
	if (!s->times || !s->scores || !s->errors)
		return RLM_ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		json_object *row = r->rows[i];
		const char *status = str(row, "status"), *error = str(row, "error");
		s->ok += !strcmp(status, "ok");
		s->task_error += !strcmp(status, "task_error");
		s->infra_error += !strcmp(status, "infra_error");
		s->other += strcmp(status, "ok") && strcmp(status, "task_error") &&
		            strcmp(status, "infra_error");
		double score = rlm__eval_number(row, "score", NAN),
		       t = rlm__eval_number(row, "duration_s", NAN);
		if (!isnan(score)) {
			s->scores[s->nscores++] = score;
			s->score_sum += score;
			s->scored++;
		}
		if (!isnan(t)) {
			s->times[s->ntimes++] = t;
			if (t > s->time_max)
				s->time_max = t;
		}
		s->iterations_sum += rlm__eval_number(row, "iterations", 0);
		s->tokens_in += (long)rlm__eval_number(row, "tokens_in", 0);
		s->tokens_out += (long)rlm__eval_number(row, "tokens_out", 0);
		s->llm_calls += (long)rlm__eval_number(row, "llm_calls", 0);
		s->retried += rlm__eval_number(row, "attempt", 1) > 1;
		if (error && !strcmp(status, "ok") && !strncmp(error, "scorer:", 7))
			s->scorer_errors++;
		if (error)
			count_error(s, status, error);
	}
	double *sorted = calloc(s->ntimes + 1, sizeof(double));
	if (!sorted)
		return RLM_ENOMEM;
	memcpy(sorted, s->times, s->ntimes * sizeof(double));
	s->p50_s = rlm__eval_quantile(sorted, s->ntimes, 0.5);
	s->p95_s = rlm__eval_quantile(sorted, s->ntimes, 0.95);
	free(sorted);
	return 0;
}

static void stats_free(struct stats *s)
{
	free(s->times);
	free(s->scores);
	json_object_put(s->errors);
}

static double pct(long n, size_t total)
{
	return total ? 100.0 * (double)n / (double)total : 0;
}

/* The most frequent errors, most frequent first: fills keys (borrowed) and counts. */
static size_t top_errors(const struct stats *s, const char **keys, long *counts, size_t max)
{
	size_t n = 0;
	json_object_object_foreach(s->errors, key, v)
	{
		long c = json_object_get_int64(v);
		size_t at = n < max ? n : max;
		while (at > 0 && counts[at - 1] < c) {
			if (at < max) {
				keys[at] = keys[at - 1];
				counts[at] = counts[at - 1];
			}
			at--;
		}
		if (at < max) {
			keys[at] = key;
			counts[at] = c;
			if (n < max)
				n++;
		}
	}
	return n;
}

/* ---- text ---- */

static void text_report(const struct stats *s, json_object *sources, rlm_sb *o)
{
	size_t nsrc = json_object_array_length(sources);
	rlm_sb_printf(o, "%zu task%s from %zu results file%s\n", s->tasks, s->tasks == 1 ? "" : "s",
	              nsrc, nsrc == 1 ? "" : "s");
	rlm_sb_printf(
	        o, "  status: ok %ld (%.1f%%), task_error %ld (%.1f%%), infra_error %ld (%.1f%%)",
	        s->ok, pct(s->ok, s->tasks), s->task_error, pct(s->task_error, s->tasks),
	        s->infra_error, pct(s->infra_error, s->tasks));
	if (s->other)
		rlm_sb_printf(o, ", other %ld", s->other);
	rlm_sb_puts(o, "\n");
	if (s->scored)
		rlm_sb_printf(o, "  score: mean %.3f over %ld scored task%s\n",
		              s->score_sum / (double)s->scored, s->scored,
		              s->scored == 1 ? "" : "s");
	else
		rlm_sb_puts(o, "  score: no task has a score\n");
	rlm_sb_printf(o, "  task time: p50 %.3g s, p95 %.3g s, max %.3g s\n", s->p50_s, s->p95_s,
	              s->time_max);
	rlm_sb_printf(o, "  iterations: mean %.1f; LLM calls %ld; tokens %ld in, %ld out\n",
	              s->tasks ? s->iterations_sum / (double)s->tasks : 0, s->llm_calls,
	              s->tokens_in, s->tokens_out);
	if (s->retried || s->scorer_errors)
		rlm_sb_printf(o, "  retried: %ld task%s; scorer errors: %ld\n", s->retried,
		              s->retried == 1 ? "" : "s", s->scorer_errors);
	const char *keys[TOP_ERRORS];
	long counts[TOP_ERRORS];
	size_t n = top_errors(s, keys, counts, TOP_ERRORS);
	if (n)
		rlm_sb_puts(o, "  most frequent errors:\n");
	for (size_t i = 0; i < n; i++)
		rlm_sb_printf(o, "    %5ld  %s\n", counts[i], keys[i]);
}

/* ---- JSON ---- */

/* The row as the report shows it: trajectory joined with its directory, "_dir" dropped. */
static json_object *report_row(json_object *row)
{
	json_object *copy = NULL;
	if (json_object_deep_copy(row, &copy, NULL))
		return NULL;
	const char *dir = str(row, "_dir"), *traj = str(row, "trajectory");
	if (dir && traj && traj[0] != '/' && strcmp(dir, ".")) {
		rlm_sb sb = {0};
		rlm_sb_printf(&sb, "%s/%s", dir, traj);
		char *joined = rlm_sb_take(&sb);
		if (joined)
			json_object_object_add(copy, "trajectory", json_object_new_string(joined));
		free(joined);
	}
	json_object_object_del(copy, "_dir");
	return copy;
}

/* A double printed with 6 significant digits (json-c would print 17). */
static json_object *json_num(double v)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.6g", v);
	return json_object_new_double_s(v, buf);
}

static json_object *json_num_or_null(double v)
{
	return isnan(v) ? NULL : json_num(v);
}

static json_object *json_report(const struct stats *s, const struct eval_results *r,
                                json_object *sources)
{
	json_object *o = json_object_new_object(), *st = json_object_new_object();
	json_object_object_add(o, "sources", json_object_get(sources));
	json_object_object_add(o, "tasks", json_object_new_int64((int64_t)s->tasks));
	json_object_object_add(st, "ok", json_object_new_int64(s->ok));
	json_object_object_add(st, "task_error", json_object_new_int64(s->task_error));
	json_object_object_add(st, "infra_error", json_object_new_int64(s->infra_error));
	json_object_object_add(o, "status", st);
	json_object_object_add(o, "scored", json_object_new_int64(s->scored));
	json_object_object_add(
	        o, "mean_score",
	        json_num_or_null(s->scored ? s->score_sum / (double)s->scored : NAN));
	json_object_object_add(o, "p50_s", json_num(s->p50_s));
	json_object_object_add(o, "p95_s", json_num(s->p95_s));
	json_object_object_add(o, "max_s", json_num(s->time_max));
	json_object_object_add(o, "iterations_mean",
	                       json_num(s->tasks ? s->iterations_sum / (double)s->tasks : 0));
	json_object_object_add(o, "llm_calls", json_object_new_int64(s->llm_calls));
	json_object_object_add(o, "tokens_in", json_object_new_int64(s->tokens_in));
	json_object_object_add(o, "tokens_out", json_object_new_int64(s->tokens_out));
	json_object_object_add(o, "retried", json_object_new_int64(s->retried));
	json_object_object_add(o, "scorer_errors", json_object_new_int64(s->scorer_errors));
	json_object_object_add(o, "bad_lines", json_object_new_int64(r->bad_lines));
	json_object *rows = json_object_new_array();
	for (size_t i = 0; i < r->n; i++)
		json_object_array_add(rows, report_row(r->rows[i]));
	json_object_object_add(o, "rows", rows);
	return o;
}

/* ---- HTML ---- */

static void esc_n(rlm_sb *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++) {
		switch (s[i]) {
		case '&': rlm_sb_puts(o, "&amp;"); break;
		case '<': rlm_sb_puts(o, "&lt;"); break;
		case '>': rlm_sb_puts(o, "&gt;"); break;
		case '"': rlm_sb_puts(o, "&quot;"); break;
		case '\'': rlm_sb_puts(o, "&#39;"); break;
		default: rlm_sb_append(o, s + i, 1);
		}
	}
}

static void esc(rlm_sb *o, const char *s)
{
	esc_n(o, s, SIZE_MAX);
}

/* Bytes of the first `chars` UTF-8 characters of s (never splitting one). */
static size_t utf8_prefix(const char *s, size_t chars)
{
	size_t i = 0;
	for (size_t c = 0; s[i] && c < chars; c++) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
	}
	return i;
}

/* A cell of text: short ones whole, long ones cut with the rest under <details>. */
static void text_cell(rlm_sb *o, const char *s)
{
	if (!s) {
		rlm_sb_puts(o, "<td class=\"null\">&mdash;</td>");
		return;
	}
	size_t shown = utf8_prefix(s, CELL_SHOWN);
	rlm_sb_puts(o, "<td class=\"text\">");
	if (!s[shown]) {
		esc(o, s);
	} else {
		rlm_sb_puts(o, "<details><summary>");
		esc_n(o, s, shown);
		rlm_sb_puts(o, "&hellip;</summary>");
		size_t kept = utf8_prefix(s, CELL_MAX);
		esc_n(o, s, kept);
		if (s[kept])
			rlm_sb_puts(o, " [cut]");
		rlm_sb_puts(o, "</details>");
	}
	rlm_sb_puts(o, "</td>");
}

static void json_cell(rlm_sb *o, json_object *v)
{
	if (!v)
		text_cell(o, NULL);
	else
		text_cell(o, json_object_is_type(v, json_type_string)
		                     ? json_object_get_string(v)
		                     : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static void href_escape(rlm_sb *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/", c))
			rlm_sb_append(o, s, 1);
		else
			rlm_sb_printf(o, "%%%02X", c);
	}
}

/* target relative to the directory base (both absolute, canonical). Caller frees. */
static char *relative_path(const char *base, const char *target)
{
	size_t common = 0, i = 0;
	for (; base[i] && base[i] == target[i]; i++)
		if (base[i] == '/')
			common = i;
	if (!base[i] && (target[i] == '/' || !target[i]))
		common = i;
	rlm_sb sb = {0};
	rlm_sb_puts(&sb, "");
	for (const char *p = base + common; *p; p++)
		if (*p == '/')
			rlm_sb_puts(&sb, "../");
	const char *rest = target + common;
	rlm_sb_puts(&sb, *rest == '/' ? rest + 1 : rest);
	return rlm_sb_take(&sb);
}

static void link_cell(rlm_sb *o, json_object *row, const char *link_base)
{
	const char *dir = str(row, "_dir"), *traj = str(row, "trajectory");
	if (!traj) {
		text_cell(o, NULL);
		return;
	}
	char *href = NULL;
	if (link_base && dir && traj[0] != '/') {
		char *abs_dir = realpath(dir, NULL);
		rlm_sb t = {0};
		if (abs_dir)
			rlm_sb_printf(&t, "%s/%s", abs_dir, traj);
		char *target = rlm_sb_take(&t);
		href = target ? relative_path(link_base, target) : NULL;
		free(target);
		free(abs_dir);
	}
	if (!href) {
		rlm_sb t = {0};
		rlm_sb_printf(&t, "%s%s%s", dir && traj[0] != '/' ? dir : "",
		              dir && traj[0] != '/' ? "/" : "", traj);
		href = rlm_sb_take(&t);
	}
	rlm_sb_puts(o, "<td><a href=\"");
	if (href)
		href_escape(o, href);
	rlm_sb_puts(o, "\">trajectory</a></td>");
	free(href);
}

/* A bar chart as inline SVG: counts per bin, labels under the first, middle and last bin. */
static void svg_histogram(rlm_sb *o, const char *title, const long *bins, int nbins, double lo,
                          double hi, const char *unit)
{
	const int w = 440, h = 170, left = 36, bottom = 28, top = 10;
	long max = 1;
	for (int i = 0; i < nbins; i++)
		if (bins[i] > max)
			max = bins[i];
	double bw = (double)(w - left - 8) / nbins;
	rlm_sb_printf(o, "<figure><figcaption>");
	esc(o, title);
	rlm_sb_printf(o,
	              "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	              "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">",
	              w, h, w, h);
	rlm_sb_printf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", left,
	              h - bottom, w - 8, h - bottom);
	rlm_sb_printf(o, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%ld</text>",
	              left - 4, top + 8, max);
	rlm_sb_printf(o, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">0</text>",
	              left - 4, h - bottom);
	for (int i = 0; i < nbins; i++) {
		double bh = (double)(h - bottom - top) * (double)bins[i] / (double)max;
		double x0 = lo + (hi - lo) * i / nbins, x1 = lo + (hi - lo) * (i + 1) / nbins;
		rlm_sb_printf(o,
		              "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
		              "height=\"%.1f\"><title>%.3g to %.3g%s: %ld</title></rect>",
		              left + bw * i + 1, h - bottom - bh, bw - 2, bh, x0, x1, unit,
		              bins[i]);
	}
	static const char *const anchors[] = {"start", "middle", "end"};
	for (int k = 0; k < 3; k++) {
		int i = k * nbins / 2;
		rlm_sb_printf(o,
		              "<text x=\"%.1f\" y=\"%d\" class=\"tick\" "
		              "text-anchor=\"%s\">%.3g%s</text>",
		              left + bw * i, h - bottom + 16, anchors[k],
		              lo + (hi - lo) * i / nbins, unit);
	}
	rlm_sb_puts(o, "</svg></figure>");
}

static void html_charts(rlm_sb *o, const struct stats *s)
{
	long sb[HIST_SCORE_BINS] = {0}, tb[HIST_TIME_BINS] = {0};
	for (size_t i = 0; i < s->nscores; i++) {
		double v = s->scores[i];
		int b = v <= 0 ? 0 : v >= 1 ? HIST_SCORE_BINS - 1 : (int)(v * HIST_SCORE_BINS);
		sb[b]++;
	}
	double hi = s->time_max > 0 ? s->time_max : 1;
	for (size_t i = 0; i < s->ntimes; i++) {
		int b = (int)(s->times[i] / hi * HIST_TIME_BINS);
		tb[b >= HIST_TIME_BINS ? HIST_TIME_BINS - 1 : b < 0 ? 0 : b]++;
	}
	rlm_sb_puts(o, "<div class=\"charts\">");
	svg_histogram(o, "Score (tasks per bin)", sb, HIST_SCORE_BINS, 0, 1, "");
	svg_histogram(o, "Task time (tasks per bin)", tb, HIST_TIME_BINS, 0, hi, " s");
	rlm_sb_puts(o, "</div>");
}

static const char html_style[] =
        "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}"
        "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 6px;"
        "vertical-align:top;text-align:left}th{background:#f4f4f4}"
        "table.summary td:first-child{font-weight:600}"
        "td.text{max-width:420px;white-space:pre-wrap;word-break:break-word}"
        "td.null{color:#aaa}td.num{text-align:right;font-variant-numeric:tabular-nums}"
        "tr.task_error td.status{background:#fff3cd}tr.infra_error td.status{background:#f8d7da}"
        "tr.ok td.status{background:#d4edda}"
        ".charts{display:flex;gap:24px;flex-wrap:wrap}figure{margin:0}"
        "figcaption{font-weight:600;margin-bottom:4px}.bar{fill:#4a78b5}"
        ".axis{stroke:#888}.tick{font-size:11px;fill:#555}.src{color:#666;font-size:12px}";

static void summary_row(rlm_sb *o, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void summary_row(rlm_sb *o, const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rlm_sb_puts(o, "<tr><td>");
	esc(o, name);
	rlm_sb_puts(o, "</td><td>");
	esc(o, buf);
	rlm_sb_puts(o, "</td></tr>");
}

static void html_summary(rlm_sb *o, const struct stats *s, json_object *sources)
{
	rlm_sb_puts(o, "<p class=\"src\">results: ");
	for (size_t i = 0; i < json_object_array_length(sources); i++) {
		esc(o, i ? ", " : "");
		esc(o, json_object_get_string(json_object_array_get_idx(sources, i)));
	}
	rlm_sb_puts(o, "</p><table class=\"summary\">");
	summary_row(o, "tasks", "%zu", s->tasks);
	summary_row(o, "ok", "%ld (%.1f%%)", s->ok, pct(s->ok, s->tasks));
	summary_row(o, "task_error", "%ld (%.1f%%)", s->task_error, pct(s->task_error, s->tasks));
	summary_row(o, "infra_error", "%ld (%.1f%%)", s->infra_error,
	            pct(s->infra_error, s->tasks));
	if (s->scored)
		summary_row(o, "mean score", "%.3f over %ld scored",
		            s->score_sum / (double)s->scored, s->scored);
	else
		summary_row(o, "mean score", "none scored");
	summary_row(o, "task time", "p50 %.3g s, p95 %.3g s, max %.3g s", s->p50_s, s->p95_s,
	            s->time_max);
	summary_row(o, "LLM calls", "%ld", s->llm_calls);
	summary_row(o, "tokens", "%ld in, %ld out", s->tokens_in, s->tokens_out);
	summary_row(o, "retried", "%ld", s->retried);
	rlm_sb_puts(o, "</table>");
}

static void html_table(rlm_sb *o, const struct eval_results *r, const char *link_base)
{
	static const char *const heads[] = {"id",         "status",     "score",     "answer",
	                                    "expected",   "iterations", "LLM calls", "tokens in",
	                                    "tokens out", "time (s)",   "attempt",   "error",
	                                    "trajectory", NULL};
	rlm_sb_puts(o, "<h2>Tasks</h2><table class=\"tasks\" id=\"tasks\"><thead><tr>");
	for (const char *const *h = heads; *h; h++)
		rlm_sb_printf(o, "<th>%s</th>", *h);
	rlm_sb_puts(o, "</tr></thead><tbody>");
	for (size_t i = 0; i < r->n; i++) {
		json_object *row = r->rows[i];
		const char *status = str(row, "status");
		rlm_sb_puts(o, "<tr class=\"");
		esc(o, status);
		rlm_sb_puts(o, "\">");
		text_cell(o, str(row, "id"));
		rlm_sb_puts(o, "<td class=\"status\">");
		esc(o, status);
		rlm_sb_puts(o, "</td>");
		double score = rlm__eval_number(row, "score", NAN);
		if (isnan(score))
			text_cell(o, NULL);
		else
			rlm_sb_printf(o, "<td class=\"num\">%.3f</td>", score);
		text_cell(o, str(row, "answer"));
		json_cell(o, json_object_object_get(row, "expected"));
		static const char *const ints[] = {"iterations", "llm_calls", "tokens_in",
		                                   "tokens_out", NULL};
		for (const char *const *k = ints; *k; k++)
			rlm_sb_printf(o, "<td class=\"num\">%ld</td>",
			              (long)rlm__eval_number(row, *k, 0));
		rlm_sb_printf(o, "<td class=\"num\">%.2f</td>",
		              rlm__eval_number(row, "duration_s", 0));
		rlm_sb_printf(o, "<td class=\"num\">%ld</td>",
		              (long)rlm__eval_number(row, "attempt", 1));
		text_cell(o, str(row, "error"));
		link_cell(o, row, link_base);
		rlm_sb_puts(o, "</tr>\n");
	}
	rlm_sb_puts(o, "</tbody></table>");
}

static void html_report(const struct stats *s, const struct eval_results *r, json_object *sources,
                        const char *link_base, rlm_sb *o)
{
	rlm_sb_puts(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	               "<meta name=\"viewport\" content=\"width=device-width\">"
	               "<title>rlm eval report</title><style>");
	rlm_sb_puts(o, html_style);
	rlm_sb_puts(o, "</style></head><body><h1>rlm eval report</h1>");
	html_summary(o, s, sources);
	html_charts(o, s);
	html_table(o, r, link_base);
	rlm_sb_puts(o, "</body></html>\n");
}

/* ---- the entry point ---- */

int rlm_eval_report(const char *const *paths, size_t npaths, int format, const char *link_dir,
                    char **out, rlm_error *err)
{
	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_report: out is NULL");
	*out = NULL;
	if (format < RLM_EVAL_REPORT_TEXT || format > RLM_EVAL_REPORT_HTML)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_report: unknown format %d", format);
	struct eval_results r = {0};
	struct stats s = {0};
	json_object *sources = json_object_new_array();
	char *link_base = link_dir ? realpath(link_dir, NULL) : NULL;
	int rc = sources ? gather(paths, npaths, &r, sources, err)
	                 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
	if (!rc && link_dir && !link_base)
		rc = rlm_error_set(err, RLM_EINVAL, "cannot resolve %s: %s", link_dir,
		                   strerror(errno));
	if (!rc && compute(&r, &s))
		rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	if (!rc) {
		rlm_sb o = {0};
		if (format == RLM_EVAL_REPORT_TEXT) {
			text_report(&s, sources, &o);
		} else if (format == RLM_EVAL_REPORT_JSON) {
			json_object *j = json_report(&s, &r, sources);
			rlm_sb_puts(&o, json_object_to_json_string_ext(
			                        j, JSON_C_TO_STRING_PLAIN |
			                                   JSON_C_TO_STRING_NOSLASHESCAPE));
			rlm_sb_puts(&o, "\n");
			json_object_put(j);
		} else {
			html_report(&s, &r, sources, link_base, &o);
		}
		*out = rlm_sb_take(&o);
		if (!*out)
			rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	stats_free(&s);
	rlm__eval_results_free(&r);
	json_object_put(sources);
	free(link_base);
	return rc;
}
