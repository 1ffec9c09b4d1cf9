/* SPDX-License-Identifier: Apache-2.0 */
/* The plan as a read-only mount keeps it for as long as it is mounted: what
 * lookups, stat, listings and reads need, and nothing else, in a few exactly
 * sized arrays. Strings are stored once however many nodes name them (every
 * part holds a values.bin), attributes (mode, owner, link count) once per
 * distinct value: 56 bytes per node besides the names of its dirs. */
#ifndef VMUNION_SERVED_PLAN_H
#define VMUNION_SERVED_PLAN_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "plan.h"
#include "util.h"

struct served_node {
	uint64_t size;
	uint64_t blocks;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t name;   /* offset into strings */
	uint32_t parent;
	uint32_t attr;   /* index into attrs */
	union {
		struct {
			uint32_t first_child; /* into children, sorted by name */
			uint32_t child_count;
		} dir;
		struct {
			uint32_t dir;  /* strings: the file's dir below its volume */
			uint32_t name; /* strings: its name there */
		} lower;
		uint32_t content; /* strings: a synthesized file's bytes */
	};
	uint16_t volume; /* PLAN_LOWER_FILE */
	uint8_t kind;    /* enum plan_node_kind */
};

/* What stat shows besides size, blocks and times; few distinct values. */
struct served_attr {
	uint32_t mode, uid, gid, nlink;
};

struct served_plan {
	struct served_node *nodes; /* nodes[0] is the root */
	size_t node_count;
	uint32_t *children;
	char *strings;
	struct served_attr *attrs;
	struct plan_dir_acl *dir_acls; /* sorted by node */
	size_t dir_acl_count;
};

/* Copies what serving needs out of plan, which may be freed afterwards. */
int served_plan_build(struct served_plan *served, const struct plan *plan, struct error *err);
void served_plan_free(struct served_plan *served);

static inline const char *served_string(const struct served_plan *served, uint32_t offset)
{
	return served->strings + offset;
}

/* A volume file's path below its volume, in buf. */
void served_lower_path(const struct served_plan *served, const struct served_node *node,
		       char buf[PATH_MAX]);

#endif
