/* A source volume: opened read-only and scanned into memory once.
 * The scan records facts only (names, stats, small metadata files); what is
 * live, hidden or refused is decided by the plan (plan.c). */
#ifndef VMUNION_VOLUME_H
#define VMUNION_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "util.h"

struct vnode {
	char *name;
	struct stat st;
	struct vnode *children; /* sorted by name; directories only */
	size_t child_count;
	char *content;          /* small files the merge reads (see volume.c) */
	size_t content_len;
	bool not_scanned;       /* a directory whose contents the merge never shows */
};

struct volume {
	char *path;   /* as the user gave it */
	int dirfd;    /* O_RDONLY | O_DIRECTORY: every access goes through openat */
	int lock_fd;  /* flock.lock held shared by volume_lock, or -1 */
	struct vnode root;
};

int volume_open(struct volume *volume, const char *path, struct error *err);
void volume_close(struct volume *volume);
/* Holds flock.lock of the volume shared until volume_close: a vmstorage
 * running there holds it exclusively (we would serve or copy a moving
 * target), and while we hold it none can start. Refused with -EBUSY when it
 * is held; a volume without flock.lock is not locked. Writes nothing. */
int volume_lock(struct volume *volume, struct error *err);
/* Frees the scan (root's tree) and keeps the volume open and locked: what a
 * daemon serving a plan needs once the plan is built. */
void volume_forget_scan(struct volume *volume);

/* Opens a file of the volume O_RDONLY; the path may not leave the volume
 * (no "..", no symlinks), whatever a stub in an upper says. */
int volume_open_file(const struct volume *volume, const char *path);

const struct vnode *vnode_child(const struct vnode *dir, const char *name);
/* Looks up a relative path such as "data/small". */
const struct vnode *vnode_at(const struct vnode *root, const char *path);
bool vnode_is_dir(const struct vnode *node);
bool vnode_is_file(const struct vnode *node);

#endif
