/* SPDX-License-Identifier: Apache-2.0 */
/* The served plan (served_plan.h), built in one pass over the plan. Strings
 * and attributes go through open-addressing tables that live only while it
 * is built; the arrays kept are trimmed to their size. */
#include "served_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slots hold an index + 1 (0 is empty); at most half of them are filled. */
struct slots {
	uint32_t *slot;
	size_t size; /* a power of two */
	size_t filled;
};

struct builder {
	struct served_plan *served;
	size_t string_bytes, string_capacity;
	size_t attr_count, attr_capacity;
	struct slots strings, attrs;
};

static uint64_t hash_bytes(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint64_t hash = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ p[i]) * 1099511628211ULL;
	return hash;
}

static uint64_t hash_string(const char *s)
{
	return hash_bytes(s, strlen(s));
}

static uint64_t hash_attr(const struct served_attr *attr)
{
	return hash_bytes(attr, sizeof(*attr));
}

/* The slot of what matches, or the empty one where it goes. */
typedef bool slot_matches_fn(const struct builder *b, uint32_t index, const void *key);
typedef uint64_t slot_hash_fn(const struct builder *b, uint32_t index);

static uint32_t *slot_find(const struct builder *b, const struct slots *slots, uint64_t hash,
			   slot_matches_fn *matches, const void *key)
{
	size_t i = hash & (slots->size - 1);

	while (slots->slot[i] && !matches(b, slots->slot[i] - 1, key))
		i = (i + 1) & (slots->size - 1);
	return &slots->slot[i];
}

static void slots_grow(const struct builder *b, struct slots *slots, slot_hash_fn *hash)
{
	struct slots grown = { .size = slots->size ? slots->size * 2 : 64 };

	grown.slot = xcalloc(grown.size, sizeof(*grown.slot));
	for (size_t i = 0; i < slots->size; i++) {
		size_t j;

		if (!slots->slot[i])
			continue;
		j = hash(b, slots->slot[i] - 1) & (grown.size - 1);
		while (grown.slot[j])
			j = (j + 1) & (grown.size - 1);
		grown.slot[j] = slots->slot[i];
	}
	grown.filled = slots->filled;
	free(slots->slot);
	*slots = grown;
}

/* ---- strings ---- */

static bool string_matches(const struct builder *b, uint32_t offset, const void *key)
{
	return strcmp(b->served->strings + offset, key) == 0;
}

static uint64_t string_hash(const struct builder *b, uint32_t offset)
{
	return hash_string(b->served->strings + offset);
}

/* Appends len bytes and a NUL; -EOVERFLOW past 4 GiB of strings. */
static int64_t append(struct builder *b, const char *bytes, size_t len)
{
	size_t offset = b->string_bytes;

	if (offset + len + 1 > UINT32_MAX)
		return -EOVERFLOW;
	while (b->string_capacity < offset + len + 1) {
		b->string_capacity = b->string_capacity ? b->string_capacity * 2 : 4096;
		b->served->strings = xrealloc(b->served->strings, b->string_capacity);
	}
	memcpy(b->served->strings + offset, bytes, len);
	b->served->strings[offset + len] = '\0';
	b->string_bytes += len + 1;
	return (int64_t)offset;
}

/* The offset of s, stored once. */
static int64_t intern(struct builder *b, const char *s, size_t len)
{
	char key[PATH_MAX];
	uint32_t *slot;
	int64_t offset;

	if (len >= sizeof(key))
		return append(b, s, len);
	memcpy(key, s, len);
	key[len] = '\0';
	if (2 * (b->strings.filled + 1) > b->strings.size)
		slots_grow(b, &b->strings, string_hash);
	slot = slot_find(b, &b->strings, hash_string(key), string_matches, key);
	if (*slot)
		return *slot - 1;
	offset = append(b, s, len);
	if (offset >= 0) {
		*slot = (uint32_t)offset + 1;
		b->strings.filled++;
	}
	return offset;
}

/* ---- attributes ---- */

static bool attr_matches(const struct builder *b, uint32_t index, const void *key)
{
	return memcmp(&b->served->attrs[index], key, sizeof(struct served_attr)) == 0;
}

static uint64_t attr_hash(const struct builder *b, uint32_t index)
{
	return hash_attr(&b->served->attrs[index]);
}

static uint32_t intern_attr(struct builder *b, const struct plan_attr *from)
{
	struct served_attr attr = { .mode = from->mode, .uid = from->uid, .gid = from->gid,
				    .nlink = from->nlink };
	uint32_t *slot;

	if (2 * (b->attrs.filled + 1) > b->attrs.size)
		slots_grow(b, &b->attrs, attr_hash);
	slot = slot_find(b, &b->attrs, hash_attr(&attr), attr_matches, &attr);
	if (*slot)
		return *slot - 1;
	*ARRAY_PUSH(b->served->attrs, b->attr_count, b->attr_capacity) = attr;
	*slot = (uint32_t)b->attr_count;
	b->attrs.filled++;
	return (uint32_t)b->attr_count - 1;
}

/* ---- nodes ---- */

/* The lower path is split at its last slash: the dir is shared by every
 * file of a part, the name by every part. */
static int copy_strings(struct builder *b, const struct plan_node *from,
			struct served_node *node)
{
	const char *slash;
	int64_t name, dir = 0, lower = 0;

	name = intern(b, from->name, strlen(from->name));
	if (from->kind == PLAN_LOWER_FILE) {
		slash = strrchr(from->lower_path, '/');
		dir = intern(b, from->lower_path, slash ? (size_t)(slash - from->lower_path) : 0);
		lower = slash ? intern(b, slash + 1, strlen(slash + 1))
			      : intern(b, from->lower_path, strlen(from->lower_path));
	} else if (from->kind == PLAN_SYNTH_FILE) {
		dir = append(b, from->content, from->size);
	}
	if (name < 0 || dir < 0 || lower < 0)
		return -EOVERFLOW;
	node->name = (uint32_t)name;
	if (from->kind == PLAN_LOWER_FILE) {
		node->lower.dir = (uint32_t)dir;
		node->lower.name = (uint32_t)lower;
	} else if (from->kind == PLAN_SYNTH_FILE) {
		node->content = (uint32_t)dir;
	}
	return 0;
}

static int copy_node(struct builder *b, const struct plan_node *from, struct served_node *node,
		     uint32_t first_child)
{
	*node = (struct served_node){
		.size = from->size, .blocks = from->attr.blocks,
		.mtime_sec = (int64_t)from->mtime.tv_sec, .mtime_nsec = (uint32_t)from->mtime.tv_nsec,
		.parent = from->parent, .attr = intern_attr(b, &from->attr),
		.kind = (uint8_t)from->kind,
	};
	if (from->kind == PLAN_DIR) {
		node->dir.first_child = first_child;
		node->dir.child_count = (uint32_t)from->child_count;
	} else if (from->kind == PLAN_LOWER_FILE) {
		node->volume = (uint16_t)from->volume;
	}
	return copy_strings(b, from, node);
}

static char *copy_value(const char *value, size_t len)
{
	char *copy;

	if (!value)
		return NULL;
	copy = xmalloc(len);
	memcpy(copy, value, len);
	return copy;
}

static void copy_dir_acls(struct served_plan *served, const struct plan *plan)
{
	served->dir_acl_count = plan->dir_acl_count;
	served->dir_acls = xcalloc(plan->dir_acl_count, sizeof(*served->dir_acls));
	for (size_t i = 0; i < plan->dir_acl_count; i++) {
		const struct plan_dir_acl *from = &plan->dir_acls[i];

		served->dir_acls[i] = *from;
		served->dir_acls[i].access = copy_value(from->access, from->access_len);
		served->dir_acls[i].defaults = copy_value(from->defaults, from->defaults_len);
	}
}

int served_plan_build(struct served_plan *served, const struct plan *plan, struct error *err)
{
	struct builder b = { .served = served };
	size_t children = 0;
	int rc = 0;

	*served = (struct served_plan){ 0 };
	if (plan->node_count == 0 || plan->node_count >= UINT32_MAX ||
	    plan->volume_count > UINT16_MAX) {
		error_set(err, EINVAL, "the plan is empty or too large to serve");
		return -EINVAL;
	}
	for (size_t i = 0; i < plan->node_count; i++)
		children += plan->nodes[i].child_count;
	served->nodes = xcalloc(plan->node_count, sizeof(*served->nodes));
	served->children = xcalloc(children ? children : 1, sizeof(*served->children));
	served->node_count = plan->node_count;
	children = 0;
	for (size_t i = 0; i < plan->node_count && rc == 0; i++) {
		const struct plan_node *from = &plan->nodes[i];

		rc = copy_node(&b, from, &served->nodes[i], (uint32_t)children);
		if (from->child_count) /* an empty dir has no array */
			memcpy(&served->children[children], from->children,
			       from->child_count * sizeof(*from->children));
		children += from->child_count;
	}
	free(b.strings.slot);
	free(b.attrs.slot);
	if (rc < 0) {
		error_set(err, -rc, "the plan's names take more than 4 GiB");
		served_plan_free(served);
		return rc;
	}
	served->strings = xrealloc(served->strings, b.string_bytes);
	served->attrs = xrealloc(served->attrs, b.attr_count * sizeof(*served->attrs));
	copy_dir_acls(served, plan);
	return 0;
}

void served_plan_free(struct served_plan *served)
{
	free(served->nodes);
	free(served->children);
	free(served->strings);
	free(served->attrs);
	for (size_t i = 0; i < served->dir_acl_count; i++) {
		free(served->dir_acls[i].access);
		free(served->dir_acls[i].defaults);
	}
	free(served->dir_acls);
	*served = (struct served_plan){ 0 };
}

void served_lower_path(const struct served_plan *served, const struct served_node *node,
		       char buf[PATH_MAX])
{
	const char *dir = served_string(served, node->lower.dir);

	snprintf(buf, PATH_MAX, "%s%s%s", dir, *dir ? "/" : "", served_string(served,
										 node->lower.name));
}
