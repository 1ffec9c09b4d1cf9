/* SPDX-License-Identifier: Apache-2.0 */
/* Writing the merged view into a staging directory: what materialize and the
 * in-place commit (materialize --into) share. Each file is written to
 * NAME.vmunion-tmp with its mtime and renamed to NAME once a syncfs made it
 * durable (in batches, see stage.c), so a file is either absent or complete
 * under its name and a rerun skips it. The copy modes (reflink,
 * copy_file_range, read/write, hard link), the free-space estimate, the
 * worker threads and the progress line live here. */
#ifndef VMUNION_STAGE_H
#define VMUNION_STAGE_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "acl.h"
#include "mtree.h"

#define STAGE_DEFAULT_JOBS 4
#define STAGE_MAX_JOBS 64

enum copy_mode { MODE_AUTO, MODE_REFLINK, MODE_COPY, MODE_LINK, MODE_COUNT };
extern const char *const copy_mode_names[MODE_COUNT];

/* How a file was, or would be, written. */
enum how { HOW_REFLINK, HOW_COPY_RANGE, HOW_READ_WRITE, HOW_LINK, HOW_WRITE, HOW_SYMLINK,
	   HOW_DONE, HOW_COUNT };
extern const char *const how_names[HOW_COUNT];

struct stage {
	/* Set by the caller before stage_init. */
	struct mtree_session *session;
	const struct mtree *tree;
	enum copy_mode mode;
	unsigned jobs;
	bool quiet;
	int link_volume;          /* its files are always hard-linked (the commit's
				     TARGET), or -1 */
	int staging_fd;
	bool staging_new;         /* made by this run: no earlier run's leftovers */
	const char *staging_path; /* for messages */
	dev_t dev;                /* of the staging filesystem */
	bool reflinks;            /* that filesystem clones extents */
	const char *crash_env;    /* test builds: the crash point variable */

	/* Filled by stage_init and stage_add_work. */
	bool *done;               /* per entry: needs no writing */
	size_t *work;             /* indexes of the files to write */
	size_t work_count;
	uint64_t work_bytes;
	size_t *batch;            /* files written under their temp names, waiting
				     for a sync to get their names; under lock */
	size_t batch_count;
	uint64_t batch_bytes;

	/* The workers' shared state. */
	atomic_size_t next;
	atomic_uint_least64_t bytes_done;
	atomic_size_t files_done;
	atomic_size_t how_count[HOW_COUNT];
	unsigned running;         /* workers not ended yet; under lock */
	atomic_bool failed;
	pthread_mutex_t lock;
	pthread_cond_t finished;  /* signalled when running drops to 0 */
	struct error err;
	int rc;
};

struct stage_space {
	uint64_t needed, free;
	uint64_t inodes_needed, inodes_free;
	bool inodes_known;
};

void stage_init(struct stage *stage);
void stage_free(struct stage *stage);
/* Marks entry i as needing no writing, or adds it to the work list. */
void stage_mark(struct stage *stage, size_t i, bool done);

/* Whether the file at e->path below dirfd is complete (same size and mtime;
 * same content for what the plan makes; same target for a symlink). */
bool stage_file_done(int dirfd, const struct mtree_entry *e);
/* How entry i would be written; the real way may fall back (auto mode). */
enum how stage_predict(const struct stage *stage, size_t i);
bool stage_on_same_fs(const struct stage *stage, const struct mtree_entry *e);
/* Sets stage->reflinks from a FICLONE probe into an O_TMPFILE in where. */
void stage_probe_reflink(struct stage *stage, const char *where);
/* link and reflink need every copied source on the staging filesystem. */
int stage_check_same_fs(const struct stage *stage, const char *dest, struct error *err);

/* The space that what is to be copied needs (links and reflinks are free). */
void stage_space(const struct stage *stage, const struct statvfs *vfs, struct stage_space *sp);
int stage_check_space(const struct stage *stage, const struct stage_space *sp,
		      const char *dest, struct error *err);

int stage_make_dirs(struct stage *stage, struct error *err);
/* Writes the work list with stage->jobs threads, with a progress line on a
 * terminal. On failure the first error is in stage->err. */
int stage_write_files(struct stage *stage, double start);
/* Directory modes, owners and mtimes as in the view, children first. */
int stage_set_dir_attrs(struct stage *stage, struct error *err);
/* Gives the file or dir fd attr's owner and group where this process may
 * (root), and a mode that grants no one more than attr and acl (a volume
 * file's access ACL, or NULL) do: the ACL itself where owner and group were
 * kept and the filesystem holds ACLs. 0, or -errno with *what failed. */
int stage_give_attr(int fd, const struct plan_attr *attr, const struct acl_value *acl,
		    const char **what);

/* Counts per way of writing (done ones included), and as a JSON object. */
void stage_counts(const struct stage *stage, size_t counts[HOW_COUNT]);
void stage_add_modes_json(cJSON *json, const size_t counts[HOW_COUNT]);
/* "-n" per file lines or JSON entries of a dry run. */
void stage_list(const struct stage *stage, cJSON *entries, size_t counts[HOW_COUNT]);
int stage_parse_mode(const char *name, enum copy_mode *mode);

/* Test builds only (VMUNION_TEST_HOOKS): $env=POINT[:N] kills the process
 * with SIGKILL at that point, where a timed kill -9 cannot reliably land. */
#ifdef VMUNION_TEST_HOOKS
#define TEST_HOOK_ENV(name) name
void test_crash_point(const char *env, const char *point, size_t n);
#else
#define TEST_HOOK_ENV(name) NULL
#define test_crash_point(env, point, n) ((void)(n)) /* no string reaches the binary */
#endif

#endif
