/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion verify --live URL VOLUME...: does the running node serve what the
 * volumes hold?
 *
 * From the volumes alone (each one planned on its own, so only its live
 * parts count): every series that has samples, named from the indexdb's
 * MetricID->MetricName items, and its samples per partition, the row counts
 * of its blocks in the data parts' block headers (no value is decoded).
 * Then the node exports those series (/api/v1/export, or
 * /select/ACCOUNT:PROJECT/prometheus/api/v1/export on a vmselect) over the
 * volumes' time range, and each series' samples are counted per partition.
 * A series on several volumes is expected with the sum of their counts.
 *
 * Differences are reported per volume: series missing (none of its samples
 * served) and series short (fewer samples than the volumes hold in some
 * partition). More samples than expected (new writes, or the series is also
 * on a volume not given) are not a difference: after a commit, the retiring
 * volumes are checked against a node that also serves its own. */
#include "live.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http.h"
#include "plan.h"
#include "vmformat.h"
#include "volume.h"

#define EXIT_DIFFERENT 1
#define EXIT_IO 2
#define EXIT_USAGE 64
#define EXAMPLES 5          /* series named per kind and volume */
#define SELECTORS_PER_QUERY 50

/* Samples of one series in one partition, on one volume. */
struct count {
	uint64_t metric_id;
	uint32_t account_id, project_id;
	size_t partition;
	uint64_t rows;
	bool named;   /* on the first count of a metricID: its series is known */
	bool deleted; /* on the first count: deleted through the API (namespace 4) */
};

/* A series (tenant + name) over all volumes: what they hold and what the
 * node serves, per partition. */
struct series {
	char *key;        /* "ACCOUNT:PROJECT name{...}": what export lines are matched by */
	char *selector;
	uint32_t account_id, project_id;
	uint64_t *want, *got;
	bool checked;     /* queried: every series, or one picked by --sample */
};

/* One series of one volume: its counts are counts[first, first + n). key
 * and selector move to the series when the volumes are joined. */
struct volume_series {
	struct series *series;
	char *key, *selector;
	uint32_t account_id, project_id;
	size_t first, n;
};

struct live_volume {
	const char *path;
	bool cluster;
	struct count *counts; /* sorted by metric_id, partition */
	size_t count_count, count_capacity;
	struct volume_series *series;
	size_t series_count, series_capacity;
	size_t unnamed, deleted; /* metricIDs with samples not checked, and why */
};

struct live {
	const char *url;
	long timeout_s;
	bool tenant_set;
	uint32_t account_id, project_id;
	size_t sample;
	uint64_t seed;

	struct live_volume *volumes;
	size_t volume_count;
	char **partitions;  /* YYYY_MM, in the order they are met */
	size_t partition_count, partition_capacity;
	int64_t min_ts, max_ts;
	bool cluster;

	struct series **series; /* sorted by key */
	size_t series_count;
};

static size_t partition_index(struct live *l, const char *name)
{
	for (size_t i = 0; i < l->partition_count; i++)
		if (strcmp(l->partitions[i], name) == 0)
			return i;
	*ARRAY_PUSH(l->partitions, l->partition_count, l->partition_capacity) = xstrdup(name);
	return l->partition_count - 1;
}

/* ---- what the volumes hold ---- */

struct data_walk {
	struct live *l;
	struct live_volume *lv;
	size_t partition;
};

static int count_block(const struct vm_data_block *bh, void *arg)
{
	struct data_walk *w = arg;
	struct live_volume *lv = w->lv;
	struct count *last = lv->count_count ? &lv->counts[lv->count_count - 1] : NULL;

	if (bh->min_ts < w->l->min_ts)
		w->l->min_ts = bh->min_ts;
	if (bh->max_ts > w->l->max_ts)
		w->l->max_ts = bh->max_ts;
	/* Headers are sorted by TSID: a series' blocks of a part are adjacent. */
	if (last && last->metric_id == bh->tsid.metric_id && last->partition == w->partition) {
		last->rows += bh->rows;
		return 0;
	}
	*ARRAY_PUSH(lv->counts, lv->count_count, lv->count_capacity) = (struct count){
		.metric_id = bh->tsid.metric_id,
		.account_id = bh->tsid.account_id,
		.project_id = bh->tsid.project_id,
		.partition = w->partition,
		.rows = bh->rows,
	};
	return 0;
}

struct part_walk {
	struct live *l;
	struct live_volume *lv;
	const struct volume *volume;
	bool layout_known;
	bool mergeset; /* this pass: indexdb parts, or data parts */
	struct error *err;
};

static int open_part_dir(const struct part_walk *pw, const char *lower)
{
	int fd = openat(pw->volume->dirfd, lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return error_set(pw->err, errno, "%s/%s: %s", pw->volume->path, lower,
				 strerror(errno));
	return fd;
}

static int compare_counts(const void *a, const void *b)
{
	const struct count *x = a, *y = b;

	if (x->metric_id != y->metric_id)
		return x->metric_id < y->metric_id ? -1 : 1;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Data parts: the rows of every block, per metricID and partition. The
 * partition is the part's parent dir: data/{small,big}/YYYY_MM/PART. */
static int scan_data_part(void *arg, int volume, const char *lower, bool mergeset)
{
	struct part_walk *pw = arg;
	struct data_walk w = { .l = pw->l, .lv = pw->lv };
	struct error err;
	char partition[8];
	int fd, rc;

	if (mergeset || pw->mergeset)
		return 0;
	if (sscanf(lower, "data/%*[a-z]/%7[0-9_]/", partition) != 1 ||
	    !is_partition_name(partition))
		return 0;
	w.partition = partition_index(pw->l, partition);
	fd = open_part_dir(pw, lower);
	if (fd < 0)
		return fd;
	rc = 0;
	if (!pw->layout_known) {
		rc = vm_data_part_guess_cluster(fd, &pw->lv->cluster, &err);
		pw->layout_known = rc == 0;
	}
	if (rc == 0)
		rc = vm_data_part_check(fd, pw->lv->cluster, NULL, count_block, &w, NULL, &err);
	close(fd);
	if (rc < 0)
		return error_set(pw->err, -rc, "%s/%s: %s", pw->volume->path, lower, err.message);
	return 0;
}

struct name_walk {
	struct live_volume *lv;
	struct error err;
};

/* The first count of metric_id, or count_count. */
static size_t first_count(const struct live_volume *lv, uint64_t metric_id)
{
	size_t lo = 0, hi = lv->count_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lv->counts[mid].metric_id < metric_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < lv->count_count && lv->counts[lo].metric_id == metric_id ? lo
									      : lv->count_count;
}

/* Names every metricID of the volume that has samples, once (its item is
 * in several tables and parts). */
static int name_series(const struct vm_metric_name_item *mn, void *arg)
{
	struct name_walk *w = arg;
	struct live_volume *lv = w->lv;
	size_t first = first_count(lv, mn->metric_id);
	struct volume_series *vs;
	char *name;

	if (first == lv->count_count || lv->counts[first].named ||
	    lv->counts[first].account_id != mn->account_id ||
	    lv->counts[first].project_id != mn->project_id)
		return 0;
	if (vm_metric_name_render(mn->name, mn->name_len, &name, &w->err) < 0)
		return -EINVAL;
	lv->counts[first].named = true;
	vs = ARRAY_PUSH(lv->series, lv->series_count, lv->series_capacity);
	memset(vs, 0, sizeof(*vs));
	vs->key = xasprintf("%" PRIu32 ":%" PRIu32 " %s", mn->account_id, mn->project_id, name);
	free(name);
	if (vm_metric_name_selector(mn->name, mn->name_len, &vs->selector, &w->err) < 0)
		return -EINVAL;
	vs->account_id = mn->account_id;
	vs->project_id = mn->project_id;
	vs->first = first;
	while (first + vs->n < lv->count_count && lv->counts[first + vs->n].metric_id == mn->metric_id)
		vs->n++;
	return 0;
}

/* Namespace 4: metricIDs deleted through the API. vmstorage serves none of
 * their samples although their blocks stay until a merge drops them. */
static int mark_deleted_item(const uint8_t *item, size_t len, void *arg)
{
	struct live_volume *lv = arg;
	size_t prefix = lv->cluster ? 9 : 1; /* 04 [account project] metricID */
	uint64_t id = 0;
	size_t first;

	if (len != prefix + 8)
		return 0;
	for (size_t i = 0; i < 8; i++)
		id = id << 8 | item[prefix + i];
	first = first_count(lv, id);
	if (first < lv->count_count)
		lv->counts[first].deleted = true;
	return 0;
}

static int mark_deleted(int dirfd, struct live_volume *lv, struct error *err)
{
	return vm_mergeset_scan_namespace(dirfd, VM_NS_DELETED_METRIC_ID, mark_deleted_item, lv,
					  err);
}

static int scan_index_part(void *arg, int volume, const char *lower, bool mergeset)
{
	struct part_walk *pw = arg;
	struct name_walk w = { .lv = pw->lv };
	struct error err = { { 0 } };
	int fd, rc;

	if (!mergeset || !pw->mergeset)
		return 0;
	fd = open_part_dir(pw, lower);
	if (fd < 0)
		return fd;
	rc = vm_indexdb_scan_metric_names(fd, pw->lv->cluster, name_series, &w, &err);
	if (rc == 0)
		rc = mark_deleted(fd, pw->lv, &err);
	close(fd);
	if (rc < 0)
		return error_set(pw->err, -rc, "%s/%s: %s", pw->volume->path, lower,
				 w.err.message[0] ? w.err.message : err.message);
	return 0;
}

/* What cannot be checked: samples of a metricID that the indexdb does not
 * name, or that it lists as deleted. */
static void count_unchecked(struct live_volume *lv)
{
	for (size_t i = 0; i < lv->count_count; i++) {
		if (i > 0 && lv->counts[i - 1].metric_id == lv->counts[i].metric_id)
			continue;
		if (lv->counts[i].deleted)
			lv->deleted++;
		else if (!lv->counts[i].named)
			lv->unnamed++;
	}
}

/* Counts one volume, planned alone so that only its live parts count. */
static int count_volume(struct live *l, struct live_volume *lv, struct volume *volume,
			struct error *err)
{
	struct plan plan;
	struct part_walk pw = { .l = l, .lv = lv, .volume = volume, .err = err };
	int rc;

	rc = plan_build(&plan, volume, 1, err);
	if (rc == 0)
		rc = check_each_part(&plan, scan_data_part, &pw);
	if (rc == 0) {
		qsort(lv->counts, lv->count_count, sizeof(*lv->counts), compare_counts);
		pw.mergeset = true;
		rc = check_each_part(&plan, scan_index_part, &pw);
	}
	if (rc == 0)
		count_unchecked(lv);
	plan_free(&plan);
	return rc;
}

/* ---- what the node serves ---- */

struct label {
	const char *name, *value;
};

static int compare_labels(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* The table key of an exported series, built like vm_metric_name_render. */
static char *export_key(const cJSON *metric, uint32_t account_id, uint32_t project_id)
{
	const cJSON *item;
	struct label *labels = NULL;
	size_t n = 0, capacity = 0;
	const char *name = "";
	char *key = NULL;
	size_t key_len = 0;
	FILE *f;

	cJSON_ArrayForEach(item, metric) {
		if (!cJSON_IsString(item))
			continue;
		if (strcmp(item->string, "__name__") == 0)
			name = item->valuestring;
		else
			*ARRAY_PUSH(labels, n, capacity) = (struct label){ item->string,
									   item->valuestring };
	}
	qsort(labels, n, sizeof(*labels), compare_labels);
	f = open_memstream(&key, &key_len);
	if (!f)
		abort();
	fprintf(f, "%" PRIu32 ":%" PRIu32 " %s", account_id, project_id, name);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%c%s=", i ? ',' : '{', labels[i].name);
		put_quoted(f, labels[i].value);
	}
	if (n)
		fputc('}', f);
	fclose(f);
	free(labels);
	return key;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp((*(struct series *const *)a)->key, (*(struct series *const *)b)->key);
}

static bool month_of(int64_t ts_ms, char out[16])
{
	time_t t = (time_t)(ts_ms / 1000 - (ts_ms % 1000 < 0));
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return false;
	snprintf(out, 16, "%04u_%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u);
	return true;
}

struct export {
	struct live *l;
	uint32_t account_id, project_id;
	const char *url;
	struct error *err;
};

static int on_export_line(void *arg, char *line, size_t len)
{
	struct export *x = arg;
	struct live *l = x->l;
	cJSON *doc = cJSON_ParseWithLength(line, len);
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(doc, "metric");
	const cJSON *stamps = cJSON_GetObjectItemCaseSensitive(doc, "timestamps");
	const cJSON *ts;
	struct series key = { 0 }, *s = &key, **found;
	char month[16];
	size_t cached = SIZE_MAX;

	if (len == 0) {
		cJSON_Delete(doc);
		return 0;
	}
	if (!cJSON_IsObject(metric) || !cJSON_IsArray(stamps)) {
		cJSON_Delete(doc);
		return error_set(x->err, EPROTO, "%s: not an export line: %.80s", x->url, line);
	}
	key.key = export_key(metric, x->account_id, x->project_id);
	found = bsearch(&s, l->series, l->series_count, sizeof(*l->series), compare_keys);
	free(key.key);
	s = found ? *found : NULL;
	if (!s || !s->checked) {
		cJSON_Delete(doc);
		return 0; /* a series the volumes do not hold */
	}
	cJSON_ArrayForEach(ts, stamps) {
		if (!cJSON_IsNumber(ts) || !month_of((int64_t)ts->valuedouble, month))
			continue;
		if (cached == SIZE_MAX || strcmp(l->partitions[cached], month) != 0) {
			cached = SIZE_MAX;
			for (size_t p = 0; p < l->partition_count; p++)
				if (strcmp(l->partitions[p], month) == 0)
					cached = p;
		}
		if (cached != SIZE_MAX)
			s->got[cached]++;
	}
	cJSON_Delete(doc);
	return 0;
}

/* The Prometheus API root for a tenant: vmselect wants it in the path. */
static char *api_root(const struct live *l, uint32_t account_id, uint32_t project_id)
{
	size_t n = strlen(l->url);

	while (n > 0 && l->url[n - 1] == '/')
		n--;
	if (!l->cluster)
		return xasprintf("%.*s", (int)n, l->url);
	return xasprintf("%.*s/select/%" PRIu32 ":%" PRIu32 "/prometheus", (int)n, l->url,
			 account_id, project_id);
}

/* One export over the volumes' time range; selectors NULL: every series. */
static int export(struct live *l, uint32_t account_id, uint32_t project_id,
		  struct series **selected, size_t n, struct error *err)
{
	char *root = api_root(l, account_id, project_id), *url, *query = NULL;
	struct export x = { .l = l, .account_id = account_id, .project_id = project_id,
			    .err = err };
	size_t query_len = 0;
	FILE *f = open_memstream(&query, &query_len);
	int rc;

	if (!f)
		abort();
	if (!selected) {
		fputs("match[]=%7B__name__%3D~%22.%2B%22%7D", f);
	} else {
		for (size_t i = 0; i < n; i++) {
			char *e = http_escape(selected[i]->selector);

			fprintf(f, "%smatch[]=%s", i ? "&" : "", e);
			free(e);
		}
	}
	/* Seconds with a fraction: every version takes them. */
	fprintf(f, "&start=%" PRId64 ".%03d&end=%" PRId64 ".%03d", l->min_ts / 1000,
		(int)(l->min_ts % 1000), l->max_ts / 1000, (int)(l->max_ts % 1000));
	fclose(f);
	url = xasprintf("%s/api/v1/export?%s", root, query);
	x.url = url;
	rc = http_get_lines(url, l->timeout_s, on_export_line, &x, err);
	free(url);
	free(query);
	free(root);
	return rc;
}

static int compare_tenant(const void *a, const void *b)
{
	const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;

	if (x->account_id != y->account_id)
		return x->account_id < y->account_id ? -1 : 1;
	return x->project_id < y->project_id ? -1 : x->project_id > y->project_id;
}

/* Queries the node: per tenant, every series at once, or the picked ones in
 * batches of selectors. */
static int query_node(struct live *l, struct error *err)
{
	struct series **checked = xcalloc(l->series_count + 1, sizeof(*checked));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < l->series_count; i++)
		if (l->series[i]->checked)
			checked[n++] = l->series[i];
	qsort(checked, n, sizeof(*checked), compare_tenant);
	for (size_t i = 0; rc == 0 && i < n;) {
		size_t end = i;

		while (end < n && compare_tenant(&checked[i], &checked[end]) == 0)
			end++;
		if (!l->sample) {
			rc = export(l, checked[i]->account_id, checked[i]->project_id, NULL, 0, err);
			i = end;
			continue;
		}
		for (; rc == 0 && i < end; i += SELECTORS_PER_QUERY) {
			size_t batch = end - i < SELECTORS_PER_QUERY ? end - i : SELECTORS_PER_QUERY;

			rc = export(l, checked[i]->account_id, checked[i]->project_id, checked + i,
				    batch, err);
		}
		i = end;
	}
	free(checked);
	return rc;
}

/* ---- picking and comparing ---- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool tenant_wanted(const struct live *l, const struct series *s)
{
	return !l->tenant_set ||
	       (s->account_id == l->account_id && s->project_id == l->project_id);
}

/* Fills want and marks what to check: every series of the tenant, or
 * --sample N of each volume (a partial Fisher-Yates shuffle). */
static void pick_series(struct live *l)
{
	uint64_t state = l->seed;

	for (size_t v = 0; v < l->volume_count; v++) {
		struct live_volume *lv = &l->volumes[v];
		struct volume_series *vs = lv->series;
		size_t n = 0;

		for (size_t i = 0; i < lv->series_count; i++) {
			if (lv->counts[vs[i].first].deleted)
				continue;
			for (size_t c = vs[i].first; c < vs[i].first + vs[i].n; c++)
				vs[i].series->want[lv->counts[c].partition] += lv->counts[c].rows;
			if (tenant_wanted(l, vs[i].series))
				vs[n++] = vs[i]; /* the volume keeps only what is checked */
		}
		lv->series_count = n;
		for (size_t i = 0; i < n; i++) {
			size_t j = i;

			if (l->sample) {
				if (i >= l->sample)
					break;
				j = i + splitmix64(&state) % (n - i);
			}
			struct volume_series tmp = vs[i];

			vs[i] = vs[j];
			vs[j] = tmp;
			vs[i].series->checked = true;
		}
		if (l->sample && n > l->sample)
			lv->series_count = l->sample;
	}
}

static uint64_t total(const uint64_t *counts, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += counts[i];
	return sum;
}

static void print_series_counts(const struct live *l, const struct series *s, FILE *out)
{
	const char *sep = "";

	for (size_t p = 0; p < l->partition_count; p++) {
		if (s->want[p] == s->got[p])
			continue;
		fprintf(out, "%s%s: %" PRIu64 " of %" PRIu64, sep, l->partitions[p], s->got[p],
			s->want[p]);
		sep = ", ";
	}
}

/* Fewer samples served than held, in some partition. */
static bool series_short(const struct live *l, const struct series *s)
{
	for (size_t p = 0; p < l->partition_count; p++)
		if (s->got[p] < s->want[p])
			return true;
	return false;
}

/* Prints one volume's differences; returns how many of its series differ. */
static size_t report_volume(struct live *l, const struct live_volume *lv, FILE *out)
{
	size_t missing = 0, short_ = 0, shown_missing = 0, shown_short = 0;
	uint64_t want = 0, got = 0;

	for (size_t i = 0; i < lv->series_count; i++) {
		const struct series *s = lv->series[i].series;
		uint64_t w = total(s->want, l->partition_count);
		uint64_t g = total(s->got, l->partition_count);

		want += w;
		got += g < w ? g : w;
		if (g == 0)
			missing++;
		else if (series_short(l, s))
			short_++;
	}
	if (lv->deleted)
		fprintf(out, "%s: %zu series deleted through the API not checked\n", lv->path,
			lv->deleted);
	if (lv->unnamed)
		fprintf(out, "%s: %zu series with samples but no name in the indexdb not "
			"checked (run vmunion check --deep)\n", lv->path, lv->unnamed);
	fprintf(out, "%s: %zu series, %" PRIu64 " samples: ", lv->path, lv->series_count, want);
	if (!missing && !short_) {
		fputs("all served\n", out);
		return 0;
	}
	fprintf(out, "%zu series missing, %zu series short; the node serves %" PRIu64
		" of the %" PRIu64 " samples\n", missing, short_, got, want);
	for (size_t i = 0; i < lv->series_count; i++) {
		const struct series *s = lv->series[i].series;
		uint64_t g = total(s->got, l->partition_count);
		const char *name = strchr(s->key, ' ') + 1;

		if (g == 0 && shown_missing < EXAMPLES) {
			fprintf(out, "  missing: %s (%" PRIu64 " samples)\n", l->cluster ? s->key : name,
				total(s->want, l->partition_count));
			shown_missing++;
		} else if (g > 0 && shown_short < EXAMPLES && series_short(l, s)) {
			fprintf(out, "  short: %s: ", l->cluster ? s->key : name);
			print_series_counts(l, s, out);
			fputc('\n', out);
			shown_short++;
		}
	}
	return missing + short_;
}

/* ---- what the node's flags explain ---- */

struct flags {
	char dedup[64], retention[64];
};

static void flag_value(const char *line, const char *flag, char *out, size_t size)
{
	char prefix[128];
	const char *v;

	snprintf(prefix, sizeof(prefix), "flag{name=\"%s\", value=\"", flag);
	if (strncmp(line, prefix, strlen(prefix)) != 0)
		return;
	v = line + strlen(prefix);
	snprintf(out, size, "%.*s", (int)strcspn(v, "\""), v);
}

static int on_metrics_line(void *arg, char *line, size_t len)
{
	struct flags *f = arg;

	flag_value(line, "dedup.minScrapeInterval", f->dedup, sizeof(f->dedup));
	flag_value(line, "retentionPeriod", f->retention, sizeof(f->retention));
	return 0;
}

/* -retentionPeriod in ms: a number of months, or with h d w y. */
static int64_t retention_ms(const char *value)
{
	char *end;
	double n = strtod(value, &end);
	const double day = 86400e3;

	if (end == value || n <= 0)
		return 0;
	switch (*end) {
	case 'h': return (int64_t)(n * 3600e3);
	case 'd': return (int64_t)(n * day);
	case 'w': return (int64_t)(n * 7 * day);
	case 'y': return (int64_t)(n * 365 * day);
	case 'm': /* "1m" is ambiguous in old releases: months */
	case 0: return (int64_t)(n * 31 * day);
	}
	return 0;
}

static void explain(struct live *l, FILE *out)
{
	struct flags f = { "", "" };
	size_t n = strlen(l->url);
	char *url;
	struct error err;
	bool have;

	while (n > 0 && l->url[n - 1] == '/')
		n--;
	url = xasprintf("%.*s/metrics", (int)n, l->url);
	have = http_get_lines(url, l->timeout_s, on_metrics_line, &f, &err) == 0;
	free(url);
	if (!have || (!f.dedup[0] && !f.retention[0])) {
		fputs("hint: the node's flags are unknown (no flag metrics at /metrics): "
		      "-dedup.minScrapeInterval keeps one sample per interval (short counts), "
		      "a -retentionPeriod shorter than the data's age deletes old partitions "
		      "(missing series)\n", out);
		return;
	}
	if (f.dedup[0] && strcmp(f.dedup, "0s") != 0 && strcmp(f.dedup, "0") != 0)
		fprintf(out, "hint: the node deduplicates (-dedup.minScrapeInterval=%s): it keeps "
			"one sample per series per %s, so counts short but above 0 are expected "
			"where samples are closer than that\n", f.dedup, f.dedup);
	if (f.retention[0]) {
		int64_t keep = retention_ms(f.retention);
		int64_t now = (int64_t)time(NULL) * 1000;
		char month[16], oldest[16];

		if (keep && now - keep > l->min_ts && month_of(now - keep, month) &&
		    month_of(l->min_ts, oldest))
			fprintf(out, "hint: the node's -retentionPeriod=%s drops samples before about "
				"%s: the volumes hold samples since %s; restart it with a "
				"-retentionPeriod at least the data's age\n", f.retention, month,
				oldest);
	}
}

/* ---- the command ---- */

static void usage(FILE *out)
{
	fputs("Usage: vmunion verify --live URL [OPTIONS] VOLUME...\n"
	      "\n"
	      "Check that a running node serves every series of the volumes with every\n"
	      "sample. The volumes are counted offline: each series (named from the\n"
	      "indexdb) and its samples per partition (from the data parts' block\n"
	      "headers). URL is a single-node VictoriaMetrics, or a vmselect for cluster\n"
	      "volumes (queried per tenant at URL/select/ACCOUNT:PROJECT/prometheus).\n"
	      "\n"
	      "Options:\n"
	      "  --live URL              the node: http://HOST:PORT\n"
	      "  --tenant ACCOUNT[:PROJECT]\n"
	      "                          check only this tenant's series (cluster volumes)\n"
	      "  --sample N              check N random series per volume\n"
	      "  --seed S                the random choice of --sample (default 1)\n"
	      "  --timeout SECONDS       bound on each HTTP request (default 300)\n"
	      "  -h, --help              show this help\n"
	      "\n"
	      "Series on the node that the volumes do not hold, and samples beyond the\n"
	      "volumes' counts, are not differences (after a commit, check the retiring\n"
	      "volumes against the node, which also serves its own data).\n"
	      "\n"
	      "Exit status: 0 the node serves everything, 1 series missing or short\n"
	      "(listed per volume, with hints from the node's dedup and retention flags),\n"
	      "2 a volume cannot be read or the node cannot be reached, 64 wrong usage.\n",
	      out);
}

bool live_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--live") == 0 || strncmp(argv[i], "--live=", 7) == 0)
			return true;
	}
	return false;
}

static int parse_tenant(const char *s, uint32_t *account_id, uint32_t *project_id)
{
	unsigned long a, p = 0;
	char *end;

	errno = 0;
	a = strtoul(s, &end, 10);
	if (end == s || errno || a > UINT32_MAX)
		return -EINVAL;
	if (*end == ':') {
		s = end + 1;
		p = strtoul(s, &end, 10);
		if (end == s || errno || p > UINT32_MAX)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	*account_id = (uint32_t)a;
	*project_id = (uint32_t)p;
	return 0;
}

static int parse_options(struct live *l, int argc, char **argv)
{
	static const struct option options[] = {
		{ "live", required_argument, NULL, 'l' },
		{ "tenant", required_argument, NULL, 't' },
		{ "sample", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long n;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
				fprintf(stderr, "vmunion verify: --live wants an http:// or https:// "
					"URL, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			l->url = optarg;
			break;
		case 't':
			if (parse_tenant(optarg, &l->account_id, &l->project_id) < 0) {
				fprintf(stderr, "vmunion verify: --tenant wants ACCOUNT[:PROJECT], "
					"not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			l->tenant_set = true;
			break;
		case 's':
		case 'S':
		case 'T':
			errno = 0;
			n = strtoull(optarg, &end, 10);
			/* strtoull takes blanks and a sign: "-1" would be 2^64-1 */
			if (*end || end == optarg || errno || (c != 'S' && n < 1) ||
			    optarg[0] < '0' || optarg[0] > '9' ||
			    (c == 'T' && n > 86400)) {
				fprintf(stderr, "vmunion verify: --%s wants a number%s, not '%s'\n",
					c == 's' ? "sample" : c == 'S' ? "seed" : "timeout",
					c == 'T' ? " of seconds from 1 to 86400" : c == 's' ? " >= 1" : "",
					optarg);
				return EXIT_USAGE;
			}
			if (c == 's')
				l->sample = (size_t)n;
			else if (c == 'S')
				l->seed = n;
			else
				l->timeout_s = (long)n;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs("vmunion verify: give at least one VOLUME (see vmunion verify --live URL "
		      "--help)\n", stderr);
		return EXIT_USAGE;
	}
	return 0;
}

static int count_volumes(struct live *l, char **paths, size_t count, struct error *err)
{
	int rc = 0;

	l->volumes = xcalloc(count, sizeof(*l->volumes));
	l->volume_count = count;
	for (size_t i = 0; rc == 0 && i < count; i++) {
		struct volume volume;

		l->volumes[i].path = paths[i];
		rc = volume_open(&volume, paths[i], err);
		if (rc < 0)
			break;
		/* Shared: a preview mount may hold it too, a vmstorage may not. */
		rc = volume_lock(&volume, err);
		if (rc == 0)
			rc = count_volume(l, &l->volumes[i], &volume, err);
		volume_close(&volume);
		if (i > 0 && rc == 0 && l->volumes[i].count_count && l->volumes[0].count_count &&
		    l->volumes[i].cluster != l->volumes[0].cluster)
			rc = error_set(err, EINVAL, "%s is a %s volume, %s is not", paths[i],
				       l->volumes[i].cluster ? "cluster" : "single-node", paths[0]);
		if (l->volumes[i].count_count)
			l->cluster = l->volumes[i].cluster;
	}
	return rc;
}

static void live_free(struct live *l)
{
	for (size_t i = 0; i < l->volume_count; i++) {
		for (size_t j = 0; j < l->volumes[i].series_count; j++) {
			free(l->volumes[i].series[j].key);
			free(l->volumes[i].series[j].selector);
		}
		free(l->volumes[i].counts);
		free(l->volumes[i].series);
	}
	free(l->volumes);
	for (size_t i = 0; i < l->series_count; i++) {
		free(l->series[i]->key);
		free(l->series[i]->selector);
		free(l->series[i]->want);
		free(l->series[i]->got);
		free(l->series[i]);
	}
	free(l->series);
	for (size_t i = 0; i < l->partition_count; i++)
		free(l->partitions[i]);
	free(l->partitions);
}

static int compare_volume_series(const void *a, const void *b)
{
	const struct volume_series *x = *(struct volume_series *const *)a;
	const struct volume_series *y = *(struct volume_series *const *)b;

	return strcmp(x->key, y->key);
}

/* One series per tenant and name over all volumes, sorted by key for the
 * export lines to find theirs. */
static void join_volumes(struct live *l)
{
	struct volume_series **all;
	size_t n = 0;

	for (size_t v = 0; v < l->volume_count; v++)
		n += l->volumes[v].series_count;
	all = xcalloc(n + 1, sizeof(*all));
	n = 0;
	for (size_t v = 0; v < l->volume_count; v++)
		for (size_t i = 0; i < l->volumes[v].series_count; i++)
			all[n++] = &l->volumes[v].series[i];
	qsort(all, n, sizeof(*all), compare_volume_series);
	l->series = xcalloc(n + 1, sizeof(*l->series));
	for (size_t i = 0; i < n; i++) {
		struct volume_series *vs = all[i];
		struct series *s;

		if (i > 0 && strcmp(all[i - 1]->series->key, vs->key) == 0) {
			vs->series = all[i - 1]->series; /* the same series on another volume */
			free(vs->key);
			free(vs->selector);
			vs->key = vs->selector = NULL;
			continue;
		}
		s = xcalloc(1, sizeof(*s));
		s->key = vs->key;
		s->selector = vs->selector;
		s->account_id = vs->account_id;
		s->project_id = vs->project_id;
		s->want = xcalloc(l->partition_count, sizeof(uint64_t));
		s->got = xcalloc(l->partition_count, sizeof(uint64_t));
		l->series[l->series_count++] = s;
		vs->series = s;
		vs->key = vs->selector = NULL;
	}
	free(all);
}

int command_verify_live(int argc, char **argv)
{
	struct live l = { .timeout_s = 300, .seed = 1, .min_ts = INT64_MAX, .max_ts = INT64_MIN };
	struct error err = { { 0 } };
	size_t differ = 0, checked = 0;
	uint64_t samples = 0;
	int rc = parse_options(&l, argc, argv);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = count_volumes(&l, argv + optind, (size_t)(argc - optind), &err);
	if (rc == 0)
		join_volumes(&l);
	if (rc < 0) {
		fprintf(stderr, "vmunion verify: %s\n", err.message);
		live_free(&l);
		return EXIT_IO;
	}
	pick_series(&l);
	for (size_t i = 0; i < l.series_count; i++) {
		checked += l.series[i]->checked;
		if (l.series[i]->checked)
			samples += total(l.series[i]->want, l.partition_count);
	}
	if (checked == 0) {
		fprintf(stderr, "vmunion verify: nothing to check: the volumes hold no series%s\n",
			l.tenant_set ? " of that tenant" : " with samples");
		live_free(&l);
		return EXIT_DIFFERENT;
	}
	if (query_node(&l, &err) < 0) {
		fprintf(stderr, "vmunion verify: %s\n", err.message);
		live_free(&l);
		return EXIT_IO;
	}
	printf("node %s: checking %zu series, %" PRIu64 " samples, %zu partitions of %zu "
	       "volume%s\n", l.url, checked, samples, l.partition_count, l.volume_count,
	       l.volume_count == 1 ? "" : "s");
	for (size_t v = 0; v < l.volume_count; v++)
		differ += report_volume(&l, &l.volumes[v], stdout);
	if (differ) {
		explain(&l, stdout);
		printf("DIFFERENT: %zu series are missing or short on the node\n", differ);
	} else {
		printf("OK: the node serves every checked series with every sample\n");
	}
	live_free(&l);
	return differ ? EXIT_DIFFERENT : 0;
}
