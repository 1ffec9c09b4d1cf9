/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel reads a FUSE file ahead in requests of the mount's own
 * read_ahead_kb, 128 KiB by default, although one request carries 1 MiB: a
 * sequential read of a part through the mount costs a round trip through
 * the daemon per 128 KiB. Raised as mergerfs's readahead= does, through
 * sysfs (root only), but before the INIT reply, which sets the knob to the
 * smaller of it and the reply's max_readahead: so nothing opens the
 * mountpoint (a stat would wait for INIT, and an fd held there makes an
 * umount fail with EBUSY), and the mount is found in the mount table. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static unsigned int wanted_kib;

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

/* Whether a line of the mount table is a FUSE mount of this daemon's user
 * at path: another user's FUSE mount there (fusermount3) has their
 * user_id. */
static bool is_our_mount(const char *line, const char *path, char *point, char *options)
{
	char fstype[64], own_user[32];
	const char *fields = strstr(line, " - ");

	if (!fields || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
	    sscanf(fields, " - %63s %*s %4095s", fstype, options) != 2)
		return false;
	unescape(point);
	snprintf(own_user, sizeof(own_user), "user_id=%u", (unsigned int)getuid());
	return strcmp(point, path) == 0 &&
	       (strcmp(fstype, "fuse") == 0 || strncmp(fstype, "fuse.", 5) == 0) &&
	       strstr(options, own_user) != NULL;
}

/* The bdi (MAJOR:MINOR) of the topmost FUSE mount of this user at path:
 * the one just made there. */
static int bdi_of(const char *path, char *bdi, size_t size)
{
	FILE *table = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, point[PATH_MAX], options[PATH_MAX];
	unsigned int major_number, minor_number;
	size_t capacity = 0;
	int rc = -ENOENT;

	if (!table)
		return -errno;
	while (getline(&line, &capacity, table) > 0) {
		if (!is_our_mount(line, path, point, options) ||
		    sscanf(line, "%*s %*s %u:%u", &major_number, &minor_number) != 2)
			continue;
		snprintf(bdi, size, "%u:%u", major_number, minor_number);
		rc = 0;
	}
	free(line);
	fclose(table);
	return rc;
}

void readahead_raise(const char *mountpoint, unsigned int kib)
{
	char bdi[32], path[80];
	int rc;

	if (kib == 0)
		return;
	rc = bdi_of(mountpoint, bdi, sizeof(bdi));
	if (rc < 0) {
		log_info("%s: not in /proc/self/mountinfo as this daemon's FUSE mount (%s): "
			 "its read-ahead stays the kernel's default",
			 mountpoint, strerror(-rc));
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi);
	rc = write_knob(path, kib);
	if (rc < 0) {
		log_info("cannot set the read-ahead to %u KiB: %s: %s; the kernel's default applies",
			 kib, path, strerror(-rc));
		return;
	}
	wanted_kib = kib;
}

void readahead_negotiate(struct fuse_conn_info *conn)
{
	/* The kernel offered its default; it takes the smaller of this and
	 * the knob raised above. */
	if (wanted_kib > 0)
		conn->max_readahead = wanted_kib * 1024u;
}
