/* SPDX-License-Identifier: Apache-2.0 */
/* Replays files through a fuzz harness without libFuzzer, as a TAP test:
 *   replay-NAME [FILE|DIR...]
 * Without arguments it replays $top_srcdir/tests/fuzz/corpus/NAME and
 * tests/fuzz/regressions/NAME (NAME is the program name after "replay-").
 * A harness that finds a problem aborts, which fails the test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

static unsigned tests;

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_file(const char *path)
{
	char *data;
	size_t len;
	int rc = read_file_at(AT_FDCWD, path, 16 << 20, &data, &len);

	if (rc < 0) {
		printf("not ok %u - %s: %s\n", ++tests, path, strerror(-rc));
		return;
	}
	fflush(stdout);
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	printf("ok %u - %s\n", ++tests, path);
	free(data);
}

static void replay(const char *path)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL;
	size_t count = 0, capacity = 0;
	DIR *dir;

	if (stat(path, &st) < 0) {
		printf("# %s: %s (skipped)\n", path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_file(path);
		return;
	}
	dir = opendir(path);
	while (dir && (de = readdir(dir)))
		if (de->d_name[0] != '.')
			*ARRAY_PUSH(names, count, capacity) = xasprintf("%s/%s", path, de->d_name);
	if (dir)
		closedir(dir);
	if (count)
		qsort(names, count, sizeof(*names), compare_names);
	for (size_t i = 0; i < count; i++) {
		replay(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/'), *name, *srcdir = getenv("top_srcdir");

	base = base ? base + 1 : argv[0];
	name = strncmp(base, "replay-", 7) == 0 ? base + 7 : base;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			replay(argv[i]);
	} else {
		char *corpus = xasprintf("%s/tests/fuzz/corpus/%s", srcdir ? srcdir : ".", name);
		char *regressions = xasprintf("%s/tests/fuzz/regressions/%s",
					      srcdir ? srcdir : ".", name);

		replay(corpus);
		replay(regressions);
		free(corpus);
		free(regressions);
	}
	if (tests == 0)
		printf("1..0 # SKIP no inputs found\n");
	else
		printf("1..%u\n", tests);
	return 0;
}
