/* SPDX-License-Identifier: Apache-2.0 */
/* The upper directory: the merged tree as real directories on a writable
 * filesystem, where every file of a volume is a stub (a sparse file of the
 * right size and mtime whose xattr names the volume file). vmstorage's writes,
 * renames, links and unlinks are then plain operations on this tree, and the
 * volumes below are only ever opened O_RDONLY.
 *
 * Lazy population: a directory of the tree is either populated (its entries
 * in the upper are what is served) or lazy: it carries UPPER_LAZY_XATTR, the
 * path of the plan directory it stands for, and its entries are that plan
 * directory's children, whatever the upper holds below it (nothing, or what an
 * interrupted population left). The path, not a plan index, so that a lazy
 * directory renamed before it is populated keeps its children. A new tree
 * has only the root populated: a mount costs the root's entries, not one stub
 * per volume file. Before anything changes a lazy directory's entries, the
 * daemon populates it (upper_populate_dir): its children are made as lazy
 * directories, stubs and synthesized files, and the xattr goes last, so that
 * a crash leaves it lazy, to be populated again from scratch. Directories
 * below a lazy one need not exist; readers (fs.c, mtree.c) take their
 * contents from the plan.
 *
 * Layout: UPPER/vmunionfs.json (which volumes, in order), UPPER/tree/ (the root
 * that is served). */
#ifndef VMUNION_UPPER_H
#define VMUNION_UPPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "plan.h"
#include "util.h"

#define UPPER_STUB_XATTR "user.vmunionfs.lower"
#define UPPER_LAZY_XATTR "user.vmunionfs.plan"
/* The plan path a copied-up stub, a populated directory or a synthesized
 * file came from: the preview shows its plan inode (fs.c). */
#define UPPER_ORIGIN_XATTR "user.vmunionfs.origin"

struct upper {
	char *path;
	int dirfd;     /* UPPER */
	int tree_fd;   /* UPPER/tree, O_RDONLY | O_DIRECTORY */
};

/* Opens (or creates and fills from the plan) the upper at path. Refuses an
 * upper that belongs to other volumes, or a non-empty dir that is no upper. */
int upper_open(struct upper *upper, const char *path, const struct plan *plan,
	       struct error *err);
/* Opens an upper made earlier for these volumes without creating or changing
 * anything: -EINVAL when it is no upper or belongs to other volumes. */
int upper_open_existing(struct upper *upper, const char *path, const struct plan *plan,
			struct error *err);
void upper_close(struct upper *upper);

/* Populates dirfd, a directory of the upper that stands for plan node dir:
 * removes what an interrupted population left in it, makes each child (a
 * lazy directory, a stub, a synthesized file) with the volume's attributes,
 * keeps its own times, syncs it, then replaces its UPPER_LAZY_XATTR by
 * UPPER_ORIGIN_XATTR. A failed one (ENOSPC) removes the children it made:
 * the directory stays lazy and takes no more of the upper. A child whose bit
 * is set in removed (a bit per plan node; NULL: none) was unlinked from the
 * lazy directory: it is not made. */
int upper_populate_dir(int dirfd, const struct plan *plan, uint32_t dir,
		       const unsigned char *removed, struct error *err);
/* Whether the directory at path (a /proc/self/fd path works) is lazy: 1 and
 * *dir its plan directory, 0 when populated, -EIO when its xattr names no
 * plan directory, or -errno. */
int upper_lazy_get(const char *path, const struct plan *plan, uint32_t *dir);

/* Marks the file or directory at path with the plan path it came from. */
int upper_origin_set(const char *path, const char *plan_path);
/* The plan node the file or directory at path came from (UPPER_ORIGIN_XATTR):
 * 1 and *node, 0 when it has none or names no plan node, or -errno. */
int upper_origin_get(const char *path, const struct plan *plan, uint32_t *node);

/* The stub reference of the file at path (a /proc/self/fd path works):
 * 1 and *volume, *lower_path set when it is a stub, 0 when not, or -errno. */
int upper_stub_get(const char *path, int *volume, char **lower_path);
/* Replaces a stub's content by the bytes of its volume file (copy-up): the
 * first keep bytes, or all when keep < 0 (a truncation copies only what it
 * keeps). fd is the stub opened O_RDWR, lower_fd the volume file. Crash-safe:
 * the xattr goes last, so an interrupted copy-up is a stub still; a failed
 * one (ENOSPC) gives its blocks back and leaves the stub as it was. */
int upper_copy_up(int fd, int lower_fd, const char *path, off_t keep);

#endif
