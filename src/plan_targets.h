/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion plan --targets M: for a scale-down from N to M nodes, which
 * volumes to merge into which target so that bytes and series balance. */
#ifndef VMUNION_PLAN_TARGETS_H
#define VMUNION_PLAN_TARGETS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "plan.h"
#include "util.h"

struct target {
	size_t *volumes; /* indexes into plan->volumes, ascending */
	size_t volume_count;
	size_t into;     /* the surviving volume: the largest, fewest bytes to copy */
	uint64_t bytes, series, rows;
	enum generation generation;
	char **refusals; /* of the plan of this target's volumes alone */
	size_t refusal_count;
};

struct target_plan {
	struct target *targets;
	size_t count;
	bool series_known;
	bool layout_known, cluster; /* TSID layout of the volumes, from the check */
};

/* Assigns every volume of plan to one of count targets: largest volume
 * first (by bytes, then series), each to the target with the fewest bytes
 * (then series) that holds no volume it has a metricID collision with
 * (report->conflicts; report may be NULL). Then builds each target's own
 * plan to check that it can be merged. -EINVAL when count is out of range
 * or colliding volumes cannot be kept apart. */
int plan_targets(const struct plan *plan, const struct check_report *report, size_t count,
		 struct target_plan *out, struct error *err);
void target_plan_free(struct target_plan *targets);
size_t target_plan_refusals(const struct target_plan *targets);

/* The commands of the runbook (docs/scale-down.md) for target t, with
 * the "# " comment lines between them. Free with target_commands_free. */
char **target_commands(const struct target_plan *targets, const struct plan *plan, size_t t,
		       size_t *count);
void target_commands_free(char **commands, size_t count);

void target_plan_print_text(const struct target_plan *targets, const struct plan *plan,
			    FILE *out);
/* Returns a malloc'd JSON document. */
char *target_plan_print_json(const struct target_plan *targets, const struct plan *plan);

#endif
