/* plugins_json.c - describes every plugin the loader can find (for `rlm backends`). */
#include <dirent.h>
#include <json-c/json.h>
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

static json_object *describe(const rlm_plugin *p)
{
	const rlm_plugin_desc *d = rlm__plugin_desc(p);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(
	        o, "kind", json_object_new_string(d->kind == RLM_PLUGIN_LLM ? "llm" : "backend"));
	json_object_object_add(o, "file", json_object_new_string(rlm__plugin_file(p)));
	char abi[32];
	snprintf(abi, sizeof(abi), "%u.%u", RLM_ABI_MAJOR_OF(d->abi_version),
	         RLM_ABI_MINOR_OF(d->abi_version));
	json_object_object_add(o, "abi", json_object_new_string(abi));
	json_object_object_add(o, "summary", json_object_new_string(d->summary ? d->summary : ""));
	json_object_object_add(o, "version", json_object_new_string(d->version ? d->version : ""));
	json_object_object_add(o, "capabilities", rlm__capability_names(d->capabilities));
	json_object *opts = json_object_new_array();
	for (const rlm_option_spec *s = d->options; s && s->name; s++) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(s->name));
		json_object_object_add(x, "type", json_object_new_string(type_name(s->type)));
		json_object_object_add(
		        x, "default", s->default_json ? json_tokener_parse(s->default_json) : NULL);
		json_object_object_add(x, "doc", json_object_new_string(s->doc ? s->doc : ""));
		json_object_array_add(opts, x);
	}
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

static void add_named(const rlm_config *cfg, json_object *list, rlm_plugin_kind kind,
                      const char *name)
{
	if (seen(list, kind, name))
		return;
	rlm_plugin *p = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm__plugin_acquire(cfg, kind, name, &p, &err) == 0) {
		json_object_array_add(list, describe(p));
		rlm__plugin_release(p);
		return;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "kind", json_object_new_string(kind_word(kind)));
	json_object_object_add(o, "error", json_object_new_string(err.message));
	json_object_array_add(list, o);
}

/* Adds the plugin named by a file "rlm-<kind>-<name>.so", if entry names one. */
static void add_file(const rlm_config *cfg, json_object *list, const char *file)
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
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(n - p - 3), file + p);
		add_named(cfg, list, kinds[i].kind, name);
	}
}

static void scan_dir(const rlm_config *cfg, json_object *list, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		add_file(cfg, list, e->d_name);
	closedir(d);
}

char *rlm_plugins_json(const rlm_config *cfg, rlm_error *err)
{
	json_object *list = json_object_new_array();
	if (!list) {
		rlm_error_set(err, RLM_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < rlm__builtin_count(); i++) {
		rlm_plugin_kind kind;
		const char *name = rlm__builtin_name(i, &kind);
		add_named(cfg, list, kind, name);
	}
	json_object *pp = cfg ? rlm__config_lookup(cfg, "plugin_path") : NULL;
	for (size_t i = 0; pp && i < json_object_array_length(pp); i++)
		scan_dir(cfg, list, json_object_get_string(json_object_array_get_idx(pp, i)));
	char *env = getenv("RLM_PLUGIN_PATH") ? strdup(getenv("RLM_PLUGIN_PATH")) : NULL;
	char *save = NULL;
	for (char *t = env ? strtok_r(env, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
		scan_dir(cfg, list, t);
	free(env);
#ifdef RLM_BUILD_PLUGIN_DIR
	scan_dir(cfg, list, RLM_BUILD_PLUGIN_DIR);
#endif
#ifdef RLM_INSTALL_PLUGIN_DIR
	scan_dir(cfg, list, RLM_INSTALL_PLUGIN_DIR);
#endif
	char *s = strdup(json_object_to_json_string_ext(
	        list, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(list);
	return s;
}

const char *rlm_version(void)
{
	return RLM_VERSION;
}
