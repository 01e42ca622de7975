/* fuzz_config.c - libFuzzer target for configuration input: any text merged as a config
 * layer or given as a --set assignment must give 0 or a clear error, never a crash or leak,
 * and a refused layer must leave the config valid. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlm/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) == 0) {
		if (size && data[0] & 1)
			(void)rlm_config_set_assignment(cfg, text + 1, &err);
		else
			(void)rlm_config_merge_json(cfg, text, "fuzz", &err);
		if (rlm_config_validate(cfg, &err))
			abort(); /* whatever was refused, what stayed must be valid */
		char *all = rlm_config_get_json(cfg, NULL);
		rlm_free(all);
	}
	rlm_config_free(cfg);
	free(text);
	return 0;
}
