/* rlm/tool_output.h - a result mapped to the tool-output shape harnesses consume
 * (rllm's CodeToolOutput: name, output, error, metadata, stdout, stderr). */
#ifndef RLM_TOOL_OUTPUT_H
#define RLM_TOOL_OUTPUT_H

#include "interp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlm_tool_output {
	char *name;          /* the tool's name, e.g. "python" */
	char *output;        /* the SUBMITted JSON, else the trailing expression's repr, or NULL */
	char *error;         /* the last traceback line, a timeout or state-loss notice, or NULL */
	char *metadata_json; /* {"duration_ms", "timed_out", "state_lost", "truncated",
	                        "stdout_chars", "stderr_chars", "host_calls", "submitted",
	                        "error_type"} */
	char *stdout_text;   /* NUL-terminated, but may hold NUL characters: see stdout_len */
	char *stderr_text;
	size_t stdout_len; /* bytes in stdout_text */
	size_t stderr_len; /* bytes in stderr_text */
} rlm_tool_output;

/* Maps a result; name may be NULL ("python"). Returns NULL only when out of memory. */
RLM_API rlm_tool_output *rlm_tool_output_from_result(const rlm_result *result, const char *name);
RLM_API void rlm_tool_output_free(rlm_tool_output *out);

/* The text a model sees, by one policy: stdout; then stderr under a "[stderr]" line; then
 * "[error] <error>" when there is an error (unlike rllm, errors are never hidden); then
 * "[output] <output>" when there is an output; "(no output)" when all are empty. Parts are
 * separated by one newline. Caller frees with rlm_free. The text holds every byte of stdout
 * and stderr, NUL characters included: use rlm_tool_output_to_string_len to know its length. */
RLM_API char *rlm_tool_output_to_string(const rlm_tool_output *out);
/* The same text; *len (may be NULL) is set to its length in bytes. */
RLM_API char *rlm_tool_output_to_string_len(const rlm_tool_output *out, size_t *len);

/* JSON object with the six fields (metadata as an object); a NUL character in stdout or
 * stderr is written as \u0000. Caller frees with rlm_free. */
RLM_API char *rlm_tool_output_to_json(const rlm_tool_output *out);

#ifdef __cplusplus
}
#endif
#endif /* RLM_TOOL_OUTPUT_H */
