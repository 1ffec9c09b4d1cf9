/* SPDX-License-Identifier: Apache-2.0 */
/* The backing ids of the files the kernel has open with FUSE passthrough,
 * by the daemon's key of each file (a plan node). All the opens of an inode
 * pass through to one backing id, or none does (id 0: read through the
 * daemon): the kernel refuses an inode opened both ways. A backing id stays
 * registered after the last release, up to a bound, so that opening a file
 * again costs no registration. The caller registers and unregisters ids with
 * the kernel (passthrough.h); this keeps the count. Thread-safe. */
#ifndef VMUNION_BACKINGS_H
#define VMUNION_BACKINGS_H

#include <stddef.h>
#include <stdint.h>

struct backings;

/* keep: how many unused backing ids stay registered, at most. */
struct backings *backings_new(size_t keep);
void backings_free(struct backings *backings);

/* Counts an open of key if it has a backing id: the id (0: the open goes
 * through the daemon), or -1 if it has none (backings_add once registered). */
int backings_open(struct backings *backings, uint32_t key);
/* Counts an open of key with id, just registered (0: none could be): the id
 * the open must use. *unused is an id to unregister, 0 if none: id itself
 * if another open registered one meanwhile. */
int backings_add(struct backings *backings, uint32_t key, int id, int *unused);
/* Counts a release of key: an id to unregister (one kept too long), or 0. */
int backings_release(struct backings *backings, uint32_t key);

#endif
