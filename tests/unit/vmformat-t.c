/* SPDX-License-Identifier: Apache-2.0 */
/* vmformat: decode every part of the real sample volumes under tests/data,
 * check crafted corruption is reported with the file name, and round-trip
 * the test-only mergeset writer through the reader. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vmformat.h"
#include "tap.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static const char *top_srcdir;

/* ---- small helpers ---- */

static char *slurp(int dirfd, const char *path, size_t *len)
{
	char *buf;
	size_t n;

	if (read_file_at(dirfd, path, (size_t)256 << 20, &buf, &n) < 0)
		return NULL;
	if (len)
		*len = n;
	return buf;
}

static cJSON *load_json(int dirfd, const char *path)
{
	char *text = slurp(dirfd, path, NULL);
	cJSON *j = text ? cJSON_Parse(text) : NULL;

	free(text);
	return j;
}

static double json_num(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a hex string into a new buffer. */
static uint8_t *unhex(const char *s, size_t *len)
{
	size_t n = strlen(s) / 2;
	uint8_t *out = xmalloc(n + 1);

	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	*len = n;
	return out;
}

static bool bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t uniq_u64(uint64_t *v, size_t n)
{
	size_t m = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	return m;
}

static size_t uniq_str(char **v, size_t n)
{
	size_t m = 0;

	qsort(v, n, sizeof(*v), compare_strings);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || strcmp(v[m - 1], v[i]) != 0)
			v[m++] = v[i];
	return m;
}

static int openat_dir(int dirfd, const char *path)
{
	return openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static bool file_exists_at(int dirfd, const char *path)
{
	return faccessat(dirfd, path, F_OK, 0) == 0;
}

/* Recursively lists the part dirs (dirs holding metaindex.bin) below rel. */
static void find_parts(int rootfd, const char *rel, char ***parts, size_t *n, size_t *cap)
{
	int fd = openat_dir(rootfd, rel);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	if (file_exists_at(fd, "metaindex.bin")) {
		*ARRAY_PUSH(*parts, *n, *cap) = xstrdup(rel);
		close(fd);
		return;
	}
	d = fdopendir(fd);
	while ((de = readdir(d))) {
		char *sub;

		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		sub = xasprintf("%s/%s", rel, de->d_name);
		find_parts(rootfd, sub, parts, n, cap);
		free(sub);
	}
	closedir(d);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* "YYYYMMDDhhmmss.mmm" UTC into ms. */
static bool parse_gen_a_ts(const char *s, int64_t *ms)
{
	struct tm tm = { 0 };
	int msec;

	if (sscanf(s, "%4d%2d%2d%2d%2d%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &msec) != 7)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + msec;
	return true;
}

/* The part header of a data part: metadata.json, else the gen-A name. */
static bool data_expect(int partfd, const char *name, struct vm_data_expect *e)
{
	cJSON *j = load_json(partfd, "metadata.json");
	char mn[32], mx[32];
	unsigned long long rows, blocks;

	if (j) {
		e->rows = (uint64_t)json_num(j, "RowsCount");
		e->blocks = (uint64_t)json_num(j, "BlocksCount");
		e->min_ts = (int64_t)json_num(j, "MinTimestamp");
		e->max_ts = (int64_t)json_num(j, "MaxTimestamp");
		cJSON_Delete(j);
		return true;
	}
	if (sscanf(name, "%llu_%llu_%18[0-9.]_%18[0-9.]_", &rows, &blocks, mn, mx) != 4)
		return false;
	e->rows = rows;
	e->blocks = blocks;
	return parse_gen_a_ts(mn, &e->min_ts) && parse_gen_a_ts(mx, &e->max_ts);
}

struct ms_header {
	struct vm_mergeset_expect e;
	uint8_t *first, *last;
	size_t first_len, last_len;
};

static bool ms_expect(int partfd, const char *name, struct ms_header *h)
{
	cJSON *j = load_json(partfd, "metadata.json");
	const cJSON *fi, *li;
	unsigned long long items, blocks;
	bool good;

	if (!j)
		return false;
	h->e.items = (uint64_t)json_num(j, "ItemsCount");
	h->e.blocks = (uint64_t)json_num(j, "BlocksCount");
	fi = cJSON_GetObjectItemCaseSensitive(j, "FirstItem");
	li = cJSON_GetObjectItemCaseSensitive(j, "LastItem");
	good = cJSON_IsString(fi) && cJSON_IsString(li);
	if (good) {
		h->first = unhex(fi->valuestring, &h->first_len);
		h->last = unhex(li->valuestring, &h->last_len);
	}
	cJSON_Delete(j);
	/* Gen A repeats the counts in the dir name; they must agree. */
	if (good && !is_hex16_name(name))
		good = sscanf(name, "%llu_%llu_", &items, &blocks) == 2 && items == h->e.items &&
		       blocks == h->e.blocks;
	return good;
}

/* ---- real sample volumes ---- */

struct name_rec {
	uint64_t id;
	char *name;
};

struct node_acc {
	bool cluster;
	uint64_t *data_ids;
	size_t n_data_ids, cap_data_ids;
	struct name_rec *names;
	size_t n_names, cap_names;
	uint64_t rows;
	uint64_t ns3_full;
	uint64_t ns_items[8];
	unsigned guess_right, data_parts, ms_parts;
	unsigned fcs_metaindex, fcs_index, frames;
	unsigned tenant_nonzero;
	int render_failures;
};

static int collect_block(const struct vm_data_block *bh, void *arg)
{
	struct node_acc *a = arg;

	/* Headers are sorted by TSID: record a metricID once per run. */
	if (a->n_data_ids == 0 || a->data_ids[a->n_data_ids - 1] != bh->tsid.metric_id)
		*ARRAY_PUSH(a->data_ids, a->n_data_ids, a->cap_data_ids) = bh->tsid.metric_id;
	if (bh->tsid.account_id || bh->tsid.project_id)
		a->tenant_nonzero++;
	return 0;
}

static int collect_name(const struct vm_metric_name_item *mn, void *arg)
{
	struct node_acc *a = arg;
	struct name_rec *r;
	char *s;

	if (vm_metric_name_render(mn->name, mn->name_len, &s, NULL) < 0) {
		a->render_failures++;
		return 0;
	}
	if (mn->account_id || mn->project_id)
		a->tenant_nonzero++;
	r = ARRAY_PUSH(a->names, a->n_names, a->cap_names);
	r->id = mn->metric_id;
	r->name = s;
	return 0;
}

/* Whether a zstd frame at the start of a file carries its content size. */
static bool frame_has_size(int partfd, const char *file)
{
	uint8_t hdr[32];
	int fd = openat(partfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, hdr, sizeof(hdr), 0);

	if (fd >= 0)
		close(fd);
	return n > 0 && ZSTD_getFrameContentSize(hdr, (size_t)n) != ZSTD_CONTENTSIZE_UNKNOWN;
}

static void test_data_part(int nodefd, const char *label, const char *rel, struct node_acc *a)
{
	int partfd = openat_dir(nodefd, rel);
	struct vm_data_expect e;
	struct vm_data_totals t;
	struct error err = { "" };
	bool guessed = !a->cluster;
	int rc;

	a->data_parts++;
	if (!ok(partfd >= 0 && data_expect(partfd, base_name(rel), &e),
		"%s/%s: part header readable", label, rel)) {
		if (partfd >= 0)
			close(partfd);
		return;
	}
	rc = vm_data_part_check(partfd, a->cluster, &e, collect_block, a, &t, &err);
	if (!ok(rc == 0 && t.rows == e.rows && t.blocks == e.blocks && t.min_ts >= e.min_ts &&
		t.max_ts <= e.max_ts && t.series > 0,
		"%s/%s: data part decodes: %" PRIu64 " rows, %" PRIu64 " blocks, %" PRIu64
		" series", label, rel, t.rows, t.blocks, t.series))
		diag("rc %d: %s", rc, err.message);
	a->rows += t.rows;
	if (vm_data_part_guess_cluster(partfd, &guessed, &err) == 0 && guessed == a->cluster)
		a->guess_right++;
	else
		diag("%s/%s: guess_cluster: %s", label, rel, err.message);
	a->frames++;
	a->fcs_metaindex += frame_has_size(partfd, "metaindex.bin");
	a->fcs_index += frame_has_size(partfd, "index.bin");
	close(partfd);
}

/* Full scan: every item in order, then the first/last against metadata.json. */
static void full_scan(int partfd, const char *label, const char *rel, const struct ms_header *h,
		      struct node_acc *a)
{
	struct vm_mergeset_iter *it;
	struct vm_mergeset_stats st = { 0 };
	struct error err = { "" };
	const uint8_t *item;
	uint8_t *last = NULL;
	size_t len, last_len = 0;
	bool first_ok = false;
	uint64_t n = 0;
	int rc = vm_mergeset_open(partfd, &h->e, &it, &err);

	while (rc == 0 && (rc = vm_mergeset_next(it, &item, &len, &err)) == 1) {
		rc = 0;
		if (n++ == 0)
			first_ok = bytes_eq(item, len, h->first, h->first_len);
		if (len > 0 && item[0] < 8)
			a->ns_items[item[0]]++;
		if (len > 0 && item[0] == VM_NS_METRIC_ID_TO_METRIC_NAME)
			a->ns3_full++;
		last = xrealloc(last, len + 1);
		memcpy(last, item, len);
		last_len = len;
	}
	if (rc == 0)
		vm_mergeset_get_stats(it, &st);
	if (!ok(rc == 0 && n == h->e.items && st.blocks == h->e.blocks && first_ok &&
		bytes_eq(last, last_len, h->last, h->last_len),
		"%s/%s: mergeset part scans: %" PRIu64 " items, %" PRIu64 " blocks (%" PRIu64
		" plain, %" PRIu64 " zstd), %" PRIu64 " index blocks", label, rel, n, st.blocks,
		st.plain_blocks, st.zstd_blocks, st.index_blocks))
		diag("rc %d: %s", rc, err.message);
	if (rc == 0)
		vm_mergeset_close(it);
	free(last);
}

static void test_ms_part(int nodefd, const char *label, const char *rel, struct node_acc *a)
{
	int partfd = openat_dir(nodefd, rel);
	struct ms_header h = { 0 };
	struct error err = { "" };
	int rc;

	a->ms_parts++;
	if (!ok(partfd >= 0 && ms_expect(partfd, base_name(rel), &h),
		"%s/%s: mergeset metadata.json readable and agrees with the name", label, rel)) {
		if (partfd >= 0)
			close(partfd);
		return;
	}
	full_scan(partfd, label, rel, &h, a);
	rc = vm_indexdb_scan_metric_names(partfd, a->cluster, collect_name, a, &err);
	if (rc < 0)
		ok(0, "%s/%s: ns-3 scan: %s", label, rel, err.message);
	free(h.first);
	free(h.last);
	close(partfd);
}

static bool has_id(const uint64_t *ids, size_t n, uint64_t id)
{
	return bsearch(&id, ids, n, sizeof(id), cmp_u64) != NULL;
}

static void check_node(const char *label, const cJSON *vol, struct node_acc *a)
{
	const cJSON *series = cJSON_GetObjectItemCaseSensitive(vol, "series");
	uint64_t want_series = (uint64_t)json_num(vol, "series_count");
	uint64_t want_samples = (uint64_t)json_num(vol, "sample_count");
	uint64_t *ids = xmalloc((a->n_names + 1) * sizeof(*ids));
	char **names = xmalloc((a->n_names + 1) * sizeof(*names));
	size_t n_ids, n_names, missing_names = 0, missing_ids = 0, n_data;

	for (size_t i = 0; i < a->n_names; i++) {
		ids[i] = a->names[i].id;
		names[i] = a->names[i].name;
	}
	n_ids = uniq_u64(ids, a->n_names);
	n_names = uniq_str(names, a->n_names);
	for (size_t i = 0; i < n_names; i++)
		if (!cJSON_GetObjectItemCaseSensitive(series, names[i]))
			missing_names++;
	n_data = uniq_u64(a->data_ids, a->n_data_ids);
	for (size_t i = 0; i < n_data; i++)
		if (!has_id(ids, n_ids, a->data_ids[i]))
			missing_ids++;

	diag("%s: %u data parts, %u mergeset parts; ns-3 items %zu, distinct metricIDs %zu, "
	     "distinct names %zu; data-part metricIDs %zu; items per ns 0..7: %" PRIu64 " %"
	     PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
	     label, a->data_parts, a->ms_parts, a->n_names, n_ids, n_names, n_data,
	     a->ns_items[0], a->ns_items[1], a->ns_items[2], a->ns_items[3], a->ns_items[4],
	     a->ns_items[5], a->ns_items[6], a->ns_items[7]);
	diag("%s: zstd frame content size present in %u/%u metaindex.bin, %u/%u index.bin",
	     label, a->fcs_metaindex, a->frames, a->fcs_index, a->frames);
	is_int(a->rows, want_samples, "%s: data-part rows sum to the manifest sample_count", label);
	is_int(a->guess_right, a->data_parts, "%s: guess_cluster right for every data part", label);
	is_int(a->ns3_full, a->n_names, "%s: seek to ns 3 finds every ns-3 item", label);
	is_int(a->render_failures, 0, "%s: every MetricName renders", label);
	is_int(n_ids, want_series, "%s: distinct ns-3 metricIDs = manifest series_count", label);
	is_int(n_names, want_series, "%s: distinct ns-3 names = manifest series_count", label);
	is_int(missing_names, 0, "%s: every ns-3 name is a manifest series key", label);
	is_int(n_data, want_series, "%s: distinct data-part metricIDs = series_count", label);
	is_int(missing_ids, 0, "%s: every data-part metricID has an ns-3 name", label);
	is_int(a->tenant_nonzero, 0, "%s: every tenant is 0:0", label);
	free(ids);
	free(names);
}

static void free_acc(struct node_acc *a)
{
	for (size_t i = 0; i < a->n_names; i++)
		free(a->names[i].name);
	free(a->names);
	free(a->data_ids);
}

static void test_min_ts_file(int nodefd, const char *label)
{
	size_t len = 0;
	char *buf = slurp(nodefd, "metadata/minTimestampForCompositeIndex", &len);
	int64_t ts = -1;

	ok(buf && vm_min_ts_composite_decode(buf, len, &ts, NULL) == 0 && ts == 0,
	   "%s: minTimestampForCompositeIndex decodes to 0", label);
	free(buf);
}

static void test_node(int setfd, const char *set, const char *node, bool cluster,
		      const cJSON *vol)
{
	struct node_acc a = { .cluster = cluster };
	char **parts = NULL, label[128];
	size_t n = 0, cap = 0;
	int nodefd = openat_dir(setfd, node);

	snprintf(label, sizeof(label), "%s/%s", set, node);
	if (!ok(nodefd >= 0 && vol, "%s: node dir and manifest entry exist", label))
		return;
	find_parts(nodefd, ".", &parts, &n, &cap);
	qsort(parts, n, sizeof(*parts), compare_strings);
	for (size_t i = 0; i < n; i++) {
		int partfd = openat_dir(nodefd, parts[i]);
		bool ms = partfd >= 0 && file_exists_at(partfd, "items.bin");

		if (partfd >= 0)
			close(partfd);
		if (ms)
			test_ms_part(nodefd, label, parts[i] + 2, &a);
		else
			test_data_part(nodefd, label, parts[i] + 2, &a);
		free(parts[i]);
	}
	free(parts);
	check_node(label, vol, &a);
	test_min_ts_file(nodefd, label);
	free_acc(&a);
	close(nodefd);
}

static void test_sample_set(int datafd, const char *set)
{
	int setfd = openat_dir(datafd, set);
	cJSON *m = setfd >= 0 ? load_json(setfd, "manifest.json") : NULL;
	const cJSON *vols = cJSON_GetObjectItemCaseSensitive(m, "volumes"), *mode, *vol;
	bool cluster;

	if (!ok(m && vols, "%s: manifest.json parses", set)) {
		if (setfd >= 0)
			close(setfd);
		return;
	}
	mode = cJSON_GetObjectItemCaseSensitive(m, "mode");
	cluster = cJSON_IsString(mode) && strcmp(mode->valuestring, "cluster") == 0;
	cJSON_ArrayForEach(vol, vols)
		test_node(setfd, set, vol->string, cluster, vol);
	cJSON_Delete(m);
	close(setfd);
}

/* ---- zstd and small codecs ---- */

static void test_zstd(void)
{
	char src[5000], *bad;
	void *z, *out;
	size_t zlen, olen;
	struct error err = { "" };

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)("abcdefgh"[i % 8] + (i % 97 == 0));
	for (int with_size = 0; with_size < 2; with_size++) {
		vm_zstd_compress(src, sizeof(src), with_size, &z, &zlen, NULL);
		is_int(ZSTD_getFrameContentSize(z, zlen) == ZSTD_CONTENTSIZE_UNKNOWN, !with_size,
		       "zstd: content size flag %d honoured", with_size);
		ok(vm_zstd_decompress(z, zlen, VM_ZSTD_MAX_OUT, "x", &out, &olen, NULL) == 0 &&
		   bytes_eq(out, olen, src, sizeof(src)), "zstd: round trip, content size %d",
		   with_size);
		free(out);
		is_int(vm_zstd_decompress(z, zlen, 100, "x.bin", &out, &olen, &err), -EFBIG,
		       "zstd: output over the cap is refused, content size %d", with_size);
		is_int(vm_zstd_decompress(z, zlen - 3, VM_ZSTD_MAX_OUT, "x.bin", &out, &olen, &err),
		       -EINVAL, "zstd: truncated frame refused, content size %d", with_size);
		ok(strncmp(err.message, "x.bin: ", 7) == 0, "zstd: error names the file: %s",
		   err.message);
		bad = xmalloc(zlen + 2);
		memcpy(bad, z, zlen);
		bad[zlen] = bad[zlen + 1] = 'x';
		is_int(vm_zstd_decompress(bad, zlen + 2, VM_ZSTD_MAX_OUT, "x", &out, &olen, NULL),
		       -EINVAL, "zstd: trailing bytes refused, content size %d", with_size);
		free(bad);
		free(z);
	}
	is_int(vm_zstd_decompress("garbage!", 8, VM_ZSTD_MAX_OUT, "g.bin", &out, &olen, &err),
	       -EINVAL, "zstd: garbage refused");
	ok(strstr(err.message, "g.bin") != NULL, "zstd: garbage error names the file: %s",
	   err.message);
	vm_zstd_compress("", 0, false, &z, &zlen, NULL);
	ok(vm_zstd_decompress(z, zlen, VM_ZSTD_MAX_OUT, "x", &out, &olen, NULL) == 0 && olen == 0,
	   "zstd: empty content without size decodes to 0 bytes");
	free(out);
	free(z);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_min_ts_codec(void)
{
	static const int64_t vals[] = { 0, 1, -1, 1705709046000, INT64_MAX, INT64_MIN };
	uint8_t b[8];
	int64_t got;
	bool all = true;

	vm_min_ts_composite_encode(1, b);
	ok(b[7] == 2 && b[0] == 0, "minTimestampForCompositeIndex: 1 is stored as 2");
	vm_min_ts_composite_encode(-1, b);
	ok(b[7] == 1, "minTimestampForCompositeIndex: -1 is stored as 1");
	vm_min_ts_composite_encode(86400000 * 2, b);
	ok(get_be32(b) == 0 && get_be32(b + 4) == 345600000,
	   "minTimestampForCompositeIndex: 2 days (172800000 ms) stored as 345600000 BE");
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		vm_min_ts_composite_encode(vals[i], b);
		all &= vm_min_ts_composite_decode(b, 8, &got, NULL) == 0 && got == vals[i];
	}
	ok(all, "minTimestampForCompositeIndex: encode/decode round trip");
	is_int(vm_min_ts_composite_decode(b, 7, &got, NULL), -EINVAL,
	       "minTimestampForCompositeIndex: 7 bytes refused");
}

static void test_metric_names(void)
{
	/* Stored order: job first, then the rest sorted (as vmstorage does). */
	static const uint8_t single[] = "\x03\x00\x00\x00\x00\x00\x00\x01\x02"
					"up\x01" "zone\x01" "z\x01" "job\x01" "n\x00" "1ode\x01"
					"q\x01" "a\"b\\c\n\x01";
	static const uint8_t cluster[] = "\x03\x00\x00\x00\x07\x00\x00\x00\x09"
					 "\x00\x00\x00\x00\x00\x00\x00\x2a"
					 "\x00\x00\x00\x07\x00\x00\x00\x09"
					 "m\x01";
	struct vm_metric_name_item mn;
	char *s = NULL;

	ok(vm_decode_metric_name_item(single, sizeof(single) - 1, false, &mn, NULL) == 0 &&
	   mn.metric_id == 0x102, "ns-3 single-node item decodes");
	ok(vm_metric_name_render(mn.name, mn.name_len, &s, NULL) == 0, "MetricName renders");
	is_str(s, "up{job=\"n\x01ode\",q=\"a\\\"b\\\\c\\n\",zone=\"z\"}",
	       "MetricName unescaped, labels sorted, values quoted");
	free(s);
	ok(vm_metric_name_selector(mn.name, mn.name_len, &s, NULL) == 0,
	   "MetricName renders as a selector");
	is_str(s, "{__name__=\"up\",job=\"n\x01ode\",q=\"a\\\"b\\\\c\\n\",zone=\"z\"}",
	       "selector: the name as __name__, the same labels and quoting");
	free(s);
	ok(vm_decode_metric_name_item(cluster, sizeof(cluster) - 1, true, &mn, NULL) == 0 &&
	   mn.account_id == 7 && mn.project_id == 9 && mn.metric_id == 42,
	   "ns-3 cluster item decodes with tenant 7:9");
	ok(vm_metric_name_render(mn.name, mn.name_len, &s, NULL) == 0, "bare name renders");
	is_str(s, "m", "a name without tags renders without braces");
	free(s);
	ok(vm_metric_name_selector(mn.name, mn.name_len, &s, NULL) == 0, "bare name selector");
	is_str(s, "{__name__=\"m\"}", "a name without tags is a __name__ selector");
	free(s);
	is_int(vm_metric_name_selector((const uint8_t *)"m\x01k\x01", 4, &s, NULL), -EINVAL,
	       "selector of a MetricName with a key but no value refused");
	is_int(vm_decode_metric_name_item(single, sizeof(single) - 1, true, &mn, NULL), -EINVAL,
	       "single-node item refused as cluster (tenants differ)");
	is_int(vm_metric_name_render((const uint8_t *)"m\x01k\x01", 4, &s, NULL), -EINVAL,
	       "MetricName with a key but no value refused");
	is_int(vm_metric_name_render((const uint8_t *)"m\x00x\x01", 4, &s, NULL), -EINVAL,
	       "MetricName with a bad escape refused");
}

/* ---- crafted corruption ---- */

static char *tmp_root;

static void copy_part(int srcfd, int dstfd)
{
	DIR *d = fdopendir(dup(srcfd));
	struct dirent *de;

	while ((de = readdir(d))) {
		size_t len = 0;
		char *buf;

		if (de->d_type != DT_REG)
			continue;
		buf = slurp(srcfd, de->d_name, &len);
		if (!buf || write_file_atomic(dstfd, de->d_name, buf, len) < 0)
			diag("cannot copy %s", de->d_name);
		free(buf);
	}
	closedir(d);
}

/* A fresh copy of a real part in tmp_root/name. */
static int scratch_part(const char *src_rel, const char *name)
{
	char *src = xasprintf("%s/tests/data/%s", top_srcdir, src_rel);
	char *dst = xasprintf("%s/%s", tmp_root, name);
	int srcfd = openat_dir(AT_FDCWD, src), dstfd;

	mkdir(dst, 0755);
	dstfd = openat_dir(AT_FDCWD, dst);
	copy_part(srcfd, dstfd);
	close(srcfd);
	free(src);
	free(dst);
	return dstfd;
}

static off_t file_size_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, 0) == 0 ? st.st_size : -1;
}

static void truncate_at(int dirfd, const char *name, off_t cut)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	if (ftruncate(fd, file_size_at(dirfd, name) - cut) < 0)
		diag("ftruncate %s: %s", name, strerror(errno));
	close(fd);
}

static void poke(int dirfd, const char *name, off_t off, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	if (pwrite(fd, data, len, off) != (ssize_t)len)
		diag("pwrite %s: %s", name, strerror(errno));
	close(fd);
}

/* Expects vm_data_part_check to fail with a message holding want1 and want2. */
static void expect_data_error(int partfd, const struct vm_data_expect *e, const char *what,
			      const char *want1, const char *want2)
{
	struct error err = { "" };
	int rc = vm_data_part_check(partfd, true, e, NULL, NULL, NULL, &err);

	ok(rc < 0 && strncmp(err.message, want1, strlen(want1)) == 0 &&
	   strstr(err.message, want2), "corrupt data part (%s): %s", what, err.message);
}

/* Rewrites metaindex.bin with row 0's IndexBlockOffset moved by delta. */
static void shift_metaindex_offset(int partfd, uint64_t delta)
{
	size_t len = 0, mlen, zlen;
	char *raw = slurp(partfd, "metaindex.bin", &len);
	uint8_t *m;
	void *z;
	uint64_t off = 0;

	if (!raw || vm_zstd_decompress(raw, len, VM_ZSTD_MAX_OUT, "m", (void **)&m, &mlen,
				       NULL) < 0 || mlen < 64) {
		diag("cannot rewrite metaindex.bin");
		free(raw);
		return;
	}
	for (int i = 0; i < 8; i++)
		off = off << 8 | m[32 + 20 + i];
	off += delta;
	for (int i = 0; i < 8; i++)
		m[32 + 20 + i] = (uint8_t)(off >> (56 - 8 * i));
	vm_zstd_compress(m, mlen, false, &z, &zlen, NULL);
	write_file_atomic(partfd, "metaindex.bin", z, zlen);
	free(z);
	free(m);
	free(raw);
}

static void test_data_corruption(void)
{
	static const char *src = "v1.96.0-cluster/node0/data/small/2024_02/18EB73E04F4C5CB3";
	struct vm_data_expect e;
	struct error err = { "" };
	int fd = scratch_part(src, "d0");

	ok(data_expect(fd, "18EB73E04F4C5CB3", &e) &&
	   vm_data_part_check(fd, true, &e, NULL, NULL, NULL, &err) == 0,
	   "scratch copy of a real data part is valid: %s", err.message);
	e.rows++;
	expect_data_error(fd, &e, "RowsCount off by one", "index.bin: ", "RowsCount");
	e.rows--;
	e.max_ts -= 1000000;
	expect_data_error(fd, &e, "MaxTimestamp too small", "index.bin: ", "outside the part");
	e.max_ts += 1000000;
	close(fd);

	fd = scratch_part(src, "d1");
	truncate_at(fd, "index.bin", 10);
	expect_data_error(fd, &e, "truncated index.bin", "index.bin: ", "past end of file");
	close(fd);

	fd = scratch_part(src, "d2");
	poke(fd, "index.bin", 0, "JUNK", 4);
	expect_data_error(fd, &e, "bad zstd frame in index.bin", "index.bin: block at offset 0",
			  "zstd");
	close(fd);

	fd = scratch_part(src, "d3");
	truncate_at(fd, "values.bin", 1);
	expect_data_error(fd, &e, "truncated values.bin", "values.bin: ", "past end of file");
	close(fd);

	fd = scratch_part(src, "d4");
	shift_metaindex_offset(fd, 1000000);
	expect_data_error(fd, &e, "index block offset past end", "index.bin: block at offset ",
			  "past end of file");
	close(fd);

	fd = scratch_part(src, "d5");
	poke(fd, "metaindex.bin", 0, "JUNK", 4);
	expect_data_error(fd, &e, "bad metaindex.bin", "metaindex.bin: ", "zstd");
	close(fd);
}

/* Scans the part; returns the error (0 on success). */
static int scan_all(int partfd, const struct vm_mergeset_expect *e, uint64_t *n,
		    struct error *err)
{
	struct vm_mergeset_iter *it;
	const uint8_t *item;
	size_t len;
	int rc = vm_mergeset_open(partfd, e, &it, err);

	*n = 0;
	if (rc < 0)
		return rc;
	while ((rc = vm_mergeset_next(it, &item, &len, err)) == 1)
		(*n)++;
	vm_mergeset_close(it);
	return rc;
}

static void expect_ms_error(int partfd, const struct vm_mergeset_expect *e, const char *what,
			    const char *want1, const char *want2)
{
	struct error err = { "" };
	uint64_t n;
	int rc = scan_all(partfd, e, &n, &err);

	ok(rc < 0 && strncmp(err.message, want1, strlen(want1)) == 0 &&
	   strstr(err.message, want2), "corrupt mergeset part (%s): %s", what, err.message);
}

/* After a failure, next and seek must keep failing, never report "end". */
static void expect_sticky_failure(int partfd)
{
	struct vm_mergeset_iter *it;
	const uint8_t *item;
	size_t len;
	int rc;

	if (vm_mergeset_open(partfd, NULL, &it, NULL) < 0)
		return;
	while ((rc = vm_mergeset_next(it, &item, &len, NULL)) == 1)
		;
	ok(rc < 0 && vm_mergeset_next(it, &item, &len, NULL) < 0 &&
	   vm_mergeset_seek(it, "\x03", 1, NULL) < 0 &&
	   vm_mergeset_next(it, &item, &len, NULL) < 0,
	   "corrupt mergeset part: the iterator keeps failing after an error");
	vm_mergeset_close(it);
}

static void test_ms_corruption(void)
{
	static const char *src = "v1.96.0-cluster/node0/indexdb/18EB73E0114CE9DD/18EB73E014CA3C1C";
	struct ms_header h = { 0 };
	struct vm_mergeset_expect e;
	struct error err = { "" };
	uint64_t n;
	int fd = scratch_part(src, "m0");

	ok(ms_expect(fd, "18EB73E014CA3C1C", &h) && scan_all(fd, &h.e, &n, &err) == 0,
	   "scratch copy of a real mergeset part is valid: %s", err.message);
	free(h.first);
	free(h.last);
	e = h.e;
	e.items++;
	expect_ms_error(fd, &e, "ItemsCount off by one", "index.bin: ", "ItemsCount");
	e = h.e;
	e.blocks--;
	expect_ms_error(fd, &e, "BlocksCount off by one", "index.bin: ", "BlocksCount");
	close(fd);

	fd = scratch_part(src, "m1");
	truncate_at(fd, "items.bin", 100);
	expect_ms_error(fd, &h.e, "truncated items.bin", "items.bin: ", "past end of file");
	expect_sticky_failure(fd);
	close(fd);

	fd = scratch_part(src, "m2");
	poke(fd, "lens.bin", 0, "JUNK", 4);
	expect_ms_error(fd, &h.e, "bad zstd frame in lens.bin", "lens.bin: block at offset 0",
			"zstd");
	close(fd);

	fd = scratch_part(src, "m3");
	truncate_at(fd, "index.bin", 1);
	expect_ms_error(fd, &h.e, "truncated index.bin", "index.bin: ", "past end of file");
	close(fd);

	fd = scratch_part(src, "m4");
	poke(fd, "items.bin", 0, "JUNK", 4);
	expect_ms_error(fd, &h.e, "bad first items block", "items.bin: block at offset 0", "");
	close(fd);
}

/* ---- the test-only writer ---- */

struct item_list {
	struct vm_item *v;
	size_t n, cap;
	char **bufs;
	size_t nbufs, capbufs;
};

static void add_item(struct item_list *l, const void *data, size_t len)
{
	char *copy = xmalloc(len + 1);

	memcpy(copy, data, len);
	*ARRAY_PUSH(l->bufs, l->nbufs, l->capbufs) = copy;
	*ARRAY_PUSH(l->v, l->n, l->cap) = (struct vm_item){ copy, len };
}

static int cmp_item(const void *a, const void *b)
{
	const struct vm_item *x = a, *y = b;
	int c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void free_items(struct item_list *l)
{
	for (size_t i = 0; i < l->nbufs; i++)
		free(l->bufs[i]);
	free(l->bufs);
	free(l->v);
}

/* Synthetic indexdb-like items: several namespaces, shared prefixes,
 * duplicates, a byte 0x00 and a lone namespace byte. */
static void synth_items(struct item_list *l)
{
	uint8_t b[128];

	add_item(l, "\x03", 1);
	for (unsigned i = 0; i < 3000; i++) {
		int n;

		b[0] = (uint8_t)(i % 4 + 1);
		for (int k = 0; k < 8; k++)
			b[1 + k] = (uint8_t)((uint64_t)(i * 2654435761u) >> (56 - 8 * k));
		n = snprintf((char *)b + 9, sizeof(b) - 9, "metric_%u\x01job\x01j%u\x01", i % 37,
			     i % 5);
		add_item(l, b, 9 + (size_t)n);
		if (i % 500 == 0)
			add_item(l, b, 9 + (size_t)n);
	}
	add_item(l, "\x05\x00zero", 6);
	qsort(l->v, l->n, sizeof(*l->v), cmp_item);
}

static bool read_back_equal(int partfd, const struct item_list *l, struct vm_mergeset_stats *st,
			    struct error *err)
{
	struct ms_header h = { 0 };
	struct vm_mergeset_iter *it;
	const uint8_t *item;
	size_t len, i = 0;
	bool same;
	int rc;

	if (!ms_expect(partfd, "0000000000000000", &h))
		return false;
	same = bytes_eq(h.first, h.first_len, l->v[0].data, l->v[0].len) &&
	       bytes_eq(h.last, h.last_len, l->v[l->n - 1].data, l->v[l->n - 1].len) &&
	       h.e.items == l->n;
	free(h.first);
	free(h.last);
	rc = vm_mergeset_open(partfd, &h.e, &it, err);
	if (rc < 0)
		return false;
	while ((rc = vm_mergeset_next(it, &item, &len, err)) == 1) {
		same &= i < l->n && bytes_eq(item, len, l->v[i].data, l->v[i].len);
		i++;
	}
	vm_mergeset_get_stats(it, st);
	vm_mergeset_close(it);
	return rc == 0 && same && i == l->n;
}

/* Every seek must land on the first item >= key. */
/* Seeks it to item i of l (variant 1: just above it) and checks that the
 * next item is the first one >= the key. */
static bool seek_lands(struct vm_mergeset_iter *it, const struct item_list *l, size_t i,
		       int variant)
{
	struct vm_item key = i < l->n ? l->v[i] : (struct vm_item){ "\xff", 1 };
	uint8_t tweaked[256];
	const uint8_t *item;
	size_t j = 0, klen = key.len, len;

	memcpy(tweaked, key.data, klen);
	if (variant)
		tweaked[klen++] = 0;
	while (j < l->n && cmp_item(&l->v[j], &(struct vm_item){ tweaked, klen }) < 0)
		j++;
	if (vm_mergeset_seek(it, tweaked, klen, NULL) < 0)
		return false;
	return vm_mergeset_next(it, &item, &len, NULL) == (j < l->n) &&
	       (j == l->n || bytes_eq(item, len, l->v[j].data, l->v[j].len));
}

/* Forward, then backward: the files are read ahead, and a seek back must
 * not be served from a window that no longer holds its blocks. */
static void test_seeks(int partfd, const struct item_list *l, const char *what)
{
	struct vm_mergeset_iter *it;
	unsigned bad = 0, tried = 0;

	if (vm_mergeset_open(partfd, NULL, &it, NULL) < 0)
		return;
	for (size_t i = 0; i <= l->n; i += 37) {
		bad += !seek_lands(it, l, i, 0) + !seek_lands(it, l, i, 1);
		tried += 2;
	}
	for (size_t i = l->n / 41 * 41;; i -= 41) {
		bad += !seek_lands(it, l, i, 1);
		tried++;
		if (i == 0)
			break;
	}
	vm_mergeset_close(it);
	ok(bad == 0, "writer (%s): %u seeks land on the first item >= key", what, tried);
}

static void test_writer_variant(const struct item_list *l, const char *name,
				const struct vm_mergeset_write_opts *o, bool want_zstd)
{
	char *dir = xasprintf("%s/%s", tmp_root, name);
	struct vm_mergeset_stats st = { 0 };
	struct error err = { "" };
	bool same;
	int fd;

	mkdir(dir, 0755);
	fd = openat_dir(AT_FDCWD, dir);
	ok(vm_mergeset_write_part(fd, l->v, l->n, o, &err) == 0, "writer (%s): writes %zu items",
	   name, l->n);
	same = read_back_equal(fd, l, &st, &err);
	ok(same, "writer (%s): reads back equal: %" PRIu64 " blocks (%" PRIu64 " plain, %"
	   PRIu64 " zstd), %" PRIu64 " index blocks %s", name, st.blocks, st.plain_blocks,
	   st.zstd_blocks, st.index_blocks, err.message);
	/* Only single-item blocks stay plain under zstd, as in vmstorage. */
	ok(want_zstd ? st.zstd_blocks > 0 && st.plain_blocks == 0 : st.zstd_blocks == 0,
	   "writer (%s): marshal types as asked", name);
	ok(o->max_index_block_bytes ? st.index_blocks > 5 : st.index_blocks == 1,
	   "writer (%s): index blocks split as asked", name);
	is_int(frame_has_size(fd, "metaindex.bin"), o->content_size,
	       "writer (%s): frame content size as asked", name);
	test_seeks(fd, l, name);
	close(fd);
	free(dir);
}

static void test_writer(void)
{
	struct item_list l = { 0 };
	struct vm_mergeset_write_opts plain = { 0 };
	struct vm_mergeset_write_opts zstd = { .zstd = true };
	struct vm_mergeset_write_opts small = {
		.zstd = true, .content_size = true, .max_block_bytes = 700,
		.max_index_block_bytes = 900,
	};
	struct vm_mergeset_write_opts small_plain = {
		.max_block_bytes = 300, .max_index_block_bytes = 400,
	};
	struct error err = { "" };

	synth_items(&l);
	test_writer_variant(&l, "w-plain", &plain, false);
	test_writer_variant(&l, "w-zstd", &zstd, true);
	test_writer_variant(&l, "w-zstd-small", &small, true);
	test_writer_variant(&l, "w-plain-small", &small_plain, false);
	is_int(vm_mergeset_write_part(AT_FDCWD, l.v, 0, &plain, &err), -EINVAL,
	       "writer refuses zero items");
	free_items(&l);
}

/* Real items in, real items out: a v1.79.5 part rewritten by the writer. */
static void test_writer_real(void)
{
	char *src = xasprintf("%s/tests/data/v1.79.5/node2/indexdb/18EB73DE8A49046C/"
			      "9548_11_18EB73DE8DA0DE20", top_srcdir);
	struct vm_mergeset_write_opts o = { .zstd = true, .max_block_bytes = 4096 };
	struct item_list l = { 0 };
	struct vm_mergeset_iter *it;
	struct vm_mergeset_stats st = { 0 };
	struct error err = { "" };
	const uint8_t *item;
	size_t len;
	bool same;
	int srcfd = openat_dir(AT_FDCWD, src), fd;
	char *dir = xasprintf("%s/w-real", tmp_root);

	if (!ok(srcfd >= 0 && vm_mergeset_open(srcfd, NULL, &it, &err) == 0,
		"real part opens for the writer round trip: %s", err.message))
		return;
	while (vm_mergeset_next(it, &item, &len, &err) == 1)
		add_item(&l, item, len);
	vm_mergeset_close(it);
	mkdir(dir, 0755);
	fd = openat_dir(AT_FDCWD, dir);
	same = l.n == 9548 && vm_mergeset_write_part(fd, l.v, l.n, &o, &err) == 0 &&
	       read_back_equal(fd, &l, &st, &err);
	ok(same, "writer: %zu real v1.79.5 items rewritten and read back equal (%" PRIu64
	   " blocks) %s", l.n, st.blocks, err.message);
	close(fd);
	close(srcfd);
	free(dir);
	free(src);
	free_items(&l);
}

int main(void)
{
	static const char *sets[] = { "v1.79.5", "v1.96.0-cluster", "v1.150.0-cluster" };
	char *data;
	int datafd;

	top_srcdir = getenv("top_srcdir");
	if (!top_srcdir || !*top_srcdir)
		top_srcdir = ".";
	tmp_root = xasprintf("/tmp/vmformat-t.XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}

	test_zstd();
	test_min_ts_codec();
	test_metric_names();

	data = xasprintf("%s/tests/data", top_srcdir);
	datafd = openat_dir(AT_FDCWD, data);
	if (ok(datafd >= 0, "sample data found at %s", data)) {
		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
			test_sample_set(datafd, sets[i]);
		close(datafd);
		test_data_corruption();
		test_ms_corruption();
		test_writer_real();
	}
	free(data);
	test_writer();

	remove_tree_at(AT_FDCWD, tmp_root);
	free(tmp_root);
	return done_testing();
}
