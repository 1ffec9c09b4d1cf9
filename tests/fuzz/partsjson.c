/* SPDX-License-Identifier: Apache-2.0 */
/* parts.json of a partition ({"Small":[...],"Big":[...]}) and of an indexdb
 * table (["...", ...]): no crash, and what parses survives a round trip
 * through the writer unchanged (as a set of names). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "partsjson.h"

static void same_names(const struct name_list *a, const struct name_list *b)
{
	FUZZ_ASSERT(a->count == b->count);
	for (size_t i = 0; i < a->count; i++)
		FUZZ_ASSERT(name_list_contains(b, a->names[i]));
}

static void partition(const uint8_t *data, size_t size)
{
	struct name_list small = { 0 }, big = { 0 }, small2 = { 0 }, big2 = { 0 };
	struct error err = { { 0 } };

	if (partsjson_parse_partition((const char *)data, size, &small, &big, &err) == 0) {
		char *text = partsjson_format_partition(&small, &big);

		FUZZ_ASSERT(partsjson_parse_partition(text, strlen(text), &small2, &big2,
						      &err) == 0);
		same_names(&small, &small2);
		same_names(&big, &big2);
		free(text);
	} else {
		FUZZ_ASSERT(err.message[0] != '\0');
	}
	name_list_free(&small);
	name_list_free(&big);
	name_list_free(&small2);
	name_list_free(&big2);
}

static void table(const uint8_t *data, size_t size)
{
	struct name_list names = { 0 }, names2 = { 0 };
	struct error err = { { 0 } };

	if (partsjson_parse_table((const char *)data, size, &names, &err) == 0) {
		char *text = partsjson_format_table(&names);

		FUZZ_ASSERT(partsjson_parse_table(text, strlen(text), &names2, &err) == 0);
		same_names(&names, &names2);
		free(text);
	} else {
		FUZZ_ASSERT(err.message[0] != '\0');
	}
	name_list_free(&names);
	name_list_free(&names2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	partition(data, size);
	table(data, size);
	return 0;
}
