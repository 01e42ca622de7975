/* backend.c - a backend instance made from the config, and rlm_backend_control: a backend's
 * provider-specific operations (e.g. Daytona's gc) without starting a sandbox. */
#include "backend.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "host.h"
#include "rlm/rlm.h"
#include "util.h"

int rlm__backend_create(const rlm_config *cfg, const char *name, rlm_plugin **plugin,
                        void **instance, rlm_error *err)
{
	*plugin = NULL;
	*instance = NULL;
	rlm_plugin *p = NULL;
	int rc = rlm__plugin_acquire(cfg, RLM_PLUGIN_BACKEND, name, &p, err);
	if (rc)
		return rc;
	const rlm_plugin_desc *desc = rlm__plugin_desc(p);
	const rlm_backend_ops *ops = desc->ops;
	char key[128];
	snprintf(key, sizeof(key), "backends.%s", name);
	rc = rlm__plugin_instance_create(desc, ops->create,
	                                 RLM_HAS_SLOT(ops, create_opts) ? ops->create_opts : NULL,
	                                 rlm__config_lookup(cfg, key), key, instance, NULL, err);
	if (rc) {
		*instance = NULL;
		rlm__plugin_release(p);
		return rc;
	}
	*plugin = p;
	return 0;
}

int rlm_backend_control(const rlm_config *cfg, const char *backend, const char *op,
                        const char *arg_json, char **out_json, rlm_error *err)
{
	*out_json = NULL;
	if (!op || !*op)
		return rlm_error_set(err, RLM_EINVAL, "rlm_backend_control: no operation");
	rlm_plugin *p;
	void *inst;
	int rc = rlm__backend_create(cfg, backend, &p, &inst, err);
	if (rc)
		return rc;
	const rlm_backend_ops *ops = rlm__plugin_desc(p)->ops;
	rlm_buf out = {0};
	if (!RLM_HAS_SLOT(ops, control))
		rc = rlm_error_set(err, RLM_ENOTSUP, "backend %s has no control operations",
		                   backend);
	else
		rc = ops->control(inst, op, arg_json, &out, err);
	if (rc == 0) {
		/* Re-home the plugin's bytes in our allocator, NUL-terminated. */
		*out_json = calloc(1, out.len + 1);
		if (*out_json)
			memcpy(*out_json, out.data ? out.data : "", out.len);
		else
			rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	rlm__host()->free(out.data);
	ops->shutdown(inst);
	rlm__plugin_release(p);
	return rc;
}
