/* SPDX-License-Identifier: Apache-2.0 */
#include "partsjson.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void name_list_add(struct name_list *list, const char *name)
{
	*ARRAY_PUSH(list->names, list->count, list->capacity) = xstrdup(name);
}

void name_list_sort(struct name_list *list)
{
	if (list->count)
		qsort(list->names, list->count, sizeof(char *), compare_strings);
}

bool name_list_contains(const struct name_list *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->names[i], name) == 0)
			return true;
	return false;
}

void name_list_free(struct name_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->names[i]);
	free(list->names);
	memset(list, 0, sizeof(*list));
}

static int compare_entries(const void *a, const void *b)
{
	char *const *x = *(char *const *const *)a, *const *y = *(char *const *const *)b;
	int c = strcmp(*x, *y);

	return c ? c : (x > y) - (x < y);
}

void name_set_init(struct name_set *set, const struct name_list *list)
{
	set->count = list->count;
	set->entries = xcalloc(list->count ? list->count : 1, sizeof(*set->entries));
	for (size_t i = 0; i < list->count; i++)
		set->entries[i] = &list->names[i];
	qsort(set->entries, set->count, sizeof(*set->entries), compare_entries);
}

bool name_set_contains(const struct name_set *set, const char *name)
{
	size_t low = 0, high = set->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		int c = strcmp(name, *set->entries[mid]);

		if (c == 0)
			return true;
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	return false;
}

void name_set_free(struct name_set *set)
{
	free(set->entries);
	memset(set, 0, sizeof(*set));
}

/* The position of the first name that repeats an earlier one, or SIZE_MAX:
 * in the set, a repeat sorts right after its first occurrence. */
static size_t first_repeat(const struct name_list *list)
{
	struct name_set set;
	size_t first = SIZE_MAX;

	name_set_init(&set, list);
	for (size_t i = 1; i < set.count; i++) {
		size_t at = (size_t)(set.entries[i] - list->names);

		if (strcmp(*set.entries[i - 1], *set.entries[i]) == 0 && at < first)
			first = at;
	}
	name_set_free(&set);
	return first;
}

/* A JSON array of plain part names; null or absent means empty, as in Go. The
 * first bad item is reported, whether a bad value or a repeated name. */
static int parse_names(const cJSON *array, const char *what, struct name_list *out,
		       struct error *err)
{
	const cJSON *item, *bad = NULL;
	size_t repeat;

	if (!array || cJSON_IsNull(array))
		return 0;
	if (!cJSON_IsArray(array))
		return error_set(err, EINVAL, "%s is not a JSON array", what);
	cJSON_ArrayForEach(item, array) {
		if (!cJSON_IsString(item) || !is_plain_name(item->valuestring) ||
		    strcmp(item->valuestring, "txn") == 0 ||
		    strcmp(item->valuestring, "tmp") == 0 ||
		    strcmp(item->valuestring, "snapshots") == 0) {
			bad = item;
			break;
		}
		name_list_add(out, item->valuestring);
	}
	repeat = first_repeat(out);
	if (repeat != SIZE_MAX)
		return error_set(err, EINVAL, "%s lists \"%s\" twice", what, out->names[repeat]);
	if (bad && !cJSON_IsString(bad))
		return error_set(err, EINVAL, "%s holds a value that is not a string", what);
	if (bad)
		return error_set(err, EINVAL, "%s lists \"%s\", which is not a part name", what,
				 bad->valuestring);
	return 0;
}

static cJSON *parse_json(const char *text, size_t len, struct error *err)
{
	cJSON *json = cJSON_ParseWithLength(text, len);

	if (!json)
		error_set(err, EINVAL, "not valid JSON");
	return json;
}

int partsjson_parse_partition(const char *text, size_t len, struct name_list *small,
			      struct name_list *big, struct error *err)
{
	cJSON *json = parse_json(text, len, err);
	int rc;

	if (!json)
		return -EINVAL;
	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		return error_set(err, EINVAL, "not a JSON object with \"Small\" and \"Big\"");
	}
	rc = parse_names(cJSON_GetObjectItemCaseSensitive(json, "Small"), "\"Small\"", small,
			 err);
	if (rc == 0)
		rc = parse_names(cJSON_GetObjectItemCaseSensitive(json, "Big"), "\"Big\"",
				 big, err);
	cJSON_Delete(json);
	return rc;
}

int partsjson_parse_table(const char *text, size_t len, struct name_list *names,
			  struct error *err)
{
	cJSON *json = parse_json(text, len, err);
	int rc;

	if (!json)
		return -EINVAL;
	rc = parse_names(json, "the list", names, err);
	cJSON_Delete(json);
	return rc;
}

static cJSON *names_array(const struct name_list *list)
{
	struct name_list sorted = { 0 };
	cJSON *array = cJSON_CreateArray();

	for (size_t i = 0; i < list->count; i++)
		name_list_add(&sorted, list->names[i]);
	name_list_sort(&sorted);
	for (size_t i = 0; i < sorted.count; i++)
		cJSON_AddItemToArray(array, cJSON_CreateString(sorted.names[i]));
	name_list_free(&sorted);
	return array;
}

static char *print_and_delete(cJSON *json)
{
	char *printed = cJSON_PrintUnformatted(json);
	char *copy;

	cJSON_Delete(json);
	if (!printed)
		return xstrdup("");
	copy = xstrdup(printed);
	cJSON_free(printed);
	return copy;
}

char *partsjson_format_partition(const struct name_list *small, const struct name_list *big)
{
	cJSON *json = cJSON_CreateObject();

	cJSON_AddItemToObject(json, "Small", names_array(small));
	cJSON_AddItemToObject(json, "Big", names_array(big));
	return print_and_delete(json);
}

char *partsjson_format_table(const struct name_list *names)
{
	return print_and_delete(names_array(names));
}

static int json_u64(const cJSON *json, const char *key, uint64_t *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);

	/* Whole numbers only, in range: converting anything else is undefined. */
	if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0 && item->valuedouble < 0x1p64) ||
	    (double)(uint64_t)item->valuedouble != item->valuedouble)
		return -EINVAL;
	*out = (uint64_t)item->valuedouble;
	return 0;
}

static int json_i64(const cJSON *json, const char *key, int64_t *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);

	if (!cJSON_IsNumber(item) ||
	    !(item->valuedouble >= -0x1p63 && item->valuedouble < 0x1p63) ||
	    (double)(int64_t)item->valuedouble != item->valuedouble)
		return -EINVAL;
	*out = (int64_t)item->valuedouble;
	return 0;
}

int part_header_from_json(const char *text, size_t len, bool mergeset,
			  struct part_header *header, struct error *err)
{
	cJSON *json = parse_json(text, len, err);
	int rc;

	if (!json)
		return -EINVAL;
	memset(header, 0, sizeof(*header));
	rc = json_u64(json, mergeset ? "ItemsCount" : "RowsCount", &header->rows);
	if (rc == 0)
		rc = json_u64(json, "BlocksCount", &header->blocks);
	if (rc == 0 && !mergeset)
		rc = json_i64(json, "MinTimestamp", &header->min_timestamp);
	if (rc == 0 && !mergeset)
		rc = json_i64(json, "MaxTimestamp", &header->max_timestamp);
	cJSON_Delete(json);
	if (rc < 0)
		return error_set(err, EINVAL, "a required field is missing or not a number");
	return 0;
}

/* YYYYMMDDhhmmss.mmm (UTC) to milliseconds. */
static int parse_name_time(const char *s, size_t len, int64_t *ms)
{
	struct tm tm = { 0 };
	int millis;
	char buf[19];

	if (len != 18 || s[14] != '.')
		return -EINVAL;
	/* sscanf alone would take signs and spaces. */
	for (size_t i = 0; i < len; i++)
		if (i != 14 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%4d%2d%2d%2d%2d%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis) != 7)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + millis;
	return 0;
}

static int parse_u64_field(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Splits name at '_' into at most max fields; returns the count. */
static size_t split_name(const char *name, const char **fields, size_t *lengths, size_t max)
{
	size_t count = 0;
	const char *start = name;

	for (const char *p = name;; p++) {
		if (*p != '_' && *p != '\0')
			continue;
		if (count == max)
			return max + 1;
		fields[count] = start;
		lengths[count++] = (size_t)(p - start);
		if (*p == '\0')
			return count;
		start = p + 1;
	}
}

int part_header_from_name(const char *name, bool mergeset, struct part_header *header)
{
	const char *fields[5];
	size_t lengths[5], want = mergeset ? 3 : 5;

	memset(header, 0, sizeof(*header));
	if (split_name(name, fields, lengths, 5) != want || lengths[want - 1] != 16 ||
	    !is_hex16_name(fields[want - 1]))
		return -EINVAL;
	if (parse_u64_field(fields[0], lengths[0], &header->rows) < 0 ||
	    parse_u64_field(fields[1], lengths[1], &header->blocks) < 0)
		return -EINVAL;
	if (mergeset)
		return 0;
	if (parse_name_time(fields[2], lengths[2], &header->min_timestamp) < 0 ||
	    parse_name_time(fields[3], lengths[3], &header->max_timestamp) < 0)
		return -EINVAL;
	return 0;
}

int legacy_name_suffix(const char *name, bool mergeset)
{
	struct part_header header;

	if (part_header_from_name(name, mergeset, &header) < 0)
		return -1;
	return (int)strlen(name) - 16;
}
