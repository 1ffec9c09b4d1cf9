/* SPDX-License-Identifier: Apache-2.0 */
/* What the writable preview creates is the caller's: around the syscall that
 * creates it, the calling thread of the daemon takes the caller's fsuid,
 * fsgid and supplementary groups, and then its own back. */
#ifndef VMUNION_CREDS_H
#define VMUNION_CREDS_H

#include <stdbool.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

/* The daemon's own, to take back. */
struct creds {
	uid_t uid;
	gid_t gid;
	bool groups; /* the thread took the caller's groups */
};

void become_caller(fuse_req_t req, struct creds *saved);
void become_daemon(const struct creds *saved);

#endif
