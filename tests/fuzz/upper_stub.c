/* SPDX-License-Identifier: Apache-2.0 */
/* The stub attribute (user.vmunionfs.lower = "<volume>:<path>") of a file
 * in an upper, read by upper_stub_get, and the volume file it names opened
 * the way the daemon and materialize open it: whatever the attribute says,
 * the file opened lies inside the volume (or is the volume's root). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fuzz.h"
#include "upper.h"
#include "volume.h"

#define SAMPLE FUZZ_DATA_DIR "/v1.150.0-cluster/node0"

static struct volume volume;
static char volume_real[PATH_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path, *lower = NULL, proc[64], opened[PATH_MAX];
	int dirfd, index = -1, rc, fd;
	struct error err = { { 0 } };

	if (!volume.path && (volume_open(&volume, SAMPLE, &err) < 0 ||
			     !realpath(SAMPLE, volume_real)))
		fuzz_fail("%s: %s", SAMPLE, err.message);
	if (size == 0 || size > 65536)
		return 0;
	dirfd = fuzz_dir_open();
	fuzz_write(dirfd, "stub", "", 0);
	path = xasprintf("/proc/self/fd/%d/stub", dirfd);
	if (setxattr(path, UPPER_STUB_XATTR, data, size, 0) < 0)
		fuzz_fail("setxattr %s: %s", path, strerror(errno));
	rc = upper_stub_get(path, &index, &lower);
	FUZZ_ASSERT(rc == 1 || rc < 0);
	if (rc == 1 && index == 0) {
		fd = volume_open_file(&volume, lower);
		if (fd >= 0) {
			ssize_t n;

			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
			n = readlink(proc, opened, sizeof(opened) - 1);
			FUZZ_ASSERT(n > 0);
			opened[n] = '\0';
			/* The volume itself ("0:.") is no escape. */
			if (strncmp(opened, volume_real, strlen(volume_real)) != 0 ||
			    (opened[strlen(volume_real)] != '/' &&
			     opened[strlen(volume_real)] != '\0'))
				fuzz_fail("stub \"%s\" opened %s, outside %s", lower, opened,
					  volume_real);
			close(fd);
		}
	}
	free(lower);
	free(path);
	fuzz_dir_done(dirfd);
	return 0;
}
