/* SPDX-License-Identifier: Apache-2.0 */
#include "util.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

int error_set(struct error *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

static void out_of_memory(void)
{
	fputs("vmunion: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		out_of_memory();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory();
	return s;
}

void array_reserve(void *items_ptr, size_t *capacity, size_t count, size_t item_size)
{
	void **items = items_ptr;

	if (count < *capacity)
		return;
	*capacity = *capacity ? *capacity * 2 : 8;
	if (*capacity <= count)
		*capacity = count + 1;
	*items = xrealloc(*items, *capacity * item_size);
}

bool is_plain_name(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

bool is_partition_name(const char *name)
{
	int month;

	if (strlen(name) != 7 || name[4] != '_')
		return false;
	for (int i = 0; i < 7; i++)
		if (i != 4 && !isdigit((unsigned char)name[i]))
			return false;
	month = (name[5] - '0') * 10 + (name[6] - '0');
	return month >= 1 && month <= 12;
}

bool is_hex16_name(const char *name)
{
	if (strlen(name) != 16)
		return false;
	for (int i = 0; i < 16; i++)
		if (!isdigit((unsigned char)name[i]) && !(name[i] >= 'A' && name[i] <= 'F'))
			return false;
	return true;
}

bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len)
{
	/* O_NONBLOCK: a FIFO in a file's place must not hold the open. */
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return -errno;
	buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Another process may set a longer value between the size query and the
 * read (ERANGE): asked again, a few times, then ERANGE is the answer. */
#define XATTR_ATTEMPTS 4

/* ENODATA: fd has no such attribute; ENOTSUP: its filesystem has none. */
static int xattr_none_or_error(int errnum)
{
	return errnum == ENODATA || errnum == ENOTSUP ? 0 : -errnum;
}

int fd_xattr_get(int fd, const char *name, char **value, size_t *len)
{
	*value = NULL;
	*len = 0;
	for (int attempt = 0; attempt < XATTR_ATTEMPTS; attempt++) {
		ssize_t size = fgetxattr(fd, name, NULL, 0), n;
		char *buf;

		if (size < 0)
			return xattr_none_or_error(errno);
		buf = xmalloc((size_t)size + 1);
		n = fgetxattr(fd, name, buf, (size_t)size);
		if (n >= 0) {
			buf[n] = '\0';
			*value = buf;
			*len = (size_t)n;
			return 0;
		}
		free(buf);
		if (errno != ERANGE)
			return xattr_none_or_error(errno);
	}
	return -ERANGE;
}

bool once_a_second(time_t *last)
{
	time_t now = time(NULL), seen = __atomic_load_n(last, __ATOMIC_RELAXED);

	return now != seen && __atomic_compare_exchange_n(last, &seen, now, false,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t pread_full(int fd, void *data, size_t len, off_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)data + done, len - done, offset + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

struct thread_buffer {
	size_t size;
	char bytes[];
};

static pthread_key_t thread_buffer_key;
static pthread_once_t thread_buffer_once = PTHREAD_ONCE_INIT;

static void thread_buffer_key_make(void)
{
	pthread_key_create(&thread_buffer_key, free);
}

char *thread_buffer(size_t size)
{
	struct thread_buffer *buffer;

	pthread_once(&thread_buffer_once, thread_buffer_key_make);
	buffer = pthread_getspecific(thread_buffer_key);
	if (!buffer || buffer->size < size) {
		free(buffer);
		buffer = xmalloc(sizeof(*buffer) + size);
		buffer->size = size;
		pthread_setspecific(thread_buffer_key, buffer);
	}
	return buffer->bytes;
}

int fsync_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int write_file_atomic(int dirfd, const char *path, const void *data, size_t len)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	char *slash, *dir;
	int fd, rc;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		free(tmp);
		return rc;
	}
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(dirfd, tmp, 0);
		free(tmp);
		return rc;
	}
	free(tmp);
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	rc = fsync_dir_at(dirfd, slash ? dir : ".");
	free(dir);
	return rc;
}

/* Empties the directory dirfd; the caller keeps it open. */
int remove_children_at(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct dirent *de;
	DIR *dir;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = remove_tree_at(dirfd, de->d_name);
	closedir(dir);
	return rc;
}

int remove_tree_at(int dirfd, const char *path)
{
	int fd, rc;

	if (unlinkat(dirfd, path, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = remove_children_at(fd);
	close(fd);
	if (rc == 0 && unlinkat(dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -errno;
	return rc;
}

const char *format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double value = (double)bytes;
	int unit = 0;

	while (value >= 1024 && unit < 4) {
		value /= 1024;
		unit++;
	}
	snprintf(buf, len, unit ? "%.1f %s" : "%.0f %s", value, units[unit]);
	return buf;
}

void print_json_error(const char *message)
{
	cJSON *json = cJSON_CreateObject();
	char *text;

	cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
	cJSON_AddStringToObject(json, "error", message);
	text = cJSON_PrintUnformatted(json);
	if (text)
		puts(text);
	cJSON_free(text);
	cJSON_Delete(json);
}

void block_terminating_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
