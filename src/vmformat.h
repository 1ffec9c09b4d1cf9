/* SPDX-License-Identifier: Apache-2.0 */
/* Decoders for the VictoriaMetrics on-disk formats (vmstorage-layout.md §7):
 * zstd frames, data parts, mergeset (indexdb) parts, indexdb items and
 * metadata/minTimestampForCompositeIndex.  Everything works on file
 * descriptors with pread, decoding one block at a time; a walk reads its
 * files ahead (windows of up to 1 MiB) and keeps one zstd context and its
 * buffers for all its blocks.  Only metaindex.bin (which vmstorage itself
 * keeps in memory) is read whole.
 *
 * Errors are -errno; err->message names the file inside the part directory
 * ("index.bin: ..."), the caller prefixes the part path. */
#ifndef VMUNION_VMFORMAT_H
#define VMUNION_VMFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Largest output accepted from one zstd frame; anything bigger is garbage. */
#define VM_ZSTD_MAX_OUT ((size_t)64 << 20)
/* Largest single block (index/items/lens/...) read from a part file. */
#define VM_BLOCK_MAX ((size_t)8 << 20)

/* ---- zstd ---- */

/* Decompresses exactly one zstd frame that fills src[0, len).  Uses the
 * frame content size when present, streaming otherwise (pure-Go writers
 * omit it).  Output over max_out bytes is refused.  *out is malloc'ed (free
 * it) and NUL-terminated for convenience.  what names the file in errors. */
int vm_zstd_decompress(const void *src, size_t len, size_t max_out, const char *what,
		       void **out, size_t *out_len, struct error *err);
/* Compresses src into one frame; content_size=false omits the frame content
 * size, as klauspost/compress does for metaindex.bin. */
int vm_zstd_compress(const void *src, size_t len, bool content_size, void **out,
		     size_t *out_len, struct error *err);

/* ---- data parts (metaindex.bin index.bin timestamps.bin values.bin) ---- */

/* Single-node TSIDs have no tenant: account_id = project_id = 0. */
struct vm_tsid {
	uint32_t account_id;
	uint32_t project_id;
	uint64_t metric_group_id;
	uint32_t job_id;
	uint32_t instance_id;
	uint64_t metric_id;
};

#define VM_TSID_SIZE_SINGLE 24
#define VM_TSID_SIZE_CLUSTER 32
#define VM_DATA_METAINDEX_ROW_SINGLE 56
#define VM_DATA_METAINDEX_ROW_CLUSTER 64
#define VM_DATA_BLOCK_HEADER_SINGLE 81
#define VM_DATA_BLOCK_HEADER_CLUSTER 89

struct vm_data_block {
	struct vm_tsid tsid;
	int64_t min_ts;
	int64_t max_ts;
	int64_t first_value;
	uint64_t ts_offset;
	uint64_t values_offset;
	uint32_t ts_size;
	uint32_t values_size;
	uint32_t rows;
	int16_t scale;
	uint8_t ts_marshal_type;
	uint8_t values_marshal_type;
	uint8_t precision_bits;
};

/* What the part header (metadata.json or the gen-A dir name) promises. */
struct vm_data_expect {
	uint64_t rows;
	uint64_t blocks;
	int64_t min_ts;
	int64_t max_ts;
};

struct vm_data_totals {
	uint64_t rows;
	uint64_t blocks;
	uint64_t index_blocks;	/* metaindex rows */
	uint64_t series;	/* distinct TSIDs (headers are sorted by TSID) */
	int64_t min_ts;		/* over all block headers */
	int64_t max_ts;
	uint64_t ts_bytes;	/* sum of TimestampsBlockSize */
	uint64_t values_bytes;	/* sum of ValuesBlockSize */
};

/* Called for every block header in part order; a non-zero return stops the
 * walk and is returned by vm_data_part_check. */
typedef int (*vm_data_block_fn)(const struct vm_data_block *bh, void *arg);

/* Decodes and validates the data part in dirfd, reporting the first problem:
 * - metaindex rows: whole rows, BlockHeadersCount > 0, MinTs <= MaxTs,
 *   sorted by TSID, index block inside index.bin;
 * - each index block decompresses to exactly BlockHeadersCount headers and
 *   starts with the TSID of its metaindex row;
 * - each header: RowsCount > 0, MinTs <= MaxTs within its metaindex row and
 *   within [expect->min_ts, expect->max_ts], PrecisionBits 1..64, TSIDs
 *   non-decreasing over the part, timestamps/values blocks inside their files;
 * - the header count equals expect->blocks and the row sum expect->rows.
 * expect may be NULL (no comparison with the part header); fn and totals
 * may be NULL.  totals is filled as far as the walk got. */
int vm_data_part_check(int dirfd, bool cluster, const struct vm_data_expect *expect,
		       vm_data_block_fn fn, void *arg, struct vm_data_totals *totals,
		       struct error *err);

/* Tells a cluster part from a single-node one by decoding metaindex.bin
 * both ways: a layout qualifies when the decompressed length is a multiple
 * of its row size, rows have BlockHeadersCount>0 and MinTs<=MaxTs, the
 * index blocks tile index.bin from offset 0 to its end, and the first index
 * block decompresses to BlockHeadersCount * header size.  -EINVAL if
 * neither or both layouts qualify. */
int vm_data_part_guess_cluster(int dirfd, bool *cluster, struct error *err);

/* ---- mergeset parts (metaindex.bin index.bin items.bin lens.bin) ---- */

struct vm_mergeset_expect {
	uint64_t items;
	uint64_t blocks;
};

struct vm_mergeset_stats {
	uint64_t items;		/* items in the blocks decoded so far */
	uint64_t blocks;	/* blocks decoded so far */
	uint64_t index_blocks;
	uint64_t plain_blocks;
	uint64_t zstd_blocks;
	uint64_t metaindex_rows;	/* in the part */
};

struct vm_mergeset_iter;

/* Opens the mergeset part in dirfd (the fd is not kept: the iterator opens
 * its own).  expect (may be NULL) is checked when a full scan ends. */
int vm_mergeset_open(int dirfd, const struct vm_mergeset_expect *expect,
		     struct vm_mergeset_iter **out, struct error *err);
/* Next item in part order: 1 with *item and *len set (valid until the next
 * call on it), 0 at the end, or -errno.  Items are validated to be
 * non-decreasing (v1.79.5 parts hold duplicates).  After an error every
 * later next/seek fails too. */
int vm_mergeset_next(struct vm_mergeset_iter *it, const uint8_t **item, size_t *len,
		     struct error *err);
/* Positions it at the first item >= key, jumping over every index block and
 * block that ends below key (binary search on the metaindex firstItem, then
 * on the block headers).  A seek turns off the end-of-scan count check. */
int vm_mergeset_seek(struct vm_mergeset_iter *it, const void *key, size_t key_len,
		     struct error *err);
void vm_mergeset_get_stats(const struct vm_mergeset_iter *it, struct vm_mergeset_stats *st);
void vm_mergeset_close(struct vm_mergeset_iter *it);

/* ---- indexdb items ---- */

enum {
	VM_NS_METRIC_NAME_TO_TSID = 0,
	VM_NS_TAG_TO_METRIC_IDS = 1,
	VM_NS_METRIC_ID_TO_TSID = 2,
	VM_NS_METRIC_ID_TO_METRIC_NAME = 3,
	VM_NS_DELETED_METRIC_ID = 4,
	VM_NS_DATE_TO_METRIC_ID = 5,
	VM_NS_DATE_TAG_TO_METRIC_IDS = 6,
	VM_NS_DATE_METRIC_NAME_TO_TSID = 7,
};

/* A decoded namespace-3 item.  name points into the item: the marshaled
 * MetricName without its tenant prefix (metric group, then key/value pairs,
 * each escaped and ended by 0x01). */
struct vm_metric_name_item {
	uint32_t account_id;
	uint32_t project_id;
	uint64_t metric_id;
	const uint8_t *name;
	size_t name_len;
};

/* cluster: 03|acc|proj|metricID|acc|proj|MetricName (both tenants must
 * agree); single: 03|metricID|MetricName.  -EINVAL on anything else. */
int vm_decode_metric_name_item(const uint8_t *item, size_t len, bool cluster,
			       struct vm_metric_name_item *out, struct error *err);
/* Renders marshaled MetricName bytes as name{k="v",...} in Prometheus text
 * style: labels sorted by name, \ " and newline escaped in values, no braces
 * without labels.  The stored order is not alphabetical (vmstorage puts
 * job/instance-like keys first), but it is canonical, so byte equality of
 * the marshaled names still means the same series.  *out is malloc'ed. */
int vm_metric_name_render(const uint8_t *name, size_t len, char **out, struct error *err);
/* The same series as a PromQL selector that matches exactly it:
 * {__name__="name",k="v",...} (same escaping, same label order). */
int vm_metric_name_selector(const uint8_t *name, size_t len, char **out, struct error *err);

typedef int (*vm_item_fn)(const uint8_t *item, size_t len, void *arg);
/* Seeks to namespace ns (the first byte of an item) in the mergeset part in
 * dirfd and calls fn for each of its items.  A non-zero return from fn
 * stops the scan and is returned. */
int vm_mergeset_scan_namespace(int dirfd, uint8_t ns, vm_item_fn fn, void *arg,
			       struct error *err);

typedef int (*vm_metric_name_fn)(const struct vm_metric_name_item *mn, void *arg);
/* Seeks to namespace 3 in the mergeset part in dirfd and calls fn for each
 * MetricID->MetricName item (duplicates included).  A non-zero return from
 * fn stops the scan and is returned. */
int vm_indexdb_scan_metric_names(int dirfd, bool cluster, vm_metric_name_fn fn, void *arg,
				 struct error *err);

/* ---- metadata/minTimestampForCompositeIndex: 8 bytes, zig-zag i64 BE ---- */

#define VM_MIN_TS_COMPOSITE_SIZE 8
int vm_min_ts_composite_decode(const void *buf, size_t len, int64_t *ts, struct error *err);
void vm_min_ts_composite_encode(int64_t ts, uint8_t out[VM_MIN_TS_COMPOSITE_SIZE]);

/* ---- test-only mergeset part writer ---- */

struct vm_item {
	const void *data;
	size_t len;
};

struct vm_mergeset_write_opts {
	bool zstd;			/* marshalType 1 for blocks of >= 2 items */
	bool content_size;		/* write the zstd frame content size */
	size_t max_block_bytes;		/* items bytes per block, 0 = 64 KiB */
	size_t max_index_block_bytes;	/* headers bytes per index block, 0 = 64 KiB */
};

/* FOR TESTS: writes metaindex.bin index.bin items.bin lens.bin and
 * metadata.json into the (empty) directory dirfd for n >= 1 sorted items,
 * in the layout vmstorage writes, so vm_mergeset_* can read it back. */
int vm_mergeset_write_part(int dirfd, const struct vm_item *items, size_t n,
			   const struct vm_mergeset_write_opts *opts, struct error *err);

#endif
