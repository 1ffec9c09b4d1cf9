/* SPDX-License-Identifier: Apache-2.0 */
/* A bounded cache of open fds, keyed by a number (a plan node): reads take an
 * fd, use it and give it back; the least recently used fds nobody holds are
 * closed when the cache is full or the process runs out of fds. An fd is
 * never closed while held, so a pread never reads a closed or reused fd. */
#ifndef VMUNION_FD_CACHE_H
#define VMUNION_FD_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct fd_cache;
struct fd_hold;

/* Opens what key names: an fd, or -errno. */
typedef int fd_cache_open_fn(uint32_t key, void *arg);

/* Keeps at most limit unheld fds, and at most half the fd limit
 * (RLIMIT_NOFILE) in all, whatever limit is set on the running process. */
struct fd_cache *fd_cache_new(size_t limit, fd_cache_open_fn *open, void *arg);
void fd_cache_free(struct fd_cache *cache);

/* The fd of key, held until fd_cache_put; opened if not cached. On EMFILE
 * or ENFILE the unheld fds are closed and the open tried once more. Returns
 * NULL and *rc, the open's -errno, if it fails. */
struct fd_hold *fd_cache_get(struct fd_cache *cache, uint32_t key, int *rc);
int fd_hold_fd(const struct fd_hold *hold);
void fd_cache_put(struct fd_cache *cache, struct fd_hold *hold);

/* Closes the fds no read holds, for an open elsewhere in the process that
 * ran out of fds. How many were closed. */
size_t fd_cache_give_back(struct fd_cache *cache);

#endif
