/* test_local_remove.c - removing a work directory never follows a link and never leaves the
 * tree (backends/local/local_remove.c), even with a process racing the walk, and copes with
 * what a sandbox can leave behind: links, locked directories, nesting deeper than PATH_MAX. */
#include "local_test.h"

#include <fcntl.h>
#include <sys/wait.h>

#include "local_internal.h"

/* Enough files that a walk by path, raced, deletes some of the victim's every time. */
#define VICTIM_FILES 2000
#define FEW_FILES    20

struct tree {
	char top[64];    /* the scratch directory of the test */
	char work[96];   /* the "work directory" to remove */
	char victim[96]; /* a directory outside it, full of files named like the work dir's */
	int files;       /* in the victim, and in work/d */
};

static void touch_files(const char *dir, int n)
{
	char path[PATH_MAX];

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
}

static void make_tree(struct tree *t, int files)
{
	char d[PATH_MAX];

	strcpy(t->top, "/tmp/rlm-remove-test-XXXXXX");
	assert_non_null(mkdtemp(t->top));
	snprintf(t->work, sizeof(t->work), "%s/work", t->top);
	snprintf(t->victim, sizeof(t->victim), "%s/victim", t->top);
	assert_int_equal(mkdir(t->work, 0700), 0);
	assert_int_equal(mkdir(t->victim, 0700), 0);
	touch_files(t->victim, files);
	t->files = files;
	snprintf(d, sizeof(d), "%s/d", t->work);
	assert_int_equal(mkdir(d, 0700), 0);
	touch_files(d, files);
}

static int remove_work(const struct tree *t)
{
	struct stat st;

	if (lstat(t->work, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	return rlm_local_remove_tree(t->work, st.st_dev, st.st_ino);
}

static void drop_tree(const struct tree *t)
{
	char path[PATH_MAX];

	remove_work(t);
	for (int i = 0; i < t->files; i++) {
		snprintf(path, sizeof(path), "%s/f%d", t->victim, i);
		unlink(path);
	}
	rmdir(t->victim);
	rmdir(t->top);
}

/* Swaps work/d for a link to the victim and back until killed; writes one byte once racing. */
static _Noreturn void racer(const struct tree *t, int ready)
{
	char d[PATH_MAX], real[PATH_MAX];
	struct timespec pause = {0, 1000000};

	snprintf(d, sizeof(d), "%s/d", t->work);
	snprintf(real, sizeof(real), "%s/d.real", t->work);
	for (int cycles = 1;; cycles++) {
		if (rename(d, real) == 0 && symlink(t->victim, d) == 0) {
			nanosleep(&pause, NULL);
			unlink(d);
			rename(real, d);
		}
		nanosleep(&pause, NULL);
		if (cycles == 3 && (write(ready, "r", 1) != 1 || close(ready) < 0))
			_exit(1);
	}
}

static void removal_never_follows_a_link_swapped_in_during_the_walk(void **state)
{
	struct tree t;
	int ready[2], status, left;
	char c;
	pid_t pid;

	(void)state;
	make_tree(&t, VICTIM_FILES);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		racer(&t, ready[1]);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	remove_work(&t);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	left = lt_count_files(t.victim);
	/* What the racer left (it may have put d back after the walk) goes now, quietly. */
	assert_int_equal(remove_work(&t), 0);
	assert_false(lt_exists(t.work));
	drop_tree(&t);
	assert_int_equal(left, VICTIM_FILES);
}

static void removal_removes_links_and_never_their_targets(void **state)
{
	struct tree t;
	char link[PATH_MAX], target[PATH_MAX];

	(void)state;
	make_tree(&t, FEW_FILES);
	snprintf(link, sizeof(link), "%s/to-dir", t.work);
	assert_int_equal(symlink(t.victim, link), 0);
	snprintf(link, sizeof(link), "%s/d/to-file", t.work);
	snprintf(target, sizeof(target), "%s/f7", t.victim);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(remove_work(&t), 0);
	assert_false(lt_exists(t.work));
	assert_int_equal(lt_count_files(t.victim), FEW_FILES);
	drop_tree(&t);
}

/* Deeper than PATH_MAX, with locked directories on the way: made with mkdirat, as a sandbox
 * can. */
static void removal_empties_trees_deeper_than_path_max_with_locked_directories(void **state)
{
	struct tree t;
	int fd, next, locked[8], nlocked = 0;

	(void)state;
	make_tree(&t, FEW_FILES);
	fd = open(t.work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(mkdirat(fd, "deep", 0700), 0);
		next = openat(fd, "deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		if (i % 500 == 0) {
			int f = openat(next, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			assert_true(f >= 0);
			close(f);
			locked[nlocked++] = dup(next);
		}
		close(fd);
		fd = next;
	}
	close(fd);
	/* Locked once the chain is made: mode 0, so only the owner taking them back (or root)
	 * can look inside and empty them. */
	for (int i = 0; i < nlocked; i++) {
		assert_int_equal(fchmod(locked[i], 0), 0);
		close(locked[i]);
	}
	assert_int_equal(remove_work(&t), 0);
	assert_false(lt_exists(t.work));
	drop_tree(&t);
}

/* The sandbox owns its work dir, so in a sticky /tmp it can rename it and put a link or
 * another directory in its place: only the directory that was made is removed. */
static void removal_refuses_what_was_put_in_the_work_directorys_place(void **state)
{
	struct tree t;
	struct stat made;
	char moved[PATH_MAX];

	(void)state;
	make_tree(&t, FEW_FILES);
	assert_int_equal(lstat(t.work, &made), 0);
	snprintf(moved, sizeof(moved), "%s/moved", t.top);
	assert_int_equal(rename(t.work, moved), 0);
	assert_int_equal(symlink(t.victim, t.work), 0);
	assert_int_equal(rlm_local_remove_tree(t.work, made.st_dev, made.st_ino), -1);
	assert_int_equal(lt_count_files(t.victim), FEW_FILES);
	assert_int_equal(unlink(t.work), 0);
	assert_int_equal(rlm_local_remove_tree(moved, made.st_dev, made.st_ino), 0);
	drop_tree(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(removal_never_follows_a_link_swapped_in_during_the_walk),
	        cmocka_unit_test(removal_removes_links_and_never_their_targets),
	        cmocka_unit_test(
	                removal_empties_trees_deeper_than_path_max_with_locked_directories),
	        cmocka_unit_test(removal_refuses_what_was_put_in_the_work_directorys_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
