/* plugins_json.c - describes every plugin the loader can find (for `rlm backends`). Plugin
 * files are described by a probe child (rlm__plugin_probe), never loaded into this process:
 * a plugin that crashes in its entry point is listed with an error naming it. */
#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "loader.h"
#include "rlm/rlm.h"
#include "util.h"

json_object *rlm__capability_names(uint64_t caps);

static const char *type_name(rlm_option_type t)
{
	switch (t) {
	case RLM_OPT_STRING: return "string";
	case RLM_OPT_INT: return "int";
	case RLM_OPT_NUMBER: return "number";
	case RLM_OPT_BOOL: return "bool";
	case RLM_OPT_STRING_LIST: return "string list";
	case RLM_OPT_OBJECT: return "object";
	}
	return "?";
}

static json_object *number_or_null(int set, double d)
{
	return set ? json_object_new_double(d) : NULL;
}

/* name, type, default, doc; then what ABI 1.2 definitions add, when they say it: min, max,
 * env, choices, required, secret (a secret's default is not shown). */
static json_object *describe_option(const rlm_option_def *s)
{
	json_object *x = json_object_new_object();
	int secret = (s->flags & RLM_OPTF_SECRET) != 0;
	json_object_object_add(x, "name", json_object_new_string(s->name));
	json_object_object_add(x, "type", json_object_new_string(type_name(s->type)));
	json_object_object_add(x, "default",
	                       s->default_json && !secret  ? json_tokener_parse(s->default_json)
	                       : secret && s->default_json ? json_object_new_string("***")
	                                                   : NULL);
	json_object_object_add(x, "doc", json_object_new_string(s->doc ? s->doc : ""));
	if (s->flags & (RLM_OPTF_MIN | RLM_OPTF_MAX)) {
		json_object_object_add(x, "min", number_or_null(s->flags & RLM_OPTF_MIN, s->min));
		json_object_object_add(x, "max", number_or_null(s->flags & RLM_OPTF_MAX, s->max));
	}
	if (s->env)
		json_object_object_add(x, "env", json_object_new_string(s->env));
	if (s->choices) {
		json_object *c = json_object_new_array();
		for (const char *const *p = s->choices; *p; p++)
			json_object_array_add(c, json_object_new_string(*p));
		json_object_object_add(x, "choices", c);
	}
	if (s->flags & RLM_OPTF_REQUIRED)
		json_object_object_add(x, "required", json_object_new_boolean(1));
	if (secret)
		json_object_object_add(x, "secret", json_object_new_boolean(1));
	if (s->flags & RLM_OPTF_NONEMPTY)
		json_object_object_add(x, "nonempty", json_object_new_boolean(1));
	return x;
}

static json_object *describe(const rlm_plugin_desc *d, const char *file)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(
	        o, "kind", json_object_new_string(d->kind == RLM_PLUGIN_LLM ? "llm" : "backend"));
	json_object_object_add(o, "file", json_object_new_string(file));
	char abi[32];
	snprintf(abi, sizeof(abi), "%u.%u", RLM_ABI_MAJOR_OF(d->abi_version),
	         RLM_ABI_MINOR_OF(d->abi_version));
	json_object_object_add(o, "abi", json_object_new_string(abi));
	json_object_object_add(o, "summary", json_object_new_string(d->summary ? d->summary : ""));
	json_object_object_add(o, "version", json_object_new_string(d->version ? d->version : ""));
	json_object_object_add(o, "capabilities", rlm__capability_names(d->capabilities));
	json_object *opts = json_object_new_array();
	rlm_option_def *defs = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm__option_defs(d, &defs, &err) != 0)
		json_object_object_add(o, "error", json_object_new_string(err.message));
	for (const rlm_option_def *s = defs; s && s->name; s++)
		json_object_array_add(opts, describe_option(s));
	free(defs);
	json_object_object_add(o, "options", opts);
	return o;
}

static const char *kind_word(rlm_plugin_kind kind)
{
	return kind == RLM_PLUGIN_LLM ? "llm" : "backend";
}

static int seen(json_object *list, rlm_plugin_kind kind, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i), *n = NULL, *k = NULL;
		json_object_object_get_ex(p, "name", &n);
		json_object_object_get_ex(p, "kind", &k);
		if (n && k && !strcmp(json_object_get_string(n), name) &&
		    !strcmp(json_object_get_string(k), kind_word(kind)))
			return 1;
	}
	return 0;
}

static void add_error(json_object *list, rlm_plugin_kind kind, const char *name, const char *file,
                      const char *message)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "kind", json_object_new_string(kind_word(kind)));
	if (file)
		json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "error", json_object_new_string(message));
	json_object_array_add(list, o);
}

static void add_builtin(const rlm_config *cfg, json_object *list, rlm_plugin_kind kind,
                        const char *name)
{
	if (seen(list, kind, name))
		return;
	rlm_plugin *p = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm__plugin_acquire(cfg, kind, name, &p, &err) == 0) {
		json_object_array_add(list, describe(rlm__plugin_desc(p), rlm__plugin_file(p)));
		rlm__plugin_release(p);
		return;
	}
	add_error(list, kind, name, NULL, err.message);
}

/* Describes dir/file when it is named "rlm-<kind>-<name>.so" and no plugin of that kind and
 * name came earlier in the search order. */
static void add_file(json_object *list, const char *dir, const char *file)
{
	static const struct {
		const char *prefix;
		rlm_plugin_kind kind;
	} kinds[] = {{"rlm-backend-", RLM_PLUGIN_BACKEND}, {"rlm-llm-", RLM_PLUGIN_LLM}};
	size_t n = strlen(file);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t p = strlen(kinds[i].prefix);
		if (strncmp(file, kinds[i].prefix, p) || n < p + 4 || strcmp(file + n - 3, ".so"))
			continue;
		char name[128], path[PATH_MAX], real[PATH_MAX];
		snprintf(name, sizeof(name), "%.*s", (int)(n - p - 3), file + p);
		if (seen(list, kinds[i].kind, name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		const char *where = realpath(path, real) ? real : path;
		json_object *d = NULL;
		rlm_error err = RLM_ERROR_INIT;
		if (rlm__plugin_probe(where, kinds[i].kind, name, describe, &d, &err) == 0 && d)
			json_object_array_add(list, d);
		else
			add_error(list, kinds[i].kind, name, where, err.message);
	}
}

static void scan_dir(json_object *list, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		add_file(list, dir, e->d_name);
	closedir(d);
}

/* In the loader's order: plugin_path and $RLM_PLUGIN_PATH, the built-in table, then librlm's
 * own plugin directory; the first plugin of a kind and name is the one listed. */
char *rlm_plugins_json(const rlm_config *cfg, rlm_error *err)
{
	json_object *list = json_object_new_array();
	size_t nexplicit = 0;
	char **dirs = rlm__plugin_dirs(cfg, &nexplicit);
	if (!list || !dirs) {
		json_object_put(list);
		rlm__plugin_dirs_free(dirs);
		rlm_error_set(err, RLM_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < nexplicit; i++)
		scan_dir(list, dirs[i]);
	for (size_t i = 0; i < rlm__builtin_count(); i++) {
		rlm_plugin_kind kind;
		const char *name = rlm__builtin_name(i, &kind);
		add_builtin(cfg, list, kind, name);
	}
	for (size_t i = nexplicit; dirs[i]; i++)
		scan_dir(list, dirs[i]);
	rlm__plugin_dirs_free(dirs);
	char *s = strdup(json_object_to_json_string_ext(
	        list, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(list);
	if (!s)
		rlm_error_set(err, RLM_ENOMEM, "out of memory");
	return s;
}

const char *rlm_version(void)
{
	return RLM_VERSION;
}
