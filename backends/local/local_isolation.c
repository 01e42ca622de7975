/* local_isolation.c - how the local backend launches a process inside its sandbox, and how
 * it ends every process of a sandbox.
 *
 * The parent prepares a spawn plan (everything that allocates or formats happens there, since
 * the host may be multithreaded); the child then only makes async-signal-safe system calls:
 * its own session, a clean fd table, best-effort namespaces, rlimits, the sandbox uid, a
 * parent-death signal, no-new-privs, a seccomp filter that keeps everything it starts in that
 * session, then execve. It reports the isolation it reached, or the step that failed, on a
 * close-on-exec status pipe: EOF after a setup report means execve worked. Ending a sandbox
 * kills its session, see rlm_local_kill_reap(). This is resource containment, not a security
 * boundary against hostile code. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ---- the plan (parent side) ------------------------------------------------------------ */

/* An unprivileged process cannot raise its hard limit: clamp to it rather than fail. */
static rlim_t clamp_to_hard(int resource, rlim_t v)
{
	struct rlimit cur;

	if (geteuid() != 0 && getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
	    v > cur.rlim_max)
		return cur.rlim_max;
	return v;
}

/* Adds a limit; 0 means "none of our own", so the host's limit is inherited. */
static void plan_limit(struct local_spawn *p, int resource, long value, rlim_t unit)
{
	if (value <= 0 || p->nlimits >= LOCAL_MAX_RLIMITS)
		return;
	p->limits[p->nlimits].resource = resource;
	p->limits[p->nlimits].value = clamp_to_hard(resource, (rlim_t)value * unit);
	p->nlimits++;
}

static void plan_namespaces(struct local_spawn *p, const struct local_config *cfg, bool root)
{
	p->isolation = cfg->isolation;
	p->ns_flags = 0;
	if (cfg->isolation == LOCAL_ISO_NONE)
		return;
	p->ns_flags = CLONE_NEWIPC | CLONE_NEWUTS | (cfg->network ? 0 : CLONE_NEWNET);
	if (root)
		return;
	/* Unprivileged: a user namespace is what allows the others. Our own ids map to
	 * themselves, so files keep their owners and the driver stays unprivileged. */
	p->ns_flags |= CLONE_NEWUSER;
	snprintf(p->uid_map, sizeof(p->uid_map), "%u %u 1\n", (unsigned)geteuid(),
	         (unsigned)geteuid());
	snprintf(p->gid_map, sizeof(p->gid_map), "%u %u 1\n", (unsigned)getegid(),
	         (unsigned)getegid());
}

void rlm_local_plan_sandbox(struct local_spawn *p, const struct local_config *cfg)
{
	const rlim_t mib = 1024 * 1024;
	bool root = geteuid() == 0;
	struct rlimit nofile;

	plan_namespaces(p, cfg, root);
	p->nlimits = 0;
	plan_limit(p, RLIMIT_AS, cfg->memory_mb, mib);
	plan_limit(p, RLIMIT_FSIZE, cfg->max_file_size_mb, mib);
	plan_limit(p, RLIMIT_CPU, cfg->cpu_seconds, 1);
	plan_limit(p, RLIMIT_NOFILE, cfg->max_open_files, 1);
	p->limits[p->nlimits].resource = RLIMIT_CORE;
	p->limits[p->nlimits++].value = 0;

	/* Root ignores RLIMIT_NPROC, and without a uid or user namespace of its own the count
	 * would include every process of the user, so it is only set where it bounds the
	 * sandbox; the report says whether it was. */
	p->has_nproc = cfg->max_processes > 0 && (!root || cfg->drop_uid);
	p->nproc_needs_userns = !root;
	p->nproc.resource = RLIMIT_NPROC;
	p->nproc.value = clamp_to_hard(RLIMIT_NPROC,
	                               (rlim_t)(cfg->max_processes > 0 ? cfg->max_processes : 0));

	p->drop_uid = root && cfg->drop_uid;
	p->uid = cfg->uid;
	p->gid = cfg->gid;
	p->parent = getpid();
	p->close_fallback = 65536;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536)
		p->close_fallback = (int)nofile.rlim_cur;
}

/* ---- the child: async-signal-safe calls only from here to child_run() ------------------ */

struct child {
	const struct local_spawn *plan;
	int status_fd;
	struct local_report setup;
};

static void child_send(int fd, const struct local_report *r)
{
	ssize_t n;

	do
		n = write(fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
}

static _Noreturn void child_fail_limit(const struct child *c, int stage, int err,
                                       const struct local_rlimit *lim)
{
	struct local_report r;

	memset(&r, 0, sizeof(r));
	r.kind = LOCAL_REPORT_FAIL;
	r.stage = stage;
	r.err = err;
	if (lim) {
		r.resource = lim->resource;
		r.value = lim->value;
	}
	child_send(c->status_fd, &r);
	_exit(127);
}

static _Noreturn void child_fail(const struct child *c, int stage, int err)
{
	child_fail_limit(c, stage, err, NULL);
}

/* Handlers are reset by exec anyway, but ignored signals are inherited: a host that ignores
 * SIGINT would otherwise leave the driver deaf to interrupt(). The parent blocked every signal
 * around fork, so no host handler can run in the child before this. */
static void child_default_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, libc's own */
}

static int child_write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return errno;
	n = write(fd, text, len);
	e = n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
	close(fd);
	return e;
}

/* A fresh network namespace has its loopback down; bring it up so local servers still work. */
static void child_loopback_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

/* Writes the id maps of a fresh user namespace; returns the failing stage or NONE. */
static int child_map_ids(const struct local_spawn *p, int *err)
{
	*err = child_write_file("/proc/self/setgroups", "deny");
	if (*err == ENOENT) /* kernels before 3.19 have no such file and need no deny */
		*err = 0;
	if (*err)
		return LOCAL_STAGE_SETGROUPS_DENY;
	if ((*err = child_write_file("/proc/self/uid_map", p->uid_map)) != 0)
		return LOCAL_STAGE_UID_MAP;
	if ((*err = child_write_file("/proc/self/gid_map", p->gid_map)) != 0)
		return LOCAL_STAGE_GID_MAP;
	return LOCAL_STAGE_NONE;
}

/* Best effort in "auto" mode: failure leaves the child with process hygiene only, and the
 * report says why. An unshare that worked cannot be undone, so a failed id map is reported
 * with the namespaces it did get (the child is then an unmapped, even less privileged user). */
static void child_namespaces(struct child *c)
{
	const struct local_spawn *p = c->plan;
	int err = 0, stage = LOCAL_STAGE_NONE;

	if (!p->ns_flags)
		return;
	if (unshare(p->ns_flags) < 0) {
		err = errno;
		stage = LOCAL_STAGE_UNSHARE;
	} else {
		c->setup.ns_flags = p->ns_flags;
		if (p->ns_flags & CLONE_NEWUSER)
			stage = child_map_ids(p, &err);
		if (p->ns_flags & CLONE_NEWNET)
			child_loopback_up();
	}
	if (stage == LOCAL_STAGE_NONE)
		return;
	if (p->isolation == LOCAL_ISO_NAMESPACES)
		child_fail(c, stage, err);
	c->setup.ns_stage = stage;
	c->setup.ns_err = err;
}

static void child_limits(struct child *c)
{
	const struct local_spawn *p = c->plan;
	struct rlimit rl;

	for (int i = 0; i < p->nlimits; i++) {
		rl.rlim_cur = rl.rlim_max = p->limits[i].value;
		if (setrlimit(p->limits[i].resource, &rl) < 0)
			child_fail_limit(c, LOCAL_STAGE_SETRLIMIT, errno, &p->limits[i]);
	}
	if (!p->has_nproc)
		return;
	/* Without a mapped user namespace an unprivileged child shares its uid with the whole
	 * session: the limit would count those processes too and could starve the driver. */
	if (p->nproc_needs_userns &&
	    (!(c->setup.ns_flags & CLONE_NEWUSER) || c->setup.ns_stage != LOCAL_STAGE_NONE))
		return;
	rl.rlim_cur = rl.rlim_max = p->nproc.value;
	if (setrlimit(RLIMIT_NPROC, &rl) < 0)
		child_fail_limit(c, LOCAL_STAGE_SETRLIMIT, errno, &p->nproc);
	c->setup.nproc_applied = 1;
}

/* As root: become the sandbox user, in the shared sandbox group only. The forked child is
 * single-threaded, so libc's set*id calls do not need to signal other threads. */
static void child_identity(struct child *c)
{
	const struct local_spawn *p = c->plan;

	if (!p->drop_uid)
		return;
	if (setgroups(1, &p->gid) < 0)
		child_fail(c, LOCAL_STAGE_SETGROUPS, errno);
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		child_fail(c, LOCAL_STAGE_SETRESGID, errno);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		child_fail(c, LOCAL_STAGE_SETRESUID, errno);
	/* Files made in a shared volume stay writable by the other sandboxes of the group. */
	umask(007);
}

/* After the uid change, which clears the parent-death signal. Note the signal follows the
 * thread that forked, not the process: a host that starts interpreters on short-lived
 * threads loses their drivers when those threads exit. */
static void child_tie_to_parent(struct child *c)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(c, LOCAL_STAGE_PDEATHSIG, errno);
	if (getppid() != c->plan->parent)
		child_fail(c, LOCAL_STAGE_PARENT_GONE, ESRCH);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(c, LOCAL_STAGE_NO_NEW_PRIVS, errno);
}

/* Moves fd to 10 or above, so the dup2()s to 0..5 below never overwrite a source. */
static int child_high(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

static void child_close_from(int lo, int fallback_max)
{
	if (close_range((unsigned)lo, ~0u, 0) == 0)
		return;
	for (int fd = lo; fd <= fallback_max; fd++) /* kernels before 5.9 */
		close(fd);
}

/* 0: /dev/null; 1, 2: the capture pipes, or /dev/null until child_log(); 3, 4: the channel;
 * 5: the status pipe; every fd inherited from the host closed. Runs before the limits, so the
 * host may hold any number of fds (RLIMIT_NOFILE would leave no room to move them), and
 * before the namespaces and the uid change, so nothing of the host stays open in there. */
static void child_fds(struct child *c)
{
	const struct local_spawn *p = c->plan;
	int st, null_fd, out = -1, err = -1, in = -1, chan = -1;

	st = child_high(c->status_fd);
	if (st < 0)
		child_fail(c, LOCAL_STAGE_FDS, errno);
	c->status_fd = st;
	null_fd = child_high(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (null_fd < 0)
		child_fail(c, LOCAL_STAGE_DEVNULL, errno);
	if (p->out_fd >= 0 &&
	    ((out = child_high(p->out_fd)) < 0 || (err = child_high(p->err_fd)) < 0))
		child_fail(c, LOCAL_STAGE_FDS, errno);
	if (p->chan_in >= 0 &&
	    ((in = child_high(p->chan_in)) < 0 || (chan = child_high(p->chan_out)) < 0))
		child_fail(c, LOCAL_STAGE_FDS, errno);
	if (dup2(null_fd, 0) < 0 || dup2(out >= 0 ? out : null_fd, 1) < 0 ||
	    dup2(err >= 0 ? err : null_fd, 2) < 0 ||
	    (in >= 0 && (dup2(in, LOCAL_FD_CHAN_IN) < 0 || dup2(chan, LOCAL_FD_CHAN_OUT) < 0)) ||
	    dup3(st, LOCAL_FD_STATUS, O_CLOEXEC) < 0)
		child_fail(c, LOCAL_STAGE_FDS, errno);
	c->status_fd = LOCAL_FD_STATUS;
	if (in < 0) {
		close(LOCAL_FD_CHAN_IN);
		close(LOCAL_FD_CHAN_OUT);
	}
	child_close_from(LOCAL_FD_STATUS + 1, p->close_fallback);
}

/* The driver's own stdout/stderr go to its log (Python's fatal errors land there, for error
 * messages). Opened as the sandbox uid, in the sandbox's directory: never as root there. */
static void child_log(struct child *c)
{
	int log;

	if (c->plan->out_fd >= 0)
		return;
	log = open(c->plan->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (log < 0)
		child_fail(c, LOCAL_STAGE_LOG, errno);
	if (dup2(log, 1) < 0 || dup2(log, 2) < 0)
		child_fail(c, LOCAL_STAGE_LOG, errno);
	close(log);
}

/* The seccomp filter of child_contain(): setsid() fails with EPERM for the native ABI and the
 * compat ones this architecture can run, so every process of the sandbox stays in the session
 * the child made. Everything else is allowed. */
#if defined(__x86_64__)
#define SANDBOX_ARCH          AUDIT_ARCH_X86_64
#define SANDBOX_COMPAT_ARCH   AUDIT_ARCH_I386
#define SANDBOX_COMPAT_SETSID 66
#define SANDBOX_X32_SETSID    (0x40000000 | __NR_setsid) /* x32 calls carry this bit */
#elif defined(__aarch64__)
#define SANDBOX_ARCH          AUDIT_ARCH_AARCH64
#define SANDBOX_COMPAT_ARCH   AUDIT_ARCH_ARM
#define SANDBOX_COMPAT_SETSID 66
#elif defined(__i386__)
#define SANDBOX_ARCH AUDIT_ARCH_I386
#elif defined(__arm__) && !defined(__ARMEB__)
#define SANDBOX_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define SANDBOX_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SANDBOX_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define SANDBOX_ARCH          AUDIT_ARCH_S390X
#define SANDBOX_COMPAT_ARCH   AUDIT_ARCH_S390
#define SANDBOX_COMPAT_SETSID 66
#endif
#ifdef SANDBOX_ARCH
#ifndef SANDBOX_COMPAT_ARCH
#define SANDBOX_COMPAT_ARCH   SANDBOX_ARCH /* never reached: the native test comes first */
#define SANDBOX_COMPAT_SETSID __NR_setsid
#endif
#ifndef SANDBOX_X32_SETSID
#define SANDBOX_X32_SETSID __NR_setsid
#endif

static void child_contain(struct child *c)
{
	/* Instruction numbers: a jump's offsets count from the instruction after it. */
	enum { NATIVE = 2, COMPAT = 5, OTHER = 8, ALLOW = 9, DENY = 10 };
	struct sock_filter insns[] = {
	        /* 0, 1: the native ABI goes to 2, any other to 5 */
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, NATIVE - 2, COMPAT - 2),
	        /* 2-4: native setsid (and x32's) is denied, the rest allowed */
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsid, DENY - 4, 0),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_X32_SETSID, DENY - 5, ALLOW - 5),
	        /* 5-7: the compat ABI's setsid is denied, the rest allowed */
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_COMPAT_ARCH, 0, OTHER - 6),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_COMPAT_SETSID, DENY - 8, ALLOW - 8),
	        /* 8: an ABI whose numbers this filter does not know: every call fails */
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	        /* 9, 10 */
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = {sizeof(insns) / sizeof(insns[0]), insns};

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		child_fail(c, LOCAL_STAGE_SECCOMP, errno);
}
#else
/* An architecture this file has no seccomp numbers for: setsid() stays allowed, and the README
 * says that the sweep at close then misses what left the session. */
static void child_contain(struct child *c)
{
	(void)c;
}
#endif

static _Noreturn void child_run(const struct local_spawn *p, int status_fd)
{
	struct child c;
	sigset_t none;

	memset(&c, 0, sizeof(c));
	c.plan = p;
	c.status_fd = status_fd;
	c.setup.kind = LOCAL_REPORT_SETUP;
	child_default_signals();
	if (setsid() < 0)
		child_fail(&c, LOCAL_STAGE_SETSID, errno);
	child_fds(&c);
	child_namespaces(&c);
	child_limits(&c);
	child_identity(&c);
	child_tie_to_parent(&c);
	child_contain(&c);
	if (chdir(p->cwd) < 0)
		child_fail(&c, LOCAL_STAGE_CHDIR, errno);
	child_log(&c);
	child_send(c.status_fd, &c.setup);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(p->path, p->argv, p->envp);
	child_fail(&c, LOCAL_STAGE_EXEC, errno);
}

/* ---- spawning (parent side) ------------------------------------------------------------ */

static const char *const stage_names[] = {
        [LOCAL_STAGE_NONE] = "none",
        [LOCAL_STAGE_SETSID] = "setsid",
        [LOCAL_STAGE_UNSHARE] = "unshare",
        [LOCAL_STAGE_SETGROUPS_DENY] = "writing /proc/self/setgroups",
        [LOCAL_STAGE_UID_MAP] = "writing /proc/self/uid_map",
        [LOCAL_STAGE_GID_MAP] = "writing /proc/self/gid_map",
        [LOCAL_STAGE_SETRLIMIT] = "setrlimit",
        [LOCAL_STAGE_SETGROUPS] = "setgroups",
        [LOCAL_STAGE_SETRESGID] = "setresgid",
        [LOCAL_STAGE_SETRESUID] = "setresuid",
        [LOCAL_STAGE_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
        [LOCAL_STAGE_PARENT_GONE] = "parent check",
        [LOCAL_STAGE_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
        [LOCAL_STAGE_SECCOMP] = "installing the seccomp filter that keeps the sandbox in its "
                                "session",
        [LOCAL_STAGE_DEVNULL] = "opening /dev/null",
        [LOCAL_STAGE_LOG] = "opening the driver log",
        [LOCAL_STAGE_FDS] = "arranging file descriptors",
        [LOCAL_STAGE_CHDIR] = "chdir",
        [LOCAL_STAGE_EXEC] = "execve",
};

const char *rlm_local_stage_name(int stage)
{
	if (stage < 0 || (size_t)stage >= sizeof(stage_names) / sizeof(stage_names[0]))
		return "an unknown step";
	return stage_names[stage];
}

static void ns_names(int flags, char *buf, size_t size)
{
	static const struct {
		int flag;
		const char *name;
	} names[] = {{CLONE_NEWUSER, "user"},
	             {CLONE_NEWNET, "net"},
	             {CLONE_NEWIPC, "ipc"},
	             {CLONE_NEWUTS, "uts"}};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].flag) || used >= size)
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "",
		                         names[i].name);
	}
}

void rlm_local_describe_isolation(const struct local_report *setup, enum local_isolation mode,
                                  char *level, size_t level_size, char *reason, size_t reason_size)
{
	char names[64];

	ns_names(setup->ns_flags, names, sizeof(names));
	if (setup->ns_flags)
		snprintf(level, level_size, "namespaces(%s)", names);
	else
		snprintf(level, level_size, "process");
	reason[0] = '\0';
	if (mode == LOCAL_ISO_NONE)
		snprintf(reason, reason_size, "isolation \"none\" configured");
	else if (setup->ns_stage != LOCAL_STAGE_NONE)
		snprintf(reason, reason_size, "%s: %s", rlm_local_stage_name(setup->ns_stage),
		         strerror(setup->ns_err));
}

void rlm_local_describe_status(int status, char *buf, size_t size)
{
	if (status < 0) {
		snprintf(buf, size, "ended with an unknown status (reaped elsewhere)");
	} else if (WIFEXITED(status)) {
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		snprintf(buf, size, "killed by signal %d (SIG%s)", WTERMSIG(status),
		         abbrev ? abbrev : "?");
	} else {
		snprintf(buf, size, "ended with wait status %#x", (unsigned)status);
	}
}

bool rlm_local_exited(pid_t pid, int *status)
{
	siginfo_t si;

	*status = -1;
	if (pid <= 0)
		return true;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		if (errno != EINTR)
			return true; /* ECHILD: a SIGCHLD-ignoring host reaped it; gone anyway */
	}
	if (si.si_pid != pid)
		return false;
	if (si.si_code == CLD_EXITED)
		*status = (si.si_status & 0xff) << 8;
	else
		*status = si.si_status & 0x7f;
	return true;
}

/* ---- ending a sandbox: every process of its session ------------------------------------ */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ms_until(double deadline, int cap_ms)
{
	double left = deadline - mono_now();

	if (left <= 0)
		return 0;
	return left * 1000 < cap_ms ? (int)(left * 1000) + 1 : cap_ms;
}

/* A pidfd for pid, or -1 (errno ENOSYS before Linux 5.3). */
static int pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static int pidfd_kill(int pidfd)
{
#ifdef SYS_pidfd_send_signal
	return (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
#else
	(void)pidfd;
	errno = ENOSYS;
	return -1;
#endif
}

/* Waits until pidfd says its process exited, or the deadline. */
static bool pidfd_wait(int pidfd, double deadline)
{
	for (;;) {
		struct pollfd pfd = {pidfd, POLLIN, 0};
		int r = poll(&pfd, 1, ms_until(deadline, 1000));

		if (r > 0)
			return true;
		if ((r == 0 && mono_now() >= deadline) || (r < 0 && errno != EINTR))
			return false;
	}
}

/* What /proc/<pid>/stat says of a process. A zombie whose threads all exited is dead; one
 * whose leader thread exited while others run (num_threads > 1) is not. */
struct proc_info {
	long session;
	bool alive;
	double cpu_s; /* utime + stime */
};

static int proc_info(int procfd, pid_t pid, struct proc_info *pi)
{
	char name[32], buf[1024], state;
	unsigned long long utime, stime;
	long threads;
	ssize_t n;
	int fd;

	snprintf(name, sizeof(name), "%d/stat", (int)pid);
	fd = openat(procfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold anything, ')' included: the fields start after the last. */
	char *p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 1,
	           " %c %*s %*s %ld %*s %*s %*s %*s %*s %*s %*s %llu %llu %*s %*s %*s %*s %ld",
	           &state, &pi->session, &utime, &stime, &threads) != 5)
		return -1;
	pi->alive = !((state == 'Z' || state == 'X' || state == 'x') && threads <= 1);
	pi->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

double rlm_local_cpu_seconds(pid_t pid)
{
	struct proc_info pi;
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = procfd >= 0 ? proc_info(procfd, pid, &pi) : -1;

	if (procfd >= 0)
		close(procfd);
	return rc == 0 ? pi.cpu_s : -1;
}

#define SWEEP_WAIT_MAX 64 /* pidfds waited on per pass; the next pass finds the rest */

/* One pass over /proc: SIGKILLs every live process of session sid but sid itself (the
 * caller's child, SIGKILLed and waited for by the caller). Their pidfds go in fds
 * (*nfds of them) for the caller to wait on. Returns how many were alive, -1 without /proc.
 * A pid read from /proc may be reused before it is signalled, so each is pinned with a pidfd
 * and checked again before the signal; sid itself cannot be reused (the caller has not reaped
 * the session leader). Without a pidfd, a plain kill() follows the check. */
static int sweep_pass(pid_t sid, int *fds, int *nfds)
{
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), live = 0;
	DIR *dir = procfd >= 0 ? fdopendir(procfd) : NULL;
	struct dirent *e;
	struct proc_info pi;

	if (!dir) {
		if (procfd >= 0)
			close(procfd);
		return -1;
	}
	while ((e = readdir(dir))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		int pidfd;

		/* getsid() first: one system call where reading stat is three, and almost every
		 * process on the host is in another session. */
		if (*end || pid <= 0 || pid == sid || getsid((pid_t)pid) != sid ||
		    proc_info(procfd, (pid_t)pid, &pi) < 0 || pi.session != sid || !pi.alive)
			continue;
		live++;
		pidfd = pidfd_for((pid_t)pid);
		if (pidfd < 0) {
			/* No pidfd (an old kernel, or no fd left): kill() just after the check. */
			if (errno != ESRCH)
				kill((pid_t)pid, SIGKILL);
			continue;
		}
		if (proc_info(procfd, (pid_t)pid, &pi) == 0 && pi.session == sid && pi.alive &&
		    pidfd_kill(pidfd) == 0 && *nfds < SWEEP_WAIT_MAX) {
			fds[(*nfds)++] = pidfd;
			continue;
		}
		close(pidfd);
	}
	closedir(dir);
	return live;
}

/* SIGKILLs every process of session sid but sid itself until a pass over /proc finds none
 * of them alive. */
static int sweep_session(pid_t sid, double deadline)
{
	for (long pause_us = 100;; pause_us = pause_us < 10000 ? pause_us * 2 : 10000) {
		int fds[SWEEP_WAIT_MAX], n = 0;
		int live = sweep_pass(sid, fds, &n);

		if (live <= 0)
			return live;
		for (int i = 0; i < n; i++) {
			pidfd_wait(fds[i], deadline);
			close(fds[i]);
		}
		if (mono_now() >= deadline)
			return -1;
		if (n == 0) { /* nothing to wait on (no pidfds): pause before the next pass */
			struct timespec ts = {0, pause_us * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

int rlm_local_kill_reap(pid_t pid, double timeout_s, int *status)
{
	int st = -1, rc = 0;

	if (pid > 0) {
		double deadline = mono_now() + timeout_s;
		/* pid is our unreaped child, so no other process can own this group or session
		 * id. The group first: it usually holds the whole sandbox, and one kill() reaches
		 * all of it at once, forks in flight included. */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		/* Once SIGKILL is pending, pid can start no other process (the kernel refuses a
		 * fork that a fatal signal overtakes), so the sweep for the rest of the session
		 * runs while pid dies, rather than after. */
		rc = sweep_session(pid, deadline);
		rlm_local_wait_exit(pid, deadline - mono_now(), &st);
		if (!rlm_local_exited(pid, &st))
			return -1; /* unkillable (stuck in the kernel): it cannot be reaped either
			            */
		while (waitpid(pid, &st, 0) < 0) {
			if (errno != EINTR) {
				st = -1;
				break;
			}
		}
	}
	if (status)
		*status = st;
	return rc;
}

bool rlm_local_wait_exit(pid_t pid, double timeout_s, int *status)
{
	double deadline = mono_now() + timeout_s;
	int pidfd;

	if (rlm_local_exited(pid, status))
		return true;
	pidfd = pidfd_for(pid);
	if (pidfd >= 0) {
		pidfd_wait(pidfd, deadline);
		close(pidfd);
		return rlm_local_exited(pid, status);
	}
	for (long pause_us = 50; !rlm_local_exited(pid, status);
	     pause_us = pause_us < 5000 ? pause_us * 2 : 5000) {
		struct timespec ts = {0, pause_us * 1000};
		if (mono_now() >= deadline)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/* Reads up to n reports until EOF (the child exec'ed or exited), the deadline, or a cancel.
 * Returns the number of whole reports read, -1 on timeout, -2 when cancelled. */
static int read_reports(const rlm_host_api *host, int fd, double deadline,
                        const volatile int *cancel, struct local_report *reps, int n)
{
	char *buf = (char *)reps;
	size_t want = sizeof(*reps) * (size_t)n, got = 0;
	char sink[256];

	for (;;) {
		double left = deadline - host->now();
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t r;

		if (cancel && *cancel)
			return -2;
		if (left <= 0)
			return -1;
		/* Bounded slices, so a cancel is seen within 100 ms. */
		if (poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return -1;
		if (!pfd.revents)
			continue;
		if (got < want)
			r = read(fd, buf + got, want - got);
		else
			r = read(fd, sink, sizeof(sink));
		if (r == 0)
			return (int)(got / sizeof(*reps));
		if (r > 0 && got < want)
			got += (size_t)r;
		else if (r < 0 && errno != EINTR && errno != EAGAIN)
			return (int)(got / sizeof(*reps));
	}
}

static const char *rlimit_name(int resource)
{
	switch (resource) {
	case RLIMIT_AS: return "RLIMIT_AS";
	case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
	case RLIMIT_CPU: return "RLIMIT_CPU";
	case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
	case RLIMIT_CORE: return "RLIMIT_CORE";
	case RLIMIT_NPROC: return "RLIMIT_NPROC";
	default: return "an rlimit";
	}
}

int rlm_local_emfile(const rlm_host_api *host, const char *what, rlm_error *err)
{
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return host->error_set(err, RLM_EIO, "%s: %s", what, strerror(EMFILE));
	return host->error_set(err, RLM_EIO,
	                       "%s: the host process has reached its RLIMIT_NOFILE soft limit "
	                       "(%llu open files); each local interpreter holds 2: raise the "
	                       "limit (ulimit -n, or setrlimit() in the host, up to the hard "
	                       "limit %llu)",
	                       what, (unsigned long long)nofile.rlim_cur,
	                       (unsigned long long)nofile.rlim_max);
}

static int spawn_failed(const rlm_host_api *host, const struct local_spawn *p,
                        const struct local_report *r, rlm_error *err)
{
	char names[64];

	if (r->stage == LOCAL_STAGE_EXEC) {
		char hint[96] = "";
		if (p->drop_uid && (r->err == EACCES || r->err == EPERM))
			snprintf(hint, sizeof(hint),
			         " (the sandbox runs as uid %u: can it reach it?)",
			         (unsigned)p->uid);
		return host->error_set(err, r->err == ENOENT ? RLM_ENOTFOUND : RLM_EBACKEND,
		                       "cannot run %s: %s%s", p->path, strerror(r->err), hint);
	}
	ns_names(p->ns_flags, names, sizeof(names));
	if (p->isolation == LOCAL_ISO_NAMESPACES &&
	    (r->stage == LOCAL_STAGE_UNSHARE || r->stage == LOCAL_STAGE_SETGROUPS_DENY ||
	     r->stage == LOCAL_STAGE_UID_MAP || r->stage == LOCAL_STAGE_GID_MAP))
		return host->error_set(err, RLM_ENOTSUP,
		                       "isolation \"namespaces\" cannot be set up here: %s (%s): "
		                       "%s (set isolation to \"auto\" to fall back to process "
		                       "limits only)",
		                       rlm_local_stage_name(r->stage), names, strerror(r->err));
	if (r->stage == LOCAL_STAGE_SETRESUID || r->stage == LOCAL_STAGE_SETRESGID ||
	    r->stage == LOCAL_STAGE_SETGROUPS)
		return host->error_set(err, RLM_EBACKEND,
		                       "sandbox setup failed: %s to uid %u gid %u: %s (is that id "
		                       "mapped here? set backends.local.sandbox_uid)",
		                       rlm_local_stage_name(r->stage), (unsigned)p->uid,
		                       (unsigned)p->gid, strerror(r->err));
	/* The child arranges its fds before its own limits apply: EMFILE there is the host's. */
	if (r->err == EMFILE && (r->stage == LOCAL_STAGE_FDS || r->stage == LOCAL_STAGE_DEVNULL))
		return rlm_local_emfile(host, "sandbox setup failed: arranging file descriptors",
		                        err);
	if (r->stage == LOCAL_STAGE_SETRLIMIT)
		return host->error_set(
		        err, RLM_EBACKEND, "sandbox setup failed: setrlimit(%s, %llu): %s",
		        rlimit_name(r->resource), (unsigned long long)r->value, strerror(r->err));
	return host->error_set(err, RLM_EBACKEND, "sandbox setup failed: %s%s%s: %s",
	                       rlm_local_stage_name(r->stage),
	                       r->stage == LOCAL_STAGE_CHDIR ? " " : "",
	                       r->stage == LOCAL_STAGE_CHDIR ? p->cwd : "", strerror(r->err));
}

static pid_t fork_child(const struct local_spawn *p, int status_pipe[2])
{
	sigset_t all, old;
	pid_t pid;
	int saved;

	/* No host signal handler may run in the child before it resets the dispositions. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(status_pipe[0]);
		child_run(p, status_pipe[1]);
	}
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

int rlm_local_spawn(const rlm_host_api *host, const struct local_spawn *p, double deadline,
                    const volatile int *cancel, pid_t *pid_out, struct local_report *setup,
                    rlm_error *err)
{
	struct local_report reps[2];
	int status_pipe[2], n, status;
	pid_t pid;

	if (pipe2(status_pipe, O_CLOEXEC) < 0)
		return host->error_set(err, RLM_EIO, "cannot create a pipe: %s", strerror(errno));
	pid = fork_child(p, status_pipe);
	if (pid < 0) {
		int e = errno;
		close(status_pipe[0]);
		close(status_pipe[1]);
		return host->error_set(err, RLM_EBACKEND, "fork: %s", strerror(e));
	}
	close(status_pipe[1]);
	memset(reps, 0, sizeof(reps));
	n = read_reports(host, status_pipe[0], deadline, cancel, reps, 2);
	close(status_pipe[0]);
	if (n == 1 && reps[0].kind == LOCAL_REPORT_SETUP) {
		*pid_out = pid;
		*setup = reps[0];
		return 0;
	}
	rlm_local_kill_reap(pid, LOCAL_END_TIMEOUT_S, &status);
	if (n == -2)
		return host->error_set(err, RLM_ECANCELLED,
		                       "cancelled while the sandbox process was being set up");
	if (n < 0)
		return host->error_set(err, RLM_ETIMEOUT,
		                       "the sandbox process did not finish its setup in time");
	for (int i = 0; i < n; i++)
		if (reps[i].kind == LOCAL_REPORT_FAIL)
			return spawn_failed(host, p, &reps[i], err);
	char how[96];
	rlm_local_describe_status(status, how, sizeof(how));
	return host->error_set(err, RLM_EBACKEND, "the sandbox process %s during its setup", how);
}

/* ---- what the sandbox user can reach --------------------------------------------------- */

static bool sandbox_may(const struct local_config *cfg, const struct stat *st, mode_t usr,
                        mode_t grp, mode_t oth)
{
	if (st->st_uid == cfg->uid)
		return st->st_mode & usr;
	if (st->st_gid == cfg->gid)
		return st->st_mode & grp;
	return st->st_mode & oth;
}

/* Every directory on path (the path itself included when it is one) must be searchable. */
static bool dirs_searchable(const struct local_config *cfg, const char *path, char *blocker,
                            size_t blocker_size)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len >= sizeof(buf))
		return true; /* not ours to judge; the sandbox will find out */
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		bool blocked = stat(buf, &st) == 0 && S_ISDIR(st.st_mode) &&
		               !sandbox_may(cfg, &st, S_IXUSR, S_IXGRP, S_IXOTH) &&
		               getxattr(buf, "system.posix_acl_access", NULL, 0) <= 0;
		if (blocked) {
			if (blocker)
				snprintf(blocker, blocker_size, "%s", buf);
			return false;
		}
		buf[i] = saved;
	}
	return true;
}

bool rlm_local_sandbox_can_reach(const struct local_config *cfg, const char *path, bool want_exec,
                                 char *blocker, size_t blocker_size)
{
	char real[PATH_MAX];
	struct stat st;

	if (!cfg->drop_uid)
		return true;
	if (!dirs_searchable(cfg, "/", blocker, blocker_size) ||
	    !dirs_searchable(cfg, path, blocker, blocker_size))
		return false;
	if (realpath(path, real) && !dirs_searchable(cfg, real, blocker, blocker_size))
		return false;
	if (want_exec && stat(path, &st) == 0 &&
	    !sandbox_may(cfg, &st, S_IXUSR, S_IXGRP, S_IXOTH)) {
		if (blocker)
			snprintf(blocker, blocker_size, "%s", path);
		return false;
	}
	return true;
}
