/* interp_internal.h - result building shared by the interpreter and tool-output mapping. */
#ifndef RLM_INTERP_INTERNAL_H
#define RLM_INTERP_INTERNAL_H

#include <json-c/json.h>

#include "rlm/interp.h"

/* Builds a result from a driver "result" frame. NULL when out of memory. */
rlm_result *rlm__result_from_frame(json_object *frame);

/* A result for a cell the host had to give up on (driver died, hard deadline). */
rlm_result *rlm__result_synthetic(const char *type, const char *message, int timed_out,
                                  int state_lost);

/* rlm_interp_open, watching cancel (rlm_interp_set_cancel_flag) from the start, so a slow
 * sandbox creation can be cancelled. NULL: the interpreter's own flag. */
int rlm__interp_open_watching(const rlm_config *cfg, volatile int *cancel, rlm_interp **out,
                              rlm_error *err);

/* Replaces the result's error with a new one (line = "type: message"); the old one is freed.
 * 0 or RLM_ENOMEM (then the result is unchanged). */
int rlm__result_set_error(rlm_result *r, const char *type, const char *message,
                          const char *traceback);

/* The bytes in a result's stdout_text / stderr_text (or a tool output's): len, or strlen when
 * len is smaller (a result filled in by hand without its lengths). */
size_t rlm__text_len(const char *text, size_t len);

/* The interpreter's tools (rlm_interp_register_tool) as lines for the model,
 * "- `name`: description\n" each; NULL when it has none (or out of memory). Caller frees. */
char *rlm__interp_tools_text(const rlm_interp *in);

/* Result as a json-c object (caller puts it). */
json_object *rlm__result_to_object(const rlm_result *r);

#endif
