/* SPDX-License-Identifier: Apache-2.0 */
/* Who is on the other end of a TCP connection from this host: the owner of
 * the client's socket, asked of the kernel (sock_diag), since SO_PEERCRED
 * answers for Unix sockets only. */
#ifndef VMUNION_PEER_UID_H
#define VMUNION_PEER_UID_H

#include <sys/types.h>

/* fd: an accepted IPv4 TCP connection whose client is on this host.
 * -ENOENT: the client's socket is gone or not established; other -errno:
 * the kernel cannot be asked. */
int peer_uid(int fd, uid_t *uid);

#endif
