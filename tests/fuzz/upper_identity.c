/* SPDX-License-Identifier: Apache-2.0 */
/* The upper's identity file (UPPER/vmunionfs.json), through
 * upper_open_existing on a generated upper for a sample volume: any bytes
 * but the identity of these volumes are refused with a message. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "plan.h"
#include "upper.h"
#include "volume.h"

#define SAMPLE FUZZ_DATA_DIR "/v1.150.0-cluster/node0"

static struct volume volume;
static struct plan plan;
static char *want;	/* the identity upper_open writes for the plan */
static size_t want_len;

static void setup(void)
{
	struct error err = { { 0 } };
	struct upper upper;
	char *path = xasprintf("%s/made", fuzz_scratch());

	if (volume_open(&volume, SAMPLE, &err) < 0 || plan_build(&plan, &volume, 1, &err) < 0 ||
	    upper_open(&upper, path, &plan, &err) < 0 ||
	    read_file_at(upper.dirfd, "vmunionfs.json", 1 << 20, &want, &want_len) < 0)
		fuzz_fail("setup: %s", err.message);
	upper_close(&upper);
	remove_tree_at(AT_FDCWD, path);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct error err = { { 0 } };
	struct upper upper;
	char *path;
	int dirfd, rc;

	if (!want)
		setup();
	dirfd = fuzz_dir_open();
	fuzz_write(dirfd, "vmunionfs.json", data, size);
	FUZZ_ASSERT(mkdirat(dirfd, "tree", 0755) == 0);
	path = xasprintf("/proc/self/fd/%d", dirfd);
	rc = upper_open_existing(&upper, path, &plan, &err);
	if (rc == 0) {
		/* Accepted: exactly the identity (up to a NUL, see tests/README.md). */
		FUZZ_ASSERT(size >= want_len && memcmp(data, want, want_len) == 0);
		FUZZ_ASSERT(size == want_len || data[want_len] == '\0');
		upper_close(&upper);
	} else {
		FUZZ_ASSERT(err.message[0] != '\0');
		FUZZ_ASSERT(size != want_len || memcmp(data, want, want_len) != 0);
	}
	free(path);
	fuzz_dir_done(dirfd);
	return 0;
}
