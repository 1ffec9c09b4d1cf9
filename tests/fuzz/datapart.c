/* SPDX-License-Identifier: Apache-2.0 */
/* A data part (metaindex.bin, index.bin; timestamps.bin and values.bin only
 * by their sizes, which is all the checker reads of them), as a bundle:
 *   <u64 LE timestamps.bin size><u64 LE values.bin size><metaindex.bin>
 *   SEP <index.bin> [SEP <metadata.json>]
 * Runs the cluster-layout guess and the full check in both layouts, with
 * the header of metadata.json as the expectation when it parses. */
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "partsjson.h"
#include "vmformat.h"

static void sized_file(int dirfd, const char *name, const uint8_t *p)
{
	uint64_t size = 0;
	int fd;

	for (int i = 7; i >= 0; i--)
		size = size << 8 | p[i];
	fuzz_write(dirfd, name, "", 0);
	/* Sparse on tmpfs; keep it within what any filesystem allows. */
	fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	FUZZ_ASSERT(fd >= 0 && ftruncate(fd, (off_t)(size & ((1ull << 40) - 1))) == 0);
	close(fd);
}

static int count_block(const struct vm_data_block *bh, void *arg)
{
	(*(uint64_t *)arg) += bh->rows;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *piece[3];
	size_t len[3], n;
	struct vm_data_expect expect, *e = NULL;
	struct part_header header;
	struct error err = { { 0 } };
	int dirfd;
	bool cluster;

	if (size < 16)
		return 0;
	n = fuzz_split(data + 16, size - 16, piece, len, 3);
	dirfd = fuzz_dir_open();
	sized_file(dirfd, "timestamps.bin", data);
	sized_file(dirfd, "values.bin", data + 8);
	fuzz_write(dirfd, "metaindex.bin", piece[0], len[0]);
	if (n > 1)
		fuzz_write(dirfd, "index.bin", piece[1], len[1]);
	if (n > 2 && part_header_from_json((const char *)piece[2], len[2], false, &header,
					   &err) == 0) {
		expect = (struct vm_data_expect){ header.rows, header.blocks,
						  header.min_timestamp, header.max_timestamp };
		e = &expect;
	}
	if (vm_data_part_guess_cluster(dirfd, &cluster, &err) < 0)
		FUZZ_ASSERT(err.message[0] != '\0');
	for (int c = 0; c < 2; c++) {
		struct vm_data_totals totals;
		uint64_t rows = 0;

		err.message[0] = '\0';
		if (vm_data_part_check(dirfd, c, e, count_block, &rows, &totals, &err) < 0) {
			FUZZ_ASSERT(err.message[0] != '\0');
		} else {
			FUZZ_ASSERT(totals.rows == rows);
			FUZZ_ASSERT(!e || (totals.rows == e->rows && totals.blocks == e->blocks));
		}
	}
	fuzz_dir_done(dirfd);
	return 0;
}
