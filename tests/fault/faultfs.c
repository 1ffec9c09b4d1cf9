/* SPDX-License-Identifier: Apache-2.0 */
/* faultfs: a read-only FUSE passthrough of a directory that fails chosen
 * files, for the fault tests (tests/e2e/fault-*.sh). Test-only: never
 * installed.
 *
 *   faultfs SOURCE MOUNTPOINT [FUSE options, e.g. -f]
 *
 * Environment: FAULTFS_EIO=PATH[:PATH...] (paths below SOURCE) makes every
 * read of those files fail with EIO, as a bad disk sector would;
 * FAULTFS_SHORT=PATH[:...] makes reads of those files end at half their
 * size while stat still reports the whole size (a file truncated under a
 * reader); FAULTFS_SLOW=PATH[:...] makes each open of those files take
 * FAULTFS_SLOW_SECONDS (default 3), as a hung disk would. */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int source_fd = -1;

/* "/a/b" (FUSE) to "a/b" below source_fd; the root is ".". */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static bool listed(const char *env, const char *path)
{
	const char *list = getenv(env), *p = rel(path);
	size_t n = strlen(p);

	for (const char *s = list; s && *s;) {
		const char *end = strchr(s, ':');
		size_t len = end ? (size_t)(end - s) : strlen(s);

		if (len == n && strncmp(s, p, n) == 0)
			return true;
		s = end ? end + 1 : NULL;
	}
	return false;
}

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	return fstatat(source_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int ff_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(source_fd, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	int fd = openat(source_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(dir)))
		fill(buf, de->d_name, NULL, 0, 0);
	closedir(dir);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	if (listed("FAULTFS_SLOW", path)) {
		const char *seconds = getenv("FAULTFS_SLOW_SECONDS");

		fprintf(stderr, "faultfs: slow open of %s\n", rel(path));
		sleep(seconds ? (unsigned int)atoi(seconds) : 3);
	}
	fd = openat(source_fd, rel(path), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1; /* every read reaches us: no page cache hides a fault */
	return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct stat st;
	ssize_t n;

	if (listed("FAULTFS_EIO", path)) {
		fprintf(stderr, "faultfs: EIO for %s\n", rel(path));
		return -EIO;
	}
	if (listed("FAULTFS_SHORT", path) && fstat((int)fi->fh, &st) == 0) {
		if (off >= st.st_size / 2)
			return 0;
		if ((off_t)size > st.st_size / 2 - off)
			size = (size_t)(st.st_size / 2 - off);
	}
	n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static int ff_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(source_fd, st) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
	.getattr = ff_getattr,
	.readlink = ff_readlink,
	.readdir = ff_readdir,
	.open = ff_open,
	.read = ff_read,
	.release = ff_release,
	.statfs = ff_statfs,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: faultfs SOURCE MOUNTPOINT [FUSE options]\n");
		return 64;
	}
	source_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (source_fd < 0) {
		perror(argv[1]);
		return 2;
	}
	/* fuse_main sees: faultfs MOUNTPOINT [options] -o ro */
	char *args[argc + 2];
	int n = 0;

	args[n++] = argv[0];
	for (int i = 2; i < argc; i++)
		args[n++] = argv[i];
	args[n++] = "-oro,default_permissions";
	args[n] = NULL;
	return fuse_main(n, args, &ops, NULL);
}
