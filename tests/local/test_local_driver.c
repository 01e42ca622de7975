/* test_local_driver.c - the compiled driver a sandbox runs is never one another sandbox could
 * change. The bytes are kept in memory once per process, and a sandbox under another uid than
 * the host's gets a hard link to the host's cache file instead of a copy (local.c,
 * link_shared): whatever a sandbox does to the file it was started from, the next sandbox of
 * the process starts from the pristine driver. */
#include "local_test.h"

/* Prints the sha256 of the driver file in the work dir, then tries every way to change that
 * file in place and prints, for each, "refused" or "changed". */
static const char tamper_cell[] =
        "import hashlib, os\n"
        "name = '.rlm_driver.pyc' if os.path.exists('.rlm_driver.pyc') else '.rlm_driver.py'\n"
        "with open(name, 'rb') as f:\n"
        "    print(hashlib.sha256(f.read()).hexdigest())\n"
        "print(name, os.stat(name).st_nlink)\n"
        "def append():\n"
        "    with open(name, 'ab') as f:\n"
        "        f.write(b'raise SystemExit(3)\\n')\n"
        "def overwrite():\n"
        "    with open(name, 'r+b') as f:\n"
        "        f.write(b'\\0' * 16)\n"
        "def make_writable():\n"
        "    os.chmod(name, 0o666)\n"
        "    overwrite()\n"
        "def truncate():\n"
        "    os.truncate(name, 0)\n"
        "for attempt in (append, overwrite, make_writable, truncate):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('changed')\n"
        "    except OSError:\n"
        "        print('refused')\n";

static const char hash_cell[] =
        "import hashlib, os\n"
        "name = '.rlm_driver.pyc' if os.path.exists('.rlm_driver.pyc') else '.rlm_driver.py'\n"
        "with open(name, 'rb') as f:\n"
        "    print(hashlib.sha256(f.read()).hexdigest())\n";

static void a_sandbox_cannot_change_the_driver_the_next_one_runs(void **state)
{
	rlm_interp *in;
	char *out, *next, first_hash[65];

	(void)state;
	for (int round = 0; round < 3; round++) {
		in = lt_open(NULL);
		out = lt_run(in, tamper_cell);
		printf("round %d:\n%s", round, out);
		assert_true(strlen(out) > 64 && out[64] == '\n');
		if (round == 0)
			memcpy(first_hash, out, 64);
		/* Every sandbox starts from the same bytes, whatever the one before did. */
		assert_memory_equal(out, first_hash, 64);
		/* The compiled driver is what runs (the data dir exists, see main). */
		assert_non_null(strstr(out, ".rlm_driver.pyc "));
		/* As root the sandbox runs under a uid of its own: it cannot change the file it
		 * was started from at all (link or copy, the host owns it, mode 0644). */
		if (geteuid() == 0)
			assert_null(strstr(out, "changed"));
		free(out);
		rlm_interp_close(in);

		/* A fresh interpreter still starts and runs, from the pristine driver. */
		in = lt_open(NULL);
		next = lt_run(in, hash_cell);
		assert_memory_equal(next, first_hash, 64);
		free(next);
		rlm_interp_close(in);
	}
}

/* A restart (after the driver died) keeps the work dir and puts the driver there again: a
 * driver file the sandbox replaced is replaced in turn. */
static void a_restart_puts_the_pristine_driver_back(void **state)
{
	rlm_interp *in = lt_open(NULL);
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	char *before, *after;

	(void)state;
	before = lt_run(in, hash_cell);
	free(lt_run(in, "import os\n"
	                "name = '.rlm_driver.pyc' if os.path.exists('.rlm_driver.pyc') else "
	                "'.rlm_driver.py'\n"
	                "os.replace(name, 'old')\n"
	                "with open(name, 'wb') as f:\n"
	                "    f.write(b'garbage')\n"));
	/* The driver dies; the next cell restarts it (state lost, said so in the result). */
	rlm_interp_execute(in, "import os; os._exit(9)", NULL, &r, &err);
	rlm_result_free(r);
	r = NULL;
	rlm_interp_execute(in, "pass", NULL, &r, &err);
	rlm_result_free(r);
	after = lt_run(in, hash_cell);
	assert_string_equal(before, after);
	free(before);
	free(after);
	rlm_interp_close(in);
}

/* mkdir -p $XDG_DATA_HOME: the compiled driver's cache lives under it. */
static void make_data_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	char buf[PATH_MAX];

	if (!xdg || !*xdg || strlen(xdg) >= sizeof(buf))
		return;
	strcpy(buf, xdg);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		mkdir(buf, 0755);
		*p = c;
		if (!c)
			break;
	}
}

int main(void)
{
	make_data_dir();
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(a_sandbox_cannot_change_the_driver_the_next_one_runs),
	        cmocka_unit_test(a_restart_puts_the_pristine_driver_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
