/* SPDX-License-Identifier: Apache-2.0 */
/* make-collision: writes the crafted volumes of tests/e2e/check.sh.
 *
 *   make-collision [--single] [--series N] [--collide K] DIR
 *
 * DIR/vol0, vol1, vol2 (generation C, cluster layout unless --single): the
 * first K metricIDs of vol1 name other series than the same IDs in vol0;
 * vol2 replicates vol0's series under metricIDs of its own (see crafted.h).
 * Without arguments it is a TAP self-test (run by make check): the volumes
 * it writes read back as written. */
#include <getopt.h>

#include "crafted.h"
#include "tap.h"

struct count {
	size_t items;
	uint64_t first_id;
};

static int count_item(const struct vm_metric_name_item *mn, void *arg)
{
	struct count *c = arg;

	if (c->items++ == 0)
		c->first_id = mn->metric_id;
	return 0;
}

static void self_test_layout(bool cluster)
{
	char dir[] = "/tmp/make-collision.XXXXXX";
	struct error err = { "" };
	const char *what = cluster ? "cluster" : "single-node";

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	ok(crafted_collision_set(dir, cluster, 50, 3, &err) == 0, "%s: set written: %s", what,
	   err.message);
	for (int v = 0; v < 3; v++) {
		char *part = xasprintf("%s/vol%d/data/indexdb/2024_01/18EB7%011X", dir, v,
				       (unsigned)v + 1);
		int fd = open(part, O_RDONLY | O_DIRECTORY);
		struct count c = { 0 };

		ok(fd >= 0 && vm_indexdb_scan_metric_names(fd, cluster, count_item, &c, &err) == 0 &&
			   c.items == 50,
		   "%s: vol%d holds 50 MetricID->MetricName items (%zu)", what, v, c.items);
		is_int(c.first_id, v == 2 ? 0x18ED000000000000LL : 0x18EB000000000000LL,
		       "%s: vol%d starts at the expected metricID", what, v);
		if (fd >= 0)
			close(fd);
		free(part);
	}
	remove_tree_at(AT_FDCWD, dir);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "single", no_argument, NULL, 's' },
		{ "series", required_argument, NULL, 'n' },
		{ "collide", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	size_t series = 20, collide = 1;
	bool cluster = true;
	struct error err;
	int opt;

	if (argc == 1) {
		self_test_layout(true);
		self_test_layout(false);
		return done_testing();
	}
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 's')
			cluster = false;
		else if (opt == 'n')
			series = strtoul(optarg, NULL, 10);
		else if (opt == 'k')
			collide = strtoul(optarg, NULL, 10);
		else
			return 64;
	}
	if (optind != argc - 1 || series == 0 || collide > series) {
		fputs("usage: make-collision [--single] [--series N] [--collide K] DIR\n", stderr);
		return 64;
	}
	if (mkdir(argv[optind], 0755) < 0 && errno != EEXIST) {
		perror(argv[optind]);
		return 1;
	}
	if (crafted_collision_set(argv[optind], cluster, series, collide, &err) < 0) {
		fprintf(stderr, "make-collision: %s\n", err.message);
		return 1;
	}
	return 0;
}
