/* error.c - names and descriptions of the rlm_status codes. */
#include <stddef.h>
#include <string.h>

#include "rlm/error.h"

struct status_text {
	int code;
	const char *name;
	const char *text;
};

/* Indexed by -code; append-only like the enum. */
static const struct status_text status_texts[] = {
        {RLM_OK, "RLM_OK", "success"},
        {RLM_EINVAL, "RLM_EINVAL", "invalid argument or input"},
        {RLM_ENOMEM, "RLM_ENOMEM", "out of memory"},
        {RLM_ENOTFOUND, "RLM_ENOTFOUND", "not found"},
        {RLM_ENOTSUP, "RLM_ENOTSUP", "operation not supported by this backend"},
        {RLM_ECONFIG, "RLM_ECONFIG", "invalid configuration"},
        {RLM_EPLUGIN, "RLM_EPLUGIN", "plugin could not be loaded"},
        {RLM_ETIMEOUT, "RLM_ETIMEOUT", "deadline exceeded"},
        {RLM_EAUTH, "RLM_EAUTH", "authentication failed"},
        {RLM_EQUOTA, "RLM_EQUOTA", "quota or limit reached"},
        {RLM_ETRANSIENT, "RLM_ETRANSIENT", "temporary failure, retries exhausted"},
        {RLM_EBACKEND, "RLM_EBACKEND", "sandbox backend failed"},
        {RLM_EPROTO, "RLM_EPROTO", "driver protocol error"},
        {RLM_ESTATE_LOST, "RLM_ESTATE_LOST", "interpreter state was lost"},
        {RLM_EBUDGET, "RLM_EBUDGET", "budget exhausted"},
        {RLM_EIO, "RLM_EIO", "input/output error"},
        {RLM_ECANCELLED, "RLM_ECANCELLED", "cancelled"},
};

static const struct status_text *lookup(int code)
{
	size_t n = sizeof(status_texts) / sizeof(status_texts[0]);
	if (code > 0 || (size_t)(-code) >= n)
		return NULL;
	return &status_texts[-code];
}

const char *rlm_strerror(int code)
{
	const struct status_text *t = lookup(code);
	return t ? t->text : "unknown error";
}

const char *rlm_status_name(int code)
{
	const struct status_text *t = lookup(code);
	return t ? t->name : "RLM_EUNKNOWN";
}

void rlm_error_clear(rlm_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}
