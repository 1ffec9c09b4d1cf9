/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion verify: does DEST hold exactly the merged view? Every entry of the
 * view must be in DEST with the same type, and files with the same size and
 * bytes; every entry of DEST must be in the view. Modes and mtimes are not
 * compared (vmstorage reads neither). The one entry passed over, and reported
 * as such, is a lost+found directory at the top of DEST, which a fresh
 * filesystem carries and vmstorage ignores. */
#include "materialize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtree.h"

#define EXIT_DIFFERENT 1
#define EXIT_IO 2
#define EXIT_USAGE 64
#define BUF_SIZE (1u << 20)
#define MAX_JOBS 64

struct verify {
	struct mtree_session *session;
	const struct mtree *tree;
	const char *dest;
	int dest_fd;
	char **problems; /* per entry: NULL when it matches */
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t lock;
	struct error err;
};

static const char *type_name(mode_t mode)
{
	return S_ISDIR(mode) ? "a directory" : S_ISREG(mode) ? "a file" : S_ISLNK(mode) ? "a symlink"
										   : "a special file";
}

static const char *kind_name(enum mtree_kind kind)
{
	return kind == MTREE_DIR ? "a directory" : kind == MTREE_SYMLINK ? "a symlink" : "a file";
}

static bool type_matches(enum mtree_kind kind, mode_t mode)
{
	return kind == MTREE_DIR ? S_ISDIR(mode) : kind == MTREE_SYMLINK ? S_ISLNK(mode)
									  : S_ISREG(mode);
}

static ssize_t read_full(int fd, char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The first offset where the file at fd differs from the entry's bytes:
 * 0 and *equal, or -errno with err set. */
static int compare_bytes(struct verify *v, const struct mtree_entry *e, int fd,
			 const struct stat *st, char *a, char *b, bool *equal, uint64_t *offset,
			 struct error *err)
{
	uint64_t done = 0;
	struct stat sst;
	int src = -1, rc = 0;

	*equal = true;
	if (e->kind != MTREE_SYNTH) {
		char *name = mtree_source_name(v->session, e);

		src = mtree_open_source(v->session, e);
		rc = src < 0 ? src : fstat(src, &sst) < 0 ? -errno : 0;
		if (rc < 0)
			error_set(err, -rc, "%s: %s", name, strerror(-rc));
		free(name);
		if (rc < 0)
			goto out;
		/* A hard link (materialize --mode link) is the same bytes. */
		if (sst.st_dev == st->st_dev && sst.st_ino == st->st_ino)
			goto out;
	}
	while (done < e->size) {
		size_t want = e->size - done < BUF_SIZE ? (size_t)(e->size - done) : BUF_SIZE;
		ssize_t n = read_full(fd, b, want), m;

		if (e->kind == MTREE_SYNTH) {
			memcpy(a, e->content + done, want);
			m = (ssize_t)want;
		} else {
			m = read_full(src, a, want);
		}
		if (n < 0 || m < 0) {
			rc = error_set(err, errno, "%s/%s: cannot read: %s", v->dest, e->path,
				       strerror(errno));
			goto out;
		}
		if (n != m || memcmp(a, b, (size_t)n) != 0) {
			size_t i = 0;

			while (i < (size_t)(n < m ? n : m) && a[i] == b[i])
				i++;
			*equal = false;
			*offset = done + i;
			goto out;
		}
		done += (uint64_t)n;
	}
out:
	if (src >= 0)
		close(src);
	return rc;
}

/* The problem with one entry, or NULL; -errno on an I/O error. */
static int check_entry(struct verify *v, const struct mtree_entry *e, char *a, char *b,
		       char **problem, struct error *err)
{
	char target[4096];
	uint64_t offset = 0;
	struct stat st;
	bool equal;
	ssize_t n;
	int fd, rc;

	*problem = NULL;
	if (fstatat(v->dest_fd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return error_set(err, errno, "%s/%s: %s", v->dest, e->path, strerror(errno));
		*problem = xasprintf("missing  %s%s", e->path, e->kind == MTREE_DIR ? "/" : "");
		return 0;
	}
	if (!type_matches(e->kind, st.st_mode)) {
		*problem = xasprintf("differs  %s: %s, expected %s", e->path, type_name(st.st_mode),
				     kind_name(e->kind));
		return 0;
	}
	if (e->kind == MTREE_DIR)
		return 0;
	if (e->kind == MTREE_SYMLINK) {
		n = readlinkat(v->dest_fd, e->path, target, sizeof(target) - 1);
		if (n < 0)
			return error_set(err, errno, "%s/%s: %s", v->dest, e->path, strerror(errno));
		target[n] = '\0';
		if (strcmp(target, e->source) != 0)
			*problem = xasprintf("differs  %s: symlink to %s, expected %s", e->path,
					     target, e->source);
		return 0;
	}
	if ((uint64_t)st.st_size != e->size) {
		*problem = xasprintf("differs  %s: %jd bytes, expected %" PRIu64, e->path,
				     (intmax_t)st.st_size, e->size);
		return 0;
	}
	fd = openat(v->dest_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "%s/%s: %s", v->dest, e->path, strerror(errno));
	rc = compare_bytes(v, e, fd, &st, a, b, &equal, &offset, err);
	close(fd);
	if (rc == 0 && !equal)
		*problem = xasprintf("differs  %s: bytes differ from offset %" PRIu64, e->path,
				     offset);
	return rc;
}

static void *worker(void *arg)
{
	struct verify *v = arg;
	char *a = xmalloc(BUF_SIZE), *b = xmalloc(BUF_SIZE);

	while (!atomic_load(&v->failed)) {
		size_t i = atomic_fetch_add(&v->next, 1);
		struct error err;

		if (i >= v->tree->count)
			break;
		if (check_entry(v, &v->tree->entries[i], a, b, &v->problems[i], &err) < 0) {
			pthread_mutex_lock(&v->lock);
			if (!atomic_load(&v->failed))
				v->err = err;
			atomic_store(&v->failed, true);
			pthread_mutex_unlock(&v->lock);
		}
	}
	free(a);
	free(b);
	return NULL;
}

/* Entries of DEST the view does not have: listed, not descended into. */
static int find_extra(struct verify *v, const char *prefix, size_t *extra, struct error *err)
{
	struct dirent **names;
	int n, rc = 0;

	/* scandirat sorts, so the list reads like the tree. */
	n = scandirat(v->dest_fd, *prefix ? prefix : ".", &names, NULL, alphasort);
	if (n < 0)
		return error_set(err, errno, "%s/%s: %s", v->dest, prefix, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char *path = *prefix ? xasprintf("%s/%s", prefix, name) : xstrdup(name);
		const struct mtree_entry *e;
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || rc < 0) {
			free(path);
			continue;
		}
		e = mtree_find(v->tree, path);
		if (fstatat(v->dest_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = error_set(err, errno, "%s/%s: %s", v->dest, path, strerror(errno));
		} else if (!e && !*prefix && strcmp(name, "lost+found") == 0 && S_ISDIR(st.st_mode)) {
			printf("ignored  %s/ (the filesystem's own, vmstorage ignores it)\n", path);
		} else if (!e && !*prefix && strcmp(name, ".vmunion-commit") == 0 &&
			   S_ISDIR(st.st_mode)) {
			printf("ignored  %s/ (kept by materialize --into for rollback)\n", path);
		} else if (!e) {
			printf("extra    %s%s\n", path, S_ISDIR(st.st_mode) ? "/" : "");
			(*extra)++;
		} else if (e->kind == MTREE_DIR && S_ISDIR(st.st_mode)) {
			rc = find_extra(v, path, extra, err);
		}
		free(path);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static void usage(FILE *out)
{
	fputs("Usage: vmunion verify [OPTIONS] VOLUME... DEST\n"
	      "\n"
	      "Checks that DEST holds exactly the merged view of the volumes (what\n"
	      "vmunionfs shows and vmunion materialize writes): every directory, file and\n"
	      "symlink present with the same type, size and bytes, and nothing else.\n"
	      "Modes and mtimes are not compared. A top-level lost+found directory is\n"
	      "passed over, and reported as ignored. Differences go to stdout, one a line:\n"
	      "missing PATH, differs PATH: why, extra PATH.\n"
	      "\n"
	      "Options:\n"
	      "  --upper DIR      compare with the view of a vmunionfs upper instead\n"
	      "  -j, --jobs N     files compared in parallel (default 4)\n"
	      "  -q, --quiet      no summary on stderr\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 DEST equals the merged view; 1 it differs (or the volumes\n"
	      "cannot be merged); 2 an I/O error; 64 wrong usage.\n",
	      out);
}

static int print_problems(const struct verify *v, size_t *missing, size_t *differ)
{
	const char *missing_dir = NULL;
	size_t below = 0;

	for (size_t i = 0; i < v->tree->count; i++) {
		const char *path = v->tree->entries[i].path, *p = v->problems[i];

		/* Below a missing dir, everything is missing: one line says so. */
		if (missing_dir && strncmp(path, missing_dir, strlen(missing_dir)) == 0 &&
		    path[strlen(missing_dir)] == '/') {
			below++;
			continue;
		}
		if (below)
			printf("missing  ... and %zu entries below %s/\n", below, missing_dir);
		missing_dir = NULL;
		below = 0;
		if (!p)
			continue;
		puts(p);
		if (strncmp(p, "missing", 7) == 0) {
			(*missing)++;
			if (v->tree->entries[i].kind == MTREE_DIR)
				missing_dir = path;
		} else {
			(*differ)++;
		}
	}
	if (below)
		printf("missing  ... and %zu entries below %s/\n", below, missing_dir);
	*missing += below;
	return 0;
}

static int run(struct verify *v, unsigned jobs, bool quiet)
{
	size_t missing = 0, differ = 0, extra = 0;
	pthread_t threads[MAX_JOBS];
	unsigned started = 0;
	struct error err;
	int rc;

	v->problems = xcalloc(v->tree->count, sizeof(char *));
	for (; started < jobs; started++)
		if (pthread_create(&threads[started], NULL, worker, v) != 0)
			break;
	if (started == 0)
		worker(v);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (atomic_load(&v->failed)) {
		fprintf(stderr, "vmunion verify: %s\n", v->err.message);
		return EXIT_IO;
	}
	print_problems(v, &missing, &differ);
	rc = find_extra(v, "", &extra, &err);
	if (rc < 0) {
		fprintf(stderr, "vmunion verify: %s\n", err.message);
		return EXIT_IO;
	}
	fflush(stdout);
	if (missing + differ + extra == 0) {
		if (!quiet)
			fprintf(stderr,
				"vmunion verify: %s equals the merged view: %zu files (%" PRIu64
				" bytes), %zu directories\n",
				v->dest, v->tree->files, v->tree->file_bytes, v->tree->dirs);
		return 0;
	}
	if (!quiet)
		fprintf(stderr,
			"vmunion verify: %s differs from the merged view: %zu missing, %zu "
			"differing, %zu extra\n",
			v->dest, missing, differ, extra);
	return EXIT_DIFFERENT;
}

int command_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "upper", required_argument, NULL, 'u' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *upper = NULL;
	struct mtree_session session;
	struct verify v;
	struct error err = { { 0 } };
	unsigned jobs = 4;
	bool quiet = false;
	int c, rc, count;

	while ((c = getopt_long(argc, argv, "u:j:qh", options, NULL)) != -1) {
		char *end;
		unsigned long n;

		switch (c) {
		case 'u':
			upper = optarg;
			break;
		case 'j':
			n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > MAX_JOBS) {
				fprintf(stderr, "vmunion verify: --jobs takes 1..%d\n", MAX_JOBS);
				return EXIT_USAGE;
			}
			jobs = (unsigned)n;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	count = argc - optind - 1;
	if (count < 1) {
		fputs("vmunion verify: give at least one VOLUME and DEST "
		      "(see vmunion verify --help)\n", stderr);
		return EXIT_USAGE;
	}
	rc = mtree_session_open(&session, argv + optind, (size_t)count, upper, &err);
	if (rc < 0) {
		fprintf(stderr, "vmunion verify: %s%s\n", session.refused ? "refused: " : "",
			err.message);
		rc = session.refused ? EXIT_DIFFERENT : EXIT_IO;
		mtree_session_close(&session);
		return rc;
	}
	memset(&v, 0, sizeof(v));
	v.session = &session;
	v.tree = &session.tree;
	v.dest = argv[argc - 1];
	pthread_mutex_init(&v.lock, NULL);
	v.dest_fd = open(v.dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v.dest_fd < 0) {
		fprintf(stderr, "vmunion verify: %s: %s\n", v.dest, strerror(errno));
		rc = EXIT_IO;
	} else {
		rc = run(&v, jobs, quiet);
		close(v.dest_fd);
	}
	for (size_t i = 0; v.problems && i < v.tree->count; i++)
		free(v.problems[i]);
	free(v.problems);
	pthread_mutex_destroy(&v.lock);
	mtree_session_close(&session);
	return rc;
}
