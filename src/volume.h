/* SPDX-License-Identifier: Apache-2.0 */
/* A source volume: opened read-only and scanned into memory once.
 * The scan records facts only (names, stats, small metadata files); what is
 * live, hidden or refused is decided by the plan (plan.c). */
#ifndef VMUNION_VOLUME_H
#define VMUNION_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "util.h"

/* The fields of struct stat the merge reads (a third of its size: the scan
 * holds one per file). */
struct vnode_stat {
	mode_t st_mode;
	uid_t st_uid;
	gid_t st_gid;
	nlink_t st_nlink;
	off_t st_size;
	blkcnt_t st_blocks;
	struct timespec st_mtim;
	dev_t st_dev;
	ino_t st_ino;
};

/* A directory's POSIX ACLs (xattr values, NULL when it has none): part of
 * its permissions. */
struct vnode_acl {
	char *access, *defaults;
	size_t access_len, defaults_len;
};

struct vnode {
	char *name;
	struct vnode_stat st;
	struct vnode *children; /* sorted by name; directories only */
	size_t child_count;
	char *content;          /* small files the merge reads (see volume.c) */
	size_t content_len;
	struct vnode_acl *acl;  /* directories with an ACL only */
	bool not_scanned;       /* a directory whose contents the merge never shows */
	bool linked;            /* a partition that is a symlink: st and children are
				 * its target's, as vmstorage follows it */
};

/* A partition directory that is a symlink, pinned when the volume is scanned:
 * files below it are opened beneath its target. */
struct volume_link {
	char *path; /* "data/small/2024_02" */
	int dirfd;  /* O_PATH | O_DIRECTORY of the target */
};

struct volume {
	char *path;   /* as the user gave it */
	int dirfd;    /* O_RDONLY | O_DIRECTORY: every access goes through openat */
	int lock_fd;  /* flock.lock held shared by volume_lock, or -1 */
	struct vnode root;
	struct volume_link *links;
	size_t link_count, link_capacity;
};

int volume_open(struct volume *volume, const char *path, struct error *err);
/* Opens count volumes; on failure none stays open and err says why. (Not
 * in threads: their malloc arenas would keep the freed scans resident for
 * the life of a mount, and with one arena the threads contend; see
 * tests/bench/README.md.) */
int volumes_open(struct volume *volumes, char *const *paths, size_t count, struct error *err);
void volume_close(struct volume *volume);
/* Holds flock.lock of the volume shared until volume_close: a vmstorage
 * running there holds it exclusively (we would serve or copy a moving
 * target), and while we hold it none can start. Refused with -EBUSY when it
 * is held; a volume without flock.lock is not locked. Writes nothing. */
int volume_lock(struct volume *volume, struct error *err);
/* Frees the scanned tree (the plan keeps what it shows); the volume stays
 * open and locked for volume_open_file: what a daemon serving a plan needs
 * once the plan is built. */
void volume_drop_scan(struct volume *volume);

/* Opens a file of the volume O_RDONLY; the path may not leave the volume
 * (no "..", no symlinks), whatever a stub in an upper says. The one exception
 * is a symlinked partition (struct volume_link): a path below it is opened
 * beneath the target pinned at scan time, with the same rules. */
int volume_open_file(const struct volume *volume, const char *path);

const struct vnode *vnode_child(const struct vnode *dir, const char *name);
/* Looks up a relative path such as "data/small". */
const struct vnode *vnode_at(const struct vnode *root, const char *path);
bool vnode_is_dir(const struct vnode *node);
bool vnode_is_file(const struct vnode *node);

#endif
