/* SPDX-License-Identifier: Apache-2.0 */
#include "volume.h"
#include "acl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files whose bytes the merge reads; all are small. */
static const char *const content_files[] = {
	"parts.json", "metadata.json", "minTimestampForCompositeIndex",
};
#define CONTENT_MAX (16u << 20)

/* Where a directory sits in the volume, which decides how its entries are scanned. */
enum place { PLACE_OTHER, PLACE_ROOT, PLACE_DATA, PLACE_PARTITIONS };

static enum place child_place(enum place place, const char *name)
{
	if (place == PLACE_ROOT && strcmp(name, "data") == 0)
		return PLACE_DATA;
	if (place == PLACE_DATA && (strcmp(name, "small") == 0 || strcmp(name, "big") == 0 ||
				    strcmp(name, "indexdb") == 0))
		return PLACE_PARTITIONS;
	return PLACE_OTHER;
}

/* Subtrees that are never shown: their contents are not scanned (a snapshot
 * holds a hard-linked copy of the whole volume, and so does the layout that
 * materialize --into keeps for rollback). */
static bool skip_contents(const char *name, enum place parent)
{
	return strcmp(name, "snapshots") == 0 ||
	       (parent == PLACE_ROOT &&
		(strcmp(name, "cache") == 0 || strcmp(name, ".vmunion-commit") == 0));
}

static bool wants_content(const char *name)
{
	for (size_t i = 0; i < sizeof(content_files) / sizeof(content_files[0]); i++)
		if (strcmp(name, content_files[i]) == 0)
			return true;
	return false;
}

static int compare_vnodes(const void *a, const void *b)
{
	return strcmp(((const struct vnode *)a)->name, ((const struct vnode *)b)->name);
}

static void keep_stat(struct vnode *node, const struct stat *st)
{
	node->st = (struct vnode_stat){ .st_mode = st->st_mode, .st_uid = st->st_uid,
					.st_gid = st->st_gid, .st_nlink = st->st_nlink,
					.st_size = st->st_size, .st_blocks = st->st_blocks,
					.st_mtim = st->st_mtim, .st_dev = st->st_dev,
					.st_ino = st->st_ino };
}

/* One scan of a volume; path names the entry being scanned, for messages
 * (grown and cut back in place: no allocation per entry). A directory's
 * entries are all read before its children are scanned, so one getdents
 * buffer serves the whole scan. */
struct scan {
	struct volume *volume;
	struct error *err;
	char *path;
	size_t len, capacity;
	char entries[32768];
};

static size_t path_push(struct scan *scan, const char *name)
{
	size_t old = scan->len, n = strlen(name);

	if (old + n + 2 > scan->capacity) {
		scan->capacity = (old + n + 2) * 2;
		scan->path = xrealloc(scan->path, scan->capacity);
	}
	scan->path[old] = '/';
	memcpy(scan->path + old + 1, name, n + 1);
	scan->len = old + n + 1;
	return old;
}

static void path_pop(struct scan *scan, size_t old)
{
	scan->path[old] = '\0';
	scan->len = old;
}

static int scan_error(struct scan *scan, int errnum)
{
	return error_set(scan->err, errnum, "%s: %s", scan->path, strerror(errnum));
}

static int scan_dir(struct scan *scan, int fd, struct vnode *dir, enum place place);

static bool names_acl(const char *list, size_t len)
{
	for (size_t i = 0; i < len; i += strlen(list + i) + 1)
		if (strcmp(list + i, ACL_ACCESS_XATTR) == 0 ||
		    strcmp(list + i, ACL_DEFAULT_XATTR) == 0)
			return true;
	return false;
}

/* The POSIX ACLs of the directory open at fd. One listxattr tells most
 * directories, which have none. */
static int scan_acl(struct scan *scan, int fd, struct vnode *dir)
{
	char list[1024];
	struct vnode_acl acl = { 0 };
	ssize_t n = flistxattr(fd, list, sizeof(list) - 1);
	int rc;

	if (n < 0 && errno != ERANGE)
		return errno == ENOTSUP ? 0 : scan_error(scan, errno);
	if (n >= 0) {
		list[n] = '\0';
		if (!names_acl(list, (size_t)n))
			return 0;
	}
	rc = fd_xattr_get(fd, ACL_ACCESS_XATTR, &acl.access, &acl.access_len);
	if (rc == 0)
		rc = fd_xattr_get(fd, ACL_DEFAULT_XATTR, &acl.defaults, &acl.defaults_len);
	if (rc < 0) {
		free(acl.access);
		return scan_error(scan, -rc);
	}
	if (acl.access || acl.defaults) {
		dir->acl = xmalloc(sizeof(*dir->acl));
		*dir->acl = acl;
	}
	return 0;
}

/* A partition that is a symlink: vmstorage follows it, so the scan does, and
 * pins its target for volume_open_file. A link to no directory stays a link,
 * which the plan hides. */
static int scan_link(struct scan *scan, int dirfd, struct vnode *node, const char *level)
{
	struct volume_link *link;
	struct stat st;
	int fd, pinned, rc;

	fd = openat(dirfd, node->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0 || (pinned = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = scan_error(scan, errno);

		if (fd >= 0)
			close(fd);
		return rc;
	}
	keep_stat(node, &st);
	node->linked = true;
	link = ARRAY_PUSH(scan->volume->links, scan->volume->link_count,
			  scan->volume->link_capacity);
	link->path = xasprintf("data/%s/%s", level, node->name);
	link->dirfd = pinned;
	if ((rc = scan_acl(scan, fd, node)) < 0) {
		close(fd);
		return rc;
	}
	return scan_dir(scan, fd, node, PLACE_OTHER);
}

static int scan_entry(struct scan *scan, int dirfd, struct vnode *node,
		      const struct vnode *parent, enum place parent_place)
{
	struct stat st;
	int fd, rc;

	if (fstatat(dirfd, node->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return scan_error(scan, errno);
	keep_stat(node, &st);
	if (S_ISLNK(st.st_mode) && parent_place == PLACE_PARTITIONS &&
	    is_partition_name(node->name))
		return scan_link(scan, dirfd, node, parent->name);
	if (S_ISREG(st.st_mode) && wants_content(node->name)) {
		rc = read_file_at(dirfd, node->name, CONTENT_MAX, &node->content,
				  &node->content_len);
		if (rc < 0)
			return scan_error(scan, -rc);
		/* read_file_at reads into a 4 KiB buffer; a part's metadata.json
		 * is ~150 bytes, and there is one per part. */
		node->content = xrealloc(node->content, node->content_len + 1);
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = openat(dirfd, node->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return scan_error(scan, errno);
	rc = scan_acl(scan, fd, node);
	if (rc < 0 || skip_contents(node->name, parent_place)) {
		node->not_scanned = rc == 0;
		close(fd);
		return rc;
	}
	return scan_dir(scan, fd, node, child_place(parent_place, node->name));
}

/* Reads the names in the directory open at fd into dir->children.
 * getdents64 on the fd, not fdopendir: a volume has a directory per part,
 * and fdopendir costs each one an fstat, two fcntls and a 32 KiB buffer. */
static int read_names(struct scan *scan, int fd, struct vnode *dir)
{
	size_t capacity = 0;
	ssize_t n;

	while ((n = getdents64(fd, scan->entries, sizeof(scan->entries))) > 0) {
		for (ssize_t off = 0; off < n;) {
			const struct dirent64 *de = (const void *)(scan->entries + off);
			struct vnode *child;

			off += de->d_reclen;
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			child = ARRAY_PUSH(dir->children, dir->child_count, capacity);
			memset(child, 0, sizeof(*child));
			child->name = xstrdup(de->d_name);
		}
	}
	if (n < 0)
		return scan_error(scan, errno);
	if (dir->child_count < capacity) /* most dirs are parts of a few files */
		dir->children = xrealloc(dir->children, dir->child_count * sizeof(struct vnode));
	return 0;
}

/* Reads the entries of the directory open at fd (which it closes) into
 * dir->children, recursively. */
static int scan_dir(struct scan *scan, int fd, struct vnode *dir, enum place place)
{
	int rc = read_names(scan, fd, dir);

	for (size_t i = 0; rc == 0 && i < dir->child_count; i++) {
		size_t old = path_push(scan, dir->children[i].name);

		rc = scan_entry(scan, fd, &dir->children[i], dir, place);
		path_pop(scan, old);
	}
	close(fd);
	if (dir->child_count)
		qsort(dir->children, dir->child_count, sizeof(struct vnode), compare_vnodes);
	return rc;
}

static void vnode_free(struct vnode *node)
{
	for (size_t i = 0; i < node->child_count; i++)
		vnode_free(&node->children[i]);
	free(node->children);
	free(node->content);
	free(node->name);
	if (node->acl) {
		free(node->acl->access);
		free(node->acl->defaults);
		free(node->acl);
	}
}

void volume_drop_scan(struct volume *volume)
{
	for (size_t i = 0; i < volume->root.child_count; i++)
		vnode_free(&volume->root.children[i]);
	free(volume->root.children);
	volume->root.children = NULL;
	volume->root.child_count = 0;
}

int volume_open(struct volume *volume, const char *path, struct error *err)
{
	struct scan *scan;
	struct stat st;
	int fd, rc;

	memset(volume, 0, sizeof(*volume));
	volume->dirfd = volume->lock_fd = -1;
	volume->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (volume->dirfd < 0)
		return error_set(err, errno, "%s: cannot open volume: %s", path,
				 strerror(errno));
	volume->path = xstrdup(path);
	volume->root.name = xstrdup(".");
	fd = fcntl(volume->dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || fstat(volume->dirfd, &st) < 0) {
		rc = error_set(err, errno, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		volume_close(volume);
		return rc;
	}
	keep_stat(&volume->root, &st);
	scan = xcalloc(1, sizeof(*scan));
	scan->volume = volume;
	scan->err = err;
	scan->path = xstrdup(path);
	scan->len = scan->capacity = strlen(path);
	rc = scan_acl(scan, fd, &volume->root);
	if (rc == 0)
		rc = scan_dir(scan, fd, &volume->root, PLACE_ROOT);
	else
		close(fd);
	free(scan->path);
	free(scan);
	if (rc < 0)
		volume_close(volume);
	return rc;
}

int volumes_open(struct volume *volumes, char *const *paths, size_t count, struct error *err)
{
	for (size_t i = 0; i < count; i++) {
		int rc = volume_open(&volumes[i], paths[i], err);

		if (rc < 0) {
			while (i-- > 0)
				volume_close(&volumes[i]);
			return rc;
		}
	}
	return 0;
}

int volume_lock(struct volume *volume, struct error *err)
{
	int fd = openat(volume->dirfd, "flock.lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		close(fd);
		return error_set(err, EBUSY,
				 "%s: flock.lock is locked: a vmstorage is running on this volume "
				 "(stop it first)",
				 volume->path);
	}
	volume->lock_fd = fd;
	return 0;
}

void volume_close(struct volume *volume)
{
	if (volume->lock_fd >= 0)
		close(volume->lock_fd);
	volume->lock_fd = -1;
	if (volume->dirfd >= 0)
		close(volume->dirfd);
	volume->dirfd = -1;
	vnode_free(&volume->root);
	for (size_t i = 0; i < volume->link_count; i++) {
		free(volume->links[i].path);
		close(volume->links[i].dirfd);
	}
	free(volume->links);
	volume->links = NULL;
	volume->link_count = volume->link_capacity = 0;
	free(volume->path);
	volume->path = NULL;
}

/* O_NONBLOCK: a FIFO put in a volume's file's place would hold the open,
 * and the daemon's thread with it, until a writer came; it is refused. */
static int open_beneath(int dirfd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	struct stat st;
	int rc = 0;

	if (fd < 0 && errno == ENOSYS)
		fd = strstr(path, "..") ? (errno = EXDEV, -1) : openat(dirfd, path, (int)how.flags);
	if (fd < 0)
		return -errno;
	if (fstat((int)fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		rc = -EIO; /* nothing the plan serves: the volume changed */
	if (rc < 0) {
		close((int)fd);
		return rc;
	}
	return (int)fd;
}

int volume_open_file(const struct volume *volume, const char *path)
{
	for (size_t i = 0; i < volume->link_count; i++) {
		size_t len = strlen(volume->links[i].path);

		if (strncmp(path, volume->links[i].path, len) == 0 && path[len] == '/')
			return open_beneath(volume->links[i].dirfd, path + len + 1);
	}
	return open_beneath(volume->dirfd, path);
}

const struct vnode *vnode_child(const struct vnode *dir, const char *name)
{
	struct vnode key = { .name = (char *)name };

	if (!dir || !dir->child_count)
		return NULL;
	return bsearch(&key, dir->children, dir->child_count, sizeof(struct vnode),
		       compare_vnodes);
}

const struct vnode *vnode_at(const struct vnode *root, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	const struct vnode *node = root;

	for (char *part = strtok_r(copy, "/", &save); node && part;
	     part = strtok_r(NULL, "/", &save))
		node = vnode_child(node, part);
	free(copy);
	return node;
}

bool vnode_is_dir(const struct vnode *node)
{
	return node && S_ISDIR(node->st.st_mode);
}

bool vnode_is_file(const struct vnode *node)
{
	return node && S_ISREG(node->st.st_mode);
}
