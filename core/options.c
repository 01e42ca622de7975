/* options.c - a plugin's option definitions normalised into one array (ABI 1.2 option_defs,
 * or the 1.0 options), the instance creation that validates a section against them once, and
 * the typed view (rlm_options) that create_opts() reads with the host's opt_* functions. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "host.h"
#include "util.h"

/* The smallest rlm_option_def there ever was: ABI 1.2's, which ends with choices. */
#define DEF_MIN_SIZE (offsetof(rlm_option_def, choices) + sizeof(const char *const *))

int rlm__option_defs_from_specs(const rlm_option_spec *specs, rlm_option_def **out, rlm_error *err)
{
	size_t n = 0;

	while (specs && specs[n].name)
		n++;
	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		(*out)[i] = (rlm_option_def){.struct_size = sizeof(rlm_option_def),
		                             .name = specs[i].name,
		                             .type = specs[i].type,
		                             .default_json = specs[i].default_json,
		                             .doc = specs[i].doc};
	return 0;
}

int rlm__option_defs(const rlm_plugin_desc *desc, rlm_option_def **out, rlm_error *err)
{
	const rlm_option_def *defs = RLM_HAS_FIELD(desc, option_defs) ? desc->option_defs : NULL;
	const char *base = (const char *)defs;
	size_t stride, n = 0;

	*out = NULL;
	if (!defs)
		return rlm__option_defs_from_specs(desc->options, out, err);
	stride = defs[0].struct_size;
	if (defs[0].name && stride < DEF_MIN_SIZE)
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: option_defs entries are %zu bytes, less than any "
		                     "rlm_option_def (%zu): set struct_size (RLM_OPTION_DEF does)",
		                     desc->name, stride, (size_t)DEF_MIN_SIZE);
	while (defs[0].name && ((const rlm_option_def *)(base + n * stride))->name)
		n++;
	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		memcpy(&(*out)[i], base + i * stride,
		       stride < sizeof(rlm_option_def) ? stride : sizeof(rlm_option_def));
		(*out)[i].struct_size = sizeof(rlm_option_def);
	}
	return 0;
}

/* ---- the typed view ---- */

struct option_entry {
	const char *name; /* the definition's */
	rlm_option_type type;
	json_object *value;      /* borrowed from the section; NULL: unset */
	const char **list;       /* STRING_LIST: NULL-terminated, into value */
	const char *object_json; /* OBJECT: value's JSON text ("{}" when unset) */
};

struct rlm_options {
	json_object *section; /* the validated section (a reference of ours) */
	size_t n;
	struct option_entry *entries;
};

static const char *const no_strings[] = {NULL};

void rlm__options_view_free(rlm_options *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		free(o->entries[i].list);
	free(o->entries);
	json_object_put(o->section);
	free(o);
}

static int fill_entry(struct option_entry *e, const rlm_option_def *d, json_object *section)
{
	json_object *v = NULL;

	e->name = d->name;
	e->type = d->type;
	if (json_object_object_get_ex(section, d->name, &v) && v)
		e->value = v;
	if (e->type == RLM_OPT_STRING_LIST && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		if (!(e->list = calloc(n + 1, sizeof(*e->list))))
			return RLM_ENOMEM;
		for (size_t i = 0; i < n; i++)
			e->list[i] = json_object_get_string(json_object_array_get_idx(v, i));
	}
	if (e->type == RLM_OPT_OBJECT)
		e->object_json =
		        v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "{}";
	return 0;
}

int rlm__options_view_new(const rlm_option_def *defs, json_object *filled, rlm_options **out,
                          rlm_error *err)
{
	rlm_options *o = calloc(1, sizeof(*o));
	size_t n = 0;

	*out = NULL;
	while (defs && defs[n].name)
		n++;
	if (!o || !(o->entries = calloc(n + 1, sizeof(*o->entries)))) {
		free(o);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	o->section = json_object_get(filled);
	for (; o->n < n; o->n++) {
		if (fill_entry(&o->entries[o->n], &defs[o->n], filled)) {
			o->n++;
			rlm__options_view_free(o);
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		}
	}
	*out = o;
	return 0;
}

/* The entry of name when it is set and of type t (INT also answers for NUMBER). */
static const struct option_entry *entry(const rlm_options *o, const char *name, rlm_option_type t)
{
	for (size_t i = 0; o && name && i < o->n; i++) {
		const struct option_entry *e = &o->entries[i];
		if (strcmp(e->name, name))
			continue;
		if (e->type == t || (t == RLM_OPT_NUMBER && e->type == RLM_OPT_INT))
			return e;
		return NULL;
	}
	return NULL;
}

int rlm__opt_is_set(const rlm_options *o, const char *name)
{
	for (size_t i = 0; o && name && i < o->n; i++)
		if (!strcmp(o->entries[i].name, name))
			return o->entries[i].value != NULL;
	return 0;
}

const char *rlm__opt_string(const rlm_options *o, const char *name)
{
	const struct option_entry *e = entry(o, name, RLM_OPT_STRING);
	return e && e->value ? json_object_get_string(e->value) : NULL;
}

int64_t rlm__opt_int(const rlm_options *o, const char *name)
{
	const struct option_entry *e = entry(o, name, RLM_OPT_INT);
	return e && e->value ? json_object_get_int64(e->value) : 0;
}

double rlm__opt_number(const rlm_options *o, const char *name)
{
	const struct option_entry *e = entry(o, name, RLM_OPT_NUMBER);
	return e && e->value ? json_object_get_double(e->value) : 0.0;
}

int rlm__opt_bool(const rlm_options *o, const char *name)
{
	const struct option_entry *e = entry(o, name, RLM_OPT_BOOL);
	return e && e->value ? json_object_get_boolean(e->value) : 0;
}

const char *const *rlm__opt_string_list(const rlm_options *o, const char *name)
{
	const struct option_entry *e = entry(o, name, RLM_OPT_STRING_LIST);
	return e && e->list ? e->list : no_strings;
}

const char *rlm__opt_object_json(const rlm_options *o, const char *name)
{
	if (!name)
		return o ? json_object_to_json_string_ext(o->section, JSON_C_TO_STRING_PLAIN)
		         : "{}";
	const struct option_entry *e = entry(o, name, RLM_OPT_OBJECT);
	return e ? e->object_json : "{}";
}

/* ---- instance creation ---- */

int rlm__plugin_instance_create(const rlm_plugin_desc *desc, rlm__create_fn create,
                                rlm__create_opts_fn create_opts, json_object *section,
                                const char *where, void **instance, json_object **filled_out,
                                rlm_error *err)
{
	rlm_option_def *defs = NULL;
	json_object *filled = NULL;
	rlm_options *view = NULL;
	int rc = rlm__option_defs(desc, &defs, err);

	*instance = NULL;
	if (filled_out)
		*filled_out = NULL;
	if (!rc)
		rc = rlm__option_defs_apply(defs, section, where, &filled, err);
	if (!rc && create_opts) {
		rc = rlm__options_view_new(defs, filled, &view, err);
		if (!rc)
			rc = create_opts(rlm__host(), view, instance, err);
		rlm__options_view_free(view);
	} else if (!rc) {
		rc = create(rlm__host(),
		            json_object_to_json_string_ext(filled, JSON_C_TO_STRING_PLAIN),
		            instance, err);
	}
	free(defs);
	if (rc)
		*instance = NULL;
	if (!rc && filled_out)
		*filled_out = filled;
	else
		json_object_put(filled);
	return rc;
}
