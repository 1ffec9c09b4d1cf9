/* SPDX-License-Identifier: Apache-2.0 */
/* The read-ahead of this mount's files (-o readahead=KIB). */
#ifndef VMUNION_READAHEAD_H
#define VMUNION_READAHEAD_H

#include <fuse_lowlevel.h>
#include <stddef.h>

/* The largest read request a FUSE connection carries (256 pages). */
#define READAHEAD_DEFAULT_KIB 1024u
#define READAHEAD_MAX_KIB (1024u * 1024u)

struct readahead {
	const char *mountpoint;
	unsigned int kib;           /* 0: the kernel's */
	unsigned long *before;      /* the mount IDs there were before the mount */
	size_t before_count, before_capacity;
	size_t matches;
	char device[32];            /* MAJOR:MINOR of this mount, once found */
};

/* Right before the mount: notes the mounts there are. */
void readahead_prepare(struct readahead *readahead, const char *mountpoint, unsigned int kib);
/* Right after the mount, before the session loop answers INIT: raises the
 * read-ahead of the new mount, or logs why not. */
void readahead_raise(struct readahead *readahead);
void readahead_free(struct readahead *readahead);

/* In the init operation: asks the kernel for the read-ahead raised. */
void readahead_negotiate(struct fuse_conn_info *conn);

#endif
