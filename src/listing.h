/* SPDX-License-Identifier: Apache-2.0 */
/* The listing of a directory of the upper as the preview shows it: every
 * name keeps one offset (the cookie a READDIR reply gives) for as long as
 * it is listed, whichever handle asks. The kernel keeps one listing cache
 * per directory for all its handles and goes on with one handle from an
 * offset another was given, so offsets must mean the same to every handle;
 * entries come in offset order and a handle at offset N is given the
 * entries above N, which holds whatever was added or removed meanwhile. */
#ifndef VMUNIONFS_LISTING_H
#define VMUNIONFS_LISTING_H

#include <stddef.h>
#include <sys/types.h>

struct listing_entry {
	off_t offset;
	ino_t ino;
	unsigned char type; /* DT_* */
	char *name;
};

struct listing {
	struct listing_entry *entries; /* by offset */
	size_t count;
	off_t next_offset; /* of the next name that has none yet */
};

/* A name's offset fixed by the caller (a plan position), or 0 for none. */
typedef off_t listing_fixed_offset_fn(const char *name, void *arg);

/* Offsets below first_free are the caller's to fix. */
void listing_init(struct listing *listing, off_t first_free);
void listing_free(struct listing *listing);
/* Reads the entries of dir_fd (but "." and "..") anew: a name listed
 * before keeps its offset, a name with no fixed offset and none before gets
 * the next free one. dir_fd's position is its own: the read uses a dup.
 * 0, or -errno with listing unchanged. */
int listing_read(struct listing *listing, int dir_fd, listing_fixed_offset_fn *fixed,
		 void *arg);
/* The index of the first entry whose offset is above offset. */
size_t listing_after(const struct listing *listing, off_t offset);

#endif
