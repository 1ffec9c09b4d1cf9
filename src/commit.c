/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion materialize --into TARGET, rollback and finalize: commit the merged
 * view in place into TARGET, one of the volumes, with no spare disk.
 *
 * TARGET/.vmunion-commit/ holds the commit (the plan hides it as an unknown
 * root entry, and vmstorage ignores it):
 *   journal.json  the phase, the command's volumes, TARGET's root mtime and,
 *                 from the swap on, the top-level names that move
 *   stage/        the merged tree: TARGET's own files hard-linked (same
 *                 inodes), the other volumes' reflinked or copied, the
 *                 plan's files written fresh (stage.c)
 *   previous/     TARGET's original top-level entries, after the swap
 * The phases, each made durable before the next step:
 *   staging       TARGET's tree is untouched. A rerun resumes the stage when
 *                 the plan is the same, else stages again.
 *   swapping      restore-in-progress exists (vmstorage refuses to start);
 *                 the originals are renamed into previous/, then the stage's
 *                 entries into TARGET. A rerun completes the renames from
 *                 the journal alone.
 *   committed     TARGET holds the merged view; restore-in-progress goes.
 *   rolling-back, rolled-back    rollback: everything but the originals
 *                 leaves TARGET, the originals come back, then cleanup.
 *   finalizing, finalized        finalize drops previous/. The journal
 *                 stays, so that a rerun of the commit says it is done rather
 *                 than merge the other volumes into TARGET a second time.
 * Renames never move a file's bytes, so a kill -9 at any point leaves either
 * a state a rerun completes, or one rollback restores: restore-in-progress
 * keeps vmstorage off every mixed tree. */
#include "commit.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stage.h"

#define EXIT_REFUSED 1
#define EXIT_IO 2
#define EXIT_USAGE 64

#define COMMIT_DIR ".vmunion-commit"
#define JOURNAL "journal.json"
#define JOURNAL_FORMAT "vmunion-commit/1"
#define STAGE_DIR "stage"
#define PREVIOUS_DIR "previous"
#define DISCARD_DIR "discard"
#define RESTORE_MARK "restore-in-progress"
#define CRASH_ENV TEST_HOOK_ENV("VMUNION_COMMIT_CRASH_AT")

enum phase { PHASE_NONE, PHASE_STAGING, PHASE_SWAPPING, PHASE_COMMITTED, PHASE_ROLLING_BACK,
	     PHASE_ROLLED_BACK, PHASE_FINALIZING, PHASE_FINALIZED, PHASE_COUNT };
static const char *const phase_names[PHASE_COUNT] = {
	"none", "staging", "swapping", "committed", "rolling-back", "rolled-back",
	"finalizing", "finalized",
};

struct names {
	char **items;
	size_t count, capacity;
};

struct journal {
	enum phase phase;
	char *fingerprint;
	struct names volumes;        /* resolved, in the merge order */
	int target;                  /* index into volumes */
	char *upper;                 /* resolved, or NULL */
	struct timespec root_mtime;  /* TARGET's, before the commit began */
	int root_mode;               /* TARGET's then, -1 in an older journal */
	int merged_root_mode;        /* TARGET's once committed: no wider than any
					volume's root; -1 before the swap */
	struct names previous;       /* TARGET's original top-level names */
	struct names merged;         /* the stage's top-level names */
};

struct target {
	const char *command;
	char *path;         /* resolved */
	int fd;             /* TARGET */
	int lock_fd;        /* TARGET/flock.lock, held exclusively, or -1 */
	int commit_fd;      /* TARGET/.vmunion-commit, or -1 */
	bool has_commit_dir;
	struct journal journal;
	bool quiet, json;
};

/* ---- names ---- */

static void names_add(struct names *names, const char *name)
{
	*ARRAY_PUSH(names->items, names->count, names->capacity) = xstrdup(name);
}

static bool names_has(const struct names *names, const char *name)
{
	for (size_t i = 0; i < names->count; i++)
		if (strcmp(names->items[i], name) == 0)
			return true;
	return false;
}

static void names_free(struct names *names)
{
	for (size_t i = 0; i < names->count; i++)
		free(names->items[i]);
	free(names->items);
	memset(names, 0, sizeof(*names));
}

/* TARGET's original entries that are not in the merged view (an operator's
 * notes, what the plan hides as unknown): only previous/ holds them, so
 * finalize must not drop them. The first one, or NULL. */
static const char *not_merged(const struct journal *j)
{
	for (size_t i = 0; i < j->previous.count; i++)
		if (!names_has(&j->merged, j->previous.items[i]))
			return j->previous.items[i];
	return NULL;
}

static bool exists_at(int dirfd, const char *path)
{
	struct stat st;

	return dirfd >= 0 && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int open_dir_at(int dirfd, const char *path)
{
	return openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- the journal ---- */

static void journal_free(struct journal *j)
{
	free(j->fingerprint);
	free(j->upper);
	names_free(&j->volumes);
	names_free(&j->previous);
	names_free(&j->merged);
	memset(j, 0, sizeof(*j));
}

static cJSON *names_json(const struct names *names)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < names->count; i++)
		cJSON_AddItemToArray(array, cJSON_CreateString(names->items[i]));
	return array;
}

static int names_parse(const cJSON *array, struct names *names)
{
	const cJSON *item;

	if (!cJSON_IsArray(array))
		return -EINVAL;
	cJSON_ArrayForEach(item, array) {
		if (!cJSON_IsString(item))
			return -EINVAL;
		names_add(names, item->valuestring);
	}
	return 0;
}

static int journal_parse(const char *text, struct journal *j)
{
	cJSON *json = cJSON_Parse(text);
	const cJSON *format = cJSON_GetObjectItemCaseSensitive(json, "format");
	const cJSON *phase = cJSON_GetObjectItemCaseSensitive(json, "phase");
	const cJSON *fingerprint = cJSON_GetObjectItemCaseSensitive(json, "fingerprint");
	const cJSON *target = cJSON_GetObjectItemCaseSensitive(json, "target");
	const cJSON *upper = cJSON_GetObjectItemCaseSensitive(json, "upper");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(json, "root_mtime_sec");
	const cJSON *nsec = cJSON_GetObjectItemCaseSensitive(json, "root_mtime_nsec");
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(json, "root_mode");
	const cJSON *merged_mode = cJSON_GetObjectItemCaseSensitive(json, "merged_root_mode");
	int rc = -EINVAL;

	memset(j, 0, sizeof(*j));
	if (!cJSON_IsString(format) || strcmp(format->valuestring, JOURNAL_FORMAT) != 0 ||
	    !cJSON_IsString(phase) || !cJSON_IsString(fingerprint) || !cJSON_IsNumber(target) ||
	    !cJSON_IsNumber(sec) || !cJSON_IsNumber(nsec))
		goto out;
	for (int p = PHASE_STAGING; p < PHASE_COUNT; p++)
		if (strcmp(phase->valuestring, phase_names[p]) == 0)
			j->phase = (enum phase)p;
	if (j->phase == PHASE_NONE)
		goto out;
	j->fingerprint = xstrdup(fingerprint->valuestring);
	j->target = target->valueint;
	j->upper = cJSON_IsString(upper) ? xstrdup(upper->valuestring) : NULL;
	j->root_mtime.tv_sec = (time_t)sec->valuedouble;
	j->root_mtime.tv_nsec = (long)nsec->valuedouble;
	j->root_mode = cJSON_IsNumber(mode) ? mode->valueint & 07777 : -1;
	j->merged_root_mode = cJSON_IsNumber(merged_mode) ? merged_mode->valueint & 07777 : -1;
	if (names_parse(cJSON_GetObjectItemCaseSensitive(json, "volumes"), &j->volumes) < 0 ||
	    names_parse(cJSON_GetObjectItemCaseSensitive(json, "previous"), &j->previous) < 0 ||
	    names_parse(cJSON_GetObjectItemCaseSensitive(json, "merged"), &j->merged) < 0 ||
	    j->target < 0 || (size_t)j->target >= j->volumes.count)
		goto out;
	for (size_t i = 0; i < j->previous.count; i++)
		if (!is_plain_name(j->previous.items[i]))
			goto out;
	for (size_t i = 0; i < j->merged.count; i++)
		if (!is_plain_name(j->merged.items[i]))
			goto out;
	rc = 0;
out:
	cJSON_Delete(json);
	if (rc < 0)
		journal_free(j);
	return rc;
}

static int journal_write(struct target *tg, enum phase phase, struct error *err)
{
	struct journal *j = &tg->journal;
	cJSON *json = cJSON_CreateObject();
	char *text;
	int rc;

	cJSON_AddStringToObject(json, "format", JOURNAL_FORMAT);
	cJSON_AddStringToObject(json, "phase", phase_names[phase]);
	cJSON_AddStringToObject(json, "fingerprint", j->fingerprint);
	cJSON_AddItemToObject(json, "volumes", names_json(&j->volumes));
	cJSON_AddNumberToObject(json, "target", j->target);
	if (j->upper)
		cJSON_AddStringToObject(json, "upper", j->upper);
	else
		cJSON_AddNullToObject(json, "upper");
	cJSON_AddNumberToObject(json, "root_mtime_sec", (double)j->root_mtime.tv_sec);
	cJSON_AddNumberToObject(json, "root_mtime_nsec", (double)j->root_mtime.tv_nsec);
	if (j->root_mode >= 0)
		cJSON_AddNumberToObject(json, "root_mode", j->root_mode);
	if (j->merged_root_mode >= 0)
		cJSON_AddNumberToObject(json, "merged_root_mode", j->merged_root_mode);
	cJSON_AddItemToObject(json, "previous", names_json(&j->previous));
	cJSON_AddItemToObject(json, "merged", names_json(&j->merged));
	text = cJSON_Print(json);
	cJSON_Delete(json);
	rc = write_file_atomic(tg->commit_fd, JOURNAL, text, strlen(text));
	cJSON_free(text);
	if (rc < 0)
		return error_set(err, -rc, "%s/%s/%s: cannot write: %s", tg->path, COMMIT_DIR,
				 JOURNAL, strerror(-rc));
	j->phase = phase;
	return 0;
}

/* ---- TARGET ---- */

static void target_close(struct target *tg)
{
	if (tg->commit_fd >= 0)
		close(tg->commit_fd);
	if (tg->lock_fd >= 0)
		close(tg->lock_fd);
	if (tg->fd >= 0)
		close(tg->fd);
	journal_free(&tg->journal);
	free(tg->path);
}

/* Opens TARGET and reads its journal; writes nothing. */
static int target_open(struct target *tg, const char *path, struct error *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	tg->fd = tg->lock_fd = tg->commit_fd = -1;
	tg->path = resolve_path(path);
	if (!tg->path || (tg->fd = open(tg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return error_set(err, errno ? errno : ENOENT, "%s: %s", path,
				 strerror(errno ? errno : ENOENT));
	tg->commit_fd = open_dir_at(tg->fd, COMMIT_DIR);
	tg->has_commit_dir = tg->commit_fd >= 0;
	if (!tg->has_commit_dir)
		return errno == ENOENT ? 0
				       : error_set(err, errno, "%s/%s: %s", tg->path, COMMIT_DIR,
						   strerror(errno));
	rc = read_file_at(tg->commit_fd, JOURNAL, 1 << 20, &text, &len);
	if (rc == -ENOENT)
		return 0; /* killed before its first journal: TARGET is untouched */
	if (rc == 0 && journal_parse(text, &tg->journal) < 0)
		rc = -EINVAL;
	free(text);
	if (rc < 0)
		return error_set(err, -rc, "%s/%s/%s: %s", tg->path, COMMIT_DIR, JOURNAL,
				 rc == -EINVAL ? "not a journal of this vmunion" : strerror(-rc));
	return 0;
}

/* As vmstorage does: flock.lock exclusively, so that none runs on TARGET
 * while we write it; and TARGET itself, against a second vmunion. */
static int target_lock(struct target *tg, struct error *err)
{
	if (flock(tg->fd, LOCK_EX | LOCK_NB) < 0)
		return error_set(err, errno == EWOULDBLOCK ? EBUSY : errno,
				 "%s: %s", tg->path,
				 errno == EWOULDBLOCK ? "another vmunion is working on it"
						      : strerror(errno));
	/* Made when missing before the swap (vmstorage makes it too): else a
	 * vmstorage starting mid-commit would find nothing locked. From the
	 * swap on, restore-in-progress keeps it off, and a flock.lock made here
	 * would stand in the way of the stage's. */
	bool untouched = tg->journal.phase <= PHASE_STAGING;

	tg->lock_fd = openat(tg->fd, "flock.lock",
			     O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (untouched ? O_CREAT : 0), 0644);
	if (tg->lock_fd < 0 && (untouched || errno != ENOENT))
		return error_set(err, errno, "%s/flock.lock: %s", tg->path, strerror(errno));
	if (tg->lock_fd >= 0 && flock(tg->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return error_set(err, errno == EWOULDBLOCK ? EBUSY : errno,
				 "%s: flock.lock is locked: %s", tg->path,
				 errno == EWOULDBLOCK
					 ? "a vmstorage is running on it, or a vmunionfs daemon "
					   "reads it (stop it first, and after fusermount3 -u wait "
					   "for the daemon to exit; TARGET is never written while "
					   "one runs)"
					 : strerror(errno));
	return 0;
}

/* Once TARGET is locked: the journal read before the lock may be stale, as
 * another vmunion may have worked on TARGET meanwhile. */
static int target_recheck(const struct target *tg, struct error *err)
{
	int fd = open_dir_at(tg->fd, COMMIT_DIR);
	enum phase now = PHASE_NONE;
	struct journal j;
	char *text;
	size_t len;

	if (fd >= 0 && read_file_at(fd, JOURNAL, 1 << 20, &text, &len) == 0) {
		now = PHASE_COUNT;
		if (journal_parse(text, &j) == 0) {
			now = j.phase;
			journal_free(&j);
		}
		free(text);
	}
	if (fd >= 0)
		close(fd);
	if (now != tg->journal.phase || (fd >= 0) != tg->has_commit_dir)
		return error_set(err, EBUSY, "%s: another vmunion changed it while this one waited "
				 "for its lock: rerun the command", tg->path);
	return 0;
}

/* TARGET's root mtime from before the commit, kept on the root itself (an
 * xattr changes no mtime) from before the mkdir of the commit's dir until
 * the journal has it: a run killed in between would else lose it. */
#define ROOT_MTIME_XATTR "user.vmunion.root-mtime"

static void root_mtime_save(const struct target *tg, struct timespec mtime)
{
	char value[64];
	int n = snprintf(value, sizeof(value), "%jd.%09ld", (intmax_t)mtime.tv_sec, mtime.tv_nsec);

	/* Where user xattrs are not supported, that window stays open. */
	if (fsetxattr(tg->fd, ROOT_MTIME_XATTR, value, (size_t)n, 0) < 0 && errno != ENOTSUP)
		fprintf(stderr, "vmunion: %s: cannot keep its mtime in %s: %s\n", tg->path,
			ROOT_MTIME_XATTR, strerror(errno));
}

/* The mtime an earlier, killed run saved, if any. */
static bool root_mtime_saved(const struct target *tg, struct timespec *mtime)
{
	char value[64];
	ssize_t n = fgetxattr(tg->fd, ROOT_MTIME_XATTR, value, sizeof(value) - 1);
	intmax_t sec;
	long nsec;

	if (n <= 0)
		return false;
	value[n] = '\0';
	if (sscanf(value, "%jd.%ld", &sec, &nsec) != 2 || nsec < 0 || nsec >= 1000000000L)
		return false;
	*mtime = (struct timespec){ .tv_sec = (time_t)sec, .tv_nsec = nsec };
	return true;
}

static void root_mtime_forget(const struct target *tg)
{
	if (fremovexattr(tg->fd, ROOT_MTIME_XATTR) < 0 && errno != ENODATA && errno != ENOTSUP)
		fprintf(stderr, "vmunion: %s: cannot remove %s: %s\n", tg->path, ROOT_MTIME_XATTR,
			strerror(errno));
}

static int make_commit_dir(struct target *tg, struct error *err)
{
	if (tg->commit_fd >= 0)
		return 0;
	root_mtime_save(tg, tg->journal.root_mtime);
	if (mkdirat(tg->fd, COMMIT_DIR, 0700) < 0 && errno != EEXIST)
		return error_set(err, errno, "%s/%s: cannot create: %s", tg->path, COMMIT_DIR,
				 strerror(errno));
	tg->commit_fd = open_dir_at(tg->fd, COMMIT_DIR);
	if (tg->commit_fd < 0)
		return error_set(err, errno, "%s/%s: %s", tg->path, COMMIT_DIR, strerror(errno));
	tg->has_commit_dir = true;
	return 0;
}

/* A subdirectory of .vmunion-commit, made if missing: fd or -errno. */
static int open_commit_sub(struct target *tg, const char *name, struct error *err)
{
	int fd;

	if (mkdirat(tg->commit_fd, name, 0755) < 0 && errno != EEXIST)
		return error_set(err, errno, "%s/%s/%s: cannot create: %s", tg->path, COMMIT_DIR,
				 name, strerror(errno));
	fd = open_dir_at(tg->commit_fd, name);
	if (fd < 0)
		return error_set(err, errno, "%s/%s/%s: %s", tg->path, COMMIT_DIR, name,
				 strerror(errno));
	return fd;
}

static int target_error(const struct target *tg, const char *what, struct error *err)
{
	return error_set(err, errno, "%s: %s: %s", tg->path, what, strerror(errno));
}

static int sync_dirs(const struct target *tg, struct error *err)
{
	if (fsync(tg->fd) < 0 || (tg->commit_fd >= 0 && fsync(tg->commit_fd) < 0))
		return target_error(tg, "cannot sync", err);
	return 0;
}

static int mark_restore(struct target *tg, struct error *err)
{
	int fd = openat(tg->fd, RESTORE_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return target_error(tg, "cannot create " RESTORE_MARK, err);
	close(fd);
	return sync_dirs(tg, err);
}

static int unmark_restore(struct target *tg, struct error *err)
{
	if (unlinkat(tg->fd, RESTORE_MARK, 0) < 0 && errno != ENOENT)
		return target_error(tg, "cannot remove " RESTORE_MARK, err);
	return sync_dirs(tg, err);
}

static int remove_commit_sub(struct target *tg, const char *name, struct error *err)
{
	int rc = remove_tree_at(tg->commit_fd, name);

	if (rc < 0)
		return error_set(err, -rc, "%s/%s/%s: cannot remove: %s", tg->path, COMMIT_DIR,
				 name, strerror(-rc));
	return 0;
}

/* The top-level names of TARGET that the commit moves: all but its own. */
static int list_top(const struct target *tg, struct names *names, struct error *err)
{
	int fd = open_dir_at(tg->fd, ".");
	struct dirent *de;
	DIR *dir;

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return target_error(tg, "cannot list", err);
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, COMMIT_DIR) != 0 && strcmp(de->d_name, RESTORE_MARK) != 0 &&
		    strcmp(de->d_name, "lost+found") != 0)
			names_add(names, de->d_name);
	closedir(dir);
	return 0;
}

static void say(const struct target *tg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct target *tg, const char *fmt, ...)
{
	va_list ap;

	if (tg->quiet)
		return;
	fprintf(stderr, "vmunion %s: %s: ", tg->command, tg->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The --json line of rollback and finalize, and of a commit with nothing to
 * stage. */
static void print_state(const struct target *tg, const char *action)
{
	cJSON *json;
	char *text;

	if (!tg->json)
		return;
	json = cJSON_CreateObject();
	cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
	cJSON_AddStringToObject(json, "target", tg->path);
	cJSON_AddStringToObject(json, "phase", phase_names[tg->journal.phase]);
	cJSON_AddStringToObject(json, "action", action);
	text = cJSON_Print(json);
	puts(text);
	cJSON_free(text);
	cJSON_Delete(json);
}

static int exit_status(int rc)
{
	return rc == -EBUSY || rc == -EINVAL || rc == -ENOSPC || rc == -EXDEV ? EXIT_REFUSED
									     : EXIT_IO;
}

/* ---- the swap ---- */

/* committed: what is left of the stage and the mark go. */
static int finish_commit(struct target *tg, struct error *err)
{
	if (unlinkat(tg->commit_fd, STAGE_DIR, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return error_set(err, errno, "%s/%s/%s: cannot remove: %s (is something left "
				 "in it?)", tg->path, COMMIT_DIR, STAGE_DIR, strerror(errno));
	return unmark_restore(tg, err);
}

/* swapping -> committed: from the journal alone, so that a rerun after a
 * kill completes it without scanning anything. */
static int swap(struct target *tg, struct error *err)
{
	const struct journal *j = &tg->journal;
	int prev_fd, stage_fd, rc = 0;
	size_t moved = 0;

	/* Narrowed before the first entry of another volume comes in, which
	 * TARGET's wider root would otherwise show to everyone (rollback gives
	 * the journal's root_mode back). */
	if (j->merged_root_mode >= 0 && fchmod(tg->fd, (mode_t)j->merged_root_mode) < 0)
		return target_error(tg, "cannot narrow its mode", err);
	prev_fd = open_commit_sub(tg, PREVIOUS_DIR, err);
	if (prev_fd < 0)
		return prev_fd;
	stage_fd = open_dir_at(tg->commit_fd, STAGE_DIR);
	for (size_t i = 0; rc == 0 && i < j->previous.count; i++) {
		const char *name = j->previous.items[i];

		/* All originals move before any merged entry comes in: a name in
		 * TARGET and not in previous/ is still the original. */
		if (!exists_at(tg->fd, name) || exists_at(prev_fd, name))
			continue;
		if (renameat(tg->fd, name, prev_fd, name) < 0)
			rc = error_set(err, errno, "%s/%s: cannot move into %s/%s: %s", tg->path,
				       name, COMMIT_DIR, PREVIOUS_DIR, strerror(errno));
		test_crash_point(CRASH_ENV, "swap", ++moved);
	}
	for (size_t i = 0; rc == 0 && i < j->merged.count; i++) {
		const char *name = j->merged.items[i];

		if (!exists_at(stage_fd, name))
			continue; /* moved by an earlier run */
		if (exists_at(tg->fd, name))
			rc = error_set(err, EEXIST, "%s/%s: exists, and %s/%s/%s waits to take its "
				       "place: remove neither; run vmunion rollback", tg->path,
				       name, COMMIT_DIR, STAGE_DIR, name);
		else if (renameat(stage_fd, name, tg->fd, name) < 0)
			rc = error_set(err, errno, "%s/%s/%s/%s: cannot move into place: %s",
				       tg->path, COMMIT_DIR, STAGE_DIR, name, strerror(errno));
		test_crash_point(CRASH_ENV, "swap", ++moved);
	}
	/* Never call a tree committed that lacks part of the merged view. */
	for (size_t i = 0; rc == 0 && i < j->merged.count; i++)
		if (!exists_at(tg->fd, j->merged.items[i]))
			rc = error_set(err, EIO, "%s/%s: missing after the swap (was %s/%s removed?): "
				       "run vmunion rollback", tg->path, j->merged.items[i],
				       COMMIT_DIR, STAGE_DIR);
	if (rc == 0 && (fsync(prev_fd) < 0 || (stage_fd >= 0 && fsync(stage_fd) < 0)))
		rc = target_error(tg, "cannot sync", err);
	close(prev_fd);
	if (stage_fd >= 0)
		close(stage_fd);
	if (rc == 0)
		rc = sync_dirs(tg, err);
	if (rc == 0)
		rc = journal_write(tg, PHASE_COMMITTED, err);
	test_crash_point(CRASH_ENV, "committed", 0);
	if (rc == 0)
		rc = finish_commit(tg, err);
	return rc;
}

/* staging -> swapping: the lists of what moves, under restore-in-progress. */
static int begin_swap(struct target *tg, const struct mtree *tree, struct error *err)
{
	struct journal *j = &tg->journal;
	struct stat st;
	int rc;

	names_free(&j->previous);
	names_free(&j->merged);
	for (size_t i = 0; i < tree->count; i++)
		if (!strchr(tree->entries[i].path, '/'))
			names_add(&j->merged, tree->entries[i].path);
	/* TARGET keeps its owner, but its root comes to hold the other
	 * volumes' entries too: it grants no more than their roots. */
	if (fstat(tg->fd, &st) < 0)
		return target_error(tg, "cannot stat", err);
	j->merged_root_mode = (int)(st.st_mode & 07777 &
				    plan_attr_mode_as(&tree->root_attr, st.st_uid, st.st_gid));
	rc = list_top(tg, &j->previous, err);
	if (rc == 0)
		rc = mark_restore(tg, err);
	if (rc == 0)
		rc = journal_write(tg, PHASE_SWAPPING, err);
	test_crash_point(CRASH_ENV, "swapping", 0);
	return rc;
}

/* ---- staging ---- */

struct commit {
	const struct materialize_options *opt;
	struct target tg;
	struct mtree_session session;
	struct stage stage;
	char *staging_path;
	char fingerprint[17];
	struct timespec root_mtime; /* TARGET's, before we touched it */
	int root_mode;
};

/* The journal of this command: same volumes, same order, same upper. */
static bool same_command(const struct journal *j, const struct mtree_session *s, int target)
{
	if (j->volumes.count != s->volume_count || j->target != target ||
	    (j->upper == NULL) != (s->upper_realpath == NULL) ||
	    (j->upper && strcmp(j->upper, s->upper_realpath) != 0))
		return false;
	for (size_t v = 0; v < s->volume_count; v++)
		if (strcmp(j->volumes.items[v], s->volume_realpaths[v]) != 0)
			return false;
	return true;
}

/* The other volumes are read, TARGET is locked already. */
static int lock_others(struct commit *c, int target, struct error *err)
{
	for (size_t v = 0; v < c->session.volume_count; v++) {
		int rc = (int)v == target ? 0 : volume_lock(&c->session.volumes[v], err);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Sets up the stage and marks what an earlier run staged. */
static int prepare_stage(struct commit *c, int target, struct stage_space *sp, struct error *err)
{
	struct stage *stage = &c->stage;
	struct statvfs vfs;
	struct stat st;
	int rc;

	c->staging_path = xasprintf("%s/%s/%s", c->tg.path, COMMIT_DIR, STAGE_DIR);
	*stage = (struct stage){ .session = &c->session, .tree = &c->session.tree,
				 .mode = c->opt->mode, .jobs = c->opt->jobs,
				 .quiet = c->opt->quiet, .link_volume = target,
				 .staging_fd = -1, .staging_path = c->staging_path,
				 .crash_env = CRASH_ENV };
	if (fstat(c->tg.fd, &st) < 0 || fstatvfs(c->tg.fd, &vfs) < 0)
		return target_error(&c->tg, "cannot stat", err);
	stage->dev = st.st_dev;
	stage_probe_reflink(stage, c->tg.path);
	rc = stage_check_same_fs(stage, c->tg.path, err);
	if (rc < 0)
		return rc;
	if (c->tg.commit_fd >= 0)
		stage->staging_fd = open_dir_at(c->tg.commit_fd, STAGE_DIR);
	stage_init(stage);
	for (size_t i = 0; i < c->session.tree.count; i++) {
		const struct mtree_entry *e = &c->session.tree.entries[i];

		stage_mark(stage, i, e->kind != MTREE_DIR &&
					     stage_file_done(stage->staging_fd, e));
	}
	stage_space(stage, &vfs, sp);
	if (c->opt->mode == MODE_LINK || c->opt->no_space_check)
		return 0;
	return stage_check_space(stage, sp, c->tg.path, err);
}

static void report(struct commit *c, const struct stage_space *sp, double seconds)
{
	const struct stage *stage = &c->stage;
	const struct mtree *tree = &c->session.tree;
	size_t counts[HOW_COUNT];
	cJSON *json = c->opt->json ? cJSON_CreateObject() : NULL;
	cJSON *entries = json && c->opt->dry_run ? cJSON_CreateArray() : NULL;
	char a[32], b[32], d[32], e[32];

	if (c->opt->dry_run)
		stage_list(stage, entries, counts);
	else
		stage_counts(stage, counts);
	if (json) {
		char *text;

		cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
		cJSON_AddStringToObject(json, "target", c->tg.path);
		cJSON_AddBoolToObject(json, "dry_run", c->opt->dry_run);
		cJSON_AddStringToObject(json, "phase", phase_names[c->tg.journal.phase]);
		cJSON_AddStringToObject(json, "fingerprint", c->fingerprint);
		cJSON_AddStringToObject(json, "mode", copy_mode_names[c->opt->mode]);
		cJSON_AddNumberToObject(json, "jobs", c->opt->jobs);
		cJSON_AddNumberToObject(json, "files", (double)tree->files);
		cJSON_AddNumberToObject(json, "dirs", (double)tree->dirs);
		cJSON_AddNumberToObject(json, "bytes", (double)tree->file_bytes);
		cJSON_AddNumberToObject(json, "files_to_write", (double)stage->work_count);
		cJSON_AddNumberToObject(json, "bytes_to_write", (double)stage->work_bytes);
		cJSON_AddNumberToObject(json, "space_needed", (double)sp->needed);
		cJSON_AddNumberToObject(json, "space_free", (double)sp->free);
		cJSON_AddNumberToObject(json, "seconds", seconds);
		stage_add_modes_json(json, counts);
		if (entries)
			cJSON_AddItemToObject(json, "entries", entries);
		text = cJSON_Print(json);
		puts(text);
		cJSON_free(text);
		cJSON_Delete(json);
	}
	if (c->opt->quiet)
		return;
	fprintf(stderr, "vmunion materialize: %s: %s %zu files (%s), %zu of them %s now "
		"(%s); new space %s, available %s; files by way:", c->tg.path,
		c->opt->dry_run ? "dry run: the merged view has" : "committed the merged view:",
		tree->files, format_bytes(tree->file_bytes, a, sizeof(a)), stage->work_count,
		c->opt->dry_run ? "to stage" : "staged", format_bytes(stage->work_bytes, b, sizeof(b)),
		format_bytes(sp->needed, d, sizeof(d)), format_bytes(sp->free, e, sizeof(e)));
	for (int h = 0; h < HOW_COUNT; h++)
		if (counts[h])
			fprintf(stderr, " %s %zu", how_names[h], counts[h]);
	fprintf(stderr, c->opt->dry_run ? "\n" : " in %.1f s\n", seconds);
	if (!c->opt->dry_run)
		fprintf(stderr, "vmunion materialize: %s: the previous layout is kept in %s/%s: "
			"`vmunion rollback %s` restores it, `vmunion finalize %s` drops it\n",
			c->tg.path, c->tg.path, COMMIT_DIR, c->tg.path, c->tg.path);
	if (!c->opt->dry_run && not_merged(&c->tg.journal))
		fprintf(stderr, "vmunion materialize: %s: not part of the merged view, now only in "
			"%s/%s/%s (finalize refuses to drop it)\n", c->tg.path, COMMIT_DIR,
			PREVIOUS_DIR, not_merged(&c->tg.journal));
}

/* staging: the journal first (it records TARGET's root mtime, which the
 * stage dir changes), then the tree, synced as a whole. */
static int write_stage(struct commit *c, struct error *err)
{
	struct target *tg = &c->tg;
	struct journal *j = &tg->journal;
	int rc;

	if (j->phase != PHASE_STAGING) {
		journal_free(j);
		j->root_mtime = c->root_mtime;
		j->root_mode = c->root_mode;
		j->merged_root_mode = -1;
		j->target = c->stage.link_volume;
		for (size_t v = 0; v < c->session.volume_count; v++)
			names_add(&j->volumes, c->session.volume_realpaths[v]);
		j->upper = c->session.upper_realpath ? xstrdup(c->session.upper_realpath) : NULL;
	}
	free(j->fingerprint);
	j->fingerprint = xstrdup(c->fingerprint);
	if ((rc = make_commit_dir(tg, err)) < 0 || (rc = journal_write(tg, PHASE_STAGING, err)) < 0)
		return rc;
	if (c->stage.staging_fd < 0) {
		c->stage.staging_new = !exists_at(tg->commit_fd, STAGE_DIR);
		rc = open_commit_sub(tg, STAGE_DIR, err);
		if (rc < 0)
			return rc;
		c->stage.staging_fd = rc;
	}
	if ((rc = stage_make_dirs(&c->stage, err)) < 0)
		return rc;
	rc = stage_write_files(&c->stage, now_seconds());
	if (rc < 0) {
		*err = c->stage.err;
		return rc;
	}
	if ((rc = stage_set_dir_attrs(&c->stage, err)) < 0)
		return rc;
	if (syncfs(c->stage.staging_fd) < 0)
		return target_error(tg, "cannot sync the filesystem", err);
	test_crash_point(CRASH_ENV, "staged", 0);
	return 0;
}

static int stage_and_swap(struct commit *c, char **volumes, size_t count, int target,
			  struct error *err)
{
	struct target *tg = &c->tg;
	struct stage_space sp;
	double start = now_seconds();
	int rc;

	rc = materialize_open(&c->session, c->opt, volumes, count, "materialize --into");
	if (rc != 0)
		return rc; /* an exit status, said already */
	snprintf(c->fingerprint, sizeof(c->fingerprint), "%016" PRIx64,
		 c->session.tree.fingerprint);
	if (tg->journal.phase == PHASE_STAGING &&
	    (!same_command(&tg->journal, &c->session, target) ||
	     strcmp(tg->journal.fingerprint, c->fingerprint) != 0)) {
		say(tg, "the volumes changed since the unfinished commit was staged: staging "
			"again");
		if (!c->opt->dry_run)
			rc = remove_commit_sub(tg, STAGE_DIR, err);
	}
	if (rc < 0 || (rc = lock_others(c, target, err)) < 0 ||
	    (rc = prepare_stage(c, target, &sp, err)) < 0) {
		fprintf(stderr, "vmunion materialize: %s%s\n",
			exit_status(rc) == EXIT_REFUSED ? "refused: " : "", err->message);
		return exit_status(rc);
	}
	if (c->opt->dry_run) {
		report(c, &sp, 0);
		return 0;
	}
	rc = write_stage(c, err);
	if (rc == 0)
		rc = begin_swap(tg, &c->session.tree, err);
	if (rc == 0)
		rc = swap(tg, err);
	if (rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n"
			"vmunion materialize: %s: the commit is unfinished (phase %s); rerun the "
			"same command to complete it, or run vmunion rollback %s\n",
			err->message, tg->path, phase_names[tg->journal.phase], tg->path);
		return EXIT_IO; /* written in part: not a refusal, even on ENOSPC */
	}
	report(c, &sp, now_seconds() - start);
	return 0;
}

/* The index of TARGET among the volumes, by resolved path, or -1. */
static int find_target(const char *target, char **volumes, size_t count)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!realpath(target, a))
		return -1;
	for (size_t v = 0; v < count; v++)
		if (realpath(volumes[v], b) && strcmp(a, b) == 0)
			return (int)v;
	return -1;
}

/* A journal of the same volumes, for the checks before any scan. */
static bool same_volumes(const struct journal *j, char **volumes, size_t count, int target,
			 const char *upper)
{
	char path[PATH_MAX];

	if (j->volumes.count != count || j->target != target ||
	    (j->upper == NULL) != (upper == NULL) ||
	    (upper && (!realpath(upper, path) || strcmp(path, j->upper) != 0)))
		return false;
	for (size_t v = 0; v < count; v++)
		if (!realpath(volumes[v], path) || strcmp(path, j->volumes.items[v]) != 0)
			return false;
	return true;
}

int commit_materialize(const struct materialize_options *opt, char **volumes, size_t count)
{
	struct commit c = { .opt = opt, .tg = { .command = "materialize", .quiet = opt->quiet,
						  .json = opt->json } };
	struct target *tg = &c.tg;
	struct error err = { { 0 } };
	enum phase phase;
	struct stat st;
	int target, rc;

	target = find_target(opt->into, volumes, count);
	if (target < 0) {
		fprintf(stderr, "vmunion materialize: --into %s: TARGET must be one of the VOLUMEs "
			"(its place in the list is its place in the merge order)\n", opt->into);
		return EXIT_USAGE;
	}
	rc = target_open(tg, opt->into, &err);
	if (rc == 0 && fstat(tg->fd, &st) == 0) {
		c.root_mtime = st.st_mtim;
		c.root_mode = (int)(st.st_mode & 07777);
	}
	if (rc == 0)
		root_mtime_saved(tg, &c.root_mtime); /* a killed run's mkdir changed it */
	phase = tg->journal.phase;
	if (rc == 0 && phase != PHASE_NONE && phase != PHASE_FINALIZED &&
	    !same_volumes(&tg->journal, volumes, count, target, opt->upper))
		rc = error_set(&err, EINVAL, "%s holds a commit of other volumes (phase %s, see "
			       "%s/%s/%s): rerun the command that started it, or run vmunion "
			       "rollback or finalize first", tg->path, phase_names[phase],
			       tg->path, COMMIT_DIR, JOURNAL);
	else if (rc == 0 && (phase == PHASE_ROLLING_BACK || phase == PHASE_ROLLED_BACK))
		rc = error_set(&err, EINVAL, "%s: a rollback is unfinished: rerun vmunion rollback "
			       "%s", tg->path, tg->path);
	if (rc < 0)
		goto out;
	if (phase == PHASE_FINALIZED && !same_volumes(&tg->journal, volumes, count, target,
						      opt->upper))
		phase = PHASE_NONE; /* a new commit into a finalized TARGET */
	/* Done already: says so without a lock, as a vmstorage may run there. */
	if ((phase == PHASE_COMMITTED || phase == PHASE_FINALIZING || phase == PHASE_FINALIZED) &&
	    !exists_at(tg->fd, RESTORE_MARK) && !exists_at(tg->commit_fd, STAGE_DIR)) {
		say(tg, "done already: it holds the merged view (commit %s); nothing to do",
		    phase_names[phase]);
		print_state(tg, "done already");
		goto out;
	}
	rc = target_lock(tg, &err);
	if (rc == 0)
		rc = target_recheck(tg, &err);
	if (rc == 0 && opt->dry_run && phase >= PHASE_SWAPPING) {
		say(tg, "dry run: the commit is %s; a rerun would complete it", phase_names[phase]);
		print_state(tg, "would complete");
	} else if (rc == 0 && phase >= PHASE_COMMITTED) {
		rc = finish_commit(tg, &err);
		if (rc == 0) {
			say(tg, "done already: it holds the merged view; nothing left to do");
			print_state(tg, "done already");
		}
	} else if (rc == 0 && phase == PHASE_SWAPPING) {
		say(tg, "completing the swap of an interrupted commit");
		rc = swap(tg, &err);
		if (rc == 0) {
			say(tg, "committed; `vmunion rollback %s` restores the previous layout, "
			    "`vmunion finalize %s` drops it", tg->path, tg->path);
			print_state(tg, "completed");
		}
	} else if (rc == 0) {
		if (phase == PHASE_NONE && tg->has_commit_dir && !opt->dry_run)
			rc = remove_tree_at(tg->fd, COMMIT_DIR); /* killed before its journal */
		if (rc == 0 && phase == PHASE_NONE && tg->commit_fd >= 0 && !opt->dry_run) {
			close(tg->commit_fd);
			tg->commit_fd = -1;
		}
		if (rc < 0) {
			error_set(&err, -rc, "%s/%s: cannot remove: %s", tg->path, COMMIT_DIR,
				  strerror(-rc));
		} else {
			/* Killed between the mark and the swap journal: the mark
			 * is ours (the plan refuses a volume with one). */
			if (phase == PHASE_STAGING && !opt->dry_run &&
			    (rc = unmark_restore(tg, &err)) < 0)
				goto out;
			rc = stage_and_swap(&c, volumes, count, target, &err);
			goto done; /* an exit status, reported */
		}
	}
out:
	if (rc < 0)
		fprintf(stderr, "vmunion materialize: %s%s\n",
			exit_status(rc) == EXIT_REFUSED ? "refused: " : "", err.message);
	rc = rc < 0 ? exit_status(rc) : 0;
done:
	if (c.stage.done)
		stage_free(&c.stage);
	if (c.stage.staging_fd >= 0)
		close(c.stage.staging_fd);
	free(c.staging_path);
	if (c.session.volumes)
		mtree_session_close(&c.session);
	target_close(tg);
	return rc;
}

/* ---- rollback and finalize ---- */

/* Everything in TARGET that is not an original entry leaves for discard/,
 * then the originals come back from previous/. */
static int roll_back_moves(struct target *tg, struct error *err)
{
	const struct journal *j = &tg->journal;
	struct names top = { 0 };
	int prev_fd, discard_fd, rc;
	size_t moved = 0;

	prev_fd = open_commit_sub(tg, PREVIOUS_DIR, err);
	if (prev_fd < 0)
		return prev_fd;
	discard_fd = open_commit_sub(tg, DISCARD_DIR, err);
	if (discard_fd < 0) {
		close(prev_fd);
		return discard_fd;
	}
	rc = list_top(tg, &top, err);
	for (size_t i = 0; rc == 0 && i < top.count; i++) {
		const char *name = top.items[i];

		if (names_has(&j->previous, name) && !exists_at(prev_fd, name))
			continue; /* an original that never moved */
		rc = remove_tree_at(discard_fd, name);
		if (rc == 0 && renameat(tg->fd, name, discard_fd, name) < 0)
			rc = -errno;
		if (rc < 0)
			rc = error_set(err, -rc, "%s/%s: cannot move aside: %s", tg->path, name,
				       strerror(-rc));
		test_crash_point(CRASH_ENV, "rollback", ++moved);
	}
	for (size_t i = 0; rc == 0 && i < j->previous.count; i++) {
		const char *name = j->previous.items[i];

		if (!exists_at(prev_fd, name))
			continue;
		if (renameat(prev_fd, name, tg->fd, name) < 0)
			rc = error_set(err, errno, "%s/%s/%s/%s: cannot move back: %s", tg->path,
				       COMMIT_DIR, PREVIOUS_DIR, name, strerror(errno));
		test_crash_point(CRASH_ENV, "rollback", ++moved);
	}
	names_free(&top);
	close(prev_fd);
	close(discard_fd);
	if (rc == 0)
		rc = sync_dirs(tg, err);
	return rc;
}

/* rolled-back (or staging): TARGET's root gets its mode back, the commit's
 * dir goes, then the mark, then the journal; the root gets its mtime back. */
static int roll_back_cleanup(struct target *tg, struct error *err)
{
	struct timespec times[2] = { tg->journal.root_mtime, tg->journal.root_mtime };
	static const char *const subs[] = { DISCARD_DIR, STAGE_DIR, PREVIOUS_DIR };
	int rc = 0;

	/* While the journal that keeps it is there. */
	if (tg->journal.root_mode >= 0 && fchmod(tg->fd, (mode_t)tg->journal.root_mode) < 0)
		return target_error(tg, "cannot restore its mode", err);
	for (size_t i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++)
		rc = remove_commit_sub(tg, subs[i], err);
	/* Even at staging: a volume with the mark is refused by the plan, so
	 * one here is ours (a kill between the mark and the swap journal of
	 * an older vmunion). */
	if (rc == 0)
		rc = unmark_restore(tg, err);
	if (rc < 0)
		return rc;
	if (unlinkat(tg->commit_fd, JOURNAL, 0) < 0 && errno != ENOENT)
		return target_error(tg, "cannot remove " COMMIT_DIR "/" JOURNAL, err);
	/* The journal goes first: what is left (a journal.json.tmp of a write
	 * that was killed) is nobody's, and a kill from here on is the case
	 * of a commit killed before its first journal. */
	rc = remove_tree_at(tg->fd, COMMIT_DIR);
	if (rc < 0)
		return error_set(err, -rc, "%s/%s: cannot remove: %s", tg->path, COMMIT_DIR,
				 strerror(-rc));
	if (futimens(tg->fd, times) < 0 || fsync(tg->fd) < 0)
		return target_error(tg, "cannot restore its mtime", err);
	root_mtime_forget(tg);
	return 0;
}

static int roll_back(struct target *tg, struct error *err)
{
	enum phase phase = tg->journal.phase;
	int rc = 0;

	if (phase == PHASE_SWAPPING || phase == PHASE_COMMITTED || phase == PHASE_ROLLING_BACK) {
		if ((rc = mark_restore(tg, err)) < 0 ||
		    (rc = journal_write(tg, PHASE_ROLLING_BACK, err)) < 0 ||
		    (rc = roll_back_moves(tg, err)) < 0 ||
		    (rc = journal_write(tg, PHASE_ROLLED_BACK, err)) < 0)
			return rc;
		test_crash_point(CRASH_ENV, "rolled-back", 0);
	}
	return roll_back_cleanup(tg, err);
}

static int finalize(struct target *tg, struct error *err)
{
	static const char *const subs[] = { PREVIOUS_DIR, DISCARD_DIR, STAGE_DIR };
	int rc = 0;

	if (tg->journal.phase == PHASE_COMMITTED) {
		const char *name = not_merged(&tg->journal);
		int prev_fd = open_dir_at(tg->commit_fd, PREVIOUS_DIR);
		bool kept = name && prev_fd >= 0 && exists_at(prev_fd, name);

		if (prev_fd >= 0)
			close(prev_fd);
		if (kept)
			return error_set(err, EINVAL, "%s/%s/%s/%s is not part of the merged view, and "
					 "finalize would delete it: move it out and rerun finalize",
					 tg->path, COMMIT_DIR, PREVIOUS_DIR, name);
		if ((rc = finish_commit(tg, err)) < 0 ||
		    (rc = journal_write(tg, PHASE_FINALIZING, err)) < 0)
			return rc;
		test_crash_point(CRASH_ENV, "finalizing", 0);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++)
		rc = remove_commit_sub(tg, subs[i], err);
	if (rc == 0 && fsync(tg->commit_fd) < 0)
		rc = target_error(tg, "cannot sync", err);
	if (rc == 0)
		root_mtime_forget(tg);
	return rc < 0 ? rc : journal_write(tg, PHASE_FINALIZED, err);
}

/* Killed before its first journal: only the commit's dir is there, and the
 * root's mtime is the mkdir's; the xattr kept the one from before. */
static int remove_unjournaled(struct target *tg, struct error *err)
{
	struct timespec mtime, times[2];
	int rc = remove_tree_at(tg->fd, COMMIT_DIR);

	if (rc < 0)
		return error_set(err, -rc, "%s/%s: cannot remove: %s", tg->path, COMMIT_DIR,
				 strerror(-rc));
	if (!root_mtime_saved(tg, &mtime))
		return 0;
	times[0] = times[1] = mtime;
	if (futimens(tg->fd, times) < 0 || fsync(tg->fd) < 0)
		return target_error(tg, "cannot restore its mtime", err);
	root_mtime_forget(tg);
	return 0;
}

static void usage_target(FILE *out, const char *command)
{
	if (strcmp(command, "rollback") == 0)
		fputs("Usage: vmunion rollback [OPTIONS] TARGET\n"
		      "\n"
		      "Undoes `vmunion materialize --into TARGET`: restores TARGET's previous\n"
		      "layout, kept in TARGET/.vmunion-commit, byte for byte (contents, modes,\n"
		      "mtimes). Whatever a vmstorage wrote on TARGET since the commit is dropped.\n"
		      "Works at any phase of an interrupted commit; safe to rerun. Refused after\n"
		      "finalize, and while a vmstorage runs on TARGET.\n",
		      out);
	else
		fputs("Usage: vmunion finalize [OPTIONS] TARGET\n"
		      "\n"
		      "Ends a commit made by `vmunion materialize --into TARGET`: drops TARGET's\n"
		      "previous layout kept in TARGET/.vmunion-commit (after which rollback is no\n"
		      "longer possible). A small journal stays, so that a rerun of the commit\n"
		      "says it is done. Safe to rerun. Refused while the commit is unfinished,\n"
		      "and while a vmstorage runs on TARGET (stop it, finalize, start it).\n",
		      out);
	fputs("\n"
	      "Options:\n"
	      "  -q, --quiet      say nothing on stderr\n"
	      "      --json       the resulting phase as JSON on stdout\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 done (or nothing to do); 1 refused (a vmstorage runs on\n"
	      "TARGET, or the phase does not allow it); 2 an I/O error (rerun); 64 wrong\n"
	      "usage.\n",
	      out);
}

static int command_target(int argc, char **argv, bool rollback)
{
	static const struct option options[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *command = rollback ? "rollback" : "finalize";
	struct target tg = { .command = command };
	struct error err = { { 0 } };
	enum phase phase;
	int c, rc;

	while ((c = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		if (c == 'q') {
			tg.quiet = true;
		} else if (c == 'J') {
			tg.json = true;
		} else if (c == 'h') {
			usage_target(stdout, command);
			return 0;
		} else {
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "vmunion %s: give one TARGET (see vmunion %s --help)\n", command,
			command);
		return EXIT_USAGE;
	}
	rc = target_open(&tg, argv[optind], &err);
	phase = tg.journal.phase;
	if (rc < 0)
		goto out;
	if (phase == PHASE_NONE && !tg.has_commit_dir) {
		say(&tg, "no commit here: nothing to %s", rollback ? "roll back" : "finalize");
		print_state(&tg, "nothing to do");
		goto out;
	}
	if (rollback && phase >= PHASE_FINALIZING) {
		rc = error_set(&err, EINVAL, "%s: the commit was finalized: its previous layout is "
			       "gone, there is nothing to roll back to", tg.path);
		goto out;
	}
	if (!rollback && phase == PHASE_FINALIZED) {
		say(&tg, "finalized already: nothing to do");
		print_state(&tg, "nothing to do");
		goto out;
	}
	if (!rollback && (phase < PHASE_COMMITTED || phase == PHASE_ROLLING_BACK ||
			  phase == PHASE_ROLLED_BACK)) {
		rc = error_set(&err, EINVAL, "%s: the %s is unfinished (phase %s): %s first",
			       tg.path, phase >= PHASE_ROLLING_BACK ? "rollback" : "commit",
			       phase_names[phase],
			       phase >= PHASE_ROLLING_BACK ? "rerun vmunion rollback"
			       : "rerun the vmunion materialize --into command to complete it, "
				 "or run vmunion rollback");
		goto out;
	}
	rc = target_lock(&tg, &err);
	if (rc == 0)
		rc = target_recheck(&tg, &err);
	if (rc == 0 && phase == PHASE_NONE) {
		rc = remove_unjournaled(&tg, &err);
		if (rc == 0)
			say(&tg, "removed the leftovers of a commit killed at its start");
	} else if (rc == 0) {
		rc = rollback ? roll_back(&tg, &err) : finalize(&tg, &err);
		if (rc == 0 && rollback) {
			say(&tg, "rolled back: it holds its previous layout again");
			tg.journal.phase = PHASE_NONE;
		} else if (rc == 0) {
			say(&tg, "finalized: the previous layout is dropped");
		}
	}
	if (rc == 0)
		print_state(&tg, rollback ? "rolled back" : "finalized");
out:
	if (rc < 0)
		fprintf(stderr, "vmunion %s: %s%s\n", command,
			exit_status(rc) == EXIT_REFUSED ? "refused: " : "", err.message);
	target_close(&tg);
	return rc < 0 ? exit_status(rc) : 0;
}

int command_rollback(int argc, char **argv)
{
	return command_target(argc, argv, true);
}

int command_finalize(int argc, char **argv)
{
	return command_target(argc, argv, false);
}
