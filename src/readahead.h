/* SPDX-License-Identifier: Apache-2.0 */
/* The read-ahead of this mount's files (-o readahead=KIB). */
#ifndef VMUNION_READAHEAD_H
#define VMUNION_READAHEAD_H

/* The largest read request a FUSE connection carries (256 pages). */
#define READAHEAD_DEFAULT_KIB 1024u
#define READAHEAD_MAX_KIB (1024u * 1024u)

/* After fuse_daemonize, before the session loop: a thread sets the
 * read-ahead of the mount at mountpoint to kib once the kernel serves it.
 * kib 0 leaves the kernel's. */
void readahead_start(const char *mountpoint, unsigned int kib);

#endif
