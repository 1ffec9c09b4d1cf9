/* SPDX-License-Identifier: Apache-2.0 */
/* A mergeset (indexdb) part as a bundle:
 *   <metaindex.bin> SEP <index.bin> SEP <items.bin> SEP <lens.bin>
 *   [SEP <seek key> [SEP <metadata.json>]]
 * Walks every item (checking the order the iterator promises), decodes and
 * renders the MetricID->MetricName items, seeks to the key and scans the
 * metric names in both layouts. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "partsjson.h"
#include "vmformat.h"

static const char *const files[] = { "metaindex.bin", "index.bin", "items.bin", "lens.bin" };

static void render_item(const uint8_t *item, size_t len)
{
	for (int cluster = 0; cluster < 2; cluster++) {
		struct vm_metric_name_item mn;
		struct error err = { { 0 } };
		char *text = NULL;

		if (vm_decode_metric_name_item(item, len, cluster, &mn, &err) < 0)
			continue;
		FUZZ_ASSERT(mn.name >= item && mn.name + mn.name_len <= item + len);
		if (vm_metric_name_render(mn.name, mn.name_len, &text, &err) == 0)
			FUZZ_ASSERT(text != NULL);
		free(text);
	}
}

static void walk(int dirfd, const struct vm_mergeset_expect *e)
{
	struct vm_mergeset_iter *it;
	struct error err = { { 0 } };
	uint8_t *prev = NULL;
	size_t prev_len = 0, count = 0;
	const uint8_t *item;
	size_t len;
	int rc;

	if (vm_mergeset_open(dirfd, e, &it, &err) < 0) {
		FUZZ_ASSERT(err.message[0] != '\0');
		return;
	}
	while ((rc = vm_mergeset_next(it, &item, &len, &err)) == 1) {
		size_t m = len < prev_len ? len : prev_len;
		int cmp = m ? memcmp(prev, item, m) : 0;

		/* Items come out non-decreasing. */
		FUZZ_ASSERT(count == 0 || cmp < 0 || (cmp == 0 && prev_len <= len));
		render_item(item, len);
		free(prev);
		prev = malloc(len ? len : 1);
		memcpy(prev, item, len);
		prev_len = len;
		count++;
	}
	if (rc < 0) {
		FUZZ_ASSERT(err.message[0] != '\0');
		/* After an error every later call fails too. */
		FUZZ_ASSERT(vm_mergeset_next(it, &item, &len, &err) < 0);
	}
	free(prev);
	vm_mergeset_close(it);
}

static void seek(int dirfd, const uint8_t *key, size_t key_len)
{
	struct vm_mergeset_iter *it;
	struct error err = { { 0 } };
	const uint8_t *item;
	size_t len;

	if (vm_mergeset_open(dirfd, NULL, &it, &err) < 0)
		return;
	if (vm_mergeset_seek(it, key, key_len, &err) == 0 &&
	    vm_mergeset_next(it, &item, &len, &err) == 1) {
		size_t m = len < key_len ? len : key_len;
		int cmp = m ? memcmp(item, key, m) : 0;

		/* The first item at or after the key. */
		FUZZ_ASSERT(cmp > 0 || (cmp == 0 && len >= key_len));
	}
	vm_mergeset_close(it);
}

static int count_name(const struct vm_metric_name_item *mn, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *piece[6];
	size_t len[6], n = fuzz_split(data, size, piece, len, 6);
	struct vm_mergeset_expect expect, *e = NULL;
	struct part_header header;
	struct error err = { { 0 } };
	int dirfd = fuzz_dir_open();

	for (size_t i = 0; i < n && i < 4; i++)
		fuzz_write(dirfd, files[i], piece[i], len[i]);
	if (n > 5 && part_header_from_json((const char *)piece[5], len[5], true, &header,
					   &err) == 0) {
		expect = (struct vm_mergeset_expect){ header.rows, header.blocks };
		e = &expect;
	}
	walk(dirfd, e);
	if (n > 4)
		seek(dirfd, piece[4], len[4]);
	for (int cluster = 0; cluster < 2; cluster++) {
		size_t names = 0;

		vm_indexdb_scan_metric_names(dirfd, cluster, count_name, &names, &err);
	}
	fuzz_dir_done(dirfd);
	return 0;
}
