#include "upper.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define IDENTITY_FILE "vmunionfs.json"
#define IDENTITY_FORMAT "vmunionfs-upper/1"

static char *identity_json(const struct plan *plan)
{
	cJSON *json = cJSON_CreateObject(), *volumes = cJSON_CreateArray();
	char *printed, *copy, fingerprint[17];

	cJSON_AddStringToObject(json, "format", IDENTITY_FORMAT);
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
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xasprintf("%s\n", printed);
	cJSON_free(printed);
	return copy;
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

static int write_stub(int dirfd, const char *path, const struct plan_node *node)
{
	char *ref = xasprintf("%d:%s", node->volume, node->lower_path);
	struct timespec times[2] = { node->mtime, node->mtime };
	int fd, rc = 0;

	fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(ref);
		return -errno;
	}
	if (ftruncate(fd, (off_t)node->size) < 0 ||
	    fsetxattr(fd, UPPER_STUB_XATTR, ref, strlen(ref), 0) < 0 ||
	    futimens(fd, times) < 0)
		rc = -errno;
	close(fd);
	free(ref);
	return rc;
}

static int write_synth(int dirfd, const char *path, const struct plan_node *node)
{
	struct timespec times[2] = { node->mtime, node->mtime };
	int fd, rc = 0;
	size_t done = 0;

	fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (rc == 0 && done < node->size) {
		ssize_t n = write(fd, node->content + done, node->size - done);

		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (rc == 0 && futimens(fd, times) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int upper_populate(int dirfd, const struct plan *plan, struct error *err)
{
	/* Parents precede children in the node table. */
	for (size_t i = 1; i < plan->node_count; i++) {
		const struct plan_node *node = &plan->nodes[i];
		char *path = plan_path(plan, (uint32_t)i);
		int rc;

		if (node->kind == PLAN_DIR)
			rc = mkdirat(dirfd, path, 0755) < 0 ? -errno : 0;
		else if (node->kind == PLAN_LOWER_FILE)
			rc = write_stub(dirfd, path, node);
		else
			rc = write_synth(dirfd, path, node);
		if (rc < 0) {
			error_set(err, -rc, "upper: cannot create %s: %s%s", path, strerror(-rc),
				  rc == -ENOTSUP ? " (the upper filesystem must support user "
						   "extended attributes)"
						 : "");
			free(path);
			return rc;
		}
		free(path);
	}
	return 0;
}

/* Builds tree.new, then renames it to tree: a crash leaves no half tree. */
static int create_tree(struct upper *upper, const struct plan *plan, struct error *err)
{
	int fd, rc;

	rc = remove_tree_at(upper->dirfd, "tree.new");
	if (rc < 0)
		return error_set(err, -rc, "%s/tree.new: %s", upper->path, strerror(-rc));
	if (mkdirat(upper->dirfd, "tree.new", 0755) < 0)
		return error_set(err, errno, "%s/tree.new: %s", upper->path, strerror(errno));
	fd = openat(upper->dirfd, "tree.new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "%s/tree.new: %s", upper->path, strerror(errno));
	rc = upper_populate(fd, plan, err);
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

/* The identity file must name exactly these volumes; a new upper gets one
 * when may_create. */
static int check_identity(struct upper *upper, const struct plan *plan, bool may_create,
			  struct error *err)
{
	char *want = identity_json(plan), *have = NULL;
	size_t len;
	int rc = read_file_at(upper->dirfd, IDENTITY_FILE, 1 << 20, &have, &len);

	if (rc == -ENOENT && !may_create) {
		rc = error_set(err, EINVAL, "%s: not a vmunionfs upper directory (no %s)",
			       upper->path, IDENTITY_FILE);
	} else if (rc == -ENOENT) {
		if (!dir_is_empty(upper->dirfd))
			rc = error_set(err, ENOTEMPTY,
				       "%s: not empty and not a vmunionfs upper directory "
				       "(no %s)",
				       upper->path, IDENTITY_FILE);
		else
			rc = write_file_atomic(upper->dirfd, IDENTITY_FILE, want, strlen(want));
		if (rc < 0 && err && !err->message[0])
			error_set(err, -rc, "%s/%s: %s", upper->path, IDENTITY_FILE,
				  strerror(-rc));
	} else if (rc < 0) {
		error_set(err, -rc, "%s/%s: %s", upper->path, IDENTITY_FILE, strerror(-rc));
	} else if (strcmp(have, want) != 0 && same_volumes(have, want)) {
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
	free(want);
	free(have);
	return rc;
}

static int open_dirs(struct upper *upper, const struct plan *plan, struct error *err)
{
	int rc;

	upper->dirfd = open(upper->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->dirfd < 0)
		return error_set(err, errno, "%s: %s", upper->path, strerror(errno));
	rc = check_identity(upper, plan, true, err);
	if (rc < 0)
		return rc;
	if (faccessat(upper->dirfd, "tree", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = create_tree(upper, plan, err);
		if (rc < 0)
			return rc;
	}
	upper->tree_fd = openat(upper->dirfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->tree_fd < 0)
		return error_set(err, errno, "%s/tree: %s", upper->path, strerror(errno));
	return 0;
}

int upper_open(struct upper *upper, const char *path, const struct plan *plan,
	       struct error *err)
{
	int rc;

	memset(upper, 0, sizeof(*upper));
	upper->dirfd = upper->tree_fd = -1;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
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
	int rc;

	memset(upper, 0, sizeof(*upper));
	upper->tree_fd = -1;
	upper->path = xstrdup(path);
	upper->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper->dirfd < 0)
		rc = error_set(err, errno, "%s: %s", path, strerror(errno));
	else
		rc = check_identity(upper, plan, false, err);
	if (rc == 0) {
		upper->tree_fd = openat(upper->dirfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (upper->tree_fd < 0)
			rc = error_set(err, errno, "%s/tree: %s", path, strerror(errno));
	}
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

static int copy_bytes(int from, int to)
{
	char buf[1 << 16];

	if (lseek(from, 0, SEEK_SET) < 0 || lseek(to, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(from, buf, sizeof(buf)), done = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		while (done < n) {
			ssize_t m = write(to, buf + done, (size_t)(n - done));

			if (m < 0 && errno != EINTR)
				return -errno;
			if (m > 0)
				done += m;
		}
	}
}

int upper_copy_up(int fd, int lower_fd, const char *path)
{
	struct stat st;
	int rc;

	if (fstat(lower_fd, &st) < 0)
		return -errno;
	rc = copy_bytes(lower_fd, fd);
	if (rc == 0 && ftruncate(fd, st.st_size) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc == 0 && removexattr(path, UPPER_STUB_XATTR) < 0 && errno != ENODATA)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	return rc;
}
