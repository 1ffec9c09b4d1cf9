/* SPDX-License-Identifier: Apache-2.0 */
/* The read-ahead of this mount's files (-o readahead=KIB). */
#ifndef VMUNION_READAHEAD_H
#define VMUNION_READAHEAD_H

#include <fuse_lowlevel.h>

/* The largest read request a FUSE connection carries (256 pages). */
#define READAHEAD_DEFAULT_KIB 1024u
#define READAHEAD_MAX_KIB (1024u * 1024u)

/* Right after the mount, before the session loop answers INIT: raises the
 * read-ahead of the mount at mountpoint to kib, or logs why not. kib 0
 * leaves the kernel's. */
void readahead_raise(const char *mountpoint, unsigned int kib);

/* In the init operation: asks the kernel for the read-ahead raised. */
void readahead_negotiate(struct fuse_conn_info *conn);

#endif
