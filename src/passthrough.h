/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE passthrough: the kernel reads and writes an open file's backing file
 * itself, sending the daemon no READ or WRITE. Needs libfuse >= 3.17 (a
 * configure probe) and Linux >= 6.9 with CONFIG_FUSE_PASSTHROUGH; without
 * either, every call here says no and requests go through the daemon. */
#ifndef VMUNION_PASSTHROUGH_H
#define VMUNION_PASSTHROUGH_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

/* Whether this build has it (vmunionfs -V says). */
bool passthrough_built(void);
/* In the init operation: asks the kernel for passthrough if wanted and it
 * has it; whether opens may use it. Backing files may be on a stacked file
 * system (an upper on overlayfs, as in a container); this mount then cannot
 * be a layer of another overlayfs. */
bool passthrough_negotiate(struct fuse_conn_info *conn, bool wanted);
/* Registers fd's file with the kernel for the opens of one inode: their
 * backing id, or 0 if the kernel refused it (libfuse logs why). The kernel
 * keeps only the file's path: it opens it again for each open, with that
 * open's flags, so fd may be opened any way, and stays the caller's.
 * The first refusal turns *enabled off (atomically) and says so, naming what
 * the file was: one refused is refused for the mount's reason (stacking, no
 * CAP_SYS_ADMIN), and the mount goes on through the daemon. */
int passthrough_register(fuse_req_t req, int fd, bool *enabled, const char *what);
/* Gives backing_id back to the kernel of session: by the session, not a
 * request, as an open whose reply failed (interrupted) has freed its own. */
void passthrough_unregister(struct fuse_session *session, int backing_id);
/* The open replied with fi goes through to backing_id's file (if not 0),
 * with no flag the kernel would refuse. */
void passthrough_reply(struct fuse_file_info *fi, int backing_id);

#endif
