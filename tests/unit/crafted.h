/* SPDX-License-Identifier: Apache-2.0 */
/* Crafted generation-C volumes for the check tests: an empty data
 * partition and one indexdb part written by vm_mergeset_write_part, holding
 * namespace-1 (tag), namespace-3 (MetricID->MetricName) and namespace-5
 * (date) items for the series given. Used by check-t.c and make-collision.c. */
#ifndef VMUNION_TESTS_CRAFTED_H
#define VMUNION_TESTS_CRAFTED_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vmformat.h"

struct crafted_series {
	uint64_t metric_id;
	char *name; /* marshaled MetricName (no NUL inside): group\1key\1value\1... */
};

/* A marshaled MetricName: crafted_metric{vol="<vol>",i="<i>"}. */
static inline char *crafted_name(const char *vol, unsigned i)
{
	return xasprintf("crafted_metric\001i\001%u\001vol\001%s\001", i, vol);
}

static inline void crafted_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static inline void crafted_put_u64(uint8_t *p, uint64_t v)
{
	crafted_put_u32(p, (uint32_t)(v >> 32));
	crafted_put_u32(p + 4, (uint32_t)v);
}

static inline int crafted_compare_items(const void *a, const void *b)
{
	const struct vm_item *x = a, *y = b;
	int c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);

	return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

/* ns | [acc proj] | rest... as one item. */
static inline struct vm_item crafted_item(uint8_t ns, bool cluster, const void *a, size_t alen,
					   const void *b, size_t blen)
{
	size_t prefix = cluster ? 9 : 1;
	uint8_t *p = xcalloc(prefix + alen + blen, 1);

	p[0] = ns; /* tenant 0:0 */
	memcpy(p + prefix, a, alen);
	if (blen)
		memcpy(p + prefix + alen, b, blen);
	return (struct vm_item){ p, prefix + alen + blen };
}

static inline int crafted_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return -errno;
	if (len && fwrite(data, 1, len, f) != len)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

static inline int crafted_mkdir(const char *root, const char *path)
{
	char *full = xasprintf("%s/%s", root, path);
	int rc = mkdir(full, 0755) < 0 && errno != EEXIST ? -errno : 0;

	free(full);
	return rc;
}

/* Writes the volume at root (created; must not exist). part_name is the
 * 16-hex name of its one indexdb part in partition 2024_01. */
static inline int crafted_volume(const char *root, bool cluster, const char *part_name,
				 const struct crafted_series *series, size_t n, struct error *err)
{
	static const char *const dirs[] = {
		"", "metadata", "data", "data/small", "data/small/2024_01", "data/big",
		"data/big/2024_01", "data/indexdb", "data/indexdb/2024_01",
	};
	/* Small blocks: the namespace-3 seek then has blocks to skip. */
	struct vm_mergeset_write_opts opts = { .zstd = true, .max_block_bytes = 512,
					       .max_index_block_bytes = 256 };
	struct vm_item *items = xcalloc(3 * n, sizeof(*items));
	uint8_t zero[8] = { 0 };
	char *path, *json;
	int rc = 0, fd;

	for (size_t i = 0; rc == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		rc = crafted_mkdir(root, dirs[i]);
	if (rc < 0) {
		free(items);
		return error_set(err, -rc, "%s: mkdir: %s", root, strerror(-rc));
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t id[8], tenant_id[16], date_id[16];
		size_t name_len = strlen(series[i].name);

		crafted_put_u64(id, series[i].metric_id);
		/* ns 3: the cluster form repeats the tenant after the metricID. */
		memcpy(tenant_id, id, 8);
		memset(tenant_id + 8, 0, 8);
		items[3 * i] = crafted_item(VM_NS_METRIC_ID_TO_METRIC_NAME, cluster, tenant_id,
					    cluster ? 16 : 8, series[i].name, name_len);
		/* ns 1: vol=<...> -> metricID; ns 5: date -> metricID. */
		items[3 * i + 1] = crafted_item(VM_NS_TAG_TO_METRIC_IDS, cluster, series[i].name,
						name_len, id, 8);
		crafted_put_u64(date_id, 19742);
		memcpy(date_id + 8, id, 8);
		items[3 * i + 2] = crafted_item(VM_NS_DATE_TO_METRIC_ID, cluster, date_id, 16,
						NULL, 0);
	}
	qsort(items, 3 * n, sizeof(*items), crafted_compare_items);
	path = xasprintf("%s/data/indexdb/2024_01/%s", root, part_name);
	if (mkdir(path, 0755) < 0) {
		rc = error_set(err, errno, "%s: mkdir: %s", path, strerror(errno));
	} else {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = fd < 0 ? error_set(err, errno, "%s: %s", path, strerror(errno))
			    : vm_mergeset_write_part(fd, items, 3 * n, &opts, err);
		if (fd >= 0)
			close(fd);
	}
	free(path);
	for (size_t i = 0; i < 3 * n; i++)
		free((void *)items[i].data);
	free(items);
	if (rc < 0)
		return rc;

	path = xasprintf("%s/flock.lock", root);
	rc = crafted_write_file(path, "", 0);
	free(path);
	path = xasprintf("%s/metadata/minTimestampForCompositeIndex", root);
	if (rc == 0)
		rc = crafted_write_file(path, zero, 8);
	free(path);
	path = xasprintf("%s/data/small/2024_01/parts.json", root);
	if (rc == 0)
		rc = crafted_write_file(path, "{\"Small\":[],\"Big\":[]}", 22);
	free(path);
	path = xasprintf("%s/data/indexdb/2024_01/parts.json", root);
	json = xasprintf("[\"%s\"]", part_name);
	if (rc == 0)
		rc = crafted_write_file(path, json, strlen(json));
	free(json);
	free(path);
	if (rc < 0)
		return error_set(err, -rc, "%s: cannot write: %s", root, strerror(-rc));
	return 0;
}

/* The collision scenario of tests/e2e/check.sh, in dir (which must exist):
 * vol0 holds series 0..n-1 of "vol0" with metricIDs base+i; vol1 holds its
 * own series, the first `collide` of them under vol0's metricIDs; vol2
 * holds the same series as vol0 (replication) under metricIDs of its own. */
static inline int crafted_collision_set(const char *dir, bool cluster, size_t n, size_t collide,
					struct error *err)
{
	static const uint64_t base[3] = { 0x18EB000000000000ULL, 0x18EC000000000000ULL,
					  0x18ED000000000000ULL };
	struct crafted_series *series = xcalloc(n, sizeof(*series));
	int rc = 0;

	for (int v = 0; rc == 0 && v < 3; v++) {
		char *root = xasprintf("%s/vol%d", dir, v);
		char part[17];

		snprintf(part, sizeof(part), "18EB7%011X", (unsigned)v + 1);
		for (size_t i = 0; i < n; i++) {
			series[i].metric_id = (v == 1 && i < collide ? base[0] : base[v]) + i;
			series[i].name = crafted_name(v == 1 ? "vol1" : "vol0", (unsigned)i);
		}
		rc = crafted_volume(root, cluster, part, series, n, err);
		for (size_t i = 0; i < n; i++)
			free(series[i].name);
		free(root);
	}
	free(series);
	return rc;
}

#endif
