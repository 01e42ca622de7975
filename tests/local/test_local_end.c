/* test_local_end.c - nothing of a local sandbox outlives rlm_interp_close, at every isolation
 * level, and the removal of its work directory never reaches outside it.
 *
 * The attack these pin (issue 9, item 1): a cell forks a child that calls setsid() and forks
 * again, so it leaves the driver's process group; at close the host (root) removed the work
 * directory by path while that child swapped a subdirectory for a symbolic link to a host
 * directory, and root deleted the host's files through the link. */
#include "local_test.h"

#include <sys/wait.h>

/* Forks three processes that try to escape the sandbox (setsid, then a second fork, so they
 * are orphans in a session of their own when setsid is allowed): one sleeps, one keeps
 * writing in the work dir (remaking it by absolute path if it disappears), one ignores
 * SIGTERM and SIGHUP. Prints their pids and the work dir. */
static const char escapees_cell[] =
        "import os, signal, time\n"
        "wd = os.getcwd()\n"
        "def spawn(kind):\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.close(r)\n"
        "        try:\n"
        "            os.setsid()\n"
        "        except OSError:\n"
        "            pass\n"
        "        if os.fork() != 0:\n"
        "            os._exit(0)\n"
        "        if kind == 'stubborn':\n"
        "            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "            signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        os.write(w, str(os.getpid()).encode())\n"
        "        os.close(w)\n"
        "        n = 0\n"
        "        while True:\n"
        "            if kind == 'writer':\n"
        "                try:\n"
        "                    os.makedirs(wd + '/w', exist_ok=True)\n"
        "                    with open(wd + '/w/f%d' % (n % 64), 'w') as f:\n"
        "                        f.write('x' * 100)\n"
        "                except OSError:\n"
        "                    pass\n"
        "                n += 1\n"
        "            else:\n"
        "                time.sleep(0.01)\n"
        "    os.close(w)\n"
        "    os.waitpid(pid, 0)\n"
        "    got = os.read(r, 32)\n"
        "    os.close(r)\n"
        "    return int(got)\n"
        "print(spawn('sleeper'), spawn('writer'), spawn('stubborn'))\n";

static void escapees_are_dead_after_close(const char *const *settings, const char *level)
{
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = lt_try_open(settings, &in, &err);

	if (rc == RLM_ENOTSUP) { /* isolation "namespaces" where the host allows none */
		printf("skipped: %s\n", err.message);
		skip();
	}
	if (rc)
		fail_msg("opening a local interpreter: %s: %s", rlm_status_name(rc), err.message);
	char *isolation = lt_status(in, "isolation"), *workdir = lt_status(in, "workdir");
	char *out = lt_run(in, escapees_cell);
	int pids[3], fds[3], alive_before = 0, alive_after = 0;

	printf("isolation %s, escapees %s", isolation ? isolation : "?", out);
	if (level && (!isolation || strncmp(isolation, level, strlen(level))))
		fail_msg("expected isolation %s, got %s", level, isolation ? isolation : "null");
	assert_int_equal(sscanf(out, "%d %d %d", &pids[0], &pids[1], &pids[2]), 3);
	for (int i = 0; i < 3; i++) {
		fds[i] = lt_pidfd(pids[i]);
		assert_true(fds[i] >= 0);
		alive_before += !lt_pidfd_exited(fds[i], 0);
	}
	rlm_interp_close(in);
	/* Dead by the time close returns: nothing is waited for here. */
	for (int i = 0; i < 3; i++) {
		if (!lt_pidfd_exited(fds[i], 0)) {
			alive_after++;
			fprintf(stderr, "escapee %d is still alive after close\n", pids[i]);
			lt_pidfd_kill(fds[i]);
		}
		close(fds[i]);
	}
	assert_int_equal(alive_before, 3);
	assert_int_equal(alive_after, 0);
	/* The writer was dead before the removal started, or it would have remade the dir. */
	assert_non_null(workdir);
	if (lt_exists(workdir))
		fail_msg("the work directory %s is still there after close", workdir);
	free(isolation);
	free(workdir);
	free(out);
}

static void escapees_die_at_close_with_namespaces(void **state)
{
	static const char *const settings[] = {"backends.local.isolation=\"namespaces\"", NULL};
	(void)state;
	escapees_are_dead_after_close(settings, "namespaces");
}

static void escapees_die_at_close_at_the_process_level(void **state)
{
	static const char *const settings[] = {"backends.local.isolation=\"none\"", NULL};
	(void)state;
	escapees_are_dead_after_close(settings, "process");
}

/* A configured sandbox_uid is shared by every sandbox, so killing "everything of that uid"
 * would kill the siblings: the sandbox must be ended by what is its own. */
static void escapees_die_at_close_with_a_shared_sandbox_uid(void **state)
{
	static const char *const settings[] = {"backends.local.isolation=\"none\"",
	                                       "backends.local.sandbox_uid=200777", NULL};
	(void)state;
	if (geteuid() != 0)
		skip();
	rlm_interp *sibling = lt_open(settings);
	escapees_are_dead_after_close(settings, "process");
	/* The sibling, same uid, still works. */
	char *out = lt_run(sibling, "print(6 * 7)");
	assert_string_equal(out, "42\n");
	free(out);
	rlm_interp_close(sibling);
}

/* ---- the removal race ------------------------------------------------------------------ */

#define VICTIM_FILES 2000

/* Makes the work dir's subdirectory d with the victim's file names, then forks an escapee that
 * swaps d for a link to the victim and back, over and over; returns once it is racing. */
static const char race_cell[] = "import os, time\n"
                                "wd = os.getcwd()\n"
                                "d = os.path.join(wd, 'd')\n"
                                "os.makedirs(d)\n"
                                "for i in range(n):\n"
                                "    open(os.path.join(d, 'f%d' % i), 'w').close()\n"
                                "r, w = os.pipe()\n"
                                "pid = os.fork()\n"
                                "if pid == 0:\n"
                                "    os.close(r)\n"
                                "    try:\n"
                                "        os.setsid()\n"
                                "    except OSError:\n"
                                "        pass\n"
                                "    if os.fork() != 0:\n"
                                "        os._exit(0)\n"
                                "    cycles = 0\n"
                                "    while True:\n"
                                "        try:\n"
                                "            os.rename(d, d + '.real')\n"
                                "            os.symlink(victim, d)\n"
                                "            time.sleep(0.004)\n"
                                "            os.unlink(d)\n"
                                "            os.rename(d + '.real', d)\n"
                                "            time.sleep(0.001)\n"
                                "        except OSError:\n"
                                "            pass\n"
                                "        cycles += 1\n"
                                "        if cycles == 3:\n"
                                "            os.write(w, str(os.getpid()).encode())\n"
                                "            os.close(w)\n"
                                "os.close(w)\n"
                                "os.waitpid(pid, 0)\n"
                                "print(int(os.read(r, 32)))\n";

static void make_victim(char *dir)
{
	char path[PATH_MAX];

	strcpy(dir, "/tmp/rlm-victim-XXXXXX");
	assert_non_null(mkdtemp(dir)); /* 0700, owned by the test's uid (root in CI) */
	for (int i = 0; i < VICTIM_FILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
}

static void remove_victim(const char *dir)
{
	char path[PATH_MAX];

	for (int i = 0; i < VICTIM_FILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

static void removal_race_leaves_the_victim_untouched(const char *const *settings)
{
	char victim[64], vars[160];
	rlm_interp *in = lt_open(settings);
	char *workdir = lt_status(in, "workdir");
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int pidfd, left, racer;

	make_victim(victim);
	snprintf(vars, sizeof(vars), "{\"victim\": \"%s\", \"n\": %d}", victim, VICTIM_FILES);
	assert_int_equal(rlm_interp_execute(in, race_cell, vars, &r, &err), 0);
	if (r->error)
		fail_msg("the cell raised: %s", r->error->line);
	assert_int_equal(sscanf(r->stdout_text, "%d", &racer), 1);
	rlm_result_free(r);
	pidfd = lt_pidfd(racer);
	assert_true(pidfd >= 0);
	rlm_interp_close(in);
	left = lt_count_files(victim);
	int outlived = !lt_pidfd_exited(pidfd, 0);
	if (outlived) {
		fprintf(stderr, "the racer %d outlived close\n", racer);
		lt_pidfd_kill(pidfd);
	}
	close(pidfd);
	remove_victim(victim);
	assert_int_equal(left, VICTIM_FILES);
	assert_false(outlived);
	assert_non_null(workdir);
	if (lt_exists(workdir))
		fail_msg("the work directory %s is still there after close", workdir);
	free(workdir);
}

static void removal_race_leaves_a_host_directory_untouched(void **state)
{
	(void)state;
	removal_race_leaves_the_victim_untouched(NULL);
}

static void removal_race_leaves_a_host_directory_untouched_at_the_process_level(void **state)
{
	static const char *const settings[] = {"backends.local.isolation=\"none\"", NULL};
	(void)state;
	removal_race_leaves_the_victim_untouched(settings);
}

/* ---- setsid() is refused, through every ABI; setpgid() is not -------------------------- */

/* In a forked child (an ABI the kernel lacks may kill it): the session after os.setsid(),
 * after setsid through the i386 ABI (int 0x80, eax 66) and the x32 ABI (syscall
 * 0x40000000 | 112), each run from an executable page; and whether setpgid(0, 0) worked. */
static const char setsid_cell[] =
        "import ctypes, mmap, os, platform\n"
        "def in_child(fn):\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.close(r)\n"
        "        try:\n"
        "            res = fn()\n"
        "        except BaseException as e:\n"
        "            res = type(e).__name__\n"
        "        os.write(w, ('%s %d' % (res, os.getsid(0) == os.getpid())).encode())\n"
        "        os._exit(0)\n"
        "    os.close(w)\n"
        "    os.waitpid(pid, 0)\n"
        "    out = os.read(r, 100).decode() or 'killed 0'\n"
        "    os.close(r)\n"
        "    return out\n"
        "def native():\n"
        "    os.setsid()\n"
        "    return 'allowed'\n"
        "def raw(code):\n"
        "    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "    m.write(code)\n"
        "    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
        "    return ctypes.CFUNCTYPE(ctypes.c_long)(addr)()\n"
        "I386 = bytes([0x53, 0xb8, 66, 0, 0, 0, 0xcd, 0x80, 0x5b, 0x48, 0x63, 0xc0, 0xc3])\n"
        "X32 = bytes([0xb8, 112, 0, 0, 0x40, 0x0f, 0x05, 0xc3])\n"
        "print('native', in_child(native))\n"
        "if platform.machine() == 'x86_64':\n"
        "    print('i386', in_child(lambda: raw(I386)))\n"
        "    print('x32', in_child(lambda: raw(X32)))\n"
        "def group():\n"
        "    os.setpgid(0, 0)\n"
        "    return 'allowed' if os.getpgid(0) == os.getpid() else 'no'\n"
        "print('setpgid', in_child(group))\n";

static void setsid_is_refused_through_every_abi_and_setpgid_still_works(void **state)
{
	char *out;

	(void)state;
	rlm_interp *in = lt_open(NULL);
	out = lt_run(in, setsid_cell);
	printf("%s", out);
	/* Never a session leader; the native call fails with EPERM. */
	assert_non_null(strstr(out, "native PermissionError 0\n"));
	assert_null(strstr(out, " 1\n"));
	assert_null(strstr(out, "allowed 1"));
	/* -1 is -EPERM; an ABI this kernel was built without may fail otherwise (-ENOSYS) or
	 * kill the child, which is just as good. */
	if (strstr(out, "i386 ") && !strstr(out, "i386 -1 0") && !strstr(out, "i386 -38 0") &&
	    !strstr(out, "i386 killed 0"))
		fail_msg("setsid through int 0x80: %s", strstr(out, "i386 "));
	if (strstr(out, "x32 ") && !strstr(out, "x32 -1 0") && !strstr(out, "x32 -38 0") &&
	    !strstr(out, "x32 killed 0"))
		fail_msg("setsid through the x32 ABI: %s", strstr(out, "x32 "));
	/* timeout(1) and friends put themselves in a group of their own: still allowed. */
	assert_non_null(strstr(out, "setpgid allowed 0\n"));
	free(out);
	rlm_interp_close(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(escapees_die_at_close_with_namespaces),
	        cmocka_unit_test(escapees_die_at_close_at_the_process_level),
	        cmocka_unit_test(escapees_die_at_close_with_a_shared_sandbox_uid),
	        cmocka_unit_test(removal_race_leaves_a_host_directory_untouched),
	        cmocka_unit_test(
	                removal_race_leaves_a_host_directory_untouched_at_the_process_level),
	        cmocka_unit_test(setsid_is_refused_through_every_abi_and_setpgid_still_works),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
