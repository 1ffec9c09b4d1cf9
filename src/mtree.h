/* SPDX-License-Identifier: Apache-2.0 */
/* The merged view as a flat list of entries, for the commands that write it
 * out (materialize) or compare a directory with it (verify). It comes either
 * from the plan, or from an upper directory (UPPER/tree, where a stub stands
 * for its volume file): there is no second merge implementation here. */
#ifndef VMUNION_MTREE_H
#define VMUNION_MTREE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "acl.h"
#include "plan.h"
#include "upper.h"
#include "util.h"
#include "volume.h"

enum mtree_kind {
	MTREE_DIR,
	MTREE_LOWER,   /* the bytes of a volume file: an immutable part file */
	MTREE_SYNTH,   /* bytes made by the plan (parts.json, flock.lock...) */
	MTREE_UPPER,   /* a real file of the upper: vmstorage wrote it */
	MTREE_SYMLINK, /* a symlink of the upper (vmstorage snapshots use them) */
};

struct mtree_entry {
	char *path;           /* below the root, e.g. "data/small/2024_01/parts.json" */
	enum mtree_kind kind;
	int volume;           /* MTREE_LOWER: index into the volumes */
	char *source;         /* LOWER: path below the volume; UPPER: below UPPER/tree;
				 SYMLINK: the link target */
	const char *content;  /* MTREE_SYNTH: owned by the plan */
	uint64_t size;
	struct timespec mtime;
	struct plan_attr attr; /* mode and owner a copy gives no one more than */
	uint32_t plan_node;    /* the plan node it shows; PLAN_NONE: the upper's own */
};

struct mtree {
	struct mtree_entry *entries; /* sorted by path (strcmp): a dir precedes its entries */
	size_t count, capacity;
	size_t files, dirs;
	uint64_t file_bytes;
	uint64_t fingerprint;        /* of everything that decides the bytes written */
	struct plan_attr root_attr;  /* the plan's root, its ACL folded in: no wider than
					any volume's */
};

/* Everything a command needs to read the merged view. */
struct mtree_session {
	struct volume *volumes;
	size_t volume_count;
	char **volume_realpaths;
	struct plan plan;
	struct upper upper;
	bool has_upper;
	char *upper_realpath;
	struct plan_lower_index stubs; /* the volume files a stub may name */
	struct mtree tree;
	bool refused; /* the failure is a refusal (exit 1), not an I/O error */
};

/* Opens the volumes, builds the plan and the tree: from the plan, or from the
 * upper at upper_path when not NULL (which must belong to these volumes). */
int mtree_session_open(struct mtree_session *session, char **volume_paths, size_t count,
		       const char *upper_path, struct error *err);
void mtree_session_close(struct mtree_session *session);

/* The entry at path, or NULL. */
const struct mtree_entry *mtree_find(const struct mtree *tree, const char *path);
bool mtree_is_file(const struct mtree_entry *entry);

/* Narrows *mode of a dir entry by the access ACL the mount serves for it:
 * the one the plan merged from its volumes' dirs, or the upper dir's own
 * (read from the upper). 0 or -errno. */
int mtree_fold_dir_acl(const struct mtree_session *session, const struct mtree_entry *entry,
		       uint32_t *mode);

/* Opens the bytes of a LOWER or UPPER entry read-only: fd or -errno. */
int mtree_open_source(const struct mtree_session *session, const struct mtree_entry *entry);
/* Where the bytes come from, for messages: "/vol/node0/data/..." (caller frees). */
char *mtree_source_name(const struct mtree_session *session, const struct mtree_entry *entry);

/* child == parent or below it; both absolute and resolved. */
bool path_within(const char *child, const char *parent);
/* realpath() of a path that may not exist yet (its parent must): caller frees. */
char *resolve_path(const char *path);

#endif
