/* SPDX-License-Identifier: Apache-2.0 */
/* Acting as the caller (creds.h). The kernel has already checked the
 * caller's permission (default_permissions) with its real credentials; the
 * upper checks again with the thread's, which must therefore be the caller's
 * alone: with the daemon's groups, a create the kernel allowed through one
 * of the caller's groups failed, and one the upper decides (attributes that
 * changed underneath the kernel's cache) could pass through a group of the
 * daemon's the caller does not have. Only the ops that create call this:
 * reading the caller's groups costs an open and a read of /proc. */
#include "creds.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* The raw syscall changes the calling thread only, as setfsuid does;
 * glibc's setgroups() changes every thread of the process, under the feet
 * of the requests the others serve. Where the plain syscall takes 16-bit
 * groups, the 32-bit one. */
#ifdef SYS_setgroups32
#define SYS_SETGROUPS_THREAD SYS_setgroups32
#else
#define SYS_SETGROUPS_THREAD SYS_setgroups
#endif

/* The groups the daemon was started with: every thread's, between changes. */
static gid_t *daemon_groups;
static int daemon_group_count = -1; /* unknown: groups are left alone */
static pthread_once_t daemon_groups_once = PTHREAD_ONCE_INIT;
static atomic_bool unread_logged;

static void daemon_groups_fetch(void)
{
	int count = getgroups(0, NULL);
	gid_t *list = xcalloc(count > 0 ? (size_t)count : 1, sizeof(*list));

	if (count >= 0 && getgroups(count, list) == count) {
		daemon_groups = list;
		daemon_group_count = count;
	} else {
		free(list);
	}
}

static int thread_set_groups(int count, const gid_t *list)
{
	return syscall(SYS_SETGROUPS_THREAD, (size_t)count, list) < 0 ? -errno : 0;
}

/* The caller's groups into *list (a new array when size is too small):
 * their count, or -errno when libfuse cannot read them. */
static int caller_groups(fuse_req_t req, gid_t **list, int size)
{
	int count = fuse_req_getgroups(req, size, *list);

	if (count <= size)
		return count;
	*list = xcalloc((size_t)count, sizeof(**list));
	size = count;
	count = fuse_req_getgroups(req, size, *list);
	return count <= size ? count : -EAGAIN; /* they grew meanwhile */
}

/* A caller whose groups cannot be read (one in a pid namespace the daemon
 * does not see has pid 0; one killed since has no /proc entry) gets none:
 * then the upper refuses what only a supplementary group allowed, and never
 * grants what the caller's groups would not. */
static int take_caller_groups(fuse_req_t req)
{
	gid_t some[32], *list = some;
	int count = caller_groups(req, &list, 32), rc;

	if (count < 0 && !atomic_exchange(&unread_logged, true))
		log_info("the supplementary groups of caller pid %d cannot be read (%s): what "
			 "it creates in the upper is made with none (logged once)",
			 (int)fuse_req_ctx(req)->pid, strerror(-count));
	rc = thread_set_groups(count < 0 ? 0 : count, list);
	if (list != some)
		free(list);
	return rc;
}

void become_caller(fuse_req_t req, struct creds *saved)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	pthread_once(&daemon_groups_once, daemon_groups_fetch);
	/* Groups the kernel refuses (a gid not mapped in the daemon's user
	 * namespace) leave none, never the daemon's; a daemon that may not
	 * change them at all (no CAP_SETGID: not root) keeps its own, as it
	 * keeps its fsuid. */
	saved->groups = daemon_group_count >= 0 &&
			(take_caller_groups(req) == 0 || thread_set_groups(0, NULL) == 0);
	saved->gid = (gid_t)setfsgid(ctx->gid);
	saved->uid = (uid_t)setfsuid(ctx->uid);
}

void become_daemon(const struct creds *saved)
{
	setfsuid(saved->uid);
	setfsgid(saved->gid);
	if (saved->groups)
		thread_set_groups(daemon_group_count, daemon_groups);
}
