/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel reads a FUSE file ahead in requests of the mount's own
 * read_ahead_kb, 128 KiB by default, although one request carries 1 MiB: a
 * sequential read of a part through the mount costs a round trip through
 * the daemon per 128 KiB. Raised as mergerfs's readahead= does, through
 * sysfs (root only). The kernel sets the knob from the INIT reply, at most
 * to its default, so it is raised only after the mount answers: a thread
 * waits for a stat of the mountpoint, which the kernel holds until then. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct request {
	char *mountpoint;
	unsigned int kib;
};

static int write_knob(const char *path, unsigned int kib)
{
	char value[16];
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;
	int len = snprintf(value, sizeof(value), "%u\n", kib);

	if (fd < 0)
		return -errno;
	if (write(fd, value, (size_t)len) != len)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* The bdi of the mount at path: 0, or -errno; -EXDEV when something else
 * than a FUSE mount is there now (mounted over since, or gone). */
static int bdi_of(const char *path, char *bdi, size_t size)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct statfs fs;
	struct stat st;

	/* fstat waits for the kernel to serve the mount: after the INIT reply. */
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0)
		rc = -errno;
	else if (fs.f_type != FUSE_SUPER_MAGIC)
		rc = -EXDEV;
	else
		snprintf(bdi, size, "%u:%u", major(st.st_dev), minor(st.st_dev));
	close(fd);
	return rc;
}

static void *set_readahead(void *data)
{
	struct request *request = data;
	char bdi[32], path[80];
	int rc = bdi_of(request->mountpoint, bdi, sizeof(bdi));

	/* Fails when the mount is gone already: nothing left to tune. */
	if (rc == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi);
		rc = write_knob(path, request->kib);
		if (rc < 0)
			log_info("cannot set the read-ahead to %u KiB: %s: %s; the kernel's "
				 "default applies",
				 request->kib, path, strerror(-rc));
	}
	free(request->mountpoint);
	free(request);
	return NULL;
}

void readahead_start(const char *mountpoint, unsigned int kib)
{
	struct request *request;
	pthread_attr_t attr;
	pthread_t thread;

	if (kib == 0)
		return;
	request = xcalloc(1, sizeof(*request));
	request->mountpoint = xstrdup(mountpoint);
	request->kib = kib;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, set_readahead, request) != 0) {
		log_info("cannot set the read-ahead: no thread");
		free(request->mountpoint);
		free(request);
	}
	pthread_attr_destroy(&attr);
}
