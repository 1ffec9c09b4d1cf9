/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion plan --targets: a greedy scale-down proposal (see plan_targets.h).
 * Largest-first onto the least loaded target is within 4/3 of the best
 * possible largest target, which is plenty for a handful of volumes. */
#include "plan_targets.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct weight {
	size_t volume;
	uint64_t bytes, series, rows;
};

static int compare_weights(const void *a, const void *b)
{
	const struct weight *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->series != y->series)
		return x->series > y->series ? -1 : 1;
	return x->volume < y->volume ? -1 : x->volume > y->volume;
}

static bool conflicts_with(const struct check_report *report, const struct target *t, size_t v)
{
	size_t n = report ? report->volume_count : 0;

	for (size_t i = 0; n && i < t->volume_count; i++)
		if (report->conflicts[v * n + t->volumes[i]] ||
		    report->conflicts[t->volumes[i] * n + v])
			return true;
	return false;
}

static int compare_sizes(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The plan of the target's volumes alone: its refusals and generation. The
 * volumes are borrowed (copied by value), never closed here. */
static void build_target_plan(const struct plan *plan, struct target *t)
{
	struct volume *volumes = xcalloc(t->volume_count, sizeof(*volumes));
	struct plan sub;

	qsort(t->volumes, t->volume_count, sizeof(size_t), compare_sizes);
	t->into = t->volumes[0];
	for (size_t i = 1; i < t->volume_count; i++)
		if (plan->summary[t->volumes[i]].bytes > plan->summary[t->into].bytes)
			t->into = t->volumes[i];
	for (size_t i = 0; i < t->volume_count; i++)
		volumes[i] = plan->volumes[t->volumes[i]];
	plan_build(&sub, volumes, t->volume_count, NULL);
	t->generation = sub.target;
	t->refusal_count = sub.refusal_count;
	t->refusals = xcalloc(sub.refusal_count, sizeof(char *));
	for (size_t i = 0; i < sub.refusal_count; i++)
		t->refusals[i] = xstrdup(sub.refusals[i]);
	plan_free(&sub);
	free(volumes);
}

int plan_targets(const struct plan *plan, const struct check_report *report, size_t count,
		 struct target_plan *out, struct error *err)
{
	size_t n = plan->volume_count;
	struct weight *w;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (count < 1 || count > n)
		return error_set(err, EINVAL, "--targets %zu: give 1 to %zu targets for %zu volumes "
				 "(a volume is never split)", count, n, n);
	out->series_known = report && report->collisions_scanned;
	for (size_t v = 0; report && v < report->volume_count; v++) {
		if (report->volumes[v].cluster_known) {
			out->layout_known = true;
			out->cluster = report->volumes[v].cluster;
		}
	}
	out->count = count;
	out->targets = xcalloc(count, sizeof(*out->targets));
	w = xcalloc(n, sizeof(*w));
	for (size_t t = 0; t < count; t++)
		out->targets[t].volumes = xcalloc(n, sizeof(size_t));
	for (size_t v = 0; v < n; v++) {
		w[v].volume = v;
		w[v].bytes = plan->summary[v].bytes;
		w[v].series = out->series_known ? report->volumes[v].series : 0;
		for (size_t p = 0; p < plan->partition_count; p++)
			w[v].rows += plan->partitions[p].rows[v];
	}
	qsort(w, n, sizeof(*w), compare_weights);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct target *best = NULL;

		for (size_t t = 0; t < count; t++) {
			struct target *c = &out->targets[t];

			if (conflicts_with(report, c, w[i].volume))
				continue;
			if (!best || c->bytes < best->bytes ||
			    (c->bytes == best->bytes && c->series < best->series))
				best = c;
		}
		if (!best) {
			rc = error_set(err, EINVAL, "%s shares metricIDs naming different series "
				       "with a volume in every one of the %zu targets: no "
				       "assignment keeps them apart", plan->volumes[w[i].volume].path,
				       count);
			break;
		}
		best->volumes[best->volume_count++] = w[i].volume;
		best->bytes += w[i].bytes;
		best->series += w[i].series;
		best->rows += w[i].rows;
	}
	free(w);
	for (size_t t = 0; rc == 0 && t < count; t++)
		build_target_plan(plan, &out->targets[t]);
	if (rc < 0)
		target_plan_free(out);
	return rc;
}

void target_plan_free(struct target_plan *targets)
{
	for (size_t t = 0; t < targets->count; t++) {
		for (size_t i = 0; i < targets->targets[t].refusal_count; i++)
			free(targets->targets[t].refusals[i]);
		free(targets->targets[t].refusals);
		free(targets->targets[t].volumes);
	}
	free(targets->targets);
	memset(targets, 0, sizeof(*targets));
}

size_t target_plan_refusals(const struct target_plan *targets)
{
	size_t n = 0;

	for (size_t t = 0; t < targets->count; t++)
		n += targets->targets[t].refusal_count;
	return n;
}

/* Largest over smallest target; 0 when a target is empty of that weight. */
static double spread(const struct target_plan *targets, bool series)
{
	uint64_t min = UINT64_MAX, max = 0;

	for (size_t t = 0; t < targets->count; t++) {
		uint64_t x = series ? targets->targets[t].series : targets->targets[t].bytes;

		min = x < min ? x : min;
		max = x > max ? x : max;
	}
	return min ? (double)max / (double)min : 0;
}

/* A path as one shell word: as it is when nothing in it is special. */
static void put_word(FILE *f, const char *s)
{
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_./:=@%+,-") == strlen(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* " V1 V2 ..." : the volumes of a target, or only the retiring ones. */
static void put_volumes(FILE *f, const struct plan *plan, const struct target *tg,
			bool retiring_only)
{
	for (size_t i = 0; i < tg->volume_count; i++) {
		if (retiring_only && tg->volumes[i] == tg->into)
			continue;
		fputc(' ', f);
		put_word(f, plan->volumes[tg->volumes[i]].path);
	}
}

struct lines {
	char **items;
	size_t count, capacity;
	char *text;
	size_t len;
	FILE *f;
};

static FILE *line_start(struct lines *l)
{
	l->text = NULL;
	l->f = open_memstream(&l->text, &l->len);
	if (!l->f)
		abort();
	return l->f;
}

static void line_end(struct lines *l)
{
	fclose(l->f);
	*ARRAY_PUSH(l->items, l->count, l->capacity) = l->text;
}

static void line(struct lines *l, const char *text)
{
	fputs(text, line_start(l));
	line_end(l);
}

char **target_commands(const struct target_plan *targets, const struct plan *plan, size_t t,
		       size_t *count)
{
	const struct target *tg = &targets->targets[t];
	const char *into = plan->volumes[tg->into].path;
	char *preview = xasprintf("/var/tmp/vmunion-preview-%zu", t);
	bool cluster = targets->layout_known && targets->cluster;
	const char *live_url = cluster ? "http://127.0.0.1:18481" : "http://127.0.0.1:18428";
	struct lines l = { 0 };
	FILE *f;

	if (tg->volume_count < 2) {
		line(&l, "# a single volume: nothing to merge, its node keeps running");
		free(preview);
		*count = l.count;
		return l.items;
	}
	line(&l, cluster ? "# remove the retiring volumes' nodes from vminsert -storageNode, then "
			   "stop the vmstorage of every volume of the target cleanly (SIGINT)"
			 : "# stop the victoria-metrics of every volume of the target cleanly (SIGINT)");
	f = line_start(&l);
	fputs("vmunion check --deep", f);
	put_volumes(f, plan, tg, false);
	line_end(&l);
	f = line_start(&l);
	fprintf(f, "mkdir -p %s/upper %s/mnt", preview, preview);
	line_end(&l);
	f = line_start(&l);
	fprintf(f, "vmunionfs -o upper=%s/upper", preview);
	put_volumes(f, plan, tg, false);
	fprintf(f, " %s/mnt", preview);
	line_end(&l);
	f = line_start(&l);
	if (cluster)
		fprintf(f, "vmstorage -storageDataPath=%s/mnt -retentionPeriod=100y "
			"-httpListenAddr=127.0.0.1:18482 -vminsertAddr=127.0.0.1:18400 "
			"-vmselectAddr=127.0.0.1:18401 &", preview);
	else
		fprintf(f, "victoria-metrics -storageDataPath=%s/mnt -retentionPeriod=100y "
			"-httpListenAddr=127.0.0.1:18428 &", preview);
	line_end(&l);
	if (cluster)
		line(&l, "vmselect -storageNode=127.0.0.1:18401 -httpListenAddr=127.0.0.1:18481 &");
	f = line_start(&l);
	fprintf(f, "vmunion verify --live %s", live_url);
	put_volumes(f, plan, tg, false);
	line_end(&l);
	line(&l, cluster ? "# exit status 0? stop vmselect and vmstorage (SIGINT), then:"
			 : "# exit status 0? stop victoria-metrics (SIGINT), then:");
	f = line_start(&l);
	fprintf(f, "fusermount3 -u %s/mnt", preview);
	line_end(&l);
	f = line_start(&l);
	fputs("vmunion materialize --into ", f);
	put_word(f, into);
	put_volumes(f, plan, tg, false);
	line_end(&l);
	f = line_start(&l);
	fputs("# start the node of ", f);
	put_word(f, into);
	fputs(" again, with -retentionPeriod at least the age of its oldest data, then:", f);
	line_end(&l);
	f = line_start(&l);
	fprintf(f, "vmunion verify --live %s", cluster ? "http://VMSELECT:8481" : "http://NODE:8428");
	put_volumes(f, plan, tg, true);
	line_end(&l);
	if (cluster)
		line(&l, "# remove the retiring nodes from vmselect -storageNode, verify again; "
			 "when satisfied:");
	else
		line(&l, "# when satisfied:");
	f = line_start(&l);
	fputs("vmunion finalize ", f);
	put_word(f, into);
	line_end(&l);
	f = line_start(&l);
	fputs("# or, to undo the commit (its node stopped): vmunion rollback ", f);
	put_word(f, into);
	line_end(&l);
	free(preview);
	*count = l.count;
	return l.items;
}

void target_commands_free(char **commands, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(commands[i]);
	free(commands);
}

static void print_commands(const struct target_plan *targets, const struct plan *plan,
			   FILE *out)
{
	for (size_t t = 0; t < targets->count; t++) {
		const struct target *tg = &targets->targets[t];
		size_t n;
		char **commands = target_commands(targets, plan, t, &n);

		fprintf(out, "\nTarget %zu: into [%zu] %s", t, tg->into, plan->volumes[tg->into].path);
		for (size_t i = 0; i < tg->volume_count; i++)
			if (tg->volumes[i] != tg->into)
				fprintf(out, ", from [%zu] %s", tg->volumes[i],
					plan->volumes[tg->volumes[i]].path);
		fputc('\n', out);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "  %s\n", commands[i]);
		target_commands_free(commands, n);
	}
}

void target_plan_print_text(const struct target_plan *targets, const struct plan *plan,
			    FILE *out)
{
	char bytes[32];

	fprintf(out, "Scale-down of %zu volumes to %zu targets (largest volume first, onto the "
		     "target with the fewest bytes)\n",
		plan->volume_count, targets->count);
	fprintf(out, "  %-6s %12s %10s %12s  %-16s %s\n", "target", "bytes", "series", "rows",
		"generation", "volumes");
	for (size_t t = 0; t < targets->count; t++) {
		const struct target *tg = &targets->targets[t];
		char series[24];

		format_bytes(tg->bytes, bytes, sizeof(bytes));
		if (targets->series_known)
			snprintf(series, sizeof(series), "%" PRIu64, tg->series);
		else
			snprintf(series, sizeof(series), "-");
		fprintf(out, "  %-6zu %12s %10s %12" PRIu64 "  %-16s", t, bytes, series, tg->rows,
			generation_name(tg->generation));
		for (size_t i = 0; i < tg->volume_count; i++)
			fprintf(out, "%s[%zu] %s", i ? ", " : "", tg->volumes[i],
				plan->volumes[tg->volumes[i]].path);
		fputc('\n', out);
		for (size_t i = 0; i < tg->refusal_count; i++)
			fprintf(out, "         refused: %s\n", tg->refusals[i]);
	}
	fprintf(out, "  largest/smallest target: bytes %.3f", spread(targets, false));
	if (targets->series_known)
		fprintf(out, ", series %.3f", spread(targets, true));
	fputc('\n', out);
	print_commands(targets, plan, out);
}

char *target_plan_print_json(const struct target_plan *targets, const struct plan *plan)
{
	cJSON *json = cJSON_CreateObject(), *array = cJSON_CreateArray(), *balance;
	char *printed, *copy;

	cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
	cJSON_AddStringToObject(json, "method", "greedy: largest volume first (bytes, then "
						"series) onto the target with the fewest bytes");
	for (size_t t = 0; t < targets->count; t++) {
		const struct target *tg = &targets->targets[t];
		cJSON *item = cJSON_CreateObject(), *vols = cJSON_CreateArray(),
		      *refusals = cJSON_CreateArray();

		cJSON_AddNumberToObject(item, "target", (double)t);
		for (size_t i = 0; i < tg->volume_count; i++) {
			cJSON *v = cJSON_CreateObject();

			cJSON_AddNumberToObject(v, "volume", (double)tg->volumes[i]);
			cJSON_AddStringToObject(v, "path", plan->volumes[tg->volumes[i]].path);
			cJSON_AddItemToArray(vols, v);
		}
		cJSON_AddItemToObject(item, "volumes", vols);
		cJSON_AddNumberToObject(item, "bytes", (double)tg->bytes);
		if (targets->series_known)
			cJSON_AddNumberToObject(item, "series", (double)tg->series);
		else
			cJSON_AddNullToObject(item, "series");
		cJSON_AddNumberToObject(item, "rows", (double)tg->rows);
		cJSON_AddStringToObject(item, "generation", generation_name(tg->generation));
		for (size_t i = 0; i < tg->refusal_count; i++)
			cJSON_AddItemToArray(refusals, cJSON_CreateString(tg->refusals[i]));
		cJSON_AddItemToObject(item, "refusals", refusals);
		cJSON_AddStringToObject(item, "into", plan->volumes[tg->into].path);
		size_t n;
		char **commands = target_commands(targets, plan, t, &n);
		cJSON *list = cJSON_CreateArray();

		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(list, cJSON_CreateString(commands[i]));
		cJSON_AddItemToObject(item, "commands", list);
		target_commands_free(commands, n);
		cJSON_AddItemToArray(array, item);
	}
	cJSON_AddItemToObject(json, "targets", array);
	balance = cJSON_CreateObject();
	cJSON_AddNumberToObject(balance, "bytes", spread(targets, false));
	if (targets->series_known)
		cJSON_AddNumberToObject(balance, "series", spread(targets, true));
	cJSON_AddItemToObject(json, "largest_over_smallest", balance);
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xstrdup(printed ? printed : "{}");
	cJSON_free(printed);
	return copy;
}
