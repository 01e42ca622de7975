/* embed.c - the README's C API example: open an interpreter, run two cells, map the result to
 * a tool output. Build: cc embed.c $(pkg-config --cflags --libs rlm) */
#include <rlm/rlm.h>
#include <stdio.h>

int main(void)
{
	rlm_config *cfg;
	rlm_interp *in;
	rlm_result *r;
	rlm_error err = RLM_ERROR_INIT;

	if (rlm_config_new(&cfg, &err) || rlm_config_apply_env(cfg, &err) ||
	    rlm_config_set(cfg, "backends.local.memory_mb", "2048", &err) ||
	    rlm_interp_open(cfg, &in, &err)) {
		fprintf(stderr, "rlm: %s (%s)\n", err.message, rlm_status_name(err.code));
		return 1;
	}
	rlm_config_free(cfg); /* the interpreter keeps its own copy */

	if (rlm_interp_execute(in, "total = sum(numbers)", "{\"numbers\": [1, 2, 3]}", &r, &err) ==
	    0)
		rlm_result_free(r);
	int status = 1;
	if (rlm_interp_execute(in, "print('adding up'); SUBMIT(total=total)", NULL, &r, &err) ==
	    0) {
		if (r->error) {
			printf("raised: %s\n", r->error->line);
		} else {
			printf("submitted: %s\n", r->submit_json); /* {"total":6} */
			status = 0;
		}
		rlm_tool_output *t = rlm_tool_output_from_result(r, "python");
		char *text = rlm_tool_output_to_string(t);
		printf("%s\n", text); /* adding up\n[output] {"total":6} */
		rlm_free(text);
		rlm_tool_output_free(t);
		rlm_result_free(r);
	} else {
		fprintf(stderr, "rlm: %s\n", err.message);
	}
	rlm_interp_close(in);
	return status;
}
