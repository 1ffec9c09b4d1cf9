/* SPDX-License-Identifier: Apache-2.0 */
/* The merge model: on the real sample volumes and on crafted trees, one rule
 * at a time. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "tap.h"

static char scratch[] = "/tmp/vmunion-plan-t.XXXXXX";
static const char *top_srcdir;

/* ---- building crafted volumes ---- */

static void mkdirs(const char *path)
{
	char *copy = xstrdup(path);

	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(copy, 0755);
		*p = '/';
	}
	mkdir(copy, 0755);
	free(copy);
}

/* Writes content to volume/path, creating the parents. */
static void put(const char *volume, const char *path, const char *content)
{
	char *full = xasprintf("%s/%s/%s", scratch, volume, path);
	char *slash = strrchr(full, '/');
	FILE *f;

	*slash = '\0';
	mkdirs(full);
	*slash = '/';
	f = fopen(full, "w");
	if (!f)
		abort();
	fputs(content, f);
	fclose(f);
	free(full);
}

static void dir(const char *volume, const char *path)
{
	char *full = xasprintf("%s/%s/%s", scratch, volume, path);

	mkdirs(full);
	free(full);
}

/* A gen B/C data part with its files; seed makes the bytes differ. */
static void data_part(const char *volume, const char *dirpath, const char *seed)
{
	static const char *const files[] = { "metaindex.bin", "index.bin", "timestamps.bin",
					     "values.bin" };
	char *path;

	for (size_t i = 0; i < 4; i++) {
		path = xasprintf("%s/%s", dirpath, files[i]);
		put(volume, path, seed);
		free(path);
	}
	path = xasprintf("%s/metadata.json", dirpath);
	put(volume, path, "{\"RowsCount\":10,\"BlocksCount\":2,\"MinTimestamp\":1,"
			  "\"MaxTimestamp\":2,\"MinDedupInterval\":0}");
	free(path);
}

static char *volume_path(const char *volume)
{
	return xasprintf("%s/%s", scratch, volume);
}

struct merged {
	struct volume volumes[8];
	size_t count;
	struct plan plan;
	struct error err;
	int rc;
};

/* Opens "a", "b", ... (NULL-terminated) below scratch, or absolute paths. */
static int merge(struct merged *m, const char *first, ...)
{
	va_list ap;

	memset(m, 0, sizeof(*m));
	va_start(ap, first);
	for (const char *name = first; name; name = va_arg(ap, const char *)) {
		char *path = name[0] == '/' ? xstrdup(name) : volume_path(name);

		if (volume_open(&m->volumes[m->count], path, &m->err) < 0) {
			diag("cannot open: %s", m->err.message);
			free(path);
			va_end(ap);
			return m->rc = -1;
		}
		m->count++;
		free(path);
	}
	va_end(ap);
	m->rc = plan_build(&m->plan, m->volumes, m->count, &m->err);
	if (m->rc < 0)
		diag("refused: %s", m->err.message);
	return m->rc;
}

static void merged_free(struct merged *m)
{
	plan_free(&m->plan);
	for (size_t i = 0; i < m->count; i++)
		volume_close(&m->volumes[i]);
}

static const char *content(struct merged *m, const char *path)
{
	uint32_t node = plan_at(&m->plan, path);

	if (node == PLAN_NONE || m->plan.nodes[node].kind != PLAN_SYNTH_FILE)
		return NULL;
	return m->plan.nodes[node].content;
}

/* The node at path; a lookup that misses gives an empty node, so a failed
 * merge fails the assertions instead of crashing the test. */
static struct plan_node *node_at(struct merged *m, const char *path)
{
	static struct plan_node missing = { .volume = -2 };
	uint32_t node = plan_at(&m->plan, path);

	return node == PLAN_NONE ? &missing : &m->plan.nodes[node];
}

static bool shown(struct merged *m, const char *path)
{
	return plan_at(&m->plan, path) != PLAN_NONE;
}

static bool hidden_with(struct merged *m, const char *path, const char *reason_part)
{
	for (size_t i = 0; i < m->plan.hidden_count; i++)
		if (strcmp(m->plan.hidden[i].path, path) == 0 &&
		    strstr(hidden_reason_text(m->plan.hidden[i].reason), reason_part))
			return true;
	return false;
}

static void reset_scratch(void)
{
	remove_tree_at(AT_FDCWD, scratch);
	mkdir(scratch, 0755);
}

/* A minimal gen-B2 volume with one partition of one listed part. */
static void b2_volume(const char *name, const char *part, const char *seed)
{
	char *path = xasprintf("data/small/2024_01/%s", part);
	char *json = xasprintf("{\"Small\":[\"%s\"],\"Big\":[]}", part);

	data_part(name, path, seed);
	put(name, "data/small/2024_01/parts.json", json);
	dir(name, "data/big/2024_01");
	put(name, "flock.lock", "");
	put(name, "indexdb/18EB000000000001/parts.json", "[]");
	put(name, "indexdb/18EB000000000002/parts.json", "[]");
	put(name, "indexdb/18EB000000000003/parts.json", "[]");
	free(path);
	free(json);
}

/* ---- the real sample volumes ---- */

static char *sample(const char *set, int node)
{
	return xasprintf("%s/tests/data/%s/node%d", top_srcdir, set, node);
}

static struct merged *merge_sample(const char *set)
{
	struct merged *m = xcalloc(1, sizeof(*m));
	char *n[4];

	for (int i = 0; i < 4; i++)
		n[i] = sample(set, i);
	merge(m, n[0], n[1], n[2], n[3], NULL);
	for (int i = 0; i < 4; i++)
		free(n[i]);
	return m;
}

static size_t count_lower_files(struct merged *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->plan.node_count; i++)
		n += m->plan.nodes[i].kind == PLAN_LOWER_FILE;
	return n;
}

static void test_sample_v1_79(void)
{
	struct merged *m = merge_sample("v1.79.5");
	uint32_t part;

	is_int(m->rc, 0, "v1.79.5: the four sample volumes merge");
	is_int(m->plan.target, GEN_A, "v1.79.5: target generation A");
	is_int(m->plan.partition_count, 4, "v1.79.5: four partitions");
	ok(!shown(m, "data/small/2024_01/parts.json"), "v1.79.5: no parts.json for gen A");
	ok(shown(m, "data/small/2024_01/txn") && shown(m, "data/small/2024_01/tmp"),
	   "v1.79.5: txn/ and tmp/ shown (empty)");
	ok(shown(m, "indexdb/18EB73DE8A82FCD4") && shown(m, "indexdb/18EB73DE8A82FCD5"),
	   "v1.79.5: tables named after the largest prev and curr names");
	is_int(m->plan.table_count, 2, "v1.79.5: two tables (prev, curr)");
	ok(shown(m, "indexdb/18EB73DE8A82FCD5/converted-to-v1.28.0"),
	   "v1.79.5: the conversion flag is kept");
	ok(shown(m, "indexdb/18EB73DE8A82FCD5/flock.lock") && shown(m, "data/flock.lock"),
	   "v1.79.5: fresh lock files in data/ and the tables");
	part = plan_at(&m->plan, "data/small/2024_01/"
				 "4623_1107_20240120000406.000_20240131235629.000_18EB73DEA55F07FA/index.bin");
	ok(part != PLAN_NONE && m->plan.nodes[part].volume == 0,
	   "v1.79.5: a part of node0 is served from node0");
	is_int(node_at(m, "data/small/2024_01")->child_count, 4 + 2,
	       "v1.79.5: 2024_01 holds the four nodes' parts plus txn and tmp");
	is_int(m->plan.rename_count, 0, "v1.79.5: no collisions");
	is_int(plan_lower_bytes(&m->plan),
	       m->plan.summary[0].bytes + m->plan.summary[1].bytes + m->plan.summary[2].bytes +
		       m->plan.summary[3].bytes,
	       "v1.79.5: every byte accounted to a volume");
	ok(count_lower_files(m) > 16 * 5, "v1.79.5: every part file is in the plan");
	merged_free(m);
	free(m);
}

static void test_sample_v1_96(void)
{
	struct merged *m = merge_sample("v1.96.0-cluster");
	const char *json;

	is_int(m->rc, 0, "v1.96.0: merges");
	is_int(m->plan.target, GEN_B2, "v1.96.0: target generation B2");
	json = content(m, "data/small/2024_01/parts.json");
	is_str(json,
	       "{\"Small\":[\"18EB73E04E96289C\",\"18EB73E04F363929\",\"18EB73E0511876A3\","
	       "\"18EB73E0566ECB44\"],\"Big\":[]}",
	       "v1.96.0: merged parts.json lists all four nodes' parts, sorted");
	is_int(m->plan.table_count, 3, "v1.96.0: three tables (prev, curr, next)");
	is_str(content(m, "indexdb/18EB73E01243DB60/parts.json"),
	       "[\"18EB73E014CA3C1C\",\"18EB73E015958E60\",\"18EB73E01643B451\","
	       "\"18EB73E016A633EF\"]",
	       "v1.96.0: the curr table lists every node's curr parts");
	ok(shown(m, "indexdb/18EB73E01243DB5F") && shown(m, "indexdb/18EB73E01243DB61"),
	   "v1.96.0: prev and next named after the largest names of their role");
	ok(!shown(m, "indexdb/18EB73E0114CE9DD"), "v1.96.0: no per-node table is shown as is");
	ok(hidden_with(m, "data/small/2024_01/parts.json", "merged"),
	   "v1.96.0: per-node parts.json reported hidden");
	ok(!shown(m, "data/flock.lock"), "v1.96.0: no data/flock.lock for B2");
	merged_free(m);
	free(m);
}

static void test_sample_v1_150(void)
{
	struct merged *m = merge_sample("v1.150.0-cluster");

	is_int(m->rc, 0, "v1.150.0: merges");
	is_int(m->plan.target, GEN_C, "v1.150.0: target generation C");
	ok(!shown(m, "indexdb"), "v1.150.0: no legacy indexdb/ invented");
	ok(content(m, "data/indexdb/2024_02/parts.json") &&
		   strlen(content(m, "data/indexdb/2024_02/parts.json")) > 4 * 18,
	   "v1.150.0: per-partition indexdb parts.json lists the four nodes' parts");
	is_str(content(m, "data/small/2026_11/parts.json"), "{\"Small\":[],\"Big\":[]}",
	       "v1.150.0: an empty partition keeps an empty parts.json");
	ok(shown(m, "metadata/minTimestampForCompositeIndex"), "v1.150.0: metadata shown");
	merged_free(m);
	free(m);
}

static void test_sample_mixed(void)
{
	struct merged m;
	char *a = sample("v1.79.5", 0), *c = sample("v1.150.0-cluster", 1);

	merge(&m, a, c, NULL);
	is_int(m.rc, 0, "mixed A + C: merges");
	is_int(m.plan.target, GEN_C, "mixed A + C: target is the newest generation");
	ok(shown(&m, "indexdb/18EB73DE89BB1CCD"), "mixed A + C: gen-A tables become legacy");
	ok(content(&m, "data/small/2024_01/parts.json") &&
		   strstr(content(&m, "data/small/2024_01/parts.json"), "4623_1107_"),
	   "mixed A + C: gen-A parts are listed in parts.json");
	merged_free(&m);
	free(a);
	free(c);
}

/* ---- crafted trees ---- */

static void test_hidden_entries(void)
{
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	data_part("a", "data/small/2024_01/18EB000000000200", "unlisted");
	dir("a", "data/small/2024_01/18EB000000000300");
	data_part("a", "data/small/2024_01/18EB000000000400.must-remove.1", "x");
	data_part("a", "data/small/2024_01/18EB000000000500", "x");
	put("a", "data/small/2024_01/18EB000000000500/.delete-this-dir", "");
	put("a", "data/small/2024_01/parts.json.tmp.123", "{");
	put("a", "data/small/2024_01/appliedRetention.txt", "x");
	dir("a", "data/small/lost+found");
	put("a", "cache/metricName_tsid/data.0.bin", "x");
	put("a", "snapshots/20240101000000-1/x", "x");
	put("a", "unknown-file", "x");
	merge(&m, "a", NULL);
	is_int(m.rc, 0, "crafted: a volume with garbage merges");
	is_str(content(&m, "data/small/2024_01/parts.json"),
	       "{\"Small\":[\"18EB000000000100\"],\"Big\":[]}", "only the listed part is listed");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000200", "not listed"),
	   "an unlisted part is hidden");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000300", "empty"),
	   "an empty part dir is hidden");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000400.must-remove.1", "must-remove"),
	   "a .must-remove. dir is hidden");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000500", "delete-this-dir"),
	   "a dir with .delete-this-dir is hidden");
	ok(hidden_with(&m, "data/small/2024_01/parts.json.tmp.123", "interrupted"),
	   "a *.tmp.N file is hidden");
	ok(hidden_with(&m, "data/small/2024_01/appliedRetention.txt", "retention"),
	   "appliedRetention.txt is hidden");
	ok(hidden_with(&m, "data/small/lost+found", "YYYY_MM"), "lost+found is hidden");
	ok(!shown(&m, "data/small/lost+found"), "... and not shown");
	ok(hidden_with(&m, "cache", "caches"), "cache contents are hidden");
	ok(shown(&m, "cache") && node_at(&m, "cache")->child_count == 0,
	   "cache/ is shown empty");
	ok(shown(&m, "snapshots") && node_at(&m, "snapshots")->child_count == 0,
	   "snapshots/ is shown empty");
	ok(hidden_with(&m, "unknown-file", "unknown"), "unknown root entries are hidden");
	ok(shown(&m, "flock.lock") &&
		   node_at(&m, "flock.lock")->kind == PLAN_SYNTH_FILE,
	   "a fresh flock.lock is synthesized");
	merged_free(&m);
}

static void test_refusals(void)
{
	struct merged m;

	reset_scratch();
	put("notvm", "hello.txt", "x");
	merge(&m, "notvm", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "not a vmstorage volume") &&
		   strstr(m.err.message, "notvm"),
	   "a dir without data/ is refused, naming it");
	merged_free(&m);

	merge(&m, "missing", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "missing"), "a missing volume is refused: %s",
	   m.err.message);
	merged_free(&m);

	b2_volume("a", "18EB000000000100", "a");
	merge(&m, "a", "a", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "given twice"), "the same volume twice is refused");
	merged_free(&m);

	b2_volume("r", "18EB000000000100", "a");
	put("r", "restore-in-progress", "");
	merge(&m, "r", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "restore-in-progress"),
	   "restore-in-progress is refused");
	merged_free(&m);

	b2_volume("missingpart", "18EB000000000100", "a");
	put("missingpart", "data/small/2024_01/parts.json",
	    "{\"Small\":[\"18EB000000000100\",\"18EB000000000999\"],\"Big\":[]}");
	merge(&m, "missingpart", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "18EB000000000999") &&
		   strstr(m.err.message, "missing"),
	   "a listed part missing on disk is refused: %s", m.err.message);
	merged_free(&m);

	b2_volume("corrupt", "18EB000000000100", "a");
	put("corrupt", "data/small/2024_01/parts.json", "{\"Small\":[\"18EB0000");
	merge(&m, "corrupt", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "data/small/2024_01/parts.json") &&
		   strstr(m.err.message, "JSON"),
	   "a corrupt parts.json is refused, naming the file: %s", m.err.message);
	merged_free(&m);

	b2_volume("badname", "18EB000000000100", "a");
	put("badname", "indexdb/18EB000000000002/parts.json", "[\"../../etc\"]");
	merge(&m, "badname", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "../../etc"),
	   "a part name that is not a plain name is refused");
	merged_free(&m);

	data_part("txn", "data/small/2024_01/1_1_20240101000000.000_20240101000000.000_18EB000000000001", "a");
	put("txn", "data/small/2024_01/txn/18EB000000000009", "/abs/path -> /abs/other\n");
	put("txn", "data/flock.lock", "");
	merge(&m, "txn", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "pending transactions"),
	   "gen-A pending txn files are refused");
	merged_free(&m);

	b2_volume("empty-listed", "18EB000000000100", "a");
	dir("empty-listed", "data/small/2024_01/18EB000000000777");
	put("empty-listed", "data/small/2024_01/parts.json",
	    "{\"Small\":[\"18EB000000000100\",\"18EB000000000777\"],\"Big\":[]}");
	merge(&m, "empty-listed", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "18EB000000000777"),
	   "a listed but empty part is refused");
	merged_free(&m);
}

static void test_collisions(void)
{
	struct merged m, again;
	const char *json;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "bytes of a");
	b2_volume("b", "18EB000000000100", "bytes of b");
	b2_volume("c", "18EB000000000100", "bytes of a");
	merge(&m, "a", "b", "c", NULL);
	is_int(m.rc, 0, "colliding part names merge");
	is_int(m.plan.rename_count, 1, "one part renamed (b); c is an identical copy of a");
	is_str(m.plan.renames[0].new_name, "18EB0000000000FF",
	       "the new name sorts below every name in the dir");
	json = content(&m, "data/small/2024_01/parts.json");
	is_str(json, "{\"Small\":[\"18EB0000000000FF\",\"18EB000000000100\"],\"Big\":[]}",
	       "parts.json lists the renamed part");
	ok(node_at(&m, "data/small/2024_01/18EB0000000000FF/index.bin")->volume ==
		   1,
	   "the renamed part is b's");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000100", "identical"),
	   "the identical copy is hidden with its reason");
	merge(&again, "a", "b", "c", NULL);
	is_str(again.plan.renames[0].new_name, m.plan.renames[0].new_name,
	       "renames are deterministic across runs");
	merged_free(&again);
	merged_free(&m);

	/* Gen A keeps the counts prefix and changes only the suffix. */
	reset_scratch();
	data_part("a", "data/small/2024_01/10_2_20240101000000.000_20240101000001.000_18EB000000000100", "x");
	data_part("b", "data/small/2024_01/10_2_20240101000000.000_20240101000001.000_18EB000000000100", "y");
	put("a", "data/flock.lock", "");
	put("b", "data/flock.lock", "");
	merge(&m, "a", "b", NULL);
	is_int(m.rc, 0, "gen A: colliding names merge");
	is_str(m.plan.rename_count ? m.plan.renames[0].new_name : NULL,
	       "10_2_20240101000000.000_20240101000001.000_18EB0000000000FF",
	       "gen A: the prefix is kept, the suffix is lowered");
	merged_free(&m);
}

/* Renames compare only with the names shown at the time: c equals b, but b is
 * shown renamed, so c collides with a alone and is renamed too. */
static void test_collision_chains(void)
{
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "bytes of a");
	b2_volume("b", "18EB000000000100", "bytes of b");
	b2_volume("c", "18EB000000000100", "bytes of b");
	b2_volume("d", "18EB000000000100", "bytes of a");
	merge(&m, "a", "b", "c", "d", NULL);
	is_int(m.rc, 0, "a chain of collisions merges");
	is_int(m.plan.rename_count, 2, "b and c renamed, d an identical copy of a");
	is_str(m.plan.rename_count == 2 ? m.plan.renames[1].new_name : NULL, "18EB0000000000FE",
	       "each rename takes the next lower number");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000100", "identical"),
	   "d is hidden as a copy");
	merged_free(&m);

	/* No number is left below 0: refused, and nothing is freed twice. */
	reset_scratch();
	b2_volume("a", "0000000000000000", "x");
	b2_volume("b", "0000000000000000", "y");
	merge(&m, "a", "b", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "no free name below"),
	   "a collision at number 0 is refused: %s", m.err.message);
	merged_free(&m);
}

/* Writes the symlink scratch/volume/path -> scratch/target. */
static void link_to(const char *volume, const char *path, const char *target)
{
	char *from = xasprintf("%s/%s/%s", scratch, volume, path);
	char *to = xasprintf("%s/%s", scratch, target);

	unlink(from);
	if (symlink(to, from) < 0)
		abort();
	free(from);
	free(to);
}

static void move_to(const char *volume, const char *path, const char *target)
{
	char *from = xasprintf("%s/%s/%s", scratch, volume, path);
	char *to = xasprintf("%s/%s", scratch, target);

	mkdirs(to);
	rmdir(to);
	if (rename(from, to) < 0)
		abort();
	free(from);
	free(to);
}

/* Reads up to 63 bytes of a volume file through volume_open_file. */
static const char *read_lower(const struct volume *volume, const char *path, int *rc)
{
	static char buf[64];
	ssize_t n;
	int fd = volume_open_file(volume, path);

	*rc = fd < 0 ? fd : 0;
	if (fd < 0)
		return "";
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* A partition dir that is a symlink is followed, as vmstorage does; what is
 * below it is still opened beneath it. */
static void test_symlinked_partitions(void)
{
	const char *values = "data/small/2024_01/18EB000000000100/values.bin";
	struct merged m;
	const char *got;
	int rc;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "bytes of a");
	b2_volume("b", "18EB000000000101", "bytes of b");
	move_to("a", "data/small/2024_01", "elsewhere/small-2024_01");
	link_to("a", "data/small/2024_01", "elsewhere/small-2024_01");
	move_to("a", "data/big/2024_01", "elsewhere/big-2024_01");
	link_to("a", "data/big/2024_01", "elsewhere/big-2024_01");
	link_to("a", "data/small/2024_02", "elsewhere/missing");
	link_to("a", "data/small/foo", "elsewhere/small-2024_01");
	put("elsewhere", "secret", "secret");
	link_to("elsewhere", "small-2024_01/18EB000000000100/evil", "elsewhere/secret");
	merge(&m, "a", "b", NULL);
	is_int(m.rc, 0, "a volume with symlinked partitions merges");
	is_str(content(&m, "data/small/2024_01/parts.json"),
	       "{\"Small\":[\"18EB000000000100\",\"18EB000000000101\"],\"Big\":[]}",
	       "the parts below the symlinked partition are listed");
	is_int(node_at(&m, values)->volume, 0, "and served from their volume");
	is_int(node_at(&m, "data/big/2024_01")->kind, PLAN_DIR, "the big partition is shown");
	ok(!hidden_with(&m, "data/small/2024_01", "YYYY_MM") &&
		   !hidden_with(&m, "data/big/2024_01", "YYYY_MM"),
	   "a symlinked partition is not called foreign");
	ok(hidden_with(&m, "data/small/2024_02", "symlink to no directory"),
	   "a dangling partition symlink is hidden with its reason");
	ok(hidden_with(&m, "data/small/foo", "YYYY_MM") && m.volumes[0].link_count == 2,
	   "a symlink not named like a partition is not followed");
	ok(hidden_with(&m, "data/small/2024_01/18EB000000000100/evil", "not a regular file"),
	   "a symlink inside a symlinked partition is not shown");

	got = read_lower(&m.volumes[0], values, &rc);
	ok(rc == 0 && strcmp(got, "bytes of a") == 0,
	   "volume_open_file opens a file below a symlinked partition (%d)", rc);
	read_lower(&m.volumes[0], "data/small/2024_01/18EB000000000100/evil", &rc);
	is_int(rc, -ELOOP, "... but follows no symlink below it");
	read_lower(&m.volumes[0], "data/small/2024_01/../../../flock.lock", &rc);
	ok(rc < 0, "... and does not leave it with .. (%d)", rc);
	read_lower(&m.volumes[0], "data/small/foo/18EB000000000100/values.bin", &rc);
	is_int(rc, -ELOOP, "a symlink the scan did not follow is refused");

	/* The target is pinned by the scan: a swapped link changes nothing. */
	b2_volume("other", "18EB000000000100", "bytes of other");
	link_to("a", "data/small/2024_01", "other/data/small/2024_01");
	got = read_lower(&m.volumes[0], values, &rc);
	ok(rc == 0 && strcmp(got, "bytes of a") == 0,
	   "files are read from the target the scan saw (%s)", got);

	/* The daemon may drop the scan once the plan is built. */
	volume_drop_scan(&m.volumes[0]);
	got = read_lower(&m.volumes[0], values, &rc);
	ok(m.volumes[0].root.child_count == 0 && rc == 0 && strcmp(got, "bytes of a") == 0,
	   "after volume_drop_scan, files below a symlinked partition still open");
	merged_free(&m);
}

static void test_tables_and_metadata(void)
{
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	put("a", "indexdb/18EA000000000009/parts.json", "[]"); /* older than the window */
	data_part("a", "indexdb/18EB000000000002/18EB000000000050", "m");
	put("a", "indexdb/18EB000000000002/parts.json", "[\"18EB000000000050\"]");
	b2_volume("b", "18EB000000000101", "b");
	put("b", "indexdb/18EB000000000001/parts.json", "[]");
	merge(&m, "a", "b", NULL);
	is_int(m.rc, 0, "tables merge");
	ok(hidden_with(&m, "indexdb/18EA000000000009", "older"),
	   "a table older than the newest three is hidden");
	is_int(m.plan.table_count, 3, "three merged tables");
	is_str(content(&m, "indexdb/18EB000000000002/parts.json"), "[\"18EB000000000050\"]",
	       "the curr table lists the parts of every curr table");
	merged_free(&m);

	/* Roles that cannot be ordered: b's only table sorts after a's curr. */
	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	data_part("b", "data/small/2024_01/18EB000000000200", "b");
	put("b", "data/small/2024_01/parts.json", "{\"Small\":[\"18EB000000000200\"],\"Big\":[]}");
	put("b", "indexdb/18EC000000000001/parts.json", "[]");
	merge(&m, "a", "b", NULL);
	ok(m.rc < 0 && strstr(m.err.message, "roles"), "unorderable table roles are refused");
	merged_free(&m);
}

static void test_min_timestamp(void)
{
	static const unsigned char small[8] = { 0, 0, 0, 0, 0, 0, 0, 0x10 };
	static const unsigned char large[8] = { 0, 0, 0, 0, 0, 0, 0x10, 0 };
	struct merged m;
	char *path;
	FILE *f;
	uint32_t node;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	b2_volume("b", "18EB000000000101", "b");
	for (int i = 0; i < 2; i++) {
		path = xasprintf("%s/%s/metadata", scratch, i ? "b" : "a");
		mkdir(path, 0755);
		free(path);
		path = xasprintf("%s/%s/metadata/minTimestampForCompositeIndex", scratch,
				 i ? "b" : "a");
		f = fopen(path, "w");
		fwrite(i ? large : small, 1, 8, f);
		fclose(f);
		free(path);
	}
	merge(&m, "a", "b", NULL);
	node = plan_at(&m.plan, "metadata/minTimestampForCompositeIndex");
	ok(node != PLAN_NONE && m.plan.nodes[node].size == 8 &&
		   memcmp(m.plan.nodes[node].content, large, 8) == 0,
	   "minTimestampForCompositeIndex is the maximum over volumes");
	merged_free(&m);
}

static void chattr(const char *volume, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	char *full = xasprintf("%s/%s/%s", scratch, volume, path);

	if (chmod(full, mode) < 0 || chown(full, uid, gid) < 0)
		abort();
	free(full);
}

static bool attr_is(struct merged *m, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	const struct plan_node *node = node_at(m, path);
	bool same = node->attr.mode == mode && node->attr.uid == uid && node->attr.gid == gid;

	if (!same)
		diag("%s: mode %o uid %u gid %u", path, (unsigned)node->attr.mode,
		     (unsigned)node->attr.uid, (unsigned)node->attr.gid);
	return same;
}

/* What stat of the mount shows: the volume entry's attributes. */
static void test_attributes(void)
{
	const char *values = "data/small/2024_01/18EB000000000101/values.bin";
	char *full, *link_path;
	struct stat st;
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	b2_volume("b", "18EB000000000101", "b");
	chattr("a", "", 0751, 77, 88);
	chattr("b", "", 0755, 77, 99);
	chattr("a", "data/small/2024_01", 0750, 11, 22);
	chattr("b", "data/small/2024_01", 0770, 11, 22);
	chattr("b", "data/small/2024_01/18EB000000000101", 0711, 12, 13);
	chattr("b", values, 0600, 55, 66);
	full = xasprintf("%s/b/%s", scratch, values);
	link_path = xasprintf("%s/b/values.link", scratch);
	if (link(full, link_path) < 0 || stat(full, &st) < 0)
		abort();
	merge(&m, "a", "b", NULL);
	is_int(m.rc, 0, "attributes: merged");
	ok(attr_is(&m, values, S_IFREG | 0600, 55, 66), "a file has its volume file's mode and owner");
	ok(node_at(&m, values)->attr.blocks == (uint64_t)st.st_blocks &&
		   node_at(&m, values)->attr.nlink == 2,
	   "... its block count and link count");
	ok(attr_is(&m, "data/small/2024_01/18EB000000000101", S_IFDIR | 0711, 12, 13),
	   "a part dir has its volume dir's attributes");
	ok(attr_is(&m, "data/small/2024_01", S_IFDIR | 0750, 11, 22),
	   "a dir both volumes hold, the second granting more, has the first volume's");
	ok(attr_is(&m, "", S_IFDIR | 0751, 77, 88),
	   "the root is the first volume's root when the others grant as much");
	ok(attr_is(&m, "cache", S_IFDIR | 0751, 77, 88), "a dir no volume holds has its parent's");
	ok(attr_is(&m, "data/small/2024_01/parts.json", S_IFREG | 0640, 11, 22),
	   "a synthesized file is owned like its dir, 0644 narrowed to what it grants (0750)");
	ok(attr_is(&m, "flock.lock", S_IFREG | 0640, 77, 88),
	   "... at the root too (0751)");
	is_int(node_at(&m, "data/small")->attr.nlink, 4, "a dir's nlink counts its merged subdirs");
	merged_free(&m);
	free(full);
	free(link_path);
}

/* A dir several volumes hold: the first volume's owner, and per class (that
 * owner, its group, others) only what every volume's dir grants that class. */
static void test_merged_dir_mode(void)
{
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	b2_volume("b", "18EB000000000101", "b");
	b2_volume("c", "18EB000000000102", "c");
	chattr("a", "", 0755, 77, 88);
	chattr("b", "", 0700, 77, 0);
	chattr("c", "", 0755, 77, 88);
	/* owner 11/22; b's dir: another owner, the same group; c's: another
	 * owner and group */
	chattr("a", "data/small/2024_01", 03777, 11, 22);
	chattr("b", "data/small/2024_01", 02755, 33, 22);
	chattr("c", "data/small/2024_01", 01755, 44, 55);
	chattr("a", "data/big", 0755, 11, 22);
	chattr("b", "data/big", 0750, 11, 66);
	chattr("c", "data/big", 0755, 99, 22);
	merge(&m, "a", "b", "c", NULL);
	is_int(m.rc, 0, "merged dir mode: merged");
	ok(attr_is(&m, "", S_IFDIR | 0700, 77, 88),
	   "a private volume root makes the merged root private to its owner");
	ok(attr_is(&m, "cache", S_IFDIR | 0700, 77, 88), "... and the dirs no volume holds");
	ok(attr_is(&m, "data/small/2024_01", S_IFDIR | 01555, 11, 22),
	   "each class gets what every volume's dir grants it; setgid only if all have it, "
	   "sticky if any has it");
	ok(attr_is(&m, "data/big", S_IFDIR | 0500, 11, 22),
	   "the owner gets a dir's user bits if it owns it, its group bits if its group does; "
	   "the group gets the other bits of a dir another group owns");
	merged_free(&m);
}

/* A table merged into another volume's table of its role grants no one more
 * than both; owned as the table whose name the merge takes. */
static void test_merged_table_mode(void)
{
	struct merged m;

	reset_scratch();
	b2_volume("a", "18EB000000000100", "a");
	data_part("b", "data/small/2024_01/18EB000000000101", "b");
	put("b", "data/small/2024_01/parts.json",
	    "{\"Small\":[\"18EB000000000101\"],\"Big\":[]}");
	dir("b", "data/big/2024_01");
	put("b", "flock.lock", "");
	put("b", "indexdb/18EB000000000004/parts.json", "[]");
	put("b", "indexdb/18EB000000000005/parts.json", "[]");
	put("b", "indexdb/18EB000000000006/parts.json", "[]");
	chattr("a", "indexdb/18EB000000000001", 01750, 33, 44);
	chattr("b", "indexdb/18EB000000000004", 0755, 33, 44);
	chattr("a", "indexdb/18EB000000000002", 0700, 55, 66);
	chattr("b", "indexdb/18EB000000000005", 0755, 33, 44);
	chattr("a", "indexdb/18EB000000000003", 0751, 33, 44);
	chattr("b", "indexdb/18EB000000000006", 0751, 33, 44);
	merge(&m, "a", "b", NULL);
	is_int(m.rc, 0, "merged table mode: merged");
	ok(attr_is(&m, "indexdb/18EB000000000004", S_IFDIR | 01750, 33, 44),
	   "a merged table grants only what every table merged into it grants, sticky if any is");
	ok(attr_is(&m, "indexdb/18EB000000000005", S_IFDIR, 33, 44),
	   "a table another owner keeps 0700 leaves the merged table to no one but root");
	ok(attr_is(&m, "indexdb/18EB000000000006", S_IFDIR | 0751, 33, 44),
	   "a table merged from tables granting alike keeps their mode");
	merged_free(&m);
}

int main(void)
{
	static char resolved[4096];

	if (!realpath(getenv("top_srcdir") ? getenv("top_srcdir") : ".", resolved))
		return 1;
	top_srcdir = resolved;
	if (!mkdtemp(scratch))
		return 1;
	test_sample_v1_79();
	test_sample_v1_96();
	test_sample_v1_150();
	test_sample_mixed();
	test_hidden_entries();
	test_refusals();
	test_collisions();
	test_collision_chains();
	test_symlinked_partitions();
	test_tables_and_metadata();
	test_min_timestamp();
	test_attributes();
	test_merged_dir_mode();
	test_merged_table_mode();
	remove_tree_at(AT_FDCWD, scratch);
	return done_testing();
}
