/* SPDX-License-Identifier: Apache-2.0 */
#include "mtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FINGERPRINT_FORMAT "vmunion-materialize/1"

bool path_within(const char *child, const char *parent)
{
	size_t n = strlen(parent);

	if (strcmp(parent, "/") == 0)
		return true;
	return strncmp(child, parent, n) == 0 && (child[n] == '\0' || child[n] == '/');
}

char *resolve_path(const char *path)
{
	char resolved[PATH_MAX], *copy, *slash, *base, *out;
	const char *parent;

	if (realpath(path, resolved))
		return xstrdup(resolved);
	/* Not there yet: resolve the parent, keep the last component. */
	copy = xstrdup(path);
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		parent = slash == copy ? "/" : copy;
		base = slash + 1;
	} else {
		parent = ".";
		base = copy;
	}
	if (!realpath(parent, resolved) || !is_plain_name(base)) {
		free(copy);
		return NULL;
	}
	out = strcmp(resolved, "/") == 0 ? xasprintf("/%s", base)
					 : xasprintf("%s/%s", resolved, base);
	free(copy);
	return out;
}

bool mtree_is_file(const struct mtree_entry *entry)
{
	return entry->kind == MTREE_LOWER || entry->kind == MTREE_SYNTH ||
	       entry->kind == MTREE_UPPER;
}

static struct mtree_entry *add_entry(struct mtree *tree, char *path, enum mtree_kind kind)
{
	struct mtree_entry *e = ARRAY_PUSH(tree->entries, tree->count, tree->capacity);

	memset(e, 0, sizeof(*e));
	e->path = path;
	e->kind = kind;
	e->volume = -1;
	e->plan_node = PLAN_NONE;
	return e;
}

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct mtree_entry *)a)->path,
		      ((const struct mtree_entry *)b)->path);
}

/* FNV-1a: an identity check of a plan between two runs, not a security
 * measure, and 64 bits keep the marker file readable. */
static void hash_bytes(uint64_t *h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		*h ^= p[i];
		*h *= 0x100000001b3ULL;
	}
}

static void hash_string(uint64_t *h, const char *s)
{
	hash_bytes(h, s, strlen(s) + 1);
}

static void hash_u64(uint64_t *h, uint64_t v)
{
	hash_bytes(h, &v, sizeof(v));
}

/* Sorts the entries, counts them and fingerprints what decides the bytes of
 * the result: the sources (by real path), each path, kind and size, where the
 * bytes come from and the mtime of files that are copied. The plan's own
 * mtimes of synthesized entries are the build time and are left out. */
static void finish_tree(struct mtree_session *session)
{
	struct mtree *tree = &session->tree;
	uint64_t h = 0xcbf29ce484222325ULL;

	qsort(tree->entries, tree->count, sizeof(*tree->entries), compare_entries);
	hash_string(&h, FINGERPRINT_FORMAT);
	for (size_t v = 0; v < session->volume_count; v++)
		hash_string(&h, session->volume_realpaths[v]);
	hash_string(&h, session->upper_realpath ? session->upper_realpath : "");
	for (size_t i = 0; i < tree->count; i++) {
		const struct mtree_entry *e = &tree->entries[i];

		hash_string(&h, e->path);
		hash_u64(&h, (uint64_t)e->kind);
		hash_u64(&h, e->size);
		switch (e->kind) {
		case MTREE_DIR:
			tree->dirs++;
			continue;
		case MTREE_LOWER:
			hash_u64(&h, (uint64_t)e->volume);
			hash_string(&h, e->source);
			/* fall through */
		case MTREE_UPPER:
			hash_u64(&h, (uint64_t)e->mtime.tv_sec);
			hash_u64(&h, (uint64_t)e->mtime.tv_nsec);
			break;
		case MTREE_SYNTH:
			hash_bytes(&h, e->content, e->size);
			break;
		case MTREE_SYMLINK:
			hash_string(&h, e->source);
			break;
		}
		tree->files++;
		tree->file_bytes += e->size;
	}
	tree->fingerprint = h;
}

/* An upper entry's mode and owner: what the mount shows of it. */
static struct plan_attr attr_of_stat(const struct stat *st)
{
	return (struct plan_attr){ .mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
				   .nlink = (uint32_t)st->st_nlink,
				   .blocks = (uint64_t)st->st_blocks };
}

/* The entry of plan node index, at path (taken). */
static void add_plan_entry(struct mtree *tree, const struct plan *plan, uint32_t index,
			   char *path)
{
	const struct plan_node *node = &plan->nodes[index];
	struct mtree_entry *e;

	switch (node->kind) {
	case PLAN_DIR:
		e = add_entry(tree, path, MTREE_DIR);
		break;
	case PLAN_LOWER_FILE:
		e = add_entry(tree, path, MTREE_LOWER);
		e->volume = node->volume;
		e->source = xstrdup(node->lower_path);
		break;
	default:
		e = add_entry(tree, path, MTREE_SYNTH);
		e->content = node->content;
		break;
	}
	e->size = node->kind == PLAN_DIR ? 0 : node->size;
	e->mtime = node->mtime;
	e->attr = node->attr;
	e->plan_node = index;
}

static void tree_from_plan(struct mtree *tree, const struct plan *plan)
{
	for (size_t i = 1; i < plan->node_count; i++)
		add_plan_entry(tree, plan, (uint32_t)i, plan_path(plan, (uint32_t)i));
}

/* What a lazy directory of the upper (see upper.h) holds: the plan's
 * children of the plan directory it stands for, below its own path. */
static void add_plan_children(struct mtree *tree, const struct plan *plan, uint32_t dir,
			      const char *prefix)
{
	const struct plan_node *node = &plan->nodes[dir];

	for (size_t i = 0; i < node->child_count; i++) {
		uint32_t child = node->children[i];
		char *path = xasprintf("%s/%s", prefix, plan->nodes[child].name);

		add_plan_entry(tree, plan, child, path);
		if (plan->nodes[child].kind == PLAN_DIR)
			add_plan_children(tree, plan, child, path);
	}
}

static int walk_upper(struct mtree_session *session, int dirfd, const char *prefix,
		      struct error *err);

/* A directory of the upper: walked, or taken from the plan while it is lazy. */
static int walk_upper_dir(struct mtree_session *session, int sub, const char *path,
			  struct error *err)
{
	char proc[64];
	uint32_t dir;
	int rc;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", sub);
	rc = upper_lazy_get(proc, &session->plan, &dir);
	if (rc < 0)
		return error_set(err, -rc, "%s/tree/%s: %s", session->upper.path, path,
				 rc == -EIO ? "its " UPPER_LAZY_XATTR " names no directory "
					      "of the merged volumes"
					    : strerror(-rc));
	if (rc == 0)
		return walk_upper(session, sub, path, err);
	add_plan_children(&session->tree, &session->plan, dir, path);
	return 0;
}

/* A regular file of the upper: a stub stands for its volume file. */
static int add_upper_file(struct mtree_session *session, int dirfd, const char *name,
			  char *path, const struct stat *st, struct error *err)
{
	char proc[64];
	char *lower = NULL;
	struct mtree_entry *e;
	struct stat lst;
	int fd, volume, rc;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = error_set(err, errno, "%s/tree/%s: %s", session->upper.path, path,
			       strerror(errno));
		free(path);
		return rc;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rc = upper_stub_get(proc, &volume, &lower);
	close(fd);
	if (rc < 0) {
		rc = error_set(err, -rc, "%s/tree/%s: cannot read its stub reference: %s",
			       session->upper.path, path, strerror(-rc));
		free(path);
		return rc;
	}
	if (rc == 0) {
		e = add_entry(&session->tree, path, MTREE_UPPER);
		e->source = xstrdup(path);
		e->size = (uint64_t)st->st_size;
		e->mtime = st->st_mtim;
		e->attr = attr_of_stat(st);
		return 0;
	}
	/* An edited stub must not copy a file the merge hides (flock.lock...). */
	if (!plan_lower_index_find(&session->stubs, volume, lower)) {
		rc = error_set(err, EINVAL,
			       "%s/tree/%s: its stub names %d:%s, which is no file of the "
			       "merged volumes",
			       session->upper.path, path, volume, lower);
		free(lower);
		free(path);
		return rc;
	}
	/* The stub's size is the mount's promise; the volume must still keep it.
	 * Opening it checks too that the path stays inside the volume. */
	fd = volume_open_file(&session->volumes[volume], lower);
	rc = fd < 0 ? fd : fstat(fd, &lst) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (rc < 0 || !S_ISREG(lst.st_mode) || lst.st_size != st->st_size) {
		rc = error_set(err, rc < 0 ? -rc : EINVAL,
			       "%s/tree/%s: its volume file %s/%s is %s (the volume changed "
			       "after the upper was made)",
			       session->upper.path, path, session->volumes[volume].path, lower,
			       rc < 0 ? strerror(-rc) : "of another size or type");
		free(lower);
		free(path);
		return rc;
	}
	e = add_entry(&session->tree, path, MTREE_LOWER);
	e->volume = volume;
	e->source = lower;
	e->size = (uint64_t)lst.st_size;
	e->mtime = st->st_mtim;
	e->attr = attr_of_stat(st); /* the stub's, as the mount shows it */
	return 0;
}

static int walk_upper(struct mtree_session *session, int dirfd, const char *prefix,
		      struct error *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = error_set(err, errno, "%s/tree/%s: %s", session->upper.path, prefix,
			       strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir))) {
		char *path, target[PATH_MAX];
		struct mtree_entry *e;
		struct stat st;
		ssize_t n;
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path = *prefix ? xasprintf("%s/%s", prefix, de->d_name) : xstrdup(de->d_name);
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = error_set(err, errno, "%s/tree/%s: %s", session->upper.path, path,
				       strerror(errno));
			free(path);
		} else if (S_ISDIR(st.st_mode)) {
			e = add_entry(&session->tree, path, MTREE_DIR);
			e->mtime = st.st_mtim;
			e->attr = attr_of_stat(&st);
			sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
							 O_CLOEXEC);
			if (sub < 0) {
				rc = error_set(err, errno, "%s/tree/%s: %s", session->upper.path,
					       path, strerror(errno));
			} else {
				rc = walk_upper_dir(session, sub, path, err);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			rc = add_upper_file(session, dirfd, de->d_name, path, &st, err);
		} else if (S_ISLNK(st.st_mode) &&
			   (n = readlinkat(dirfd, de->d_name, target, sizeof(target) - 1)) >= 0) {
			target[n] = '\0';
			e = add_entry(&session->tree, path, MTREE_SYMLINK);
			e->source = xstrdup(target);
			e->size = (uint64_t)n;
			e->mtime = st.st_mtim;
		} else {
			rc = error_set(err, S_ISLNK(st.st_mode) ? errno : EINVAL,
				       "%s/tree/%s: %s", session->upper.path, path,
				       S_ISLNK(st.st_mode) ? strerror(errno)
							   : "not a file, directory or symlink");
			free(path);
		}
	}
	if (rc == 0 && errno)
		rc = error_set(err, errno, "%s/tree/%s: %s", session->upper.path, prefix,
			       strerror(errno));
	closedir(dir);
	return rc;
}

static int open_volumes(struct mtree_session *session, char **paths, size_t count,
			struct error *err)
{
	char resolved[PATH_MAX];
	int rc;

	session->volumes = xcalloc(count, sizeof(*session->volumes));
	session->volume_realpaths = xcalloc(count, sizeof(char *));
	rc = volumes_open(session->volumes, paths, count, err);
	if (rc < 0)
		return rc;
	session->volume_count = count;
	for (size_t i = 0; i < count; i++)
		session->volume_realpaths[i] =
			xstrdup(realpath(paths[i], resolved) ? resolved : paths[i]);
	return 0;
}

/* mode, narrowed by the access ACL the plan merged for dir node (the one
 * the mount serves): a copy carries no ACL and must grant no one more. */
static uint32_t fold_plan_acl(const struct plan *plan, uint32_t node, uint32_t mode)
{
	const struct plan_dir_acl *merged =
		plan_dir_acl_find(plan->dir_acls, plan->dir_acl_count, node);

	if (!merged || !merged->access)
		return mode;
	return acl_fold_mode(&(struct acl_value){ merged->access, merged->access_len }, mode);
}

int mtree_session_open(struct mtree_session *session, char **volume_paths, size_t count,
		       const char *upper_path, struct error *err)
{
	int rc;

	memset(session, 0, sizeof(*session));
	session->upper.dirfd = session->upper.tree_fd = -1;
	rc = open_volumes(session, volume_paths, count, err);
	if (rc < 0)
		return rc;
	rc = plan_build(&session->plan, session->volumes, session->volume_count, err);
	if (rc < 0) {
		session->refused = true;
		return rc;
	}
	/* DEST's root carries no ACL either: no wider than the mount's. */
	session->tree.root_attr = session->plan.nodes[0].attr;
	session->tree.root_attr.mode = fold_plan_acl(&session->plan, 0,
						     session->tree.root_attr.mode);
	if (!upper_path) {
		tree_from_plan(&session->tree, &session->plan);
		finish_tree(session);
		return 0;
	}
	rc = upper_open_existing(&session->upper, upper_path, &session->plan, err);
	if (rc < 0) {
		session->refused = rc == -EINVAL;
		return rc;
	}
	session->has_upper = true;
	session->upper_realpath = resolve_path(upper_path);
	plan_lower_index_build(&session->stubs, &session->plan);
	rc = walk_upper(session, session->upper.tree_fd, "", err);
	if (rc < 0) {
		/* What the upper holds cannot be copied (a FIFO, a stub of no
		 * volume file): its content is refused, nothing failed. */
		session->refused = rc == -EINVAL;
		return rc;
	}
	finish_tree(session);
	return 0;
}

void mtree_session_close(struct mtree_session *session)
{
	for (size_t i = 0; i < session->tree.count; i++) {
		free(session->tree.entries[i].path);
		free(session->tree.entries[i].source);
	}
	free(session->tree.entries);
	if (session->has_upper)
		upper_close(&session->upper);
	plan_lower_index_free(&session->stubs);
	free(session->upper_realpath);
	plan_free(&session->plan);
	for (size_t i = 0; i < session->volume_count; i++) {
		volume_close(&session->volumes[i]);
		free(session->volume_realpaths[i]);
	}
	free(session->volumes);
	free(session->volume_realpaths);
	memset(session, 0, sizeof(*session));
}

const struct mtree_entry *mtree_find(const struct mtree *tree, const char *path)
{
	struct mtree_entry key = { .path = (char *)path };

	return bsearch(&key, tree->entries, tree->count, sizeof(key), compare_entries);
}

int mtree_fold_dir_acl(const struct mtree_session *session, const struct mtree_entry *entry,
		       uint32_t *mode)
{
	struct acl_value acl;
	int fd, rc;

	if (entry->plan_node != PLAN_NONE) {
		*mode = fold_plan_acl(&session->plan, entry->plan_node, *mode);
		return 0;
	}
	fd = openat(session->upper.tree_fd, entry->path,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = acl_get(fd, &acl);
	close(fd);
	if (rc < 0)
		return rc;
	if (acl.size)
		*mode = acl_fold_mode(&acl, *mode);
	acl_value_free(&acl);
	return 0;
}

int mtree_open_source(const struct mtree_session *session, const struct mtree_entry *entry)
{
	int fd;

	if (entry->kind == MTREE_LOWER)
		return volume_open_file(&session->volumes[entry->volume], entry->source);
	fd = openat(session->upper.tree_fd, entry->source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

char *mtree_source_name(const struct mtree_session *session, const struct mtree_entry *entry)
{
	switch (entry->kind) {
	case MTREE_LOWER:
		return xasprintf("%s/%s", session->volumes[entry->volume].path, entry->source);
	case MTREE_UPPER:
		return xasprintf("%s/tree/%s", session->upper.path, entry->source);
	case MTREE_SYMLINK:
		return xasprintf("symlink to %s", entry->source);
	default:
		return xstrdup("(made by the plan)");
	}
}
