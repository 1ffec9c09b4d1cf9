/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE low-level operations of a read-only mount, served from the plan.
 *
 * The tree never changes while mounted, so the node ids are the plan's node
 * indexes + 1 (the root, nodes[0], is FUSE_ROOT_ID), lookups need no
 * counting, and the kernel may cache entries, attributes, listings and file
 * pages for as long as it likes. Besides each volume's dir and lock, the only
 * fds held are those of open files: one per file however often it is open
 * (struct open_file), so that no user's opens can take the daemon's fds.
 * Permissions are the volumes' own, checked by the kernel (default_permissions). */
#include "fs_plan.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

/* A plan node, reduced to what serving needs; strings live in fs->strings. */
struct served_node {
	const char *name;
	const char *data;     /* a volume file: its path below the volume; else content */
	uint64_t size;
	struct timespec mtime;
	struct plan_attr attr;
	uint32_t parent;
	uint32_t first_child; /* into fs->children, sorted by name */
	uint32_t child_count;
	int32_t volume;       /* -1 unless kind is PLAN_LOWER_FILE */
	enum plan_node_kind kind;
};

/* A volume file open at least once; opens of one node share its fd (reads
 * are pread at an offset), which is closed at the last release. */
struct open_file {
	struct open_file *next; /* in its bucket */
	uint32_t node;
	unsigned int refs;
	int fd;
};

#define OPEN_BUCKETS 1024

struct fs_plan {
	struct served_node *nodes;
	size_t node_count;
	uint32_t *children;
	char *strings;
	const struct volume *volumes;
	uint64_t lower_bytes;
	double timeout;
	pthread_mutex_t open_lock; /* guards open_files */
	struct open_file *open_files[OPEN_BUCKETS];
};

#define NO_FD UINT64_MAX /* fi->fh of a synthesized file */

/* ---- the served table ---- */

static char *copy_bytes(char **pool, const char *bytes, size_t len)
{
	char *start = *pool;

	memcpy(start, bytes, len);
	start[len] = '\0';
	*pool += len + 1;
	return start;
}

static size_t string_bytes(const struct plan_node *node)
{
	size_t len = strlen(node->name) + 1;

	if (node->kind == PLAN_LOWER_FILE)
		len += strlen(node->lower_path) + 1;
	else if (node->kind == PLAN_SYNTH_FILE)
		len += node->size + 1;
	return len;
}

/* Three exactly sized arrays, so that the plan freed afterwards leaves no
 * slack behind: a few hundred bytes per node in all. */
struct fs_plan *fs_plan_new(const struct plan *plan, double timeout, struct error *err)
{
	size_t strings = 0, children = 0;
	struct fs_plan *fs;
	char *pool;

	if (plan->node_count == 0) {
		error_set(err, EINVAL, "the plan is empty");
		return NULL;
	}
	for (size_t i = 0; i < plan->node_count; i++) {
		strings += string_bytes(&plan->nodes[i]);
		children += plan->nodes[i].child_count;
	}
	fs = xcalloc(1, sizeof(*fs));
	fs->nodes = xcalloc(plan->node_count, sizeof(*fs->nodes));
	fs->children = xcalloc(children ? children : 1, sizeof(*fs->children));
	fs->strings = pool = xmalloc(strings);
	fs->node_count = plan->node_count;
	fs->volumes = plan->volumes;
	fs->lower_bytes = plan_lower_bytes(plan);
	fs->timeout = timeout;
	pthread_mutex_init(&fs->open_lock, NULL);
	children = 0;
	for (size_t i = 0; i < plan->node_count; i++) {
		const struct plan_node *from = &plan->nodes[i];
		struct served_node *node = &fs->nodes[i];

		node->name = copy_bytes(&pool, from->name, strlen(from->name));
		if (from->kind == PLAN_LOWER_FILE)
			node->data = copy_bytes(&pool, from->lower_path, strlen(from->lower_path));
		else if (from->kind == PLAN_SYNTH_FILE)
			node->data = copy_bytes(&pool, from->content, from->size);
		node->size = from->size;
		node->mtime = from->mtime;
		node->attr = from->attr;
		node->parent = from->parent;
		node->kind = from->kind;
		node->volume = from->kind == PLAN_LOWER_FILE ? from->volume : -1;
		node->first_child = (uint32_t)children;
		node->child_count = (uint32_t)from->child_count;
		if (from->child_count) /* an empty dir has no array */
			memcpy(&fs->children[children], from->children,
			       from->child_count * sizeof(*from->children));
		children += from->child_count;
	}
	return fs;
}

void fs_plan_free(struct fs_plan *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i < OPEN_BUCKETS; i++) {
		for (struct open_file *file = fs->open_files[i], *next; file; file = next) {
			next = file->next;
			close(file->fd);
			free(file);
		}
	}
	pthread_mutex_destroy(&fs->open_lock);
	free(fs->nodes);
	free(fs->children);
	free(fs->strings);
	free(fs);
}

static struct fs_plan *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const struct served_node *node_of(const struct fs_plan *fs, fuse_ino_t ino)
{
	return ino >= FUSE_ROOT_ID && ino - FUSE_ROOT_ID < fs->node_count
		       ? &fs->nodes[ino - FUSE_ROOT_ID]
		       : NULL;
}

static fuse_ino_t ino_of(const struct fs_plan *fs, const struct served_node *node)
{
	return (fuse_ino_t)(node - fs->nodes) + FUSE_ROOT_ID;
}

/* Everything is the volume entry's but st_ino and st_dev; atime and ctime are
 * the mtime (the plan keeps no more). */
static void fill_stat(const struct fs_plan *fs, const struct served_node *node,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(fs, node);
	st->st_mode = node->attr.mode;
	st->st_nlink = node->attr.nlink;
	st->st_uid = node->attr.uid;
	st->st_gid = node->attr.gid;
	st->st_size = (off_t)node->size;
	st->st_blocks = (blkcnt_t)node->attr.blocks;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = node->mtime;
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
	const uint32_t *children = &fs->children[dir->first_child];
	size_t low = 0, high = dir->child_count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		int c = strcmp(name, fs->nodes[children[mid]].name);

		if (c == 0)
			return &fs->nodes[children[mid]];
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	return NULL;
}

/* A volume file must still hold the plan's bytes: a shorter one would be
 * served short, and the kernel fills the rest of a page with zeros. */
static int check_length(const struct fs_plan *fs, const struct served_node *node, int fd)
{
	const struct volume *volume = &fs->volumes[node->volume];
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_error("%s/%s: %s", volume->path, node->data, strerror(errno));
		return -EIO;
	}
	if ((uint64_t)st.st_size < node->size) {
		log_error("%s/%s: %jd bytes, the mount shows %" PRIu64
			  ": the volume changed underneath the mount (EIO)",
			  volume->path, node->data, (intmax_t)st.st_size, node->size);
		return -EIO;
	}
	return 0;
}

/* ---- open files ---- */

static int open_volume_file(const struct fs_plan *fs, const struct served_node *node)
{
	const struct volume *volume = &fs->volumes[node->volume];
	int fd, rc;

	fd = volume_open_file(volume, node->data);
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
		/* The daemon's limit, not the volume: say so, and let it pass. */
		log_error("%s/%s: cannot open: %s (the daemon holds one fd per distinct "
			  "open file)", volume->path, node->data, strerror(-fd));
		return fd;
	}
	if (fd < 0) {
		log_error("%s/%s: %s: the volume changed underneath the mount (EIO)",
			  volume->path, node->data, strerror(-fd));
		return -EIO;
	}
	rc = check_length(fs, node, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static struct open_file *open_file_find(struct fs_plan *fs, uint32_t index)
{
	struct open_file *file = fs->open_files[index % OPEN_BUCKETS];

	while (file && file->node != index)
		file = file->next;
	return file;
}

/* The node's open file with one more reference, opened if it is not yet;
 * NULL and *rc a -errno if it cannot be. The volume is opened outside the
 * lock (a slow volume holds up no other open); of two first opens racing,
 * the second closes its fd and shares the first's. */
static struct open_file *open_file_get(struct fs_plan *fs, const struct served_node *node,
				       int *rc)
{
	uint32_t index = (uint32_t)(node - fs->nodes);
	struct open_file *file;
	int fd;

	pthread_mutex_lock(&fs->open_lock);
	file = open_file_find(fs, index);
	if (file)
		file->refs++;
	pthread_mutex_unlock(&fs->open_lock);
	if (file)
		return file;
	fd = open_volume_file(fs, node);
	if (fd < 0) {
		*rc = fd;
		return NULL;
	}
	pthread_mutex_lock(&fs->open_lock);
	file = open_file_find(fs, index);
	if (file) {
		file->refs++;
	} else {
		struct open_file **bucket = &fs->open_files[index % OPEN_BUCKETS];

		file = xmalloc(sizeof(*file));
		*file = (struct open_file){ .next = *bucket, .node = index, .refs = 1, .fd = fd };
		*bucket = file;
		fd = -1;
	}
	pthread_mutex_unlock(&fs->open_lock);
	if (fd >= 0)
		close(fd);
	return file;
}

static void open_file_put(struct fs_plan *fs, struct open_file *file)
{
	struct open_file **link = &fs->open_files[file->node % OPEN_BUCKETS];

	pthread_mutex_lock(&fs->open_lock);
	if (--file->refs == 0) {
		while (*link != file)
			link = &(*link)->next;
		*link = file->next;
		close(file->fd);
		free(file);
	}
	pthread_mutex_unlock(&fs->open_lock);
}

/* ---- operations ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* No splice: reads go through a buffer (read_volume). The kernel
	 * checks the volumes' ACLs too, asking getxattr for them. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
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

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct served_node *node = node_of(fs_of(req), ino);

	if (!node)
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
		node = offset == 0 ? dir : &fs->nodes[dir->parent];
		name = offset == 0 ? "." : "..";
		/* Not looked up by the kernel: no node id for it to count. */
		memset(&entry, 0, sizeof(entry));
		entry.attr.st_ino = ino_of(fs, node);
		entry.attr.st_mode = node->attr.mode;
	} else {
		node = &fs->nodes[fs->children[dir->first_child + (size_t)offset - 2]];
		name = node->name;
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
	for (; offset >= 0 && (size_t)offset < (size_t)dir->child_count + 2; offset++) {
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

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	struct open_file *file;
	int rc;

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
	if (node->kind == PLAN_SYNTH_FILE) {
		fi->fh = NO_FD;
		fuse_reply_open(req, fi);
		return;
	}
	file = open_file_get(fs, node, &rc);
	if (!file) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)file;
	if (fuse_reply_open(req, fi) != 0)
		open_file_put(fs, file); /* the open was interrupted: no release will come */
}

/* One read buffer per thread, kept between requests and freed with the
 * thread (libfuse ends idle workers). */
struct read_buffer {
	size_t size;
	char bytes[];
};

static pthread_key_t read_buffer_key;
static pthread_once_t read_buffer_once = PTHREAD_ONCE_INIT;

static void read_buffer_key_make(void)
{
	pthread_key_create(&read_buffer_key, free);
}

static char *read_buffer(size_t size)
{
	struct read_buffer *buffer;

	pthread_once(&read_buffer_once, read_buffer_key_make);
	buffer = pthread_getspecific(read_buffer_key);
	if (!buffer || buffer->size < size) {
		free(buffer);
		buffer = xmalloc(sizeof(*buffer) + size);
		buffer->size = size;
		pthread_setspecific(read_buffer_key, buffer);
	}
	return buffer->bytes;
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
	size_t done = 0;
	ssize_t n;

	while (done < size) {
		n = pread(fd, buf + done, size - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("%s/%s: read at %jd: %s (EIO)", volume->path, node->data,
				  (intmax_t)offset + (intmax_t)done, strerror(errno));
			return -EIO;
		}
		if (n == 0) {
			log_error("%s/%s: ends at %jd, the mount shows %" PRIu64
				  " bytes: the volume changed underneath the mount (EIO)",
				  volume->path, node->data, (intmax_t)offset + (intmax_t)done,
				  node->size);
			return -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	char *buf;
	int rc;

	if (!node) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (offset < 0 || (uint64_t)offset >= node->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > node->size - (uint64_t)offset)
		size = (size_t)(node->size - (uint64_t)offset);
	if (fi->fh == NO_FD) {
		fuse_reply_buf(req, node->data + offset, size);
		return;
	}
	buf = read_buffer(size);
	rc = read_volume(fs, node, ((struct open_file *)(uintptr_t)fi->fh)->fd, buf, size,
			 offset);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	metrics_add(METRIC_READ_VOLUME_BYTES, size);
	fuse_reply_buf(req, buf, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh != NO_FD)
		open_file_put(fs_of(req), (struct open_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
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
	st.f_files = (fsfilcnt_t)fs->node_count;
	st.f_ffree = st.f_favail = 0;
	st.f_flag |= ST_RDONLY;
	fuse_reply_statfs(req, &st);
}

/* The only extended attributes served: a volume file's POSIX ACL, part of
 * its permissions. A synthesized file or a merged dir has none. */
static const char *const acl_names[] = { "system.posix_acl_access",
					 "system.posix_acl_default" };

static bool is_acl_name(const char *name)
{
	for (size_t i = 0; i < sizeof(acl_names) / sizeof(*acl_names); i++)
		if (strcmp(name, acl_names[i]) == 0)
			return true;
	return false;
}

/* Like fgetxattr on the node's volume file: the value's length, or -errno;
 * -ENODATA for a node with no volume file. */
static ssize_t volume_xattr(const struct fs_plan *fs, const struct served_node *node,
			    const char *name, char *buf, size_t size)
{
	ssize_t len;
	int fd;

	if (node->kind != PLAN_LOWER_FILE)
		return -ENODATA;
	fd = open_volume_file(fs, node);
	if (fd < 0)
		return fd;
	len = fgetxattr(fd, name, buf, size);
	if (len < 0)
		len = errno == ENOTSUP ? -ENODATA : -errno;
	close(fd);
	return len;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_plan *fs = fs_of(req);
	const struct served_node *node = node_of(fs, ino);
	char *buf = size ? read_buffer(size) : NULL;
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
	.read = op_read,
	.release = op_release,
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
