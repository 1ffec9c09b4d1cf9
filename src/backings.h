/* SPDX-License-Identifier: Apache-2.0 */
/* The backing ids of the files the kernel has open with FUSE passthrough,
 * by the daemon's key of each file (a plan node). All the opens of an inode
 * pass through to one backing id, or none does (id 0: read through the
 * daemon): the kernel refuses an inode opened both ways. The caller
 * registers and unregisters ids with the kernel (passthrough.h); this keeps
 * the count. No id outlives the file's last open: a daemon killed pins no
 * closed file, and every first open checks the file again. Thread-safe. */
#ifndef VMUNION_BACKINGS_H
#define VMUNION_BACKINGS_H

#include <stdint.h>

struct backings;

struct backings *backings_new(void);
void backings_free(struct backings *backings);

/* Counts an open of key if it is open: the id its opens use (0: through the
 * daemon), or -1 if it is not open (backings_add once registered). */
int backings_open(struct backings *backings, uint32_t key);
/* Counts an open of key with id, just registered (0: none): the id the open
 * must use. *unused is an id to unregister, 0 if none: id itself if another
 * open of key was counted meanwhile. */
int backings_add(struct backings *backings, uint32_t key, int id, int *unused);
/* Counts a release of key: its id to unregister after its last open, or 0. */
int backings_release(struct backings *backings, uint32_t key);

#endif
