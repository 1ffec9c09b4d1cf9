/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion check: validation of the volumes of a plan, and of the metricID
 * collisions that silently corrupt a merge (vmstorage-layout.md §8).
 *
 * Everything works on a built plan: the plan decides what is live, the check
 * only looks at what the plan shows (and reports what it hides). Three levels:
 * - cheap (always): refusals of the plan, hidden garbage, the files every
 *   live part needs, metadata.json against the part name and the rules
 *   vmstorage panics on. In memory, no I/O: the volume scan already holds
 *   every metadata.json.
 * - collisions: scans the MetricID->MetricName items (namespace 3) of every
 *   live indexdb part and reports a metricID that names different series.
 *   Reads only the namespace-3 blocks (a seek), about one item per series
 *   and table. This and the cheap checks are what the mount, `vmunion plan`
 *   and `vmunion materialize` run before they do anything.
 * - deep: decodes every live part (data: metaindex.bin and all of index.bin,
 *   offsets checked against timestamps.bin and values.bin; indexdb: every
 *   block) and compares the totals with the part header. */
#ifndef VMUNION_CHECK_H
#define VMUNION_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "plan.h"
#include "util.h"

enum check_severity { CHECK_INFO, CHECK_WARNING, CHECK_ERROR };

enum check_kind {
	CHECK_KIND_GENERAL,
	CHECK_KIND_COLLISION, /* a metricID naming different series */
};

struct check_finding {
	enum check_severity severity;
	enum check_kind kind;
	int volume;    /* -1: about the set of volumes */
	char *path;    /* the file or dir, below the volume root; NULL if none */
	char *message;
};

/* One (volume, series) that uses a colliding metricID. */
struct check_collision_side {
	int volume;
	uint64_t hash;         /* of tenant + marshaled MetricName */
	uint32_t account_id;   /* filled with name when it was re-read */
	uint32_t project_id;
	char *name;            /* rendered; NULL when not re-read */
	char *part;            /* the indexdb part it was found in, or NULL */
};

struct check_collision {
	uint64_t metric_id;
	struct check_collision_side *sides;
	size_t side_count;
};

/* Collisions described in full; the rest are only counted. */
#define CHECK_MAX_COLLISIONS 100

struct check_volume {
	bool cluster_known, cluster;   /* TSID/item layout, when it was needed */
	size_t data_parts, index_parts; /* live parts */
	uint64_t bytes;                 /* live part files */
	uint64_t rows, blocks;          /* data parts: headers, or decoded with deep */
	uint64_t items;                 /* indexdb items: headers, or decoded with deep */
	uint64_t series;                /* distinct metricIDs in namespace 3 */
	size_t errors, warnings, infos;
};

struct check_report {
	bool deep, collisions_scanned;
	size_t volume_count;
	struct check_volume *volumes;
	struct check_finding *findings;
	size_t finding_count, finding_capacity;
	size_t errors, warnings, infos;

	struct check_collision *collisions; /* the first CHECK_MAX_COLLISIONS */
	size_t collision_count, collision_capacity;
	uint64_t collision_total;            /* every colliding metricID */
	bool *conflicts;                     /* [a * volume_count + b]: a and b collide */
	uint64_t shared_series;     /* series (tenant+name) found on several volumes */
	uint64_t shared_metric_ids; /* of those, with the same metricID on several */

	uint64_t bytes_decoded;     /* part file bytes read and decoded */
	double seconds;
};

struct check_options {
	bool deep;       /* decode every live part; implies collisions */
	bool collisions; /* scan namespace 3 for metricID collisions */
	unsigned jobs;   /* worker threads; 0: one per CPU (at most 8) */
};

/* Runs the checks on a built plan (plan_build may have refused: its
 * refusals become errors). Returns 0 when nothing is an error, or -EINVAL
 * with err naming the first error and how many more there are. report may
 * be NULL when only the verdict matters; otherwise free it with
 * check_report_free (also after an error). */
int check_run(const struct plan *plan, const struct check_options *opts,
	      struct check_report *report, struct error *err);
void check_report_free(struct check_report *report);

/* 0 clean, 1 warnings only, 2 errors: the exit status of `vmunion check`. */
int check_exit_status(const struct check_report *report);
const char *check_severity_name(enum check_severity severity);
/* "VOLUME/PATH: MESSAGE", malloc'd. */
char *check_finding_text(const struct check_finding *f, const struct plan *plan);

/* Calls fn for every part dir the plan shows (data/{small,big}/P/X,
 * data/indexdb/P/X, indexdb/T/X) with the volume it comes from and its dir
 * below that volume's root, until fn returns non-zero (returned). */
typedef int (*check_part_fn)(void *arg, int volume, const char *lower_path, bool mergeset);
int check_each_part(const struct plan *plan, check_part_fn fn, void *arg);

void check_print_text(const struct check_report *report, const struct plan *plan, FILE *out);
/* Returns a malloc'd JSON document. */
char *check_print_json(const struct check_report *report, const struct plan *plan);

#endif
