/* local_internal.h - what the files of the local backend share: its configuration, the spawn
 * plan that local_isolation.c turns into a sandboxed child process, the report the child sends
 * back about the isolation it reached, how a sandbox's processes are ended, and how its work
 * directory is removed (local_remove.c). Not part of any public ABI. */
#ifndef RLM_LOCAL_INTERNAL_H
#define RLM_LOCAL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "rlm/plugin.h"

/* librlm links these files in with default visibility: keep the helpers out of its ABI. */
#define LOCAL_HIDDEN __attribute__((visibility("hidden")))

#define LOCAL_NAME "local"

/* When rlm runs as root, every sandbox runs in this group (whatever its uid), so volumes made
 * setgid to it can be shared between instances. */
#define LOCAL_SANDBOX_GID 200000u
/* Automatic per-instance uids are picked in [BASE, BASE + SPAN), below 2^31. */
#define LOCAL_SANDBOX_UID_BASE 200001u
#define LOCAL_SANDBOX_UID_SPAN 0x7f000000u

/* Fixed fds in the driver: the channel (PROTOCOL.md: --in-fd 3 --out-fd 4) and the
 * close-on-exec setup status pipe. */
#define LOCAL_FD_CHAN_IN  3
#define LOCAL_FD_CHAN_OUT 4
#define LOCAL_FD_STATUS   5

/* How long ending a sandbox may wait for its processes to die. SIGKILL takes effect at once
 * unless a process is stuck in the kernel (a hung NFS mount): past this the sandbox is
 * reported as not ended, and its work dir is left in place rather than removed under it. */
#define LOCAL_END_TIMEOUT_S 10.0

enum local_isolation {
	LOCAL_ISO_AUTO,       /* try namespaces, fall back to process hygiene and report it */
	LOCAL_ISO_NONE,       /* process hygiene only */
	LOCAL_ISO_NAMESPACES, /* namespaces or fail */
};

/* The parsed config section. Strings and the env list are host->alloc'ed, owned here. */
struct local_config {
	char *python;       /* absolute path of the interpreter, resolved at create() */
	char *workdir_root; /* where work dirs are made */
	char *volume_name;  /* NULL: no volume */
	long memory_mb, max_processes, max_file_size_mb, cpu_seconds, max_open_files;
	enum local_isolation isolation;
	bool network;
	bool prestart;    /* keep a sandbox started ahead for the next open (local.c) */
	char **extra_env; /* "K=V" from env, then pass_env; NULL-terminated */
	/* The sandbox identity when rlm runs as root (drop_uid); unused otherwise. */
	bool drop_uid;
	uid_t uid;
	gid_t gid;
};

/* One setrlimit() the child makes (soft = hard = value). */
struct local_rlimit {
	int resource;
	rlim_t value;
};

#define LOCAL_MAX_RLIMITS 8

/* Everything the child needs, prepared by the parent so that the child between fork and exec
 * only makes async-signal-safe system calls. Pointers are borrowed for the spawn's length. */
struct local_spawn {
	const char *path; /* absolute program path */
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int chan_in, chan_out; /* the child's channel ends, moved to fds 3 and 4; -1: none */
	int out_fd, err_fd;    /* the child's fd 1 and 2; -1: both go to log_path */
	const char *log_path;
	/* isolation, filled by rlm_local_plan_sandbox() */
	enum local_isolation isolation;
	int ns_flags;                  /* CLONE_NEW* to unshare */
	char uid_map[48], gid_map[48]; /* id maps written when ns_flags has CLONE_NEWUSER */
	struct local_rlimit limits[LOCAL_MAX_RLIMITS];
	int nlimits;
	/* RLIMIT_NPROC counts every process of the real uid: it only bounds the sandbox when
	 * the sandbox has a uid (or user namespace) of its own. */
	bool has_nproc;
	bool nproc_needs_userns;
	struct local_rlimit nproc;
	bool drop_uid;
	uid_t uid;
	gid_t gid;
	pid_t parent;       /* getpid() of the host, to notice it died before PDEATHSIG was set */
	int close_fallback; /* highest fd to close when close_range() is missing */
};

enum local_report_kind {
	LOCAL_REPORT_SETUP = 1, /* the child is about to exec: what isolation it reached */
	LOCAL_REPORT_FAIL = 2,  /* a setup step or execve failed: the child exits 127 */
};

/* The setup steps, named in messages by rlm_local_stage_name(). */
enum local_stage {
	LOCAL_STAGE_NONE,
	LOCAL_STAGE_SETSID,
	LOCAL_STAGE_UNSHARE,
	LOCAL_STAGE_SETGROUPS_DENY,
	LOCAL_STAGE_UID_MAP,
	LOCAL_STAGE_GID_MAP,
	LOCAL_STAGE_SETRLIMIT,
	LOCAL_STAGE_SETGROUPS,
	LOCAL_STAGE_SETRESGID,
	LOCAL_STAGE_SETRESUID,
	LOCAL_STAGE_PDEATHSIG,
	LOCAL_STAGE_PARENT_GONE,
	LOCAL_STAGE_NO_NEW_PRIVS,
	LOCAL_STAGE_SECCOMP,
	LOCAL_STAGE_DEVNULL,
	LOCAL_STAGE_LOG,
	LOCAL_STAGE_FDS,
	LOCAL_STAGE_CHDIR,
	LOCAL_STAGE_EXEC,
};

/* Written by the child on the status pipe; fixed size, below PIPE_BUF, so writes are atomic. */
struct local_report {
	int32_t kind;          /* enum local_report_kind */
	int32_t stage;         /* FAIL: the step that failed */
	int32_t err;           /* FAIL: its errno */
	int32_t ns_flags;      /* SETUP: the namespaces the child is in */
	int32_t ns_stage;      /* SETUP: the step that kept it from more (LOCAL_STAGE_NONE: none) */
	int32_t ns_err;        /* SETUP: that step's errno */
	int32_t nproc_applied; /* SETUP: RLIMIT_NPROC was set */
	int32_t resource;      /* FAIL at SETRLIMIT: which limit */
	uint64_t value;        /* FAIL at SETRLIMIT: the value refused */
};

/* Sets err for an EMFILE in the host: names RLIMIT_NOFILE, which the library never raises
 * itself, and its soft and hard values. Returns the error code. */
LOCAL_HIDDEN int rlm_local_emfile(const rlm_host_api *host, const char *what, rlm_error *err);

/* Fills the isolation, limit and identity part of a plan from the config. */
LOCAL_HIDDEN void rlm_local_plan_sandbox(struct local_spawn *plan, const struct local_config *cfg);

/* Forks and sets up the child of plan. On success (0) the child has exec'ed: *pid is set and
 * *setup holds its report. On failure the child (if any) is ended and reaped, and err names
 * the step that failed. deadline: host->now() value to give up waiting for the child; cancel
 * (may be NULL): once *cancel is set the wait stops within 100 ms with RLM_ECANCELLED. */
LOCAL_HIDDEN int rlm_local_spawn(const rlm_host_api *host, const struct local_spawn *plan,
                                 double deadline, const volatile int *cancel, pid_t *pid,
                                 struct local_report *setup, rlm_error *err);

/* Ends everything of the sandbox whose first process is pid (our child, not yet reaped), then
 * reaps pid; *status (may be NULL) is its wait status, or -1 when someone else reaped it.
 *
 * A sandbox is one session: the child made it with setsid(), and a seccomp filter refuses
 * setsid() to everything that runs in it, so no process of the sandbox can leave it (a
 * process group can be left with setpgid(), a session cannot). SIGKILL goes to the session's
 * first process group and to pid, then, while pid dies, every other process /proc lists in
 * the session is SIGKILLed until a pass finds none of them alive (zombies count as dead: they
 * hold no files and run no code), and pid's own end is waited for. pid is reaped last, so the
 * session id cannot be reused while the sweep runs. Returns 0 when no
 * process of the session is left, -1 when one outlived timeout_s (stuck in the kernel) or
 * /proc cannot be read: then the caller must not act as if the sandbox were gone. pid <= 0
 * is a no-op that returns 0. */
LOCAL_HIDDEN int rlm_local_kill_reap(pid_t pid, double timeout_s, int *status);

/* Whether pid (our child, not yet reaped) has exited; *status is then its wait status (or -1
 * when it cannot be known). Never reaps, so the pid and its session id stay ours. */
LOCAL_HIDDEN bool rlm_local_exited(pid_t pid, int *status);

/* Waits up to timeout_s for pid (our child, not yet reaped) to exit, on a pidfd where the
 * kernel has them (no polling); never reaps. Returns whether it exited (*status as above). */
LOCAL_HIDDEN bool rlm_local_wait_exit(pid_t pid, double timeout_s, int *status);

/* The CPU time (user + system, seconds) that exited child pid used, not reaped yet; -1 when
 * unknown. For naming the limit that killed it. */
LOCAL_HIDDEN double rlm_local_cpu_seconds(pid_t pid);

/* "status 3", "signal 9 (SIGKILL)" ... for a wait status; "an unknown status" for -1. */
LOCAL_HIDDEN void rlm_local_describe_status(int status, char *buf, size_t size);

/* "namespaces(net,ipc,uts)" or "process", and why not more (empty when nothing failed). */
LOCAL_HIDDEN void rlm_local_describe_isolation(const struct local_report *setup,
                                               enum local_isolation mode, char *level,
                                               size_t level_size, char *reason, size_t reason_size);

LOCAL_HIDDEN const char *rlm_local_stage_name(int stage);

/* Whether the sandbox identity of cfg can reach path (search permission on every directory
 * on the way, symlinks resolved) and, when want_exec, execute it. Judged from mode bits (a
 * directory carrying a POSIX ACL is given the benefit of the doubt). On false, blocker (if
 * not NULL) names the first path that stops it. Always true when no uid is dropped. */
LOCAL_HIDDEN bool rlm_local_sandbox_can_reach(const struct local_config *cfg, const char *path,
                                              bool want_exec, char *blocker, size_t blocker_size);

/* Removes the directory at path, which must still be the directory (dev, ino) that was made
 * there, and everything in it, without ever following a symbolic link or leaving the tree:
 * see local_remove.c. Returns 0 when it is gone, -1 (errno set) when something was left. */
LOCAL_HIDDEN int rlm_local_remove_tree(const char *path, dev_t dev, ino_t ino);

/* The compiled driver: its bytes, and the cache file they were read from. */
struct local_pyc {
	const char *bytes;
	size_t len;
	const char *path; /* in the host-only cache directory */
	dev_t dev;        /* what path was when the bytes were read */
	ino_t ino;
	bool shareable; /* the host's own, mode 0644: another uid may read it, never write it */
};

/* The driver compiled for python (absolute path), from a host-only cache that is filled on
 * first use and kept in memory for the process's life; what *out points to is shared and
 * read-only (never freed). Non-zero when there is none (then run the source). */
LOCAL_HIDDEN int rlm_local_driver_pyc(const rlm_host_api *host, const char *python,
                                      struct local_pyc *out);

#endif
