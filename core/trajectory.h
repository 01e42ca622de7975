/* trajectory.h - the JSONL record of a run, in the shape alexzhang13/rlm's log visualizer
 * reads: a "metadata" line, then one "iteration" line per turn, and nothing else (the
 * visualizer takes every line that is not metadata for an iteration). The run's closing
 * summary goes to a sidecar file beside it (rlm_trajectory_summary_path in rlm/run.h). Lines
 * are written and flushed as the run goes, so a crash keeps what happened; every string
 * passes through secret redaction first. */
#ifndef RLM_TRAJECTORY_H
#define RLM_TRAJECTORY_H

#include <json-c/json.h>
#include <stddef.h>

#include "rlm/error.h"
#include "rlm/run.h"

typedef struct rlm_trajectory rlm_trajectory;

/* Creates (truncates) the file. A path ending in '/' or naming a directory gets a fresh
 * rlm_<YYYY-mm-dd_HH-MM-SS>_<8 hex>.jsonl inside it. secrets (NULL-terminated, may be NULL;
 * copied) are masked in every line on top of rlm_redact's rules. */
int rlm__trajectory_open(const char *path, const char *const *secrets, rlm_trajectory **out,
                         rlm_error *err);

/* The file actually written. */
const char *rlm__trajectory_path(const rlm_trajectory *t);

/* Masks every string value in obj (in place: the strings are replaced by their masked text,
 * and marked so that a later write does not mask them again), then writes obj (not consumed)
 * as one line and flushes. */
int rlm__trajectory_write(rlm_trajectory *t, json_object *obj, rlm_error *err);

/* A new JSON string holding text with secrets masked, already marked as masked: the loop
 * makes one per history message, which every later line's "prompt" repeats. NULL when out of
 * memory. */
json_object *rlm__trajectory_string(const rlm_trajectory *t, const char *text);

/* Masks summary's strings (in place, as rlm__trajectory_write does) and writes it, pretty,
 * to the sidecar: into a temporary file renamed over it, so a reader sees all or nothing. */
int rlm__trajectory_write_summary(rlm_trajectory *t, json_object *summary, rlm_error *err);

void rlm__trajectory_close(rlm_trajectory *t);

/* A copy of text with secrets masked: rlm_redact, then each of secrets (NULL-terminated, may
 * be NULL). Caller frees. NULL when out of memory. */
char *rlm__redact_with(const char *text, const char *const *secrets);

/* Local time as ISO 8601 with microseconds ("2026-05-01T12:00:00.123456"), as Python's
 * datetime.now().isoformat() writes it. */
void rlm__iso_timestamp(char *buf, size_t size);

#endif
