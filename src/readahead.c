/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel reads a FUSE file ahead in requests of the mount's own
 * read_ahead_kb, 128 KiB by default, although one request carries 1 MiB: a
 * sequential read of a part through the mount costs a round trip through
 * the daemon per 128 KiB. Raised as mergerfs's readahead= does, through
 * sysfs (root only), but before the INIT reply, which sets the knob to the
 * smaller of it and the reply's max_readahead: so nothing opens the
 * mountpoint (a stat would wait for INIT, and an fd held there makes an
 * umount fail with EBUSY).
 *
 * Which mount is this daemon's is not a question for a path: names move, and
 * a user who owns a parent of the mountpoint can put another mount at it
 * between the mount and the lookup. It is the one mount of the table that
 * was not there before the mount, is FUSE, and is this user's. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static unsigned int wanted_kib;

/* The fields of a mount table line that tell mounts apart. */
struct mount_line {
	unsigned long id;
	const char *device;      /* MAJOR:MINOR */
	char *point;             /* unescaped */
	const char *fstype, *super_options;
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

/* Splits a line of /proc/self/mountinfo in place, whatever its length:
 * "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER". */
static bool parse_line(char *line, struct mount_line *mount)
{
	char *fields[6], *save = NULL, *field;
	size_t count = 0;

	line[strcspn(line, "\n")] = '\0';
	for (field = strtok_r(line, " ", &save); field && count < 6;
	     field = strtok_r(NULL, " ", &save))
		fields[count++] = field;
	while (field && strcmp(field, "-") != 0)
		field = strtok_r(NULL, " ", &save);
	if (count < 6 || !field)
		return false;
	mount->fstype = strtok_r(NULL, " ", &save);
	if (!mount->fstype || !strtok_r(NULL, " ", &save))
		return false;
	mount->super_options = strtok_r(NULL, " ", &save);
	if (!mount->super_options)
		return false;
	mount->id = strtoul(fields[0], NULL, 10);
	mount->device = fields[2];
	mount->point = fields[4];
	unescape(mount->point);
	return true;
}

/* Whether a comma-separated option list holds option, whole. */
static bool has_option(const char *options, const char *option)
{
	size_t len = strlen(option);

	for (const char *at = options;; at++) {
		if (strncmp(at, option, len) == 0 && (at[len] == ',' || at[len] == '\0'))
			return true;
		at = strchr(at, ',');
		if (!at)
			return false;
	}
}

static bool is_fuse_of_this_user(const struct mount_line *mount)
{
	char user[32];

	snprintf(user, sizeof(user), "user_id=%u", (unsigned int)getuid());
	return (strcmp(mount->fstype, "fuse") == 0 || strncmp(mount->fstype, "fuse.", 5) == 0) &&
	       has_option(mount->super_options, user);
}

static bool known(const struct readahead *readahead, unsigned long id)
{
	for (size_t i = 0; i < readahead->before_count; i++)
		if (readahead->before[i] == id)
			return true;
	return false;
}

/* Calls visit for each line of the mount table; 0 or -errno. */
static int each_mount(void (*visit)(struct readahead *, const struct mount_line *),
		      struct readahead *readahead)
{
	FILE *table = fopen("/proc/self/mountinfo", "re");
	struct mount_line mount;
	size_t capacity = 0;
	char *line = NULL;

	if (!table)
		return -errno;
	while (getline(&line, &capacity, table) > 0)
		if (parse_line(line, &mount))
			visit(readahead, &mount);
	free(line);
	fclose(table);
	return 0;
}

static void remember(struct readahead *readahead, const struct mount_line *mount)
{
	*ARRAY_PUSH(readahead->before, readahead->before_count, readahead->before_capacity) =
		mount->id;
}

static void match(struct readahead *readahead, const struct mount_line *mount)
{
	if (known(readahead, mount->id) || !is_fuse_of_this_user(mount) ||
	    strcmp(mount->point, readahead->mountpoint) != 0)
		return;
	readahead->matches++;
	snprintf(readahead->device, sizeof(readahead->device), "%s", mount->device);
}

void readahead_prepare(struct readahead *readahead, const char *mountpoint, unsigned int kib)
{
	memset(readahead, 0, sizeof(*readahead));
	readahead->mountpoint = mountpoint;
	readahead->kib = kib;
	if (kib > 0 && each_mount(remember, readahead) < 0)
		readahead->kib = 0; /* nothing to tell this mount from the others */
}

void readahead_raise(struct readahead *readahead)
{
	char path[80];
	int rc;

	if (readahead->kib == 0)
		return;
	rc = each_mount(match, readahead);
	if (rc < 0) {
		log_info("cannot read /proc/self/mountinfo: %s; the kernel's read-ahead applies",
			 strerror(-rc));
		return;
	}
	if (readahead->matches != 1) {
		log_info("%s: %s in /proc/self/mountinfo: its read-ahead stays the kernel's default",
			 readahead->mountpoint,
			 readahead->matches ? "more than one new FUSE mount of this user there"
					    : "no new FUSE mount of this user there");
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", readahead->device);
	rc = write_knob(path, readahead->kib);
	if (rc < 0) {
		log_info("cannot set the read-ahead to %u KiB: %s: %s; the kernel's default applies",
			 readahead->kib, path, strerror(-rc));
		return;
	}
	wanted_kib = readahead->kib;
}

void readahead_free(struct readahead *readahead)
{
	free(readahead->before);
	readahead->before = NULL;
}

void readahead_negotiate(struct fuse_conn_info *conn)
{
	/* The kernel offered its default; it takes the smaller of this and
	 * the knob raised above. */
	if (wanted_kib > 0)
		conn->max_readahead = wanted_kib * 1024u;
}
