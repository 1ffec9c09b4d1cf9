/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the fuzz harnesses (see fuzz.h). */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char *scratch;
static unsigned dir_seq;

static void remove_scratch(void)
{
	if (scratch)
		remove_tree_at(AT_FDCWD, scratch);
}

/* Below $FUZZ_TMPDIR (make fuzz removes it after each harness, even after a
 * crash), else tmpfs when there is one: the harnesses write files on every
 * run. */
const char *fuzz_scratch(void)
{
	const char *base = getenv("FUZZ_TMPDIR");
	struct stat st;

	if (scratch)
		return scratch;
	if (!base && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	if (!base)
		base = getenv("TMPDIR");
	scratch = xasprintf("%s/vmunion-fuzz.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(scratch))
		fuzz_fail("mkdtemp %s: %s", scratch, strerror(errno));
	atexit(remove_scratch);
	return scratch;
}

int fuzz_dir_open(void)
{
	char *path = xasprintf("%s/d%u", fuzz_scratch(), dir_seq);
	int fd;

	if (mkdir(path, 0700) < 0)
		fuzz_fail("mkdir %s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fuzz_fail("open %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

void fuzz_dir_done(int dirfd)
{
	char name[32];
	int rc;

	close(dirfd);
	snprintf(name, sizeof(name), "%s/d%u", scratch, dir_seq);
	rc = remove_tree_at(AT_FDCWD, name);
	if (rc < 0)
		fuzz_fail("remove %s: %s", name, strerror(-rc));
	dir_seq++;
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **piece, size_t *len,
		  size_t max)
{
	size_t n = 0, sep = strlen(FUZZ_SEP);

	while (n < max) {
		const uint8_t *end = memmem(data, size, FUZZ_SEP, sep);

		piece[n] = data;
		len[n] = end && n + 1 < max ? (size_t)(end - data) : size;
		n++;
		if (!end || n == max)
			break;
		size -= (size_t)(end - data) + sep;
		data = end + sep;
	}
	return n;
}

void fuzz_write(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write_all(fd, data, len) < 0)
		fuzz_fail("write %s: %s", name, strerror(errno));
	close(fd);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	remove_scratch();
	abort();
}
