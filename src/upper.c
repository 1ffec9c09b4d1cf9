/* SPDX-License-Identifier: Apache-2.0 */
#include "upper.h"
#include "acl.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define IDENTITY_FILE "vmunionfs.json"
/* 2: a canary xattr on tree, named in the identity file. 3: lazy directories
 * (UPPER_LAZY_XATTR), which an older vmunionfs would take for empty ones. A
 * format 2 upper has none, and is served as it is. */
#define IDENTITY_FORMAT "vmunionfs-upper/3"
#define IDENTITY_FORMAT_POPULATED "vmunionfs-upper/2"
/* On UPPER/tree; its value is in the identity file. An upper copied without
 * its xattrs loses it, and with it every stub's reference: refused. */
#define CANARY_XATTR "user.vmunionfs.canary"

static char *identity_json(const struct plan *plan, const char *canary, const char *format)
{
	cJSON *json = cJSON_CreateObject(), *volumes = cJSON_CreateArray();
	char *printed, *copy, fingerprint[17];

	cJSON_AddStringToObject(json, "format", format);
	for (size_t v = 0; v < plan->volume_count; v++) {
		char resolved[PATH_MAX];
		const char *path = realpath(plan->volumes[v].path, resolved)
					   ? resolved
					   : plan->volumes[v].path;

		cJSON_AddItemToArray(volumes, cJSON_CreateString(path));
	}
	cJSON_AddItemToObject(json, "volumes", volumes);
	snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, plan_fingerprint(plan));
	cJSON_AddStringToObject(json, "plan", fingerprint);
	if (canary)
		cJSON_AddStringToObject(json, "canary", canary);
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xasprintf("%s\n", printed);
	cJSON_free(printed);
	return copy;
}

/* A string field of an identity document, or NULL. Caller frees. */
static char *identity_field(const char *doc, const char *name)
{
	cJSON *json = cJSON_Parse(doc);
	const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, name));
	char *copy = value ? xstrdup(value) : NULL;

	cJSON_Delete(json);
	return copy;
}

static int new_canary(char **out, struct error *err)
{
	unsigned char bytes[16];
	char hex[2 * sizeof(bytes) + 1];

	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
		return error_set(err, errno, "getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(bytes); i++)
		snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
	*out = xstrdup(hex);
	return 0;
}

/* Whether two identity documents name the same volumes (plans may differ). */
static bool same_volumes(const char *a, const char *b)
{
	cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
	bool same = ja && jb &&
		    cJSON_Compare(cJSON_GetObjectItemCaseSensitive(ja, "volumes"),
				  cJSON_GetObjectItemCaseSensitive(jb, "volumes"), true);

	cJSON_Delete(ja);
	cJSON_Delete(jb);
	return same;
}

/* The mode, owner and times a node gets in the upper: the plan's, which are
 * its volume entry's, so that the mount's permissions are the volumes'. */
static void node_attr(const struct plan_node *node, struct stat *out)
{
	memset(out, 0, sizeof(*out));
	out->st_mode = node->attr.mode;
	out->st_uid = node->attr.uid;
	out->st_gid = node->attr.gid;
	out->st_mtim = node->mtime;
	out->st_atim = node->mtime;
}

static int apply_attr(int dirfd, const char *path, const struct stat *st)
{
	struct timespec times[2] = { st->st_atim, st->st_mtim };

	/* chown first: it clears set-id bits that chmod then sets. */
	if (fchownat(dirfd, path, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dirfd, path, st->st_mode & 07777, 0) < 0 ||
	    utimensat(dirfd, path, times, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* A stub gets its volume file's POSIX ACL, part of its permissions, which
 * the preview serves from the stub. */
static int copy_acl(const struct volume *volume, const char *lower_path, int to)
{
	char *value;
	size_t len;
	int from, rc;

	from = volume_open_file(volume, lower_path);
	if (from < 0)
		return from;
	rc = fd_xattr_get(from, ACL_ACCESS_XATTR, &value, &len);
	if (rc == 0 && len > 0 && fsetxattr(to, ACL_ACCESS_XATTR, value, len, 0) < 0)
		rc = -errno;
	free(value);
	close(from);
	return rc;
}

/* A directory gets the ACLs the plan merged for it, part of its
 * permissions, which the preview serves from the upper. */
static int set_dir_acl(int fd, const struct plan *plan, uint32_t index)
{
	const struct plan_dir_acl *acl = plan_dir_acl_find(plan->dir_acls, plan->dir_acl_count,
							   index);

	if (acl && acl->access &&
	    fsetxattr(fd, ACL_ACCESS_XATTR, acl->access, acl->access_len, 0) < 0)
		return -errno;
	if (acl && acl->defaults &&
	    fsetxattr(fd, ACL_DEFAULT_XATTR, acl->defaults, acl->defaults_len, 0) < 0)
		return -errno;
	return 0;
}

static int write_stub(int dirfd, const char *path, const struct plan *plan,
		      const struct plan_node *node)
{
	char *ref = xasprintf("%d:%s", node->volume, node->lower_path);
	int fd, rc = 0;

	fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(ref);
		return -errno;
	}
	if (ftruncate(fd, (off_t)node->size) < 0 ||
	    fsetxattr(fd, UPPER_STUB_XATTR, ref, strlen(ref), 0) < 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_acl(&plan->volumes[node->volume], node->lower_path, fd);
	close(fd);
	free(ref);
	return rc;
}

static int write_synth(int dirfd, const char *path, const struct plan *plan, uint32_t index)
{
	const struct plan_node *node = &plan->nodes[index];
	char *origin;
	int fd, rc;

	fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	origin = plan_path(plan, index);
	rc = fsetxattr(fd, UPPER_ORIGIN_XATTR, origin, strlen(origin), 0) < 0 ? -errno : 0;
	free(origin);
	if (rc == 0)
		rc = write_all(fd, node->content, node->size);
	/* Durable before its directory is marked populated (parts.json...). */
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int populate_error(struct error *err, const char *path, int rc)
{
	return error_set(err, -rc, "upper: cannot create %s: %s%s", *path ? path : "tree",
			 strerror(-rc),
			 rc == -ENOTSUP ? " (the upper filesystem must support user "
					  "extended attributes)"
					: "");
}

static int mark_lazy(int dirfd, const char *name, const struct plan *plan, uint32_t index)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;
	char *path = plan_path(plan, index);

	if (fd < 0) {
		free(path);
		return -errno;
	}
	rc = set_dir_acl(fd, plan, index);
	if (rc == 0 && fsetxattr(fd, UPPER_LAZY_XATTR, path, strlen(path), 0) < 0)
		rc = -errno;
	close(fd);
	free(path);
	return rc;
}

/* A child of a directory being populated: a lazy directory naming its plan
 * path, a stub or a synthesized file, with the volume's mode, owner, times
 * (and ACLs). */
static int create_child(int dirfd, const char *name, const struct plan *plan, uint32_t index)
{
	const struct plan_node *node = &plan->nodes[index];
	struct stat st;
	int rc;

	if (node->kind == PLAN_DIR) {
		rc = mkdirat(dirfd, name, 0700) < 0 ? -errno : 0;
		if (rc == 0)
			rc = mark_lazy(dirfd, name, plan, index);
	} else if (node->kind == PLAN_LOWER_FILE) {
		rc = write_stub(dirfd, name, plan, node);
	} else {
		rc = write_synth(dirfd, name, plan, index);
	}
	node_attr(node, &st);
	return rc < 0 ? rc : apply_attr(dirfd, name, &st);
}

/* A failed population removes the first made children of node, which it
 * made (on a full upper, what they take would fail every later write with
 * ENOSPC), and restores the directory's times: it stays lazy, as it was. A
 * lazy directory holds nothing else. A crash before this leaves them to the
 * next population, which removes them first. */
static void unmake_children(int dirfd, const struct plan *plan, const struct plan_node *node,
			    size_t made, const struct timespec times[2])
{
	for (size_t i = 0; i < made; i++)
		remove_tree_at(dirfd, plan->nodes[node->children[i]].name);
	futimens(dirfd, times);
}

int upper_populate_dir(int dirfd, const struct plan *plan, uint32_t dir,
		       const unsigned char *removed, struct error *err)
{
	const struct plan_node *node = &plan->nodes[dir];
	struct timespec times[2];
	struct stat st;
	size_t made = 0;
	char *origin;
	int rc;

	if (fstat(dirfd, &st) < 0)
		return populate_error(err, "", -errno);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	/* An interrupted population leaves some children, maybe half made: all
	 * its own (nothing else changes a lazy directory), made again. */
	rc = remove_children_at(dirfd);
	while (rc == 0 && made < node->child_count) {
		uint32_t child = node->children[made++];

		if (removed && (removed[child / 8] & (1u << (child % 8))))
			continue;
		rc = create_child(dirfd, plan->nodes[child].name, plan, child);
		if (rc < 0) {
			char *path = plan_path(plan, child);

			populate_error(err, path, rc);
			free(path);
			unmake_children(dirfd, plan, node, made, times);
			return rc;
		}
	}
	/* Filling it is no change of the directory: its times stay. Populated
	 * (no lazy xattr) only once every child is there and on disk. */
	origin = plan_path(plan, dir);
	if (rc == 0 && (futimens(dirfd, times) < 0 ||
			fsetxattr(dirfd, UPPER_ORIGIN_XATTR, origin, strlen(origin), 0) < 0 ||
			fsync(dirfd) < 0 ||
			(fremovexattr(dirfd, UPPER_LAZY_XATTR) < 0 && errno != ENODATA)))
		rc = -errno;
	if (rc < 0) {
		populate_error(err, origin, rc);
		unmake_children(dirfd, plan, node, made, times);
	}
	free(origin);
	return rc;
}

/* The plan node whose merged path the xattr name of path holds: 1 and
 * *node (PLAN_NONE when the plan has no such path), 0 without the xattr. */
static int plan_node_xattr(const char *path, const char *name, const struct plan *plan,
			   uint32_t *node)
{
	char value[PATH_MAX];
	ssize_t n = getxattr(path, name, value, sizeof(value) - 1);

	*node = PLAN_NONE;
	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
	value[n] = '\0';
	*node = plan_at(plan, value);
	return 1;
}

int upper_lazy_get(const char *path, const struct plan *plan, uint32_t *dir)
{
	int rc = plan_node_xattr(path, UPPER_LAZY_XATTR, plan, dir);

	if (rc == 1 && (*dir == PLAN_NONE || plan->nodes[*dir].kind != PLAN_DIR))
		return -EIO;
	return rc;
}

/* Builds tree.new, then renames it to tree: a crash leaves no half tree. */
static int create_tree(struct upper *upper, const struct plan *plan, const char *canary,
		       struct error *err)
{
	struct stat st;
	int fd, rc;

	rc = remove_tree_at(upper->dirfd, "tree.new");
	if (rc < 0)
		return error_set(err, -rc, "%s/tree.new: %s", upper->path, strerror(-rc));
	if (mkdirat(upper->dirfd, "tree.new", 0755) < 0)
		return error_set(err, errno, "%s/tree.new: %s", upper->path, strerror(errno));
	fd = openat(upper->dirfd, "tree.new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "%s/tree.new: %s", upper->path, strerror(errno));
	rc = upper_populate_dir(fd, plan, 0, NULL, err);
	node_attr(&plan->nodes[0], &st);
	if (rc == 0 && ((rc = set_dir_acl(fd, plan, 0)) < 0 || (rc = apply_attr(fd, ".", &st)) < 0))
		populate_error(err, "", rc);
	if (rc == 0 && fsetxattr(fd, CANARY_XATTR, canary, strlen(canary), 0) < 0)
		rc = error_set(err, errno, "%s/tree.new: %s", upper->path, strerror(errno));
	if (rc == 0 && syncfs(fd) < 0)
		rc = error_set(err, errno, "%s: sync: %s", upper->path, strerror(errno));
	close(fd);
	if (rc < 0)
		return rc;
	if (renameat(upper->dirfd, "tree.new", upper->dirfd, "tree") < 0 ||
	    fsync(upper->dirfd) < 0)
		return error_set(err, errno, "%s/tree: %s", upper->path, strerror(errno));
	return 0;
}

static bool dir_is_empty(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	bool empty = true;
	DIR *dir;

	if (fd < 0)
		return false;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return false;
	}
	while (empty && (de = readdir(dir)))
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(dir);
	return empty;
}

/* A new upper's identity file, with a new canary. The upper is 0700: its
 * stubs and copies keep the volumes' modes, which the mount enforces. */
static int create_identity(struct upper *upper, const struct plan *plan, char **canary,
			   struct error *err)
{
	char *doc;
	int rc;

	if (!dir_is_empty(upper->dirfd))
		return error_set(err, ENOTEMPTY,
				 "%s: not empty and not a vmunionfs upper directory (no %s)",
				 upper->path, IDENTITY_FILE);
	rc = new_canary(canary, err);
	if (rc < 0)
		return rc;
	doc = identity_json(plan, *canary, IDENTITY_FORMAT);
	if (fchmod(upper->dirfd, 0700) < 0)
		rc = -errno;
	if (rc == 0)
		rc = write_file_atomic(upper->dirfd, IDENTITY_FILE, doc, strlen(doc));
	free(doc);
	if (rc < 0)
		error_set(err, -rc, "%s/%s: %s", upper->path, IDENTITY_FILE, strerror(-rc));
	return rc;
}

/* The identity file must name exactly these volumes; a new upper gets one
 * when may_create. *canary is what the tree must carry. */
static int check_identity(struct upper *upper, const struct plan *plan, bool may_create,
			  char **canary, struct error *err)
{
	char *want = NULL, *have = NULL, *format = NULL;
	size_t len;
	int rc = read_file_at(upper->dirfd, IDENTITY_FILE, 1 << 20, &have, &len);

	*canary = NULL;
	if (rc == -ENOENT && !may_create) {
		rc = error_set(err, EINVAL, "%s: not a vmunionfs upper directory (no %s)",
			       upper->path, IDENTITY_FILE);
	} else if (rc == -ENOENT) {
		rc = create_identity(upper, plan, canary, err);
	} else if (rc < 0) {
		error_set(err, -rc, "%s/%s: %s", upper->path, IDENTITY_FILE, strerror(-rc));
	} else if (!(format = identity_field(have, "format")) ||
		   (strcmp(format, IDENTITY_FORMAT) != 0 &&
		    strcmp(format, IDENTITY_FORMAT_POPULATED) != 0) ||
		   !(*canary = identity_field(have, "canary"))) {
		rc = error_set(err, EINVAL,
			       "%s/%s: made by another version of vmunionfs (format %s, this one "
			       "reads %s): use a new upper",
			       upper->path, IDENTITY_FILE, format ? format : "unknown",
			       IDENTITY_FORMAT);
	} else if (strcmp(have, (want = identity_json(plan, *canary, format))) != 0 &&
		   same_volumes(have, want)) {
		rc = error_set(err, EINVAL,
			       "%s: the volumes changed since this upper was made (their merged "
			       "plan differs); the upper's stubs would point at the wrong "
			       "files: use a new upper",
			       upper->path);
	} else if (strcmp(have, want) != 0) {
		rc = error_set(err, EINVAL,
			       "%s belongs to other volumes; it was made for:\n%s"
			       "and these volumes are:\n%s"
			       "(give the same volumes in the same order, or a new upper)",
			       upper->path, have, want);
	}
	if (rc < 0) {
		free(*canary);
		*canary = NULL;
	}
	free(format);
	free(want);
	free(have);
	return rc;
}

/* Stubs name their volume files in xattrs: an upper that lost them (cp -r,
 * a backup, a filesystem without user xattrs) would serve zeros. */
static int check_canary(struct upper *upper, const char *canary, struct error *err)
{
	char value[128];
	ssize_t n = fgetxattr(upper->tree_fd, CANARY_XATTR, value, sizeof(value) - 1);

	if (n >= 0)
		value[n] = '\0';
	if (n >= 0 && strcmp(value, canary) == 0)
		return 0;
	return error_set(err, EIO,
			 "%s/tree: its extended attributes are lost (%s): the upper was "
			 "copied without them (cp -r) or onto a filesystem without user "
			 "xattrs, and its stubs would read as zeros; refused (copy an upper "
			 "with cp -a or rsync -X, or make a new one)",
			 upper->path,
			 n < 0 ? (errno == ENODATA ? "no " CANARY_XATTR : strerror(errno))
			       : CANARY_XATTR " is another upper's");
}

static int open_tree(struct upper *upper, const char *canary, struct error *err)
{
	upper->tree_fd = openat(upper->dirfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->tree_fd < 0)
		return error_set(err, errno, "%s/tree: %s", upper->path, strerror(errno));
	return check_canary(upper, canary, err);
}

/* Whoever owns the upper could replace what it serves, or plant links where
 * the daemon writes: it must be the daemon's own. Two daemons on one upper
 * would each think a file a stub that the other copied up: the lock (held
 * with dirfd, for the life of the mount) lets one in. */
static int check_owner_and_lock(struct upper *upper, struct error *err)
{
	struct stat st;

	if (fstat(upper->dirfd, &st) < 0)
		return error_set(err, errno, "%s: %s", upper->path, strerror(errno));
	if (st.st_uid != geteuid())
		return error_set(err, EPERM,
				 "%s: owned by uid %u, not by this daemon's user (uid %u): "
				 "refused (its owner could change what the preview serves)",
				 upper->path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (flock(upper->dirfd, LOCK_EX | LOCK_NB) < 0)
		return error_set(err, errno,
				 "%s: %s", upper->path,
				 errno == EWOULDBLOCK ? "in use by another vmunionfs (one preview "
							"per upper)"
						      : strerror(errno));
	return 0;
}

/* A tree made now has lazy dirs: an identity of format 2 (its first fill
 * was interrupted) must say format 3 first, or an older vmunionfs would
 * read the lazy dirs as empty. */
static int label_lazy(struct upper *upper, const struct plan *plan, const char *canary,
		      struct error *err)
{
	char *doc = identity_json(plan, canary, IDENTITY_FORMAT);
	int rc = write_file_atomic(upper->dirfd, IDENTITY_FILE, doc, strlen(doc));

	free(doc);
	if (rc < 0)
		return error_set(err, -rc, "%s/%s: %s", upper->path, IDENTITY_FILE,
				 strerror(-rc));
	return 0;
}

static int open_dirs(struct upper *upper, const struct plan *plan, struct error *err)
{
	char *canary;
	int rc;

	upper->dirfd = open(upper->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->dirfd < 0)
		return error_set(err, errno, "upper %s: %s", upper->path, strerror(errno));
	rc = check_owner_and_lock(upper, err);
	if (rc < 0)
		return rc;
	rc = check_identity(upper, plan, true, &canary, err);
	if (rc < 0)
		return rc;
	if (faccessat(upper->dirfd, "tree", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = label_lazy(upper, plan, canary, err);
		if (rc == 0)
			rc = create_tree(upper, plan, canary, err);
	}
	if (rc == 0)
		rc = open_tree(upper, canary, err);
	free(canary);
	return rc;
}

int upper_open(struct upper *upper, const char *path, const struct plan *plan,
	       struct error *err)
{
	int rc;

	memset(upper, 0, sizeof(*upper));
	upper->dirfd = upper->tree_fd = -1;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return error_set(err, errno, "%s: cannot create upper directory: %s", path,
				 strerror(errno));
	upper->path = xstrdup(path);
	rc = open_dirs(upper, plan, err);
	if (rc < 0)
		upper_close(upper);
	return rc;
}

int upper_open_existing(struct upper *upper, const char *path, const struct plan *plan,
			struct error *err)
{
	char *canary = NULL;
	int rc;

	memset(upper, 0, sizeof(*upper));
	upper->tree_fd = -1;
	upper->path = xstrdup(path);
	upper->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->dirfd < 0)
		rc = error_set(err, errno, "upper %s: %s", path, strerror(errno));
	else if (flock(upper->dirfd, LOCK_SH | LOCK_NB) < 0)
		rc = error_set(err, errno, "%s: %s", path,
			       errno == EWOULDBLOCK ? "a vmunionfs preview serves it: unmount it "
						      "first (a copy of it would be torn)"
						    : strerror(errno));
	else
		rc = check_identity(upper, plan, false, &canary, err);
	if (rc == 0)
		rc = open_tree(upper, canary, err);
	free(canary);
	if (rc < 0)
		upper_close(upper);
	return rc;
}

void upper_close(struct upper *upper)
{
	if (upper->tree_fd >= 0)
		close(upper->tree_fd);
	if (upper->dirfd >= 0)
		close(upper->dirfd);
	free(upper->path);
	memset(upper, 0, sizeof(*upper));
	upper->dirfd = upper->tree_fd = -1;
}

int upper_origin_set(const char *path, const char *plan_path)
{
	return setxattr(path, UPPER_ORIGIN_XATTR, plan_path, strlen(plan_path), 0) < 0 ? -errno : 0;
}

int upper_origin_get(const char *path, const struct plan *plan, uint32_t *node)
{
	int rc = plan_node_xattr(path, UPPER_ORIGIN_XATTR, plan, node);

	return rc == 1 ? *node != PLAN_NONE : rc;
}

int upper_stub_get(const char *path, int *volume, char **lower_path)
{
	char value[PATH_MAX + 32], *colon;
	ssize_t n = getxattr(path, UPPER_STUB_XATTR, value, sizeof(value) - 1);

	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
	value[n] = '\0';
	colon = strchr(value, ':');
	if (!colon || colon == value)
		return -EIO;
	*colon = '\0';
	*volume = atoi(value);
	*lower_path = xstrdup(colon + 1);
	return 1;
}

/* Copies the first len bytes of from to the start of to. */
static int copy_bytes(int from, int to, off_t len)
{
	char buf[1 << 16];
	off_t done = 0;

	while (done < len) {
		size_t want = (size_t)(len - done < (off_t)sizeof(buf) ? len - done : (off_t)sizeof(buf));
		ssize_t n = pread(from, buf, want, done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the volume file shrank */
		for (ssize_t put = 0; put < n;) {
			ssize_t m = pwrite(to, buf + put, (size_t)(n - put), done + put);

			if (m < 0 && errno != EINTR)
				return -errno;
			put += m > 0 ? m : 0;
		}
		done += n;
	}
	return 0;
}

int upper_copy_up(int fd, int lower_fd, const char *path, off_t keep)
{
	struct stat lower, stub;
	off_t size;
	int rc = 0;

	if (fstat(lower_fd, &lower) < 0 || fstat(fd, &stub) < 0)
		return -errno;
	size = keep < 0 ? lower.st_size : keep;
	if (ftruncate(fd, size) < 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_bytes(lower_fd, fd, size < lower.st_size ? size : lower.st_size);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc == 0 && removexattr(path, UPPER_STUB_XATTR) < 0 && errno != ENODATA)
		rc = -errno;
	if (rc == 0)
		return fsync(fd) < 0 ? -errno : 0;
	{
		/* Still a stub: give back the blocks of the partial copy (the upper
		 * may be full), and the stub its size and times. */
		struct timespec times[2] = { stub.st_atim, stub.st_mtim };

		if (ftruncate(fd, 0) == 0)
			(void)!ftruncate(fd, stub.st_size);
		futimens(fd, times);
	}
	return rc;
}
