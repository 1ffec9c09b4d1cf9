/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE low-level operations of a read-only mount, served from the plan.
 *
 * The tree never changes while mounted, so the node ids are the plan's node
 * indexes + 1 (the root, nodes[0], is FUSE_ROOT_ID), lookups need no
 * counting, and the kernel may cache entries, attributes, listings and file
 * pages for as long as it likes. So opens need no answer either: the daemon
 * says it has no open (ENOSYS) and the kernel opens files and dirs by itself,
 * keeping their pages and listings. Reads take the volume file's fd from a
 * bounded cache (fd_cache.h): no user's opens can take the daemon's fds.
 * With FUSE passthrough (passthrough.h), opens are answered instead: the
 * kernel then reads each volume file itself, from its own page cache.
 * Permissions are the volumes' own, checked by the kernel (default_permissions). */
#include "fs_plan.h"
#include "backings.h"
#include "fd_cache.h"
#include "served_plan.h"
#include "log.h"
#include "metrics.h"
#include "passthrough.h"
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Volume files kept open for reads, at most. */
#define VOLUME_FD_LIMIT 1024

/* fi->fh of an open counted in fs->backings. */
#define COUNTED_OPEN 1

struct fs_plan {
	struct served_plan served;
	const struct volume *volumes;
	uint64_t lower_bytes;
	double timeout;
	bool open_is_optional; /* the kernel opens by itself if told ENOSYS */
	struct fd_cache *volume_fds; /* keyed by node index */
	time_t out_of_fds_logged;    /* when it last said so (atomic) */
	bool passthrough_wanted;
	bool passthrough_negotiated; /* opens are answered: never ENOSYS */
	bool passthrough; /* new files may be registered (atomic) */
	struct backings *backings; /* by node index */
	struct fuse_session *session;
};

static int open_volume_file(uint32_t index, void *fs);

struct fs_plan *fs_plan_new(const struct plan *plan, double timeout, bool passthrough,
			    struct error *err)
{
	struct fs_plan *fs = xcalloc(1, sizeof(*fs));

	if (served_plan_build(&fs->served, plan, err) < 0) {
		free(fs);
		return NULL;
	}
	fs->volumes = plan->volumes;
	fs->lower_bytes = plan_lower_bytes(plan);
	fs->timeout = timeout;
	fs->passthrough_wanted = passthrough;
	fs->backings = backings_new();
	fs->volume_fds = fd_cache_new(VOLUME_FD_LIMIT, open_volume_file, fs);
	return fs;
}

void fs_plan_free(struct fs_plan *fs)
{
	if (!fs)
		return;
	fd_cache_free(fs->volume_fds);
	backings_free(fs->backings);
	served_plan_free(&fs->served);
	free(fs);
}

void fs_plan_set_session(struct fs_plan *fs, struct fuse_session *session)
{
	fs->session = session;
}

static struct fs_plan *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const struct served_node *node_of(const struct fs_plan *fs, fuse_ino_t ino)
{
	return ino >= FUSE_ROOT_ID && ino - FUSE_ROOT_ID < fs->served.node_count
		       ? &fs->served.nodes[ino - FUSE_ROOT_ID]
		       : NULL;
}

static fuse_ino_t ino_of(const struct fs_plan *fs, const struct served_node *node)
{
	return (fuse_ino_t)(node - fs->served.nodes) + FUSE_ROOT_ID;
}

static const char *name_of(const struct fs_plan *fs, const struct served_node *node)
{
	return served_string(&fs->served, node->name);
}

/* Everything is the volume entry's but st_ino and st_dev; atime and ctime are
 * the mtime (the plan keeps no more). */
static void fill_stat(const struct fs_plan *fs, const struct served_node *node,
		      struct stat *st)
{
	const struct served_attr *attr = &fs->served.attrs[node->attr];

	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(fs, node);
	st->st_mode = attr->mode;
	st->st_nlink = attr->nlink;
	st->st_uid = attr->uid;
	st->st_gid = attr->gid;
	st->st_size = (off_t)node->size;
	st->st_blocks = (blkcnt_t)node->blocks;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = (time_t)node->mtime_sec;
	st->st_mtim.tv_nsec = (long)node->mtime_nsec;
	st->st_atim = st->st_ctim = st->st_mtim;
}

static void fill_entry(const struct fs_plan *fs, const struct served_node *node,
		       struct fuse_entry_param *entry)
{
	memset(entry, 0, sizeof(*entry));
	entry->ino = ino_of(fs, node);
	entry->attr_timeout = entry->entry_timeout = fs->timeout;
	fill_stat(fs, node, &entry->attr);
}

static const struct served_node *child_of(const struct fs_plan *fs,
					  const struct served_node *dir, const char *name)
{
	const uint32_t *children = &fs->served.children[dir->dir.first_child];
	size_t low = 0, high = dir->dir.child_count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		const struct served_node *child = &fs->served.nodes[children[mid]];
		int c = strcmp(name, name_of(fs, child));

		if (c == 0)
			return child;
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	return NULL;
}

/* A volume file must still hold the plan's bytes: a shorter one would be
 * served short, and the kernel fills the rest of a page with zeros. */
static int check_length(const struct fs_plan *fs, const struct served_node *node,
			const char *path, int fd)
{
	const struct volume *volume = &fs->volumes[node->volume];
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_error("%s/%s: %s", volume->path, path, strerror(errno));
		return -EIO;
	}
	if ((uint64_t)st.st_size < node->size) {
		log_error("%s/%s: %jd bytes, the mount shows %" PRIu64
			  ": the volume changed underneath the mount (EIO)",
			  volume->path, path, (intmax_t)st.st_size, node->size);
		return -EIO;
	}
	return 0;
}

/* ---- volume files ---- */

/* fd_cache_open_fn: the volume file of node index, beneath its volume. Out
 * of fds is returned as such (the cache makes room and tries again). */
static int open_volume_file(uint32_t index, void *arg)
{
	const struct fs_plan *fs = arg;
	const struct served_node *node = &fs->served.nodes[index];
	const struct volume *volume = &fs->volumes[node->volume];
	char path[PATH_MAX];
	int fd, rc;

	served_lower_path(&fs->served, node, path);
	fd = volume_open_file(volume, path);
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM)
		return fd;
	if (fd < 0) {
		log_error("%s/%s: %s: the volume changed underneath the mount (EIO)",
			  volume->path, path, strerror(-fd));
		return -EIO;
	}
	rc = check_length(fs, node, path, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* The node's volume file, held for one read; NULL and *rc a -errno if it
 * cannot be opened. */
static struct fd_hold *hold_volume_file(struct fs_plan *fs, const struct served_node *node,
					int *rc)
{
	struct fd_hold *hold = fd_cache_get(fs->volume_fds, (uint32_t)(node - fs->served.nodes),
					    rc);
	char path[PATH_MAX];

	if (!hold && *rc != -EIO) { /* the daemon's limit, not the volume: say so */
		served_lower_path(&fs->served, node, path);
		log_open_limit(&fs->out_of_fds_logged, fs->volumes[node->volume].path, path, *rc);
	}
	return hold;
}

/* ---- operations ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs_plan *fs = userdata;

	/* No splice: reads go through a buffer (read_volume), and a request
	 * spliced in costs a pipe and two system calls instead of one read. */
	conn->want &= ~(unsigned int)FUSE_CAP_SPLICE_READ;
	/* The kernel checks the volumes' ACLs too, asking getxattr for them. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* Every listing carries its entries' attributes (from memory), not
	 * only the first batch of each dir: no LOOKUP follows a listing. */
	conn->want &= ~(unsigned int)FUSE_CAP_READDIRPLUS_AUTO;
	fs->open_is_optional = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) &&
			       (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	fs->passthrough = passthrough_negotiate(conn, fs->passthrough_wanted);
	fs->passthrough_negotiated = fs->passthrough;
	readahead_negotiate(conn);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *dir = node_of(fs, parent), *node;
	struct fuse_entry_param entry;

	if (!dir) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (dir->kind != PLAN_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	node = child_of(fs, dir, name);
	if (!node) {
		/* A negative entry: the kernel caches the absence too. */
		memset(&entry, 0, sizeof(entry));
		entry.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &entry);
		return;
	}
	fill_entry(fs, node, &entry);
	fuse_reply_entry(req, &entry);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	struct stat st;

	(void)fi;
	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fill_stat(fs, node, &st);
	fuse_reply_attr(req, &st, fs->timeout);
}

/* ENOSYS, once: from then on the kernel opens dirs by itself and keeps
 * their listings (keep_cache and cache_readdir), with no round trip. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);

	if (fs->open_is_optional)
		fuse_reply_err(req, ENOSYS);
	else if (!node)
		fuse_reply_err(req, ESTALE);
	else if (node->kind != PLAN_DIR)
		fuse_reply_err(req, ENOTDIR);
	else {
		fi->keep_cache = 1;
		fi->cache_readdir = 1;
		fuse_reply_open(req, fi);
	}
}

/* Entry number offset of dir: 0 ".", 1 "..", then the children in order. */
static size_t add_entry(fuse_req_t req, const struct fs_plan *fs,
			const struct served_node *dir, off_t offset, bool plus, char *buf,
			size_t size)
{
	const struct served_node *node;
	struct fuse_entry_param entry;
	const char *name;

	if (offset < 2) {
		node = offset == 0 ? dir : &fs->served.nodes[dir->parent];
		name = offset == 0 ? "." : "..";
		/* Not looked up by the kernel: no node id for it to count. */
		memset(&entry, 0, sizeof(entry));
		entry.attr.st_ino = ino_of(fs, node);
		entry.attr.st_mode = fs->served.attrs[node->attr].mode;
	} else {
		node = &fs->served.nodes[fs->served.children[dir->dir.first_child +
							    (size_t)offset - 2]];
		name = name_of(fs, node);
		fill_entry(fs, node, &entry);
	}
	if (plus)
		return fuse_add_direntry_plus(req, buf, size, name, &entry, offset + 1);
	return fuse_add_direntry(req, buf, size, name, &entry.attr, offset + 1);
}

static void reply_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *dir = node_of(fs, ino);
	size_t used = 0, len;
	char *buf;

	if (!dir || dir->kind != PLAN_DIR) {
		fuse_reply_err(req, dir ? ENOTDIR : ESTALE);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (; offset >= 0 && (size_t)offset < (size_t)dir->dir.child_count + 2; offset++) {
		len = add_entry(req, fs, dir, offset, plus, buf + used, size - used);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	(void)fi;
	reply_dir(req, ino, size, offset, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
			   struct fuse_file_info *fi)
{
	(void)fi;
	reply_dir(req, ino, size, offset, true);
}

/* ---- passthrough ---- */

/* The volume file of node, registered with the kernel: its backing id, 0
 * if none (the kernel refused it: passthrough is then off for new files;
 * out of fds; or the file grew since the plan, which the kernel would read
 * to its end: the daemon stops at the plan's), or -EIO if it shrank. */
static int backing_register(struct fs_plan *fs, fuse_req_t req, const struct served_node *node)
{
	int fd = open_volume_file((uint32_t)(node - fs->served.nodes), fs), id = 0;
	struct stat st;

	if (fd < 0)
		return fd == -EIO ? fd : 0;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == node->size)
		id = passthrough_register(req, fd, &fs->passthrough, "a volume file");
	close(fd);
	return id;
}

/* Counts an open of node with flags: its backing id, 0 for an open read
 * through the daemon, or a -errno. A node already open goes the way its
 * opens go; else O_DIRECT goes through the daemon, where it needs no
 * alignment (the volume's filesystem would want one). */
static int backing_open(struct fs_plan *fs, fuse_req_t req, const struct served_node *node,
			int flags)
{
	uint32_t index = (uint32_t)(node - fs->served.nodes);
	int id = backings_open(fs->backings, index), unused;

	if (id >= 0)
		return id;
	id = __atomic_load_n(&fs->passthrough, __ATOMIC_RELAXED) && !(flags & O_DIRECT)
		     ? backing_register(fs, req, node)
		     : 0;
	if (id < 0)
		return id;
	id = backings_add(fs->backings, index, id, &unused);
	if (unused > 0)
		passthrough_unregister(fs->session, unused);
	return id;
}

static void backing_release(struct fs_plan *fs, uint32_t index)
{
	int unused = backings_release(fs->backings, index);

	if (unused > 0)
		passthrough_unregister(fs->session, unused);
}

/* With passthrough, each open of a volume file passes through to it (see
 * backing_open): only opens for reading, as the kernel opens the volume
 * file again with the open's flags, as the daemon. Without, ENOSYS, once, as
 * for dirs: the kernel opens files by itself, keeps their pages
 * (keep_cache), and sends reads with no file handle. A write or a
 * truncation is refused by the kernel on the read-only mount, and here. */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	int id;

	/* Once passthrough is negotiated, even turned off: the kernel refuses
	 * (EIO) an open it makes by itself of an inode open passed through. */
	if (fs->open_is_optional && !fs->passthrough_negotiated) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (node->kind == PLAN_DIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1; /* the bytes never change while mounted */
	fi->noflush = 1;
	if (node->kind != PLAN_SYNTH_FILE) {
		id = backing_open(fs, req, node, fi->flags);
		if (id < 0) {
			fuse_reply_err(req, -id);
			return;
		}
		fi->fh = COUNTED_OPEN;
		passthrough_reply(fi, id);
	}
	/* A reply that failed (the open was interrupted) gets no release. */
	if (fuse_reply_open(req, fi) < 0 && fi->fh == COUNTED_OPEN)
		backing_release(fs, (uint32_t)(node - fs->served.nodes));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct served_node *node = node_of(fs_of(req), ino);

	if (node && fi->fh == COUNTED_OPEN)
		backing_release(fs_of(req), (uint32_t)(node - fs_of(req)->served.nodes));
	fuse_reply_err(req, 0);
}

/* Reads size bytes at offset of a volume file, all of them: a read error,
 * or fewer bytes than the plan promises (a file changed or failing
 * underneath), is logged with the file's name and answered with EIO, never
 * served short (the kernel would fill the page with zeros). So the bytes
 * go through a buffer, not a splice, whose errors libfuse keeps to itself. */
static int read_volume(const struct fs_plan *fs, const struct served_node *node, int fd,
		       char *buf, size_t size, off_t offset)
{
	const struct volume *volume = &fs->volumes[node->volume];
	char path[PATH_MAX];
	size_t done = 0;
	ssize_t n;

	while (done < size) {
		n = pread(fd, buf + done, size - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		served_lower_path(&fs->served, node, path);
		if (n < 0)
			log_error("%s/%s: read at %jd: %s (EIO)", volume->path, path,
				  (intmax_t)offset + (intmax_t)done, strerror(errno));
		else
			log_error("%s/%s: ends at %jd, the mount shows %" PRIu64
				  " bytes: the volume changed underneath the mount (EIO)",
				  volume->path, path, (intmax_t)offset + (intmax_t)done,
				  node->size);
		return -EIO;
	}
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	struct fd_hold *hold;
	char *buf;
	int rc;

	(void)fi;
	if (!node || node->kind == PLAN_DIR) {
		fuse_reply_err(req, node ? EISDIR : ESTALE);
		return;
	}
	if (offset < 0 || (uint64_t)offset >= node->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > node->size - (uint64_t)offset)
		size = (size_t)(node->size - (uint64_t)offset);
	if (node->kind == PLAN_SYNTH_FILE) {
		fuse_reply_buf(req, served_string(&fs->served, node->content) + offset, size);
		return;
	}
	hold = hold_volume_file(fs, node, &rc);
	if (!hold) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf = thread_buffer(size);
	rc = read_volume(fs, node, fd_hold_fd(hold), buf, size, offset);
	fd_cache_put(fs->volume_fds, hold);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	metrics_add(METRIC_READ_VOLUME_BYTES, size);
	fuse_reply_buf(req, buf, size);
}

/* The first volume's block size; the plan's bytes used, none free. */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_plan *fs = fs_of(req);
	struct statvfs st;

	(void)ino;
	if (fstatvfs(fs->volumes[0].dirfd, &st) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (st.f_frsize == 0)
		st.f_frsize = st.f_bsize ? st.f_bsize : 4096;
	st.f_blocks = (fsblkcnt_t)((fs->lower_bytes + st.f_frsize - 1) / st.f_frsize);
	st.f_bfree = st.f_bavail = 0;
	st.f_files = (fsfilcnt_t)fs->served.node_count;
	st.f_ffree = st.f_favail = 0;
	st.f_flag |= ST_RDONLY;
	fuse_reply_statfs(req, &st);
}

/* The only extended attributes served: a volume file's or dir's POSIX ACL,
 * part of its permissions. A synthesized file has none. */
static const char *const acl_names[] = { "system.posix_acl_access",
					 "system.posix_acl_default" };

static bool is_acl_name(const char *name)
{
	for (size_t i = 0; i < sizeof(acl_names) / sizeof(*acl_names); i++)
		if (strcmp(name, acl_names[i]) == 0)
			return true;
	return false;
}

/* A dir's ACL, the plan's (merged from its volumes' dirs, plan.c). */
static ssize_t dir_xattr(const struct fs_plan *fs, const struct served_node *node,
			 const char *name, char *buf, size_t size)
{
	const struct plan_dir_acl *acl = plan_dir_acl_find(
		fs->served.dir_acls, fs->served.dir_acl_count, (uint32_t)(node - fs->served.nodes));
	bool access = strcmp(name, acl_names[0]) == 0;
	const char *value = !acl ? NULL : access ? acl->access : acl->defaults;
	size_t len = !acl ? 0 : access ? acl->access_len : acl->defaults_len;

	if (!value)
		return -ENODATA;
	if (size > 0 && size < len)
		return -ERANGE;
	if (size > 0)
		memcpy(buf, value, len);
	return (ssize_t)len;
}

/* Like fgetxattr on the node's volume file or dir: the value's length, or
 * -errno; -ENODATA for a synthesized file. */
static ssize_t volume_xattr(struct fs_plan *fs, const struct served_node *node,
			    const char *name, char *buf, size_t size)
{
	struct fd_hold *hold;
	ssize_t len;
	int rc;

	if (node->kind == PLAN_DIR)
		return dir_xattr(fs, node, name, buf, size);
	if (node->kind != PLAN_LOWER_FILE)
		return -ENODATA;
	hold = hold_volume_file(fs, node, &rc);
	if (!hold)
		return rc;
	len = fgetxattr(fd_hold_fd(hold), name, buf, size);
	if (len < 0)
		len = errno == ENOTSUP ? -ENODATA : -errno;
	fd_cache_put(fs->volume_fds, hold);
	return len;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	char *buf = size ? thread_buffer(size) : NULL;
	ssize_t len;

	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	len = is_acl_name(name) ? volume_xattr(fs, node, name, buf, size) : -ENODATA;
	if (len < 0)
		fuse_reply_err(req, (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	char list[64];
	size_t used = 0;

	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	for (size_t i = 0; i < sizeof(acl_names) / sizeof(*acl_names); i++) {
		ssize_t len = volume_xattr(fs, node, acl_names[i], NULL, 0);

		if (len == -ENODATA)
			continue;
		if (len < 0) {
			fuse_reply_err(req, (int)-len);
			return;
		}
		memcpy(list + used, acl_names[i], strlen(acl_names[i]) + 1);
		used += strlen(acl_names[i]) + 1;
	}
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (size < used)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, used);
}

/* Writes: the kernel refuses them on the read-only mount already. */
static void reply_erofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	reply_erofs(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	reply_erofs(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	reply_erofs(req);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	reply_erofs(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	reply_erofs(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	reply_erofs(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	reply_erofs(req);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	reply_erofs(req);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
			 struct fuse_file_info *fi)
{
	(void)ino, (void)bufv, (void)off, (void)fi;
	reply_erofs(req);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	reply_erofs(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	reply_erofs(req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	reply_erofs(req);
}

static const struct fuse_lowlevel_ops operations = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.release = op_release,
	.read = op_read,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_remove,
	.rmdir = op_remove,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.write_buf = op_write_buf,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};

const struct fuse_lowlevel_ops *fs_plan_operations(void)
{
	return &operations;
}
