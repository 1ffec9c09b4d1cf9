/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by every module: error text, growable arrays, strings. */
#ifndef VMUNION_UTIL_H
#define VMUNION_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The "format" key of every --json output: raised when a key changes meaning
 * or goes away (new keys do not raise it). */
#define JSON_OUTPUT_FORMAT 1

/* Errors travel as -errno; the text saying which file and why is kept here and
 * printed once, by whoever is at the edge (a main, a test). */
struct error {
	char message[1024];
};

/* Records "fmt" in err (when err is not NULL) and returns -errnum. */
int error_set(struct error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grows *items (of item_size each) so that index "count" is valid. */
void array_reserve(void *items_ptr, size_t *capacity, size_t count, size_t item_size);
#define ARRAY_PUSH(items, count, capacity)                                        \
	(array_reserve(&(items), &(capacity), (count), sizeof(*(items))),         \
	 &(items)[(count)++])

/* A plain name: non-empty, no '/', not "." or "..", at most NAME_MAX bytes. */
bool is_plain_name(const char *name);
/* "YYYY_MM" with a month 01..12. */
bool is_partition_name(const char *name);
/* Exactly 16 upper-case hex digits. */
bool is_hex16_name(const char *name);
bool has_suffix(const char *s, const char *suffix);
int compare_strings(const void *a, const void *b);

/* {"format": JSON_OUTPUT_FORMAT, "error": message} on stdout: what --json
 * prints when there is nothing else to print. */
void print_json_error(const char *message);

/* The extended attribute name of fd: 0 and *value (malloc'd, NUL after its
 * *len bytes), or 0 and NULL when fd has none or its filesystem keeps none
 * (ENODATA, ENOTSUP), or -errno. A value that keeps growing while it is
 * read gives -ERANGE. */
int fd_xattr_get(int fd, const char *name, char **value, size_t *len);
/* Writes all of data, retrying short writes and EINTR. */
int write_all(int fd, const void *data, size_t len);

/* True at most once a second for *last (a time(2), atomic): for a log line
 * a client could make the daemon write at every request. */
bool once_a_second(time_t *last);
/* Seconds on CLOCK_MONOTONIC: for durations and deadlines a clock step does not move. */
double now_seconds(void);
/* Blocks SIGTERM, SIGINT, SIGHUP and SIGQUIT in the calling thread. */
void block_terminating_signals(void);
/* Reads up to len bytes at offset, retrying short reads and EINTR until the
 * end of the file: the bytes read, or -errno. */
ssize_t pread_full(int fd, void *data, size_t len, off_t offset);
/* A buffer of at least size bytes, the calling thread's own, kept for its
 * next call and freed with the thread: no allocation per request. */
char *thread_buffer(size_t size);
/* "1.5 GiB": bytes for people. */
const char *format_bytes(uint64_t bytes, char *buf, size_t len);

/* Reads a whole small file below dirfd (at most max bytes). */
int read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len);
/* Writes data to path atomically: temp file, fsync, rename, fsync the dir. */
int write_file_atomic(int dirfd, const char *path, const void *data, size_t len);
/* Removes path below dirfd with everything inside it. Missing is not an error. */
int remove_tree_at(int dirfd, const char *path);
int remove_children_at(int dirfd);
int fsync_dir_at(int dirfd, const char *path);

#endif
