/* SPDX-License-Identifier: Apache-2.0 */
/* `vmunion plan`: the plan as a human report or as JSON. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan.h"

/* Names come from the volumes and may hold any byte but '/' and NUL: a
 * newline would forge a report line. Control bytes and the backslash are
 * written as C escapes; other bytes (UTF-8 names) as they are. */
static void put_escaped(const char *s, FILE *out)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
}

static void format_time(int64_t ms, char *buf, size_t len)
{
	time_t seconds = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&seconds, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_volumes(const struct plan *plan, FILE *out)
{
	char bytes[32];

	fprintf(out, "Volumes (target layout: generation %s)\n", generation_name(plan->target));
	for (size_t v = 0; v < plan->volume_count; v++) {
		const struct plan_volume_summary *s = &plan->summary[v];

		format_bytes(s->bytes, bytes, sizeof(bytes));
		fprintf(out, "  [%zu] ", v);
		put_escaped(plan->volumes[v].path, out);
		fprintf(out, ": generation %s, %zu partitions, %zu data parts, "
			     "%zu indexdb tables, %s\n",
			generation_name(s->generation), s->partitions, s->parts, s->tables, bytes);
	}
}

static void print_partitions(const struct plan *plan, FILE *out)
{
	fprintf(out, "\nPartitions (data parts per volume)\n");
	for (size_t i = 0; i < plan->partition_count; i++) {
		const struct plan_partition *p = &plan->partitions[i];
		uint64_t rows = 0;
		char from[32], to[32];

		fputs("  ", out);
		put_escaped(p->name, out);
		fputc(':', out);
		for (size_t v = 0; v < plan->volume_count; v++) {
			fprintf(out, " [%zu]=%zu", v, p->part_count[v]);
			rows += p->rows[v];
		}
		if (rows == 0) {
			fputs("  (no rows)\n", out);
			continue;
		}
		format_time(p->min_timestamp, from, sizeof(from));
		format_time(p->max_timestamp, to, sizeof(to));
		fprintf(out, "  rows %" PRIu64 ", %s .. %s\n", rows, from, to);
	}
}

static void print_tables(const struct plan *plan, FILE *out)
{
	if (!plan->table_count)
		return;
	fprintf(out, "\nindexdb tables by role\n");
	for (size_t i = 0; i < plan->table_count; i++) {
		const struct plan_table *t = &plan->tables[i];

		fprintf(out, "  %s -> indexdb/", table_role_name(t->role));
		put_escaped(t->name, out);
		fprintf(out, " (%zu parts) from", t->part_count);
		for (size_t j = 0; j < plan->table_source_count; j++) {
			if (plan->table_sources[j].role != t->role)
				continue;
			fprintf(out, " [%d]", plan->table_sources[j].volume);
			put_escaped(plan->table_sources[j].name, out);
		}
		fputc('\n', out);
	}
}

void plan_print_text(const struct plan *plan, FILE *out)
{
	print_volumes(plan, out);
	if (plan->refusal_count) {
		fprintf(out, "\nRefused (%zu)\n", plan->refusal_count);
		for (size_t i = 0; i < plan->refusal_count; i++) {
			fputs("  ", out);
			put_escaped(plan->refusals[i], out);
			fputc('\n', out);
		}
		return;
	}
	print_partitions(plan, out);
	print_tables(plan, out);
	fprintf(out, "\nRenamed parts (%zu)\n", plan->rename_count);
	for (size_t i = 0; i < plan->rename_count; i++) {
		fprintf(out, "  [%d] ", plan->renames[i].volume);
		put_escaped(plan->renames[i].path, out);
		fputs(" -> ", out);
		put_escaped(plan->renames[i].new_name, out);
		fputc('\n', out);
	}
	fprintf(out, "\nHidden entries (%zu)\n", plan->hidden_count);
	for (size_t i = 0; i < plan->hidden_count; i++) {
		fprintf(out, "  [%d] ", plan->hidden[i].volume);
		put_escaped(plan->hidden[i].path, out);
		fprintf(out, ": %s\n", hidden_reason_text(plan->hidden[i].reason));
	}
}

static cJSON *volumes_json(const struct plan *plan)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t v = 0; v < plan->volume_count; v++) {
		const struct plan_volume_summary *s = &plan->summary[v];
		cJSON *item = cJSON_CreateObject();

		cJSON_AddStringToObject(item, "path", plan->volumes[v].path);
		cJSON_AddStringToObject(item, "generation", generation_name(s->generation));
		cJSON_AddNumberToObject(item, "partitions", (double)s->partitions);
		cJSON_AddNumberToObject(item, "parts", (double)s->parts);
		cJSON_AddNumberToObject(item, "tables", (double)s->tables);
		cJSON_AddNumberToObject(item, "bytes", (double)s->bytes);
		cJSON_AddItemToArray(array, item);
	}
	return array;
}

static cJSON *partitions_json(const struct plan *plan)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < plan->partition_count; i++) {
		const struct plan_partition *p = &plan->partitions[i];
		cJSON *item = cJSON_CreateObject(), *parts = cJSON_CreateArray(),
		      *rows = cJSON_CreateArray();

		cJSON_AddStringToObject(item, "name", p->name);
		for (size_t v = 0; v < plan->volume_count; v++) {
			cJSON_AddItemToArray(parts, cJSON_CreateNumber((double)p->part_count[v]));
			cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)p->rows[v]));
		}
		cJSON_AddItemToObject(item, "parts", parts);
		cJSON_AddItemToObject(item, "rows", rows);
		cJSON_AddNumberToObject(item, "min_timestamp_ms", (double)p->min_timestamp);
		cJSON_AddNumberToObject(item, "max_timestamp_ms", (double)p->max_timestamp);
		cJSON_AddItemToArray(array, item);
	}
	return array;
}

static cJSON *tables_json(const struct plan *plan)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < plan->table_count; i++) {
		const struct plan_table *t = &plan->tables[i];
		cJSON *item = cJSON_CreateObject(), *sources = cJSON_CreateArray();

		cJSON_AddStringToObject(item, "role", table_role_name(t->role));
		cJSON_AddStringToObject(item, "name", t->name);
		cJSON_AddNumberToObject(item, "parts", (double)t->part_count);
		for (size_t j = 0; j < plan->table_source_count; j++) {
			cJSON *source;

			if (plan->table_sources[j].role != t->role)
				continue;
			source = cJSON_CreateObject();
			cJSON_AddNumberToObject(source, "volume", plan->table_sources[j].volume);
			cJSON_AddStringToObject(source, "name", plan->table_sources[j].name);
			cJSON_AddItemToArray(sources, source);
		}
		cJSON_AddItemToObject(item, "sources", sources);
		cJSON_AddItemToArray(array, item);
	}
	return array;
}

static cJSON *hidden_json(const struct plan *plan)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < plan->hidden_count; i++) {
		cJSON *item = cJSON_CreateObject();

		cJSON_AddNumberToObject(item, "volume", plan->hidden[i].volume);
		cJSON_AddStringToObject(item, "path", plan->hidden[i].path);
		cJSON_AddStringToObject(item, "reason", hidden_reason_text(plan->hidden[i].reason));
		cJSON_AddItemToArray(array, item);
	}
	return array;
}

static cJSON *renames_json(const struct plan *plan)
{
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < plan->rename_count; i++) {
		cJSON *item = cJSON_CreateObject();

		cJSON_AddNumberToObject(item, "volume", plan->renames[i].volume);
		cJSON_AddStringToObject(item, "path", plan->renames[i].path);
		cJSON_AddStringToObject(item, "new_name", plan->renames[i].new_name);
		cJSON_AddItemToArray(array, item);
	}
	return array;
}

char *plan_print_json(const struct plan *plan)
{
	cJSON *json = cJSON_CreateObject(), *refusals = cJSON_CreateArray();
	char *printed, *copy;

	cJSON_AddNumberToObject(json, "format", JSON_OUTPUT_FORMAT);
	cJSON_AddStringToObject(json, "target_generation", generation_name(plan->target));
	cJSON_AddItemToObject(json, "volumes", volumes_json(plan));
	cJSON_AddItemToObject(json, "partitions", partitions_json(plan));
	cJSON_AddItemToObject(json, "tables", tables_json(plan));
	cJSON_AddItemToObject(json, "renames", renames_json(plan));
	cJSON_AddItemToObject(json, "hidden", hidden_json(plan));
	for (size_t i = 0; i < plan->refusal_count; i++)
		cJSON_AddItemToArray(refusals, cJSON_CreateString(plan->refusals[i]));
	cJSON_AddItemToObject(json, "refusals", refusals);
	cJSON_AddNumberToObject(json, "bytes", (double)plan_lower_bytes(plan));
	printed = cJSON_Print(json);
	cJSON_Delete(json);
	copy = xstrdup(printed ? printed : "{}");
	cJSON_free(printed);
	return copy;
}
