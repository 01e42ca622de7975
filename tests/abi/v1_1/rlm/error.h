/* rlm/error.h - error codes and the error object every rlm call fills on failure.
 *
 * Calls return int: 0 on success or a negative RLM_E* code. The human message, the provider's
 * HTTP status and its request id go in an rlm_error the caller owns (no allocation: the
 * struct holds fixed buffers, so it works even when memory runs out). */
#ifndef RLM_ERROR_H
#define RLM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only: never renumbered; retired codes stay as placeholders. */
typedef enum rlm_status {
	RLM_OK = 0,
	RLM_EINVAL = -1,       /* bad argument or bad input (code, vars, frames) */
	RLM_ENOMEM = -2,       /* out of memory */
	RLM_ENOTFOUND = -3,    /* no such plugin, file, key or sandbox */
	RLM_ENOTSUP = -4,      /* the backend does not offer this operation */
	RLM_ECONFIG = -5,      /* invalid configuration */
	RLM_EPLUGIN = -6,      /* a plugin could not be loaded or is not compatible */
	RLM_ETIMEOUT = -7,     /* a deadline passed */
	RLM_EAUTH = -8,        /* credentials missing or refused: not retried */
	RLM_EQUOTA = -9,       /* provider quota or limit reached */
	RLM_ETRANSIENT = -10,  /* temporary failure; retried and still failing */
	RLM_EBACKEND = -11,    /* the sandbox or its provider failed; terminal for this sandbox */
	RLM_EPROTO = -12,      /* the driver protocol was violated */
	RLM_ESTATE_LOST = -13, /* the sandbox's interpreter state was lost */
	RLM_EBUDGET = -14,     /* an LLM call or iteration budget ran out */
	RLM_EIO = -15,         /* local I/O failed */
} rlm_status;

#define RLM_ERROR_MESSAGE_MAX    1024
#define RLM_ERROR_REQUEST_ID_MAX 128

/* Filled by any call that fails. Zero-initialise it (RLM_ERROR_INIT) before use. */
typedef struct rlm_error {
	int code;                                  /* an rlm_status, 0 when no error */
	long http_status;                          /* provider HTTP status, 0 if none */
	char message[RLM_ERROR_MESSAGE_MAX];       /* what went wrong, for a human */
	char request_id[RLM_ERROR_REQUEST_ID_MAX]; /* provider request id, "" if none */
} rlm_error;

#define RLM_ERROR_INIT                                                                             \
	{                                                                                          \
		0, 0, {0},                                                                         \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}

/* A static, never-NULL description of a code ("invalid configuration", ...). */
const char *rlm_strerror(int code);

/* A static, never-NULL name of a code ("RLM_ECONFIG", ...). */
const char *rlm_status_name(int code);

/* Resets err to "no error". */
void rlm_error_clear(rlm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* RLM_ERROR_H */
