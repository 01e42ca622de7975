/* backend.h - a backend instance made from the config: the plugin loaded, its config section
 * validated against its option specs, create() called. Shared by interpreters and by
 * rlm_backend_control. */
#ifndef RLM_BACKEND_H
#define RLM_BACKEND_H

#include "loader.h"
#include "rlm/config.h"
#include "rlm/plugin.h"

/* Loads backend `name` and creates an instance (no sandbox yet). On success the caller owns
 * one plugin reference and the instance (end with ops->shutdown, then release); on failure
 * nothing is held. */
int rlm__backend_create(const rlm_config *cfg, const char *name, rlm_plugin **plugin,
                        void **instance, rlm_error *err);

#endif
