/* FUSE low-level operations: a passthrough over the upper tree, where a stub
 * is read from its volume file and copied up before its first write.
 * Modelled on libfuse's example/passthrough_ll.c: inodes hold an O_PATH fd,
 * each op replies exactly once, errors travel as errno. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "upper.h"

/* An inode the kernel remembers. It holds a file handle and is opened on
 * demand, so that a walk of a large tree does not hold an fd per entry
 * (the fd limit would end it with EMFILE); only where the upper's
 * filesystem has no file handles does it keep an O_PATH fd. */
struct fs_inode {
	struct fs_inode *next; /* hash chain */
	int fd;                /* O_PATH, or -1 when handle is set */
	struct file_handle *handle;
	ino_t ino;
	dev_t dev;
	uint64_t lookups;
	/* Stub state, cached: a stub stays a stub until fs_copy_up. */
	bool stub_known;
	int stub_volume;   /* -1: not a stub */
	char *stub_path;
};

struct fs {
	struct fs_inode root;
	struct fs_inode **buckets;
	size_t bucket_count;
	pthread_mutex_t mutex;
	pthread_mutex_t copy_up_mutex;
	const struct fs_config *config;
	bool use_handles; /* the upper gives file handles, and we may open them */
};

struct fs_dir {
	DIR *stream;
	off_t offset;
	struct dirent *entry;
};

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);

	return ino == FUSE_ROOT_ID ? &fs->root : (struct fs_inode *)(uintptr_t)ino;
}

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* An O_PATH fd of inode; give it back with inode_put_fd. */
static int inode_get_fd(struct fs *fs, struct fs_inode *inode)
{
	int fd;

	if (inode->fd >= 0)
		return inode->fd;
	fd = open_by_handle_at(fs->config->upper_tree_fd, inode->handle, O_PATH | O_CLOEXEC);
	/* A handle of an inode removed meanwhile is stale: it is gone. */
	return fd >= 0 ? fd : errno == ESTALE ? -ENOENT : -errno;
}

static void inode_put_fd(struct fs_inode *inode, int fd)
{
	if (fd >= 0 && fd != inode->fd)
		close(fd);
}

/* A file handle of fd, or NULL where the filesystem has none. */
static struct file_handle *handle_of(int fd)
{
	struct file_handle *handle = xmalloc(sizeof(*handle) + MAX_HANDLE_SZ);
	int mount_id;

	handle->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", handle, &mount_id, AT_EMPTY_PATH) == 0)
		return handle;
	free(handle);
	return NULL;
}

/* Keeps a file handle instead of fd when the filesystem can give one. */
static void inode_set_fd(struct fs *fs, struct fs_inode *inode, int fd)
{
	struct file_handle *handle = fs->use_handles ? handle_of(fd) : NULL;

	if (handle) {
		inode->handle = handle;
		inode->fd = -1;
		close(fd);
	} else {
		inode->fd = fd;
	}
}

/* open_by_handle_at needs CAP_DAC_READ_SEARCH, an exportable filesystem and
 * a mount fd that is not O_PATH. */
static bool handles_work(int dir_fd)
{
	struct file_handle *handle = handle_of(dir_fd);
	int fd = handle ? open_by_handle_at(dir_fd, handle, O_PATH | O_CLOEXEC) : -1;

	free(handle);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ---- stubs ---- */

static int stub_state(struct fs *fs, struct fs_inode *inode)
{
	char path[64], *lower = NULL;
	int volume = -1, rc = 0;

	int fd;

	if (inode->stub_known)
		return 0;
	fd = inode_get_fd(fs, inode);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&fs->mutex);
	if (!inode->stub_known) {
		proc_path(path, sizeof(path), fd);
		rc = upper_stub_get(path, &volume, &lower);
		if (rc >= 0) {
			inode->stub_known = true;
			inode->stub_volume = rc == 1 ? volume : -1;
			inode->stub_path = lower;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&fs->mutex);
	inode_put_fd(inode, fd);
	return rc;
}

static int open_lower(struct fs *fs, struct fs_inode *inode)
{
	int fd;

	if (inode->stub_volume < 0 || (size_t)inode->stub_volume >= fs->config->volume_count)
		return -EIO;
	fd = volume_open_file(&fs->config->volumes[inode->stub_volume], inode->stub_path);
	return fd;
}

/* Gives a stub its own bytes before the first write to it. */
static int copy_up(struct fs *fs, struct fs_inode *inode)
{
	char path[64];
	int rc, fd, lower, path_fd;
	uint64_t copied = 0;
	struct stat st;

	rc = stub_state(fs, inode);
	if (rc < 0 || inode->stub_volume < 0)
		return rc;
	pthread_mutex_lock(&fs->copy_up_mutex);
	if (inode->stub_volume < 0) {
		pthread_mutex_unlock(&fs->copy_up_mutex);
		return 0;
	}
	path_fd = inode_get_fd(fs, inode);
	proc_path(path, sizeof(path), path_fd);
	fd = path_fd < 0 ? -1 : open(path, O_RDWR | O_CLOEXEC);
	lower = open_lower(fs, inode);
	if (lower >= 0 && fstat(lower, &st) == 0)
		copied = (uint64_t)st.st_size;
	rc = path_fd < 0 ? path_fd
	     : fd < 0	 ? -errno
	     : lower < 0 ? lower
			 : upper_copy_up(fd, lower, path);
	if (fd >= 0)
		close(fd);
	inode_put_fd(inode, path_fd);
	if (lower >= 0)
		close(lower);
	if (rc == 0) {
		metrics_add(METRIC_COPY_UPS, 1);
		metrics_add(METRIC_COPY_UP_BYTES, copied);
	} else {
		log_error("copy-up of %s from volume %d failed: %s", inode->stub_path,
			  inode->stub_volume, strerror(-rc));
	}
	if (rc == 0) {
		pthread_mutex_lock(&fs->mutex);
		inode->stub_volume = -1;
		free(inode->stub_path);
		inode->stub_path = NULL;
		pthread_mutex_unlock(&fs->mutex);
	}
	pthread_mutex_unlock(&fs->copy_up_mutex);
	return rc;
}

/* ---- the inode table ---- */

static void inode_free(struct fs_inode *inode)
{
	if (inode->fd >= 0)
		close(inode->fd);
	free(inode->handle);
	free(inode->stub_path);
	free(inode);
}

static size_t bucket_of(struct fs *fs, ino_t ino, dev_t dev)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) % fs->bucket_count;
}

/* Finds or adds the inode of st; takes ownership of fd (an O_PATH fd). */
static struct fs_inode *inode_get(struct fs *fs, int fd, const struct stat *st)
{
	struct fs_inode *inode;
	size_t bucket;

	pthread_mutex_lock(&fs->mutex);
	bucket = bucket_of(fs, st->st_ino, st->st_dev);
	for (inode = fs->buckets[bucket]; inode; inode = inode->next)
		if (inode->ino == st->st_ino && inode->dev == st->st_dev)
			break;
	if (inode) {
		close(fd);
	} else {
		inode = xcalloc(1, sizeof(*inode));
		inode_set_fd(fs, inode, fd);
		inode->ino = st->st_ino;
		inode->dev = st->st_dev;
		inode->stub_volume = -1;
		inode->next = fs->buckets[bucket];
		fs->buckets[bucket] = inode;
	}
	inode->lookups++;
	pthread_mutex_unlock(&fs->mutex);
	return inode;
}

static void inode_forget(struct fs *fs, struct fs_inode *inode, uint64_t count)
{
	struct fs_inode **link;

	if (inode == &fs->root)
		return;
	pthread_mutex_lock(&fs->mutex);
	inode->lookups -= count < inode->lookups ? count : inode->lookups;
	if (inode->lookups == 0) {
		link = &fs->buckets[bucket_of(fs, inode->ino, inode->dev)];
		while (*link && *link != inode)
			link = &(*link)->next;
		if (*link)
			*link = inode->next;
		inode_free(inode);
	}
	pthread_mutex_unlock(&fs->mutex);
}

/* ---- lookup and attributes ---- */

static int stat_inode(struct fs *fs, struct fs_inode *inode, struct stat *st)
{
	int fd = inode_get_fd(fs, inode), rc;

	if (fd < 0)
		return fd;
	rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	inode_put_fd(inode, fd);
	return rc;
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *dir = inode_of(req, parent);
	int dir_fd = inode_get_fd(fs, dir), fd, rc;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = e->entry_timeout = fs->config->timeout;
	if (dir_fd < 0)
		return dir_fd;
	fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? -errno : 0;
	inode_put_fd(dir, dir_fd);
	if (fd < 0)
		return rc;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	e->ino = (fuse_ino_t)(uintptr_t)inode_get(fs, fd, &e->attr);
	return 0;
}

static void reply_entry_or_error(fuse_req_t req, fuse_ino_t parent, const char *name, int rc)
{
	struct fuse_entry_param e;

	if (rc == 0)
		rc = do_lookup(req, parent, name, &e);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(req, parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry, cached like a positive one. */
		e.ino = 0;
		fuse_reply_entry(req, &e);
	} else if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(fs_of(req), inode_of(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(fs_of(req), inode_of(req, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *inode = inode_of(req, ino);
	struct stat st;
	int rc = stat_inode(fs_of(req), inode, &st);

	/* An open file that was unlinked has no handle left, but its fd. */
	if (rc == -ENOENT && fi && inode->stub_volume < 0)
		rc = fstat((int)fi->fh, &st) < 0 ? -errno : 0;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs_of(req)->config->timeout);
}

static int set_times(int path_fd, int valid, const struct stat *attr, struct fuse_file_info *fi)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	char path[64];

	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		times[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		times[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		times[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		times[1] = attr->st_mtim;
	if (fi)
		return futimens((int)fi->fh, times) < 0 ? -errno : 0;
	proc_path(path, sizeof(path), path_fd);
	return utimensat(AT_FDCWD, path, times, 0) < 0 ? -errno : 0;
}

static int set_size(struct fs *fs, struct fs_inode *inode, int path_fd, off_t size,
		    struct fuse_file_info *fi)
{
	char path[64];
	int rc;

	if (fi)
		return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
	rc = copy_up(fs, inode);
	if (rc < 0)
		return rc;
	proc_path(path, sizeof(path), path_fd);
	return truncate(path, size) < 0 ? -errno : 0;
}

static int apply_setattr(struct fs *fs, struct fs_inode *inode, int path_fd,
			 const struct stat *attr, int valid, struct fuse_file_info *fi)
{
	char path[64];
	int rc = 0;

	proc_path(path, sizeof(path), path_fd);
	if (valid & FUSE_SET_ATTR_MODE)
		rc = chmod(path, attr->st_mode) < 0 ? -errno : 0;
	if (rc == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		rc = fchownat(path_fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
			     ? -errno
			     : 0;
	}
	if (rc == 0 && (valid & FUSE_SET_ATTR_SIZE))
		rc = set_size(fs, inode, path_fd, attr->st_size, fi);
	if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				 FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		rc = set_times(path_fd, valid, attr, fi);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *inode = inode_of(req, ino);
	int fd = inode_get_fd(fs, inode);
	int rc = fd < 0 ? fd : apply_setattr(fs, inode, fd, attr, valid, fi);
	struct stat st;

	inode_put_fd(inode, fd);
	if (rc == 0)
		rc = stat_inode(fs, inode, &st);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->config->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_inode *inode = inode_of(req, ino);
	int fd = inode_get_fd(fs_of(req), inode);
	char buf[PATH_MAX + 1];
	ssize_t n = fd < 0 ? (errno = -fd, -1) : readlinkat(fd, "", buf, sizeof(buf) - 1);
	int e = errno;

	inode_put_fd(inode, fd);
	if (n < 0) {
		fuse_reply_err(req, e);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* ---- directory entries ---- */

/* Which change of a directory entry to make, below an open parent. */
enum entry_change { ENTRY_MKNOD, ENTRY_SYMLINK, ENTRY_LINK, ENTRY_UNLINK, ENTRY_RMDIR };

struct entry_args {
	mode_t mode;
	dev_t rdev;
	const char *target;    /* ENTRY_SYMLINK */
	struct fs_inode *from; /* ENTRY_LINK */
};

static int change_entry(struct fs *fs, int dir_fd, const char *name, enum entry_change change,
			const struct entry_args *args)
{
	char path[64];
	int fd, rc;

	switch (change) {
	case ENTRY_MKNOD:
		if (S_ISDIR(args->mode))
			return mkdirat(dir_fd, name, args->mode) < 0 ? -errno : 0;
		return mknodat(dir_fd, name, args->mode, args->rdev) < 0 ? -errno : 0;
	case ENTRY_SYMLINK:
		return symlinkat(args->target, dir_fd, name) < 0 ? -errno : 0;
	case ENTRY_LINK:
		fd = inode_get_fd(fs, args->from);
		if (fd < 0)
			return fd;
		proc_path(path, sizeof(path), fd);
		rc = linkat(AT_FDCWD, path, dir_fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
		inode_put_fd(args->from, fd);
		return rc;
	case ENTRY_UNLINK:
		return unlinkat(dir_fd, name, 0) < 0 ? -errno : 0;
	case ENTRY_RMDIR:
		return unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
	}
	return -EINVAL;
}

/* Makes the change below parent; replies with the new entry or an error. */
static void reply_change(fuse_req_t req, fuse_ino_t parent, const char *name,
			 enum entry_change change, const struct entry_args *args)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *dir = inode_of(req, parent);
	int fd = inode_get_fd(fs, dir);
	int rc = fd < 0 ? fd : change_entry(fs, fd, name, change, args);

	inode_put_fd(dir, fd);
	if (change == ENTRY_UNLINK || change == ENTRY_RMDIR)
		fuse_reply_err(req, -rc);
	else
		reply_entry_or_error(req, parent, name, rc);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	reply_change(req, parent, name, ENTRY_MKNOD,
		     &(struct entry_args){ .mode = mode, .rdev = rdev });
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	op_mknod(req, parent, name, S_IFDIR | mode, 0);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	reply_change(req, parent, name, ENTRY_SYMLINK, &(struct entry_args){ .target = target });
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	reply_change(req, parent, name, ENTRY_LINK,
		     &(struct entry_args){ .from = inode_of(req, ino) });
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_change(req, parent, name, ENTRY_UNLINK, &(struct entry_args){ 0 });
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_change(req, parent, name, ENTRY_RMDIR, &(struct entry_args){ 0 });
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *from = inode_of(req, parent), *to = inode_of(req, newparent);
	int from_fd = inode_get_fd(fs, from), to_fd = inode_get_fd(fs, to), rc;

	rc = from_fd < 0 ? from_fd
	     : to_fd < 0 ? to_fd
			 : (renameat2(from_fd, name, to_fd, newname, flags) < 0 ? -errno : 0);
	inode_put_fd(from, from_fd);
	inode_put_fd(to, to_fd);
	fuse_reply_err(req, -rc);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *inode = inode_of(req, ino);
	int path_fd = inode_get_fd(fs_of(req), inode);
	int fd = path_fd < 0 ? (errno = -path_fd, -1)
			     : openat(path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct fs_dir *dir = xcalloc(1, sizeof(*dir));

	inode_put_fd(inode, path_fd);
	if (fd < 0 || !(dir->stream = fdopendir(fd))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		free(dir);
		fuse_reply_err(req, e);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)dir;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	struct fs_dir *dir = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf = xcalloc(1, size);
	size_t used = 0;
	int error = 0;

	if (offset != dir->offset) {
		seekdir(dir->stream, offset);
		dir->entry = NULL;
		dir->offset = offset;
	}
	for (;;) {
		struct stat st = { 0 };
		size_t entry_size;

		if (!dir->entry) {
			errno = 0;
			dir->entry = readdir(dir->stream);
			if (!dir->entry) {
				error = errno;
				break;
			}
		}
		st.st_ino = dir->entry->d_ino;
		st.st_mode = (mode_t)DTTOIF(dir->entry->d_type);
		entry_size = fuse_add_direntry(req, buf + used, size - used, dir->entry->d_name,
					       &st, dir->entry->d_off);
		if (entry_size > size - used)
			break;
		used += entry_size;
		dir->offset = dir->entry->d_off;
		dir->entry = NULL;
	}
	if (error && used == 0)
		fuse_reply_err(req, error);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_dir *dir = (struct fs_dir *)(uintptr_t)fi->fh;

	closedir(dir->stream);
	free(dir);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	int fd = dirfd(((struct fs_dir *)(uintptr_t)fi->fh)->stream);
	int rc = datasync ? fdatasync(fd) : fsync(fd);

	fuse_reply_err(req, rc < 0 ? errno : 0);
}

/* ---- files ---- */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs_inode *dir = inode_of(req, parent);
	int dir_fd = inode_get_fd(fs_of(req), dir), fd, rc;
	struct fuse_entry_param e;

	fd = dir_fd < 0 ? (errno = -dir_fd, -1)
			: openat(dir_fd, name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW,
				 mode);
	rc = errno;
	inode_put_fd(dir, dir_fd);
	if (fd < 0) {
		fuse_reply_err(req, rc);
		return;
	}
	rc = do_lookup(req, parent, name, &e);
	if (rc < 0) {
		close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_create(req, &e, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *inode = inode_of(req, ino);
	char path[64];
	int rc, fd;

	rc = wants_write(fi->flags) ? copy_up(fs, inode) : stub_state(fs, inode);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (inode->stub_volume >= 0) {
		fd = open_lower(fs, inode);
		fi->keep_cache = 1; /* volume files never change */
	} else {
		int path_fd = inode_get_fd(fs, inode);

		proc_path(path, sizeof(path), path_fd);
		fd = path_fd < 0 ? path_fd : open(path, (fi->flags | O_CLOEXEC) & ~O_NOFOLLOW);
		fd = fd < 0 && path_fd >= 0 ? -errno : fd;
		inode_put_fd(inode, path_fd);
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = offset;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t offset,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = offset;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a dup reports delayed write errors, as a real close would. */
	int rc = close(dup((int)fi->fh));

	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	int rc = fallocate((int)fi->fh, mode, offset, length);

	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	/* Real free space of the upper: vmstorage turns read-only when it looks low. */
	if (fstatvfs(fs_of(req)->config->upper_tree_fd, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* Keep page-cache writes going straight to the upper: vmstorage fsyncs. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static const struct fuse_lowlevel_ops operations = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.statfs = op_statfs,
};

struct fs *fs_new(const struct fs_config *config, struct error *err)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));
	struct stat st;

	fs->config = config;
	fs->bucket_count = 65521;
	fs->buckets = xcalloc(fs->bucket_count, sizeof(*fs->buckets));
	pthread_mutex_init(&fs->mutex, NULL);
	pthread_mutex_init(&fs->copy_up_mutex, NULL);
	fs->root.fd = openat(config->upper_tree_fd, ".", O_PATH | O_CLOEXEC);
	if (fs->root.fd < 0 || fstat(fs->root.fd, &st) < 0) {
		error_set(err, errno, "upper tree: %s", strerror(errno));
		fs_free(fs);
		return NULL;
	}
	fs->use_handles = handles_work(config->upper_tree_fd);
	fs->root.ino = st.st_ino;
	fs->root.dev = st.st_dev;
	fs->root.stub_known = true;
	fs->root.stub_volume = -1;
	fs->root.lookups = 2;
	return fs;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i < fs->bucket_count; i++) {
		while (fs->buckets[i]) {
			struct fs_inode *inode = fs->buckets[i];

			fs->buckets[i] = inode->next;
			inode_free(inode);
		}
	}
	if (fs->root.fd >= 0)
		close(fs->root.fd);
	free(fs->buckets);
	pthread_mutex_destroy(&fs->mutex);
	pthread_mutex_destroy(&fs->copy_up_mutex);
	free(fs);
}

const struct fuse_lowlevel_ops *fs_operations(void)
{
	return &operations;
}
