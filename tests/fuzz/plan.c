/* SPDX-License-Identifier: Apache-2.0 */
/* The plan builder on a generated tree. The input describes up to four
 * volumes, one entry a line:
 *   V                  start the next volume (the first is implicit)
 *   D path             a directory (parents are made as needed)
 *   F path<TAB>bytes   a file; \n, \t, \\ and \xHH escapes in bytes
 *   L path<TAB>target  a symbolic link
 * The tree is made in a scratch dir, scanned (volume_open), merged
 * (plan_build) and printed (plan_print_json), then removed. Properties: the
 * JSON parses; every volume file of the plan opens beneath its volume; the
 * plan of the same volumes is the same (fingerprint). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "plan.h"
#include "volume.h"

#define MAX_VOLUMES 4
#define MAX_ENTRIES 256

/* Only relative paths of plain names stay inside the tree. */
static bool safe_path(const char *path)
{
	char *copy, *name, *save;
	bool ok = path[0] != '\0' && path[0] != '/' && strlen(path) < 512;

	copy = xstrdup(path);
	for (name = strtok_r(copy, "/", &save); ok && name; name = strtok_r(NULL, "/", &save))
		ok = strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
	free(copy);
	return ok;
}

static void make_parents(int dirfd, const char *path)
{
	char *copy = xstrdup(path);

	for (char *slash = strchr(copy, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdirat(dirfd, copy, 0755);
		*slash = '/';
	}
	free(copy);
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the escapes of s in place; returns the length. */
static size_t unescape(char *s)
{
	size_t out = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '\\' || !s[i + 1]) {
			s[out++] = s[i];
			continue;
		}
		i++;
		if (s[i] == 'n')
			s[out++] = '\n';
		else if (s[i] == 't')
			s[out++] = '\t';
		else if (s[i] == 'x' && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
			s[out++] = (char)(hex(s[i + 1]) << 4 | hex(s[i + 2]));
			i += 2;
		} else
			s[out++] = s[i];
	}
	return out;
}

static void make_entry(int dirfd, char *line)
{
	char kind = line[0], *path, *arg;
	int fd;

	if (line[0] == '\0' || line[1] != ' ')
		return;
	path = line + 2;
	arg = strchr(path, '\t');
	if (arg)
		*arg++ = '\0';
	if (!safe_path(path))
		return;
	make_parents(dirfd, path);
	if (kind == 'D') {
		mkdirat(dirfd, path, 0755);
	} else if (kind == 'L' && arg) {
		symlinkat(arg, dirfd, path);
	} else if (kind == 'F') {
		fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0644);
		if (fd >= 0 && arg && write_all(fd, arg, unescape(arg)) < 0)
			fuzz_fail("write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

/* Makes the volumes described by text below root; returns their count. */
static size_t make_volumes(const char *root, char *text, char **paths)
{
	size_t count = 0, entries = 0;
	int dirfd = -1;
	char *save, *line;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "V") == 0 && count > 0 && count < MAX_VOLUMES) {
			close(dirfd);
			dirfd = -1;
		}
		if (dirfd < 0 && count == MAX_VOLUMES)
			break;
		if (dirfd < 0) {
			paths[count] = xasprintf("%s/v%zu", root, count);
			if (mkdir(paths[count], 0755) < 0 ||
			    (dirfd = open(paths[count], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
				fuzz_fail("%s: %s", paths[count], strerror(errno));
			count++;
		}
		if (++entries > MAX_ENTRIES)
			break;
		make_entry(dirfd, line);
	}
	if (dirfd >= 0)
		close(dirfd);
	return count;
}

static void check_plan(const struct plan *plan)
{
	char *json = plan_print_json(plan);
	cJSON *parsed = cJSON_Parse(json);

	FUZZ_ASSERT(parsed != NULL);
	cJSON_Delete(parsed);
	free(json);
	for (size_t i = 0; i < plan->node_count; i++) {
		const struct plan_node *node = &plan->nodes[i];
		int fd;

		if (node->kind != PLAN_LOWER_FILE)
			continue;
		FUZZ_ASSERT(node->volume >= 0 && (size_t)node->volume < plan->volume_count);
		fd = volume_open_file(&plan->volumes[node->volume], node->lower_path);
		if (fd < 0)
			fuzz_fail("plan node %s: volume file %s does not open: %s", node->name,
				  node->lower_path, strerror(-fd));
		close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct volume volumes[MAX_VOLUMES];
	char *text = fuzz_strndup(data, size), *paths[MAX_VOLUMES];
	int dirfd = fuzz_dir_open();
	char *root = xasprintf("/proc/self/fd/%d", dirfd), resolved[4096];
	size_t count, opened = 0;

	/* volume paths appear in the plan: use the real path of the dir. */
	FUZZ_ASSERT(realpath(root, resolved) != NULL);
	count = make_volumes(resolved, text, paths);
	for (; opened < count; opened++) {
		struct error err = { { 0 } };

		if (volume_open(&volumes[opened], paths[opened], &err) < 0) {
			FUZZ_ASSERT(err.message[0] != '\0');
			break;
		}
	}
	if (opened == count && count > 0) {
		struct plan plan, again;
		struct error err = { { 0 } };
		int rc = plan_build(&plan, volumes, count, &err);

		FUZZ_ASSERT(rc == 0 || err.message[0] != '\0');
		check_plan(&plan);
		FUZZ_ASSERT(plan_build(&again, volumes, count, NULL) == rc);
		FUZZ_ASSERT(rc < 0 || plan_fingerprint(&plan) == plan_fingerprint(&again));
		plan_free(&again);
		plan_free(&plan);
	}
	while (opened > 0)
		volume_close(&volumes[--opened]);
	for (size_t i = 0; i < count; i++)
		free(paths[i]);
	free(root);
	free(text);
	fuzz_dir_done(dirfd);
	return 0;
}
