/* eval_gen.c - rlm_eval_generate: offline, deterministic task generators for the two
 * long-context families of the RLM paper.
 *
 * sniah: single needle in a haystack (RULER's S-NIAH): filler prose with one sentence "One of
 * the special magic numbers for <key> is: <7 digits>." at a random depth; the task asks for
 * the number (scorer exact).
 * count: an aggregation task in the spirit of OOLONG: a list of records, each with a label; the
 * task asks how many records carry one label (scorer numeric).
 * Everything comes from a splitmix64 stream seeded by (seed, family, task index), in integer
 * arithmetic only, so the same options give the same bytes on every machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "eval_internal.h"
#include "rlm/eval.h"
#include "util.h"

#define GEN_DEFAULT_LENGTH 16000
#define GEN_LENGTH_MAX     (256L << 20)
#define GEN_TASKS_MAX      10000000L

static const char *const adjectives[] = {
        "amber", "brisk", "calm",   "dusty",  "eager",  "faint",  "gentle", "hollow",
        "icy",   "jolly", "keen",   "lively", "mellow", "narrow", "olive",  "plain",
        "quiet", "rapid", "silver", "tidy",   "upper",  "vivid",  "wooden", "young",
        "zesty", "bold",  "crisp",  "dense",  "early",  "fresh",  "grand",  "humble"};
static const char *const nouns[] = {
        "falcon", "harbor", "meadow", "lantern", "orchard", "canyon",  "river",   "bridge",
        "garden", "market", "valley", "forest",  "island",  "tower",   "bakery",  "library",
        "engine", "window", "pillow", "compass", "ladder",  "kettle",  "saddle",  "violin",
        "anchor", "beacon", "candle", "dragon",  "ember",   "feather", "glacier", "hammock"};
static const char *const verbs[] = {"watched",   "carried", "painted", "followed", "repaired",
                                    "described", "ignored", "visited", "measured", "borrowed",
                                    "admired",   "cleaned", "counted", "opened"};
static const char *const preps[] = {"near",   "behind", "beyond", "under",
                                    "beside", "across", "inside", "around"};
static const char *const labels[] = {"billing", "shipping", "technical", "account", "feedback"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return next(r) % n;
}

static const char *pick(struct rng *r, const char *const *words, size_t n)
{
	return words[below(r, n)];
}

/* "a" or "an" before a word. */
static const char *article(const char *word, int capital)
{
	int vowel = strchr("aeiou", word[0]) != NULL;
	return capital ? (vowel ? "An" : "A") : (vowel ? "an" : "a");
}

/* One filler sentence, e.g. "The quiet harbor watched the amber lantern near the old mill." */
static void sentence(struct rng *r, rlm_sb *sb)
{
	const char *a1 = pick(r, adjectives, COUNT_OF(adjectives));
	const char *n1 = pick(r, nouns, COUNT_OF(nouns));
	const char *v = pick(r, verbs, COUNT_OF(verbs));
	const char *a2 = pick(r, adjectives, COUNT_OF(adjectives));
	const char *n2 = pick(r, nouns, COUNT_OF(nouns));
	const char *p = pick(r, preps, COUNT_OF(preps));
	const char *n3 = pick(r, nouns, COUNT_OF(nouns));
	switch (below(r, 3)) {
	case 0:
		rlm_sb_printf(sb, "The %s %s %s the %s %s %s the %s.", a1, n1, v, a2, n2, p, n3);
		break;
	case 1:
		rlm_sb_printf(sb, "%s %s %s was %s %s %s %s %s.", article(a1, 1), a1, n1, v, p,
		              article(a2, 0), a2, n2);
		break;
	default: rlm_sb_printf(sb, "Nobody %s the %s %s, so the %s stayed %s.", v, a1, n1, n2, a2);
	}
}

struct gen_task {
	char id[96];
	char *query;
	rlm_sb context;
	json_object *expected;
	const char *scorer;
	json_object *meta;
};

static void gen_sniah(struct rng *r, long length, struct gen_task *t)
{
	char key[64], needle[160];
	snprintf(key, sizeof(key), "%s-%s", pick(r, adjectives, COUNT_OF(adjectives)),
	         pick(r, nouns, COUNT_OF(nouns)));
	unsigned long value = 1000000 + (unsigned long)below(r, 9000000);
	snprintf(needle, sizeof(needle), "One of the special magic numbers for %s is: %lu.", key,
	         value);
	long depth = (long)below(r, 101); /* percent of the haystack before the needle */
	rlm_sb hay = {0};
	long want = length - (long)strlen(needle) - 1;
	int in_par = 0;
	while ((long)hay.len < want) {
		if (hay.len)
			rlm_sb_puts(&hay, in_par == 5 ? "\n\n" : " ");
		in_par = in_par == 5 ? 0 : in_par + 1;
		sentence(r, &hay);
	}
	/* the needle goes at the sentence boundary nearest depth% of the haystack */
	size_t at = hay.len * (size_t)depth / 100;
	while (at < hay.len && !(at > 0 && hay.data[at - 1] == '.' && hay.data[at] == ' '))
		at++;
	rlm_sb_append(&t->context, hay.data ? hay.data : "", at);
	rlm_sb_printf(&t->context, "%s%s", at ? " " : "", needle);
	if (at < hay.len)
		rlm_sb_append(&t->context, hay.data + at, hay.len - at);
	rlm_sb_free(&hay);
	rlm_sb q = {0};
	rlm_sb_printf(&q,
	              "What is the special magic number for %s mentioned in the context? Answer "
	              "with the number only.",
	              key);
	t->query = rlm_sb_take(&q);
	char v[32];
	snprintf(v, sizeof(v), "%lu", value);
	t->expected = json_object_new_string(v);
	t->scorer = "exact";
	json_object_object_add(t->meta, "key", json_object_new_string(key));
	json_object_object_add(t->meta, "depth_percent", json_object_new_int64(depth));
}

static void gen_count(struct rng *r, long length, struct gen_task *t)
{
	const char *target = labels[below(r, COUNT_OF(labels))];
	unsigned weights[COUNT_OF(labels)], total = 0;
	for (size_t i = 0; i < COUNT_OF(labels); i++)
		total += weights[i] = 1 + (unsigned)below(r, 10);
	long count = 0, records = 0;
	rlm_sb line = {0};
	for (;;) {
		unsigned w = (unsigned)below(r, total);
		size_t l = 0;
		while (w >= weights[l])
			w -= weights[l++];
		line.len = 0;
		rlm_sb_printf(&line, "record %05ld | 2024-%02u-%02u | user_%03u | ", records + 1,
		              1 + (unsigned)below(r, 12), 1 + (unsigned)below(r, 28),
		              (unsigned)below(r, 1000));
		sentence(r, &line);
		rlm_sb_printf(&line, " | label: %s\n", labels[l]);
		if (records > 0 && (long)(t->context.len + line.len) > length)
			break;
		rlm_sb_append(&t->context, line.data, line.len);
		records++;
		count += labels[l] == target;
	}
	rlm_sb_free(&line);
	rlm_sb q = {0};
	rlm_sb_printf(&q,
	              "How many records in the context have the label '%s'? Answer with a number.",
	              target);
	t->query = rlm_sb_take(&q);
	t->expected = json_object_new_int64(count);
	t->scorer = "numeric";
	json_object_object_add(t->meta, "label", json_object_new_string(target));
	json_object_object_add(t->meta, "records", json_object_new_int64(records));
}

static int write_context(const char *dir, const struct gen_task *t, char **rel, rlm_error *err)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%s/%s.txt", dir, t->id);
	*rel = rlm_sb_take(&sb);
	if (!*rel)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	FILE *f = fopen(*rel, "wb");
	int ok = f && fwrite(t->context.data, 1, t->context.len, f) == t->context.len;
	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : rlm_error_set(err, RLM_EIO, "cannot write %s: %s", *rel, strerror(errno));
}

static int emit_task(const rlm_eval_gen_options *o, struct gen_task *t, long length, rlm_error *err)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "id", json_object_new_string(t->id));
	json_object_object_add(j, "query", json_object_new_string(t->query));
	char *rel = NULL;
	int rc = 0;
	if (o->context_dir) {
		rc = write_context(o->context_dir, t, &rel, err);
		json_object_object_add(j, "context_file", json_object_new_string(rel ? rel : ""));
	} else {
		json_object_object_add(
		        j, "context",
		        json_object_new_string_len(t->context.data ? t->context.data : "",
		                                   (int)t->context.len));
	}
	json_object_object_add(j, "expected", json_object_get(t->expected));
	json_object_object_add(j, "scorer", json_object_new_string(t->scorer));
	json_object_object_add(t->meta, "length", json_object_new_int64((int64_t)t->context.len));
	json_object_object_add(t->meta, "requested_length", json_object_new_int64(length));
	json_object_object_add(j, "metadata", json_object_get(t->meta));
	if (!rc) {
		const char *text = json_object_to_json_string_ext(
		        j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		rc = text ? o->emit(o->emit_ctx, text, strlen(text))
		          : rlm_error_set(err, RLM_ENOMEM, "out of memory");
		if (rc && err && !err->code)
			rlm_error_set(err, rc, "writing the task lines failed");
	}
	free(rel);
	json_object_put(j);
	return rc;
}

int rlm_eval_generate(const rlm_eval_gen_options *o, rlm_error *err)
{
	if (!o || o->struct_size < offsetof(rlm_eval_gen_options, emit_ctx) + sizeof(o->emit_ctx))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_eval_gen_options: missing or too small (start from "
		                     "RLM_EVAL_GEN_OPTIONS_INIT)");
	int sniah = o->family && !strcmp(o->family, "sniah");
	if (!sniah && !(o->family && !strcmp(o->family, "count")))
		return rlm_error_set(err, RLM_EINVAL, "unknown task family \"%s\" (sniah or count)",
		                     o->family ? o->family : "");
	long length = o->length > 0 ? o->length : GEN_DEFAULT_LENGTH;
	if (o->n < 1 || o->n > GEN_TASKS_MAX || length < 200 || length > GEN_LENGTH_MAX || !o->emit)
		return rlm_error_set(
		        err, RLM_EINVAL,
		        "n must be 1 to %ld, length 200 to %ld characters, and emit set",
		        GEN_TASKS_MAX, GEN_LENGTH_MAX);
	int rc = o->context_dir ? rlm__eval_make_dirs(o->context_dir, err) : 0;
	for (long i = 0; !rc && i < o->n; i++) {
		/* one stream per task: task i is the same whatever n is */
		struct rng r = {o->seed * 0x100000001b3ULL ^ (uint64_t)i * 0x9e3779b97f4a7c15ULL ^
		                (sniah ? 0x5a5aULL : 0xc0c0ULL)};
		next(&r);
		struct gen_task t = {0};
		t.meta = json_object_new_object();
		json_object_object_add(t.meta, "family", json_object_new_string(o->family));
		json_object_object_add(t.meta, "seed", json_object_new_int64((int64_t)o->seed));
		snprintf(t.id, sizeof(t.id), "%s-%llu-%04ld", o->family,
		         (unsigned long long)o->seed, i);
		if (sniah)
			gen_sniah(&r, length, &t);
		else
			gen_count(&r, length, &t);
		rc = t.query && t.context.data ? emit_task(o, &t, length, err)
		                               : rlm_error_set(err, RLM_ENOMEM, "out of memory");
		free(t.query);
		rlm_sb_free(&t.context);
		json_object_put(t.expected);
		json_object_put(t.meta);
	}
	return rc;
}
