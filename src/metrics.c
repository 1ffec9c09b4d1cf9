/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's counters (metrics.h). FUSE requests are counted by a wrapper
 * around each operation, so fs.c does not know about them; errors by the
 * linker wrap of fuse_reply_err (-Wl,--wrap, see Makefile.am), which sees
 * every error reply together with the operation it answers. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "peer_uid.h"

#define OPS(X)                                                                     \
	X(lookup) X(forget) X(forget_multi) X(getattr) X(setattr) X(readlink)     \
	X(mknod) X(mkdir) X(symlink) X(link) X(unlink) X(rmdir) X(rename)         \
	X(opendir) X(readdir) X(readdirplus) X(releasedir) X(fsyncdir) X(create)  \
	X(open) X(read) X(write_buf) X(flush) X(release) X(fsync) X(fallocate)    \
	X(statfs) X(access) X(getxattr) X(listxattr) X(lseek)

enum op {
#define OP_ENUM(name) OP_##name,
	OPS(OP_ENUM)
#undef OP_ENUM
	OP_COUNT,
	OP_NONE = OP_COUNT,
};

static const char *const op_names[] = {
#define OP_NAME(name) #name,
	OPS(OP_NAME)
#undef OP_NAME
};

#define ERRNO_LIMIT 256

static _Atomic uint64_t counters[METRIC_COUNT];
static _Atomic uint64_t op_counts[OP_COUNT];
/* [OP_COUNT]: errors outside any counted operation */
static _Atomic uint64_t error_counts[OP_COUNT + 1][ERRNO_LIMIT];
static _Atomic int64_t open_files;
static _Thread_local enum op current_op = OP_NONE;
static bool implemented[OP_COUNT];

static struct fuse_lowlevel_ops original, wrapped;
static int upper_fd = -1;

static int listen_fd = -1;
static struct MHD_Daemon *http;
static uint64_t evicted_connections; /* touched by the HTTP thread only */
static sem_t dump_request;
static pthread_t dump_thread;
static bool dump_running;
static atomic_bool stopping;

void metrics_add(enum metric metric, uint64_t n)
{
	atomic_fetch_add_explicit(&counters[metric], n, memory_order_relaxed);
}

/* ---- the operation wrappers ---- */

static void op_begin(enum op op)
{
	atomic_fetch_add_explicit(&op_counts[op], 1, memory_order_relaxed);
	current_op = op;
}

#define WRAP(name, params, args)                  \
	static void wrap_##name params            \
	{                                         \
		op_begin(OP_##name);              \
		original.name args;               \
		current_op = OP_NONE;             \
	}

WRAP(lookup, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
WRAP(forget, (fuse_req_t r, fuse_ino_t i, uint64_t n), (r, i, n))
WRAP(forget_multi, (fuse_req_t r, size_t c, struct fuse_forget_data *f), (r, c, f))
WRAP(getattr, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
WRAP(setattr, (fuse_req_t r, fuse_ino_t i, struct stat *a, int v, struct fuse_file_info *fi),
     (r, i, a, v, fi))
WRAP(readlink, (fuse_req_t r, fuse_ino_t i), (r, i))
WRAP(mknod, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d), (r, p, n, m, d))
WRAP(mkdir, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m), (r, p, n, m))
WRAP(symlink, (fuse_req_t r, const char *l, fuse_ino_t p, const char *n), (r, l, p, n))
WRAP(link, (fuse_req_t r, fuse_ino_t i, fuse_ino_t p, const char *n), (r, i, p, n))
WRAP(unlink, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
WRAP(rmdir, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
WRAP(rename,
     (fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f),
     (r, p, n, np, nn, f))
WRAP(opendir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
WRAP(readdir, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi),
     (r, i, s, o, fi))
WRAP(readdirplus, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi),
     (r, i, s, o, fi))
WRAP(releasedir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
WRAP(fsyncdir, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi))
WRAP(create, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi),
     (r, p, n, m, fi))
WRAP(open, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
WRAP(write_buf, (fuse_req_t r, fuse_ino_t i, struct fuse_bufvec *b, off_t o,
		 struct fuse_file_info *fi), (r, i, b, o, fi))
WRAP(flush, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi), (r, i, fi))
WRAP(fsync, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *fi), (r, i, d, fi))
WRAP(fallocate, (fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi),
     (r, i, m, o, l, fi))
WRAP(statfs, (fuse_req_t r, fuse_ino_t i), (r, i))
WRAP(access, (fuse_req_t r, fuse_ino_t i, int m), (r, i, m))
WRAP(getxattr, (fuse_req_t r, fuse_ino_t i, const char *n, size_t s), (r, i, n, s))
WRAP(listxattr, (fuse_req_t r, fuse_ino_t i, size_t s), (r, i, s))
WRAP(lseek, (fuse_req_t r, fuse_ino_t i, off_t o, int w, struct fuse_file_info *fi),
     (r, i, o, w, fi))

WRAP(read, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi),
     (r, i, s, o, fi))

static void wrap_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	atomic_fetch_sub_explicit(&open_files, 1, memory_order_relaxed);
	op_begin(OP_release);
	original.release(req, ino, fi);
	current_op = OP_NONE;
}

const struct fuse_lowlevel_ops *metrics_wrap_ops(const struct fuse_lowlevel_ops *ops)
{
	original = *ops;
	wrapped = *ops;
#define WRAP_SET(name)                          \
	if (original.name) {                    \
		wrapped.name = wrap_##name;     \
		implemented[OP_##name] = true;  \
	}
	OPS(WRAP_SET)
#undef WRAP_SET
	return &wrapped;
}

/* The linker sends fs.c's calls here (-Wl,--wrap=fuse_reply_err,...). */
int __real_fuse_reply_err(fuse_req_t req, int err);
int __wrap_fuse_reply_err(fuse_req_t req, int err);
int __real_fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int __wrap_fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int __real_fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			     const struct fuse_file_info *fi);
int __wrap_fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			     const struct fuse_file_info *fi);

int __wrap_fuse_reply_err(fuse_req_t req, int err)
{
	if (err > 0)
		atomic_fetch_add_explicit(&error_counts[current_op][err < ERRNO_LIMIT ? err : 0],
					  1, memory_order_relaxed);
	return __real_fuse_reply_err(req, err);
}

int __wrap_fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	if (current_op == OP_open) {
		atomic_fetch_add_explicit(&open_files, 1, memory_order_relaxed);
	}
	return __real_fuse_reply_open(req, fi);
}

int __wrap_fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			     const struct fuse_file_info *fi)
{
	atomic_fetch_add_explicit(&open_files, 1, memory_order_relaxed);
	return __real_fuse_reply_create(req, e, fi);
}

/* ---- the exposition ---- */

static uint64_t load(_Atomic uint64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

static const char *errno_name(int err)
{
	const char *name = err ? strerrorname_np(err) : NULL;

	return name ? name : "other";
}

/* Space left for the upper, into *bytes; false with no upper (a read-only
 * mount) or none known: never a 0 that an alert would take for a full disk. */
static bool upper_free_bytes(uint64_t *bytes)
{
	struct statvfs st;

	if (upper_fd < 0 || fstatvfs(upper_fd, &st) < 0)
		return false;
	*bytes = (uint64_t)st.f_bavail * st.f_frsize;
	return true;
}

static void print_family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The Prometheus text format, version 0.0.4. */
static char *exposition(size_t *len)
{
	char *text = NULL;
	FILE *out = open_memstream(&text, len);
	uint64_t free_bytes;

	if (!out)
		return NULL;
	print_family(out, "vmunionfs_ops_total", "counter", "FUSE requests, by operation.");
	for (int op = 0; op < OP_COUNT; op++)
		if (implemented[op])
			fprintf(out, "vmunionfs_ops_total{op=\"%s\"} %" PRIu64 "\n", op_names[op],
				load(&op_counts[op]));
	print_family(out, "vmunionfs_errors_total", "counter",
		     "FUSE requests answered with an error, by operation and errno.");
	for (int op = 0; op <= OP_COUNT; op++)
		for (int err = 0; err < ERRNO_LIMIT; err++)
			if (load(&error_counts[op][err]))
				fprintf(out,
					"vmunionfs_errors_total{op=\"%s\",errno=\"%s\"} %" PRIu64
					"\n",
					op < OP_COUNT ? op_names[op] : "other", errno_name(err),
					load(&error_counts[op][err]));
	print_family(out, "vmunionfs_read_bytes_total", "counter",
		     "Bytes read through the daemon, by where they come from (not those "
		     "the kernel reads itself with passthrough).");
	fprintf(out, "vmunionfs_read_bytes_total{source=\"volume\"} %" PRIu64 "\n",
		load(&counters[METRIC_READ_VOLUME_BYTES]));
	fprintf(out, "vmunionfs_read_bytes_total{source=\"upper\"} %" PRIu64 "\n",
		load(&counters[METRIC_READ_UPPER_BYTES]));
	print_family(out, "vmunionfs_copy_ups_total", "counter",
		     "Volume files copied into the upper before their first write.");
	fprintf(out, "vmunionfs_copy_ups_total %" PRIu64 "\n", load(&counters[METRIC_COPY_UPS]));
	print_family(out, "vmunionfs_copy_up_bytes_total", "counter", "Bytes those copy-ups wrote.");
	fprintf(out, "vmunionfs_copy_up_bytes_total %" PRIu64 "\n",
		load(&counters[METRIC_COPY_UP_BYTES]));
	print_family(out, "vmunionfs_populated_dirs_total", "counter",
		     "Lazy directories of the upper given their entries before a change.");
	fprintf(out, "vmunionfs_populated_dirs_total %" PRIu64 "\n",
		load(&counters[METRIC_POPULATES]));
	if (upper_free_bytes(&free_bytes)) {
		print_family(out, "vmunionfs_upper_free_bytes", "gauge",
			     "Space left for the upper (for an unprivileged user).");
		fprintf(out, "vmunionfs_upper_free_bytes %" PRIu64 "\n", free_bytes);
	}
	print_family(out, "vmunionfs_open_files", "gauge", "Files open through the mount.");
	fprintf(out, "vmunionfs_open_files %" PRId64 "\n",
		atomic_load_explicit(&open_files, memory_order_relaxed));
	print_family(out, "vmunionfs_metrics_connections_evicted_total", "counter",
		     "Connections to this endpoint closed to make room for a newer one.");
	fprintf(out, "vmunionfs_metrics_connections_evicted_total %" PRIu64 "\n",
		evicted_connections);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **request)
{
	static const char not_found[] = "only /metrics is here\n";
	struct MHD_Response *response;
	unsigned int status = MHD_HTTP_OK;
	enum MHD_Result rc;
	char *text = NULL;
	size_t len = 0;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return MHD_NO;
	if (strcmp(url, "/metrics") == 0)
		text = exposition(&len);
	if (text) {
		response = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; version=0.0.4; charset=utf-8");
	} else {
		status = MHD_HTTP_NOT_FOUND;
		response = MHD_create_response_from_buffer(sizeof(not_found) - 1,
							   (void *)not_found,
							   MHD_RESPMEM_PERSISTENT);
	}
	if (!response) {
		free(text);
		return MHD_NO;
	}
	rc = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return rc;
}

/* ---- connections ----
 * Every local user can reach the port, and libmicrohttpd refuses new
 * connections while its limit is reached: idle connections held open by
 * anyone would keep vmagent's scrape from being answered. A limit per
 * address does not help on loopback, but the kernel tells which user owns
 * the client's socket (peer_uid.h). So a new connection that finds
 * CONNECTIONS_KEPT others closes the oldest connection of the user who
 * holds the most: a user who opens many only ever closes their own, and a
 * scraper holding one is closed only when every connection belongs to a
 * different user. The evicted one is shut down here and closed by
 * libmicrohttpd on its next poll, so it still counts until then: hence the
 * spare places under the limit. Everything runs in libmicrohttpd's one
 * polling thread. */

#define CONNECTIONS_KEPT 32
#define CONNECTIONS_SPARE 8
#define CONNECTION_LIMIT (CONNECTIONS_KEPT + CONNECTIONS_SPARE)
#define CONNECTION_IDLE_S 10
#define UNKNOWN_USER ((uid_t)-1) /* the kernel could not say: one more user */

struct connection_place {
	int fd; /* -1: free */
	bool evicted;
	uid_t user;
	uint64_t accepted; /* order of arrival */
};

static struct connection_place places[CONNECTION_LIMIT];
static unsigned kept_connections;
static uint64_t arrivals;

static struct connection_place *free_place(void)
{
	for (int i = 0; i < CONNECTION_LIMIT; i++)
		if (places[i].fd < 0)
			return &places[i];
	return NULL;
}

static bool kept(const struct connection_place *place)
{
	return place->fd >= 0 && !place->evicted;
}

static unsigned connections_of(uid_t user)
{
	unsigned count = 0;

	for (int i = 0; i < CONNECTION_LIMIT; i++)
		count += kept(&places[i]) && places[i].user == user;
	return count;
}

/* The oldest connection of the user who holds the most. */
static struct connection_place *eviction_victim(void)
{
	struct connection_place *victim = NULL;
	unsigned victim_share = 0;

	for (int i = 0; i < CONNECTION_LIMIT; i++) {
		unsigned share;

		if (!kept(&places[i]))
			continue;
		share = connections_of(places[i].user);
		if (share > victim_share ||
		    (share == victim_share && places[i].accepted < victim->accepted)) {
			victim = &places[i];
			victim_share = share;
		}
	}
	return victim;
}

static void evict(struct connection_place *victim)
{
	shutdown(victim->fd, SHUT_RDWR);
	victim->evicted = true;
	kept_connections--;
	evicted_connections++;
}

static void connection_arrived(struct MHD_Connection *connection, void **context)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct connection_place *place = free_place();

	if (!info || !place)
		return; /* not reached: the limit is the number of places */
	*place = (struct connection_place){ .fd = info->connect_fd, .accepted = ++arrivals };
	if (peer_uid(place->fd, &place->user) < 0)
		place->user = UNKNOWN_USER;
	*context = place;
	if (++kept_connections > CONNECTIONS_KEPT)
		evict(eviction_victim());
}

static void connection_closed(void **context)
{
	struct connection_place *place = *context;

	if (!place)
		return;
	if (!place->evicted)
		kept_connections--;
	place->fd = -1;
	*context = NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *connection, void **context,
			      enum MHD_ConnectionNotificationCode event)
{
	if (event == MHD_CONNECTION_NOTIFY_STARTED)
		connection_arrived(connection, context);
	else if (event == MHD_CONNECTION_NOTIFY_CLOSED)
		connection_closed(context);
}

static struct MHD_Daemon *start_http(int fd)
{
	for (int i = 0; i < CONNECTION_LIMIT; i++)
		places[i].fd = -1;
	kept_connections = 0;
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, NULL,
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)CONNECTION_IDLE_S, MHD_OPTION_NOTIFY_CONNECTION,
				notify_connection, NULL, MHD_OPTION_END);
}

/* ---- SIGUSR1 ---- */

static void request_dump(int sig)
{
	sem_post(&dump_request); /* async-signal-safe; the thread does the rest */
}

static void log_counters(void)
{
	char ops[2048] = "", upper[64] = "";
	size_t used = 0;
	uint64_t errors = 0, free_bytes;

	for (int op = 0; op < OP_COUNT && used < sizeof(ops); op++)
		if (load(&op_counts[op]))
			used += (size_t)snprintf(ops + used, sizeof(ops) - used, " %s=%" PRIu64,
						 op_names[op], load(&op_counts[op]));
	for (int op = 0; op <= OP_COUNT; op++)
		for (int err = 0; err < ERRNO_LIMIT; err++)
			errors += load(&error_counts[op][err]);
	if (upper_free_bytes(&free_bytes))
		snprintf(upper, sizeof(upper), "; upper free %" PRIu64 " B", free_bytes);
	log_info("counters: ops%s; errors %" PRIu64 "; read from volumes %" PRIu64
		 " B, from the upper %" PRIu64 " B; copy-ups %" PRIu64 " (%" PRIu64
		 " B); open files %" PRId64 "%s",
		 used ? ops : " none", errors, load(&counters[METRIC_READ_VOLUME_BYTES]),
		 load(&counters[METRIC_READ_UPPER_BYTES]), load(&counters[METRIC_COPY_UPS]),
		 load(&counters[METRIC_COPY_UP_BYTES]),
		 atomic_load_explicit(&open_files, memory_order_relaxed), upper);
}

static void *dump_loop(void *arg)
{
	for (;;) {
		while (sem_wait(&dump_request) < 0 && errno == EINTR)
			;
		if (atomic_load(&stopping))
			return NULL;
		log_counters();
	}
}

/* ---- life cycle ---- */

/* "PORT" or "IPV4:PORT"; only loopback: the counters name no secrets, but
 * a preview has no business listening on the network by default. */
static int parse_address(const char *spec, struct sockaddr_in *addr, struct error *err)
{
	const char *colon = strrchr(spec, ':');
	char host[INET_ADDRSTRLEN] = "127.0.0.1", *end;
	long port;

	if (colon) {
		if ((size_t)(colon - spec) >= sizeof(host))
			return error_set(err, EINVAL, "metrics=%s: not IPV4:PORT", spec);
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	port = strtol(colon ? colon + 1 : spec, &end, 10);
	*addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (*end || end == (colon ? colon + 1 : spec) || port < 1 || port > 65535)
		return error_set(err, EINVAL, "metrics=%s: the port must be 1 to 65535", spec);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
		return error_set(err, EINVAL, "metrics=%s: %s is not an IPv4 address", spec, host);
	if ((ntohl(addr->sin_addr.s_addr) >> 24) != 127)
		return error_set(err, EINVAL,
				 "metrics=%s: only loopback addresses (127.0.0.0/8); scrape "
				 "with a vmagent on this host",
				 spec);
	return 0;
}

int metrics_init(const char *address, struct error *err)
{
	struct sockaddr_in addr;
	int one = 1, rc;

	sem_init(&dump_request, 0, 0);
	sigaction(SIGUSR1, &(struct sigaction){ .sa_handler = request_dump, .sa_flags = SA_RESTART },
		  NULL);
	if (!address)
		return 0;
	rc = parse_address(address, &addr, err);
	if (rc < 0)
		return rc;
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listen_fd, CONNECTION_LIMIT) < 0) {
		rc = error_set(err, errno, "metrics=%s: %s", address, strerror(errno));
		if (listen_fd >= 0)
			close(listen_fd);
		listen_fd = -1;
		return rc;
	}
	return 0;
}

int metrics_start(int fd, struct error *err)
{
	upper_fd = fd;
	if (pthread_create(&dump_thread, NULL, dump_loop, NULL) != 0)
		return error_set(err, EAGAIN, "cannot start the SIGUSR1 thread");
	dump_running = true;
	if (listen_fd < 0)
		return 0;
	http = start_http(listen_fd);
	if (!http)
		return error_set(err, EIO, "cannot start the metrics server");
	listen_fd = -1; /* MHD closes it */
	return 0;
}

void metrics_stop(void)
{
	if (http)
		MHD_stop_daemon(http);
	http = NULL;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	if (dump_running) {
		atomic_store(&stopping, true);
		sem_post(&dump_request);
		pthread_join(dump_thread, NULL);
		dump_running = false;
	}
}
