/* SPDX-License-Identifier: Apache-2.0 */
/* merge(volumes) -> plan. The rules follow vmstorage-layout.md sections 4 and 8:
 * show exactly the tree a vmstorage of the newest source generation would
 * accept, holding every live part of every volume. */
#include "plan.h"
#include "acl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <search.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIR_MODE (S_IFDIR | 0755)

/* The three directories under data/ that hold partitions. */
enum level { LEVEL_SMALL, LEVEL_BIG, LEVEL_INDEXDB };
static const char *const level_dirs[] = { "data/small", "data/big", "data/indexdb" };

/* One part directory of one volume that may be shown. */
struct candidate {
	int volume;
	const struct vnode *dir;
	char *lower_path;
	char *name; /* shown name, after collision renames */
	bool renamed, dropped;
};

struct candidates {
	struct candidate *items;
	size_t count, capacity;
};

/* What a volume says is live in one part-holding directory. */
struct source_dir {
	int volume;
	const struct vnode *dir;
	char *path;
	const struct name_list *listed; /* NULL: no parts.json, every subdir is a part */
	const char *listed_in;          /* the parts.json path, for messages */
};

const char *generation_name(enum generation generation)
{
	static const char *const names[] = { "A (<=1.89)", "B1 (1.90-1.91)",
					     "B2 (1.92-1.132)", "C (>=1.133)" };
	return names[generation];
}

const char *table_role_name(enum table_role role)
{
	static const char *const names[] = { "prev", "curr", "next" };
	return names[role];
}

static void refuse(struct plan *plan, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct plan *plan, const char *fmt, ...)
{
	va_list ap;
	char *message;

	va_start(ap, fmt);
	if (vasprintf(&message, fmt, ap) < 0)
		message = xstrdup(fmt);
	va_end(ap);
	*ARRAY_PUSH(plan->refusals, plan->refusal_count, plan->refusal_capacity) = message;
}

static const struct {
	const char *text;
	enum hidden_class class;
} hidden_reasons[] = {
	[HIDDEN_LOCK_FILE] = { "per-volume lock file (a fresh one is shown)", HIDDEN_CLASS_STATE },
	[HIDDEN_PARTS_JSON] = { "per-volume parts.json (a merged one is shown)", HIDDEN_CLASS_STATE },
	[HIDDEN_TABLE_FLAG] = { "per-table flag (shown when every table of the role has it)",
				HIDDEN_CLASS_STATE },
	[HIDDEN_RETENTION] = { "retention state (vmstorage re-applies retention)",
			       HIDDEN_CLASS_STATE },
	[HIDDEN_CACHE] = { "per-volume caches must not be merged (shown empty)",
			   HIDDEN_CLASS_STATE },
	[HIDDEN_SNAPSHOTS] = { "per-volume snapshots (shown empty)", HIDDEN_CLASS_STATE },
	[HIDDEN_SERVICE_DIR] = { "transaction and temporary dir (shown empty)",
				 HIDDEN_CLASS_STATE },
	[HIDDEN_UNKNOWN_ROOT] = { "unknown entry (vmstorage ignores it)", HIDDEN_CLASS_STATE },
	[HIDDEN_TMP_FILE] = { "leftover of an interrupted atomic write", HIDDEN_CLASS_GARBAGE },
	[HIDDEN_UNLISTED] = { "not listed in parts.json (vmstorage deletes it at startup)",
			      HIDDEN_CLASS_GARBAGE },
	[HIDDEN_MUST_REMOVE] = { "directory being removed (.must-remove.)", HIDDEN_CLASS_GARBAGE },
	[HIDDEN_DELETE_MARKER] = { "partially removed (.delete-this-dir)", HIDDEN_CLASS_GARBAGE },
	[HIDDEN_EMPTY_PART] = { "empty part directory", HIDDEN_CLASS_GARBAGE },
	[HIDDEN_EMPTY_TABLE] = { "empty table directory", HIDDEN_CLASS_GARBAGE },
	[HIDDEN_NOT_PARTITION] = { "not a YYYY_MM partition (vmstorage would panic on it)",
				   HIDDEN_CLASS_FOREIGN },
	[HIDDEN_NOT_PART] = { "not a part directory", HIDDEN_CLASS_FOREIGN },
	[HIDDEN_NOT_TABLE] = { "not an indexdb table", HIDDEN_CLASS_FOREIGN },
	[HIDDEN_NOT_REGULAR] = { "not a regular file inside a part", HIDDEN_CLASS_FOREIGN },
	[HIDDEN_IDENTICAL_COPY] = { "identical copy of a part shown from an earlier volume",
				    HIDDEN_CLASS_SUPERSEDED },
	[HIDDEN_OLD_TABLE] = { "older than the tables vmstorage keeps (it would delete it at "
			       "startup)",
			       HIDDEN_CLASS_SUPERSEDED },
	[HIDDEN_NEXT_TABLE] = { "next table (a gen-C target keeps only prev and curr)",
				HIDDEN_CLASS_SUPERSEDED },
	[HIDDEN_UNREADABLE_METADATA] = { "unreadable (vmstorage rewrites it)",
					 HIDDEN_CLASS_SUPERSEDED },
	[HIDDEN_BROKEN_LINK] = { "symlink to no directory (vmstorage would panic on it)",
				 HIDDEN_CLASS_FOREIGN },
};

const char *hidden_reason_text(enum hidden_reason reason)
{
	return hidden_reasons[reason].text;
}

enum hidden_class hidden_reason_class(enum hidden_reason reason)
{
	return hidden_reasons[reason].class;
}

static void hide(struct plan *plan, int volume, const char *path, enum hidden_reason reason)
{
	struct plan_hidden *h = ARRAY_PUSH(plan->hidden, plan->hidden_count,
					   plan->hidden_capacity);

	h->volume = volume;
	h->path = xstrdup(path);
	h->reason = reason;
}

static const char *volume_path(const struct plan *plan, int volume)
{
	return plan->volumes[volume].path;
}

/* ---- the node table ---- */

static uint32_t add_node(struct plan *plan, uint32_t parent, const char *name,
			 enum plan_node_kind kind)
{
	struct plan_node *node = ARRAY_PUSH(plan->nodes, plan->node_count, plan->node_capacity);
	uint32_t index = (uint32_t)(plan->node_count - 1);
	struct plan_node *dir;

	memset(node, 0, sizeof(*node));
	node->name = xstrdup(name);
	node->parent = parent;
	node->kind = kind;
	node->volume = -1;
	clock_gettime(CLOCK_REALTIME, &node->mtime);
	if (index != 0) {
		size_t capacity; /* the node's is 32-bit */

		dir = &plan->nodes[parent];
		capacity = dir->child_capacity;
		array_reserve(&dir->children, &capacity, dir->child_count, sizeof(*dir->children));
		dir->child_capacity = (uint32_t)capacity;
		dir->children[dir->child_count++] = index;
	}
	return index;
}

/* The child dir "name" of parent, created when missing. */
static uint32_t add_dir(struct plan *plan, uint32_t parent, const char *name)
{
	struct plan_node *dir = &plan->nodes[parent];

	for (size_t i = 0; i < dir->child_count; i++)
		if (strcmp(plan->nodes[dir->children[i]].name, name) == 0)
			return dir->children[i];
	return add_node(plan, parent, name, PLAN_DIR);
}

static uint32_t add_dir_path(struct plan *plan, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	uint32_t node = 0;

	for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save))
		node = add_dir(plan, node, part);
	free(copy);
	return node;
}

static void add_synth(struct plan *plan, uint32_t parent, const char *name, char *content,
		      size_t len)
{
	uint32_t index = add_node(plan, parent, name, PLAN_SYNTH_FILE);

	plan->nodes[index].content = content;
	plan->nodes[index].size = len;
}

static void add_empty_file(struct plan *plan, uint32_t parent, const char *name)
{
	add_synth(plan, parent, name, xstrdup(""), 0);
}

static struct plan_attr attr_of(const struct vnode_stat *st)
{
	return (struct plan_attr){ .mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
				   .nlink = (uint32_t)st->st_nlink,
				   .blocks = (uint64_t)st->st_blocks };
}

/* The permission bits a volume directory grants the owner uid, its group gid
 * and others, placed as user, group and other bits; with its setuid and
 * setgid bits. */
static uint32_t granted_mode(const struct vnode_stat *st, uid_t uid, gid_t gid)
{
	uint32_t user = st->st_uid == uid ? st->st_mode >> 6 : st->st_gid == gid ? st->st_mode >> 3
										: st->st_mode;
	uint32_t group = st->st_gid == gid ? st->st_mode >> 3 : st->st_mode;

	return (user & 07) << 6 | (group & 07) << 3 | (st->st_mode & 07) |
	       (st->st_mode & (S_ISUID | S_ISGID));
}

uint32_t plan_attr_mode_as(const struct plan_attr *attr, uid_t uid, gid_t gid)
{
	struct vnode_stat st = { .st_mode = attr->mode, .st_uid = attr->uid, .st_gid = attr->gid };
	uint32_t mode = (attr->mode & (S_IRWXU | S_ISVTX)) | (granted_mode(&st, uid, gid) & 07077);

	if (uid != attr->uid || gid != attr->gid)
		mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	return mode;
}

/* Narrows attr, owned as a first source directory, to what the source
 * directory st also grants. The sticky bit is a restriction, not a grant:
 * kept when any source has it. */
static void narrow_dir_attr(struct plan_attr *attr, const struct vnode_stat *st)
{
	attr->mode = (attr->mode & (S_IFMT | S_ISVTX | granted_mode(st, attr->uid, attr->gid))) |
		     (st->st_mode & S_ISVTX);
}

static bool same_value(const char *a, size_t a_len, const char *b, size_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* The default ACL every source directory has (NULL: none), or false when
 * they differ: a merged directory serves one, which its new entries take,
 * and of two none is narrower (each names whoever makes the entry). */
static bool agreed_default(struct plan *plan, const char *path, const struct source_dir *sources,
			   size_t count, const struct vnode_acl **agreed)
{
	const struct vnode_acl *first = sources[0].dir->acl, *acl;

	for (size_t i = 1; i < count; i++) {
		acl = sources[i].dir->acl;
		if (same_value(first ? first->defaults : NULL, first ? first->defaults_len : 0,
			       acl ? acl->defaults : NULL, acl ? acl->defaults_len : 0))
			continue;
		refuse(plan,
		       "%s: the directory has different default ACLs in %s and %s: a merged "
		       "directory serves one, and neither is narrower; make them equal or remove "
		       "them (setfacl -k)",
		       path, volume_path(plan, sources[0].volume), volume_path(plan, sources[i].volume));
		return false;
	}
	if (first && first->defaults && !acl_valid(first->defaults, first->defaults_len)) {
		refuse(plan, "%s/%s: its default ACL (" ACL_DEFAULT_XATTR ") is malformed",
		       volume_path(plan, sources[0].volume), path);
		return false;
	}
	*agreed = first && first->defaults ? first : NULL;
	return true;
}

static void add_dir_acl(struct plan *plan, uint32_t node, char *access, size_t access_len,
			const struct vnode_acl *defaults)
{
	struct plan_dir_acl *acl = ARRAY_PUSH(plan->dir_acls, plan->dir_acl_count,
					      plan->dir_acl_capacity);

	*acl = (struct plan_dir_acl){ .node = node, .access = access, .access_len = access_len };
	if (defaults) {
		acl->defaults = xmalloc(defaults->defaults_len);
		memcpy(acl->defaults, defaults->defaults, defaults->defaults_len);
		acl->defaults_len = defaults->defaults_len;
	}
}

/* Narrows dir node's mode (it is owned as its attr says) to what its
 * access ACL and each source directory's grant, and records the ACLs it
 * serves; refused when one is an ACL the kernel would not take. */
static void intersect_dir_acl(struct plan *plan, uint32_t node, const char *path,
			      const struct source_dir *sources, size_t count,
			      const struct vnode_acl *defaults)
{
	struct plan_attr *attr = &plan->nodes[node].attr;
	struct acl_dir *dirs = xcalloc(count, sizeof(*dirs));
	size_t len, bad;
	uint32_t perms;
	char *access;

	for (size_t i = 0; i < count; i++) {
		const struct vnode *dir = sources[i].dir;

		dirs[i] = (struct acl_dir){ .mode = dir->st.st_mode, .uid = dir->st.st_uid,
					    .gid = dir->st.st_gid };
		if (dir->acl) {
			dirs[i].value = dir->acl->access;
			dirs[i].len = dir->acl->access_len;
		}
	}
	if (acl_intersect(dirs, count, attr->uid, attr->gid, &perms, &access, &len, &bad) < 0) {
		refuse(plan, "%s/%s: its access ACL (" ACL_ACCESS_XATTR ") is malformed",
		       volume_path(plan, sources[bad].volume), path);
	} else {
		attr->mode = (attr->mode & ~(uint32_t)0777) | perms;
		if (access || defaults)
			add_dir_acl(plan, node, access, len, defaults);
	}
	free(dirs);
}

/* A directory's ACL is part of its permissions: a plan directory serves
 * the ACL granting no process more than each of its source directories
 * grants it (acl.h), and their default ACL when they agree. */
static void merge_dir_acl(struct plan *plan, uint32_t node, const struct source_dir *sources,
			  size_t count)
{
	const struct vnode_acl *defaults = NULL;
	size_t i;
	char *path;

	for (i = 0; i < count && !sources[i].dir->acl; i++)
		;
	if (i == count)
		return;
	path = plan_path(plan, node);
	if (agreed_default(plan, *path ? path : ".", sources, count, &defaults))
		intersect_dir_acl(plan, node, path, sources, count, defaults);
	free(path);
}

/* Takes lower_path. */
static void add_lower(struct plan *plan, uint32_t parent, const char *name, int volume,
		      char *lower_path, const struct vnode_stat *st)
{
	uint32_t index = add_node(plan, parent, name, PLAN_LOWER_FILE);
	struct plan_node *node = &plan->nodes[index];

	node->volume = volume;
	node->lower_path = lower_path;
	node->size = (uint64_t)st->st_size;
	node->mtime = st->st_mtim;
	node->attr = attr_of(st);
}

/* ---- generations ---- */

static bool table_has_flock(const struct vnode *indexdb)
{
	for (size_t i = 0; indexdb && i < indexdb->child_count; i++)
		if (vnode_child(&indexdb->children[i], "flock.lock"))
			return true;
	return false;
}

static bool any_parts_json(const struct vnode *root)
{
	const struct vnode *indexdb = vnode_child(root, "indexdb");

	for (int level = LEVEL_SMALL; level <= LEVEL_BIG; level++) {
		const struct vnode *dir = vnode_at(root, level_dirs[level]);

		for (size_t i = 0; dir && i < dir->child_count; i++)
			if (vnode_child(&dir->children[i], "parts.json"))
				return true;
	}
	for (size_t i = 0; indexdb && i < indexdb->child_count; i++)
		if (vnode_child(&indexdb->children[i], "parts.json"))
			return true;
	return false;
}

/* A part dir named like a gen-A part: <rows>_<blocks>_<min>_<max>_<hex>. */
static bool any_legacy_part(const struct vnode *root)
{
	struct part_header header;

	for (int level = LEVEL_SMALL; level <= LEVEL_BIG; level++) {
		const struct vnode *dir = vnode_at(root, level_dirs[level]);

		for (size_t i = 0; dir && i < dir->child_count; i++) {
			const struct vnode *partition = &dir->children[i];

			for (size_t j = 0; j < partition->child_count; j++)
				if (part_header_from_name(partition->children[j].name, false,
							  &header) == 0)
					return true;
		}
	}
	return false;
}

/* What wrote the volume, judged from what is on disk (layout section 0). */
static enum generation detect_generation(const struct vnode *root)
{
	const struct vnode *indexdb = vnode_child(root, "indexdb");

	if (vnode_is_dir(vnode_at(root, "data/indexdb")))
		return GEN_C;
	if (any_parts_json(root))
		return vnode_child(vnode_child(root, "data"), "flock.lock") ||
				       table_has_flock(indexdb)
			       ? GEN_B1
			       : GEN_B2;
	if (any_legacy_part(root) || vnode_child(vnode_child(root, "data"), "flock.lock"))
		return GEN_A;
	/* No parts and no markers: a fresh or empty volume of a newer release. */
	return GEN_B2;
}

/* ---- part directories ---- */

static bool is_empty_dir(const struct vnode *dir)
{
	return dir->child_count == 0;
}

static bool is_tmp_file(const char *name)
{
	const char *p = strstr(name, ".tmp.");

	if (!p || !p[5])
		return false;
	for (p += 5; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static bool has_pending_txn(const struct vnode *dir)
{
	const struct vnode *txn = vnode_child(dir, "txn");

	return txn && txn->child_count > 0;
}

static bool is_service_dir(const char *name)
{
	return strcmp(name, "txn") == 0 || strcmp(name, "tmp") == 0 ||
	       strcmp(name, "snapshots") == 0;
}

/* Hidden entries not worth a line in the report: empty service dirs, and the
 * table flag that merge_table shows again when every source has it. */
static bool worth_reporting(const struct vnode *entry)
{
	if (!S_ISDIR(entry->st.st_mode))
		return strcmp(entry->name, "converted-to-v1.28.0") != 0;
	return entry->child_count || entry->not_scanned || !is_service_dir(entry->name);
}

/* Why a non-part entry of a part-holding dir is hidden; false for a candidate part. */
static bool entry_hidden(const struct vnode *entry, enum hidden_reason *reason)
{
	const char *name = entry->name;

	if (!S_ISDIR(entry->st.st_mode)) {
		if (strcmp(name, "parts.json") == 0)
			*reason = HIDDEN_PARTS_JSON;
		else if (strcmp(name, "flock.lock") == 0)
			*reason = HIDDEN_LOCK_FILE;
		else if (strcmp(name, "converted-to-v1.28.0") == 0)
			*reason = HIDDEN_TABLE_FLAG;
		else if (strcmp(name, "appliedRetention.txt") == 0)
			*reason = HIDDEN_RETENTION;
		else if (is_tmp_file(name))
			*reason = HIDDEN_TMP_FILE;
		else
			*reason = HIDDEN_NOT_PART;
	} else if (strcmp(name, "txn") == 0 || strcmp(name, "tmp") == 0) {
		*reason = HIDDEN_SERVICE_DIR;
	} else if (strcmp(name, "snapshots") == 0) {
		*reason = HIDDEN_SNAPSHOTS;
	} else if (strstr(name, ".must-remove.")) {
		*reason = HIDDEN_MUST_REMOVE;
	} else if (vnode_child(entry, ".delete-this-dir")) {
		*reason = HIDDEN_DELETE_MARKER;
	} else if (is_empty_dir(entry)) {
		*reason = HIDDEN_EMPTY_PART;
	} else {
		return false;
	}
	return true;
}

/* Appends the live parts of src to out; hides the rest with a reason. */
static void collect_parts(struct plan *plan, const struct source_dir *src,
			  struct candidates *out)
{
	const struct vnode *dir = src->dir;
	struct name_set listed_set = { 0 };

	if (src->listed)
		name_set_init(&listed_set, src->listed);
	for (size_t i = 0; dir && i < dir->child_count; i++) {
		const struct vnode *entry = &dir->children[i];
		char *path = xasprintf("%s/%s", src->path, entry->name);
		enum hidden_reason reason;
		bool hidden = entry_hidden(entry, &reason);
		bool listed = src->listed && name_set_contains(&listed_set, entry->name);
		struct candidate *c;

		/* vmstorage opens a part through a symlink; hiding one would drop
		 * its rows from the merge without a word. */
		if (S_ISLNK(entry->st.st_mode)) {
			refuse(plan, "%s: %s is a symlink: vmstorage would open the part it "
			       "points to, but vmunion does not follow symlinked parts (put the "
			       "part directory itself in its place)",
			       volume_path(plan, src->volume), path);
			free(path);
			continue;
		}
		if (hidden && listed)
			refuse(plan, "%s: %s lists part %s, but it cannot be used: %s",
			       volume_path(plan, src->volume), src->listed_in, entry->name,
			       hidden_reason_text(reason));
		else if (!hidden && src->listed && !listed)
			hidden = true, reason = HIDDEN_UNLISTED;
		if (hidden) {
			if (worth_reporting(entry))
				hide(plan, src->volume, path, reason);
			free(path);
			continue;
		}
		c = ARRAY_PUSH(out->items, out->count, out->capacity);
		c->volume = src->volume;
		c->dir = entry;
		c->lower_path = path;
		c->name = xstrdup(entry->name);
		c->renamed = c->dropped = false;
	}
	name_set_free(&listed_set);
	for (size_t i = 0; src->listed && i < src->listed->count; i++)
		if (!vnode_is_dir(vnode_child(dir, src->listed->names[i])))
			refuse(plan, "%s: %s lists part %s, which is missing on disk",
			       volume_path(plan, src->volume), src->listed_in,
			       src->listed->names[i]);
}

static int compare_files(int fd_a, int fd_b)
{
	char a[65536], b[65536];

	for (;;) {
		ssize_t n = read(fd_a, a, sizeof(a));
		ssize_t m = n > 0 ? read(fd_b, b, (size_t)n) : read(fd_b, b, 1);

		if (n < 0 || m < 0)
			return -1;
		if (n != m || memcmp(a, b, (size_t)n) != 0)
			return 1;
		if (n == 0)
			return 0;
	}
}

/* True when two part dirs hold the same files with the same bytes. */
static bool same_part(const struct plan *plan, const struct candidate *a,
		      const struct candidate *b)
{
	if (a->dir->child_count != b->dir->child_count)
		return false;
	for (size_t i = 0; i < a->dir->child_count; i++) {
		const struct vnode *fa = &a->dir->children[i], *fb = &b->dir->children[i];
		char *pa, *pb;
		int da, db, diff;

		if (strcmp(fa->name, fb->name) != 0 || fa->st.st_size != fb->st.st_size ||
		    !S_ISREG(fa->st.st_mode) || !S_ISREG(fb->st.st_mode))
			return false;
		pa = xasprintf("%s/%s", a->lower_path, fa->name);
		pb = xasprintf("%s/%s", b->lower_path, fb->name);
		da = openat(plan->volumes[a->volume].dirfd, pa, O_RDONLY | O_CLOEXEC);
		db = openat(plan->volumes[b->volume].dirfd, pb, O_RDONLY | O_CLOEXEC);
		diff = (da < 0 || db < 0) ? 1 : compare_files(da, db);
		if (da >= 0)
			close(da);
		if (db >= 0)
			close(db);
		free(pa);
		free(pb);
		if (diff != 0)
			return false;
	}
	return true;
}

/* The number a name carries: the 16-hex name itself, or a gen-A suffix. */
static bool name_number(const char *name, bool mergeset, uint64_t *number)
{
	int suffix = legacy_name_suffix(name, mergeset);
	const char *hex = suffix >= 0 ? name + suffix : name;

	if (!is_hex16_name(hex))
		return false;
	*number = strtoull(hex, NULL, 16);
	return true;
}

/* A fresh name for c, below every number in the dir: vmstorage numbers new
 * parts from the current time in ns, so it never generates such a name. */
static char *fresh_name(const struct candidate *c, bool mergeset, uint64_t *lowest)
{
	int suffix = legacy_name_suffix(c->dir->name, mergeset);

	*lowest -= 1;
	if (suffix < 0)
		return xasprintf("%016" PRIX64, *lowest);
	return xasprintf("%.*s%016" PRIX64, suffix, c->dir->name, *lowest);
}

/* The shown names of the candidates of one dir, for collision checks in
 * O(log n): "by_name" sorts the candidates by their own name (ties in list
 * order) and holds those still shown under it; "renamed" holds the fresh names. */
struct name_index {
	const struct candidates *list;
	size_t *by_name;
	void *renamed; /* tsearch tree of struct candidate * */
};

static int compare_by_name(const void *a, const void *b, void *arg)
{
	const struct candidates *list = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(list->items[x].dir->name, list->items[y].dir->name);

	return c ? c : (x > y) - (x < y);
}

static int compare_candidate_names(const void *a, const void *b)
{
	return strcmp(((const struct candidate *)a)->name, ((const struct candidate *)b)->name);
}

static void name_index_init(struct name_index *index, const struct candidates *list)
{
	index->list = list;
	index->by_name = xcalloc(list->count ? list->count : 1, sizeof(size_t));
	for (size_t i = 0; i < list->count; i++)
		index->by_name[i] = i;
	qsort_r(index->by_name, list->count, sizeof(size_t), compare_by_name, (void *)list);
	index->renamed = NULL;
}

static void keep_candidate(void *candidate)
{
	(void)candidate; /* owned by the list */
}

static void name_index_free(struct name_index *index)
{
	tdestroy(index->renamed, keep_candidate);
	free(index->by_name);
}

/* The first position in by_name of a candidate whose own name is name. */
static size_t first_named(const struct name_index *index, const char *name)
{
	size_t low = 0, high = index->list->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (strcmp(index->list->items[index->by_name[mid]].dir->name, name) < 0)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* The next shown candidate named name, before "upto" and other than "self",
 * from position *at of by_name on; SIZE_MAX when there is none. Candidates
 * of one name come from different sources, so a run is at most one per volume. */
static size_t next_named(const struct name_index *index, size_t *at, const char *name,
			 size_t upto, size_t self)
{
	const struct candidates *list = index->list;

	for (; *at < list->count; (*at)++) {
		size_t i = index->by_name[*at];
		const struct candidate *c = &list->items[i];

		if (strcmp(c->dir->name, name) != 0 || i >= upto)
			break;
		if (i != self && !c->dropped && !c->renamed) {
			(*at)++;
			return i;
		}
	}
	return SIZE_MAX;
}

/* Whether a kept candidate other than "self", before "upto", shows name. */
static bool name_taken(const struct name_index *index, size_t upto, size_t self,
		       const char *name)
{
	struct candidate key = { .name = (char *)name };
	size_t at = first_named(index, name);

	return next_named(index, &at, name, upto, self) != SIZE_MAX ||
	       tfind(&key, &index->renamed, compare_candidate_names) != NULL;
}

/* Whether a kept candidate before c shows c's name with the same bytes. */
static bool copy_shown(const struct plan *plan, const struct name_index *index, size_t self)
{
	const struct candidate *c = &index->list->items[self];
	struct candidate key = { .name = c->name };
	size_t at = first_named(index, c->name), j;
	void *found;

	while ((j = next_named(index, &at, c->name, self, self)) != SIZE_MAX)
		if (same_part(plan, &index->list->items[j], c))
			return true;
	found = tfind(&key, &index->renamed, compare_candidate_names);
	return found && same_part(plan, *(struct candidate **)found, c);
}

/* Parts with one name from several volumes: identical copies are shown once,
 * different ones are renamed, deterministically in volume order. */
static void resolve_collisions(struct plan *plan, struct candidates *list, bool mergeset)
{
	uint64_t lowest = UINT64_MAX, number;
	struct name_index index;

	for (size_t i = 0; i < list->count; i++)
		if (name_number(list->items[i].name, mergeset, &number) && number < lowest)
			lowest = number;
	name_index_init(&index, list);
	for (size_t i = 0; i < list->count; i++) {
		struct candidate *c = &list->items[i];
		struct plan_rename *r;

		if (!name_taken(&index, i, i, c->name))
			continue;
		if (copy_shown(plan, &index, i)) {
			c->dropped = true;
			hide(plan, c->volume, c->lower_path, HIDDEN_IDENTICAL_COPY);
			continue;
		}
		c->renamed = true;
		do {
			free(c->name);
			c->name = NULL;
			if (lowest == 0) {
				refuse(plan, "%s: no free name below %s to rename a colliding part",
				       volume_path(plan, c->volume), c->lower_path);
				c->dropped = true;
				break;
			}
			c->name = fresh_name(c, mergeset, &lowest);
		} while (name_taken(&index, list->count, i, c->name));
		if (c->dropped)
			continue;
		tsearch(c, &index.renamed, compare_candidate_names);
		r = ARRAY_PUSH(plan->renames, plan->rename_count, plan->rename_capacity);
		r->volume = c->volume;
		r->path = xstrdup(c->lower_path);
		r->new_name = xstrdup(c->name);
	}
	name_index_free(&index);
}

/* Shows every kept candidate under parent and records its name. */
static void add_parts(struct plan *plan, uint32_t parent, const struct candidates *list,
		      struct name_list *names)
{
	for (size_t i = 0; i < list->count; i++) {
		const struct candidate *c = &list->items[i];
		uint32_t dir;

		if (c->dropped)
			continue;
		dir = add_node(plan, parent, c->name, PLAN_DIR);
		plan->nodes[dir].mtime = c->dir->st.st_mtim;
		plan->nodes[dir].attr = attr_of(&c->dir->st);
		merge_dir_acl(plan, dir, &(struct source_dir){ .volume = c->volume, .dir = c->dir },
			      1);
		for (size_t j = 0; j < c->dir->child_count; j++) {
			const struct vnode *file = &c->dir->children[j];
			char *path = xasprintf("%s/%s", c->lower_path, file->name);

			if (S_ISREG(file->st.st_mode)) {
				add_lower(plan, dir, file->name, c->volume, path, &file->st);
			} else {
				hide(plan, c->volume, path, HIDDEN_NOT_REGULAR);
				free(path);
			}
		}
		if (names)
			name_list_add(names, c->name);
	}
}

static void candidates_free(struct candidates *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].lower_path);
		free(list->items[i].name);
	}
	free(list->items);
	memset(list, 0, sizeof(*list));
}

/* Merges the part dirs of sources into the plan dir at path; the shown parts
 * are appended to names, and to kept when the caller wants them. */
static void merge_parts(struct plan *plan, const char *path, struct source_dir *sources,
			size_t count, bool mergeset, struct name_list *names,
			struct candidates *kept)
{
	struct candidates list = { 0 };
	uint32_t dir = add_dir_path(plan, path);

	for (size_t i = 0; i < count; i++) {
		if (sources[i].dir && has_pending_txn(sources[i].dir))
			refuse(plan,
			       "%s: %s/txn holds pending transactions (start the volume's own "
			       "vmstorage once to replay them)",
			       volume_path(plan, sources[i].volume), sources[i].path);
		collect_parts(plan, &sources[i], &list);
	}
	resolve_collisions(plan, &list, mergeset);
	add_parts(plan, dir, &list, names);
	if (plan->target == GEN_A) {
		add_dir(plan, dir, "txn");
		add_dir(plan, dir, "tmp");
	}
	for (size_t i = 0; kept && i < list.count; i++)
		*ARRAY_PUSH(kept->items, kept->count, kept->capacity) = list.items[i];
	if (kept)
		free(list.items);
	else
		candidates_free(&list);
}

/* ---- partitions ---- */

/* parts.json of one volume's partition or table; *listed stays empty and
 * *present false when the volume has none. */
static void read_listed(struct plan *plan, int volume, const struct vnode *file,
			const char *path, bool partition, struct name_list *small,
			struct name_list *big, bool *present)
{
	struct error err;
	int rc;

	*present = false;
	if (!file)
		return;
	if (!S_ISREG(file->st.st_mode)) {
		refuse(plan, "%s: %s is not a regular file", volume_path(plan, volume), path);
		return;
	}
	if (partition)
		rc = partsjson_parse_partition(file->content, file->content_len, small, big, &err);
	else
		rc = partsjson_parse_table(file->content, file->content_len, small, &err);
	if (rc < 0) {
		refuse(plan, "%s: %s: %s", volume_path(plan, volume), path, err.message);
		return;
	}
	*present = true;
}

static bool uses_parts_json(enum generation generation)
{
	return generation != GEN_A;
}

static void summarize_partition_part(struct plan *plan, struct plan_partition *p, int volume,
				     const struct vnode *part)
{
	const struct vnode *meta = vnode_child(part, "metadata.json");
	struct part_header header;
	int rc;

	if (meta && meta->content)
		rc = part_header_from_json(meta->content, meta->content_len, false, &header, NULL);
	else
		rc = part_header_from_name(part->name, false, &header);
	p->part_count[volume]++;
	plan->summary[volume].parts++;
	if (rc < 0)
		return;
	p->rows[volume] += header.rows;
	if (header.min_timestamp < p->min_timestamp)
		p->min_timestamp = header.min_timestamp;
	if (header.max_timestamp > p->max_timestamp)
		p->max_timestamp = header.max_timestamp;
}

static void summarize_partition(struct plan *plan, const char *name,
				const struct candidates *data_parts)
{
	struct plan_partition *p = ARRAY_PUSH(plan->partitions, plan->partition_count,
					      plan->partition_capacity);

	p->name = xstrdup(name);
	p->part_count = xcalloc(plan->volume_count, sizeof(size_t));
	p->rows = xcalloc(plan->volume_count, sizeof(uint64_t));
	p->min_timestamp = INT64_MAX;
	p->max_timestamp = INT64_MIN;
	for (size_t i = 0; i < data_parts->count; i++)
		if (!data_parts->items[i].dropped)
			summarize_partition_part(plan, p, data_parts->items[i].volume,
						 data_parts->items[i].dir);
	if (p->min_timestamp > p->max_timestamp)
		p->min_timestamp = p->max_timestamp = 0;
}

/* data/{small,big}/P (+ data/indexdb/P for a gen-C target). */
static void merge_partition(struct plan *plan, const char *name)
{
	size_t n = plan->volume_count;
	struct name_list *small = xcalloc(n, sizeof(*small)), *big = xcalloc(n, sizeof(*big));
	struct name_list merged_small = { 0 }, merged_big = { 0 }, merged_index = { 0 };
	struct source_dir *sources = xcalloc(n, sizeof(*sources));
	struct candidates summary_parts = { 0 };

	for (int level = LEVEL_SMALL; level <= LEVEL_INDEXDB; level++) {
		struct name_list *merged = level == LEVEL_SMALL ? &merged_small
					   : level == LEVEL_BIG ? &merged_big
								: &merged_index;
		char *path = xasprintf("%s/%s", level_dirs[level], name);
		struct name_list *index_lists = xcalloc(n, sizeof(*index_lists));

		if (level == LEVEL_INDEXDB && plan->target != GEN_C) {
			free(path);
			free(index_lists);
			continue;
		}
		for (size_t v = 0; v < n; v++) {
			const struct vnode *root = &plan->volumes[v].root;
			bool present = false;
			char *json_path;

			sources[v] = (struct source_dir){ .volume = (int)v, .path = path };
			sources[v].dir = vnode_at(vnode_at(root, level_dirs[level]), name);
			if (!vnode_is_dir(sources[v].dir) ||
			    !uses_parts_json(plan->summary[v].generation)) {
				continue;
			}
			json_path = xasprintf("%s/%s/parts.json",
					      level_dirs[level == LEVEL_INDEXDB ? LEVEL_INDEXDB
										: LEVEL_SMALL],
					      name);
			if (level == LEVEL_INDEXDB)
				read_listed(plan, (int)v, vnode_at(root, json_path), json_path,
					    false, &index_lists[v], NULL, &present);
			else if (level == LEVEL_SMALL)
				read_listed(plan, (int)v, vnode_at(root, json_path), json_path,
					    true, &small[v], &big[v], &present);
			else
				present = vnode_at(root, json_path) != NULL;
			if (present) {
				sources[v].listed = level == LEVEL_INDEXDB ? &index_lists[v]
						    : level == LEVEL_SMALL ? &small[v]
									   : &big[v];
				sources[v].listed_in = json_path;
			} else {
				free(json_path);
			}
		}
		merge_parts(plan, path, sources, n, level == LEVEL_INDEXDB, merged,
			    level == LEVEL_INDEXDB ? NULL : &summary_parts);
		for (size_t v = 0; v < n; v++) {
			free((char *)sources[v].listed_in);
			name_list_free(&index_lists[v]);
		}
		free(index_lists);
		free(path);
	}
	summarize_partition(plan, name, &summary_parts);
	if (uses_parts_json(plan->target)) {
		char *json = partsjson_format_partition(&merged_small, &merged_big);
		char *dir = xasprintf("data/small/%s", name);

		add_synth(plan, add_dir_path(plan, dir), "parts.json", json, strlen(json));
		free(dir);
		if (plan->target == GEN_C) {
			json = partsjson_format_table(&merged_index);
			dir = xasprintf("data/indexdb/%s", name);
			add_synth(plan, add_dir_path(plan, dir), "parts.json", json, strlen(json));
			free(dir);
		}
	}
	for (size_t v = 0; v < n; v++) {
		name_list_free(&small[v]);
		name_list_free(&big[v]);
	}
	free(small);
	free(big);
	free(sources);
	name_list_free(&merged_small);
	name_list_free(&merged_big);
	name_list_free(&merged_index);
	candidates_free(&summary_parts);
}

/* Sorts list and drops repeated names. */
static void name_list_sort_unique(struct name_list *list)
{
	size_t kept = 0;

	name_list_sort(list);
	for (size_t i = 0; i < list->count; i++) {
		if (kept && strcmp(list->names[kept - 1], list->names[i]) == 0)
			free(list->names[i]);
		else
			list->names[kept++] = list->names[i];
	}
	list->count = kept;
}

/* Every YYYY_MM under data/{small,big,indexdb} of every volume; the rest is hidden. */
static void collect_partition_names(struct plan *plan, struct name_list *names)
{
	for (size_t v = 0; v < plan->volume_count; v++) {
		struct name_list found = { 0 };

		for (int level = LEVEL_SMALL; level <= LEVEL_INDEXDB; level++) {
			const struct vnode *dir = vnode_at(&plan->volumes[v].root, level_dirs[level]);

			for (size_t i = 0; dir && i < dir->child_count; i++) {
				const struct vnode *entry = &dir->children[i];
				char *path = xasprintf("%s/%s", level_dirs[level], entry->name);

				if (strcmp(entry->name, "snapshots") == 0) {
					if (entry->child_count || entry->not_scanned)
						hide(plan, (int)v, path, HIDDEN_SNAPSHOTS);
				} else if (S_ISLNK(entry->st.st_mode) &&
					   is_partition_name(entry->name)) {
					hide(plan, (int)v, path, HIDDEN_BROKEN_LINK);
				} else if (!S_ISDIR(entry->st.st_mode) ||
					   !is_partition_name(entry->name)) {
					hide(plan, (int)v, path, HIDDEN_NOT_PARTITION);
				} else {
					name_list_add(names, entry->name);
				}
				if (S_ISDIR(entry->st.st_mode) && is_partition_name(entry->name))
					name_list_add(&found, entry->name);
				free(path);
			}
		}
		name_list_sort_unique(&found);
		plan->summary[v].partitions = found.count;
		name_list_free(&found);
	}
	name_list_sort_unique(names);
}

/* ---- indexdb tables ---- */

struct table_ref {
	int volume;
	const struct vnode *dir;
	enum table_role role;
};

/* How many of its newest tables a volume's own vmstorage keeps. */
static size_t table_window(enum generation generation)
{
	return generation == GEN_B2 ? 3 : 2;
}

/* The tables of one volume with the roles its own vmstorage gives them. */
static void volume_tables(struct plan *plan, int volume, struct table_ref **refs, size_t *count,
			  size_t *capacity)
{
	const struct vnode *indexdb = vnode_child(&plan->volumes[volume].root, "indexdb");
	enum generation generation = plan->summary[volume].generation;
	const struct vnode *tables[64];
	size_t n = 0, keep, first;

	for (size_t i = 0; indexdb && i < indexdb->child_count; i++) {
		const struct vnode *entry = &indexdb->children[i];
		char *path = xasprintf("indexdb/%s", entry->name);

		if (strcmp(entry->name, "snapshots") == 0) {
			if (entry->child_count || entry->not_scanned)
				hide(plan, volume, path, HIDDEN_SNAPSHOTS);
		} else if (!S_ISDIR(entry->st.st_mode) || !is_hex16_name(entry->name)) {
			hide(plan, volume, path, HIDDEN_NOT_TABLE);
		} else if (vnode_child(entry, ".delete-this-dir")) {
			hide(plan, volume, path, HIDDEN_DELETE_MARKER);
		} else if (generation == GEN_C && is_empty_dir(entry)) {
			hide(plan, volume, path, HIDDEN_EMPTY_TABLE);
		} else if (n < sizeof(tables) / sizeof(tables[0])) {
			tables[n++] = entry; /* children are sorted: oldest first */
		} else {
			hide(plan, volume, path, HIDDEN_OLD_TABLE);
		}
		free(path);
	}
	keep = n < table_window(generation) ? n : table_window(generation);
	if (generation == GEN_C && n >= 3) {
		/* Gen C keeps the newest 3, then drops the newest ("next") of those. */
		keep = 2;
		for (size_t i = n - 1; i < n; i++) {
			char *path = xasprintf("indexdb/%s", tables[i]->name);

			hide(plan, volume, path, HIDDEN_NEXT_TABLE);
			free(path);
		}
		n -= 1;
	}
	first = n - keep;
	for (size_t i = 0; i < first; i++) {
		char *path = xasprintf("indexdb/%s", tables[i]->name);

		hide(plan, volume, path, HIDDEN_OLD_TABLE);
		free(path);
	}
	for (size_t i = first; i < n; i++) {
		struct table_ref *ref = ARRAY_PUSH(*refs, *count, *capacity);

		ref->volume = volume;
		ref->dir = tables[i];
		ref->role = (enum table_role)(i - first);
	}
	plan->summary[volume].tables = n - first;
}

static size_t target_roles(enum generation target)
{
	return target == GEN_B2 ? 3 : 2;
}

static bool all_have_flag(const struct table_ref *refs, size_t count, enum table_role role,
			  const char *flag)
{
	bool any = false;

	for (size_t i = 0; i < count; i++) {
		if (refs[i].role != role)
			continue;
		any = true;
		if (!vnode_child(refs[i].dir, flag))
			return false;
	}
	return any;
}

/* A merged table is owned as the table whose name it takes, and grants no one
 * more than every table merged into it grants: a table kept private on its
 * volume is not served through another volume's open one. */
static void table_attr(struct plan *plan, uint32_t dir, const struct source_dir *sources,
		       size_t count, const char *name)
{
	struct plan_node *node = &plan->nodes[dir];
	const struct vnode *named = sources[0].dir;

	for (size_t i = 0; i < count; i++)
		if (strcmp(sources[i].dir->name, name) == 0) {
			named = sources[i].dir;
			break;
		}
	node->attr = attr_of(&named->st);
	node->mtime = named->st.st_mtim;
	for (size_t i = 0; i < count; i++)
		narrow_dir_attr(&node->attr, &sources[i].dir->st);
	merge_dir_acl(plan, dir, sources, count);
}

/* One merged table: the union of the parts of every table of that role. */
static void merge_table(struct plan *plan, const struct table_ref *refs, size_t count,
			enum table_role role, const char *name)
{
	struct source_dir *sources = xcalloc(count, sizeof(*sources));
	struct name_list *lists = xcalloc(count, sizeof(*lists));
	struct name_list merged = { 0 };
	size_t used = 0;
	char *path = xasprintf("indexdb/%s", name);
	uint32_t dir = add_dir_path(plan, path);
	struct plan_table *table;

	for (size_t i = 0; i < count; i++) {
		const struct table_ref *ref = &refs[i];
		struct source_dir *src;
		bool present = false;
		char *json_path;

		if (ref->role != role)
			continue;
		src = &sources[used];
		*src = (struct source_dir){ .volume = ref->volume, .dir = ref->dir };
		src->path = xasprintf("indexdb/%s", ref->dir->name);
		json_path = xasprintf("%s/parts.json", src->path);
		if (uses_parts_json(plan->summary[ref->volume].generation))
			read_listed(plan, ref->volume, vnode_child(ref->dir, "parts.json"),
				    json_path, false, &lists[used], NULL, &present);
		if (present) {
			src->listed = &lists[used];
			src->listed_in = json_path;
		} else {
			free(json_path);
		}
		struct plan_table_source *ts = ARRAY_PUSH(plan->table_sources,
							  plan->table_source_count,
							  plan->table_source_capacity);
		ts->volume = ref->volume;
		ts->name = xstrdup(ref->dir->name);
		ts->role = role;
		used++;
	}
	merge_parts(plan, path, sources, used, true, &merged, NULL);
	table_attr(plan, dir, sources, used, name);
	if (uses_parts_json(plan->target)) {
		char *json = partsjson_format_table(&merged);

		add_synth(plan, dir, "parts.json", json, strlen(json));
	}
	if (plan->target <= GEN_B1)
		add_empty_file(plan, dir, "flock.lock");
	if (all_have_flag(refs, count, role, "converted-to-v1.28.0"))
		add_empty_file(plan, dir, "converted-to-v1.28.0");
	table = ARRAY_PUSH(plan->tables, plan->table_count, plan->table_capacity);
	table->role = role;
	table->name = xstrdup(name);
	table->part_count = merged.count;
	for (size_t i = 0; i < used; i++) {
		free(sources[i].path);
		free((char *)sources[i].listed_in);
		name_list_free(&lists[i]);
	}
	free(sources);
	free(lists);
	free(path);
	name_list_free(&merged);
}

/* Global indexdb/ tables merged by role, each named after the largest
 * original name of its role (layout section 8). */
static void merge_tables(struct plan *plan)
{
	struct table_ref *refs = NULL;
	size_t count = 0, capacity = 0, roles = target_roles(plan->target);
	const char *names[3] = { NULL, NULL, NULL };
	bool any_indexdb = false;

	for (size_t v = 0; v < plan->volume_count; v++) {
		any_indexdb |= vnode_is_dir(vnode_child(&plan->volumes[v].root, "indexdb"));
		volume_tables(plan, (int)v, &refs, &count, &capacity);
	}
	if (!any_indexdb) {
		free(refs);
		return;
	}
	add_dir_path(plan, "indexdb/snapshots");
	for (size_t i = 0; i < count; i++) {
		if ((size_t)refs[i].role >= roles) {
			char *path = xasprintf("indexdb/%s", refs[i].dir->name);

			hide(plan, refs[i].volume, path, HIDDEN_NEXT_TABLE);
			free(path);
			continue;
		}
		if (!names[refs[i].role] || strcmp(refs[i].dir->name, names[refs[i].role]) > 0)
			names[refs[i].role] = refs[i].dir->name;
	}
	for (size_t r = 1; r < roles; r++)
		if (names[r - 1] && names[r] && strcmp(names[r - 1], names[r]) >= 0)
			refuse(plan,
			       "indexdb: the merged %s table %s does not sort before the merged "
			       "%s table %s; vmstorage would give them the wrong roles",
			       table_role_name(r - 1), names[r - 1], table_role_name(r), names[r]);
	for (size_t r = 0; r < roles; r++)
		if (names[r])
			merge_table(plan, refs, count, (enum table_role)r, names[r]);
	free(refs);
}

/* ---- the root ---- */

static int64_t decode_zigzag_be(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* metadata/minTimestampForCompositeIndex: the max over volumes never hides a
 * series, a min would (layout section 8). */
static void merge_min_timestamp(struct plan *plan)
{
	const char *path = "metadata/minTimestampForCompositeIndex";
	const struct vnode *best = NULL;
	int64_t best_value = INT64_MIN;

	for (size_t v = 0; v < plan->volume_count; v++) {
		const struct vnode *file = vnode_at(&plan->volumes[v].root, path);
		int64_t value;

		if (!file)
			continue;
		if (!S_ISREG(file->st.st_mode) || file->content_len != 8) {
			hide(plan, (int)v, path, HIDDEN_UNREADABLE_METADATA);
			continue;
		}
		value = decode_zigzag_be((const unsigned char *)file->content);
		if (!best || value > best_value) {
			best = file;
			best_value = value;
		}
	}
	add_dir(plan, 0, "metadata");
	if (!best)
		return;
	char *content = xmalloc(8);
	memcpy(content, best->content, 8);
	add_synth(plan, add_dir(plan, 0, "metadata"), "minTimestampForCompositeIndex", content, 8);
}

static enum hidden_reason root_hidden_reason(const struct vnode *entry)
{
	if (strcmp(entry->name, "flock.lock") == 0)
		return HIDDEN_LOCK_FILE;
	if (strcmp(entry->name, "cache") == 0)
		return HIDDEN_CACHE;
	if (strcmp(entry->name, "snapshots") == 0)
		return HIDDEN_SNAPSHOTS;
	return HIDDEN_UNKNOWN_ROOT;
}

static void hide_root_entries(struct plan *plan, int volume)
{
	const struct vnode *root = &plan->volumes[volume].root;
	const struct vnode *data = vnode_child(root, "data");

	for (size_t i = 0; i < root->child_count; i++) {
		const struct vnode *entry = &root->children[i];

		if (strcmp(entry->name, "data") == 0 || strcmp(entry->name, "indexdb") == 0 ||
		    strcmp(entry->name, "metadata") == 0)
			continue;
		if ((strcmp(entry->name, "cache") == 0 || strcmp(entry->name, "snapshots") == 0) &&
		    entry->child_count == 0 && !entry->not_scanned)
			continue;
		hide(plan, volume, entry->name, root_hidden_reason(entry));
	}
	if (vnode_child(data, "flock.lock"))
		hide(plan, volume, "data/flock.lock", HIDDEN_LOCK_FILE);
}

static void check_volumes(struct plan *plan)
{
	for (size_t v = 0; v < plan->volume_count; v++) {
		const struct volume *volume = &plan->volumes[v];

		if (!vnode_is_dir(vnode_child(&volume->root, "data")))
			refuse(plan, "%s: not a vmstorage volume (no data/ directory)", volume->path);
		if (vnode_child(&volume->root, "restore-in-progress"))
			refuse(plan,
			       "%s: restore-in-progress exists: vmrestore did not finish, the "
			       "volume is incomplete",
			       volume->path);
		for (size_t w = 0; w < v; w++)
			if (plan->volumes[w].root.st.st_dev == volume->root.st.st_dev &&
			    plan->volumes[w].root.st.st_ino == volume->root.st.st_ino)
				refuse(plan, "%s: the same volume as %s, given twice", volume->path,
				       plan->volumes[w].path);
		plan->summary[v].generation = detect_generation(&volume->root);
		if (plan->summary[v].generation > plan->target)
			plan->target = plan->summary[v].generation;
	}
}

static void build_root(struct plan *plan)
{
	add_node(plan, 0, "", PLAN_DIR);
	add_empty_file(plan, 0, "flock.lock");
	add_dir(plan, 0, "cache");
	add_dir(plan, 0, "snapshots");
	merge_min_timestamp(plan);
	add_dir_path(plan, "data/small/snapshots");
	add_dir_path(plan, "data/big/snapshots");
	if (plan->target == GEN_C)
		add_dir_path(plan, "data/indexdb/snapshots");
	if (plan->target <= GEN_B1)
		add_empty_file(plan, add_dir(plan, 0, "data"), "flock.lock");
}

static int compare_children(const void *a, const void *b, void *arg)
{
	const struct plan *plan = arg;

	return strcmp(plan->nodes[*(const uint32_t *)a].name,
		      plan->nodes[*(const uint32_t *)b].name);
}

static void finish_nodes(struct plan *plan)
{
	for (size_t i = 0; i < plan->node_count; i++) {
		struct plan_node *node = &plan->nodes[i];

		if (node->child_count)
			qsort_r(node->children, node->child_count, sizeof(uint32_t),
				compare_children, plan);
	}
}

/* A directory several volumes hold is owned as the first volume's, and grants
 * no one more than each volume's directory at its path grants: a private
 * volume stays private through the mount. It is sticky if any of them is.
 * False if no volume holds it. */
static bool merged_dir_attr(struct plan *plan, uint32_t node)
{
	struct plan_node *merged = &plan->nodes[node];
	struct source_dir *sources = xcalloc(plan->volume_count, sizeof(*sources));
	char *path = plan_path(plan, node);
	size_t found = 0;

	for (size_t v = 0; v < plan->volume_count; v++) {
		const struct vnode *dir = vnode_at(&plan->volumes[v].root, path);

		if (!vnode_is_dir(dir))
			continue;
		if (!found) {
			merged->attr = attr_of(&dir->st);
			merged->mtime = dir->st.st_mtim;
		}
		narrow_dir_attr(&merged->attr, &dir->st);
		sources[found++] = (struct source_dir){ .volume = (int)v, .dir = dir };
	}
	if (found)
		merge_dir_acl(plan, node, sources, found);
	free(sources);
	free(path);
	return found > 0;
}

/* What stat shows of the nodes add_lower, add_parts and table_attr did not
 * take from volume entries. A directory has the owner and mtime of the first
 * volume holding a directory at its path and the mode (and ACL) they all
 * grant (above),
 * else its parent's (a dir the merge makes); its nlink counts the plan's
 * subdirectories. A synthesized file is owned like its dir, 0644 narrowed
 * to what the dir grants (0600 in a 0700 dir): a private volume's
 * parts.json stays private in a copy too. Parents come before their
 * children in nodes[]. */
static void fill_attrs(struct plan *plan)
{
	for (uint32_t i = 0; i < plan->node_count; i++) {
		struct plan_node *node = &plan->nodes[i];

		if (node->kind == PLAN_SYNTH_FILE) {
			const struct plan_attr *dir = &plan->nodes[node->parent].attr;

			node->attr = (struct plan_attr){ .mode = S_IFREG | (0644 & dir->mode),
							 .uid = dir->uid, .gid = dir->gid, .nlink = 1,
							 .blocks = (node->size + 511) / 512 };
		}
		if (node->kind != PLAN_DIR)
			continue;
		if (node->attr.mode == 0 && !merged_dir_attr(plan, i)) {
			node->attr = plan->nodes[node->parent].attr;
			node->mtime = plan->nodes[node->parent].mtime;
		}
		node->attr.nlink = 2;
	}
	for (uint32_t i = 1; i < plan->node_count; i++)
		if (plan->nodes[i].kind == PLAN_DIR)
			plan->nodes[plan->nodes[i].parent].attr.nlink++;
}

static int compare_dir_acls(const void *a, const void *b)
{
	uint32_t x = ((const struct plan_dir_acl *)a)->node;
	uint32_t y = ((const struct plan_dir_acl *)b)->node;

	return x < y ? -1 : x > y;
}

const struct plan_dir_acl *plan_dir_acl_find(const struct plan_dir_acl *acls, size_t count,
					     uint32_t node)
{
	struct plan_dir_acl key = { .node = node };

	return count ? bsearch(&key, acls, count, sizeof(*acls), compare_dir_acls) : NULL;
}

static void summarize_bytes(struct plan *plan)
{
	for (size_t i = 0; i < plan->node_count; i++)
		if (plan->nodes[i].kind == PLAN_LOWER_FILE)
			plan->summary[plan->nodes[i].volume].bytes += plan->nodes[i].size;
}

int plan_build(struct plan *plan, struct volume *volumes, size_t volume_count,
	       struct error *err)
{
	struct name_list partitions = { 0 };

	memset(plan, 0, sizeof(*plan));
	plan->volumes = volumes;
	plan->volume_count = volume_count;
	plan->summary = xcalloc(volume_count, sizeof(*plan->summary));
	if (volume_count == 0)
		return error_set(err, EINVAL, "no volumes given");
	check_volumes(plan);
	if (plan->refusal_count == 0) {
		build_root(plan);
		for (size_t v = 0; v < volume_count; v++)
			hide_root_entries(plan, (int)v);
		collect_partition_names(plan, &partitions);
		for (size_t i = 0; i < partitions.count; i++)
			merge_partition(plan, partitions.names[i]);
		merge_tables(plan);
		finish_nodes(plan);
		fill_attrs(plan);
		if (plan->dir_acl_count)
			qsort(plan->dir_acls, plan->dir_acl_count, sizeof(*plan->dir_acls),
			      compare_dir_acls);
		summarize_bytes(plan);
	}
	name_list_free(&partitions);
	if (plan->refusal_count == 0)
		return 0;
	if (plan->refusal_count == 1)
		return error_set(err, EINVAL, "%s", plan->refusals[0]);
	return error_set(err, EINVAL, "%s (and %zu more refusals)", plan->refusals[0],
			 plan->refusal_count - 1);
}

void plan_free(struct plan *plan)
{
	for (size_t i = 0; i < plan->node_count && !plan->strings; i++) {
		free(plan->nodes[i].name);
		free(plan->nodes[i].lower_path);
		free(plan->nodes[i].children);
	}
	free(plan->strings);
	for (size_t i = 0; i < plan->node_count; i++)
		free(plan->nodes[i].content);
	free(plan->nodes);
	for (size_t i = 0; i < plan->hidden_count; i++) {
		free(plan->hidden[i].path);
	}
	free(plan->hidden);
	for (size_t i = 0; i < plan->rename_count; i++) {
		free(plan->renames[i].path);
		free(plan->renames[i].new_name);
	}
	free(plan->renames);
	for (size_t i = 0; i < plan->table_count; i++)
		free(plan->tables[i].name);
	free(plan->tables);
	for (size_t i = 0; i < plan->table_source_count; i++)
		free(plan->table_sources[i].name);
	free(plan->table_sources);
	for (size_t i = 0; i < plan->partition_count; i++) {
		free(plan->partitions[i].name);
		free(plan->partitions[i].part_count);
		free(plan->partitions[i].rows);
	}
	free(plan->partitions);
	for (size_t i = 0; i < plan->refusal_count; i++)
		free(plan->refusals[i]);
	free(plan->refusals);
	for (size_t i = 0; i < plan->dir_acl_count; i++) {
		free(plan->dir_acls[i].access);
		free(plan->dir_acls[i].defaults);
	}
	free(plan->dir_acls);
	free(plan->summary);
	memset(plan, 0, sizeof(*plan));
}

static int compare_child_name(const void *key, const void *element, void *arg)
{
	const struct plan *plan = arg;

	return strcmp(key, plan->nodes[*(const uint32_t *)element].name);
}

size_t plan_child_position(const struct plan *plan, uint32_t dir, const char *name)
{
	const struct plan_node *node = &plan->nodes[dir];
	size_t low = 0, high = node->child_count;

	while (low < high) {
		size_t mid = (low + high) / 2;
		int c = compare_child_name(name, &node->children[mid], (void *)plan);

		if (c == 0)
			return mid;
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	return SIZE_MAX;
}

uint32_t plan_child(const struct plan *plan, uint32_t dir, const char *name)
{
	size_t position = plan_child_position(plan, dir, name);

	return position == SIZE_MAX ? PLAN_NONE : plan->nodes[dir].children[position];
}

uint32_t plan_at(const struct plan *plan, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	uint32_t node = plan->node_count ? 0 : PLAN_NONE;

	for (char *part = strtok_r(copy, "/", &save); node != PLAN_NONE && part;
	     part = strtok_r(NULL, "/", &save))
		node = plan_child(plan, node, part);
	free(copy);
	return node;
}

char *plan_path(const struct plan *plan, uint32_t node)
{
	char *path = xstrdup("");

	for (; node != 0; node = plan->nodes[node].parent) {
		char *longer = *path ? xasprintf("%s/%s", plan->nodes[node].name, path)
				     : xstrdup(plan->nodes[node].name);

		free(path);
		path = longer;
	}
	return path;
}

static uint64_t fnv1a(uint64_t hash, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ p[i]) * 0x100000001b3ull;
	return hash;
}

static uint64_t lower_hash(int volume, const char *path)
{
	return fnv1a(fnv1a(0xcbf29ce484222325ull, &volume, sizeof(volume)), path, strlen(path));
}

/* The slot of the first node named name, or the empty one where it goes:
 * slots hold node index + 1. */
static uint32_t *name_slot(const struct plan *plan, uint32_t *slots, size_t mask,
			   const char *name)
{
	size_t i = fnv1a(1469598103934665603ULL, name, strlen(name)) & mask;

	while (slots[i] && strcmp(plan->nodes[slots[i] - 1].name, name) != 0)
		i = (i + 1) & mask;
	return &slots[i];
}

static char *pack_string(char **pool, char *s)
{
	char *packed = strcpy(*pool, s);

	*pool += strlen(s) + 1;
	free(s);
	return packed;
}

void plan_pack(struct plan *plan)
{
	size_t size = 16, bytes = 0, children = 0;
	uint32_t *slots, *slot, *child_pool;
	char *pool;

	if (plan->strings || plan->node_count == 0)
		return;
	while (size < 2 * plan->node_count)
		size *= 2;
	slots = xcalloc(size, sizeof(*slots));
	for (size_t i = 0; i < plan->node_count; i++) {
		const struct plan_node *node = &plan->nodes[i];

		slot = name_slot(plan, slots, size - 1, node->name);
		if (!*slot) {
			*slot = (uint32_t)i + 1;
			bytes += strlen(node->name) + 1;
		}
		if (node->lower_path)
			bytes += strlen(node->lower_path) + 1;
		children += node->child_count;
	}
	/* Children too: the heap the plan was built in is then free whole, and
	 * malloc_trim gives it back. */
	plan->strings = xmalloc(children * sizeof(*child_pool) + bytes);
	child_pool = (uint32_t *)plan->strings;
	pool = plan->strings + children * sizeof(*child_pool);
	for (size_t i = 0; i < plan->node_count; i++) {
		struct plan_node *node = &plan->nodes[i];
		uint32_t first = *name_slot(plan, slots, size - 1, node->name) - 1;

		if (first == i) {
			node->name = pack_string(&pool, node->name);
		} else {
			free(node->name);
			node->name = plan->nodes[first].name;
		}
		if (node->lower_path)
			node->lower_path = pack_string(&pool, node->lower_path);
		if (node->children)
			memcpy(child_pool, node->children, node->child_count * sizeof(*child_pool));
		free(node->children);
		node->children = node->child_count ? child_pool : NULL;
		child_pool += node->child_count;
		node->child_capacity = node->child_count;
	}
	free(slots);
	plan->nodes = xrealloc(plan->nodes, plan->node_count * sizeof(*plan->nodes));
	plan->node_capacity = plan->node_count;
}

void plan_lower_index_build(struct plan_lower_index *index, const struct plan *plan)
{
	size_t size = 16;

	while (size < 2 * plan->node_count)
		size *= 2;
	index->plan = plan;
	index->size = size;
	index->slots = xcalloc(size, sizeof(*index->slots));
	for (size_t i = 0; i < plan->node_count; i++) {
		const struct plan_node *node = &plan->nodes[i];
		size_t slot;

		if (node->kind != PLAN_LOWER_FILE)
			continue;
		slot = lower_hash(node->volume, node->lower_path) & (size - 1);
		while (index->slots[slot])
			slot = (slot + 1) & (size - 1);
		index->slots[slot] = (uint32_t)i + 1;
	}
}

const struct plan_node *plan_lower_index_find(const struct plan_lower_index *index, int volume,
					      const char *path)
{
	size_t mask = index->size - 1;

	for (size_t slot = lower_hash(volume, path) & mask; index->slots[slot];
	     slot = (slot + 1) & mask) {
		const struct plan_node *node = &index->plan->nodes[index->slots[slot] - 1];

		if (node->volume == volume && strcmp(node->lower_path, path) == 0)
			return node;
	}
	return NULL;
}

void plan_lower_index_free(struct plan_lower_index *index)
{
	free(index->slots);
	index->slots = NULL;
}

uint64_t plan_fingerprint(const struct plan *plan)
{
	uint64_t hash = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < plan->node_count; i++) {
		const struct plan_node *node = &plan->nodes[i];
		enum plan_node_kind kind = node->kind; /* bit-fields: hashed as before */
		int volume = node->volume;

		hash = fnv1a(hash, node->name, strlen(node->name) + 1);
		hash = fnv1a(hash, &node->parent, sizeof(node->parent));
		hash = fnv1a(hash, &kind, sizeof(kind));
		if (node->kind == PLAN_DIR)
			continue;
		hash = fnv1a(hash, &node->size, sizeof(node->size));
		if (node->kind == PLAN_SYNTH_FILE) {
			hash = fnv1a(hash, node->content, node->size);
			continue;
		}
		hash = fnv1a(hash, &volume, sizeof(volume));
		hash = fnv1a(hash, node->lower_path, strlen(node->lower_path) + 1);
		hash = fnv1a(hash, &node->mtime.tv_sec, sizeof(node->mtime.tv_sec));
		hash = fnv1a(hash, &node->mtime.tv_nsec, sizeof(node->mtime.tv_nsec));
	}
	for (size_t i = 0; i < plan->dir_acl_count; i++) {
		const struct plan_dir_acl *acl = &plan->dir_acls[i];

		hash = fnv1a(hash, &acl->node, sizeof(acl->node));
		if (acl->access)
			hash = fnv1a(hash, acl->access, acl->access_len);
		if (acl->defaults)
			hash = fnv1a(hash, acl->defaults, acl->defaults_len);
	}
	return hash;
}

uint64_t plan_lower_bytes(const struct plan *plan)
{
	uint64_t total = 0;

	for (size_t i = 0; i < plan->node_count; i++)
		if (plan->nodes[i].kind == PLAN_LOWER_FILE)
			total += plan->nodes[i].size;
	return total;
}
