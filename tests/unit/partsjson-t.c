/* SPDX-License-Identifier: Apache-2.0 */
/* parts.json and part headers: strict parsing, vmstorage's output format. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "partsjson.h"
#include "tap.h"

static int parse_partition(const char *text, struct name_list *small, struct name_list *big,
			   struct error *err)
{
	return partsjson_parse_partition(text, strlen(text), small, big, err);
}

static void test_partition(void)
{
	struct name_list small = { 0 }, big = { 0 };
	struct error err;
	char *out;

	is_int(parse_partition("{\"Small\":[\"B\",\"A\"],\"Big\":[\"C\"]}", &small, &big, &err),
	       0, "a partition parts.json parses");
	is_int(small.count, 2, "two small parts");
	is_int(big.count, 1, "one big part");
	out = partsjson_format_partition(&small, &big);
	is_str(out, "{\"Small\":[\"A\",\"B\"],\"Big\":[\"C\"]}",
	       "written sorted and compact, as vmstorage writes it");
	free(out);
	name_list_free(&small);
	name_list_free(&big);

	out = partsjson_format_partition(&small, &big);
	is_str(out, "{\"Small\":[],\"Big\":[]}", "empty lists are [] (not null)");
	free(out);

	is_int(parse_partition("{\"Small\":null}", &small, &big, &err), 0,
	       "null and missing lists are empty, as in Go");
	is_int(small.count + big.count, 0, "... and hold nothing");

	is_int(parse_partition("{\"Small\":[\"A\"", &small, &big, &err), -EINVAL,
	       "truncated JSON is refused");
	name_list_free(&small);
	is_int(parse_partition("[\"A\"]", &small, &big, &err), -EINVAL,
	       "an array where an object belongs is refused");
	is_int(parse_partition("{\"Small\":[\"../evil\"]}", &small, &big, &err), -EINVAL,
	       "a name with a slash is refused");
	ok(strstr(err.message, "../evil") != NULL, "the message names the bad entry: %s",
	   err.message);
	name_list_free(&small);
	is_int(parse_partition("{\"Small\":[\"..\"]}", &small, &big, &err), -EINVAL,
	       "\"..\" is refused");
	is_int(parse_partition("{\"Small\":[\"\"]}", &small, &big, &err), -EINVAL,
	       "an empty name is refused");
	is_int(parse_partition("{\"Small\":[\"txn\"]}", &small, &big, &err), -EINVAL,
	       "a service dir name is refused");
	is_int(parse_partition("{\"Small\":[1]}", &small, &big, &err), -EINVAL,
	       "a number is refused");
	is_int(parse_partition("{\"Small\":[\"A\",\"A\"]}", &small, &big, &err), -EINVAL,
	       "a name listed twice is refused");
	name_list_free(&small);
	name_list_free(&big);
}

static void test_table(void)
{
	struct name_list names = { 0 };
	struct error err;
	char *out;

	is_int(partsjson_parse_table("[\"17F1\",\"17F0\"]", 15, &names, &err), 0,
	       "a table parts.json parses");
	out = partsjson_format_table(&names);
	is_str(out, "[\"17F0\",\"17F1\"]", "written sorted");
	free(out);
	name_list_free(&names);
	is_int(partsjson_parse_table("{}", 2, &names, &err), -EINVAL,
	       "an object where an array belongs is refused");
	out = partsjson_format_table(&names);
	is_str(out, "[]", "an empty table list is []");
	free(out);
}

static void test_headers(void)
{
	const char *json = "{\"RowsCount\":4623,\"BlocksCount\":1107,\"MinTimestamp\":1705709046000,"
			   "\"MaxTimestamp\":1706745389000,\"MinDedupInterval\":0}";
	struct part_header h;
	struct error err;

	is_int(part_header_from_json(json, strlen(json), false, &h, &err), 0,
	       "data part metadata.json parses");
	is_int(h.rows, 4623, "rows");
	is_int(h.blocks, 1107, "blocks");
	is_int(h.min_timestamp, 1705709046000LL, "min timestamp");
	is_int(part_header_from_json("{\"ItemsCount\":3}", 16, true, &h, &err), -EINVAL,
	       "mergeset metadata without BlocksCount is refused");

	is_int(part_header_from_name("4623_1107_20240120000406.000_20240131235629.000_18EB73DEA55F07FA",
				     false, &h),
	       0, "a gen-A data part name parses");
	is_int(h.rows, 4623, "rows from the name");
	is_int(h.min_timestamp, 1705709046000LL, "min timestamp from the name (UTC)");
	is_int(h.max_timestamp, 1706745389000LL, "max timestamp from the name");
	is_int(part_header_from_name("48389_102_18EB73DE8D3D38F2", true, &h), 0,
	       "a gen-A mergeset part name parses");
	is_int(h.rows, 48389, "items from the name");
	is_int(part_header_from_name("18EB73DE8D3D38F2", false, &h), -EINVAL,
	       "a gen-B name is not a gen-A name");
	is_int(legacy_name_suffix("48389_102_18EB73DE8D3D38F2", true), 10,
	       "the suffix of a gen-A mergeset name starts after the counts");
	is_int(legacy_name_suffix("18EB73DE8D3D38F2", true), -1, "a gen-B name has no suffix");
}

/* Inputs the fuzzer (tests/fuzz) found accepted or mis-converted. */
static void test_header_bad_numbers(void)
{
	static const char *const bad_json[] = {
		"{\"RowsCount\":1e300,\"BlocksCount\":1,\"MinTimestamp\":0,\"MaxTimestamp\":0}",
		"{\"RowsCount\":1.5,\"BlocksCount\":1,\"MinTimestamp\":0,\"MaxTimestamp\":0}",
		"{\"RowsCount\":1,\"BlocksCount\":1,\"MinTimestamp\":-1e19,\"MaxTimestamp\":0}",
		"{\"RowsCount\":1,\"BlocksCount\":1,\"MinTimestamp\":0,\"MaxTimestamp\":1e999}",
	};
	static const char *const bad_names[] = {
		"99999999999999999999_1_20240120000406.000_20240131235629.000_18EB73DEA55F07FA",
		"1_1_+0240120000406.000_20240131235629.000_18EB73DEA55F07FA",
		"1_1_2024012000040 .000_20240131235629.000_18EB73DEA55F07FA",
		"1_1_20240120000406.-01_20240131235629.000_18EB73DEA55F07FA",
	};
	struct part_header h;
	struct error err;

	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++)
		is_int(part_header_from_json(bad_json[i], strlen(bad_json[i]), false, &h, &err),
		       -EINVAL, "metadata.json out of range or fractional is refused: %s",
		       bad_json[i]);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		is_int(part_header_from_name(bad_names[i], false, &h), -EINVAL,
		       "a name with an overflowing count or a non-digit time is refused: %s",
		       bad_names[i]);
	is_int(part_header_from_name("18446744073709551615_1_18EB73DEA55F07FA", true, &h), 0,
	       "the largest count parses");
	is_int(h.rows == UINT64_MAX, 1, "... exactly");
}

int main(void)
{
	test_partition();
	test_table();
	test_headers();
	test_header_bad_numbers();
	return done_testing();
}
