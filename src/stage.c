/* SPDX-License-Identifier: Apache-2.0 */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define TMP_SUFFIX ".vmunion-tmp"
#define COPY_CHUNK (8u << 20)

const char *const copy_mode_names[MODE_COUNT] = { "auto", "reflink", "copy", "link" };
const char *const how_names[HOW_COUNT] = { "reflink", "copy_file_range", "read_write", "link",
					   "write", "symlink", "done" };

#ifdef VMUNION_TEST_HOOKS
void test_crash_point(const char *env, const char *point, size_t n)
{
	const char *at = env ? getenv(env) : NULL;
	size_t len = strlen(point);

	if (!at || strncmp(at, point, len) != 0)
		return;
	if (at[len] == '\0' || (at[len] == ':' && strtoull(at + len + 1, NULL, 10) == n))
		raise(SIGKILL);
}
#endif

int stage_parse_mode(const char *name, enum copy_mode *mode)
{
	for (int m = 0; m < MODE_COUNT; m++)
		if (strcmp(name, copy_mode_names[m]) == 0) {
			*mode = (enum copy_mode)m;
			return 0;
		}
	return -EINVAL;
}

void stage_init(struct stage *stage)
{
	stage->done = xcalloc(stage->tree->count ? stage->tree->count : 1, sizeof(bool));
	stage->work = xcalloc(stage->tree->count ? stage->tree->count : 1, sizeof(size_t));
	stage->batch = xcalloc(stage->tree->count ? stage->tree->count : 1, sizeof(size_t));
	stage->batch_count = 0;
	stage->batch_bytes = 0;
	stage->work_count = 0;
	stage->work_bytes = 0;
	pthread_mutex_init(&stage->lock, NULL);
	pthread_cond_init(&stage->finished, NULL);
}

void stage_free(struct stage *stage)
{
	free(stage->done);
	free(stage->work);
	free(stage->batch);
	stage->done = NULL;
	stage->work = NULL;
	stage->batch = NULL;
	pthread_mutex_destroy(&stage->lock);
	pthread_cond_destroy(&stage->finished);
}

void stage_mark(struct stage *stage, size_t i, bool done)
{
	const struct mtree_entry *e = &stage->tree->entries[i];

	stage->done[i] = done;
	if (e->kind != MTREE_DIR && !done) {
		stage->work[stage->work_count++] = i;
		stage->work_bytes += e->size;
	}
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool stage_file_done(int dirfd, const struct mtree_entry *e)
{
	struct stat st;
	char *content = NULL, target[4096];
	size_t len;
	ssize_t n;
	bool done;

	if (dirfd < 0 || fstatat(dirfd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	switch (e->kind) {
	case MTREE_DIR:
		return S_ISDIR(st.st_mode);
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

bool stage_on_same_fs(const struct stage *stage, const struct mtree_entry *e)
{
	struct stat st;

	if (e->kind == MTREE_LOWER)
		return stage->session->volumes[e->volume].root.st.st_dev == stage->dev;
	return e->kind == MTREE_UPPER && fstat(stage->session->upper.tree_fd, &st) == 0 &&
	       st.st_dev == stage->dev;
}

static bool links(const struct stage *stage, const struct mtree_entry *e)
{
	return e->kind == MTREE_LOWER &&
	       (stage->mode == MODE_LINK || e->volume == stage->link_volume);
}

enum how stage_predict(const struct stage *stage, size_t i)
{
	const struct mtree_entry *e = &stage->tree->entries[i];

	if (stage->done[i])
		return HOW_DONE;
	if (e->kind == MTREE_SYNTH)
		return HOW_WRITE;
	if (e->kind == MTREE_SYMLINK)
		return HOW_SYMLINK;
	if (links(stage, e))
		return HOW_LINK;
	if (stage->mode == MODE_REFLINK ||
	    (stage->mode == MODE_AUTO && stage->reflinks && stage_on_same_fs(stage, e)))
		return HOW_REFLINK;
	return HOW_COPY_RANGE;
}

/* FICLONE of one source file on the same filesystem into an unnamed
 * O_TMPFILE, which leaves nothing behind; the filesystem type decides when
 * the probe cannot run. */
void stage_probe_reflink(struct stage *stage, const char *where)
{
	const struct mtree *tree = stage->tree;
	const struct mtree_entry *e = NULL;
	struct statfs fs;
	int src, tmp;

	stage->reflinks = statfs(where, &fs) == 0 &&
			  (fs.f_type == BTRFS_SUPER_MAGIC || fs.f_type == 0x58465342 /* XFS */);
	for (size_t i = 0; i < tree->count && !e; i++)
		if ((tree->entries[i].kind == MTREE_LOWER || tree->entries[i].kind == MTREE_UPPER) &&
		    tree->entries[i].size > 0 && stage_on_same_fs(stage, &tree->entries[i]) &&
		    !links(stage, &tree->entries[i]))
			e = &tree->entries[i];
	if (!e) {
		stage->reflinks = false;
		return;
	}
	src = mtree_open_source(stage->session, e);
	if (src < 0)
		return;
	tmp = open(where, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (tmp >= 0) {
		stage->reflinks = ioctl(tmp, FICLONE, src) == 0;
		close(tmp);
	}
	close(src);
}

int stage_check_same_fs(const struct stage *stage, const char *dest, struct error *err)
{
	const struct mtree_session *s = stage->session;
	const char *mode = copy_mode_names[stage->mode];
	struct stat st;

	if (stage->mode != MODE_LINK && stage->mode != MODE_REFLINK)
		return 0;
	/* Link mode copies the upper's own files: only reflink needs it near. */
	if (stage->mode == MODE_REFLINK && s->has_upper &&
	    fstat(s->upper.tree_fd, &st) == 0 && st.st_dev != stage->dev)
		return error_set(err, EXDEV,
				 "--mode reflink: the upper %s and %s are on different "
				 "filesystems (use --mode auto or copy)",
				 s->upper_realpath, dest);
	for (size_t v = 0; v < s->volume_count; v++)
		if ((int)v != stage->link_volume && s->volumes[v].root.st.st_dev != stage->dev)
			return error_set(err, EXDEV,
					 "--mode %s: the volume %s and %s are on different "
					 "filesystems (hard links and reflinks cannot cross "
					 "them; use --mode auto or copy)",
					 mode, s->volumes[v].path, dest);
	if (stage->mode == MODE_REFLINK && !stage->reflinks)
		return error_set(err, EXDEV,
				 "--mode reflink: the filesystem of %s cannot clone extents "
				 "(FICLONE fails; btrfs and XFS can); use --mode auto or copy",
				 dest);
	return 0;
}

void stage_space(const struct stage *stage, const struct statvfs *vfs, struct stage_space *sp)
{
	uint64_t block = vfs->f_bsize ? vfs->f_bsize : 4096;

	memset(sp, 0, sizeof(*sp));
	sp->free = (uint64_t)vfs->f_bavail * vfs->f_frsize;
	sp->inodes_free = vfs->f_favail;
	sp->inodes_known = vfs->f_files != 0;
	for (size_t i = 0; i < stage->tree->count; i++) {
		const struct mtree_entry *e = &stage->tree->entries[i];
		enum how how = stage_predict(stage, i);

		if (stage->done[i])
			continue;
		if (e->kind == MTREE_DIR)
			sp->needed += block;
		if (how == HOW_LINK)
			continue; /* a hard link takes a directory entry, no inode */
		sp->inodes_needed++;
		if (how == HOW_COPY_RANGE || how == HOW_READ_WRITE || how == HOW_WRITE)
			sp->needed += (e->size + block - 1) / block * block;
	}
	sp->inodes_needed += 3; /* the marks and the staging dir */
	sp->needed += 2 * block;
}

int stage_check_space(const struct stage *stage, const struct stage_space *sp,
		      const char *dest, struct error *err)
{
	char need[32], have[32];

	if (sp->needed > sp->free)
		return error_set(err, ENOSPC,
				 "%s: not enough free space: the merged view needs %s (%zu files "
				 "to write), the filesystem has %s available; nothing was written",
				 dest, format_bytes(sp->needed, need, sizeof(need)),
				 stage->work_count, format_bytes(sp->free, have, sizeof(have)));
	if (sp->inodes_known && sp->inodes_needed > sp->inodes_free)
		return error_set(err, ENOSPC,
				 "%s: not enough free inodes: needs %" PRIu64 ", the filesystem "
				 "has %" PRIu64 "; nothing was written",
				 dest, sp->inodes_needed, sp->inodes_free);
	return 0;
}

/* ---- writing one file ---- */

static char *tmp_name(const char *path)
{
	return xasprintf("%s" TMP_SUFFIX, path);
}

static int staged_error(const struct stage *stage, const char *path, const char *what, int rc,
			struct error *err)
{
	return error_set(err, -rc, "%s/%s: %s: %s", stage->staging_path, path, what,
			 strerror(-rc));
}

/* ---- modes and owners ---- */

int stage_give_attr(int fd, const struct plan_attr *attr, const struct acl_value *acl,
		    const char **what)
{
	struct plan_attr narrowed = *attr;
	struct stat st = { .st_uid = attr->uid, .st_gid = attr->gid };
	uint32_t mode;
	bool carried;

	*what = "cannot set the owner";
	if (fchown(fd, attr->uid, attr->gid) < 0) {
		if (errno != EPERM)
			return -errno;
		/* Not root: the group still, where this user is in it. */
		if ((fchown(fd, (uid_t)-1, attr->gid) < 0 && errno != EPERM) || fstat(fd, &st) < 0)
			return -errno;
	}
	carried = st.st_uid == attr->uid && st.st_gid == attr->gid;
	if (acl && acl->size)
		narrowed.mode = acl_fold_mode(acl, attr->mode);
	/* Kept, the owner gets attr's mode and the ACL narrows it. Another
	 * owner or group gets only what attr and the ACL grant it. */
	mode = carried ? attr->mode : plan_attr_mode_as(&narrowed, st.st_uid, st.st_gid);
	*what = "cannot set the mode";
	if (fchmod(fd, mode & 07777) < 0)
		return -errno;
	if (!carried || !acl || !acl->size)
		return 0;
	*what = "cannot set the ACL";
	if (fsetxattr(fd, ACL_ACCESS_XATTR, acl->value, acl->size, 0) == 0)
		return 0;
	if (errno != ENOTSUP) /* a filesystem without ACLs: the folded mode */
		return -errno;
	*what = "cannot set the mode";
	return fchmod(fd, narrowed.mode & 07777) < 0 ? -errno : 0;
}

/* ---- durability in batches ----
 *
 * A rerun trusts a staged file by its name, size and mtime
 * (stage_file_done), so a name must never outlive, across a power loss, the
 * bytes it stands for. A file is therefore written as NAME.vmunion-tmp and
 * gets NAME only after its bytes and mtime are on disk (what the plan makes
 * excepted, see finish_file). An fsync per file gives that at the price of
 * a journal commit per file, which for many small files costs more than the
 * copy itself. Instead the small files wait in a batch: one syncfs makes
 * the whole batch durable (it was written before the syncfs began), then
 * each file gets its name. The guarantee is the same: no name before its
 * bytes are durable. A crash loses at most a batch of finished work
 * (BATCH_FILES files or BATCH_BYTES), left under temp names and written
 * again by the rerun. The renames become durable with a later syncfs: the
 * next batch's, or the one materialize and the commit run before they
 * publish anything. A file of BATCH_ALONE bytes or more keeps its own fsync:
 * beside its bytes the journal commit costs little, and a syncfs would wait
 * for whatever else is dirty on the filesystem too. */
#define BATCH_FILES 1024
#define BATCH_BYTES (64u << 20)
#define BATCH_ALONE (1u << 20)

/* Under stage->lock: the batch, handed over to the caller. */
static size_t *take_batch(struct stage *stage, size_t *count)
{
	size_t *entries = xmalloc((stage->batch_count ? stage->batch_count : 1) * sizeof(size_t));

	memcpy(entries, stage->batch, stage->batch_count * sizeof(size_t));
	*count = stage->batch_count;
	stage->batch_count = 0;
	stage->batch_bytes = 0;
	return entries;
}

static int rename_into_place(const struct stage *stage, const struct mtree_entry *e,
			     struct error *err)
{
	char *tmp = tmp_name(e->path);
	int rc = 0;

	if (renameat(stage->staging_fd, tmp, stage->staging_fd, e->path) < 0)
		rc = staged_error(stage, e->path, "cannot rename into place", -errno, err);
	free(tmp);
	return rc;
}

/* One syncfs for the batch, then the final names. Frees entries. */
static int sync_batch(struct stage *stage, size_t *entries, size_t count, struct error *err)
{
	int rc = 0;

	if (count > 0 && syncfs(stage->staging_fd) < 0)
		rc = error_set(err, errno, "%s: cannot sync the filesystem: %s",
			       stage->staging_path, strerror(errno));
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = rename_into_place(stage, &stage->tree->entries[entries[i]], err);
	free(entries);
	return rc;
}

/* The file's mtime now; its durability and its name come with its batch. */
static int finish_file(struct stage *stage, int fd, const struct mtree_entry *e,
		       const char *tmp, struct error *err)
{
	struct timespec times[2] = { e->mtime, e->mtime };
	size_t *full = NULL, count = 0;

	if (futimens(fd, times) < 0)
		return staged_error(stage, tmp, "cannot set mtime", -errno, err);
	/* A rerun checks what the plan makes by its bytes, not by its size and
	 * mtime (which is the build time, any value will do): its name needs no
	 * sync first, and a link run then needs no batch at all. */
	if (e->kind == MTREE_SYNTH)
		return rename_into_place(stage, e, err);
	if (e->size >= BATCH_ALONE)
		return fsync(fd) < 0 ? staged_error(stage, tmp, "cannot sync", -errno, err)
				     : rename_into_place(stage, e, err);
	pthread_mutex_lock(&stage->lock);
	stage->batch[stage->batch_count++] = (size_t)(e - stage->tree->entries);
	stage->batch_bytes += e->size;
	if (stage->batch_count >= BATCH_FILES || stage->batch_bytes >= BATCH_BYTES)
		full = take_batch(stage, &count);
	pthread_mutex_unlock(&stage->lock);
	return full ? sync_batch(stage, full, count, err) : 0;
}

static int write_synth(struct stage *stage, const struct mtree_entry *e, struct error *err)
{
	char *tmp = tmp_name(e->path);
	const char *what = "cannot write";
	int fd, rc;


	fd = openat(stage->staging_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = staged_error(stage, tmp, "cannot create", -errno, err);
	} else {
		rc = write_all(fd, e->content, e->size);
		if (rc == 0)
			rc = stage_give_attr(fd, &e->attr, NULL, &what);
		rc = rc < 0 ? staged_error(stage, tmp, what, rc, err)
			    : finish_file(stage, fd, e, tmp, err);
		close(fd);
	}
	if (rc == 0)
		atomic_fetch_add(&stage->bytes_done, e->size);
	free(tmp);
	return rc;
}

static int write_symlink(struct stage *stage, const struct mtree_entry *e, struct error *err)
{
	if (unlinkat(stage->staging_fd, e->path, 0) < 0 && errno != ENOENT)
		return staged_error(stage, e->path, "cannot replace", -errno, err);
	if (symlinkat(e->source, stage->staging_fd, e->path) < 0)
		return staged_error(stage, e->path, "cannot create symlink", -errno, err);
	return 0;
}

static int link_file(struct stage *stage, const struct mtree_entry *e, struct error *err)
{
	int volume_fd = stage->session->volumes[e->volume].dirfd;
	char *tmp, *source;
	int rc = 0;

	/* A copy that an earlier run in another mode left half done. */
	if (!stage->staging_new) {
		tmp = tmp_name(e->path);
		unlinkat(stage->staging_fd, tmp, 0);
		free(tmp);
	}
	if (linkat(volume_fd, e->source, stage->staging_fd, e->path, 0) < 0)
		rc = -errno;
	if (rc == -EEXIST) /* staged by an earlier run, but not this file */
		rc = unlinkat(stage->staging_fd, e->path, 0) < 0 ||
				     linkat(volume_fd, e->source, stage->staging_fd, e->path, 0) < 0
			     ? -errno
			     : 0;
	if (rc < 0) {
		source = mtree_source_name(stage->session, e);
		if (rc == -EXDEV)
			error_set(err, EXDEV,
				  "cannot hard-link %s to %s/%s: they are on different "
				  "filesystems (use --mode auto or copy)",
				  source, stage->staging_path, e->path);
		else
			error_set(err, -rc, "cannot hard-link %s to %s/%s: %s", source,
				  stage->staging_path, e->path, strerror(-rc));
		free(source);
		return rc;
	}
	atomic_fetch_add(&stage->bytes_done, e->size);
	return 0;
}

static bool copy_range_unsupported(int e)
{
	return e == EXDEV || e == ENOSYS || e == EOPNOTSUPP || e == EINVAL;
}

/* Copies size bytes from src to dst: reflink, else copy_file_range, else
 * read/write, as the mode allows. Sets *how. */
static int copy_bytes(struct stage *stage, int src, int dst, uint64_t size, enum how *how,
		      char **buf, const char **what)
{
	uint64_t done = 0;

	*what = "cannot copy";
	if (stage->mode == MODE_AUTO || stage->mode == MODE_REFLINK) {
		if (ioctl(dst, FICLONE, src) == 0) {
			*how = HOW_REFLINK;
			atomic_fetch_add(&stage->bytes_done, size);
			return 0;
		}
		if (stage->mode == MODE_REFLINK) {
			*what = "cannot reflink (--mode reflink needs the target on the source's "
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
		atomic_fetch_add(&stage->bytes_done, (uint64_t)n);
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
		atomic_fetch_add(&stage->bytes_done, (uint64_t)n);
	}
	return 0;
}

static int copy_file(struct stage *stage, const struct mtree_entry *e, enum how *how,
		     char **buf, struct error *err)
{
	char *tmp = NULL, *source = mtree_source_name(stage->session, e);
	const char *what = NULL;
	int src, dst = -1, rc;
	struct acl_value acl = { 0 };
	struct stat st;

	src = mtree_open_source(stage->session, e);
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
	rc = acl_get(src, &acl);
	if (rc < 0) {
		rc = error_set(err, -rc, "%s: cannot read its ACL: %s", source, strerror(-rc));
		goto out;
	}
	(void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
	tmp = tmp_name(e->path);
	/* Private until it has its mode: the umask must not decide it. */
	dst = openat(stage->staging_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (dst < 0) {
		rc = staged_error(stage, tmp, "cannot create", -errno, err);
		goto out;
	}
	rc = copy_bytes(stage, src, dst, e->size, how, buf, &what);
	if (rc < 0) {
		error_set(err, -rc, "%s: %s to %s/%s: %s", source, what, stage->staging_path, tmp,
			  strerror(-rc));
		goto out;
	}
	rc = stage_give_attr(dst, &e->attr, &acl, &what);
	rc = rc < 0 ? staged_error(stage, tmp, what, rc, err) : finish_file(stage, dst, e, tmp, err);
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	free(tmp);
	free(source);
	acl_value_free(&acl);
	return rc;
}

static int write_entry(struct stage *stage, const struct mtree_entry *e, enum how *how,
		       char **buf, struct error *err)
{
	switch (e->kind) {
	case MTREE_SYNTH:
		*how = HOW_WRITE;
		return write_synth(stage, e, err);
	case MTREE_SYMLINK:
		*how = HOW_SYMLINK;
		return write_symlink(stage, e, err);
	default:
		if (links(stage, e)) {
			*how = HOW_LINK;
			return link_file(stage, e, err);
		}
		return copy_file(stage, e, how, buf, err);
	}
}

/* ---- the workers and the progress line ---- */

static void fail(struct stage *stage, int rc, const struct error *err)
{
	pthread_mutex_lock(&stage->lock);
	if (!atomic_load(&stage->failed)) {
		stage->err = *err;
		stage->rc = rc;
		atomic_store(&stage->failed, true);
	}
	pthread_mutex_unlock(&stage->lock);
}

static void *worker(void *arg)
{
	struct stage *stage = arg;
	char *buf = NULL;

	while (!atomic_load(&stage->failed)) {
		size_t i = atomic_fetch_add(&stage->next, 1), n;
		struct error err = { { 0 } };
		enum how how = HOW_WRITE;
		int rc;

		if (i >= stage->work_count)
			break;
		rc = write_entry(stage, &stage->tree->entries[stage->work[i]], &how, &buf, &err);
		if (rc < 0) {
			fail(stage, rc, &err);
			break;
		}
		atomic_fetch_add(&stage->how_count[how], 1);
		n = atomic_fetch_add(&stage->files_done, 1) + 1;
		test_crash_point(stage->crash_env, "file", n);
	}
	free(buf);
	pthread_mutex_lock(&stage->lock);
	if (--stage->running == 0)
		pthread_cond_signal(&stage->finished);
	pthread_mutex_unlock(&stage->lock);
	return NULL;
}

static void print_progress(struct stage *stage, double start, bool final)
{
	uint64_t done = atomic_load(&stage->bytes_done), total = stage->work_bytes;
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
		atomic_load(&stage->files_done), stage->work_count,
		format_bytes((uint64_t)rate, r, sizeof(r)), (int)eta / 60, (int)eta % 60,
		final ? "\n" : "");
}

/* The files written since the last full batch; after a failure too, so
 * that the rerun keeps them. */
static void flush_last_batch(struct stage *stage)
{
	struct error err = { { 0 } };
	size_t count, *entries;
	int rc;

	pthread_mutex_lock(&stage->lock);
	entries = take_batch(stage, &count);
	pthread_mutex_unlock(&stage->lock);
	rc = sync_batch(stage, entries, count, &err);
	if (rc < 0)
		fail(stage, rc, &err);
}

/* Until the last worker ends; on a terminal, the progress line every 200 ms
 * meanwhile. A wakeup, not a polling sleep: the end of a short run (links)
 * must not wait for the next tick. */
static void wait_workers(struct stage *stage, bool tty, double start)
{
	pthread_mutex_lock(&stage->lock);
	while (stage->running > 0) {
		struct timespec until;

		if (!tty) {
			pthread_cond_wait(&stage->finished, &stage->lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000 * 1000;
		if (until.tv_nsec >= 1000 * 1000 * 1000) {
			until.tv_sec++;
			until.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&stage->finished, &stage->lock, &until);
		pthread_mutex_unlock(&stage->lock);
		print_progress(stage, start, false);
		pthread_mutex_lock(&stage->lock);
	}
	pthread_mutex_unlock(&stage->lock);
}

int stage_write_files(struct stage *stage, double start)
{
	unsigned jobs = stage->jobs ? stage->jobs : 1;
	bool tty = !stage->quiet && isatty(STDERR_FILENO);
	pthread_t threads[STAGE_MAX_JOBS];
	unsigned started = 0;

	if (jobs > STAGE_MAX_JOBS)
		jobs = STAGE_MAX_JOBS;
	if (jobs > stage->work_count)
		jobs = stage->work_count ? (unsigned)stage->work_count : 1;
	stage->running = jobs;
	for (; started < jobs; started++)
		if (pthread_create(&threads[started], NULL, worker, stage) != 0)
			break;
	if (started < jobs) {
		struct error err;

		pthread_mutex_lock(&stage->lock);
		stage->running -= jobs - started;
		pthread_mutex_unlock(&stage->lock);
		fail(stage, error_set(&err, EAGAIN, "cannot start %u threads", jobs), &err);
	}
	wait_workers(stage, tty, start);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	flush_last_batch(stage);
	if (tty)
		print_progress(stage, start, true);
	return atomic_load(&stage->failed) ? stage->rc : 0;
}

int stage_make_dirs(struct stage *stage, struct error *err)
{
	/* What the staging dir's default ACL would hand down is no volume's. */
	if (fremovexattr(stage->staging_fd, ACL_DEFAULT_XATTR) < 0 && errno != ENODATA &&
	    errno != ENOTSUP)
		return error_set(err, errno, "%s: cannot remove its default ACL: %s",
				 stage->staging_path, strerror(errno));
	for (size_t i = 0; i < stage->tree->count; i++) {
		const struct mtree_entry *e = &stage->tree->entries[i];
		struct stat st;

		if (e->kind != MTREE_DIR || stage->done[i])
			continue;
		/* Private until stage_set_dir_attrs gives it its mode. */
		if (mkdirat(stage->staging_fd, e->path, 0700) < 0 &&
		    (errno != EEXIST ||
		     fstatat(stage->staging_fd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			return staged_error(stage, e->path, "cannot create directory",
					    errno == EEXIST ? -ENOTDIR : -errno, err);
	}
	return 0;
}

/* A dir carries no ACL in DEST: its mode is narrowed instead by the ACL
 * the mount serves for it, so that it grants no one more. */
static int fold_dir_acl(const struct stage *stage, const struct mtree_entry *e,
			struct plan_attr *attr, struct error *err)
{
	int rc = mtree_fold_dir_acl(stage->session, e, &attr->mode);

	if (rc < 0)
		return error_set(err, -rc, "%s/tree/%s: cannot read its ACL: %s",
				 stage->session->upper.path, e->path, strerror(-rc));
	return 0;
}

static int set_dir_attr(struct stage *stage, size_t i, struct error *err)
{
	const struct mtree_entry *e = &stage->tree->entries[i];
	struct timespec times[2] = { e->mtime, e->mtime };
	struct plan_attr attr = e->attr;
	const char *what = "cannot open";
	int fd, rc = fold_dir_acl(stage, e, &attr, err);

	if (rc < 0)
		return rc;
	fd = openat(stage->staging_fd, e->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return staged_error(stage, e->path, what, -errno, err);
	rc = stage_give_attr(fd, &attr, NULL, &what);
	if (rc == 0 && futimens(fd, times) < 0) {
		what = "cannot set mtime";
		rc = -errno;
	}
	close(fd);
	return rc < 0 ? staged_error(stage, e->path, what, rc, err) : 0;
}

int stage_set_dir_attrs(struct stage *stage, struct error *err)
{
	for (size_t i = stage->tree->count; i-- > 0;) {
		const struct mtree_entry *e = &stage->tree->entries[i];
		int rc;

		if (e->kind != MTREE_DIR || stage->done[i])
			continue;
		rc = set_dir_attr(stage, i, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- reports ---- */

void stage_counts(const struct stage *stage, size_t counts[HOW_COUNT])
{
	for (int h = 0; h < HOW_COUNT; h++)
		counts[h] = atomic_load(&stage->how_count[h]);
	counts[HOW_DONE] = stage->tree->files - stage->work_count;
}

void stage_add_modes_json(cJSON *json, const size_t counts[HOW_COUNT])
{
	cJSON *modes = cJSON_CreateObject();

	for (int h = 0; h < HOW_COUNT; h++)
		cJSON_AddNumberToObject(modes, how_names[h], (double)counts[h]);
	cJSON_AddItemToObject(json, "modes", modes);
}

void stage_list(const struct stage *stage, cJSON *entries, size_t counts[HOW_COUNT])
{
	memset(counts, 0, HOW_COUNT * sizeof(counts[0]));
	for (size_t i = 0; i < stage->tree->count; i++) {
		const struct mtree_entry *e = &stage->tree->entries[i];
		enum how how;

		if (e->kind == MTREE_DIR)
			continue;
		how = stage_predict(stage, i);
		counts[how]++;
		if (entries) {
			cJSON *item = cJSON_CreateObject();

			cJSON_AddStringToObject(item, "path", e->path);
			cJSON_AddStringToObject(item, "mode", how_names[how]);
			cJSON_AddNumberToObject(item, "size", (double)e->size);
			cJSON_AddItemToArray(entries, item);
		} else {
			printf("%-16s %12" PRIu64 "  %s\n", how_names[how], e->size, e->path);
		}
	}
}
