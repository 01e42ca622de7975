/* test_local_driver.c - the compiled driver a sandbox runs is never one another sandbox could
 * change. The bytes are kept in memory once per process, and a sandbox under another uid than
 * the host's gets a hard link to the host's cache file instead of a copy (local.c,
 * link_shared): whatever a sandbox does to the file it was started from, the next sandbox of
 * the process starts from the pristine driver. */
#include "local_test.h"

#include <fcntl.h>
#include <stdbool.h>

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

/* Copies /usr/bin/python3 to path with the given mtime (a different interpreter binary, as
 * an upgrade in place leaves it). */
static void copy_python(const char *path, time_t mtime)
{
	FILE *in = fopen("/usr/bin/python3", "rb"), *out = fopen(path, "wb");
	char buf[65536];
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(path, 0755), 0);
	struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

/* Compiled drivers in the host's cache (names driver-<key>.pyc). With keep (a list of
 * names, NULL-terminated), the others are removed instead of counted: those this test made,
 * for interpreters it removes. */
static int count_cached(char **names, int max, char *const *keep)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/rlm/cache", getenv("XDG_DATA_HOME"));
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "driver-", 7) || !strstr(e->d_name, ".pyc") ||
		    strstr(e->d_name, ".tmp"))
			continue;
		if (keep) {
			bool kept = false;
			for (char *const *k = keep; *k && !kept; k++)
				kept = !strcmp(*k, e->d_name);
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (!kept)
				unlink(path);
			continue;
		}
		if (names && n < max)
			names[n] = strdup(e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* The compiled driver is kept in memory per interpreter binary: an interpreter replaced at
 * the same path (an upgrade: another inode, size or mtime) gets a driver compiled for it,
 * never the bytes kept for the old one (whose magic number another Python version refuses). */
static void an_interpreter_replaced_in_place_gets_its_own_compiled_driver(void **state)
{
	char top[] = "/tmp/rlm-pyc-test-XXXXXX", a[128], b[128], link[128], tmp_link[128];
	char setting[160];
	const char *settings[] = {setting, NULL};
	rlm_interp *in;
	int before;

	(void)state;
	if (!getenv("XDG_DATA_HOME") || access("/usr/bin/python3", X_OK) != 0)
		skip();
	assert_non_null(mkdtemp(top));
	assert_int_equal(chmod(top, 0755), 0); /* the sandbox uid runs what is in it */
	snprintf(a, sizeof(a), "%s/python-a", top);
	snprintf(b, sizeof(b), "%s/python-b", top);
	snprintf(link, sizeof(link), "%s/python3", top);
	snprintf(tmp_link, sizeof(tmp_link), "%s/python3.new", top);
	copy_python(a, 1000000000);
	copy_python(b, 1100000000);
	assert_int_equal(symlink(a, link), 0);
	snprintf(setting, sizeof(setting), "backends.local.python=\"%s\"", link);

	char *had[256] = {0};
	int had_n = count_cached(had, 255, NULL);
	assert_true(had_n < 255);
	in = lt_open(settings);
	free(lt_run(in, "pass"));
	rlm_interp_close(in);
	before = count_cached(NULL, 0, NULL);
	assert_true(before >= 1);

	/* The upgrade: the same path now names another binary. */
	assert_int_equal(symlink(b, tmp_link), 0);
	assert_int_equal(rename(tmp_link, link), 0);
	in = lt_open(settings);
	char *out = lt_run(in, "import os\nprint(os.path.exists('.rlm_driver.pyc'))");
	assert_string_equal(out, "True\n");
	free(out);
	rlm_interp_close(in);
	/* Compiled for the new binary (its own cache key), not served from memory. */
	assert_int_equal(count_cached(NULL, 0, NULL), before + 1);

	count_cached(NULL, 0, had); /* the two made here */
	for (int i = 0; i < had_n; i++)
		free(had[i]);
	unlink(link);
	unlink(a);
	unlink(b);
	rmdir(top);
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
	        cmocka_unit_test(an_interpreter_replaced_in_place_gets_its_own_compiled_driver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
