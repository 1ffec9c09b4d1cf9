/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion materialize: write the merged view (the plan, or an upper on top of
 * it) onto a real directory, crash-safe and resumable.
 *
 * DEST goes through these states; at each one a rerun of the same command
 * resumes, and vmstorage refuses to start (restore-in-progress, layout §4):
 *   1. DEST/restore-in-progress        created before anything else
 *   2. DEST/.vmunion-materialize.json  the marker: names the plan's fingerprint
 *   3. DEST/.vmunion-staging/...       the tree; each file is written to
 *                                      NAME.vmunion-tmp, renamed once a
 *                                      syncfs made it durable (stage.c)
 *   4. syncfs, then every top-level entry is renamed from the staging dir into
 *      DEST (an entry found in DEST and not in staging was published already)
 *   5. restore-in-progress is removed, then the marker. A tree with only the
 *      marker left is complete (vmstorage ignores unknown root entries); a
 *      rerun just removes it.
 * A file already staged with the right size and mtime (or content, for the
 * small files the plan makes) is not copied again. */
#include "materialize.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "commit.h"
#include "mtree.h"
#include "stage.h"

#define EXIT_REFUSED 1
#define EXIT_IO 2
#define EXIT_USAGE 64

#define MARKER ".vmunion-materialize.json"
#define MARKER_TMP MARKER ".tmp"
#define MARKER_FORMAT "vmunion-materialize/1"
#define STAGING ".vmunion-staging"
#define RESTORE_MARK "restore-in-progress"
#define CRASH_ENV TEST_HOOK_ENV("VMUNION_MATERIALIZE_CRASH_AT")

/* What DEST holds before we start: nothing of ours, an unfinished run of
 * this plan, or exactly the merged view (a finished run). */
enum dest_state { DEST_NEW, DEST_RESUME, DEST_DONE };

struct job {
	const struct materialize_options *opt;
	struct mtree_session *session;
	const struct mtree *tree;
	char *dest;               /* resolved */
	bool dest_exists;
	enum dest_state state;
	int dest_fd, staging_fd;
	char *staging_path;       /* for messages */
	struct stage stage;       /* done[]: published or staged by an earlier run */
};

static size_t top_len(const char *path)
{
	const char *slash = strchr(path, '/');

	return slash ? (size_t)(slash - path) : strlen(path);
}

/* ---- checks before the first byte ---- */

/* DEST must not be inside a volume or the upper, nor they inside DEST. */
static int check_location(struct job *job, struct error *err)
{
	const struct mtree_session *s = job->session;

	for (size_t v = 0; v <= s->volume_count; v++) {
		const char *other = v < s->volume_count ? s->volume_realpaths[v] : s->upper_realpath;

		if (!other)
			continue;
		if (path_within(job->dest, other) || path_within(other, job->dest))
			return error_set(err, EINVAL,
					 "%s: DEST must not be inside %s %s, nor it inside DEST",
					 job->dest, v < s->volume_count ? "the volume" : "the upper",
					 other);
	}
	return 0;
}

/* See volume_lock: the locks last until the session closes the volumes. */
static int lock_volumes(struct job *job, struct error *err)
{
	const struct mtree_session *s = job->session;
	int rc = 0;

	for (size_t v = 0; rc == 0 && v < s->volume_count; v++)
		rc = volume_lock(&s->volumes[v], err);
	return rc;
}

static bool is_tree_top(const struct mtree *tree, const char *name)
{
	const struct mtree_entry *e = mtree_find(tree, name);

	return e != NULL;
}

static bool entry_exists(int dirfd, const char *path)
{
	struct stat st;

	return dirfd >= 0 && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Refuses a marker of another plan; fills *ours. */
static int check_marker(struct job *job, struct error *err)
{
	char *text = NULL, want[17];
	cJSON *json, *fingerprint;
	size_t len;
	int rc = read_file_at(job->dest_fd, MARKER, 1 << 20, &text, &len);

	if (rc < 0)
		return error_set(err, -rc, "%s/%s: %s", job->dest, MARKER, strerror(-rc));
	snprintf(want, sizeof(want), "%016" PRIx64, job->tree->fingerprint);
	json = cJSON_Parse(text);
	fingerprint = cJSON_GetObjectItemCaseSensitive(json, "fingerprint");
	if (!cJSON_IsString(fingerprint) || strcmp(fingerprint->valuestring, want) != 0)
		rc = error_set(err, EINVAL,
			       "%s holds an unfinished materialize of another plan (fingerprint "
			       "%s, this one is %s); its marker %s says:\n%s"
			       "Rerun the command that started it, or remove %s",
			       job->dest,
			       cJSON_IsString(fingerprint) ? fingerprint->valuestring : "unreadable",
			       want, MARKER, text, job->dest);
	cJSON_Delete(json);
	free(text);
	return rc;
}

static int check_restore_mark(struct job *job, struct error *err)
{
	struct stat st;

	if (fstatat(job->dest_fd, RESTORE_MARK, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!S_ISREG(st.st_mode) || st.st_size != 0))
		return error_set(err, EINVAL,
				 "%s/%s is not ours (not an empty file): a vmrestore may be "
				 "under way there",
				 job->dest, RESTORE_MARK);
	return 0;
}

/* Two runs on one DEST would trip over each other's temp files. */
static int lock_dest(struct job *job, struct error *err)
{
	if (flock(job->dest_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return error_set(err, EINVAL, "%s: another vmunion materialize is writing it",
				 job->dest);
	return error_set(err, errno, "%s: cannot lock: %s", job->dest, strerror(errno));
}

/* Whether every entry of the view is in DEST, complete: a finished run. */
static bool holds_view(const struct job *job)
{
	for (size_t i = 0; i < job->tree->count; i++)
		if (!stage_file_done(job->dest_fd, &job->tree->entries[i]))
			return false;
	return true;
}

/* DEST that stat cannot find may still be a symlink to nothing: mkdir
 * would fail on it with EEXIST, after the run had called DEST unfinished. */
static int check_dangling_dest(const struct job *job, struct error *err)
{
	char target[PATH_MAX];
	ssize_t len;
	struct stat st;

	if (lstat(job->dest, &st) < 0 || !S_ISLNK(st.st_mode))
		return 0;
	len = readlink(job->dest, target, sizeof(target) - 1);
	target[len < 0 ? 0 : len] = '\0';
	return error_set(err, ENOTDIR,
			 "%s: DEST is a dangling symlink (to %s, which does not exist): give an "
			 "existing directory or a new name",
			 job->dest, len < 0 ? "?" : target);
}

/* DEST must be missing, empty, finished, or an unfinished materialize of
 * this plan. */
static int inspect_dest(struct job *job, struct error *err)
{
	bool marker = false, restore = false, others = false;
	char *unknown = NULL;
	int rc;
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd;

	job->state = DEST_NEW;
	if (stat(job->dest, &st) < 0) {
		if (errno != ENOENT)
			return error_set(err, errno, "%s: %s", job->dest, strerror(errno));
		return check_dangling_dest(job, err);
	}
	if (!S_ISDIR(st.st_mode))
		return error_set(err, ENOTDIR, "%s: DEST is not a directory", job->dest);
	job->dest_exists = true;
	job->dest_fd = open(job->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (job->dest_fd < 0)
		return error_set(err, errno, "%s: %s", job->dest, strerror(errno));
	rc = lock_dest(job, err);
	if (rc < 0)
		return rc;
	fd = openat(job->dest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return error_set(err, errno, "%s: %s", job->dest, strerror(errno));
	}
	while ((de = readdir(dir))) {
		const char *name = de->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    strcmp(name, MARKER_TMP) == 0 || strcmp(name, STAGING) == 0)
			continue;
		if (strcmp(name, MARKER) == 0)
			marker = true;
		else if (strcmp(name, RESTORE_MARK) == 0)
			restore = true;
		else if (strcmp(name, "lost+found") == 0 && !is_tree_top(job->tree, name))
			continue; /* a fresh filesystem's root: vmstorage ignores it */
		else if (is_tree_top(job->tree, name))
			others = true;
		else if (!unknown)
			unknown = xstrdup(name);
	}
	closedir(dir);
	if (!unknown && others && !marker && !restore && !entry_exists(job->dest_fd, STAGING) &&
	    holds_view(job)) {
		job->state = DEST_DONE;
		return 0;
	}
	if (unknown || (others && !marker)) {
		rc = error_set(err, ENOTEMPTY,
				   "%s: DEST is not empty (it holds %s) and is no unfinished "
				   "materialize of these volumes; give an empty or new directory%s",
				   job->dest, unknown ? unknown : "a vmstorage tree",
				   unknown ? "" : " (vmunion verify tells whether it is a "
						  "finished one)");

		free(unknown);
		return rc;
	}
	if (restore) {
		rc = check_restore_mark(job, err);
		if (rc < 0)
			return rc;
	}
	if (marker) {
		rc = check_marker(job, err);

		if (rc < 0)
			return rc;
		job->state = DEST_RESUME;
	} else if (entry_exists(job->dest_fd, STAGING)) {
		return error_set(err, ENOTEMPTY,
				 "%s: holds %s but no %s: not a materialize this tool can resume",
				 job->dest, STAGING, MARKER);
	}
	job->staging_fd = openat(job->dest_fd, STAGING, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return 0;
}

/* Marks what earlier runs finished and lists the files to write. */
static int plan_work(struct job *job, struct error *err)
{
	const struct mtree *tree = job->tree;
	struct stage *stage = &job->stage;

	stage_init(stage);
	for (size_t i = 0; i < tree->count; i++) {
		const struct mtree_entry *e = &tree->entries[i];
		bool published, staged = entry_exists(job->staging_fd, e->path);

		if (!strchr(e->path, '/') && e->kind != MTREE_DIR) {
			/* A staged one is renamed over what DEST holds at publish: a
			 * vmstorage started on the unfinished DEST leaves a flock.lock. */
			published = !staged && job->state == DEST_RESUME &&
				    stage_file_done(job->dest_fd, e);
		} else if (!strchr(e->path, '/')) {
			/* A top-level dir in DEST and not in staging was published. */
			published = job->state == DEST_RESUME && entry_exists(job->dest_fd, e->path);
			if (published && staged)
				return error_set(err, EEXIST,
						 "%s: both %s and %s/%s exist: remove DEST and "
						 "start again",
						 job->dest, e->path, STAGING, e->path);
		} else {
			/* Its top-level dir sorts before it and was decided already. */
			char *top = strndup(e->path, top_len(e->path));
			const struct mtree_entry *t = mtree_find(tree, top);

			free(top);
			published = t && t->kind == MTREE_DIR && stage->done[t - tree->entries];
		}
		stage_mark(stage, i, published || job->state == DEST_DONE ||
					     (e->kind != MTREE_DIR && staged &&
					      stage_file_done(job->staging_fd, e)));
	}
	return 0;
}

/* Where DEST will be: its filesystem decides links, reflinks and space. */
static int stat_dest_fs(struct job *job, struct statvfs *vfs, struct error *err)
{
	char *parent = xstrdup(job->dest), *slash = strrchr(parent, '/');
	const char *where = job->dest;
	struct stat st;
	int rc = 0;

	if (!job->dest_exists) {
		if (slash)
			slash[slash == parent ? 1 : 0] = '\0';
		where = parent;
	}
	if (stat(where, &st) < 0 || statvfs(where, vfs) < 0) {
		rc = error_set(err, errno, "%s: %s", where, strerror(errno));
	} else {
		job->stage.dev = st.st_dev;
		stage_probe_reflink(&job->stage, where);
	}
	free(parent);
	return rc;
}

/* ---- the steps ---- */

static int dest_error(const struct job *job, const char *what, struct error *err)
{
	return error_set(err, errno, "%s: %s: %s", job->dest, what, strerror(errno));
}

static char *marker_json(const struct job *job)
{
	const struct mtree_session *s = job->session;
	cJSON *json = cJSON_CreateObject(), *volumes = cJSON_CreateArray();
	char fingerprint[17], *printed, *copy;

	snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, job->tree->fingerprint);
	cJSON_AddStringToObject(json, "format", MARKER_FORMAT);
	cJSON_AddStringToObject(json, "fingerprint", fingerprint);
	for (size_t v = 0; v < s->volume_count; v++)
		cJSON_AddItemToArray(volumes, cJSON_CreateString(s->volume_realpaths[v]));
	cJSON_AddItemToObject(json, "volumes", volumes);
	if (s->upper_realpath)
		cJSON_AddStringToObject(json, "upper", s->upper_realpath);
	else
		cJSON_AddNullToObject(json, "upper");
	cJSON_AddNumberToObject(json, "files", (double)job->tree->files);
	cJSON_AddNumberToObject(json, "bytes", (double)job->tree->file_bytes);
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xasprintf("%s\n", printed);
	cJSON_free(printed);
	return copy;
}

/* Steps 1 and 2: from here on vmstorage refuses DEST, and a rerun knows it. */
static int begin(struct job *job, struct error *err)
{
	char *text;
	int fd, rc;

	if (!job->dest_exists) {
		/* Private until publish gives it the merged root's mode. */
		if (mkdir(job->dest, 0700) < 0)
			return dest_error(job, "cannot create", err);
		job->dest_fd = open(job->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (job->dest_fd < 0)
			return dest_error(job, "cannot open", err);
		rc = lock_dest(job, err);
		if (rc < 0)
			return rc;
	}
	if (job->state == DEST_NEW) {
		fd = openat(job->dest_fd, RESTORE_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return dest_error(job, "cannot create " RESTORE_MARK, err);
		close(fd);
		if (fsync(job->dest_fd) < 0)
			return dest_error(job, "cannot sync", err);
		text = marker_json(job);
		fd = openat(job->dest_fd, MARKER_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		rc = fd < 0 ? -errno : write_all(fd, text, strlen(text));
		if (rc == 0 && fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
		free(text);
		if (rc == 0 && renameat(job->dest_fd, MARKER_TMP, job->dest_fd, MARKER) < 0)
			rc = -errno;
		if (rc == 0 && fsync(job->dest_fd) < 0)
			rc = -errno;
		if (rc < 0)
			return error_set(err, -rc, "%s/%s: %s", job->dest, MARKER, strerror(-rc));
		test_crash_point(CRASH_ENV, "marker", 0);
	}
	unlinkat(job->dest_fd, MARKER_TMP, 0);
	if (job->staging_fd < 0) {
		if (mkdirat(job->dest_fd, STAGING, 0700) == 0)
			job->stage.staging_new = true;
		else if (errno != EEXIST)
			return dest_error(job, "cannot create " STAGING, err);
		job->staging_fd = openat(job->dest_fd, STAGING, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (job->staging_fd < 0)
			return dest_error(job, "cannot open " STAGING, err);
	}
	return 0;
}

/* DEST becomes the merged root: its owner, a mode no wider than every
 * volume's root, and no ACL (its merged one is folded into the mode). */
static int give_root_attr(struct job *job, struct error *err)
{
	static const char *const acls[] = { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR };
	const char *what;
	int rc;

	for (size_t i = 0; i < sizeof(acls) / sizeof(*acls); i++)
		if (fremovexattr(job->dest_fd, acls[i]) < 0 && errno != ENODATA &&
		    errno != ENOTSUP)
			return dest_error(job, "cannot remove its ACL", err);
	rc = stage_give_attr(job->dest_fd, &job->tree->root_attr, NULL, &what);
	return rc < 0 ? error_set(err, -rc, "%s: %s: %s", job->dest, what, strerror(-rc)) : 0;
}

/* Steps 4 and 5. */
static int publish(struct job *job, struct error *err)
{
	size_t published = 0;
	int rc;

	if (syncfs(job->staging_fd) < 0)
		return dest_error(job, "cannot sync the filesystem", err);
	test_crash_point(CRASH_ENV, "staged", 0);
	for (size_t i = 0; i < job->tree->count; i++) {
		const char *name = job->tree->entries[i].path;

		/* Not staged: published by an earlier run (plan_work checked). */
		if (strchr(name, '/') || !entry_exists(job->staging_fd, name))
			continue;
		if (renameat(job->staging_fd, name, job->dest_fd, name) < 0)
			return error_set(err, errno, "%s/%s/%s: cannot publish: %s", job->dest,
					 STAGING, name, strerror(errno));
		test_crash_point(CRASH_ENV, "publish", ++published);
	}
	if (unlinkat(job->dest_fd, STAGING, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return error_set(err, errno, "%s/%s: cannot remove: %s (is something left in it?)",
				 job->dest, STAGING, strerror(errno));
	rc = give_root_attr(job, err);
	if (rc < 0)
		return rc;
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	if (unlinkat(job->dest_fd, RESTORE_MARK, 0) < 0 && errno != ENOENT)
		return dest_error(job, "cannot remove " RESTORE_MARK, err);
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	test_crash_point(CRASH_ENV, "unmarked", 0);
	if (unlinkat(job->dest_fd, MARKER, 0) < 0 && errno != ENOENT)
		return dest_error(job, "cannot remove " MARKER, err);
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	return 0;
}

/* ---- reports ---- */

static void print_json(cJSON *json)
{
	char *text = cJSON_Print(json);

	puts(text);
	cJSON_free(text);
	cJSON_Delete(json);
}

static int dry_run(struct job *job, const struct stage_space *sp, int space_rc,
		   const struct error *space_err)
{
	const struct stage *stage = &job->stage;
	size_t counts[HOW_COUNT];
	cJSON *json = job->opt->json ? cJSON_CreateObject() : NULL;
	cJSON *entries = json ? cJSON_CreateArray() : NULL;
	char a[32], b[32], c[32], d[32];

	stage_list(stage, entries, counts);
	if (json) {
		cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
		cJSON_AddBoolToObject(json, "dry_run", true);
		cJSON_AddStringToObject(json, "dest", job->dest);
		cJSON_AddBoolToObject(json, "resume", job->state == DEST_RESUME);
		cJSON_AddBoolToObject(json, "done", job->state == DEST_DONE);
		cJSON_AddNumberToObject(json, "files", (double)job->tree->files);
		cJSON_AddNumberToObject(json, "dirs", (double)job->tree->dirs);
		cJSON_AddNumberToObject(json, "bytes", (double)job->tree->file_bytes);
		cJSON_AddNumberToObject(json, "files_to_write", (double)stage->work_count);
		cJSON_AddNumberToObject(json, "bytes_to_write", (double)stage->work_bytes);
		cJSON_AddNumberToObject(json, "space_needed", (double)sp->needed);
		cJSON_AddNumberToObject(json, "space_free", (double)sp->free);
		stage_add_modes_json(json, counts);
		cJSON_AddItemToObject(json, "entries", entries);
		print_json(json);
	} else if (!job->opt->quiet) {
		fprintf(stderr,
			"vmunion materialize: dry run: %zu of %zu files (%s of %s) would be "
			"written to %s%s, %zu directories; space needed %s, available %s\n",
			stage->work_count, job->tree->files,
			format_bytes(stage->work_bytes, a, sizeof(a)),
			format_bytes(job->tree->file_bytes, b, sizeof(b)), job->dest,
			job->state == DEST_RESUME ? " (resuming an unfinished run)"
			: job->state == DEST_DONE ? " (it holds the merged view already)"
						  : "",
			job->tree->dirs, format_bytes(sp->needed, c, sizeof(c)),
			format_bytes(sp->free, d, sizeof(d)));
	}
	if (space_rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n", space_err->message);
		return EXIT_REFUSED;
	}
	return 0;
}

static void report(struct job *job, double seconds)
{
	const struct stage *stage = &job->stage;
	size_t counts[HOW_COUNT];
	char a[32], b[32];

	stage_counts(stage, counts);
	if (job->opt->json) {
		cJSON *json = cJSON_CreateObject();
		char fingerprint[17];

		snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, job->tree->fingerprint);
		cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
		cJSON_AddStringToObject(json, "dest", job->dest);
		cJSON_AddStringToObject(json, "fingerprint", fingerprint);
		cJSON_AddStringToObject(json, "mode", copy_mode_names[job->opt->mode]);
		cJSON_AddNumberToObject(json, "jobs", job->opt->jobs);
		cJSON_AddBoolToObject(json, "resumed", job->state == DEST_RESUME);
		cJSON_AddBoolToObject(json, "already_done", job->state == DEST_DONE);
		cJSON_AddNumberToObject(json, "files", (double)job->tree->files);
		cJSON_AddNumberToObject(json, "dirs", (double)job->tree->dirs);
		cJSON_AddNumberToObject(json, "bytes", (double)job->tree->file_bytes);
		cJSON_AddNumberToObject(json, "files_written", (double)stage->work_count);
		cJSON_AddNumberToObject(json, "bytes_written", (double)stage->work_bytes);
		cJSON_AddNumberToObject(json, "seconds", seconds);
		stage_add_modes_json(json, counts);
		print_json(json);
	}
	if (job->opt->quiet)
		return;
	if (job->state == DEST_DONE) {
		fprintf(stderr,
			"vmunion materialize: %s: done already: it holds the merged view (%zu "
			"files, %s); nothing to do\n",
			job->dest, job->tree->files, format_bytes(job->tree->file_bytes, a, sizeof(a)));
		return;
	}
	fprintf(stderr, "vmunion materialize: %s: %zu files (%s), %zu written (%s) in %.1f s:",
		job->dest, job->tree->files,
		format_bytes(job->tree->file_bytes, a, sizeof(a)), stage->work_count,
		format_bytes(stage->work_bytes, b, sizeof(b)), seconds);
	for (int h = 0; h < HOW_COUNT; h++)
		if (counts[h])
			fprintf(stderr, " %s %zu", how_names[h], counts[h]);
	fputc('\n', stderr);
}

/* ---- the command ---- */

static void usage(FILE *out)
{
	fputs("Usage: vmunion materialize [OPTIONS] VOLUME... DEST\n"
	      "       vmunion materialize --into TARGET [OPTIONS] VOLUME...\n"
	      "\n"
	      "Writes the merged view of the volumes (exactly what vmunionfs shows) into\n"
	      "DEST, a missing or empty directory, as a volume vmstorage can start on.\n"
	      "Crash-safe: DEST keeps restore-in-progress (vmstorage refuses to start)\n"
	      "until the end, and rerunning the same command resumes an interrupted run;\n"
	      "a rerun after it finished says so and exits 0.\n"
	      "\n"
	      "With --into, commits the merged view in place into TARGET, one of the\n"
	      "VOLUMEs (its position keeps the merge order), with no spare disk: TARGET's\n"
	      "own files are hard-linked (same inodes), the other volumes' files reflinked\n"
	      "or copied, and the tree, staged in TARGET/.vmunion-commit, is swapped in\n"
	      "under restore-in-progress. TARGET's previous layout is kept there until\n"
	      "`vmunion finalize TARGET`; `vmunion rollback TARGET` restores it. A rerun\n"
	      "after a crash completes the commit. The other volumes are never written.\n"
	      "\n"
	      "Options:\n"
	      "  --into TARGET    commit in place into the volume TARGET (see above)\n"
	      "  --upper DIR      write the view of a vmunionfs upper (the volumes plus\n"
	      "                   what a vmstorage changed on the mount); it must have\n"
	      "                   been made for the same volumes, in the same order\n"
	      "  --mode MODE      auto (default): reflink where DEST's filesystem can,\n"
	      "                   else copy_file_range, else read/write;\n"
	      "                   reflink: reflinks only, fail where it cannot;\n"
	      "                   copy: copy_file_range, else read/write;\n"
	      "                   link: hard-link part files (same filesystem only);\n"
	      "                   files vmstorage rewrites are always written fresh;\n"
	      "                   with --into, TARGET's own files are always linked\n"
	      "  -j, --jobs N     files copied in parallel (default 4)\n"
	      "  -n, --dry-run    list each file with its mode and size, check the\n"
	      "                   space; write nothing\n"
	      "  -q, --quiet      no progress and no summary on stderr\n"
	      "      --json       a JSON summary on stdout at the end\n"
	      "      --no-space-check  skip the free-space check (e.g. compressing\n"
	      "                   filesystems whose statvfs misleads)\n"
	      "      --no-check   skip the metricID collision scan (the cheap checks of\n"
	      "                   `vmunion check` always run)\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 done (or done already); 1 refused before writing (the\n"
	      "volumes cannot be merged, DEST is not empty, its parent missing, a\n"
	      "dangling symlink, inside a volume, of another plan, too small, or on\n"
	      "another filesystem for link/reflink; an upper holding a FIFO or device;\n"
	      "a vmstorage holds TARGET); 2 an I/O error (DEST or TARGET is left\n"
	      "unfinished: rerun to resume); 64 wrong usage.\n",
	      out);
}

static int parse_options(int argc, char **argv, struct materialize_options *opt)
{
	static const struct option options[] = {
		{ "upper", required_argument, NULL, 'u' },
		{ "into", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, 'm' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'J' },
		{ "no-space-check", no_argument, NULL, 'S' },
		{ "no-check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(opt, 0, sizeof(*opt));
	opt->jobs = STAGE_DEFAULT_JOBS;
	while ((c = getopt_long(argc, argv, "u:m:j:nqh", options, NULL)) != -1) {
		char *end;
		unsigned long n;

		switch (c) {
		case 'u':
			opt->upper = optarg;
			break;
		case 'i':
			opt->into = optarg;
			break;
		case 'm':
			if (stage_parse_mode(optarg, &opt->mode) < 0) {
				fprintf(stderr, "vmunion materialize: unknown mode '%s' (auto, "
						"reflink, copy or link)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > STAGE_MAX_JOBS) {
				fprintf(stderr, "vmunion materialize: --jobs takes 1..%d\n",
					STAGE_MAX_JOBS);
				return EXIT_USAGE;
			}
			opt->jobs = (unsigned)n;
			break;
		case 'n':
			opt->dry_run = true;
			break;
		case 'q':
			opt->quiet = true;
			break;
		case 'J':
			opt->json = true;
			break;
		case 'S':
			opt->no_space_check = true;
			break;
		case 'C':
			opt->no_check = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind < (opt->into ? 1 : 2)) {
		fputs(opt->into ? "vmunion materialize: give the VOLUMEs, TARGET among them "
				  "(see vmunion materialize --help)\n"
				: "vmunion materialize: give at least one VOLUME and DEST "
				  "(see vmunion materialize --help)\n",
		      stderr);
		return EXIT_USAGE;
	}
	return 0;
}

static void job_free(struct job *job)
{
	if (job->staging_fd >= 0)
		close(job->staging_fd);
	if (job->dest_fd >= 0)
		close(job->dest_fd);
	stage_free(&job->stage);
	free(job->staging_path);
	free(job->dest);
}

/* Everything that can refuse runs before the first write. */
static int prepare(struct job *job, const char *dest, struct stage_space *sp, struct error *err)
{
	struct statvfs vfs;
	int rc;

	job->dest = resolve_path(dest);
	if (!job->dest)
		return error_set(err, errno ? errno : EINVAL,
				 "%s: DEST's parent directory must exist: %s", dest,
				 strerror(errno ? errno : EINVAL));
	job->staging_path = xasprintf("%s/%s", job->dest, STAGING);
	job->stage.staging_path = job->staging_path;
	if ((rc = check_location(job, err)) < 0 || (rc = lock_volumes(job, err)) < 0 ||
	    (rc = inspect_dest(job, err)) < 0 || (rc = stat_dest_fs(job, &vfs, err)) < 0 ||
	    (rc = stage_check_same_fs(&job->stage, job->dest, err)) < 0 ||
	    (rc = plan_work(job, err)) < 0)
		return rc;
	stage_space(&job->stage, &vfs, sp);
	return 0;
}

static int space_ok(const struct job *job, const struct stage_space *sp, struct error *err)
{
	if (job->opt->mode == MODE_LINK || job->opt->no_space_check)
		return 0;
	return stage_check_space(&job->stage, sp, job->dest, err);
}

static int materialize(struct job *job)
{
	double start = now_seconds();
	struct error err;
	int rc;

	rc = begin(job, &err);
	if (rc == 0) {
		job->stage.staging_fd = job->staging_fd;
		rc = stage_make_dirs(&job->stage, &err);
	}
	if (rc == 0) {
		rc = stage_write_files(&job->stage, start);
		if (rc < 0)
			err = job->stage.err;
	}
	if (rc == 0)
		rc = stage_set_dir_attrs(&job->stage, &err);
	if (rc == 0)
		rc = publish(job, &err);
	if (rc < 0) {
		fprintf(stderr,
			"vmunion materialize: %s\n"
			"vmunion materialize: %s is unfinished (vmstorage will not start on it); "
			"rerun the same command to resume, or remove it\n",
			err.message, job->dest);
		return rc == -EINVAL ? EXIT_REFUSED : EXIT_IO;
	}
	report(job, now_seconds() - start);
	return 0;
}

int command_materialize(int argc, char **argv)
{
	struct materialize_options opt;
	struct mtree_session session;
	struct job job;
	struct stage_space sp;
	struct error err = { { 0 } };
	int rc, count;

	rc = parse_options(argc, argv, &opt);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (opt.into)
		return commit_materialize(&opt, argv + optind, (size_t)(argc - optind));
	count = argc - optind - 1;
	rc = materialize_open(&session, &opt, argv + optind, (size_t)count, "materialize");
	if (rc != 0)
		return rc;
	memset(&job, 0, sizeof(job));
	job.opt = &opt;
	job.session = &session;
	job.tree = &session.tree;
	job.dest_fd = job.staging_fd = -1;
	job.stage = (struct stage){ .session = &session, .tree = &session.tree,
				    .mode = opt.mode, .jobs = opt.jobs, .quiet = opt.quiet,
				    .link_volume = -1, .staging_fd = -1, .crash_env = CRASH_ENV };
	rc = prepare(&job, argv[argc - 1], &sp, &err);
	if (rc == 0 && job.state != DEST_DONE && (opt.dry_run ? 0 : space_ok(&job, &sp, &err)) < 0)
		rc = -EINVAL;
	if (rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n", err.message);
		if (opt.json)
			print_json_error(err.message);
		/* Nothing is written before this point: status 2 ("rerun to
		 * resume") would send a script round a loop. */
		rc = rc == -EIO ? EXIT_IO : EXIT_REFUSED;
	} else if (opt.dry_run) {
		struct error space_err;

		rc = dry_run(&job, &sp, space_ok(&job, &sp, &space_err), &space_err);
	} else if (job.state == DEST_DONE) {
		report(&job, 0);
		rc = 0;
	} else {
		rc = materialize(&job);
	}
	job_free(&job);
	mtree_session_close(&session);
	return rc;
}

int materialize_open(struct mtree_session *session, const struct materialize_options *opt,
		     char **volumes, size_t count, const char *command)
{
	struct error err = { { 0 } };
	int rc;

	rc = mtree_session_open(session, volumes, count, opt->upper, &err);
	if (rc == 0) {
		/* What `vmunion check` calls errors (a metricID naming two series
		 * corrupts the merge silently) refuses the merge, as for the mount. */
		struct check_options check = { .collisions = !opt->no_check };

		rc = check_run(&session->plan, &check, NULL, &err);
		session->refused = rc < 0;
	}
	if (rc < 0) {
		fprintf(stderr, "vmunion %s: %s%s\n", command, session->refused ? "refused: " : "",
			err.message);
		if (opt->json)
			print_json_error(err.message);
		rc = session->refused ? EXIT_REFUSED : EXIT_IO;
		mtree_session_close(session);
		return rc;
	}
	return 0;
}
