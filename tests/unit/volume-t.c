/* SPDX-License-Identifier: Apache-2.0 */
/* volumes_open: several volumes come out each scanned whole; a failure
 * names the first failing volume in order and leaves no volume, and no fd,
 * open. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volume.h"
#include "tap.h"

#define VOLUMES 11

static char scratch[] = "/tmp/vmunion-volume-t.XXXXXX";

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int count = 0;

	while (dir && readdir(dir))
		count++;
	if (dir)
		closedir(dir);
	return count;
}

/* Volume i holds i + 1 parts in data/small/2024_01. */
static char *make_volume(int i)
{
	char *path = xasprintf("%s/v%d", scratch, i);

	for (int part = 0; part <= i; part++) {
		char *dir = xasprintf("%s/data/small/2024_01/17B0000000000%03d", path, part);
		char *cmd = xasprintf("mkdir -p '%s' && echo '{}' > '%s/metadata.json'", dir, dir);

		if (system(cmd) != 0)
			abort();
		free(cmd);
		free(dir);
	}
	return path;
}

static size_t parts_of(const struct volume *volume)
{
	const struct vnode *partition = vnode_at(&volume->root, "data/small/2024_01");

	return partition ? partition->child_count : 0;
}

static void test_all_open(char **paths)
{
	struct volume volumes[VOLUMES];
	struct error err;
	int ok_count = 0;

	is_int(volumes_open(volumes, paths, VOLUMES, &err), 0, "%d volumes open",
	       VOLUMES);
	for (int i = 0; i < VOLUMES; i++) {
		const struct vnode *meta = vnode_at(&volumes[i].root,
						    "data/small/2024_01/17B0000000000000/metadata.json");

		ok_count += strcmp(volumes[i].path, paths[i]) == 0 &&
			    parts_of(&volumes[i]) == (size_t)i + 1 && meta && meta->content;
		volume_close(&volumes[i]);
	}
	is_int(ok_count, VOLUMES, "each is its own volume, scanned whole, its contents read");
}

static void test_failure(char **paths)
{
	struct volume volumes[VOLUMES];
	char *missing_first = paths[3], *missing_last = paths[VOLUMES - 2];
	int fds = open_fds(), rc;
	struct error err;

	paths[3] = xasprintf("%s/missing-first", scratch);
	paths[VOLUMES - 2] = xasprintf("%s/missing-last", scratch);
	rc = volumes_open(volumes, paths, VOLUMES, &err);
	ok(rc < 0, "a missing volume fails them all");
	ok(strstr(err.message, "missing-first: cannot open volume") != NULL,
	   "the message names the first missing one, in order: %s", err.message);
	is_int(open_fds(), fds, "no fd stays open");
	free(paths[3]);
	free(paths[VOLUMES - 2]);
	paths[3] = missing_first;
	paths[VOLUMES - 2] = missing_last;
}

int main(void)
{
	char *paths[VOLUMES];

	if (!mkdtemp(scratch))
		return 1;
	for (int i = 0; i < VOLUMES; i++)
		paths[i] = make_volume(i);
	test_all_open(paths);
	test_failure(paths);
	test_all_open(paths);
	for (int i = 0; i < VOLUMES; i++)
		free(paths[i]);
	remove_tree_at(AT_FDCWD, scratch);
	return done_testing();
}
