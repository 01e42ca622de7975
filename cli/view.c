/* view.c - `rlm view TRAJECTORY [-o FILE.html]`: one self-contained HTML page of a run.
 *
 * The page is cli/view.html (embedded at build time as rlm__view_template) with the run's data
 * in a JSON script block: the metadata line, the root's iterations (children's runs stay
 * nested inside the rlm_query calls that made them), the summary sidecar, and what could not
 * be read. Prompts repeat the whole history in every line; the page gets each run's messages
 * once and every iteration the count of them it was sent. Nothing of the trajectory reaches
 * the page as markup: the data is JSON with '<', '>', '&' written as \u escapes, and the
 * page's script renders it with textContent. A Content-Security-Policy allows only the page's
 * own script and style (by nonce) and no fetch of any kind. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlm/rlm.h"

extern const char rlm__view_template[];
extern const size_t rlm__view_template_len;

enum { VIEW_OK = 0, VIEW_BAD_INPUT = 1, VIEW_USAGE = 2 };

/* A trajectory bigger than this is refused rather than read whole. */
#define VIEW_MAX_BYTES ((size_t)1 << 30)
/* Lines that could not be read, listed on the page; past this many only counted. */
#define VIEW_MAX_PROBLEMS 50

static const char view_usage[] =
        "usage: rlm view TRAJECTORY [-o FILE.html]\n"
        "\n"
        "Writes one self-contained HTML page of a run's trajectory (the JSONL file `rlm run\n"
        "--trajectory` writes) and of its summary (TRAJECTORY's .summary.json beside it): every\n"
        "iteration with its code, output, variables and calls, child RLM runs nested under the\n"
        "call that started them, token counts per iteration and per run, the SUBMIT fields,\n"
        "timed-out and state-lost cells, and the run's totals. The page needs no network and\n"
        "no build step: open it in any browser.\n"
        "\n"
        "options:\n"
        "  -o, --output FILE   where to write the page (default: TRAJECTORY with .html in\n"
        "                      place of .jsonl; - for stdout)\n"
        "  -h, --help          this text\n"
        "\n"
        "exit status: 0 written, 1 the trajectory cannot be read or the page cannot be\n"
        "             written, 2 usage error\n";

struct view_args {
	const char *trajectory;
	const char *output;
};

static int view_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm view: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `rlm view --help`)\n");
	return VIEW_USAGE;
}

static int parse_view_args(int argc, char **argv, struct view_args *a, int *help)
{
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			*help = 1;
			return 0;
		}
		if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
			if (i + 1 >= argc)
				return view_usage_error("%s needs a file name", o);
			a->output = argv[++i];
		} else if (o[0] == '-' && o[1]) {
			return view_usage_error("unknown option \"%s\"", o);
		} else if (a->trajectory) {
			return view_usage_error("one trajectory at a time (\"%s\" is a second)", o);
		} else {
			a->trajectory = o;
		}
	}
	if (!a->trajectory)
		return view_usage_error("%s", "which trajectory? (rlm view TRAJECTORY)");
	return 0;
}

/* ---- reading ---- */

/* The whole file, NUL-terminated; NULL with errno set (EFBIG past VIEW_MAX_BYTES). */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			if (cap >= VIEW_MAX_BYTES) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		errno = 0;
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				int e = errno ? errno : EIO;
				free(buf);
				buf = NULL;
				errno = e;
			}
			break;
		}
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static const char *type_of(json_object *o)
{
	json_object *t = NULL;
	return json_object_object_get_ex(o, "type", &t) && json_object_is_type(t, json_type_string)
	               ? json_object_get_string(t)
	               : NULL;
}

struct problems {
	json_object *list;
	int count;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
	if (++p->count > VIEW_MAX_PROBLEMS)
		return;
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	json_object_array_add(p->list, json_object_new_string(text));
}

/* Whether obj looks like one turn (rlm's own lines say so; the reference's older ones only
 * have the fields). */
static int is_iteration(json_object *o)
{
	const char *type = type_of(o);
	if (type)
		return !strcmp(type, "iteration");
	return json_object_object_get_ex(o, "response", NULL) ||
	       json_object_object_get_ex(o, "code_blocks", NULL);
}

/* Splits the file into its lines' objects: the metadata, the iterations, and a summary line
 * (the format before the summary moved to the sidecar). */
static void read_lines(char *text, size_t len, json_object **meta, json_object *iterations,
                       json_object **legacy_summary, struct problems *p)
{
	json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	char *end = text + len;
	int lineno = 0;
	for (char *line = text; tok && line < end;) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		char *next = nl ? nl + 1 : end;
		lineno++;
		size_t blank = 0;
		while (blank < n &&
		       (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r'))
			blank++;
		if (blank == n) {
			line = next;
			continue;
		}
		json_tokener_reset(tok);
		json_object *o =
		        n <= (size_t)0x7fffffff ? json_tokener_parse_ex(tok, line, (int)n) : NULL;
		size_t rest = o ? json_tokener_get_parse_end(tok) : n;
		while (rest < n && (line[rest] == ' ' || line[rest] == '\t' || line[rest] == '\r'))
			rest++;
		if (!o || json_tokener_get_error(tok) != json_tokener_success || rest < n ||
		    !json_object_is_type(o, json_type_object)) {
			problem(p, "line %d: not a JSON object, skipped", lineno);
			json_object_put(o);
		} else if (type_of(o) && !strcmp(type_of(o), "metadata")) {
			if (*meta) {
				problem(p, "line %d: a second metadata line, skipped", lineno);
				json_object_put(o);
			} else {
				*meta = o;
			}
		} else if (type_of(o) && !strcmp(type_of(o), "summary")) {
			json_object_put(*legacy_summary);
			*legacy_summary = o;
		} else if (is_iteration(o)) {
			json_object_array_add(iterations, o);
		} else {
			problem(p, "line %d: type \"%s\" is not a trajectory line, skipped", lineno,
			        type_of(o) ? type_of(o) : "(none)");
			json_object_put(o);
		}
		line = next;
	}
	json_tokener_free(tok);
}

/* ---- prompts: each run's messages once ---- */

static json_object *prompt_of(json_object *it)
{
	json_object *p = NULL;
	return json_object_object_get_ex(it, "prompt", &p) &&
	                       json_object_is_type(p, json_type_array)
	               ? p
	               : NULL;
}

static void compact_calls(json_object *iterations);

/* When every iteration's prompt is the start of the longest one (the history only grows),
 * replaces each with prompt_len and returns the longest (a new reference) to keep once;
 * otherwise leaves the prompts alone and returns NULL. Then does the same for children. */
static json_object *compact_prompts(json_object *iterations)
{
	size_t n = json_object_array_length(iterations);
	json_object *longest = NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *p = prompt_of(json_object_array_get_idx(iterations, i));
		if (p &&
		    (!longest || json_object_array_length(p) > json_object_array_length(longest)))
			longest = p;
	}
	int prefixes = longest != NULL;
	for (size_t i = 0; prefixes && i < n; i++) {
		json_object *p = prompt_of(json_object_array_get_idx(iterations, i));
		for (size_t k = 0; prefixes && p && k < json_object_array_length(p); k++)
			prefixes = json_object_equal(json_object_array_get_idx(p, k),
			                             json_object_array_get_idx(longest, k));
	}
	if (prefixes) {
		json_object_get(longest);
		for (size_t i = 0; i < n; i++) {
			json_object *it = json_object_array_get_idx(iterations, i);
			json_object *p = prompt_of(it);
			if (!p)
				continue;
			json_object_object_add(
			        it, "prompt_len",
			        json_object_new_int64((int64_t)json_object_array_length(p)));
			json_object_object_del(it, "prompt");
		}
	}
	compact_calls(iterations);
	return prefixes ? longest : NULL;
}

/* A child run's turns are in its rlm_query call's "trajectory": its messages go beside it. */
static void compact_calls(json_object *iterations)
{
	for (size_t i = 0; i < json_object_array_length(iterations); i++) {
		json_object *blocks = NULL;
		if (!json_object_object_get_ex(json_object_array_get_idx(iterations, i),
		                               "code_blocks", &blocks) ||
		    !json_object_is_type(blocks, json_type_array))
			continue;
		for (size_t b = 0; b < json_object_array_length(blocks); b++) {
			json_object *result = NULL, *calls = NULL;
			if (!json_object_object_get_ex(json_object_array_get_idx(blocks, b),
			                               "result", &result) ||
			    !json_object_object_get_ex(result, "rlm_calls", &calls) ||
			    !json_object_is_type(calls, json_type_array))
				continue;
			for (size_t c = 0; c < json_object_array_length(calls); c++) {
				json_object *call = json_object_array_get_idx(calls, c),
				            *child = NULL;
				if (!json_object_object_get_ex(call, "trajectory", &child) ||
				    !json_object_is_type(child, json_type_array))
					continue;
				json_object *messages = compact_prompts(child);
				if (messages)
					json_object_object_add(call, "messages", messages);
			}
		}
	}
}

/* ---- writing ---- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The page being written; failed says an append ran out of memory. */
struct page {
	struct printbuf *pb;
	int failed;
};

static void put(struct page *pg, const char *s, size_t n)
{
	if (n > (size_t)0x7fffffff || printbuf_memappend(pg->pb, s, (int)n) < 0)
		pg->failed = 1;
}

/* The data as JSON that is safe inside a <script> element: '<', '>' and '&' (only ever inside
 * JSON strings) become \u escapes, so no "</script>" or "<!--" can appear; U+2028/U+2029 too. */
static void append_script_json(struct page *pg, const char *json)
{
	for (const char *p = json; *p; p++) {
		const char *esc = NULL;
		if (*p == '<')
			esc = "\\u003c";
		else if (*p == '>')
			esc = "\\u003e";
		else if (*p == '&')
			esc = "\\u0026";
		else if ((unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x80 &&
		         ((unsigned char)p[2] == 0xA8 || (unsigned char)p[2] == 0xA9)) {
			esc = (unsigned char)p[2] == 0xA8 ? "\\u2028" : "\\u2029";
			p += 2;
		}
		if (esc) {
			put(pg, esc, strlen(esc));
		} else {
			size_t run = strcspn(p, "<>&\xE2"); /* copy plain stretches at once */
			put(pg, p, run ? run : 1);
			p += run ? run - 1 : 0;
		}
	}
}

static void append_html_text(struct page *pg, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': put(pg, "&amp;", 5); break;
		case '<': put(pg, "&lt;", 4); break;
		case '>': put(pg, "&gt;", 4); break;
		case '"': put(pg, "&quot;", 6); break;
		case '\'': put(pg, "&#39;", 5); break;
		default: put(pg, s, 1);
		}
	}
}

/* 128 random bits as hex, for the CSP nonce. */
static int make_nonce(char out[33])
{
	unsigned char raw[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;
	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof(raw))
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* The template with its markers filled: @NONCE@, @TITLE@ (HTML text), @DATA@ (script JSON).
 * NULL when out of memory. */
static struct printbuf *render_page(const char *nonce, const char *title, const char *data)
{
	struct page pg = {.pb = printbuf_new()};
	const char *t = rlm__view_template, *end = rlm__view_template + rlm__view_template_len;
	while (pg.pb && t < end) {
		const char *at = memchr(t, '@', (size_t)(end - t));
		if (!at) {
			put(&pg, t, (size_t)(end - t));
			break;
		}
		put(&pg, t, (size_t)(at - t));
		size_t left = (size_t)(end - at);
		if (left >= 7 && !memcmp(at, "@NONCE@", 7)) {
			put(&pg, nonce, strlen(nonce));
			t = at + 7;
		} else if (left >= 7 && !memcmp(at, "@TITLE@", 7)) {
			append_html_text(&pg, title);
			t = at + 7;
		} else if (left >= 6 && !memcmp(at, "@DATA@", 6)) {
			append_script_json(&pg, data);
			t = at + 6;
		} else {
			put(&pg, "@", 1);
			t = at + 1;
		}
	}
	if (pg.pb && pg.failed) {
		printbuf_free(pg.pb);
		pg.pb = NULL;
	}
	return pg.pb;
}

/* Writes bytes to path through a temporary file renamed over it ("-": stdout). */
static int write_output(const char *path, const char *bytes, size_t len)
{
	if (!strcmp(path, "-"))
		return fwrite(bytes, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	int ok = f && fwrite(bytes, 1, len, f) == len;
	if (f && fclose(f) != 0)
		ok = 0;
	int e = errno;
	if (ok && rename(tmp, path) != 0) {
		ok = 0;
		e = errno;
	}
	if (!ok)
		unlink(tmp);
	free(tmp);
	errno = e;
	return ok ? 0 : -1;
}

static char *default_output(const char *trajectory)
{
	size_t len = strlen(trajectory), ext = strlen(".jsonl");
	if (len > ext && !strcmp(trajectory + len - ext, ".jsonl"))
		len -= ext;
	char *out = malloc(len + sizeof(".html"));
	if (out) {
		memcpy(out, trajectory, len);
		memcpy(out + len, ".html", sizeof(".html"));
	}
	return out;
}

/* Reads the trajectory and its summary into the page's data object; NULL (after saying why)
 * when the file is no trajectory at all. */
static json_object *load_run(const char *path)
{
	size_t len = 0;
	char *text = read_file(path, &len);
	if (!text) {
		fprintf(stderr, "rlm view: cannot read %s: %s\n", path,
		        errno == EFBIG ? "bigger than 1 GiB" : strerror(errno));
		return NULL;
	}
	struct problems p = {.list = json_object_new_array()};
	json_object *meta = NULL, *legacy = NULL, *iterations = json_object_new_array();
	read_lines(text, len, &meta, iterations, &legacy, &p);
	free(text);
	if (!meta && json_object_array_length(iterations) == 0) {
		fprintf(stderr,
		        "rlm view: %s is not an rlm trajectory (no metadata or iteration line in "
		        "it)\n",
		        path);
		json_object_put(p.list);
		json_object_put(iterations);
		json_object_put(legacy);
		return NULL;
	}
	if (!meta)
		problem(&p, "no metadata line: the model and limits are unknown");

	char *summary_path = rlm_trajectory_summary_path(path);
	json_object *summary = NULL;
	size_t slen = 0;
	char *stext = summary_path ? read_file(summary_path, &slen) : NULL;
	if (stext) {
		summary = json_tokener_parse(stext);
		if (!json_object_is_type(summary, json_type_object)) {
			problem(&p,
			        "%s does not hold a JSON object: totals are summed from the lines",
			        base_name(summary_path));
			json_object_put(summary);
			summary = NULL;
		}
		free(stext);
	}
	if (!summary && legacy)
		summary = json_object_get(legacy); /* written before the sidecar existed */
	json_object_put(legacy);
	if (p.count > VIEW_MAX_PROBLEMS)
		problem(&p, "... and %d more", p.count - VIEW_MAX_PROBLEMS);

	json_object *messages = compact_prompts(iterations);
	json_object *data = json_object_new_object();
	json_object_object_add(data, "file", json_object_new_string(base_name(path)));
	json_object_object_add(data, "summary_file",
	                       json_object_new_string(summary_path ? base_name(summary_path) : ""));
	json_object_object_add(data, "metadata", meta);
	json_object_object_add(data, "summary", summary);
	json_object_object_add(data, "messages", messages);
	json_object_object_add(data, "iterations", iterations);
	json_object_object_add(data, "problems", p.list);
	rlm_free(summary_path);
	return data;
}

int rlm_cli_view(int argc, char **argv);

int rlm_cli_view(int argc, char **argv)
{
	struct view_args a = {0};
	int help = 0;
	int rc = parse_view_args(argc, argv, &a, &help);
	if (help) {
		fputs(view_usage, stdout);
		return VIEW_OK;
	}
	if (rc)
		return rc;
	json_object *data = load_run(a.trajectory);
	if (!data)
		return VIEW_BAD_INPUT;
	char nonce[33];
	char *output = a.output ? strdup(a.output) : default_output(a.trajectory);
	const char *json = json_object_to_json_string_ext(
	        data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct printbuf *page = NULL;
	if (make_nonce(nonce) != 0) {
		fprintf(stderr, "rlm view: cannot read /dev/urandom for the page's nonce\n");
		rc = VIEW_BAD_INPUT;
	} else if (!output || !json ||
	           !(page = render_page(nonce, base_name(a.trajectory), json))) {
		fprintf(stderr, "rlm view: out of memory\n");
		rc = VIEW_BAD_INPUT;
	} else if (write_output(output, page->buf, (size_t)page->bpos) != 0) {
		fprintf(stderr, "rlm view: cannot write %s: %s\n", output, strerror(errno));
		rc = VIEW_BAD_INPUT;
	} else if (strcmp(output, "-")) {
		fprintf(stderr, "rlm view: wrote %s\n", output);
	}
	if (page)
		printbuf_free(page);
	free(output);
	json_object_put(data);
	return rc;
}
