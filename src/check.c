/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion check: see check.h. The plan says which parts are live; this file
 * only judges them (cheap checks on the in-memory tree, then optional
 * decoding with the vmformat decoders) and looks for metricIDs that name
 * different series on different volumes (vmstorage-layout.md §8). */
#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "partsjson.h"
#include "vmformat.h"

/* ---- findings ---- */

struct finding_list {
	struct check_finding *items;
	size_t count, capacity;
};

static void add_finding_v(struct finding_list *list, enum check_severity severity,
			  enum check_kind kind, int volume, const char *path, const char *fmt,
			  va_list ap)
{
	struct check_finding *f = ARRAY_PUSH(list->items, list->count, list->capacity);

	f->severity = severity;
	f->kind = kind;
	f->volume = volume;
	f->path = path ? xstrdup(path) : NULL;
	if (vasprintf(&f->message, fmt, ap) < 0)
		f->message = xstrdup(fmt);
}

static void add_finding(struct finding_list *list, enum check_severity severity, int volume,
			const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void add_finding(struct finding_list *list, enum check_severity severity, int volume,
			const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_finding_v(list, severity, CHECK_KIND_GENERAL, volume, path, fmt, ap);
	va_end(ap);
}

static void free_findings(struct check_finding *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(items[i].path);
		free(items[i].message);
	}
	free(items);
}

/* The files a decoder names at the start of its messages ("index.bin: ..."). */
static const char *const part_files[] = {
	"metaindex.bin", "index.bin", "timestamps.bin", "values.bin",
	"items.bin",     "lens.bin",  "metadata.json",
};

/* A decoder error about the part at part_path, filed under the file the
 * message names so that the report points at it. */
static void add_decode_error(struct finding_list *list, int volume, const char *part_path,
			     const char *message)
{
	for (size_t i = 0; i < sizeof(part_files) / sizeof(part_files[0]); i++) {
		size_t n = strlen(part_files[i]);

		if (strncmp(message, part_files[i], n) == 0 && message[n] == ':') {
			char *path = xasprintf("%s/%s", part_path, part_files[i]);

			add_finding(list, CHECK_ERROR, volume, path, "%s", message + n + 2);
			free(path);
			return;
		}
	}
	add_finding(list, CHECK_ERROR, volume, part_path, "%s", message);
}

const char *check_severity_name(enum check_severity severity)
{
	static const char *const names[] = { "info", "warning", "error" };

	return names[severity];
}

/* ---- what the plan refused and hid ---- */

/* The volume a refusal is about: plan.c starts them with the volume path. */
static int refusal_volume(const struct plan *plan, const char *message)
{
	size_t best = 0;
	int volume = -1;

	for (size_t v = 0; v < plan->volume_count; v++) {
		const char *path = plan->volumes[v].path;
		size_t n = strlen(path);

		if (n > best && strncmp(message, path, n) == 0 && message[n] == ':') {
			best = n;
			volume = (int)v;
		}
	}
	return volume;
}

static void report_refusals(const struct plan *plan, struct finding_list *list)
{
	for (size_t i = 0; i < plan->refusal_count; i++) {
		const char *message = plan->refusals[i];
		int volume = refusal_volume(plan, message);

		if (volume >= 0)
			message += strlen(plan->volumes[volume].path) + 2;
		add_finding(list, CHECK_ERROR, volume, NULL, "%s", message);
	}
}

/* How much a hidden entry matters, by its class. Garbage (what an unclean
 * stop or a half-done removal leaves) and foreign entries are warnings: the
 * merge hides them, but the volume was not left the way vmstorage leaves it.
 * The per-volume state every volume has (locks, parts.json, caches,
 * snapshots, txn/tmp) is not reported at all. */
static void report_hidden(const struct plan *plan, struct finding_list *list)
{
	static const int severity[] = {
		[HIDDEN_CLASS_STATE] = -1,
		[HIDDEN_CLASS_GARBAGE] = CHECK_WARNING,
		[HIDDEN_CLASS_FOREIGN] = CHECK_WARNING,
		[HIDDEN_CLASS_SUPERSEDED] = CHECK_INFO,
	};

	for (size_t i = 0; i < plan->hidden_count; i++) {
		const struct plan_hidden *h = &plan->hidden[i];
		int level = severity[hidden_reason_class(h->reason)];

		if (level >= 0)
			add_finding(list, (enum check_severity)level, h->volume, h->path,
				    "hidden from the merged volume: %s",
				    hidden_reason_text(h->reason));
	}
	for (size_t i = 0; i < plan->rename_count; i++)
		add_finding(list, CHECK_INFO, plan->renames[i].volume, plan->renames[i].path,
			    "its name collides with a part of another volume: shown as %s",
			    plan->renames[i].new_name);
}

static void report_generations(const struct plan *plan, struct finding_list *list)
{
	bool mixed = false, any_a = false;

	for (size_t v = 0; v < plan->volume_count; v++) {
		mixed |= plan->summary[v].generation != plan->summary[0].generation;
		any_a |= plan->summary[v].generation == GEN_A;
	}
	if (!mixed)
		return;
	/* Layout §9: gen-A parts and tables under a newer vmstorage follow
	 * code paths that exist but were not tried on a merged volume. */
	add_finding(list, any_a ? CHECK_WARNING : CHECK_INFO, -1, NULL,
		    "volumes of different layout generations: the merged volume is generation "
		    "%s and needs a vmstorage at least that new%s",
		    generation_name(plan->target),
		    any_a ? "; generation-A parts under a newer layout are untested" : "");
}

/* ---- the live parts, as the plan shows them ---- */

struct id_pair {
	uint64_t id;
	uint64_t hash;
};

struct part_job {
	int volume;
	bool mergeset;
	char *path;             /* the part dir below the volume root */
	const char *name;       /* its own name (not a rename) */
	struct part_header header;
	const char *header_file; /* "metadata.json", or NULL: the dir name */
	bool have_header;
	bool usable;            /* passed the cheap checks: decode it */
	uint64_t decode_bytes;  /* bytes of the files deep decoding reads */

	/* Filled by the worker that takes the job. */
	struct finding_list findings;
	uint64_t decoded_bytes;
};

struct id_set {
	pthread_mutex_t lock;
	struct id_pair *items;
	size_t count, capacity, compacted;
};

struct check_ctx {
	const struct plan *plan;
	const struct check_options *opts;
	bool scan_ids;
	struct check_report *report;
	struct finding_list findings;
	struct part_job *jobs;
	size_t job_count, job_capacity;
	size_t *order;   /* jobs by decreasing size: the order workers take them */
	size_t next_job; /* atomic, into order */
	struct id_set *ids; /* per volume */
};

static const char *const data_required[] = { "metaindex.bin", "index.bin", "timestamps.bin",
					      "values.bin" };
static const char *const mergeset_required[] = { "metaindex.bin", "index.bin", "items.bin",
						  "lens.bin", "metadata.json" };

/* Files whose emptiness means a broken part. timestamps.bin, values.bin,
 * items.bin and lens.bin can be empty: constant blocks and one-item blocks
 * keep everything in the headers. */
static bool must_not_be_empty(const char *name)
{
	return strcmp(name, "metaindex.bin") == 0 || strcmp(name, "index.bin") == 0 ||
	       strcmp(name, "metadata.json") == 0;
}

static const struct plan_node *node_child(const struct plan *plan, uint32_t dir,
					  const char *name)
{
	uint32_t child = plan_child(plan, dir, name);

	return child == PLAN_NONE ? NULL : &plan->nodes[child];
}

/* Where the part at plan node `node` (shown at shown_path) comes from: the
 * volume and the dir below its root. Its files say it; a part the plan shows
 * without any file is found through the renames or by its path. */
static int part_source(const struct plan *plan, uint32_t node, const char *shown_path,
		       char **lower)
{
	const struct plan_node *dir = &plan->nodes[node];
	const char *slash;

	for (size_t i = 0; i < dir->child_count; i++) {
		const struct plan_node *file = &plan->nodes[dir->children[i]];

		if (file->kind != PLAN_LOWER_FILE)
			continue;
		slash = strrchr(file->lower_path, '/');
		*lower = xasprintf("%.*s", (int)(slash - file->lower_path), file->lower_path);
		return file->volume;
	}
	slash = strrchr(shown_path, '/');
	for (size_t i = 0; i < plan->rename_count; i++) {
		const struct plan_rename *r = &plan->renames[i];
		size_t n = (size_t)(slash - shown_path);

		if (strcmp(r->new_name, dir->name) == 0 && strncmp(r->path, shown_path, n) == 0 &&
		    r->path[n] == '/') {
			*lower = xstrdup(r->path);
			return r->volume;
		}
	}
	for (size_t v = 0; v < plan->volume_count; v++) {
		if (vnode_is_dir(vnode_at(&plan->volumes[v].root, shown_path))) {
			*lower = xstrdup(shown_path);
			return (int)v;
		}
	}
	return -1;
}

/* The part header: metadata.json, or the gen-A name. Cheap: the volume scan
 * kept every metadata.json in memory. */
static void check_header(struct check_ctx *c, struct part_job *job, const struct plan_node *dir)
{
	const struct plan *plan = c->plan;
	const struct vnode *meta = NULL;
	struct part_header from_name;
	bool named = part_header_from_name(job->name, job->mergeset, &from_name) == 0;
	enum generation generation = plan->summary[job->volume].generation;
	char *meta_path = xasprintf("%s/metadata.json", job->path);
	struct error err;

	if (node_child(plan, (uint32_t)(dir - plan->nodes), "metadata.json"))
		meta = vnode_at(&plan->volumes[job->volume].root, meta_path);
	if (meta && meta->content && meta->content_len) {
		if (part_header_from_json(meta->content, meta->content_len, job->mergeset,
					  &job->header, &err) < 0) {
			add_finding(&c->findings, CHECK_ERROR, job->volume, meta_path,
				    "not a valid part header: %s", err.message);
			job->usable = false;
		} else {
			job->have_header = true;
			job->header_file = "metadata.json";
		}
		if (job->have_header && named &&
		    (job->header.rows != from_name.rows || job->header.blocks != from_name.blocks ||
		     (!job->mergeset &&
		      (job->header.min_timestamp != from_name.min_timestamp ||
		       job->header.max_timestamp != from_name.max_timestamp)))) {
			/* Gen A reads both and refuses the part when they differ. */
			add_finding(&c->findings, CHECK_ERROR, job->volume, meta_path,
				    "disagrees with the part name %s (%s %" PRIu64 ", BlocksCount %"
				    PRIu64 " in metadata.json)",
				    job->name, job->mergeset ? "ItemsCount" : "RowsCount",
				    job->header.rows, job->header.blocks);
			job->usable = false;
		}
	} else if (named) {
		job->header = from_name;
		job->have_header = true;
	} else if (!meta && (job->mergeset || generation != GEN_A)) {
		/* Reported as a missing file by the caller. */
		job->usable = false;
	} else if (!meta) {
		add_finding(&c->findings, CHECK_ERROR, job->volume, job->path,
			    "no metadata.json and the name is not a generation-A part name "
			    "(rows_blocks_min_max_hex): vmstorage cannot read the part header");
		job->usable = false;
	}
	free(meta_path);
}

/* The rules vmstorage panics on when it opens a part (layout §2). */
static void check_header_values(struct check_ctx *c, struct part_job *job)
{
	const struct part_header *h = &job->header;
	char *path = job->header_file ? xasprintf("%s/%s", job->path, job->header_file)
				      : xstrdup(job->path);
	const char *rows = job->mergeset ? "ItemsCount" : "RowsCount";
	const char *where = job->header_file ? "" : " (from the part name)";

	if (h->rows == 0 || h->blocks == 0 || h->blocks > h->rows) {
		add_finding(&c->findings, CHECK_ERROR, job->volume, path,
			    "%s %" PRIu64 ", BlocksCount %" PRIu64 "%s: a part needs rows, blocks, "
			    "and no more blocks than rows",
			    rows, h->rows, h->blocks, where);
		job->usable = false;
	} else if (!job->mergeset && h->min_timestamp > h->max_timestamp) {
		add_finding(&c->findings, CHECK_ERROR, job->volume, path,
			    "MinTimestamp %" PRId64 " is after MaxTimestamp %" PRId64 "%s",
			    h->min_timestamp, h->max_timestamp, where);
		job->usable = false;
	}
	free(path);
}

/* Why a file the part needs is not in the plan: the plan takes only regular
 * files into a part, so one that is there under another type must be named
 * for what it is, or the operator looks for a file that exists. */
static const char *absent_file_reason(const struct check_ctx *c, const struct part_job *job,
				      const char *path)
{
	const struct vnode *entry = vnode_at(&c->plan->volumes[job->volume].root, path);

	if (!entry)
		return "missing: every live part needs it (vmstorage cannot open the part "
		       "without it)";
	if (S_ISLNK(entry->st.st_mode))
		return "a symlink, not a regular file: vmunion follows no symlink inside a "
		       "part; put the file itself in its place";
	return "not a regular file: every live part needs it as one";
}

static void check_required_file(struct check_ctx *c, struct part_job *job, uint32_t node,
				const char *name)
{
	const struct plan_node *file = node_child(c->plan, node, name);
	char *path = xasprintf("%s/%s", job->path, name);

	if (!file) {
		add_finding(&c->findings, CHECK_ERROR, job->volume, path, "%s",
			    absent_file_reason(c, job, path));
		job->usable = false;
	} else if (file->size == 0 && must_not_be_empty(name)) {
		add_finding(&c->findings, CHECK_ERROR, job->volume, path, "empty file");
		job->usable = false;
	}
	free(path);
}

static bool is_decoded_file(const char *name, bool mergeset)
{
	return strcmp(name, "metaindex.bin") == 0 || strcmp(name, "index.bin") == 0 ||
	       (mergeset && (strcmp(name, "items.bin") == 0 || strcmp(name, "lens.bin") == 0));
}

static void check_part(struct check_ctx *c, uint32_t node, const char *shown_path, bool mergeset)
{
	const struct plan *plan = c->plan;
	const struct plan_node *dir = &plan->nodes[node];
	const char *const *required = mergeset ? mergeset_required : data_required;
	size_t n_required = mergeset ? 5 : 4;
	struct check_volume *cv;
	struct part_job *job;
	char *lower = NULL;
	int volume = part_source(plan, node, shown_path, &lower);

	if (volume < 0) {
		add_finding(&c->findings, CHECK_ERROR, -1, shown_path,
			    "a part of the merged volume whose source volume is unknown");
		return;
	}
	job = ARRAY_PUSH(c->jobs, c->job_count, c->job_capacity);
	memset(job, 0, sizeof(*job));
	job->volume = volume;
	job->mergeset = mergeset;
	job->path = lower;
	job->name = strrchr(lower, '/') ? strrchr(lower, '/') + 1 : lower;
	job->usable = true;
	cv = &c->report->volumes[volume];
	if (mergeset)
		cv->index_parts++;
	else
		cv->data_parts++;
	for (size_t i = 0; i < n_required; i++)
		check_required_file(c, job, node, required[i]);
	/* Data parts of gen B/C need metadata.json, unless they carry a gen-A
	 * name (vmstorage then reads the header from the name). */
	if (!mergeset && plan->summary[volume].generation != GEN_A &&
	    legacy_name_suffix(job->name, false) < 0)
		check_required_file(c, job, node, "metadata.json");
	for (size_t i = 0; i < dir->child_count; i++) {
		const struct plan_node *file = &plan->nodes[dir->children[i]];

		cv->bytes += file->size;
		if (is_decoded_file(file->name, mergeset))
			job->decode_bytes += file->size;
	}
	check_header(c, job, dir);
	if (job->have_header)
		check_header_values(c, job);
	if (job->have_header && mergeset)
		cv->items += job->header.rows;
	else if (job->have_header)
		cv->rows += job->header.rows, cv->blocks += job->header.blocks;
}

static bool is_service_dir(const char *name)
{
	return strcmp(name, "snapshots") == 0 || strcmp(name, "txn") == 0 ||
	       strcmp(name, "tmp") == 0;
}

typedef void (*part_node_fn)(void *arg, uint32_t node, const char *shown_path, bool mergeset);

/* Every part dir the plan shows: data/{small,big}/P/X, data/indexdb/P/X and
 * indexdb/T/X. */
static void walk_parts(const struct plan *plan, part_node_fn fn, void *arg)
{
	static const struct {
		const char *path;
		bool mergeset;
	} roots[] = {
		{ "data/small", false },
		{ "data/big", false },
		{ "data/indexdb", true },
		{ "indexdb", true },
	};

	if (plan->node_count == 0)
		return;
	for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
		uint32_t root = plan_at(plan, roots[r].path);

		if (root == PLAN_NONE)
			continue;
		for (size_t i = 0; i < plan->nodes[root].child_count; i++) {
			uint32_t holder = plan->nodes[root].children[i];
			const struct plan_node *h = &plan->nodes[holder];

			if (h->kind != PLAN_DIR || is_service_dir(h->name))
				continue;
			for (size_t j = 0; j < h->child_count; j++) {
				uint32_t part = h->children[j];
				char *path;

				if (plan->nodes[part].kind != PLAN_DIR ||
				    is_service_dir(plan->nodes[part].name))
					continue;
				path = xasprintf("%s/%s/%s", roots[r].path, h->name,
						 plan->nodes[part].name);
				fn(arg, part, path, roots[r].mergeset);
				free(path);
			}
		}
	}
}

static void collect_part(void *arg, uint32_t node, const char *shown_path, bool mergeset)
{
	check_part(arg, node, shown_path, mergeset);
}

static void collect_parts(struct check_ctx *c)
{
	walk_parts(c->plan, collect_part, c);
}

struct each_part {
	const struct plan *plan;
	check_part_fn fn;
	void *arg;
	int rc;
};

static void each_part(void *arg, uint32_t node, const char *shown_path, bool mergeset)
{
	struct each_part *e = arg;
	char *lower = NULL;
	int volume;

	if (e->rc != 0)
		return;
	volume = part_source(e->plan, node, shown_path, &lower);
	if (volume >= 0)
		e->rc = e->fn(e->arg, volume, lower, mergeset);
	free(lower);
}

int check_each_part(const struct plan *plan, check_part_fn fn, void *arg)
{
	struct each_part e = { .plan = plan, .fn = fn, .arg = arg };

	walk_parts(plan, each_part, &e);
	return e.rc;
}

/* ---- TSID / item layout of each volume ---- */

static int open_part(const struct plan *plan, const struct part_job *job)
{
	return openat(plan->volumes[job->volume].dirfd, job->path,
		      O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* The first MetricID->MetricName item of a mergeset part decides the layout
 * of a volume that has no data part: a cluster item repeats its tenant. */
static int guess_from_items(const struct plan *plan, const struct part_job *job, bool *cluster)
{
	static const uint8_t ns = VM_NS_METRIC_ID_TO_METRIC_NAME;
	struct vm_mergeset_iter *it;
	struct vm_metric_name_item mn;
	const uint8_t *item;
	size_t len;
	int fd = open_part(plan, job), rc;

	if (fd < 0)
		return -errno;
	rc = vm_mergeset_open(fd, NULL, &it, NULL);
	close(fd);
	if (rc < 0)
		return rc;
	rc = vm_mergeset_seek(it, &ns, 1, NULL);
	if (rc == 0)
		rc = vm_mergeset_next(it, &item, &len, NULL);
	if (rc == 1 && item[0] == ns) {
		*cluster = vm_decode_metric_name_item(item, len, true, &mn, NULL) == 0;
		rc = 0;
	} else {
		rc = rc < 0 ? rc : -ENOENT;
	}
	vm_mergeset_close(it);
	return rc;
}

/* Data parts tried per volume for its layout. A volume whose first parts
 * all fail to decode is broken and gets its layout from the indexdb items;
 * trying every part would read each one's metaindex at every mount. */
#define LAYOUT_GUESSES 8

static void guess_layouts(struct check_ctx *c)
{
	struct check_report *report = c->report;
	size_t *tries = xcalloc(report->volume_count, sizeof(*tries));
	int first = -1;

	for (size_t i = 0; i < c->job_count; i++) {
		const struct part_job *job = &c->jobs[i];
		struct check_volume *cv = &report->volumes[job->volume];
		int fd;

		if (cv->cluster_known || job->mergeset || !job->usable ||
		    tries[job->volume]++ >= LAYOUT_GUESSES)
			continue;
		fd = open_part(c->plan, job);
		if (fd >= 0 && vm_data_part_guess_cluster(fd, &cv->cluster, NULL) == 0)
			cv->cluster_known = true;
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < c->job_count; i++) {
		const struct part_job *job = &c->jobs[i];
		struct check_volume *cv = &report->volumes[job->volume];

		if (!cv->cluster_known && job->mergeset && job->usable &&
		    guess_from_items(c->plan, job, &cv->cluster) == 0)
			cv->cluster_known = true;
	}
	for (size_t v = 0; v < report->volume_count; v++) {
		if (!report->volumes[v].cluster_known)
			continue;
		if (first < 0) {
			first = (int)v;
		} else if (report->volumes[v].cluster != report->volumes[first].cluster) {
			add_finding(&c->findings, CHECK_ERROR, (int)v, NULL,
				    "a %s volume cannot be merged with the %s volume %s: their "
				    "TSIDs and index items differ",
				    report->volumes[v].cluster ? "cluster" : "single-node",
				    report->volumes[first].cluster ? "cluster" : "single-node",
				    c->plan->volumes[first].path);
		}
	}
	free(tries);
}

/* ---- the per-volume sets of (metricID, series hash) ---- */

/* 64-bit hash of tenant + marshaled MetricName. Only compared for equality:
 * two different series with one metricID and one 64-bit hash would slip
 * through, once in 2^64. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t series_hash(const struct vm_metric_name_item *mn)
{
	uint64_t h = mix64(((uint64_t)mn->account_id << 32 | mn->project_id) ^ mn->name_len);
	size_t i = 0;

	for (; i + 8 <= mn->name_len; i += 8) {
		uint64_t w;

		memcpy(&w, mn->name + i, 8);
		h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
	}
	if (i < mn->name_len) {
		uint64_t w = 0;

		memcpy(&w, mn->name + i, mn->name_len - i);
		h = mix64(h ^ w ^ 0xff);
	}
	return h;
}

static int compare_pairs(const void *a, const void *b)
{
	const struct id_pair *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return 0;
}

static size_t sort_unique(struct id_pair *items, size_t count)
{
	size_t out = 0;

	if (count == 0)
		return 0;
	qsort(items, count, sizeof(*items), compare_pairs);
	for (size_t i = 1; i < count; i++)
		if (compare_pairs(&items[out], &items[i]) != 0)
			items[++out] = items[i];
	return out + 1;
}

/* Appends n pairs. The same series shows up once per table or partition, so
 * the set is compacted whenever it doubled: memory follows the number of
 * distinct series of the volume, not the number of index items. */
static void id_set_add(struct id_set *set, const struct id_pair *pairs, size_t n)
{
	pthread_mutex_lock(&set->lock);
	if (set->count + n > set->capacity && set->count > 2 * set->compacted + 65536) {
		set->count = sort_unique(set->items, set->count);
		set->compacted = set->count;
	}
	while (set->count + n > set->capacity) {
		set->capacity = set->capacity ? set->capacity * 2 : 65536;
		set->items = xrealloc(set->items, set->capacity * sizeof(*set->items));
	}
	memcpy(set->items + set->count, pairs, n * sizeof(*pairs));
	set->count += n;
	pthread_mutex_unlock(&set->lock);
}

#define PAIR_BATCH 4096

struct pair_batch {
	struct id_set *set;
	struct id_pair pairs[PAIR_BATCH];
	size_t count;
};

static void batch_flush(struct pair_batch *b)
{
	if (b->count)
		id_set_add(b->set, b->pairs, b->count);
	b->count = 0;
}

static void batch_add(struct pair_batch *b, const struct vm_metric_name_item *mn)
{
	b->pairs[b->count].id = mn->metric_id;
	b->pairs[b->count].hash = series_hash(mn);
	if (++b->count == PAIR_BATCH)
		batch_flush(b);
}

/* ---- the workers ---- */

static void check_data_totals(struct part_job *job, const struct vm_data_totals *t)
{
	const struct part_header *h = &job->header;
	char *path;

	if (!job->have_header)
		return;
	path = job->header_file ? xasprintf("%s/%s", job->path, job->header_file)
				: xstrdup(job->path);
	if (t->blocks != h->blocks || t->rows != h->rows)
		add_finding(&job->findings, CHECK_ERROR, job->volume, path,
			    "disagrees with the blocks: BlocksCount %" PRIu64 " and RowsCount %" PRIu64
			    ", but index.bin holds %" PRIu64 " block headers with %" PRIu64 " rows",
			    h->blocks, h->rows, t->blocks, t->rows);
	else if (t->min_ts < h->min_timestamp || t->max_ts > h->max_timestamp)
		add_finding(&job->findings, CHECK_ERROR, job->volume, path,
			    "disagrees with the blocks: the part covers [%" PRId64 ", %" PRId64
			    "] but its blocks hold timestamps [%" PRId64 ", %" PRId64 "]",
			    h->min_timestamp, h->max_timestamp, t->min_ts, t->max_ts);
	free(path);
}

static void run_data_job(struct check_ctx *c, struct part_job *job, int fd)
{
	const struct check_volume *cv = &c->report->volumes[job->volume];
	struct vm_data_totals totals;
	struct error err;
	bool cluster = cv->cluster;
	int rc = 0;

	/* The volume's layout comes from its other parts when this one is too
	 * broken to tell; otherwise the part's own guess error says why. */
	if (!cv->cluster_known)
		rc = vm_data_part_guess_cluster(fd, &cluster, &err);
	if (rc == 0)
		rc = vm_data_part_check(fd, cluster, NULL, NULL, NULL, &totals, &err);
	if (rc < 0)
		add_decode_error(&job->findings, job->volume, job->path, err.message);
	else
		check_data_totals(job, &totals);
	job->decoded_bytes = job->decode_bytes;
}

static void run_mergeset_job(struct check_ctx *c, struct part_job *job, int fd)
{
	static const uint8_t ns = VM_NS_METRIC_ID_TO_METRIC_NAME;
	const struct check_volume *cv = &c->report->volumes[job->volume];
	bool deep = c->opts->deep, ids = c->scan_ids && cv->cluster_known;
	struct pair_batch *batch = NULL;
	struct vm_mergeset_iter *it;
	struct vm_mergeset_stats st;
	struct vm_metric_name_item mn;
	struct error err;
	const uint8_t *item;
	size_t len;
	int rc = vm_mergeset_open(fd, NULL, &it, &err);

	if (rc < 0) {
		add_decode_error(&job->findings, job->volume, job->path, err.message);
		return;
	}
	if (ids) {
		batch = xmalloc(sizeof(*batch));
		batch->set = &c->ids[job->volume];
		batch->count = 0;
	}
	/* Deep: every item, checking the block order and counts. Otherwise
	 * only the namespace-3 blocks. */
	if (!deep)
		rc = vm_mergeset_seek(it, &ns, 1, &err);
	while (rc >= 0 && (rc = vm_mergeset_next(it, &item, &len, &err)) == 1) {
		if (item[0] < ns)
			continue;
		if (item[0] > ns && !deep) {
			rc = 0;
			break;
		}
		if (item[0] > ns || !ids)
			continue;
		rc = vm_decode_metric_name_item(item, len, cv->cluster, &mn, &err);
		if (rc < 0)
			break;
		batch_add(batch, &mn);
	}
	if (batch) {
		batch_flush(batch);
		free(batch);
	}
	if (rc < 0) {
		add_decode_error(&job->findings, job->volume, job->path, err.message);
	} else if (deep && job->have_header) {
		vm_mergeset_get_stats(it, &st);
		if (st.items != job->header.rows || st.blocks != job->header.blocks) {
			char *path = job->header_file
					     ? xasprintf("%s/%s", job->path, job->header_file)
					     : xstrdup(job->path);

			add_finding(&job->findings, CHECK_ERROR, job->volume, path,
				    "disagrees with the blocks: ItemsCount %" PRIu64 " and BlocksCount %"
				    PRIu64 ", but the part holds %" PRIu64 " items in %" PRIu64 " blocks",
				    job->header.rows, job->header.blocks, st.items, st.blocks);
			free(path);
		}
	}
	if (deep)
		job->decoded_bytes = job->decode_bytes;
	vm_mergeset_close(it);
}

static void run_job(struct check_ctx *c, struct part_job *job)
{
	int fd;

	if (!job->usable || (!job->mergeset && !c->opts->deep) ||
	    (job->mergeset && !c->opts->deep && !c->scan_ids))
		return;
	fd = open_part(c->plan, job);
	if (fd < 0) {
		add_finding(&job->findings, CHECK_ERROR, job->volume, job->path,
			    "cannot open: %s", strerror(errno));
		return;
	}
	if (job->mergeset)
		run_mergeset_job(c, job, fd);
	else
		run_data_job(c, job, fd);
	close(fd);
}

static void *worker(void *arg)
{
	struct check_ctx *c = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&c->next_job, 1, __ATOMIC_RELAXED);

		if (i >= c->job_count)
			return NULL;
		run_job(c, &c->jobs[c->order[i]]);
	}
}

static unsigned worker_count(const struct check_options *opts, size_t jobs)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = opts->jobs ? opts->jobs : cpus > 0 ? (unsigned)(cpus < 8 ? cpus : 8) : 1;

	return jobs < n ? (unsigned)(jobs ? jobs : 1) : n;
}

static int compare_job_size(const void *a, const void *b, void *arg)
{
	const struct part_job *jobs = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (jobs[x].decode_bytes != jobs[y].decode_bytes)
		return jobs[x].decode_bytes > jobs[y].decode_bytes ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The biggest parts first, so that no worker starts a big one when the
 * others are nearly done. The findings are merged in part order all the
 * same: the order the workers took the parts in shows nowhere. */
static void order_jobs(struct check_ctx *c)
{
	c->order = xcalloc(c->job_count ? c->job_count : 1, sizeof(*c->order));
	for (size_t i = 0; i < c->job_count; i++)
		c->order[i] = i;
	qsort_r(c->order, c->job_count, sizeof(*c->order), compare_job_size, c->jobs);
}

static void run_jobs(struct check_ctx *c)
{
	unsigned n = worker_count(c->opts, c->job_count);
	pthread_t *threads = xcalloc(n, sizeof(*threads));
	unsigned started = 0;

	order_jobs(c);

	/* The calling thread is one of the workers. */
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&threads[i], NULL, worker, c) == 0)
			started = i;
		else
			break;
	worker(c);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	free(c->order);
	c->order = NULL;
	for (size_t i = 0; i < c->job_count; i++) {
		struct part_job *job = &c->jobs[i];

		for (size_t j = 0; j < job->findings.count; j++)
			*ARRAY_PUSH(c->findings.items, c->findings.count, c->findings.capacity) =
				job->findings.items[j];
		free(job->findings.items);
		memset(&job->findings, 0, sizeof(job->findings));
		c->report->bytes_decoded += job->decoded_bytes;
	}
}

/* ---- collisions across (and within) volumes ---- */

/* One step of the walk over every volume's sorted set: the entries of the
 * smallest metricID. */
static void record_collision(struct check_ctx *c, uint64_t id, const struct id_pair **entries,
			     const int *volumes, size_t n)
{
	struct check_report *report = c->report;
	size_t count = report->volume_count;
	struct check_collision *col;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (entries[i]->hash != entries[j]->hash)
				report->conflicts[(size_t)volumes[i] * count + (size_t)volumes[j]] =
					true;
	report->collision_total++;
	if (report->collision_count >= CHECK_MAX_COLLISIONS)
		return;
	col = ARRAY_PUSH(report->collisions, report->collision_count, report->collision_capacity);
	col->metric_id = id;
	col->sides = xcalloc(n, sizeof(*col->sides));
	col->side_count = n;
	for (size_t i = 0; i < n; i++) {
		col->sides[i].volume = volumes[i];
		col->sides[i].hash = entries[i]->hash;
	}
}

static void find_collisions(struct check_ctx *c)
{
	struct check_report *report = c->report;
	size_t nv = report->volume_count, *pos = xcalloc(nv, sizeof(size_t));
	const struct id_pair **entries = xcalloc(nv * 4 + 4, sizeof(*entries));
	int *volumes = xcalloc(nv * 4 + 4, sizeof(int));
	size_t cap = nv * 4 + 4;

	for (;;) {
		uint64_t id = UINT64_MAX;
		bool any = false, differ = false;
		size_t n = 0, vols = 0;

		for (size_t v = 0; v < nv; v++) {
			if (pos[v] < c->ids[v].count && (!any || c->ids[v].items[pos[v]].id < id)) {
				id = c->ids[v].items[pos[v]].id;
				any = true;
			}
		}
		if (!any)
			break;
		for (size_t v = 0; v < nv; v++) {
			bool here = false;

			while (pos[v] < c->ids[v].count && c->ids[v].items[pos[v]].id == id) {
				if (n == cap) {
					cap *= 2;
					entries = xrealloc(entries, cap * sizeof(*entries));
					volumes = xrealloc(volumes, cap * sizeof(int));
				}
				entries[n] = &c->ids[v].items[pos[v]++];
				volumes[n] = (int)v;
				differ |= entries[n]->hash != entries[0]->hash;
				n++;
				here = true;
			}
			vols += here;
		}
		if (differ)
			record_collision(c, id, entries, volumes, n);
		else if (vols > 1)
			report->shared_metric_ids++;
	}
	free(pos);
	free(entries);
	free(volumes);
}

static int compare_hashes(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Series (by tenant + name, whatever their metricIDs) found on more than one
 * volume: replication, harmless (vmselect deduplicates). Reuses the sets'
 * memory: they are not needed by id any more. */
static void count_shared_series(struct check_ctx *c)
{
	size_t nv = c->report->volume_count, *pos = xcalloc(nv, sizeof(size_t));
	uint64_t **hashes = xcalloc(nv, sizeof(*hashes));
	size_t *counts = xcalloc(nv, sizeof(size_t));

	for (size_t v = 0; v < nv; v++) {
		struct id_set *set = &c->ids[v];
		uint64_t *h = (uint64_t *)set->items;
		size_t n = 0;

		for (size_t i = 0; i < set->count; i++)
			h[i] = set->items[i].hash;
		if (set->count)
			qsort(h, set->count, sizeof(*h), compare_hashes);
		for (size_t i = 0; i < set->count; i++)
			if (n == 0 || h[n - 1] != h[i])
				h[n++] = h[i];
		hashes[v] = h;
		counts[v] = n;
	}
	for (;;) {
		uint64_t min = 0;
		bool any = false;
		size_t holders = 0;

		for (size_t v = 0; v < nv; v++)
			if (pos[v] < counts[v] && (!any || hashes[v][pos[v]] < min)) {
				min = hashes[v][pos[v]];
				any = true;
			}
		if (!any)
			break;
		for (size_t v = 0; v < nv; v++)
			if (pos[v] < counts[v] && hashes[v][pos[v]] == min) {
				pos[v]++;
				holders++;
			}
		if (holders > 1)
			c->report->shared_series++;
	}
	free(pos);
	free(hashes);
	free(counts);
}

static void analyse_ids(struct check_ctx *c)
{
	for (size_t v = 0; v < c->report->volume_count; v++) {
		struct id_set *set = &c->ids[v];
		uint64_t series = 0;

		set->count = sort_unique(set->items, set->count);
		for (size_t i = 0; i < set->count; i++)
			series += i == 0 || set->items[i].id != set->items[i - 1].id;
		c->report->volumes[v].series = series;
	}
	find_collisions(c);
	count_shared_series(c);
}

/* ---- names of the reported collisions ---- */

struct name_lookup {
	struct check_report *report;
	const uint64_t *ids; /* sorted metricIDs of report->collisions */
	const size_t *index; /* ids[i] is report->collisions[index[i]] */
	size_t count;
	int volume;
	const char *part;
	size_t missing;
};

static int fill_name(const struct vm_metric_name_item *mn, void *arg)
{
	struct name_lookup *l = arg;
	size_t low = 0, high = l->count;
	struct check_collision *col;
	uint64_t hash;

	while (low < high) {
		size_t mid = (low + high) / 2;

		if (l->ids[mid] < mn->metric_id)
			low = mid + 1;
		else
			high = mid;
	}
	if (low == l->count || l->ids[low] != mn->metric_id)
		return 0;
	col = &l->report->collisions[l->index[low]];
	hash = series_hash(mn);
	for (size_t i = 0; i < col->side_count; i++) {
		struct check_collision_side *s = &col->sides[i];

		if (s->volume != l->volume || s->hash != hash || s->name)
			continue;
		if (vm_metric_name_render(mn->name, mn->name_len, &s->name, NULL) < 0)
			s->name = xstrdup("(malformed MetricName)");
		s->account_id = mn->account_id;
		s->project_id = mn->project_id;
		s->part = xstrdup(l->part);
		/* Stop the scan once every name is known. */
		return --l->missing == 0 ? 1 : 0;
	}
	return 0;
}

static int compare_index_by_id(const void *a, const void *b, void *arg)
{
	const struct check_report *report = arg;
	uint64_t x = report->collisions[*(const size_t *)a].metric_id;
	uint64_t y = report->collisions[*(const size_t *)b].metric_id;

	return x < y ? -1 : x > y;
}

/* A second namespace-3 pass over the volumes involved, only to print the
 * series behind the first CHECK_MAX_COLLISIONS collisions. */
static void read_collision_names(struct check_ctx *c)
{
	struct check_report *report = c->report;
	size_t n = report->collision_count;
	size_t *index = xcalloc(n, sizeof(size_t));
	uint64_t *ids = xcalloc(n, sizeof(uint64_t));

	for (size_t i = 0; i < n; i++)
		index[i] = i;
	qsort_r(index, n, sizeof(size_t), compare_index_by_id, report);
	for (size_t i = 0; i < n; i++)
		ids[i] = report->collisions[index[i]].metric_id;
	for (size_t v = 0; v < report->volume_count; v++) {
		struct name_lookup l = { .report = report, .ids = ids, .index = index,
					 .count = n, .volume = (int)v };

		for (size_t i = 0; i < n; i++)
			for (size_t s = 0; s < report->collisions[i].side_count; s++)
				l.missing += report->collisions[i].sides[s].volume == (int)v;
		for (size_t j = 0; l.missing && j < c->job_count; j++) {
			const struct part_job *job = &c->jobs[j];
			int fd;

			if (job->volume != (int)v || !job->mergeset || !job->usable)
				continue;
			fd = open_part(c->plan, job);
			if (fd < 0)
				continue;
			l.part = job->path;
			vm_indexdb_scan_metric_names(fd, report->volumes[v].cluster, fill_name, &l,
						     NULL);
			close(fd);
		}
	}
	free(index);
	free(ids);
}

static void report_collisions(struct check_ctx *c)
{
	const struct check_report *report = c->report;

	for (size_t i = 0; i < report->collision_count; i++) {
		const struct check_collision *col = &report->collisions[i];
		char *text = xstrdup("");
		bool same_volume = false;

		for (size_t s = 0; s < col->side_count; s++) {
			const struct check_collision_side *side = &col->sides[s];
			char tenant[32] = "";
			char *longer;

			if (report->volumes[side->volume].cluster && side->name)
				snprintf(tenant, sizeof(tenant), "%" PRIu32 ":%" PRIu32 " ",
					 side->account_id, side->project_id);
			for (size_t t = 0; t < s; t++)
				same_volume |= col->sides[t].volume == side->volume;
			longer = xasprintf("%s%s[%d] %s/%s: %s%s", text, s ? "; " : "", side->volume,
					   c->plan->volumes[side->volume].path,
					   side->part ? side->part : "indexdb", tenant,
					   side->name ? side->name : "(name not found again)");
			free(text);
			text = longer;
		}
		struct finding_list *list = &c->findings;
		struct check_finding *f = ARRAY_PUSH(list->items, list->count, list->capacity);

		f->severity = CHECK_ERROR;
		/* A volume that alone gives one metricID two names is broken
		 * whatever it is merged with. */
		f->kind = same_volume ? CHECK_KIND_GENERAL : CHECK_KIND_COLLISION;
		f->volume = -1;
		f->path = NULL;
		f->message = xasprintf("metricID %" PRIu64 " names %zu different series: %s. A "
				       "merged volume would mix them up (wrong names, deletes "
				       "hitting both); migrate one volume by export and import",
				       col->metric_id, col->side_count, text);
		free(text);
	}
	if (report->collision_total > report->collision_count)
		add_finding(&c->findings, CHECK_ERROR, -1, NULL,
			    "%" PRIu64 " more metricIDs name different series on different volumes "
			    "(only the first %d are listed)",
			    report->collision_total - report->collision_count,
			    CHECK_MAX_COLLISIONS);
	if (report->shared_series)
		add_finding(&c->findings, CHECK_INFO, -1, NULL,
			    "%" PRIu64 " series are on more than one volume (replication; vmselect "
			    "deduplicates them), %" PRIu64 " of them with the same metricID",
			    report->shared_series, report->shared_metric_ids);
}

/* ---- the report ---- */

static int compare_findings(const void *a, const void *b)
{
	const struct check_finding *x = a, *y = b;
	int c;

	/* Volume order, the set-wide ones last; errors first; then by path. */
	if (x->volume != y->volume)
		return (unsigned)x->volume < (unsigned)y->volume ? -1 : 1;
	if (x->severity != y->severity)
		return x->severity > y->severity ? -1 : 1;
	c = strcmp(x->path ? x->path : "", y->path ? y->path : "");
	if (c)
		return c;
	return strcmp(x->message, y->message);
}

static void finish_report(struct check_ctx *c)
{
	struct check_report *report = c->report;

	if (c->findings.count)
		qsort(c->findings.items, c->findings.count, sizeof(*c->findings.items),
		      compare_findings);
	report->findings = c->findings.items;
	report->finding_count = c->findings.count;
	report->finding_capacity = c->findings.capacity;
	for (size_t i = 0; i < report->finding_count; i++) {
		const struct check_finding *f = &report->findings[i];
		size_t *total = f->severity == CHECK_ERROR     ? &report->errors
				: f->severity == CHECK_WARNING ? &report->warnings
							       : &report->infos;

		(*total)++;
		if (f->volume >= 0) {
			struct check_volume *cv = &report->volumes[f->volume];

			(*(f->severity == CHECK_ERROR     ? &cv->errors
			   : f->severity == CHECK_WARNING ? &cv->warnings
							  : &cv->infos))++;
		}
	}
}

char *check_finding_text(const struct check_finding *f, const struct plan *plan)
{
	if (f->volume < 0)
		return f->path ? xasprintf("%s: %s", f->path, f->message) : xstrdup(f->message);
	if (f->path)
		return xasprintf("%s/%s: %s", plan->volumes[f->volume].path, f->path, f->message);
	return xasprintf("%s: %s", plan->volumes[f->volume].path, f->message);
}

int check_run(const struct plan *plan, const struct check_options *opts,
	      struct check_report *report, struct error *err)
{
	struct check_report local;
	struct check_ctx c = { .plan = plan, .opts = opts };
	double start = now_seconds();
	size_t nv = plan->volume_count;
	int rc = 0;

	if (!report)
		report = &local;
	memset(report, 0, sizeof(*report));
	c.report = report;
	c.scan_ids = opts->deep || opts->collisions;
	report->deep = opts->deep;
	report->collisions_scanned = c.scan_ids;
	report->volume_count = nv;
	report->volumes = xcalloc(nv, sizeof(*report->volumes));
	report->conflicts = xcalloc(nv * nv, sizeof(bool));
	c.ids = xcalloc(nv, sizeof(*c.ids));
	for (size_t v = 0; v < nv; v++)
		pthread_mutex_init(&c.ids[v].lock, NULL);

	report_refusals(plan, &c.findings);
	report_hidden(plan, &c.findings);
	report_generations(plan, &c.findings);
	collect_parts(&c);
	if (opts->deep || c.scan_ids)
		guess_layouts(&c);
	run_jobs(&c);
	if (c.scan_ids) {
		analyse_ids(&c);
		if (report->collision_count)
			read_collision_names(&c);
		report_collisions(&c);
	}
	finish_report(&c);
	report->seconds = now_seconds() - start;

	for (size_t v = 0; v < nv; v++) {
		pthread_mutex_destroy(&c.ids[v].lock);
		free(c.ids[v].items);
	}
	free(c.ids);
	for (size_t i = 0; i < c.job_count; i++)
		free(c.jobs[i].path);
	free(c.jobs);
	for (size_t i = 0; report->errors && i < report->finding_count; i++) {
		char *text;

		if (report->findings[i].severity != CHECK_ERROR)
			continue;
		text = check_finding_text(&report->findings[i], plan);
		if (report->errors == 1)
			rc = error_set(err, EINVAL, "%s", text);
		else
			rc = error_set(err, EINVAL, "%s (and %zu more error%s: see vmunion check)",
				       text, report->errors - 1, report->errors > 2 ? "s" : "");
		free(text);
		break;
	}
	if (report == &local)
		check_report_free(&local);
	return rc;
}

void check_report_free(struct check_report *report)
{
	free_findings(report->findings, report->finding_count);
	for (size_t i = 0; i < report->collision_count; i++) {
		for (size_t s = 0; s < report->collisions[i].side_count; s++) {
			free(report->collisions[i].sides[s].name);
			free(report->collisions[i].sides[s].part);
		}
		free(report->collisions[i].sides);
	}
	free(report->collisions);
	free(report->conflicts);
	free(report->volumes);
	memset(report, 0, sizeof(*report));
}

int check_exit_status(const struct check_report *report)
{
	return report->errors ? 2 : report->warnings ? 1 : 0;
}

/* ---- printing ---- */

static const char *layout_name(const struct check_volume *cv)
{
	return !cv->cluster_known ? NULL : cv->cluster ? "cluster" : "single-node";
}

/* The findings of one volume (or of the set, volume -1), by severity. */
static void print_findings(const struct check_report *report, int volume, FILE *out)
{
	static const char *const titles[] = { "info", "warnings", "errors" };

	for (int sev = CHECK_ERROR; sev >= CHECK_INFO; sev--) {
		size_t n = 0;

		for (size_t i = 0; i < report->finding_count; i++)
			n += report->findings[i].volume == volume &&
			     (int)report->findings[i].severity == sev;
		if (!n)
			continue;
		fprintf(out, "  %s (%zu):\n", titles[sev], n);
		for (size_t i = 0; i < report->finding_count; i++) {
			const struct check_finding *f = &report->findings[i];

			if (f->volume != volume || (int)f->severity != sev)
				continue;
			if (f->path)
				fprintf(out, "    %s: %s\n", f->path, f->message);
			else
				fprintf(out, "    %s\n", f->message);
		}
	}
}

void check_print_text(const struct check_report *report, const struct plan *plan, FILE *out)
{
	size_t data_parts = 0, index_parts = 0, set_findings = 0;
	uint64_t series = 0, bytes = 0;
	char size[32], decoded[32];

	for (size_t v = 0; v < report->volume_count; v++) {
		const struct check_volume *cv = &report->volumes[v];
		const char *layout = layout_name(cv);

		format_bytes(cv->bytes, size, sizeof(size));
		fprintf(out, "Volume [%zu] %s: generation %s%s%s\n", v, plan->volumes[v].path,
			generation_name(plan->summary[v].generation), layout ? ", " : "",
			layout ? layout : "");
		fprintf(out, "  %zu data parts (%" PRIu64 " rows, %" PRIu64 " blocks), %zu indexdb "
			     "parts (%" PRIu64 " items), ",
			cv->data_parts, cv->rows, cv->blocks, cv->index_parts, cv->items);
		if (report->collisions_scanned)
			fprintf(out, "%" PRIu64 " series, ", cv->series);
		fprintf(out, "%s\n", size);
		print_findings(report, (int)v, out);
		data_parts += cv->data_parts;
		index_parts += cv->index_parts;
		series += cv->series;
		bytes += cv->bytes;
	}
	for (size_t i = 0; i < report->finding_count; i++)
		set_findings += report->findings[i].volume < 0;
	if (set_findings) {
		fprintf(out, "All volumes:\n");
		print_findings(report, -1, out);
	}
	fprintf(out, "Summary: %zu volumes, %zu data parts, %zu indexdb parts",
		report->volume_count, data_parts, index_parts);
	if (report->collisions_scanned)
		fprintf(out, ", %" PRIu64 " series (%" PRIu64 " on more than one volume), %" PRIu64
			     " colliding metricIDs",
			series, report->shared_series, report->collision_total);
	format_bytes(bytes, size, sizeof(size));
	format_bytes(report->bytes_decoded, decoded, sizeof(decoded));
	fprintf(out, "\n  checks: cheap%s%s; %s of live part files, %s decoded, %.2f s\n",
		report->collisions_scanned ? ", metricID collisions" : "",
		report->deep ? ", deep decoding" : "", size, decoded, report->seconds);
	fprintf(out, "Result: %zu errors, %zu warnings, %zu info: %s\n", report->errors,
		report->warnings, report->infos,
		report->errors	   ? "the volumes cannot be merged as they are"
		: report->warnings ? "mergeable, with warnings"
				   : "clean");
}

static cJSON *finding_json(const struct check_finding *f)
{
	cJSON *item = cJSON_CreateObject();

	cJSON_AddStringToObject(item, "severity", check_severity_name(f->severity));
	cJSON_AddStringToObject(item, "kind",
				f->kind == CHECK_KIND_COLLISION ? "collision" : "general");
	if (f->volume >= 0)
		cJSON_AddNumberToObject(item, "volume", f->volume);
	else
		cJSON_AddNullToObject(item, "volume");
	if (f->path)
		cJSON_AddStringToObject(item, "path", f->path);
	else
		cJSON_AddNullToObject(item, "path");
	cJSON_AddStringToObject(item, "message", f->message);
	return item;
}

/* metricIDs are nanosecond timestamps, above 2^53: strings, not numbers. */
static cJSON *u64_string(uint64_t value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, value);
	return cJSON_CreateString(buf);
}

static cJSON *collision_json(const struct check_report *report,
			     const struct check_collision *col)
{
	cJSON *item = cJSON_CreateObject(), *sides = cJSON_CreateArray();

	cJSON_AddItemToObject(item, "metric_id", u64_string(col->metric_id));
	for (size_t s = 0; s < col->side_count; s++) {
		const struct check_collision_side *side = &col->sides[s];
		cJSON *j = cJSON_CreateObject();

		cJSON_AddNumberToObject(j, "volume", side->volume);
		if (side->name && report->volumes[side->volume].cluster) {
			char tenant[32];

			snprintf(tenant, sizeof(tenant), "%" PRIu32 ":%" PRIu32, side->account_id,
				 side->project_id);
			cJSON_AddStringToObject(j, "tenant", tenant);
		}
		if (side->name)
			cJSON_AddStringToObject(j, "name", side->name);
		else
			cJSON_AddNullToObject(j, "name");
		if (side->part)
			cJSON_AddStringToObject(j, "part", side->part);
		cJSON_AddItemToArray(sides, j);
	}
	cJSON_AddItemToObject(item, "series", sides);
	return item;
}

char *check_print_json(const struct check_report *report, const struct plan *plan)
{
	cJSON *json = cJSON_CreateObject(), *volumes = cJSON_CreateArray(),
	      *findings = cJSON_CreateArray(), *collisions = cJSON_CreateArray();
	char *printed, *copy;

	cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
	cJSON_AddBoolToObject(json, "deep", report->deep);
	cJSON_AddBoolToObject(json, "collision_scan", report->collisions_scanned);
	for (size_t v = 0; v < report->volume_count; v++) {
		const struct check_volume *cv = &report->volumes[v];
		const char *layout = layout_name(cv);
		cJSON *item = cJSON_CreateObject();

		cJSON_AddStringToObject(item, "path", plan->volumes[v].path);
		cJSON_AddStringToObject(item, "generation",
					generation_name(plan->summary[v].generation));
		if (layout)
			cJSON_AddStringToObject(item, "layout", layout);
		else
			cJSON_AddNullToObject(item, "layout");
		cJSON_AddNumberToObject(item, "data_parts", (double)cv->data_parts);
		cJSON_AddNumberToObject(item, "index_parts", (double)cv->index_parts);
		cJSON_AddNumberToObject(item, "bytes", (double)cv->bytes);
		cJSON_AddNumberToObject(item, "rows", (double)cv->rows);
		cJSON_AddNumberToObject(item, "blocks", (double)cv->blocks);
		cJSON_AddNumberToObject(item, "items", (double)cv->items);
		if (report->collisions_scanned)
			cJSON_AddNumberToObject(item, "series", (double)cv->series);
		else
			cJSON_AddNullToObject(item, "series");
		cJSON_AddNumberToObject(item, "errors", (double)cv->errors);
		cJSON_AddNumberToObject(item, "warnings", (double)cv->warnings);
		cJSON_AddNumberToObject(item, "infos", (double)cv->infos);
		cJSON_AddItemToArray(volumes, item);
	}
	cJSON_AddItemToObject(json, "volumes", volumes);
	for (size_t i = 0; i < report->finding_count; i++)
		cJSON_AddItemToArray(findings, finding_json(&report->findings[i]));
	cJSON_AddItemToObject(json, "findings", findings);
	for (size_t i = 0; i < report->collision_count; i++)
		cJSON_AddItemToArray(collisions, collision_json(report, &report->collisions[i]));
	cJSON_AddItemToObject(json, "collisions", collisions);
	cJSON_AddNumberToObject(json, "collisions_total", (double)report->collision_total);
	cJSON_AddNumberToObject(json, "shared_series", (double)report->shared_series);
	cJSON_AddNumberToObject(json, "shared_metric_ids", (double)report->shared_metric_ids);
	cJSON_AddNumberToObject(json, "errors", (double)report->errors);
	cJSON_AddNumberToObject(json, "warnings", (double)report->warnings);
	cJSON_AddNumberToObject(json, "infos", (double)report->infos);
	cJSON_AddNumberToObject(json, "exit_status", check_exit_status(report));
	cJSON_AddNumberToObject(json, "bytes_decoded", (double)report->bytes_decoded);
	cJSON_AddNumberToObject(json, "seconds", report->seconds);
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xstrdup(printed ? printed : "{}");
	cJSON_free(printed);
	return copy;
}
