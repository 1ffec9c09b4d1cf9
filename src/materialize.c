/* vmunion materialize: write the merged view (the plan, or an upper on top of
 * it) onto a real directory, crash-safe and resumable.
 *
 * DEST goes through these states; at each one a rerun of the same command
 * resumes, and vmstorage refuses to start (restore-in-progress, layout §4):
 *   1. DEST/restore-in-progress        created before anything else
 *   2. DEST/.vmunion-materialize.json  the marker: names the plan's fingerprint
 *   3. DEST/.vmunion-staging/...       the tree; each file is written to
 *                                      NAME.vmunion-tmp, fsynced, renamed
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
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mtree.h"

#define EXIT_REFUSED 1
#define EXIT_IO 2
#define EXIT_USAGE 64

#define MARKER ".vmunion-materialize.json"
#define MARKER_TMP MARKER ".tmp"
#define MARKER_FORMAT "vmunion-materialize/1"
#define STAGING ".vmunion-staging"
#define RESTORE_MARK "restore-in-progress"
#define TMP_SUFFIX ".vmunion-tmp"
#define COPY_CHUNK (8u << 20)
#define DEFAULT_JOBS 4
#define MAX_JOBS 64

#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif

enum mode { MODE_AUTO, MODE_REFLINK, MODE_COPY, MODE_LINK };
static const char *const mode_names[] = { "auto", "reflink", "copy", "link" };

/* How a file was, or would be, written. */
enum how { HOW_REFLINK, HOW_COPY_RANGE, HOW_READ_WRITE, HOW_LINK, HOW_WRITE, HOW_SYMLINK,
	   HOW_DONE, HOW_COUNT };
static const char *const how_names[] = { "reflink", "copy_file_range", "read_write", "link",
					 "write", "symlink", "done" };

struct options {
	enum mode mode;
	unsigned jobs;
	bool quiet, json, dry_run, no_space_check, no_check;
	const char *upper;
};

/* What DEST holds before we start. */
enum dest_state { DEST_NEW, DEST_RESUME };

struct job {
	const struct options *opt;
	struct mtree_session *session;
	const struct mtree *tree;
	char *dest;               /* resolved */
	bool dest_exists;
	enum dest_state state;
	int dest_fd, staging_fd;
	dev_t dest_dev;
	bool dest_reflinks;       /* DEST's filesystem is known to clone extents */
	bool *done;               /* per entry: published or staged by an earlier run */
	size_t *work;             /* indexes of the files to write */
	size_t work_count;
	uint64_t work_bytes;

	atomic_size_t next;
	atomic_uint_least64_t bytes_done;
	atomic_size_t files_done;
	atomic_size_t how_count[HOW_COUNT];
	atomic_uint running;
	atomic_bool failed;
	pthread_mutex_t lock;
	struct error err;
	int rc;
};

/* ---- small helpers ---- */

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *tmp_name(const char *path)
{
	return xasprintf("%s" TMP_SUFFIX, path);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Testing hook: VMUNION_MATERIALIZE_CRASH_AT=POINT[:N] kills the process
 * with SIGKILL at that point (marker, file:N, staged, publish:N, unmarked),
 * so the tests can stop it where a timed kill -9 cannot reliably land. */
static void crash_point(const char *point, size_t n)
{
	const char *at = getenv("VMUNION_MATERIALIZE_CRASH_AT");
	size_t len = strlen(point);

	if (!at || strncmp(at, point, len) != 0)
		return;
	if (at[len] == '\0' || (at[len] == ':' && strtoull(at + len + 1, NULL, 10) == n))
		raise(SIGKILL);
}

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

/* DEST must be missing, empty, or an unfinished materialize of this plan. */
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
		return 0;
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

/* Whether the file at e->path below dirfd is complete: written by an earlier
 * run, then renamed (or, at the top of DEST, published). */
static bool file_done(int dirfd, const struct mtree_entry *e)
{
	struct stat st;
	char *content = NULL, target[4096];
	size_t len;
	ssize_t n;
	bool done;

	if (dirfd < 0 || fstatat(dirfd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	switch (e->kind) {
	case MTREE_SYMLINK:
		n = readlinkat(dirfd, e->path, target, sizeof(target) - 1);
		if (!S_ISLNK(st.st_mode) || n < 0)
			return false;
		target[n] = '\0';
		return strcmp(target, e->source) == 0;
	case MTREE_SYNTH:
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size ||
		    read_file_at(dirfd, e->path, e->size + 1, &content, &len) < 0)
			return false;
		done = len == e->size && memcmp(content, e->content, len) == 0;
		free(content);
		return done;
	default:
		return S_ISREG(st.st_mode) && (uint64_t)st.st_size == e->size &&
		       same_time(st.st_mtim, e->mtime);
	}
}

/* Marks what earlier runs finished and lists the files to write. */
static int plan_work(struct job *job, struct error *err)
{
	const struct mtree *tree = job->tree;

	job->done = xcalloc(tree->count, sizeof(bool));
	job->work = xcalloc(tree->count, sizeof(size_t));
	for (size_t i = 0; i < tree->count; i++) {
		const struct mtree_entry *e = &tree->entries[i];
		bool published, staged = entry_exists(job->staging_fd, e->path);

		if (!strchr(e->path, '/') && e->kind != MTREE_DIR) {
			/* A staged one is renamed over what DEST holds at publish: a
			 * vmstorage started on the unfinished DEST leaves a flock.lock. */
			published = !staged && job->state == DEST_RESUME &&
				    file_done(job->dest_fd, e);
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
			published = t && t->kind == MTREE_DIR && job->done[t - tree->entries];
		}
		job->done[i] = published || (e->kind != MTREE_DIR && staged && file_done(job->staging_fd, e));
		if (e->kind != MTREE_DIR && !job->done[i]) {
			job->work[job->work_count++] = i;
			job->work_bytes += e->size;
		}
	}
	return 0;
}

static bool source_on_dest_fs(const struct job *job, const struct mtree_entry *e)
{
	struct stat st;

	if (e->kind == MTREE_LOWER)
		return job->session->volumes[e->volume].root.st.st_dev == job->dest_dev;
	return e->kind == MTREE_UPPER && fstat(job->session->upper.tree_fd, &st) == 0 &&
	       st.st_dev == job->dest_dev;
}

/* How a file would be written; the real one may fall back (auto mode). */
static enum how predict(const struct job *job, size_t i)
{
	const struct mtree_entry *e = &job->tree->entries[i];

	if (job->done[i])
		return HOW_DONE;
	if (e->kind == MTREE_SYNTH)
		return HOW_WRITE;
	if (e->kind == MTREE_SYMLINK)
		return HOW_SYMLINK;
	if (job->opt->mode == MODE_LINK && e->kind == MTREE_LOWER)
		return HOW_LINK;
	if (job->opt->mode == MODE_REFLINK ||
	    (job->opt->mode == MODE_AUTO && job->dest_reflinks && source_on_dest_fs(job, e)))
		return HOW_REFLINK;
	return HOW_COPY_RANGE;
}

/* Whether DEST's filesystem clones extents from the sources: FICLONE of one
 * source file into an unnamed O_TMPFILE in where (DEST, or the dir it will be
 * made in), which leaves nothing behind. 1 yes, 0 no, -1 unknown. */
static int probe_reflink(const struct job *job, const char *where)
{
	const struct mtree_entry *e = NULL;
	int src, tmp, ok;

	for (size_t i = 0; i < job->tree->count && !e; i++)
		if ((job->tree->entries[i].kind == MTREE_LOWER ||
		     job->tree->entries[i].kind == MTREE_UPPER) &&
		    job->tree->entries[i].size > 0 && source_on_dest_fs(job, &job->tree->entries[i]))
			e = &job->tree->entries[i];
	if (!e)
		return 0;
	src = mtree_open_source(job->session, e);
	if (src < 0)
		return -1;
	tmp = open(where, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (tmp < 0) {
		close(src);
		return -1;
	}
	ok = ioctl(tmp, FICLONE, src) == 0;
	close(tmp);
	close(src);
	return ok;
}

/* Where DEST will be: its filesystem decides links, reflinks and space. */
static int stat_dest_fs(struct job *job, struct statvfs *vfs, struct error *err)
{
	char *parent = xstrdup(job->dest), *slash = strrchr(parent, '/');
	const char *where = job->dest;
	struct statfs fs;
	struct stat st;
	int rc = 0;

	if (!job->dest_exists) {
		if (slash)
			slash[slash == parent ? 1 : 0] = '\0';
		where = parent;
	}
	if (stat(where, &st) < 0 || statvfs(where, vfs) < 0 || statfs(where, &fs) < 0)
		rc = error_set(err, errno, "%s: %s", where, strerror(errno));
	else {
		int probe;

		job->dest_dev = st.st_dev;
		job->dest_reflinks = fs.f_type == BTRFS_SUPER_MAGIC ||
				     fs.f_type == XFS_SUPER_MAGIC;
		probe = probe_reflink(job, where);
		if (probe >= 0)
			job->dest_reflinks = probe;
	}
	free(parent);
	return rc;
}

/* link and reflink need every source on DEST's filesystem: say so before any
 * byte is written rather than at the first file. */
static int check_same_fs(struct job *job, struct error *err)
{
	const struct mtree_session *s = job->session;
	struct stat st;

	if (job->opt->mode != MODE_LINK && job->opt->mode != MODE_REFLINK)
		return 0;
	/* Link mode copies the upper's own files: only reflink needs it near. */
	if (job->opt->mode == MODE_REFLINK && s->has_upper &&
	    fstat(s->upper.tree_fd, &st) == 0 && st.st_dev != job->dest_dev)
		return error_set(err, EXDEV,
				 "--mode reflink: the upper %s and DEST %s are on different "
				 "filesystems (use --mode auto or copy)",
				 s->upper_realpath, job->dest);
	for (size_t v = 0; v < s->volume_count; v++)
		if (s->volumes[v].root.st.st_dev != job->dest_dev)
			return error_set(err, EXDEV,
					 "--mode %s: the volume %s and DEST %s are on different "
					 "filesystems (hard links and reflinks cannot cross "
					 "them; use --mode auto or copy)",
					 mode_names[job->opt->mode], s->volumes[v].path, job->dest);
	if (job->opt->mode == MODE_REFLINK && !job->dest_reflinks)
		return error_set(err, EXDEV,
				 "--mode reflink: the filesystem of DEST %s cannot clone extents "
				 "(FICLONE fails; btrfs and XFS can); use --mode auto or copy",
				 job->dest);
	return 0;
}

struct space {
	uint64_t needed, free;
	uint64_t inodes_needed, inodes_free;
	bool inodes_known;
};

static void compute_space(const struct job *job, const struct statvfs *vfs, struct space *sp)
{
	uint64_t block = vfs->f_bsize ? vfs->f_bsize : 4096;

	memset(sp, 0, sizeof(*sp));
	sp->free = (uint64_t)vfs->f_bavail * vfs->f_frsize;
	sp->inodes_free = vfs->f_favail;
	sp->inodes_known = vfs->f_files != 0;
	for (size_t i = 0; i < job->tree->count; i++) {
		const struct mtree_entry *e = &job->tree->entries[i];
		enum how how = predict(job, i);

		if (job->done[i])
			continue;
		sp->inodes_needed++;
		if (e->kind == MTREE_DIR)
			sp->needed += block;
		else if (how == HOW_COPY_RANGE || how == HOW_READ_WRITE || how == HOW_WRITE)
			sp->needed += (e->size + block - 1) / block * block;
	}
	sp->inodes_needed += 3; /* the marks and the staging dir */
	sp->needed += 2 * block;
}

static int check_space(const struct job *job, const struct space *sp, struct error *err)
{
	char need[32], have[32];

	if (job->opt->mode == MODE_LINK || job->opt->no_space_check)
		return 0;
	if (sp->needed > sp->free)
		return error_set(err, ENOSPC,
				 "%s: not enough free space: the merged view needs %s (%zu files "
				 "to write), the filesystem has %s available; nothing was written",
				 job->dest, format_bytes(sp->needed, need, sizeof(need)),
				 job->work_count, format_bytes(sp->free, have, sizeof(have)));
	if (sp->inodes_known && sp->inodes_needed > sp->inodes_free)
		return error_set(err, ENOSPC,
				 "%s: not enough free inodes: needs %" PRIu64 ", the filesystem "
				 "has %" PRIu64 "; nothing was written",
				 job->dest, sp->inodes_needed, sp->inodes_free);
	return 0;
}

/* ---- writing ---- */

static void fail(struct job *job, int rc, const struct error *err)
{
	pthread_mutex_lock(&job->lock);
	if (!atomic_load(&job->failed)) {
		job->err = *err;
		job->rc = rc;
		atomic_store(&job->failed, true);
	}
	pthread_mutex_unlock(&job->lock);
}

static int staged_error(const struct job *job, const char *path, const char *what, int rc,
			struct error *err)
{
	return error_set(err, -rc, "%s/%s/%s: %s: %s", job->dest, STAGING, path, what,
			 strerror(-rc));
}

/* Data and mtime made durable, then the final name: a file is either absent
 * or complete under its name. */
static int finish_file(const struct job *job, int fd, const struct mtree_entry *e,
		       const char *tmp, struct error *err)
{
	struct timespec times[2] = { e->mtime, e->mtime };

	if (futimens(fd, times) < 0 || fsync(fd) < 0)
		return staged_error(job, tmp, "cannot sync", -errno, err);
	if (renameat(job->staging_fd, tmp, job->staging_fd, e->path) < 0)
		return staged_error(job, e->path, "cannot rename into place", -errno, err);
	return 0;
}

static int write_synth(struct job *job, const struct mtree_entry *e, struct error *err)
{
	char *tmp = tmp_name(e->path);
	int fd, rc;

	fd = openat(job->staging_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = staged_error(job, tmp, "cannot create", -errno, err);
	} else {
		rc = write_all(fd, e->content, e->size);
		rc = rc < 0 ? staged_error(job, tmp, "cannot write", rc, err)
			    : finish_file(job, fd, e, tmp, err);
		close(fd);
	}
	if (rc == 0)
		atomic_fetch_add(&job->bytes_done, e->size);
	free(tmp);
	return rc;
}

static int write_symlink(struct job *job, const struct mtree_entry *e, struct error *err)
{
	if (unlinkat(job->staging_fd, e->path, 0) < 0 && errno != ENOENT)
		return staged_error(job, e->path, "cannot replace", -errno, err);
	if (symlinkat(e->source, job->staging_fd, e->path) < 0)
		return staged_error(job, e->path, "cannot create symlink", -errno, err);
	return 0;
}

static int link_file(struct job *job, const struct mtree_entry *e, struct error *err)
{
	int volume_fd = job->session->volumes[e->volume].dirfd;
	char *tmp = tmp_name(e->path), *source;
	int rc = 0;

	/* A copy that an earlier run in another mode left half done. */
	unlinkat(job->staging_fd, tmp, 0);
	free(tmp);
	if (linkat(volume_fd, e->source, job->staging_fd, e->path, 0) < 0)
		rc = -errno;
	if (rc == -EEXIST) /* staged by an earlier run, but not this file */
		rc = unlinkat(job->staging_fd, e->path, 0) < 0 ||
				     linkat(volume_fd, e->source, job->staging_fd, e->path, 0) < 0
			     ? -errno
			     : 0;
	if (rc < 0) {
		source = mtree_source_name(job->session, e);
		if (rc == -EXDEV)
			error_set(err, EXDEV,
				  "cannot hard-link %s to %s/%s/%s: they are on different "
				  "filesystems (use --mode auto or copy)",
				  source, job->dest, STAGING, e->path);
		else
			error_set(err, -rc, "cannot hard-link %s to %s/%s/%s: %s", source,
				  job->dest, STAGING, e->path, strerror(-rc));
		free(source);
		return rc;
	}
	atomic_fetch_add(&job->bytes_done, e->size);
	return 0;
}

static bool copy_range_unsupported(int e)
{
	return e == EXDEV || e == ENOSYS || e == EOPNOTSUPP || e == EINVAL;
}

/* Copies size bytes from src to dst: reflink, else copy_file_range, else
 * read/write, as the mode allows. Sets *how. */
static int copy_bytes(struct job *job, int src, int dst, uint64_t size, enum how *how,
		      char **buf, const char **what)
{
	uint64_t done = 0;

	*what = "cannot copy";
	if (job->opt->mode == MODE_AUTO || job->opt->mode == MODE_REFLINK) {
		if (ioctl(dst, FICLONE, src) == 0) {
			*how = HOW_REFLINK;
			atomic_fetch_add(&job->bytes_done, size);
			return 0;
		}
		if (job->opt->mode == MODE_REFLINK) {
			*what = "cannot reflink (--mode reflink needs DEST on the source's "
				"filesystem, and one that can clone extents: btrfs, XFS...)";
			return -errno;
		}
	}
	*how = HOW_COPY_RANGE;
	while (done < size) {
		uint64_t want = size - done < COPY_CHUNK ? size - done : COPY_CHUNK;
		ssize_t n = copy_file_range(src, NULL, dst, NULL, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && done == 0 && copy_range_unsupported(errno))
			break;
		if (n < 0)
			return -errno;
		if (n == 0) {
			*what = "the source file is shorter than when it was scanned";
			return -EIO;
		}
		done += (uint64_t)n;
		atomic_fetch_add(&job->bytes_done, (uint64_t)n);
	}
	if (done == size)
		return 0;
	*how = HOW_READ_WRITE;
	if (!*buf)
		*buf = xmalloc(1u << 20);
	while (done < size) {
		ssize_t n = read(src, *buf, 1u << 20);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			*what = "the source file is shorter than when it was scanned";
			return -EIO;
		}
		rc = write_all(dst, *buf, (size_t)n);
		if (rc < 0)
			return rc;
		done += (uint64_t)n;
		atomic_fetch_add(&job->bytes_done, (uint64_t)n);
	}
	return 0;
}

static int copy_file(struct job *job, const struct mtree_entry *e, enum how *how, char **buf,
		     struct error *err)
{
	char *tmp = NULL, *source = mtree_source_name(job->session, e);
	const char *what = NULL;
	int src, dst = -1, rc;
	struct stat st;

	src = mtree_open_source(job->session, e);
	if (src < 0) {
		rc = error_set(err, -src, "%s: cannot open: %s", source, strerror(-src));
		goto out;
	}
	if (fstat(src, &st) < 0) {
		rc = error_set(err, errno, "%s: %s", source, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size != e->size) {
		rc = error_set(err, EIO,
			       "%s: changed since it was scanned (%jd bytes, expected %" PRIu64
			       "); nothing was published",
			       source, (intmax_t)st.st_size, e->size);
		goto out;
	}
	(void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
	tmp = tmp_name(e->path);
	dst = openat(job->staging_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (dst < 0) {
		rc = staged_error(job, tmp, "cannot create", -errno, err);
		goto out;
	}
	rc = copy_bytes(job, src, dst, e->size, how, buf, &what);
	if (rc < 0)
		error_set(err, -rc, "%s: %s to %s/%s/%s: %s", source, what, job->dest, STAGING,
			  tmp, strerror(-rc));
	else
		rc = finish_file(job, dst, e, tmp, err);
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	free(tmp);
	free(source);
	return rc;
}

static int write_entry(struct job *job, const struct mtree_entry *e, enum how *how, char **buf,
		       struct error *err)
{
	switch (e->kind) {
	case MTREE_SYNTH:
		*how = HOW_WRITE;
		return write_synth(job, e, err);
	case MTREE_SYMLINK:
		*how = HOW_SYMLINK;
		return write_symlink(job, e, err);
	case MTREE_LOWER:
		if (job->opt->mode == MODE_LINK) {
			*how = HOW_LINK;
			return link_file(job, e, err);
		}
		/* fall through */
	default:
		return copy_file(job, e, how, buf, err);
	}
}

static void *worker(void *arg)
{
	struct job *job = arg;
	char *buf = NULL;

	while (!atomic_load(&job->failed)) {
		size_t i = atomic_fetch_add(&job->next, 1), n;
		const struct mtree_entry *e;
		struct error err = { { 0 } };
		enum how how = HOW_WRITE;
		int rc;

		if (i >= job->work_count)
			break;
		e = &job->tree->entries[job->work[i]];
		rc = write_entry(job, e, &how, &buf, &err);
		if (rc < 0) {
			fail(job, rc, &err);
			break;
		}
		atomic_fetch_add(&job->how_count[how], 1);
		n = atomic_fetch_add(&job->files_done, 1) + 1;
		crash_point("file", n);
	}
	free(buf);
	atomic_fetch_sub(&job->running, 1);
	return NULL;
}

/* ---- progress ---- */

static void print_progress(struct job *job, double start, bool final)
{
	uint64_t done = atomic_load(&job->bytes_done), total = job->work_bytes;
	double elapsed = now_seconds() - start, rate = elapsed > 0 ? (double)done / elapsed : 0;
	double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
	int width = 24, filled = total ? (int)((double)done * width / (double)total) : width;
	char a[32], b[32], r[32];

	if (filled > width)
		filled = width;
	fprintf(stderr, "\r[%.*s%.*s] %3d%% %s / %s  %zu/%zu files  %s/s  ETA %d:%02d\033[K%s",
		filled, "########################", width - filled, "........................",
		total ? (int)((double)done * 100 / (double)total) : 100,
		format_bytes(done, a, sizeof(a)), format_bytes(total, b, sizeof(b)),
		atomic_load(&job->files_done), job->work_count,
		format_bytes((uint64_t)rate, r, sizeof(r)), (int)eta / 60, (int)eta % 60, final ? "\n" : "");
}

static int run_workers(struct job *job, double start)
{
	unsigned jobs = job->opt->jobs;
	bool tty = !job->opt->quiet && isatty(STDERR_FILENO);
	pthread_t threads[MAX_JOBS];
	unsigned started = 0;

	if (jobs > job->work_count)
		jobs = job->work_count ? (unsigned)job->work_count : 1;
	atomic_store(&job->running, jobs);
	for (; started < jobs; started++)
		if (pthread_create(&threads[started], NULL, worker, job) != 0)
			break;
	if (started < jobs) {
		struct error err;

		atomic_fetch_sub(&job->running, jobs - started);
		fail(job, error_set(&err, EAGAIN, "cannot start %u threads", jobs), &err);
	}
	while (atomic_load(&job->running) > 0) {
		struct timespec pause = { 0, 200 * 1000 * 1000 };

		nanosleep(&pause, NULL);
		if (tty)
			print_progress(job, start, false);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (tty)
		print_progress(job, start, true);
	return atomic_load(&job->failed) ? job->rc : 0;
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
		if (mkdir(job->dest, 0755) < 0)
			return dest_error(job, "cannot create", err);
		job->dest_fd = open(job->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (job->dest_fd < 0)
			return dest_error(job, "cannot open", err);
		rc = lock_dest(job, err);
		if (rc < 0)
			return rc;
	}
	if (job->state == DEST_NEW) {
		fd = openat(job->dest_fd, RESTORE_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return dest_error(job, "cannot create " RESTORE_MARK, err);
		close(fd);
		if (fsync(job->dest_fd) < 0)
			return dest_error(job, "cannot sync", err);
		text = marker_json(job);
		fd = openat(job->dest_fd, MARKER_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
		crash_point("marker", 0);
	}
	unlinkat(job->dest_fd, MARKER_TMP, 0);
	if (job->staging_fd < 0) {
		if (mkdirat(job->dest_fd, STAGING, 0755) < 0 && errno != EEXIST)
			return dest_error(job, "cannot create " STAGING, err);
		job->staging_fd = openat(job->dest_fd, STAGING, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (job->staging_fd < 0)
			return dest_error(job, "cannot open " STAGING, err);
	}
	return 0;
}

static int make_dirs(struct job *job, struct error *err)
{
	for (size_t i = 0; i < job->tree->count; i++) {
		const struct mtree_entry *e = &job->tree->entries[i];
		struct stat st;

		if (e->kind != MTREE_DIR || job->done[i])
			continue;
		if (mkdirat(job->staging_fd, e->path, 0755) < 0 &&
		    (errno != EEXIST || fstatat(job->staging_fd, e->path, &st,
						AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			return staged_error(job, e->path, "cannot create directory",
					    errno == EEXIST ? -ENOTDIR : -errno, err);
	}
	return 0;
}

/* Directory mtimes as in the source, children first: creating an entry moves
 * its parent's mtime. */
static int set_dir_times(struct job *job, struct error *err)
{
	for (size_t i = job->tree->count; i-- > 0;) {
		const struct mtree_entry *e = &job->tree->entries[i];
		struct timespec times[2] = { e->mtime, e->mtime };

		if (e->kind != MTREE_DIR || job->done[i])
			continue;
		if (utimensat(job->staging_fd, e->path, times, AT_SYMLINK_NOFOLLOW) < 0)
			return staged_error(job, e->path, "cannot set mtime", -errno, err);
	}
	return 0;
}

/* Steps 4 and 5. */
static int publish(struct job *job, struct error *err)
{
	size_t published = 0;

	if (syncfs(job->staging_fd) < 0)
		return dest_error(job, "cannot sync the filesystem", err);
	crash_point("staged", 0);
	for (size_t i = 0; i < job->tree->count; i++) {
		const char *name = job->tree->entries[i].path;

		/* Not staged: published by an earlier run (plan_work checked). */
		if (strchr(name, '/') || !entry_exists(job->staging_fd, name))
			continue;
		if (renameat(job->staging_fd, name, job->dest_fd, name) < 0)
			return error_set(err, errno, "%s/%s/%s: cannot publish: %s", job->dest,
					 STAGING, name, strerror(errno));
		crash_point("publish", ++published);
	}
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	if (unlinkat(job->dest_fd, STAGING, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return error_set(err, errno, "%s/%s: cannot remove: %s (is something left in it?)",
				 job->dest, STAGING, strerror(errno));
	if (unlinkat(job->dest_fd, RESTORE_MARK, 0) < 0 && errno != ENOENT)
		return dest_error(job, "cannot remove " RESTORE_MARK, err);
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	crash_point("unmarked", 0);
	if (unlinkat(job->dest_fd, MARKER, 0) < 0 && errno != ENOENT)
		return dest_error(job, "cannot remove " MARKER, err);
	if (fsync(job->dest_fd) < 0)
		return dest_error(job, "cannot sync", err);
	return 0;
}

/* ---- reports ---- */

static void add_modes(cJSON *json, const size_t *counts)
{
	cJSON *modes = cJSON_CreateObject();

	for (int h = 0; h < HOW_COUNT; h++)
		cJSON_AddNumberToObject(modes, how_names[h], (double)counts[h]);
	cJSON_AddItemToObject(json, "modes", modes);
}

static void print_json(cJSON *json)
{
	char *text = cJSON_Print(json);

	puts(text);
	cJSON_free(text);
	cJSON_Delete(json);
}

static int dry_run(struct job *job, const struct space *sp)
{
	size_t counts[HOW_COUNT] = { 0 };
	cJSON *json = job->opt->json ? cJSON_CreateObject() : NULL;
	cJSON *entries = json ? cJSON_CreateArray() : NULL;
	char a[32], b[32], c[32], d[32];
	struct error err;
	int space_rc = check_space(job, sp, &err);

	for (size_t i = 0; i < job->tree->count; i++) {
		const struct mtree_entry *e = &job->tree->entries[i];
		enum how how;

		if (e->kind == MTREE_DIR)
			continue;
		how = predict(job, i);
		counts[how]++;
		if (json) {
			cJSON *item = cJSON_CreateObject();

			cJSON_AddStringToObject(item, "path", e->path);
			cJSON_AddStringToObject(item, "mode", how_names[how]);
			cJSON_AddNumberToObject(item, "size", (double)e->size);
			cJSON_AddItemToArray(entries, item);
		} else {
			printf("%-16s %12" PRIu64 "  %s\n", how_names[how], e->size, e->path);
		}
	}
	if (json) {
		cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
		cJSON_AddBoolToObject(json, "dry_run", true);
		cJSON_AddStringToObject(json, "dest", job->dest);
		cJSON_AddBoolToObject(json, "resume", job->state == DEST_RESUME);
		cJSON_AddNumberToObject(json, "files", (double)job->tree->files);
		cJSON_AddNumberToObject(json, "dirs", (double)job->tree->dirs);
		cJSON_AddNumberToObject(json, "bytes", (double)job->tree->file_bytes);
		cJSON_AddNumberToObject(json, "files_to_write", (double)job->work_count);
		cJSON_AddNumberToObject(json, "bytes_to_write", (double)job->work_bytes);
		cJSON_AddNumberToObject(json, "space_needed", (double)sp->needed);
		cJSON_AddNumberToObject(json, "space_free", (double)sp->free);
		add_modes(json, counts);
		cJSON_AddItemToObject(json, "entries", entries);
		print_json(json);
	} else if (!job->opt->quiet) {
		fprintf(stderr,
			"vmunion materialize: dry run: %zu of %zu files (%s of %s) would be "
			"written to %s%s, %zu directories; space needed %s, available %s\n",
			job->work_count, job->tree->files,
			format_bytes(job->work_bytes, a, sizeof(a)),
			format_bytes(job->tree->file_bytes, b, sizeof(b)), job->dest,
			job->state == DEST_RESUME ? " (resuming an unfinished run)" : "",
			job->tree->dirs, format_bytes(sp->needed, c, sizeof(c)),
			format_bytes(sp->free, d, sizeof(d)));
	}
	if (space_rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n", err.message);
		return EXIT_REFUSED;
	}
	return 0;
}

static void report(struct job *job, double seconds)
{
	size_t counts[HOW_COUNT];
	char a[32], b[32];

	for (int h = 0; h < HOW_COUNT; h++)
		counts[h] = atomic_load(&job->how_count[h]);
	counts[HOW_DONE] = job->tree->files - job->work_count;
	if (job->opt->json) {
		cJSON *json = cJSON_CreateObject();
		char fingerprint[17];

		snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, job->tree->fingerprint);
		cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
		cJSON_AddStringToObject(json, "dest", job->dest);
		cJSON_AddStringToObject(json, "fingerprint", fingerprint);
		cJSON_AddStringToObject(json, "mode", mode_names[job->opt->mode]);
		cJSON_AddNumberToObject(json, "jobs", job->opt->jobs);
		cJSON_AddBoolToObject(json, "resumed", job->state == DEST_RESUME);
		cJSON_AddNumberToObject(json, "files", (double)job->tree->files);
		cJSON_AddNumberToObject(json, "dirs", (double)job->tree->dirs);
		cJSON_AddNumberToObject(json, "bytes", (double)job->tree->file_bytes);
		cJSON_AddNumberToObject(json, "files_written", (double)job->work_count);
		cJSON_AddNumberToObject(json, "bytes_written", (double)job->work_bytes);
		cJSON_AddNumberToObject(json, "seconds", seconds);
		add_modes(json, counts);
		print_json(json);
	}
	if (job->opt->quiet)
		return;
	fprintf(stderr, "vmunion materialize: %s: %zu files (%s), %zu written (%s) in %.1f s:",
		job->dest, job->tree->files,
		format_bytes(job->tree->file_bytes, a, sizeof(a)), job->work_count,
		format_bytes(job->work_bytes, b, sizeof(b)), seconds);
	for (int h = 0; h < HOW_COUNT; h++)
		if (counts[h])
			fprintf(stderr, " %s %zu", how_names[h], counts[h]);
	fputc('\n', stderr);
}

/* ---- the command ---- */

static void usage(FILE *out)
{
	fputs("Usage: vmunion materialize [OPTIONS] VOLUME... DEST\n"
	      "\n"
	      "Writes the merged view of the volumes (exactly what vmunionfs shows) into\n"
	      "DEST, a missing or empty directory, as a volume vmstorage can start on.\n"
	      "Crash-safe: DEST keeps restore-in-progress (vmstorage refuses to start)\n"
	      "until the end, and rerunning the same command resumes an interrupted run.\n"
	      "\n"
	      "Options:\n"
	      "  --upper DIR      write the view of a vmunionfs upper (the volumes plus\n"
	      "                   what a vmstorage changed on the mount); it must have\n"
	      "                   been made for the same volumes, in the same order\n"
	      "  --mode MODE      auto (default): reflink where DEST's filesystem can,\n"
	      "                   else copy_file_range, else read/write;\n"
	      "                   reflink: reflinks only, fail where it cannot;\n"
	      "                   copy: copy_file_range, else read/write;\n"
	      "                   link: hard-link part files (same filesystem only);\n"
	      "                   files vmstorage rewrites are always written fresh\n"
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
	      "Exit status: 0 done; 1 refused before writing (the volumes cannot be\n"
	      "merged, DEST is not empty, inside a volume, of another plan, too small,\n"
	      "or on another filesystem for link/reflink); 2 an I/O error (DEST is left\n"
	      "unfinished: rerun to resume); 64 wrong usage.\n",
	      out);
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option options[] = {
		{ "upper", required_argument, NULL, 'u' },
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
	opt->jobs = DEFAULT_JOBS;
	while ((c = getopt_long(argc, argv, "u:m:j:nqh", options, NULL)) != -1) {
		char *end;
		unsigned long n;

		switch (c) {
		case 'u':
			opt->upper = optarg;
			break;
		case 'm':
			for (opt->mode = MODE_AUTO; opt->mode <= MODE_LINK; opt->mode++)
				if (strcmp(optarg, mode_names[opt->mode]) == 0)
					break;
			if (opt->mode > MODE_LINK) {
				fprintf(stderr, "vmunion materialize: unknown mode '%s' (auto, "
						"reflink, copy or link)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > MAX_JOBS) {
				fprintf(stderr, "vmunion materialize: --jobs takes 1..%d\n", MAX_JOBS);
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
	if (argc - optind < 2) {
		fputs("vmunion materialize: give at least one VOLUME and DEST "
		      "(see vmunion materialize --help)\n", stderr);
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
	free(job->done);
	free(job->work);
	free(job->dest);
	pthread_mutex_destroy(&job->lock);
}

/* Everything that can refuse runs before the first write. */
static int prepare(struct job *job, const char *dest, struct space *sp, struct error *err)
{
	struct statvfs vfs;
	int rc;

	job->dest = resolve_path(dest);
	if (!job->dest)
		return error_set(err, errno ? errno : EINVAL,
				 "%s: DEST's parent directory must exist: %s", dest,
				 strerror(errno ? errno : EINVAL));
	if ((rc = check_location(job, err)) < 0 || (rc = lock_volumes(job, err)) < 0 ||
	    (rc = inspect_dest(job, err)) < 0 || (rc = stat_dest_fs(job, &vfs, err)) < 0 ||
	    (rc = check_same_fs(job, err)) < 0 || (rc = plan_work(job, err)) < 0)
		return rc;
	compute_space(job, &vfs, sp);
	return 0;
}

static int materialize(struct job *job, const struct space *sp)
{
	double start = now_seconds();
	struct error err;
	int rc;

	rc = check_space(job, sp, &err);
	if (rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n", err.message);
		return EXIT_REFUSED;
	}
	rc = begin(job, &err);
	if (rc == 0)
		rc = make_dirs(job, &err);
	if (rc == 0) {
		rc = run_workers(job, start);
		if (rc < 0)
			err = job->err;
	}
	if (rc == 0)
		rc = set_dir_times(job, &err);
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
	struct mtree_session session;
	struct options opt;
	struct job job;
	struct space sp;
	struct error err = { { 0 } };
	int rc, count;

	rc = parse_options(argc, argv, &opt);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	count = argc - optind - 1;
	rc = mtree_session_open(&session, argv + optind, (size_t)count, opt.upper, &err);
	if (rc == 0) {
		/* What `vmunion check` calls errors (a metricID naming two series
		 * corrupts the merge silently) refuses the merge, as for the mount. */
		struct check_options check = { .collisions = !opt.no_check };

		rc = check_run(&session.plan, &check, NULL, &err);
		session.refused = rc < 0;
	}
	if (rc < 0) {
		fprintf(stderr, "vmunion materialize: %s%s\n", session.refused ? "refused: " : "",
			err.message);
		if (opt.json)
			print_json_error(err.message);
		rc = session.refused ? EXIT_REFUSED : EXIT_IO;
		mtree_session_close(&session);
		return rc;
	}
	memset(&job, 0, sizeof(job));
	job.opt = &opt;
	job.session = &session;
	job.tree = &session.tree;
	job.dest_fd = job.staging_fd = -1;
	pthread_mutex_init(&job.lock, NULL);
	rc = prepare(&job, argv[argc - 1], &sp, &err);
	if (rc < 0) {
		fprintf(stderr, "vmunion materialize: %s\n", err.message);
		if (opt.json)
			print_json_error(err.message);
		rc = rc == -EINVAL || rc == -ENOTEMPTY || rc == -EXDEV || rc == -ENOTDIR ||
				     rc == -EEXIST || rc == -EBUSY /* a vmstorage holds a volume */
			     ? EXIT_REFUSED
			     : EXIT_IO;
	} else if (opt.dry_run) {
		rc = dry_run(&job, &sp);
	} else {
		rc = materialize(&job, &sp);
	}
	job_free(&job);
	mtree_session_close(&session);
	return rc;
}
