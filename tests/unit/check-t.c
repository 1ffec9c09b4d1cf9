/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion check: the real sample volumes check clean with the counts their
 * manifests promise; crafted corruption in temp copies is found and named by
 * file; metricID collisions built with vm_mergeset_write_part are reported
 * (and steer plan --targets). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "crafted.h"
#include "plan.h"
#include "plan_targets.h"
#include "tap.h"

static const char *top_srcdir;
static char scratch[] = "/tmp/vmunion-check-t.XXXXXX";

/* ---- running the check ---- */

struct checked {
	struct volume volumes[8];
	size_t count;
	struct plan plan;
	struct check_report report;
	struct error err;
	int rc;
};

enum mode { CHEAP, COLLISIONS, DEEP };

static int run_check(struct checked *c, enum mode mode, unsigned jobs, char **paths, size_t n)
{
	struct check_options opts = { .deep = mode == DEEP, .collisions = mode != CHEAP,
				      .jobs = jobs };

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		if (volume_open(&c->volumes[i], paths[i], &c->err) < 0) {
			diag("cannot open: %s", c->err.message);
			while (i-- > 0)
				volume_close(&c->volumes[i]);
			return c->rc = -1;
		}
		c->count++;
	}
	plan_build(&c->plan, c->volumes, c->count, NULL);
	strcpy(c->err.message, "");
	c->rc = check_run(&c->plan, &opts, &c->report, &c->err);
	return c->rc;
}

static void checked_free(struct checked *c)
{
	check_report_free(&c->report);
	plan_free(&c->plan);
	for (size_t i = 0; i < c->count; i++)
		volume_close(&c->volumes[i]);
}

/* A finding of that severity whose path ends with path_suffix (NULL: any,
 * "": none) and whose message holds text. */
static const struct check_finding *find(const struct check_report *r, enum check_severity sev,
					const char *path_suffix, const char *text)
{
	for (size_t i = 0; i < r->finding_count; i++) {
		const struct check_finding *f = &r->findings[i];

		if (f->severity != sev || !strstr(f->message, text))
			continue;
		if (path_suffix && *path_suffix && (!f->path || !has_suffix(f->path, path_suffix)))
			continue;
		if (path_suffix && !*path_suffix && f->path)
			continue;
		return f;
	}
	return NULL;
}

static void dump_findings(const struct check_report *r)
{
	for (size_t i = 0; i < r->finding_count; i++)
		diag("  %s [%d] %s: %s", check_severity_name(r->findings[i].severity),
		     r->findings[i].volume, r->findings[i].path ? r->findings[i].path : "-",
		     r->findings[i].message);
}

/* ---- files ---- */

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	if (read_file_at(AT_FDCWD, path, 64 << 20, &buf, len) < 0)
		return NULL;
	return buf;
}

static cJSON *load_json(const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	cJSON *json = text ? cJSON_ParseWithLength(text, len) : NULL;

	free(text);
	return json;
}

static void save_json(const char *path, cJSON *json)
{
	char *text = cJSON_PrintUnformatted(json);

	if (write_file_atomic(AT_FDCWD, path, text, strlen(text)) < 0)
		diag("cannot write %s", path);
	cJSON_free(text);
}

/* Sets a number in a metadata.json. */
static void edit_metadata(const char *path, const char *key, double value)
{
	cJSON *json = load_json(path);

	if (!json) {
		diag("cannot parse %s", path);
		return;
	}
	cJSON_ReplaceItemInObjectCaseSensitive(json, key, cJSON_CreateNumber(value));
	save_json(path, json);
	cJSON_Delete(json);
}

static double metadata_number(const char *path, const char *key)
{
	cJSON *json = load_json(path);
	double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(json, key));

	cJSON_Delete(json);
	return v;
}

static void truncate_by(const char *path, off_t cut)
{
	struct stat st;

	if (stat(path, &st) < 0 || truncate(path, st.st_size - cut) < 0)
		diag("truncate %s: %s", path, strerror(errno));
}

static void poke(const char *path, off_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || pwrite(fd, data, len, off) != (ssize_t)len)
		diag("pwrite %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		diag("command failed (%d): %s", rc, cmd);
	free(cmd);
	return rc;
}

/* A fresh writable copy of a fixture node below scratch. */
static char *copy_node(const char *set, const char *node, const char *as)
{
	char *dst = xasprintf("%s/%s", scratch, as);

	run_cmd("rm -rf '%s' && cp -a '%s/tests/data/%s/%s' '%s' && chmod -R u+w '%s'", dst,
		top_srcdir, set, node, dst, dst);
	return dst;
}

/* Rewrites metaindex.bin of a cluster data part with row 0's
 * IndexBlockOffset moved by delta. */
static void shift_metaindex_offset(const char *part, uint64_t delta)
{
	char *path = xasprintf("%s/metaindex.bin", part);
	size_t len = 0, mlen, zlen;
	char *raw = slurp(path, &len);
	uint8_t *m = NULL;
	void *z;
	uint64_t off = 0;

	if (!raw || vm_zstd_decompress(raw, len, VM_ZSTD_MAX_OUT, "m", (void **)&m, &mlen,
				       NULL) < 0 || mlen < 64) {
		diag("cannot rewrite %s", path);
	} else {
		for (int i = 0; i < 8; i++)
			off = off << 8 | m[32 + 20 + i];
		off += delta;
		for (int i = 0; i < 8; i++)
			m[32 + 20 + i] = (uint8_t)(off >> (56 - 8 * i));
		vm_zstd_compress(m, mlen, false, &z, &zlen, NULL);
		write_file_atomic(AT_FDCWD, path, z, zlen);
		free(z);
	}
	free(m);
	free(raw);
	free(path);
}

/* ---- the real sample volumes ---- */

struct expected {
	size_t data_parts, index_parts;
	uint64_t rows, series;
};

/* What the manifest says of one node: its part dirs (from disk_layout, not
 * from the plan), sample_count and series_count. */
static void manifest_node(const cJSON *vol, struct expected *e)
{
	const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(vol, "disk_layout"), "dirs");
	const cJSON *d;

	memset(e, 0, sizeof(*e));
	e->rows = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(vol,
										  "sample_count"));
	e->series = (uint64_t)cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(vol, "series_count"));
	cJSON_ArrayForEach(d, dirs) {
		const char *p = d->valuestring, *last = strrchr(p, '/');
		size_t slashes = 0;

		for (const char *q = p; *q; q++)
			slashes += *q == '/';
		if (!last || strcmp(last + 1, "txn") == 0 || strcmp(last + 1, "tmp") == 0 ||
		    strcmp(last + 1, "snapshots") == 0 || strstr(p, "snapshots/"))
			continue;
		if (slashes == 3 && (strncmp(p, "data/small/", 11) == 0 ||
				     strncmp(p, "data/big/", 9) == 0))
			e->data_parts++;
		else if ((slashes == 3 && strncmp(p, "data/indexdb/", 13) == 0) ||
			 (slashes == 2 && strncmp(p, "indexdb/", 8) == 0))
			e->index_parts++;
	}
}

static void test_sample_set(const char *set)
{
	static const struct {
		enum mode mode;
		unsigned jobs;
		const char *name;
	} modes[] = {
		{ CHEAP, 0, "cheap" },
		{ COLLISIONS, 0, "collisions" },
		{ DEEP, 1, "deep, 1 job" },
		{ DEEP, 3, "deep, 3 jobs" },
	};
	char *manifest_path = xasprintf("%s/tests/data/%s/manifest.json", top_srcdir, set);
	cJSON *manifest = load_json(manifest_path);
	const cJSON *vols = cJSON_GetObjectItemCaseSensitive(manifest, "volumes");
	char *paths[4];
	struct expected e[4];

	if (!ok(manifest && cJSON_GetArraySize(vols) == 4, "%s: manifest with 4 nodes", set)) {
		cJSON_Delete(manifest);
		free(manifest_path);
		return;
	}
	for (int i = 0; i < 4; i++) {
		char node[16];

		snprintf(node, sizeof(node), "node%d", i);
		paths[i] = xasprintf("%s/tests/data/%s/%s", top_srcdir, set, node);
		manifest_node(cJSON_GetObjectItemCaseSensitive(vols, node), &e[i]);
	}
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct checked c;
		size_t parts = 0, ok_volumes = 0;
		uint64_t series = 0;

		run_check(&c, modes[m].mode, modes[m].jobs, paths, 4);
		if (!ok(c.rc == 0 && c.report.finding_count == 0 &&
				check_exit_status(&c.report) == 0,
			"%s (%s): clean, exit status 0 (%s)", set, modes[m].name, c.err.message))
			dump_findings(&c.report);
		for (int v = 0; v < 4; v++) {
			const struct check_volume *cv = &c.report.volumes[v];

			parts += cv->data_parts + cv->index_parts;
			series += cv->series;
			ok_volumes += cv->data_parts == e[v].data_parts &&
				      cv->index_parts == e[v].index_parts && cv->rows == e[v].rows &&
				      cv->series == (modes[m].mode == CHEAP ? 0 : e[v].series);
			if (cv->data_parts != e[v].data_parts || cv->index_parts != e[v].index_parts ||
			    cv->rows != e[v].rows)
				diag("node%d: %zu/%zu data parts, %zu/%zu indexdb parts, rows %" PRIu64
				     "/%" PRIu64 ", series %" PRIu64 "/%" PRIu64,
				     v, cv->data_parts, e[v].data_parts, cv->index_parts,
				     e[v].index_parts, cv->rows, e[v].rows, cv->series, e[v].series);
		}
		is_int(ok_volumes, 4, "%s (%s): every node: parts checked = part dirs in the "
		       "manifest, rows = sample_count%s (%zu parts, %" PRIu64 " series)", set,
		       modes[m].name, modes[m].mode == CHEAP ? "" : ", series = series_count",
		       parts, series);
		if (modes[m].mode != CHEAP)
			ok(c.report.collision_total == 0 && c.report.shared_series == 0,
			   "%s (%s): no collision, no series on two nodes", set, modes[m].name);
		if (modes[m].mode == DEEP)
			ok(c.report.bytes_decoded > 0 && c.report.volumes[0].cluster_known &&
				   c.report.volumes[0].cluster == (strstr(set, "cluster") != NULL),
			   "%s (%s): decoded %" PRIu64 " bytes; layout detected", set,
			   modes[m].name, c.report.bytes_decoded);
		checked_free(&c);
	}
	for (int i = 0; i < 4; i++)
		free(paths[i]);
	cJSON_Delete(manifest);
	free(manifest_path);
}

/* ---- crafted corruption in temp copies ---- */

#define SET150 "v1.150.0-cluster"
#define DATA150 "data/small/2024_01/18EB741E3E871676"
#define INDEX150 "data/indexdb/2024_01/18EB741E3E83D2EB"

typedef void (*mutate_fn)(const char *part, const char *volume);

static void do_truncate_index(const char *part, const char *volume)
{
	char *p = xasprintf("%s/index.bin", part);

	truncate_by(p, 10);
	free(p);
}

static void do_bad_zstd(const char *part, const char *volume)
{
	char *p = xasprintf("%s/index.bin", part);

	poke(p, 0, "JUNK", 4);
	free(p);
}

static void do_bad_zstd_metaindex(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metaindex.bin", part);

	poke(p, 0, "JUNK", 4);
	free(p);
}

static void do_truncate_values(const char *part, const char *volume)
{
	char *p = xasprintf("%s/values.bin", part);

	truncate_by(p, 1);
	free(p);
}

static void do_shift_offset(const char *part, const char *volume)
{
	shift_metaindex_offset(part, 1000000);
}

static void do_rows_plus_one(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metadata.json", part);

	edit_metadata(p, "RowsCount", metadata_number(p, "RowsCount") + 1);
	free(p);
}

static void do_max_ts_earlier(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metadata.json", part);

	edit_metadata(p, "MaxTimestamp", metadata_number(p, "MaxTimestamp") - 86400000);
	free(p);
}

static void do_items_plus_one(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metadata.json", part);

	edit_metadata(p, "ItemsCount", metadata_number(p, "ItemsCount") + 1);
	free(p);
}

static void do_remove_values(const char *part, const char *volume)
{
	char *p = xasprintf("%s/values.bin", part);

	unlink(p);
	free(p);
}

static void do_empty_index(const char *part, const char *volume)
{
	char *p = xasprintf("%s/index.bin", part);

	if (truncate(p, 0) < 0)
		diag("truncate: %s", strerror(errno));
	free(p);
}

static void do_garbage_metadata(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metadata.json", part);

	write_file_atomic(AT_FDCWD, p, "{\"RowsCount\":", 13);
	free(p);
}

static void do_zero_rows(const char *part, const char *volume)
{
	char *p = xasprintf("%s/metadata.json", part);

	edit_metadata(p, "RowsCount", 0);
	free(p);
}

static void do_remove_part(const char *part, const char *volume)
{
	run_cmd("rm -rf '%s'", part);
}

/* An unlisted copy of a live part: what an interrupted merge leaves. */
static void do_unlisted_copy(const char *part, const char *volume)
{
	run_cmd("cp -a '%s' '%s/data/small/2024_01/18EB741E3E870000'", part, volume);
}

struct corruption {
	const char *what;
	const char *part; /* below the volume */
	mutate_fn mutate;
	enum mode mode;
	enum check_severity severity;
	const char *path_suffix;
	const char *text;
	int status;
	bool cheap_misses; /* only decoding finds it */
};

static const struct corruption corruptions[] = {
	{ "truncated index.bin", DATA150, do_truncate_index, DEEP, CHECK_ERROR,
	  DATA150 "/index.bin", "past end of file", 2, true },
	{ "bad zstd frame in index.bin", DATA150, do_bad_zstd, DEEP, CHECK_ERROR,
	  DATA150 "/index.bin", "bad zstd frame", 2, true },
	{ "bad zstd frame in an indexdb metaindex.bin", INDEX150, do_bad_zstd_metaindex,
	  COLLISIONS, CHECK_ERROR, INDEX150 "/metaindex.bin", "zstd", 2, true },
	{ "values.bin shorter than a block needs", DATA150, do_truncate_values, DEEP,
	  CHECK_ERROR, DATA150 "/values.bin", "past end of file", 2, true },
	{ "index block offset past the end of index.bin", DATA150, do_shift_offset, DEEP,
	  CHECK_ERROR, DATA150 "/index.bin", "past end of file", 2, true },
	{ "RowsCount disagrees with the blocks", DATA150, do_rows_plus_one, DEEP, CHECK_ERROR,
	  DATA150 "/metadata.json", "disagrees with the blocks", 2, true },
	{ "MaxTimestamp below the blocks' timestamps", DATA150, do_max_ts_earlier, DEEP,
	  CHECK_ERROR, DATA150 "/metadata.json", "blocks hold timestamps", 2, true },
	{ "ItemsCount disagrees with the indexdb blocks", INDEX150, do_items_plus_one, DEEP,
	  CHECK_ERROR, INDEX150 "/metadata.json", "disagrees with the blocks", 2, true },
	{ "listed part missing", "data/small/2024_02/18EB741E3EE82F9D", do_remove_part, CHEAP,
	  CHECK_ERROR, "", "data/small/2024_02/parts.json lists part 18EB741E3EE82F9D, which is "
	  "missing", 2, false },
	{ "values.bin missing", DATA150, do_remove_values, CHEAP, CHECK_ERROR,
	  DATA150 "/values.bin", "missing", 2, false },
	{ "empty index.bin", DATA150, do_empty_index, CHEAP, CHECK_ERROR, DATA150 "/index.bin",
	  "empty file", 2, false },
	{ "metadata.json not JSON", DATA150, do_garbage_metadata, CHEAP, CHECK_ERROR,
	  DATA150 "/metadata.json", "not a valid part header", 2, false },
	{ "RowsCount 0", DATA150, do_zero_rows, CHEAP, CHECK_ERROR, DATA150 "/metadata.json",
	  "a part needs rows", 2, false },
	{ "unlisted part dir (garbage)", DATA150, do_unlisted_copy, CHEAP, CHECK_WARNING,
	  "data/small/2024_01/18EB741E3E870000", "not listed in parts.json", 1, false },
};

static void test_corruption(const struct corruption *k, int n)
{
	char name[16];
	char *volume, *part, *paths[2];
	struct checked c;
	const struct check_finding *f;

	snprintf(name, sizeof(name), "c%d", n);
	volume = copy_node(SET150, "node0", name);
	part = xasprintf("%s/%s", volume, k->part);
	k->mutate(part, volume);
	paths[0] = volume;
	paths[1] = xasprintf("%s/tests/data/%s/node1", top_srcdir, SET150);

	run_check(&c, k->mode, 0, paths, 2);
	f = find(&c.report, k->severity, k->path_suffix, k->text);
	if (!ok(f && f->volume == 0 && check_exit_status(&c.report) == k->status &&
			(k->status == 2) == (c.rc < 0),
		"%s: %s finding%s%s: %s", k->what, check_severity_name(k->severity),
		*k->path_suffix ? " on " : "", k->path_suffix, f ? f->message : "(none)"))
		dump_findings(&c.report);
	if (k->status == 2)
		ok(c.rc == -EINVAL && strstr(c.err.message, volume),
		   "%s: check_run refuses, naming the volume: %s", k->what, c.err.message);
	ok(c.report.volumes[1].errors == 0 && c.report.volumes[1].warnings == 0,
	   "%s: the intact volume has no finding", k->what);
	checked_free(&c);
	if (k->cheap_misses) {
		/* What the mount's gate would not see without its collision scan
		 * or --deep: documents the cost/benefit of the levels. */
		run_check(&c, CHEAP, 0, paths, 2);
		ok(c.rc == 0, "%s: not visible to the cheap checks alone", k->what);
		checked_free(&c);
	}
	free(paths[1]);
	free(part);
	free(volume);
}

/* Gen A: the name of an indexdb part repeats ItemsCount and BlocksCount. */
static void test_gen_a_name(void)
{
	char *volume = copy_node("v1.79.5", "node0", "gena");
	const char *rel = "indexdb/18EB73DE89BB1CCD/48389_102_18EB73DE8D3D38F2";
	char *meta = xasprintf("%s/%s/metadata.json", volume, rel);
	struct checked c;

	edit_metadata(meta, "ItemsCount", 48390);
	run_check(&c, CHEAP, 0, &volume, 1);
	ok(c.rc < 0 && find(&c.report, CHECK_ERROR, "48389_102_18EB73DE8D3D38F2/metadata.json",
			    "disagrees with the part name"),
	   "gen A: metadata.json disagreeing with the part name is an error");
	checked_free(&c);
	free(meta);
	free(volume);
}

/* ---- metricID collisions ---- */

static char *set_dir(const char *name, bool cluster, size_t n, size_t collide)
{
	char *dir = xasprintf("%s/%s", scratch, name);
	struct error err = { "" };

	mkdir(dir, 0755);
	if (crafted_collision_set(dir, cluster, n, collide, &err) < 0)
		diag("crafted set: %s", err.message);
	return dir;
}

static void test_collisions(bool cluster)
{
	const char *layout = cluster ? "cluster" : "single-node";
	char *dir = set_dir(cluster ? "col-c" : "col-s", cluster, 40, 3);
	char *paths[3], id[32];
	struct checked c;
	const struct check_collision *col;
	char *json;
	cJSON *doc;

	for (int v = 0; v < 3; v++)
		paths[v] = xasprintf("%s/vol%d", dir, v);
	snprintf(id, sizeof(id), "%" PRIu64, (uint64_t)0x18EB000000000000ULL);

	for (int mode = COLLISIONS; mode <= DEEP; mode++) {
		const char *m = mode == DEEP ? "deep" : "collisions";

		run_check(&c, (enum mode)mode, 0, paths, 3);
		col = c.report.collision_count ? &c.report.collisions[0] : NULL;
		ok(c.rc == -EINVAL && c.report.collision_total == 3 && c.report.errors == 3 &&
			   check_exit_status(&c.report) == 2,
		   "%s (%s): 3 colliding metricIDs, 3 errors, exit status 2", layout, m);
		ok(strstr(c.err.message, id) && strstr(c.err.message, "vol0") &&
			   strstr(c.err.message, "vol1"),
		   "%s (%s): the refusal names metricID %s and both volumes: %s", layout, m, id,
		   c.err.message);
		ok(col && col->metric_id == 0x18EB000000000000ULL && col->side_count == 2 &&
			   col->sides[0].volume == 0 && col->sides[1].volume == 1 &&
			   col->sides[0].name && col->sides[1].name &&
			   strcmp(col->sides[0].name, "crafted_metric{i=\"0\",vol=\"vol0\"}") == 0 &&
			   strcmp(col->sides[1].name, "crafted_metric{i=\"0\",vol=\"vol1\"}") == 0 &&
			   col->sides[0].part && strstr(col->sides[0].part, "data/indexdb/2024_01/"),
		   "%s (%s): the collision shows both series and their parts", layout, m);
		ok(find(&c.report, CHECK_ERROR, NULL, id) &&
			   find(&c.report, CHECK_ERROR, NULL, id)->kind == CHECK_KIND_COLLISION,
		   "%s (%s): a collision finding names the metricID", layout, m);
		ok(c.report.conflicts[0 * 3 + 1] && c.report.conflicts[1 * 3 + 0] &&
			   !c.report.conflicts[0 * 3 + 2] && !c.report.conflicts[1 * 3 + 2],
		   "%s (%s): only vol0 and vol1 conflict", layout, m);
		ok(c.report.volumes[0].series == 40 && c.report.volumes[1].series == 40 &&
			   c.report.volumes[2].series == 40 && c.report.shared_series == 40 &&
			   c.report.shared_metric_ids == 0 &&
			   find(&c.report, CHECK_INFO, "", "40 series are on more than one volume"),
		   "%s (%s): 40 series each; vol2 replicates vol0's 40 series (info)", layout, m);
		ok(c.report.volumes[0].cluster_known && c.report.volumes[0].cluster == cluster,
		   "%s (%s): layout told from the items", layout, m);
		if (mode == DEEP) {
			json = check_print_json(&c.report, &c.plan);
			doc = cJSON_Parse(json);
			ok(doc && cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "exit_status")) == 2 &&
				   strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
						  cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "collisions"), 0),
						  "metric_id")), id) == 0,
			   "%s: --json gives exit_status 2 and the metricID as an exact string",
			   layout);
			cJSON_Delete(doc);
			free(json);
		}
		checked_free(&c);
	}

	run_check(&c, CHEAP, 0, paths, 3);
	ok(c.rc == 0 && c.report.collision_total == 0,
	   "%s: the cheap checks alone (nocheck) do not see collisions", layout);
	checked_free(&c);

	free(paths[1]);
	paths[1] = paths[2];
	run_check(&c, COLLISIONS, 0, paths, 2);
	ok(c.rc == 0 && c.report.errors == 0 && c.report.warnings == 0 &&
		   c.report.shared_series == 40 && check_exit_status(&c.report) == 0,
	   "%s: vol0 + vol2 (replicas, own metricIDs) merge; replication is information", layout);
	checked_free(&c);
	free(paths[0]);
	free(paths[2]);
	free(dir);
}

static void test_many_collisions(void)
{
	char *dir = set_dir("col-many", true, 150, 120);
	char *paths[2] = { xasprintf("%s/vol0", dir), xasprintf("%s/vol1", dir) };
	struct checked c;

	run_check(&c, COLLISIONS, 2, paths, 2);
	ok(c.rc < 0 && c.report.collision_total == 120 &&
		   c.report.collision_count == CHECK_MAX_COLLISIONS &&
		   find(&c.report, CHECK_ERROR, NULL, "20 more metricIDs"),
	   "120 collisions: %d described, the rest counted", CHECK_MAX_COLLISIONS);
	checked_free(&c);
	free(paths[0]);
	free(paths[1]);
	free(dir);
}

/* One volume giving a metricID two names: broken whatever it is merged
 * with, and a cluster volume never merges with a single-node one. */
static void test_volume_alone(void)
{
	struct crafted_series s[2] = { { 42, crafted_name("a", 1) }, { 42, crafted_name("a", 2) } };
	char *broken = xasprintf("%s/self", scratch), *single = xasprintf("%s/single", scratch);
	char *cluster = xasprintf("%s/cluster", scratch), *paths[2];
	struct error err = { "" };
	struct checked c;

	ok(crafted_volume(broken, false, "18EB000000000001", s, 2, &err) == 0, "crafted: %s",
	   err.message);
	run_check(&c, COLLISIONS, 0, &broken, 1);
	ok(c.rc < 0 && c.report.collision_total == 1 &&
		   find(&c.report, CHECK_ERROR, NULL, "metricID 42 names 2 different series") &&
		   find(&c.report, CHECK_ERROR, NULL, "metricID 42")->kind == CHECK_KIND_GENERAL,
	   "one volume with two names for metricID 42: an error of the volume itself");
	checked_free(&c);

	s[1].metric_id = 43;
	crafted_volume(single, false, "18EB000000000001", s, 2, &err);
	crafted_volume(cluster, true, "18EB000000000002", s, 2, &err);
	paths[0] = single;
	paths[1] = cluster;
	run_check(&c, COLLISIONS, 0, paths, 2);
	ok(c.rc < 0 && find(&c.report, CHECK_ERROR, NULL, "cannot be merged with the single-node"),
	   "a cluster volume with a single-node one: refused");
	checked_free(&c);
	free(s[0].name);
	free(s[1].name);
	free(broken);
	free(single);
	free(cluster);
}

/* ---- plan --targets ---- */

static bool same_target(const struct target_plan *t, size_t a, size_t b)
{
	for (size_t i = 0; i < t->count; i++) {
		bool has_a = false, has_b = false;

		for (size_t j = 0; j < t->targets[i].volume_count; j++) {
			has_a |= t->targets[i].volumes[j] == a;
			has_b |= t->targets[i].volumes[j] == b;
		}
		if (has_a || has_b)
			return has_a && has_b;
	}
	return false;
}

static void test_targets_sample(void)
{
	char *paths[4];
	struct checked c;
	struct target_plan t;
	struct error err;
	uint64_t bytes = 0, series = 0, min = UINT64_MAX, max = 0;
	size_t seen[4] = { 0 };

	for (int i = 0; i < 4; i++)
		paths[i] = xasprintf("%s/tests/data/" SET150 "/node%d", top_srcdir, i);
	run_check(&c, COLLISIONS, 0, paths, 4);
	ok(plan_targets(&c.plan, &c.report, 2, &t, &err) == 0 && t.count == 2 &&
		   target_plan_refusals(&t) == 0,
	   "4 volumes into 2 targets: proposed, no refusal");
	for (size_t i = 0; i < t.count; i++) {
		const struct target *tg = &t.targets[i];

		bytes += tg->bytes;
		series += tg->series;
		min = tg->bytes < min ? tg->bytes : min;
		max = tg->bytes > max ? tg->bytes : max;
		for (size_t j = 0; j < tg->volume_count; j++)
			seen[tg->volumes[j]]++;
		ok(tg->volume_count == 2 && tg->generation == GEN_C,
		   "target %zu: 2 volumes, generation C", i);
	}
	ok(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 &&
		   bytes == plan_lower_bytes(&c.plan) && series == 8000,
	   "every volume in exactly one target; bytes and series add up (8000 series)");
	ok(max <= min + min / 20, "bytes balanced within 5%% (%" PRIu64 " vs %" PRIu64 ")", max,
	   min);
	target_plan_free(&t);
	ok(plan_targets(&c.plan, &c.report, 5, &t, &err) == -EINVAL && strstr(err.message, "1 to 4"),
	   "5 targets for 4 volumes refused: %s", err.message);
	ok(plan_targets(&c.plan, NULL, 1, &t, &err) == 0 && t.targets[0].volume_count == 4 &&
		   !t.series_known,
	   "1 target: everything; without a report the series are unknown");
	target_plan_free(&t);
	checked_free(&c);
	for (int i = 0; i < 4; i++)
		free(paths[i]);
}

static void test_targets_collision(void)
{
	char *dir = set_dir("col-t", true, 30, 2);
	char *paths[3];
	struct checked c;
	struct target_plan t;
	struct error err;

	for (int v = 0; v < 3; v++)
		paths[v] = xasprintf("%s/vol%d", dir, v);
	run_check(&c, COLLISIONS, 0, paths, 3);
	ok(plan_targets(&c.plan, &c.report, 2, &t, &err) == 0 && !same_target(&t, 0, 1) &&
		   target_plan_refusals(&t) == 0,
	   "--targets 2 keeps the colliding vol0 and vol1 apart");
	target_plan_free(&t);
	ok(plan_targets(&c.plan, &c.report, 1, &t, &err) == -EINVAL &&
		   strstr(err.message, "no assignment keeps them apart"),
	   "--targets 1 with a collision is refused: %s", err.message);
	checked_free(&c);
	for (int v = 0; v < 3; v++)
		free(paths[v]);
	free(dir);
}

/* ---- the text report ---- */

static void test_text_report(void)
{
	char *volume = copy_node(SET150, "node0", "text");
	char *part = xasprintf("%s/" DATA150, volume);
	struct checked c;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	do_bad_zstd(part, volume);
	run_check(&c, DEEP, 0, &volume, 1);
	check_print_text(&c.report, &c.plan, out);
	fclose(out);
	ok(text && strstr(text, "  errors (1):\n    " DATA150 "/index.bin: block at offset 0") &&
		   strstr(text, "Result: 1 errors, 0 warnings"),
	   "the text report groups the error under its volume, naming the file");
	free(text);
	checked_free(&c);
	free(part);
	free(volume);
}

int main(void)
{
	static char resolved[4096];

	if (!realpath(getenv("top_srcdir") ? getenv("top_srcdir") : ".", resolved))
		return 1;
	top_srcdir = resolved;
	if (!mkdtemp(scratch))
		return 1;
	test_sample_set("v1.79.5");
	test_sample_set("v1.96.0-cluster");
	test_sample_set(SET150);
	for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++)
		test_corruption(&corruptions[i], (int)i);
	test_gen_a_name();
	test_collisions(true);
	test_collisions(false);
	test_many_collisions();
	test_volume_alone();
	test_targets_sample();
	test_targets_collision();
	test_text_report();
	remove_tree_at(AT_FDCWD, scratch);
	return done_testing();
}
