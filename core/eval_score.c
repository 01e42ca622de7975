/* eval_score.c - the scorers of `rlm eval`: exact, contains, regex, numeric, f1 and cmd:COMMAND.
 * The README's "Scorers" table states each rule; this file is the one place they live. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eval_internal.h"
#include "rlm/eval.h"
#include "util.h"

extern char **environ;

#define CMD_DEFAULT_TIMEOUT_S 60.0
#define CMD_STDOUT_MAX        65536
#define CMD_STDERR_MAX        2048
/* The numeric scorer's decay: 1.0 when equal, DECAY^|difference| otherwise (OOLONG's rule). */
#define NUMERIC_DECAY 0.75

/* ---- text normalisation ---- */

/* Decodes one UTF-8 sequence at s (n bytes left); invalid bytes decode as themselves, one at
 * a time, so nothing is dropped. */
static unsigned utf8_next(const unsigned char *s, size_t n, size_t *used)
{
	unsigned c = s[0];
	size_t want = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (c < 0x80 || want > n || (c >= 0x80 && c < 0xc0) || c >= 0xf8) {
		*used = 1;
		return c;
	}
	unsigned cp = c & (0xff >> (want + 1));
	for (size_t i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*used = 1;
			return c;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	*used = want;
	return cp;
}

static void utf8_put(rlm_sb *sb, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	rlm_sb_append(sb, b, n);
}

/* Simple case folding for the scripts most answers are in: ASCII, Latin-1, Latin Extended-A,
 * Greek and Cyrillic capitals map to their small letters. Locale-independent on purpose: a
 * score must not change with LC_ALL. */
static unsigned fold(unsigned c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0x80)
		return c;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 32;
	/* Latin Extended-A: capitals and small letters alternate, the capital first */
	if ((c >= 0x100 && c <= 0x137 && c != 0x130) || (c >= 0x14a && c <= 0x177))
		return c % 2 == 0 ? c + 1 : c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return c % 2 == 1 ? c + 1 : c;
	if (c == 0x178)
		return 0xff;
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 32;
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

static int is_space(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
	       c == 0xa0;
}

/* The text trimmed and case-folded. Caller frees. */
static char *normalize(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	rlm_sb sb = {0};
	rlm_sb_puts(&sb, "");
	for (size_t i = 0; i < n;) {
		size_t used;
		unsigned c = utf8_next(s + i, n - i, &used);
		if (used == 1 && s[i] >= 0x80)
			rlm_sb_append(&sb, s + i, 1); /* an invalid byte stays as it was */
		else
			utf8_put(&sb, fold(c));
		i += used;
	}
	/* trim (ASCII whitespace and no-break spaces, U+00A0 = C2 A0) */
	char *t = sb.data;
	size_t len = sb.len, start = 0;
	for (;;) {
		if (start < len && is_space((unsigned char)t[start]))
			start++;
		else if (start + 1 < len && (unsigned char)t[start] == 0xc2 &&
		         (unsigned char)t[start + 1] == 0xa0)
			start += 2;
		else
			break;
	}
	for (;;) {
		if (len > start && is_space((unsigned char)t[len - 1]))
			len--;
		else if (len >= start + 2 && (unsigned char)t[len - 2] == 0xc2 &&
		         (unsigned char)t[len - 1] == 0xa0)
			len -= 2;
		else
			break;
	}
	char *out = strndup(t + start, len - start);
	rlm_sb_free(&sb);
	return out;
}

/* ---- exact, contains, regex ---- */

/* exact (contains = 0) or contains (1), both on normalized text. */
static int score_normalized(const char *answer, const char *expected, int contains, double *score)
{
	char *a = normalize(answer), *e = normalize(expected);
	int rc = a && e ? 0 : RLM_ENOMEM;
	if (!rc)
		*score = (contains ? strstr(a, e) != NULL : strcmp(a, e) == 0) ? 1.0 : 0.0;
	free(a);
	free(e);
	return rc;
}

static int score_regex(const char *answer, const char *pattern, double *score, rlm_error *err)
{
	regex_t re;
	int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[256];
		regerror(rc, &re, msg, sizeof(msg));
		return rlm_error_set(err, RLM_EINVAL, "regex: bad pattern \"%.200s\": %s", pattern,
		                     msg);
	}
	*score = regexec(&re, answer, 0, NULL, 0) == 0 ? 1.0 : 0.0;
	regfree(&re);
	return 0;
}

/* ---- numeric ---- */

/* A number starting at s: [+-]digits with optional thousands commas (1,234,567), optional
 * .digits, optional exponent. Sets *end past it and *v; 0 when there is none at s. */
static int number_at(const char *s, const char **end, double *v)
{
	const char *p = s;
	char buf[128];
	size_t n = 0;
	if (*p == '-' || *p == '+')
		buf[n++] = *p++;
	if (!(*p >= '0' && *p <= '9'))
		return 0;
	int group = 0;
	while (n < sizeof(buf) - 16) {
		if (*p >= '0' && *p <= '9') {
			buf[n++] = *p++;
			group++;
		} else if (*p == ',' && group >= 1 && group <= 3 && p[1] >= '0' && p[1] <= '9' &&
		           p[2] >= '0' && p[2] <= '9' && p[3] >= '0' && p[3] <= '9' &&
		           !(p[4] >= '0' && p[4] <= '9')) {
			p++; /* a thousands separator: exactly three digits follow */
			group = 0;
		} else {
			break;
		}
	}
	if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
		buf[n++] = *p++;
		while ((*p >= '0' && *p <= '9') && n < sizeof(buf) - 8)
			buf[n++] = *p++;
	}
	if ((*p == 'e' || *p == 'E') &&
	    ((p[1] >= '0' && p[1] <= '9') ||
	     ((p[1] == '-' || p[1] == '+') && p[2] >= '0' && p[2] <= '9'))) {
		buf[n++] = *p++;
		if (*p == '-' || *p == '+')
			buf[n++] = *p++;
		while ((*p >= '0' && *p <= '9') && n < sizeof(buf) - 1)
			buf[n++] = *p++;
	}
	buf[n] = '\0';
	*v = strtod(buf, NULL);
	*end = p;
	return isfinite(*v);
}

int rlm__eval_number_in(const char *text, double *out)
{
	if (!text)
		return 0;
	const char *s = text;
	while (*s && is_space((unsigned char)*s))
		s++;
	const char *end;
	double v;
	if (number_at(s, &end, &v)) {
		const char *rest = end;
		while (*rest && is_space((unsigned char)*rest))
			rest++;
		if (!*rest) {
			*out = v;
			return 1;
		}
	}
	int found = 0;
	for (const char *p = text; *p;) {
		/* a sign counts only where a word starts, so "item-3" is 3, not -3 */
		int sign_ok =
		        (*p == '-' || *p == '+') && (p == text || is_space((unsigned char)p[-1]) ||
		                                     p[-1] == '(' || p[-1] == ':');
		int digit_prev = p > text && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == '.');
		if ((sign_ok || (*p >= '0' && *p <= '9')) && !digit_prev &&
		    number_at(p, &end, &v)) {
			*out = v;
			found = 1;
			p = end;
		} else {
			p++;
		}
	}
	return found;
}

static double expected_number(json_object *exp, int *ok)
{
	double v = 0;
	*ok = 1;
	if (json_object_is_type(exp, json_type_int) || json_object_is_type(exp, json_type_double))
		return json_object_get_double(exp);
	*ok = rlm__eval_number_in(json_object_get_string(exp), &v);
	return v;
}

/* ---- f1 ---- */

static int is_article(const char *w, size_t n)
{
	return (n == 1 && w[0] == 'a') || (n == 2 && !memcmp(w, "an", 2)) ||
	       (n == 3 && !memcmp(w, "the", 3));
}

/* Tokens of a normalized text: ASCII punctuation is a separator, articles are dropped (the
 * SQuAD answer normalisation). Fills an array of pointers into buf (modified). */
static size_t tokens(char *buf, char ***out)
{
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x80 &&
		    !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = ' ';
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));
	for (char *save = NULL, *w = v ? strtok_r(buf, " ", &save) : NULL; w;
	     w = strtok_r(NULL, " ", &save)) {
		if (is_article(w, strlen(w)))
			continue;
		if (n == cap) {
			char **g = realloc(v, (cap *= 2) * sizeof(*v));
			if (!g) {
				free(v);
				*out = NULL;
				return 0;
			}
			v = g;
		}
		v[n++] = w;
	}
	*out = v;
	return n;
}

static int score_f1(const char *answer, const char *expected, double *score)
{
	char *a = normalize(answer), *e = normalize(expected);
	char **ta = NULL, **te = NULL;
	size_t na = a ? tokens(a, &ta) : 0, ne = e ? tokens(e, &te) : 0;
	int rc = a && e && ta && te ? 0 : RLM_ENOMEM;
	if (!rc) {
		if (na == 0 || ne == 0) {
			*score = na == ne ? 1.0 : 0.0;
		} else {
			/* Multiset overlap: each expected token matches at most one answer token.
			 */
			size_t common = 0;
			char *used = calloc(na, 1);
			if (!used)
				rc = RLM_ENOMEM;
			for (size_t j = 0; used && j < ne; j++)
				for (size_t i = 0; i < na; i++)
					if (!used[i] && !strcmp(ta[i], te[j])) {
						used[i] = 1;
						common++;
						break;
					}
			free(used);
			double p = (double)common / (double)na, r = (double)common / (double)ne;
			*score = common ? 2 * p * r / (p + r) : 0.0;
		}
	}
	free(ta);
	free(te);
	free(a);
	free(e);
	return rc;
}

/* ---- cmd:COMMAND ---- */

struct cmd_io {
	const char *input;
	size_t input_len, written;
	rlm_sb out, errtext;
};

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

static int spawn_cmd(const char *command, int in_fd, int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	/* Its own process group (a deadline kills the whole of it), no blocked signals, and the
	 * signals a CLI ignores or catches back at their defaults. */
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGQUIT);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                        POSIX_SPAWN_SETSIGDEF);
	char *const argv[] = {"sh", "-c", (char *)command, NULL};
	int rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static void read_into(int *fd, rlm_sb *sb, size_t max)
{
	char buf[4096];
	ssize_t n = read(*fd, buf, sizeof(buf));
	if (n > 0) {
		if (sb->len < max)
			rlm_sb_append(sb, buf,
			              (size_t)n < max - sb->len ? (size_t)n : max - sb->len);
		return;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close(*fd);
		*fd = -1;
	}
}

/* Feeds the input to fds[0], collects fds[1] (stdout) and fds[2] (stderr) until both close,
 * the deadline passes or cancel is set; a descriptor done with is closed and set to -1.
 * Returns 0, RLM_ETIMEOUT or RLM_ECANCELLED. */
static int pump(struct cmd_io *io, int fds[3], double deadline, const volatile int *cancel)
{
	while (fds[1] >= 0 || fds[2] >= 0) {
		if (cancel && *cancel)
			return RLM_ECANCELLED;
		double left = deadline - rlm_now();
		if (left <= 0)
			return RLM_ETIMEOUT;
		struct pollfd p[3];
		int map[3], np = 0;
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0) {
				p[np].fd = fds[i];
				p[np].events = i == 0 ? POLLOUT : POLLIN;
				p[np].revents = 0;
				map[np++] = i;
			}
		int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		if (poll(p, (nfds_t)np, ms) < 0 && errno != EINTR)
			return RLM_ETIMEOUT;
		for (int k = 0; k < np; k++) {
			int i = map[k];
			if (!p[k].revents)
				continue;
			if (i == 0) {
				ssize_t n = send(fds[0], io->input + io->written,
				                 io->input_len - io->written,
				                 MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0)
					io->written += (size_t)n;
				if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
				    io->written == io->input_len) {
					close(fds[0]); /* all sent, or the command stopped reading
					                */
					fds[0] = -1;
				}
			} else {
				read_into(&fds[i], i == 1 ? &io->out : &io->errtext,
				          i == 1 ? CMD_STDOUT_MAX : CMD_STDERR_MAX);
			}
		}
	}
	return 0;
}

/* Waits for the command until the deadline; kills its group if it is still there. */
static int reap(pid_t pid, double deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return RLM_EBACKEND;
		if (rlm_now() >= deadline) {
			kill_group(pid);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return RLM_ETIMEOUT;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void first_line(const rlm_sb *sb, char *out, size_t size)
{
	const char *s = sb->data ? sb->data : "";
	size_t n = strcspn(s, "\n");
	snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), s);
}

static int cmd_result(const char *command, struct cmd_io *io, int status, double *score,
                      rlm_error *err)
{
	char why[512];
	first_line(&io->errtext, why, sizeof(why));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return rlm_error_set(err, RLM_EBACKEND, "cmd:%.200s %s %d%s%s", command,
		                     WIFEXITED(status) ? "exited with status" : "killed by signal",
		                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		                     why[0] ? ": " : "", why);
	const char *s = io->out.data ? io->out.data : "";
	while (is_space((unsigned char)*s))
		s++;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	while (is_space((unsigned char)*end))
		end++;
	if (end == s || *end || errno || !isfinite(v)) {
		char got[120];
		first_line(&io->out, got, sizeof(got));
		return rlm_error_set(err, RLM_EBACKEND,
		                     "cmd:%.200s printed \"%s\", not one number%s%s", command, got,
		                     why[0] ? "; stderr: " : "", why);
	}
	*score = v;
	return 0;
}

static int score_cmd(const char *command, const char *input, double timeout_s,
                     const volatile int *cancel, double *score, rlm_error *err)
{
	int in[2], out[2], errp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in))
		return rlm_error_set(err, RLM_EIO, "cmd scorer: socketpair: %s", strerror(errno));
	if (pipe2(out, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		return rlm_error_set(err, RLM_EIO, "cmd scorer: pipe: %s", strerror(errno));
	}
	if (pipe2(errp, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return rlm_error_set(err, RLM_EIO, "cmd scorer: pipe: %s", strerror(errno));
	}
	pid_t pid = 0;
	int src = spawn_cmd(command, in[1], out[1], errp[1], &pid);
	close(in[1]);
	close(out[1]);
	close(errp[1]);
	if (src) {
		close(in[0]);
		close(out[0]);
		close(errp[0]);
		return rlm_error_set(err, RLM_EBACKEND, "cmd scorer: cannot start /bin/sh: %s",
		                     strerror(src));
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	struct cmd_io io = {.input = input, .input_len = strlen(input)};
	double deadline = rlm_now() + (timeout_s > 0 ? timeout_s : CMD_DEFAULT_TIMEOUT_S);
	int fds[3] = {in[0], out[0], errp[0]};
	int rc = pump(&io, fds, deadline, cancel);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	int status = 0;
	if (rc)
		kill_group(pid);
	int wrc = reap(pid, rc ? rlm_now() + 5 : deadline, &status);
	if (!rc && wrc)
		rc = wrc;
	if (rc == RLM_ETIMEOUT)
		rc = rlm_error_set(err, RLM_ETIMEOUT, "cmd:%.200s did not finish within %.3g s",
		                   command, timeout_s > 0 ? timeout_s : CMD_DEFAULT_TIMEOUT_S);
	else if (rc == RLM_ECANCELLED)
		rc = rlm_error_set(err, RLM_ECANCELLED, "cmd:%.200s was cancelled", command);
	else if (rc)
		rc = rlm_error_set(err, rc, "cmd:%.200s could not be waited for", command);
	else
		rc = cmd_result(command, &io, status, score, err);
	rlm_sb_free(&io.out);
	rlm_sb_free(&io.errtext);
	return rc;
}

/* ---- dispatch ---- */

/* An expected value as the text scorers compare: a string as is, anything else as JSON. */
static const char *expected_text(json_object *e)
{
	return json_object_is_type(e, json_type_string)
	               ? json_object_get_string(e)
	               : json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
}

static int score_one(const char *scorer, const char *answer, json_object *exp, double *score,
                     rlm_error *err)
{
	if (!strcmp(scorer, "numeric")) {
		int ok;
		double e = expected_number(exp, &ok), a;
		if (!ok)
			return rlm_error_set(err, RLM_EINVAL,
			                     "numeric: expected %.100s is not a number",
			                     expected_text(exp));
		*score = !rlm__eval_number_in(answer, &a) ? 0.0
		         : a == e                         ? 1.0
		                                          : pow(NUMERIC_DECAY, fabs(a - e));
		return 0;
	}
	const char *e = expected_text(exp);
	int rc = !strcmp(scorer, "exact")      ? score_normalized(answer, e, 0, score)
	         : !strcmp(scorer, "contains") ? score_normalized(answer, e, 1, score)
	         : !strcmp(scorer, "f1")       ? score_f1(answer, e, score)
	         : !strcmp(scorer, "regex")
	                 ? score_regex(answer, e, score, err)
	                 : rlm_error_set(err, RLM_EINVAL, "unknown scorer \"%.100s\"", scorer);
	if (rc == RLM_ENOMEM)
		return rlm_error_set(err, rc, "out of memory scoring");
	return rc;
}

static int score_cmd_json(const char *command, const char *answer, json_object *expected,
                          json_object *task, double timeout_s, const volatile int *cancel,
                          double *score, rlm_error *err)
{
	json_object *in = json_object_new_object();
	json_object_object_add(in, "task", task ? json_object_get(task) : json_object_new_object());
	json_object_object_add(in, "answer", answer ? json_object_new_string(answer) : NULL);
	json_object_object_add(in, "expected", expected ? json_object_get(expected) : NULL);
	const char *text = json_object_to_json_string_ext(
	        in, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int rc = text ? score_cmd(command, text, timeout_s, cancel, score, err)
	              : rlm_error_set(err, RLM_ENOMEM, "out of memory");
	json_object_put(in);
	return rc;
}

int rlm__eval_score(const char *scorer, const char *answer, json_object *expected,
                    json_object *task, double timeout_s, const volatile int *cancel, double *score,
                    rlm_error *err)
{
	*score = NAN;
	if (!scorer || !rlm__eval_scorer_known(scorer))
		return rlm_error_set(
		        err, RLM_EINVAL,
		        "unknown scorer \"%.100s\" (exact, contains, regex, numeric, f1 "
		        "or cmd:COMMAND)",
		        scorer ? scorer : "");
	if (!strncmp(scorer, "cmd:", 4))
		return score_cmd_json(scorer + 4, answer, expected, task, timeout_s, cancel, score,
		                      err);
	if (!expected)
		return rlm_error_set(err, RLM_EINVAL, "scorer %s needs an expected answer", scorer);
	if (!answer)
		answer = "";
	if (!json_object_is_type(expected, json_type_array))
		return score_one(scorer, answer, expected, score, err);
	/* Several acceptable answers: the best score counts. */
	double best = 0;
	for (size_t i = 0; i < json_object_array_length(expected); i++) {
		double s = 0;
		int rc = score_one(scorer, answer, json_object_array_get_idx(expected, i), &s, err);
		if (rc)
			return rc;
		if (s > best)
			best = s;
	}
	*score = best;
	return 0;
}

int rlm_eval_score(const char *scorer, const char *answer, const char *expected_json,
                   const char *task_json, double timeout_s, double *score, rlm_error *err)
{
	if (!score)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_score: score is NULL");
	json_object *exp = NULL, *task = NULL;
	if (expected_json) {
		enum json_tokener_error jerr = json_tokener_success;
		exp = json_tokener_parse_verbose(expected_json, &jerr);
		if (jerr != json_tokener_success)
			return rlm_error_set(err, RLM_EINVAL,
			                     "rlm_eval_score: expected is not JSON (%s); a string "
			                     "must be quoted",
			                     json_tokener_error_desc(jerr));
	}
	if (task_json && !(task = json_tokener_parse(task_json))) {
		json_object_put(exp);
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_score: task is not a JSON object");
	}
	int rc = rlm__eval_score(scorer, answer, exp, task, timeout_s, NULL, score, err);
	json_object_put(exp);
	json_object_put(task);
	return rc;
}
