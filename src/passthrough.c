/* SPDX-License-Identifier: Apache-2.0 */
#include "passthrough.h"
#include "log.h"

#ifdef HAVE_FUSE_PASSTHROUGH

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

/* The kernel's ABI since Linux 6.9 (linux/fuse.h), which libfuse wraps in
 * fuse_passthrough_close for a live request only. */
#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif

bool passthrough_built(void)
{
	return true;
}

bool passthrough_negotiate(struct fuse_conn_info *conn, bool wanted)
{
	if (!wanted) {
		log_info("passthrough: off (-o nopassthrough): files are read through the daemon");
		return false;
	}
	if (!(conn->capable & FUSE_CAP_PASSTHROUGH)) {
		log_info("passthrough: off (the kernel has none: it needs Linux 6.9 or later "
			 "with CONFIG_FUSE_PASSTHROUGH): files are read through the daemon");
		return false;
	}
	conn->want |= FUSE_CAP_PASSTHROUGH;
	conn->max_backing_stack_depth = FUSE_BACKING_STACKED_OVER;
	log_info("passthrough: on: the kernel reads open files itself");
	return true;
}

int passthrough_register(fuse_req_t req, int fd, bool *enabled, const char *what)
{
	int id = fuse_passthrough_open(req, fd);

	if (id > 0)
		return id;
	if (__atomic_exchange_n(enabled, false, __ATOMIC_RELAXED))
		log_error("passthrough off: the kernel refused %s as a backing file (see above: "
			  "\"Too many levels of symbolic links\" when it lies on another FUSE "
			  "passthrough mount, \"Operation not permitted\" without "
			  "CAP_SYS_ADMIN); files not open now go through the daemon",
			  what);
	return 0;
}

void passthrough_unregister(struct fuse_session *session, int backing_id)
{
	uint32_t id = (uint32_t)backing_id;

	if (ioctl(fuse_session_fd(session), FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0)
		log_error("passthrough: cannot give backing id %d back: %s", backing_id,
			  strerror(errno));
}

void passthrough_reply(struct fuse_file_info *fi, int backing_id)
{
	fi->backing_id = backing_id;
	/* The kernel refuses (EIO) a passthrough open with any other flag
	 * than direct_io, parallel_direct_writes and noflush. */
	if (backing_id > 0)
		fi->keep_cache = 0;
}

#else

bool passthrough_built(void)
{
	return false;
}

bool passthrough_negotiate(struct fuse_conn_info *conn, bool wanted)
{
	(void)conn;
	if (wanted)
		log_info("passthrough: not built (libfuse %s, it needs 3.17 or later): files "
			 "are read through the daemon",
			 fuse_pkgversion());
	return false;
}

int passthrough_register(fuse_req_t req, int fd, bool *enabled, const char *what)
{
	(void)req;
	(void)fd;
	(void)what;
	*enabled = false;
	return 0;
}

void passthrough_unregister(struct fuse_session *session, int backing_id)
{
	(void)session;
	(void)backing_id;
}

void passthrough_reply(struct fuse_file_info *fi, int backing_id)
{
	(void)fi;
	(void)backing_id;
}

#endif
