#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files whose bytes the merge reads; all are small. */
static const char *const content_files[] = {
	"parts.json", "metadata.json", "minTimestampForCompositeIndex",
};
#define CONTENT_MAX (16u << 20)

/* Subtrees that are never shown: their contents are not scanned (a snapshot
 * holds a hard-linked copy of the whole volume, and so does the layout that
 * materialize --into keeps for rollback). */
static bool skip_contents(const char *name, int depth)
{
	return strcmp(name, "snapshots") == 0 ||
	       (depth == 1 && (strcmp(name, "cache") == 0 || strcmp(name, ".vmunion-commit") == 0));
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

static int scan_dir(int dirfd, struct vnode *dir, const char *path, int depth,
		    struct error *err);

static int scan_entry(int dirfd, struct vnode *node, const char *path, int depth,
		      struct error *err)
{
	int rc;

	if (fstatat(dirfd, node->name, &node->st, AT_SYMLINK_NOFOLLOW) < 0)
		return error_set(err, errno, "%s: %s", path, strerror(errno));
	if (S_ISREG(node->st.st_mode) && wants_content(node->name)) {
		rc = read_file_at(dirfd, node->name, CONTENT_MAX, &node->content,
				  &node->content_len);
		if (rc < 0)
			return error_set(err, -rc, "%s: %s", path, strerror(-rc));
	}
	if (!S_ISDIR(node->st.st_mode))
		return 0;
	if (skip_contents(node->name, depth)) {
		node->not_scanned = true;
		return 0;
	}
	return scan_dir(dirfd, node, path, depth, err);
}

/* Reads the entries of dir->name (below dirfd) into dir->children, recursively. */
static int scan_dir(int dirfd, struct vnode *dir, const char *path, int depth,
		    struct error *err)
{
	size_t capacity = 0;
	struct dirent *de;
	DIR *stream;
	int fd, rc = 0;

	fd = openat(dirfd, dir->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "%s: %s", path, strerror(errno));
	stream = fdopendir(fd);
	if (!stream) {
		close(fd);
		return error_set(err, errno, "%s: %s", path, strerror(errno));
	}
	while ((de = readdir(stream))) {
		struct vnode *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = ARRAY_PUSH(dir->children, dir->child_count, capacity);
		memset(child, 0, sizeof(*child));
		child->name = xstrdup(de->d_name);
	}
	for (size_t i = 0; rc == 0 && i < dir->child_count; i++) {
		char *child_path = xasprintf("%s/%s", path, dir->children[i].name);

		rc = scan_entry(fd, &dir->children[i], child_path, depth + 1, err);
		free(child_path);
	}
	closedir(stream);
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
}

int volume_open(struct volume *volume, const char *path, struct error *err)
{
	int rc;

	memset(volume, 0, sizeof(*volume));
	volume->dirfd = volume->lock_fd = -1;
	volume->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (volume->dirfd < 0)
		return error_set(err, errno, "%s: cannot open volume: %s", path,
				 strerror(errno));
	volume->path = xstrdup(path);
	volume->root.name = xstrdup(".");
	if (fstat(volume->dirfd, &volume->root.st) < 0) {
		rc = error_set(err, errno, "%s: %s", path, strerror(errno));
		volume_close(volume);
		return rc;
	}
	rc = scan_dir(volume->dirfd, &volume->root, path, 0, err);
	if (rc < 0)
		volume_close(volume);
	return rc;
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
	free(volume->path);
	volume->path = NULL;
}

int volume_open_file(const struct volume *volume, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, volume->dirfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = strstr(path, "..") ? (errno = EXDEV, -1)
					: openat(volume->dirfd, path, (int)how.flags);
	return fd < 0 ? -errno : (int)fd;
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
