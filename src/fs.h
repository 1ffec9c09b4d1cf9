/* SPDX-License-Identifier: Apache-2.0 */
/* The FUSE low-level filesystem over an upper tree (see upper.h). */
#ifndef VMUNION_FS_H
#define VMUNION_FS_H

#include <fuse_lowlevel.h>

#include "plan.h"
#include "util.h"
#include "volume.h"

struct fs_config {
	const struct plan *plan; /* a stub may only name a lower file of it */
	struct volume *volumes;  /* stubs name files of these, by index */
	size_t volume_count;
	int upper_tree_fd;
	double timeout;          /* kernel attribute and entry cache, seconds */
	bool passthrough;        /* the kernel may read and write upper files itself */
};

struct fs;

struct fs *fs_new(const struct fs_config *config, struct error *err);
/* The session of the mount, made after fs: the kernel is told through it of
 * what it cannot see (the other names of a file linked). Before it serves. */
void fs_set_session(struct fs *fs, struct fuse_session *session);
void fs_free(struct fs *fs);
const struct fuse_lowlevel_ops *fs_operations(void);

#endif
