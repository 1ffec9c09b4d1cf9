/* SPDX-License-Identifier: Apache-2.0 */
/* fd_xattr_get (src/util.c): a value of any size, none for a missing one,
 * and a value another process makes longer between the size query and the
 * read asked for again (linked with --wrap=fgetxattr: the wrapper below
 * grows it right after each size query while told to). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

#define NAME "user.vmunion-test"

ssize_t __real_fgetxattr(int fd, const char *name, void *value, size_t size);

static int grow_times; /* size queries after which the value grows */
static size_t grown_len;
static int size_queries;

/* Another writer, between fd_xattr_get's size query and its read. */
ssize_t __wrap_fgetxattr(int fd, const char *name, void *value, size_t size);
ssize_t __wrap_fgetxattr(int fd, const char *name, void *value, size_t size)
{
	ssize_t n = __real_fgetxattr(fd, name, value, size);
	char *longer;

	if (size != 0)
		return n;
	size_queries++;
	if (grow_times > 0) {
		grow_times--;
		grown_len += 100;
		longer = xmalloc(grown_len);
		memset(longer, 'x', grown_len);
		if (fsetxattr(fd, name, longer, grown_len, 0) < 0)
			diag("fsetxattr: %s", strerror(errno));
		free(longer);
	}
	return n;
}

int main(void)
{
	char path[] = "xattr-t.XXXXXX", big[2000];
	int fd = mkstemp(path);
	char *value;
	size_t len;
	int rc;

	if (fd >= 0)
		unlink(path);
	if (fd < 0 || fsetxattr(fd, NAME, "v", 1, 0) < 0) {
		printf("1..0 # SKIP no user xattrs here (%s)\n", strerror(errno));
		return 0;
	}
	memset(big, 'b', sizeof(big));

	rc = fd_xattr_get(fd, "user.missing", &value, &len);
	ok(rc == 0 && value == NULL && len == 0, "a missing attribute: none, no error");

	ok(fsetxattr(fd, NAME, big, sizeof(big), 0) == 0, "a 2000-byte value set");
	rc = fd_xattr_get(fd, NAME, &value, &len);
	ok(rc == 0 && len == sizeof(big) && memcmp(value, big, len) == 0 && value[len] == '\0',
	   "... read whole, NUL after it");
	free(value);

	grown_len = sizeof(big);
	grow_times = 2;
	size_queries = 0;
	rc = fd_xattr_get(fd, NAME, &value, &len);
	is_int(rc, 0, "a value growing after two size queries: read");
	is_int(len, sizeof(big) + 200, "... at its final size");
	is_int(size_queries, 3, "... asked three times");
	free(value);

	grow_times = 1000;
	size_queries = 0;
	rc = fd_xattr_get(fd, NAME, &value, &len);
	is_int(rc, -ERANGE, "a value that never stops growing: -ERANGE");
	ok(value == NULL && len == 0, "... and no value");
	ok(size_queries > 1 && size_queries <= 8, "... after a bounded number of tries (%d)",
	   size_queries);
	grow_times = 0;

	rc = fd_xattr_get(-1, NAME, &value, &len);
	is_int(rc, -EBADF, "a bad fd: -EBADF");
	close(fd);
	return done_testing();
}
