/* SPDX-License-Identifier: Apache-2.0 */
/* The FUSE low-level filesystem of a read-only mount: the plan served from
 * memory, file bytes read from the volume file opened beneath its volume.
 * Nothing is written anywhere, so nothing is left behind by a kill -9. */
#ifndef VMUNION_FS_PLAN_H
#define VMUNION_FS_PLAN_H

#include <fuse_lowlevel.h>

#include "plan.h"
#include "util.h"

struct fs_plan;

/* Copies what serving needs out of plan, which may be freed afterwards (its
 * volumes may not: files are opened through them). timeout is the kernel's
 * entry and attribute cache, in seconds; passthrough lets the kernel read
 * volume files itself where it can. */
struct fs_plan *fs_plan_new(const struct plan *plan, double timeout, bool passthrough,
			    struct error *err);
void fs_plan_free(struct fs_plan *fs);
/* The session serving fs, before it serves: backing ids go back through it. */
void fs_plan_set_session(struct fs_plan *fs, struct fuse_session *session);
const struct fuse_lowlevel_ops *fs_plan_operations(void);

#endif
