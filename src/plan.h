/* SPDX-License-Identifier: Apache-2.0 */
/* The merge model: merge(volumes) -> plan, the one merged vmstorage tree.
 * Every rule of what is live, hidden, renamed, synthesized or refused lives in
 * plan.c; the daemon, materialize and `vmunion plan` only read the result. */
#ifndef VMUNION_PLAN_H
#define VMUNION_PLAN_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "partsjson.h"
#include "util.h"
#include "volume.h"

enum generation { GEN_A, GEN_B1, GEN_B2, GEN_C };

enum plan_node_kind {
	PLAN_DIR,
	PLAN_LOWER_FILE, /* bytes come from a file of a volume */
	PLAN_SYNTH_FILE, /* bytes are made by the plan (parts.json, flock.lock...) */
};

#define PLAN_NONE UINT32_MAX

/* What stat shows of a node besides its size and mtime: the volume entry's
 * (see fill_attrs in plan.c for directories and synthesized files). */
struct plan_attr {
	uint32_t mode, uid, gid, nlink;
	uint64_t blocks;
};

/* The mode a copy of a node owned by uid:gid may have so that it grants no
 * one more than attr does: the bits attr grants that group and others (the
 * rule directories merge by), and attr's owner bits (the copy's owner may
 * chmod it anyway). Set-id bits only where uid:gid is attr's own. */
uint32_t plan_attr_mode_as(const struct plan_attr *attr, uid_t uid, gid_t gid);

/* 96 bytes: a daemon holds one per file for as long as it serves. */
struct plan_node {
	char *name;
	uint32_t parent;
	enum plan_node_kind kind : 8;
	signed int volume : 24; /* PLAN_LOWER_FILE: index into plan->volumes */
	char *lower_path;    /* PLAN_LOWER_FILE: path below that volume's root */
	uint64_t size;
	struct timespec mtime;
	struct plan_attr attr;
	char *content;       /* PLAN_SYNTH_FILE */
	uint32_t *children;  /* sorted by name */
	uint32_t child_count, child_capacity;
};

/* Why an entry of a volume is not shown. */
enum hidden_reason {
	HIDDEN_LOCK_FILE,
	HIDDEN_PARTS_JSON,
	HIDDEN_TABLE_FLAG,
	HIDDEN_RETENTION,
	HIDDEN_CACHE,
	HIDDEN_SNAPSHOTS,
	HIDDEN_SERVICE_DIR,
	HIDDEN_UNKNOWN_ROOT,
	HIDDEN_TMP_FILE,
	HIDDEN_UNLISTED,
	HIDDEN_MUST_REMOVE,
	HIDDEN_DELETE_MARKER,
	HIDDEN_EMPTY_PART,
	HIDDEN_EMPTY_TABLE,
	HIDDEN_NOT_PARTITION,
	HIDDEN_NOT_PART,
	HIDDEN_NOT_TABLE,
	HIDDEN_NOT_REGULAR,
	HIDDEN_IDENTICAL_COPY,
	HIDDEN_OLD_TABLE,
	HIDDEN_NEXT_TABLE,
	HIDDEN_UNREADABLE_METADATA,
	HIDDEN_BROKEN_LINK,
};

/* What kind of thing a hidden entry is, for reports that grade them. */
enum hidden_class {
	HIDDEN_CLASS_STATE,      /* per-volume state the merge replaces */
	HIDDEN_CLASS_GARBAGE,    /* left by an interrupted write or removal */
	HIDDEN_CLASS_FOREIGN,    /* not part of a vmstorage layout */
	HIDDEN_CLASS_SUPERSEDED, /* valid, but the merged view does not need it */
};

struct plan_hidden {
	int volume;
	char *path;
	enum hidden_reason reason;
};

const char *hidden_reason_text(enum hidden_reason reason);
enum hidden_class hidden_reason_class(enum hidden_reason reason);

struct plan_rename {
	int volume;
	char *path;     /* the part dir below the volume root */
	char *new_name;
};

enum table_role { ROLE_PREV, ROLE_CURR, ROLE_NEXT };

struct plan_table_source {
	int volume;
	char *name;
	enum table_role role;
};

struct plan_table {
	enum table_role role;
	char *name; /* the merged table's name */
	size_t part_count;
};

struct plan_partition {
	char *name;
	size_t *part_count;  /* per volume, data parts (small + big) */
	uint64_t *rows;      /* per volume */
	int64_t min_timestamp, max_timestamp; /* over all parts, ms */
};

struct plan_volume_summary {
	enum generation generation;
	size_t partitions, parts, tables;
	uint64_t bytes;
};

/* The POSIX ACLs a directory serves, part of its permissions (few have
 * any: they are kept apart from the nodes). */
struct plan_dir_acl {
	uint32_t node;
	char *access, *defaults; /* xattr values, NULL when none */
	size_t access_len, defaults_len;
};

struct plan {
	struct volume *volumes;
	size_t volume_count;
	struct plan_volume_summary *summary; /* per volume */
	enum generation target;

	struct plan_node *nodes; /* nodes[0] is the root */
	size_t node_count, node_capacity;
	/* Once plan_pack moved them: every node's name, lower_path and children. */
	char *strings;

	struct plan_hidden *hidden;
	size_t hidden_count, hidden_capacity;
	struct plan_rename *renames;
	size_t rename_count, rename_capacity;
	struct plan_table *tables;
	size_t table_count, table_capacity;
	struct plan_table_source *table_sources;
	size_t table_source_count, table_source_capacity;
	struct plan_partition *partitions;
	size_t partition_count, partition_capacity;
	char **refusals;
	size_t refusal_count, refusal_capacity;
	struct plan_dir_acl *dir_acls; /* sorted by node */
	size_t dir_acl_count, dir_acl_capacity;
};

const char *generation_name(enum generation generation);
const char *table_role_name(enum table_role role);

/* Builds the plan of volumes (which stay owned by the caller). Returns 0, or
 * -EINVAL with err naming the first refusal (plan->refusals has them all). */
int plan_build(struct plan *plan, struct volume *volumes, size_t volume_count,
	       struct error *err);
void plan_free(struct plan *plan);
/* For a plan kept as long as a daemon serves: its nodes' names, volume
 * paths and children move into one block (a name shared by many nodes
 * stored once), the node array is trimmed to its size. The plan is
 * read-only thereafter. */
void plan_pack(struct plan *plan);

/* The ACLs of dir node in acls (a plan's or a served plan's), or NULL. */
const struct plan_dir_acl *plan_dir_acl_find(const struct plan_dir_acl *acls, size_t count,
					     uint32_t node);

uint32_t plan_child(const struct plan *plan, uint32_t dir, const char *name);
/* Where name is in dir's children, or SIZE_MAX. */
size_t plan_child_position(const struct plan *plan, uint32_t dir, const char *name);
uint32_t plan_at(const struct plan *plan, const char *path);
/* "data/small/2024_01/parts.json"; the root is "". Caller frees. */
char *plan_path(const struct plan *plan, uint32_t node);
/* Changes when anything the plan shows changes (names, sizes, mtimes of
 * volume files, synthesized bytes): an upper made for one plan must not be
 * used with another. */
uint64_t plan_fingerprint(const struct plan *plan);
/* Which plan node shows the file (volume, lower_path): an upper's stubs may
 * name only such files. */
struct plan_lower_index {
	const struct plan *plan;
	uint32_t *slots; /* node index + 1, open addressing; 0 is empty */
	size_t size;     /* a power of two */
};

void plan_lower_index_build(struct plan_lower_index *index, const struct plan *plan);
/* The plan's lower file that (volume, path) names, or NULL. */
const struct plan_node *plan_lower_index_find(const struct plan_lower_index *index, int volume,
					      const char *path);
void plan_lower_index_free(struct plan_lower_index *index);

/* Bytes of every lower file, for space checks. */
uint64_t plan_lower_bytes(const struct plan *plan);

void plan_print_text(const struct plan *plan, FILE *out);
/* Returns a malloc'd JSON document. */
char *plan_print_json(const struct plan *plan);

#endif
