/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel reads a FUSE file ahead in requests of the mount's own
 * read_ahead_kb, 128 KiB by default, although one request carries 1 MiB: a
 * sequential read of a part through the mount costs a round trip through
 * the daemon per 128 KiB. Raised as mergerfs's readahead= does, through
 * sysfs (root only). The kernel sets the knob from the INIT reply, at most
 * to its default, so it is raised only after the mount answers: a thread
 * waits for a stat of the mountpoint, which the kernel holds until then,
 * and writes the knob only if the mount there is this one. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdbool.h>
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

/* An octal escape of the mount table (\040 for a space...) made a byte
 * again, in place. */
static void unescape(char *text)
{
	char *to = text;

	for (const char *from = text; *from; to++) {
		if (from[0] == '\\' && from[1] >= '0' && from[1] <= '3' && from[2] >= '0' &&
		    from[2] <= '7' && from[3] >= '0' && from[3] <= '7') {
			*to = (char)((from[1] - '0') * 64 + (from[2] - '0') * 8 + (from[3] - '0'));
			from += 4;
		} else {
			*to = *from++;
		}
	}
	*to = '\0';
}

/* Whether the mount table puts the mount of dev at path. Since the mount,
 * path may lead elsewhere: a user who owns a parent may rename it and put a
 * symlink in its place, or the mount may be gone; the table names where a
 * mount really is. */
static bool mounted_at(const char *path, dev_t dev)
{
	FILE *table = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, point[PATH_MAX];
	unsigned int major_number, minor_number;
	bool found = false;
	size_t capacity = 0;

	if (!table)
		return false;
	while (!found && getline(&line, &capacity, table) > 0) {
		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &major_number, &minor_number,
			   point) != 3 ||
		    makedev(major_number, minor_number) != dev)
			continue;
		unescape(point);
		found = strcmp(point, path) == 0;
	}
	free(line);
	fclose(table);
	return found;
}

/* The bdi of the FUSE mount at path, the one this daemon made: 0, or
 * -errno; -EXDEV when the path leads to another mount now. */
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
	else if (fs.f_type != FUSE_SUPER_MAGIC || !mounted_at(path, st.st_dev))
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

	if (rc == -EXDEV)
		log_info("%s leads to another mount than this one now: its read-ahead is left "
			 "alone, and this mount's stays the kernel's default",
			 request->mountpoint);
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
