/* SPDX-License-Identifier: Apache-2.0 */
/* The upper directory: the merged tree as real directories on a writable
 * filesystem, where every file of a volume is a stub (a sparse file of the
 * right size and mtime whose xattr names the volume file). vmstorage's writes,
 * renames, links and unlinks are then plain operations on this tree, and the
 * volumes below are only ever opened O_RDONLY.
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

/* Fills dirfd (an empty dir) with the plan's tree; files of volumes become
 * stubs. Used by upper_open, which syncs the result unless it is private. */
int upper_populate(int dirfd, const struct plan *plan, struct error *err);

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
