/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE low-level operations of the writable preview: a passthrough over the
 * upper tree, where a stub is read from its volume file and copied up before
 * its first write. Modelled on libfuse's example/passthrough_ll.c and
 * fuse-overlayfs: each op replies exactly once, errors travel as -errno.
 *
 * A node is a path: its parent and its name. Every op opens the path beneath
 * the upper tree when it needs it (openat2 RESOLVE_BENEATH), so the daemon
 * holds no fd per inode whatever the upper's filesystem gives (no file
 * handles on overlayfs, none without CAP_DAC_READ_SEARCH), and a name given to
 * a new file is a new node even when the upper reuses an inode number.
 *
 * Permissions are the kernel's (default_permissions, on the attributes the
 * upper holds: the volumes' own); what is created is created as the caller.
 *
 * Lazy directories (see upper.h): a node below a lazy directory has no upper
 * file; it stands for a plan node (plan_node), served like the read-only
 * mount does: attributes from the plan, bytes from the volume file (a stub
 * without a stub file) or the plan's content. Anything that changes entries
 * populates their directory first (dir_populate), anything that changes a
 * node makes it an upper file first (node_make_upper): both populate the lazy
 * directories on the way, one populate at a time (fs->populating), and adopt
 * the nodes the kernel knows there (same node, same st_ino: a node keeps the
 * st_ino it was first shown with). The upper dir is filled and synced while
 * readers go on serving it from the plan; only the switch to the upper (the
 * adoption) holds fs->population for writing. Readers of plan_node and
 * plan_dir hold fs->population for reading, or node->lock: a populate changes
 * them under both. Population never goes back: a node that is an upper file,
 * or a dir that is populated, stays so.
 *
 * A file below a lazy dir has no node while nothing changes it: the kernel
 * knows it by its st_ino (plan_ino), which getattr and getxattr serve from
 * the plan, and its lookups are counted in fs->plan_lookups, so that a walk
 * costs the daemon 4 bytes per file. The first op that needs more makes its
 * node (node_for_plan_ino_locked), as does a population for each such file of
 * the dir the kernel still knows; the node takes over the count, and is
 * freed at the last forget like any other. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "creds.h"
#include "fd_cache.h"
#include "listing.h"
#include "log.h"
#include "metrics.h"
#include "passthrough.h"
#include "readahead.h"
#include "upper.h"

/* What open(2) flags an open passes on: openat2 refuses the kernel's
 * internal ones (__FMODE_EXEC of an execve). Not O_DIRECT: the kernel
 * already keeps an O_DIRECT open's I/O out of its cache, and sends it in
 * requests whose buffers are libfuse's and the daemon's, which O_DIRECT's
 * alignment would refuse (EINVAL). */
#define OPEN_FLAGS                                                                        \
	(O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC | O_NOATIME |       \
	 O_LARGEFILE)

/* The flags that change what a pread of an fd does: opens for reading
 * differing only in others (O_APPEND, O_NONBLOCK, O_SYNC, O_DIRECT ...)
 * share one fd, so that trying every combination costs the daemon no more
 * fds. */
#define READ_FLAGS O_NOATIME

/* A file unlinked from a lazy dir reaches the upper at most this late. */
#define REMOVED_FLUSH_SECONDS 2
/* Lazy dirs waiting so, at most: what an unmount has left to populate once
 * the kernel let go (fusermount3 -u does not wait for the daemon). */
#define PENDING_LIMIT 64

/* Volume files kept open for reads, at most (fd_cache.h). */
#define VOLUME_FD_LIMIT 1024

enum stub_kind {
	STUB_NONE,    /* the upper file holds its own bytes */
	STUB_OK,      /* bytes come from the volume file */
	STUB_REFUSED, /* a stub naming no file of the plan: EIO */
};

struct fs_file;

struct fs_node {
	struct fs_node *hash_next;
	struct fs_node *all_prev, *all_next; /* every node but the root */
	struct fs_node *parent;              /* NULL for the root, and once unlinked */
	char *name;
	ino_t ino;        /* what stat shows: node_new */
	ino_t upper_ino;  /* of the upper file, to notice another one; 0 when none */
	uint32_t plan_node; /* no upper file (a lazy parent): the plan node shown */
	uint32_t plan_dir;  /* a lazy dir: the plan dir whose children it has */
	/* The plan dir whose positions number the listing, kept once the dir
	 * is populated: the offsets a lazy listing gave stay good. */
	uint32_t listed_plan_dir;
	bool pending; /* in fs->pending: under fs->populating */
	/* The kernel knows it by plan_ino(plan_key), not by its address. */
	bool plan_nodeid;
	/* What fs->plan_buckets finds it by: a lazy dir's plan_dir, or the
	 * plan node of a plan_nodeid file; PLAN_NONE when in none. Under
	 * fs->mutex. */
	uint32_t plan_key;
	struct fs_node *plan_next;
	uint64_t lookups; /* the kernel's references */
	uint64_t refs;    /* child nodes and open files */
	/* Both held (copy_up_lock first, lock for writing) to change what
	 * follows, either to read it: copy-up turns a stub into a plain file
	 * and switches the fds of the files open on it. */
	pthread_rwlock_t lock;
	pthread_mutex_t copy_up_lock; /* one copy-up of this node at a time */
	enum stub_kind stub;
	uint32_t stub_file; /* STUB_OK: the plan node of its volume file */
	uint64_t linked_copy_ups; /* fs->linked_copy_ups when the stub was last read */
	struct fs_file *files;
	struct listing *listing; /* of a populated dir, once asked for: listing_lock_of */
	/* The kernel's passthrough opens of it (file_passthrough), and the
	 * backing id of its upper file they go to, 0 when none. */
	uint32_t backing_opens;
	int backing_id;
};

/* An open file: fi->fh, shared by the opens for reading of a node with the
 * same flags (file_share). */
struct fs_file {
	struct fs_file *next;
	struct fs_node *node;
	unsigned int opens; /* the kernel's opens that have it as fi->fh */
	int fd;     /* -1 when read from volume_file */
	int flags;  /* of the open, for the fd a copy-up gives */
	/* Not PLAN_NONE: reads come from this plan node's volume file, through
	 * fs->volume_fds: a user opening every file costs the daemon no more
	 * fds than the cache keeps. */
	uint32_t volume_file;
	bool lower; /* the volume file of a stub: copied up at the first write */
	/* Holds bytes the upper file may no longer have: the plan's content
	 * (a memfd), or a volume file a copy-up could not switch. */
	bool frozen;
	/* A stub opened for writing: its upper file, O_RDWR, so that the copy-up
	 * needs no name (it may have been unlinked since). -1 otherwise. */
	int upper_fd;
	/* The kernel reads and writes its upper file itself: no READ or WRITE
	 * reaches the daemon. */
	bool passthrough;
};

enum { LISTING_LOCKS = 64 };

/* A lazy dir that files were unlinked from, and since when (now_seconds). */
struct pending_dir {
	struct fs_node *dir; /* holds a reference */
	double since;
};

struct fs {
	struct fs_node root;
	struct fs_node *all; /* every other node, for fs_free */
	struct fs_node **buckets; /* by (parent, name) */
	struct fs_node **plan_buckets; /* by plan_key */
	size_t bucket_count;
	/* The table and every node's parent, name, lookups and refs. Taken
	 * after a node's lock, never before. */
	pthread_mutex_t mutex;
	/* Held for writing by a rename, from the upper's to the nodes'; for
	 * reading from building a path to opening it: the path then leads to
	 * the node's file, not to another's (parents exchanged) or nowhere. */
	pthread_rwlock_t renaming;
	/* Copy-ups of files with more than one name: another node of the
	 * same file may still think it a stub (atomic). */
	uint64_t linked_copy_ups;
	const struct fs_config *config;
	struct fuse_session *session; /* NULL until fs_set_session */
	struct plan_lower_index stubs; /* the files a stub may name */
	struct fd_cache *volume_fds;   /* of volume files open for reading, by plan node */
	time_t out_of_fds_logged;      /* when it last said so (atomic) */
	/* Held by a populate from start to end: what it fills in the upper
	 * nothing else changes, and what is lazy changes under it only.
	 * Taken before fs->population. */
	pthread_mutex_t populating;
	/* Held for writing by a populate's switch to the upper; for reading
	 * by whoever reads a node's plan_node or plan_dir. Taken before any
	 * node's locks. */
	pthread_rwlock_t population;
	bool opendir_is_optional; /* the kernel opens dirs by itself if told ENOSYS */
	bool passthrough; /* opens of upper files may use it (atomic) */
	/* Files unlinked from lazy dirs (see "files unlinked from lazy dirs"):
	 * a bit per plan node, set under fs->populating, read atomically. */
	unsigned char *removed;
	/* The kernel's lookups of each file it knows by plan_ino and that has
	 * no node (the node counts them once made), by plan node; under
	 * fs->mutex. UINT32_MAX sticks: such a file is never forgotten. */
	uint32_t *plan_lookups;
	/* The lazy dirs whose unlinks the upper does not know yet, and when
	 * the flusher may try again after a failure; under fs->populating. */
	struct pending_dir pending[PENDING_LIMIT];
	size_t pending_count;
	double flush_retry_at, flush_backoff;
	/* The thread that tells the upper, REMOVED_FLUSH_SECONDS later. */
	pthread_t flusher;
	bool flusher_started, flusher_stop; /* under flusher_lock */
	pthread_mutex_t flusher_lock;
	pthread_cond_t flusher_wake;
	/* Each guards the listings of the nodes at some addresses: a mutex in
	 * every node would cost each file of a walk its bytes. */
	pthread_mutex_t listing_locks[LISTING_LOCKS];
};

/* An open dir: fi->fh, 0 when the kernel opens dirs by itself. */
struct fs_dir {
	int fd; /* of its upper dir; -1 for a dir below a lazy one, which has none */
};

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Set in the st_ino of a node shown from the plan, which is also the nodeid
 * of a file below a lazy dir: far above what filesystems give their files,
 * and above any pointer of a user process. */
#define PLAN_INO_FLAG ((uint64_t)1 << 62)

static bool is_plan_nodeid(fuse_ino_t ino)
{
	return ino != FUSE_ROOT_ID && (ino & PLAN_INO_FLAG);
}

static struct fs_node *node_by_plan_ino(struct fs *fs, uint32_t index);
static struct fs_node *node_promote(struct fs *fs, uint32_t index);

/* The node the kernel knows by ino, made now for a file below a lazy dir
 * that has none: the op needs one. */
static struct fs_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs_of(req)->root;
	if (is_plan_nodeid(ino))
		return node_promote(fs_of(req), (uint32_t)(ino & ~PLAN_INO_FLAG));
	return (struct fs_node *)(uintptr_t)ino;
}

/* The node the kernel knows by ino, or NULL for a file below a lazy dir
 * that has none. */
static struct fs_node *node_known(struct fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	if (is_plan_nodeid(ino))
		return node_by_plan_ino(fs, (uint32_t)(ino & ~PLAN_INO_FLAG));
	return (struct fs_node *)(uintptr_t)ino;
}

static fuse_ino_t nodeid_of(const struct fs_node *node)
{
	return node->plan_nodeid ? node->ino : (fuse_ino_t)(uintptr_t)node;
}

static struct fs_file *file_of(struct fuse_file_info *fi)
{
	return (struct fs_file *)(uintptr_t)fi->fh;
}

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static uint64_t hash_bytes(uint64_t hash, const char *s)
{
	for (; *s; s++)
		hash = (hash ^ (unsigned char)*s) * 0x100000001b3ull;
	return hash;
}

/* ---- paths ---- */

static bool prepend(char *buf, size_t *pos, const char *s)
{
	size_t len = strlen(s);

	if (len > *pos)
		return false;
	*pos -= len;
	memcpy(buf + *pos, s, len);
	return true;
}

/* The path of node (and "/name" below it, when name is given) relative to
 * the upper tree; "." for the root. Under fs->mutex. */
static int node_path_locked(struct fs *fs, const struct fs_node *node, const char *name,
			    char *buf, size_t size)
{
	size_t end = size - 1, pos = end;

	buf[end] = '\0';
	if (name && !prepend(buf, &pos, name))
		return -ENAMETOOLONG;
	for (; node != &fs->root; node = node->parent) {
		if (!node->parent)
			return -ENOENT; /* unlinked */
		if ((pos != end && !prepend(buf, &pos, "/")) || !prepend(buf, &pos, node->name))
			return -ENAMETOOLONG;
	}
	if (pos == end && !prepend(buf, &pos, "."))
		return -ENAMETOOLONG;
	memmove(buf, buf + pos, size - pos);
	return 0;
}

static int node_path(struct fs *fs, const struct fs_node *node, const char *name, char *buf,
		     size_t size)
{
	int rc;

	pthread_mutex_lock(&fs->mutex);
	rc = node_path_locked(fs, node, name, buf, size);
	pthread_mutex_unlock(&fs->mutex);
	return rc;
}

/* Out of fds (rc): the volume files' cache gives back the fds no read
 * holds, for the daemon's other opens. True when it did: try again. */
static bool out_of_fds(struct fs *fs, int rc)
{
	return (rc == -EMFILE || rc == -ENFILE) && fd_cache_give_back(fs->volume_fds) > 0;
}

static int open_beneath_once(struct fs *fs, const char *path, const struct open_how *how)
{
	long fd = syscall(SYS_openat2, fs->config->upper_tree_fd, path, how, sizeof(*how));

	return fd < 0 ? -errno : (int)fd;
}

/* Opens path beneath the upper tree: no symlink, no "..", no magic link on
 * the way, whatever the tree holds. */
static int open_beneath(struct fs *fs, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = open_beneath_once(fs, path, &how);

	return out_of_fds(fs, fd) ? open_beneath_once(fs, path, &how) : fd;
}

/* The kernel serves FIFOs and devices itself: one the daemon opens was
 * put where a file was meanwhile, and would block its thread. So every open
 * is O_NONBLOCK, and one that finds no file or dir fails. 0 or -errno. */
static int refuse_special(int fd, int flags)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return -EIO;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_ACCMODE) < 0)
		return -errno;
	return 0;
}

/* Opens node (or its entry name, when given), by its path: no rename comes
 * between (fs->renaming). */
static int node_open(struct fs *fs, const struct fs_node *node, const char *name, int flags)
{
	bool plain = !(flags & (O_PATH | O_DIRECTORY));
	char path[PATH_MAX];
	int fd, rc;

	pthread_rwlock_rdlock(&fs->renaming);
	fd = node_path(fs, node, name, path, sizeof(path));
	if (fd == 0)
		fd = open_beneath(fs, path, plain ? flags | O_NONBLOCK : flags);
	pthread_rwlock_unlock(&fs->renaming);
	if (fd >= 0 && plain && (rc = refuse_special(fd, flags)) < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- the node table ---- */

static size_t bucket_of(struct fs *fs, const struct fs_node *parent, const char *name)
{
	return hash_bytes((uint64_t)(uintptr_t)parent * 0x9E3779B97F4A7C15ull, name) %
	       fs->bucket_count;
}

static struct fs_node *node_find_locked(struct fs *fs, const struct fs_node *parent,
					const char *name)
{
	struct fs_node *node = fs->buckets[bucket_of(fs, parent, name)];

	while (node && (node->parent != parent || strcmp(node->name, name) != 0))
		node = node->hash_next;
	return node;
}

static void node_hash_locked(struct fs *fs, struct fs_node *node, struct fs_node *parent,
			     const char *name)
{
	size_t bucket = bucket_of(fs, parent, name);

	if (node->name != name) {
		free(node->name);
		node->name = xstrdup(name);
	}
	/* Stored atomically: attr_timeout reads it without the mutex. */
	__atomic_store_n(&node->parent, parent, __ATOMIC_RELAXED);
	parent->refs++;
	node->hash_next = fs->buckets[bucket];
	fs->buckets[bucket] = node;
}

static void node_unhash_locked(struct fs *fs, struct fs_node *node)
{
	struct fs_node **link = &fs->buckets[bucket_of(fs, node->parent, node->name)];

	while (*link && *link != node)
		link = &(*link)->hash_next;
	if (*link)
		*link = node->hash_next;
}

static size_t plan_bucket_of(const struct fs *fs, uint32_t key)
{
	return (key * 0x9E3779B97F4A7C15ull >> 32) % fs->bucket_count;
}

static struct fs_node *plan_find_locked(struct fs *fs, uint32_t key)
{
	struct fs_node *node = fs->plan_buckets[plan_bucket_of(fs, key)];

	while (node && node->plan_key != key)
		node = node->plan_next;
	return node;
}

/* The newest node of a key is found first. */
static void plan_register_locked(struct fs *fs, struct fs_node *node, uint32_t key)
{
	size_t bucket = plan_bucket_of(fs, key);

	node->plan_key = key;
	node->plan_next = fs->plan_buckets[bucket];
	fs->plan_buckets[bucket] = node;
}

static void plan_unregister_locked(struct fs *fs, struct fs_node *node)
{
	struct fs_node **link;

	if (node->plan_key == PLAN_NONE)
		return;
	link = &fs->plan_buckets[plan_bucket_of(fs, node->plan_key)];
	while (*link && *link != node)
		link = &(*link)->plan_next;
	if (*link)
		*link = node->plan_next;
	node->plan_key = PLAN_NONE;
}

static void node_free(struct fs_node *node)
{
	pthread_rwlock_destroy(&node->lock);
	pthread_mutex_destroy(&node->copy_up_lock);
	if (node->listing)
		listing_free(node->listing);
	free(node->listing);
	free(node->name);
	free(node);
}

static void node_list_locked(struct fs *fs, struct fs_node *node)
{
	node->all_next = fs->all;
	if (fs->all)
		fs->all->all_prev = node;
	fs->all = node;
}

static void node_unlist_locked(struct fs *fs, struct fs_node *node)
{
	if (node->all_prev)
		node->all_prev->all_next = node->all_next;
	else
		fs->all = node->all_next;
	if (node->all_next)
		node->all_next->all_prev = node->all_prev;
}

/* Frees node, and then its parents, while nothing refers to them. */
static void node_put_locked(struct fs *fs, struct fs_node *node)
{
	while (node != &fs->root && node->lookups == 0 && node->refs == 0) {
		struct fs_node *parent = node->parent;

		if (parent)
			node_unhash_locked(fs, node);
		plan_unregister_locked(fs, node);
		node_unlist_locked(fs, node);
		node_free(node);
		if (!parent)
			return;
		parent->refs--;
		node = parent;
	}
}

/* No name leads to node any more: unlinked, removed, or replaced. No
 * mutex (node->parent is stored atomically): the answer may be stale as
 * soon as it is given either way, and the change that takes the name tells
 * the kernel in its own reply. */
static bool node_is_removed(const struct fs *fs, const struct fs_node *node)
{
	return node != &fs->root && !__atomic_load_n(&node->parent, __ATOMIC_RELAXED);
}

/* The entry is gone (unlinked, or replaced by a rename): the node keeps
 * serving what the kernel still has open, but no name leads to it. */
static void node_detach_locked(struct fs *fs, struct fs_node *node)
{
	struct fs_node *parent = node->parent;

	if (!parent)
		return;
	node_unhash_locked(fs, node);
	__atomic_store_n(&node->parent, NULL, __ATOMIC_RELAXED);
	parent->refs--;
	node_put_locked(fs, node);
	node_put_locked(fs, parent);
}

static void node_detach(struct fs *fs, struct fs_node *parent, const char *name)
{
	struct fs_node *node;

	pthread_mutex_lock(&fs->mutex);
	node = node_find_locked(fs, parent, name);
	if (node)
		node_detach_locked(fs, node);
	pthread_mutex_unlock(&fs->mutex);
}

/* Logs about the entry name of parent, by its path in the upper tree. */
static void log_entry(struct fs *fs, const struct fs_node *parent, const char *name,
		      const char *what)
{
	char path[PATH_MAX];

	if (node_path(fs, parent, name, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "%s", name ? name : "(an entry removed since)");
	log_error("upper tree/%s: %s", path, what);
}

/* Reads the stub reference of a new node's file (fd, O_PATH): it must name
 * a file the plan shows, whose blocks the node then reports. That file's
 * plan node, or PLAN_NONE. */
static uint32_t node_load_stub(struct fs *fs, struct fs_node *node, int fd,
			       const struct fs_node *parent, const char *name)
{
	const struct plan_node *planned;
	char path[64], *lower = NULL, *why;
	int volume = -1, rc;

	proc_path(path, sizeof(path), fd);
	rc = upper_stub_get(path, &volume, &lower);
	if (rc == 0)
		return PLAN_NONE;
	node->stub = STUB_REFUSED;
	if (rc < 0) {
		why = xasprintf("cannot read its stub reference: %s; reads fail with EIO",
				strerror(-rc));
		log_entry(fs, parent, name, why);
		free(why);
		return PLAN_NONE;
	}
	planned = volume >= 0 && (size_t)volume < fs->config->volume_count
			  ? plan_lower_index_find(&fs->stubs, volume, lower)
			  : NULL;
	if (!planned) {
		why = xasprintf("its stub names %d:%s, which is no file of the merged volumes; "
				"reads fail with EIO",
				volume, lower);
		log_entry(fs, parent, name, why);
		free(why);
		free(lower);
		return PLAN_NONE;
	}
	free(lower);
	node->stub = STUB_OK;
	node->stub_file = (uint32_t)(planned - fs->config->plan->nodes);
	return node->stub_file;
}

/* Readers come and go all the time; a copy-up or a populate must still get
 * in. Such a lock may not be taken twice for reading by one thread. */
static void rwlock_init_prefer_writer(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

/* What a new node stands for: an upper file (st, fd O_PATH), or a plan node
 * below a lazy dir (plan_node; st is then the plan's). */
struct node_source {
	const struct stat *st;
	int fd;
	uint32_t plan_node;
	uint32_t plan_dir; /* a lazy dir's plan dir, or PLAN_NONE */
};

/* The st_ino of a node shown from the plan: it meets no upper file's. */
static ino_t plan_ino(uint32_t index)
{
	return PLAN_INO_FLAG | index;
}

/* The attributes of a plan node, as the read-only mount shows them but for a
 * file's link count. */
static void plan_stat(const struct plan *plan, uint32_t index, struct stat *st)
{
	const struct plan_node *node = &plan->nodes[index];

	memset(st, 0, sizeof(*st));
	st->st_ino = plan_ino(index);
	st->st_mode = node->attr.mode;
	/* A file's stub will be a file of its own: one link, whatever the
	 * volume file has (a snapshot's); a population changes no attribute. */
	st->st_nlink = node->kind == PLAN_DIR ? node->attr.nlink : 1;
	st->st_uid = node->attr.uid;
	st->st_gid = node->attr.gid;
	st->st_size = (off_t)node->size;
	st->st_blocks = (blkcnt_t)node->attr.blocks;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = node->mtime;
}

/* Whether the plan node index was unlinked from its lazy dir. */
static bool plan_child_removed(const struct fs *fs, uint32_t index)
{
	return __atomic_load_n(&fs->removed[index / 8], __ATOMIC_ACQUIRE) & (1u << (index % 8));
}

/* A volume file below a lazy dir is a stub without a stub file. */
static void node_plan_stub(struct fs *fs, struct fs_node *node)
{
	const struct plan_node *planned = &fs->config->plan->nodes[node->plan_node];

	if (planned->kind != PLAN_LOWER_FILE)
		return;
	node->stub = STUB_OK;
	node->stub_file = node->plan_node;
}

/* The plan node an upper file or dir (fd, O_PATH) came from, copied up or
 * populated since, or PLAN_NONE: one the mount made has none. */
static uint32_t upper_origin(struct fs *fs, int fd, const struct stat *st)
{
	char path[64];
	uint32_t origin;

	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return PLAN_NONE;
	proc_path(path, sizeof(path), fd);
	return upper_origin_get(path, fs->config->plan, &origin) == 1 ? origin : PLAN_NONE;
}

/* A node shows the st_ino of the plan node its file came from, whichever
 * name and node reach it (links, renames), before and after its copy-up or
 * population: so listings and stat agree, and a kernel that forgot a node
 * gets the same st_ino back. A file the mount made shows its own. */
static struct fs_node *node_new(struct fs *fs, const struct node_source *source,
				const struct fs_node *parent, const char *name)
{
	struct fs_node *node = xcalloc(1, sizeof(*node));
	const struct stat *st = source->st;
	uint32_t origin = source->plan_node != PLAN_NONE ? source->plan_node : source->plan_dir;

	if ((uintptr_t)node & PLAN_INO_FLAG)
		abort(); /* its nodeid would read as a plan_ino */
	node->plan_key = PLAN_NONE;
	rwlock_init_prefer_writer(&node->lock);
	pthread_mutex_init(&node->copy_up_lock, NULL);
	node->plan_node = source->plan_node;
	node->plan_dir = node->listed_plan_dir = source->plan_dir;
	node->upper_ino = node->plan_node != PLAN_NONE ? 0 : st->st_ino;
	node->stub_file = PLAN_NONE;
	node->linked_copy_ups = __atomic_load_n(&fs->linked_copy_ups, __ATOMIC_ACQUIRE);
	node->name = xstrdup(name);
	if (node->plan_node != PLAN_NONE)
		node_plan_stub(fs, node);
	else if (S_ISREG(st->st_mode) && source->fd >= 0)
		origin = node_load_stub(fs, node, source->fd, parent, name);
	if (origin == PLAN_NONE && source->fd >= 0 && node->stub == STUB_NONE)
		origin = upper_origin(fs, source->fd, st);
	node->ino = origin != PLAN_NONE ? plan_ino(origin) : st->st_ino;
	return node;
}

/* Finds or adds the node of entry name of parent, and counts a lookup of it.
 * Under fs->population, held for reading. */
static struct fs_node *node_get(struct fs *fs, struct fs_node *parent, const char *name,
				const struct node_source *source)
{
	struct fs_node *node, *made = NULL;

	pthread_mutex_lock(&fs->mutex);
	for (;;) {
		node = node_find_locked(fs, parent, name);
		/* Another file under a known name: the upper changed behind us. */
		if (node && source->plan_node == PLAN_NONE &&
		    node->upper_ino != source->st->st_ino) {
			node_detach_locked(fs, node);
			node = NULL;
		}
		if (node || made)
			break;
		pthread_mutex_unlock(&fs->mutex);
		made = node_new(fs, source, parent, name);
		pthread_mutex_lock(&fs->mutex);
	}
	if (!node) {
		node = made;
		made = NULL;
		node_hash_locked(fs, node, parent, node->name);
		node_list_locked(fs, node);
		if (node->plan_dir != PLAN_NONE)
			plan_register_locked(fs, node, node->plan_dir);
	}
	node->lookups++;
	pthread_mutex_unlock(&fs->mutex);
	if (made)
		node_free(made);
	return node;
}

static void plan_lookups_add_locked(struct fs *fs, uint32_t index)
{
	if (fs->plan_lookups[index] < UINT32_MAX)
		fs->plan_lookups[index]++;
}

static void plan_lookups_drop_locked(struct fs *fs, uint32_t index, uint64_t count)
{
	uint32_t *lookups = &fs->plan_lookups[index];

	if (*lookups != UINT32_MAX)
		*lookups -= count < *lookups ? (uint32_t)count : *lookups;
}

/* Counts a lookup of the file name of lazy dir, plan node index: its node's
 * when it has one, which is returned, else in fs->plan_lookups (NULL: the
 * kernel knows it by plan_ino). Under fs->population, held for reading. */
static struct fs_node *plan_file_show(struct fs *fs, struct fs_node *dir, const char *name,
				      uint32_t index)
{
	struct fs_node *node;

	pthread_mutex_lock(&fs->mutex);
	node = node_find_locked(fs, dir, name);
	if (node)
		node->lookups++;
	else
		plan_lookups_add_locked(fs, index);
	pthread_mutex_unlock(&fs->mutex);
	return node;
}

/* The node of file index the kernel knows by plan_ino, made now, taking
 * over the kernel's lookups: the entry name of dir (its lazy dir, or one
 * just populated), or nameless when dir is NULL (unlinked since). Under
 * fs->mutex. */
static struct fs_node *node_for_plan_ino_locked(struct fs *fs, uint32_t index,
						struct fs_node *dir)
{
	const struct plan *plan = fs->config->plan;
	const char *name = plan->nodes[index].name;
	struct node_source source = { .fd = -1, .plan_node = index, .plan_dir = PLAN_NONE };
	struct fs_node *node = dir ? node_find_locked(fs, dir, name) : NULL;
	uint32_t lookups = fs->plan_lookups[index];
	struct stat st;

	if (!node) {
		plan_stat(plan, index, &st);
		source.st = &st;
		node = node_new(fs, &source, dir, name);
		if (dir)
			node_hash_locked(fs, node, dir, node->name);
		node_list_locked(fs, node);
	}
	node->lookups += lookups == UINT32_MAX ? UINT64_MAX / 2 : lookups;
	fs->plan_lookups[index] = 0;
	node->plan_nodeid = true;
	plan_unregister_locked(fs, node);
	plan_register_locked(fs, node, index);
	return node;
}

static struct fs_node *node_by_plan_ino_locked(struct fs *fs, uint32_t index)
{
	struct fs_node *node = plan_find_locked(fs, index);

	return node && node->plan_nodeid ? node : NULL;
}

static struct fs_node *node_by_plan_ino(struct fs *fs, uint32_t index)
{
	struct fs_node *node;

	pthread_mutex_lock(&fs->mutex);
	node = node_by_plan_ino_locked(fs, index);
	pthread_mutex_unlock(&fs->mutex);
	return node;
}

/* The node of file index the kernel knows by plan_ino, made if need be. Its
 * dir is the lazy one that shows it: a population would have made it. */
static struct fs_node *node_promote(struct fs *fs, uint32_t index)
{
	const struct plan *plan = fs->config->plan;
	struct fs_node *node, *dir;

	pthread_rwlock_rdlock(&fs->population);
	pthread_mutex_lock(&fs->mutex);
	node = node_by_plan_ino_locked(fs, index);
	if (!node) {
		uint32_t plan_dir = plan->nodes[index].parent;

		dir = plan_find_locked(fs, plan_dir);
		if (dir && (dir->plan_dir != plan_dir || !dir->parent || plan_child_removed(fs, index)))
			dir = NULL;
		node = node_for_plan_ino_locked(fs, index, dir);
	}
	pthread_mutex_unlock(&fs->mutex);
	pthread_rwlock_unlock(&fs->population);
	return node;
}

static void node_forget_locked(struct fs *fs, struct fs_node *node, uint64_t count)
{
	if (node == &fs->root)
		return;
	node->lookups -= count < node->lookups ? count : node->lookups;
	node_put_locked(fs, node);
}

/* The kernel forgets count lookups of the file it knows by ino: a node's,
 * or one of fs->plan_lookups. */
static void forget_nodeid(struct fs *fs, fuse_ino_t ino, uint64_t count)
{
	uint32_t index = (uint32_t)(ino & ~PLAN_INO_FLAG);
	struct fs_node *node;

	pthread_mutex_lock(&fs->mutex);
	node = !is_plan_nodeid(ino) ? node_known(fs, ino) : node_by_plan_ino_locked(fs, index);
	if (node)
		node_forget_locked(fs, node, count);
	else
		plan_lookups_drop_locked(fs, index, count);
	pthread_mutex_unlock(&fs->mutex);
}

/* ---- stubs ---- */

/* An fd of the volume file of plan node index, which must still hold what
 * the plan says, or -errno: a file gone or changed is EIO, as on the
 * read-only mount. Out of fds is not reported: fd_cache makes room and tries
 * again. */
static int volume_file_open(struct fs *fs, uint32_t index)
{
	const struct plan_node *planned = &fs->config->plan->nodes[index];
	const struct volume *volume = &fs->config->volumes[planned->volume];
	int fd = volume_open_file(volume, planned->lower_path);
	struct stat st;

	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM)
		return fd;
	if (fd < 0) {
		log_error("%s/%s: %s: the volume changed underneath the mount (EIO)",
			  volume->path, planned->lower_path, strerror(-fd));
		return -EIO;
	}
	if (fstat(fd, &st) < 0)
		st.st_size = 0;
	if ((uint64_t)st.st_size >= planned->size)
		return fd;
	log_error("%s/%s: %jd bytes, but the plan says %" PRIu64 ": the volume file changed "
		  "underneath the mount; reads fail with EIO",
		  volume->path, planned->lower_path, (intmax_t)st.st_size, planned->size);
	close(fd);
	return -EIO;
}

/* volume_file_open for an fd of one's own (a copy-up's). */
static int volume_file_open_own(struct fs *fs, uint32_t index)
{
	int fd = volume_file_open(fs, index);

	return out_of_fds(fs, fd) ? volume_file_open(fs, index) : fd;
}

/* fd_cache_open_fn of fs->volume_fds. */
static int open_cached_volume_file(uint32_t index, void *fs)
{
	return volume_file_open(fs, index);
}

/* The volume file of plan node index from the cache, held until
 * fd_cache_put; NULL and *rc a -errno if it cannot be opened. Out of fds,
 * every read of a file the cache does not hold fails: one line a second
 * says so, whoever keeps the daemon there. */
static struct fd_hold *volume_file_hold(struct fs *fs, uint32_t index, int *rc)
{
	struct fd_hold *hold = fd_cache_get(fs->volume_fds, index, rc);

	if (!hold && (*rc == -EMFILE || *rc == -ENFILE)) {
		const struct plan_node *planned = &fs->config->plan->nodes[index];

		log_open_limit(&fs->out_of_fds_logged, fs->config->volumes[planned->volume].path,
			       planned->lower_path, *rc);
	}
	return hold;
}

/* An open of a volume file fails as its reads would. */
static int volume_file_check(struct fs *fs, uint32_t index)
{
	int rc = 0;
	struct fd_hold *hold = volume_file_hold(fs, index, &rc);

	if (hold)
		fd_cache_put(fs->volume_fds, hold);
	return rc;
}

/* The fd of an open file: its own, or its volume file's, held in the cache
 * (*hold) until fd_cache_put; or -errno. Under file->node->lock. */
static int file_fd_hold(struct fs *fs, const struct fs_file *file, struct fd_hold **hold)
{
	int rc;

	*hold = NULL;
	if (file->volume_file == PLAN_NONE)
		return file->fd;
	*hold = volume_file_hold(fs, file->volume_file, &rc);
	return *hold ? fd_hold_fd(*hold) : rc;
}

static int reopen(struct fs *fs, const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0 && out_of_fds(fs, -errno))
		fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

/* After a copy-up, files open on the stub read the upper file, reopened
 * from upper (an fd of it) with each open's flags: no name is needed. Under
 * node->lock held for writing. */
static void switch_files(struct fs *fs, struct fs_node *node, int upper)
{
	char path[64];

	proc_path(path, sizeof(path), upper);
	for (struct fs_file *file = node->files; file; file = file->next) {
		int fd;

		if (!file->lower)
			continue;
		file->lower = false;
		if (file->upper_fd >= 0) {
			close(file->upper_fd);
			file->upper_fd = -1;
		}
		fd = reopen(fs, path, (file->flags & OPEN_FLAGS & ~O_TRUNC) | O_CLOEXEC);
		if (fd < 0) {
			/* Still the volume file, read-only: writes fail. */
			log_error("cannot reopen a copied-up file: %s", strerror(-fd));
			file->frozen = true;
			continue;
		}
		file->fd = fd;
		file->volume_file = PLAN_NONE;
	}
}

/* An fd of node's upper file: that of a stub open for writing (whose name
 * may be gone), or else opened by path with flags. Under node->lock. */
static int node_upper_open(struct fs *fs, const struct fs_node *node, int flags)
{
	for (const struct fs_file *file = node->files; file; file = file->next) {
		if (file->upper_fd >= 0) {
			int fd = fcntl(file->upper_fd, F_DUPFD_CLOEXEC, 0);

			return fd < 0 ? -errno : fd;
		}
	}
	return node_open(fs, node, NULL, flags);
}

/* A hard link of a stub may have been copied up through another node: the
 * file then has no stub reference left. Under node->copy_up_lock and
 * node->lock held for writing. */
static void recheck_stub(struct fs *fs, struct fs_node *node)
{
	uint64_t now = __atomic_load_n(&fs->linked_copy_ups, __ATOMIC_ACQUIRE);
	char path[64], *lower = NULL;
	int fd, volume, rc;

	if (node->stub != STUB_OK || node->linked_copy_ups == now ||
	    node->plan_node != PLAN_NONE)
		return;
	fd = node_upper_open(fs, node, O_PATH);
	if (fd < 0)
		return;
	proc_path(path, sizeof(path), fd);
	rc = upper_stub_get(path, &volume, &lower);
	free(lower);
	if (rc >= 0)
		__atomic_store_n(&node->linked_copy_ups, now, __ATOMIC_RELAXED);
	if (rc == 0) {
		node->stub = STUB_NONE;
		switch_files(fs, node, fd);
	}
	close(fd);
}

/* recheck_stub, when a linked file was copied up since node last looked. */
static void node_recheck(struct fs *fs, struct fs_node *node)
{
	if (__atomic_load_n(&node->linked_copy_ups, __ATOMIC_RELAXED) ==
	    __atomic_load_n(&fs->linked_copy_ups, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&node->copy_up_lock);
	pthread_rwlock_wrlock(&node->lock);
	recheck_stub(fs, node);
	pthread_rwlock_unlock(&node->lock);
	pthread_mutex_unlock(&node->copy_up_lock);
}

/* A stub about to be copied up (path) is marked with its file's plan path,
 * so that it shows the same st_ino after (node_new). */
static int keep_origin(struct fs *fs, const struct fs_node *node, const char *path)
{
	char *origin = plan_path(fs->config->plan, node->stub_file);
	int rc = upper_origin_set(path, origin);

	free(origin);
	return rc;
}

/* Gives a stub its own bytes before the first write to it: the first keep
 * bytes (all when keep < 0). Copy-ups of different nodes run in parallel. */
static int copy_up(struct fs *fs, struct fs_node *node, off_t keep)
{
	const struct plan_node *planned;
	char path[64];
	enum stub_kind stub;
	int rc, fd = -1, lower = -1;
	struct stat st;

	pthread_mutex_lock(&node->copy_up_lock);
	pthread_rwlock_wrlock(&node->lock);
	recheck_stub(fs, node);
	stub = node->stub;
	if (stub == STUB_OK)
		fd = node_upper_open(fs, node, O_RDWR);
	pthread_rwlock_unlock(&node->lock);
	/* Only a copy-up changes the stub fields, and we hold its lock. */
	if (stub != STUB_OK) {
		pthread_mutex_unlock(&node->copy_up_lock);
		return stub == STUB_REFUSED ? -EIO : 0;
	}
	planned = &fs->config->plan->nodes[node->stub_file];
	rc = fd < 0 ? fd : (lower = volume_file_open_own(fs, node->stub_file));
	if (rc >= 0) {
		proc_path(path, sizeof(path), fd);
		rc = keep_origin(fs, node, path);
		if (rc == 0)
			rc = upper_copy_up(fd, lower, path, keep);
		if (rc == 0 && fstat(fd, &st) == 0 && st.st_nlink > 1)
			__atomic_add_fetch(&fs->linked_copy_ups, 1, __ATOMIC_RELEASE);
		if (rc < 0) {
			log_error("copy-up of %s/%s into the upper failed: %s; it stays as it was",
				  fs->config->volumes[planned->volume].path, planned->lower_path,
				  strerror(-rc));
		} else {
			metrics_add(METRIC_COPY_UPS, 1);
			metrics_add(METRIC_COPY_UP_BYTES,
				    keep < 0 ? planned->size : (uint64_t)keep);
		}
	}
	if (rc >= 0) {
		pthread_rwlock_wrlock(&node->lock);
		node->stub = STUB_NONE;
		switch_files(fs, node, fd);
		pthread_rwlock_unlock(&node->lock);
	}
	if (fd >= 0)
		close(fd);
	if (lower >= 0)
		close(lower);
	pthread_mutex_unlock(&node->copy_up_lock);
	return rc < 0 ? rc : 0;
}

/* ---- population of lazy dirs ---- */

/* The children of a lazy dir's plan dir it still shows. */
static size_t lazy_children_left(const struct fs *fs, uint32_t plan_dir)
{
	const struct plan_node *planned = &fs->config->plan->nodes[plan_dir];
	size_t left = 0;

	for (size_t i = 0; i < planned->child_count; i++)
		left += !plan_child_removed(fs, planned->children[i]);
	return left;
}

/* The nodes the kernel knows in a dir just populated become its new upper
 * files, keeping their st_ino (node->ino); a file it knows by plan_ino gets
 * its node now, for that nodeid must lead to the upper file from now on.
 * Under fs->population, written: no lookup adds a plan node to the dir
 * meanwhile. */
static void adopt_children(struct fs *fs, struct fs_node *dir, int dir_fd, uint32_t plan_dir)
{
	const struct plan_node *planned = &fs->config->plan->nodes[plan_dir];

	for (size_t i = 0; i < planned->child_count; i++) {
		const char *name = fs->config->plan->nodes[planned->children[i]].name;
		struct fs_node *node;
		struct stat st;

		if (plan_child_removed(fs, planned->children[i]))
			continue; /* its node is detached, or is about to be */
		pthread_mutex_lock(&fs->mutex);
		node = node_find_locked(fs, dir, name);
		if (!node && fs->plan_lookups[planned->children[i]] > 0)
			node = node_for_plan_ino_locked(fs, planned->children[i], dir);
		if (node)
			node->refs++; /* a forget may come meanwhile */
		pthread_mutex_unlock(&fs->mutex);
		if (!node)
			continue;
		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			st.st_ino = 0; /* noticed as another file at its next lookup */
		pthread_rwlock_wrlock(&node->lock);
		node->plan_node = PLAN_NONE;
		node->upper_ino = st.st_ino;
		pthread_rwlock_unlock(&node->lock);
		pthread_mutex_lock(&fs->mutex);
		node->refs--;
		node_put_locked(fs, node);
		pthread_mutex_unlock(&fs->mutex);
	}
}

/* Populates dir, an upper dir still lazy: fills it while readers serve it
 * from the plan, then switches it to the upper. Under fs->populating. */
static int populate_dir(struct fs *fs, struct fs_node *dir)
{
	int fd = node_open(fs, dir, NULL, O_RDONLY | O_DIRECTORY), rc = fd;
	struct error err = { 0 };

	if (fd >= 0)
		rc = upper_populate_dir(fd, fs->config->plan, dir->plan_dir, fs->removed, &err);
	if (fd >= 0 && out_of_fds(fs, rc)) /* it removed what it made */
		rc = upper_populate_dir(fd, fs->config->plan, dir->plan_dir, fs->removed, &err);
	if (rc < 0) {
		char *why = xasprintf("cannot populate it: %s",
				      fd < 0 ? strerror(-fd) : err.message);

		log_entry(fs, dir, NULL, why);
		free(why);
	} else {
		pthread_rwlock_wrlock(&fs->population);
		adopt_children(fs, dir, fd, dir->plan_dir);
		pthread_rwlock_wrlock(&dir->lock);
		dir->plan_dir = PLAN_NONE;
		pthread_rwlock_unlock(&dir->lock);
		pthread_mutex_lock(&fs->mutex);
		plan_unregister_locked(fs, dir);
		pthread_mutex_unlock(&fs->mutex);
		pthread_rwlock_unlock(&fs->population);
		metrics_add(METRIC_POPULATES, 1);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Populates the lazy dirs above node, which then has an upper file, and
 * node itself when entries. Under fs->populating. */
static int populate_locked(struct fs *fs, struct fs_node *node, bool entries)
{
	int rc;

	if (node->plan_node != PLAN_NONE) {
		if (!node->parent)
			return -ENOENT;
		rc = populate_locked(fs, node->parent, true);
		if (rc < 0)
			return rc;
	}
	return entries && node->plan_dir != PLAN_NONE ? populate_dir(fs, node) : 0;
}

static int populate(struct fs *fs, struct fs_node *node, bool entries)
{
	bool lazy;
	int rc;

	pthread_rwlock_rdlock(&fs->population);
	lazy = node->plan_node != PLAN_NONE || (entries && node->plan_dir != PLAN_NONE);
	pthread_rwlock_unlock(&fs->population);
	if (!lazy)
		return 0;
	pthread_mutex_lock(&fs->populating);
	rc = populate_locked(fs, node, entries);
	pthread_mutex_unlock(&fs->populating);
	return rc;
}

/* Before a change of node itself: it must be a file of the upper. */
static int node_make_upper(struct fs *fs, struct fs_node *node)
{
	return populate(fs, node, false);
}

/* Before a change of dir's entries: they must be the upper's. */
static int dir_populate(struct fs *fs, struct fs_node *dir)
{
	return populate(fs, dir, true);
}

/* A lazy dir's upper dir is empty whatever it shows: an rmdir of it, or a
 * rename over it, must find the plan's children but those unlinked. One
 * that shows none may still hold what an interrupted population left: its
 * own, removed here. Under fs->populating. */
static int refuse_lazy_nonempty(struct fs *fs, int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;
	char path[64];
	uint32_t plan_dir;

	if (fd < 0)
		return 0; /* no dir: the change itself says what is wrong */
	proc_path(path, sizeof(path), fd);
	rc = upper_lazy_get(path, fs->config->plan, &plan_dir);
	if (rc < 0)
		rc = -EIO;
	else if (rc == 1 && lazy_children_left(fs, plan_dir) > 0)
		rc = -ENOTEMPTY;
	else if (rc == 1)
		rc = remove_children_at(fd);
	close(fd);
	return rc < 0 ? rc : 0;
}

/* ---- files unlinked from lazy dirs ---- */

/* An unlink from a lazy dir takes the file out of what the dir shows, in
 * memory: vmstorage deletes every part it merged, and populating each part
 * dir (a stub per file, a sync) only to unlink its files cost its start on
 * a new preview most of the daemon's work. The dir's times change in the
 * upper at once. The upper learns of the unlink itself when the dir is
 * populated: at the next change of its entries, an fsyncdir of it,
 * REMOVED_FLUSH_SECONDS later (the flusher) or at unmount; an rmdir of the
 * dir once empty needs no population at all. A daemon killed before brings
 * the files back, as a filesystem that crashed before committing the
 * unlinks would. At most PENDING_LIMIT dirs wait so, each with room in the
 * upper for its population: else the unlink populates its dir first, as
 * any other change does, and fails as it would (ENOSPC). */

/* Whether the upper has room to populate plan dir later, beside the dirs
 * waiting already: an inode and two blocks per child (the stub, its xattrs),
 * and a margin. Under fs->populating. */
static bool upper_has_room(const struct fs *fs, uint32_t plan_dir)
{
	uint64_t need = fs->config->plan->nodes[plan_dir].child_count + 256;
	struct statvfs st;

	for (size_t i = 0; i < fs->pending_count; i++) {
		uint32_t waiting = fs->pending[i].dir->plan_dir; /* PLAN_NONE once populated */

		if (waiting != PLAN_NONE)
			need += fs->config->plan->nodes[waiting].child_count;
	}

	if (fstatvfs(fs->config->upper_tree_fd, &st) < 0)
		return false;
	if (st.f_files > 0 && st.f_favail < need)
		return false;
	return (uint64_t)st.f_bavail * st.f_frsize >= need * 2 * 4096;
}

/* Under fs->populating. */
static void pending_add_locked(struct fs *fs, struct fs_node *dir)
{
	if (dir->pending)
		return;
	pthread_mutex_lock(&fs->mutex);
	dir->refs++;
	pthread_mutex_unlock(&fs->mutex);
	dir->pending = true;
	fs->pending[fs->pending_count++] = (struct pending_dir){ dir, now_seconds() };
}

/* Takes fs->pending[i] out. Under fs->populating. */
static void pending_drop_locked(struct fs *fs, size_t i)
{
	struct fs_node *dir = fs->pending[i].dir;

	fs->pending[i] = fs->pending[--fs->pending_count];
	dir->pending = false;
	pthread_mutex_lock(&fs->mutex);
	dir->refs--;
	node_put_locked(fs, dir);
	pthread_mutex_unlock(&fs->mutex);
}

/* Drops the pending dirs removed since (rmdir, renamed over): nothing
 * left to tell. Under fs->populating. */
static void pending_drop_removed_locked(struct fs *fs)
{
	for (size_t i = fs->pending_count; i-- > 0;)
		if (node_is_removed(fs, fs->pending[i].dir))
			pending_drop_locked(fs, i);
}

/* An unlink changes the dir's mtime and ctime: dir gets an upper dir (its
 * lazy parents are populated), whose times a population keeps. */
static int touch_lazy_dir(struct fs *fs, struct fs_node *dir)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };
	int fd = populate_locked(fs, dir, false), rc;

	if (fd == 0)
		fd = node_open(fs, dir, NULL, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	rc = futimens(fd, times) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

enum flush {
	FLUSH_RIPE, /* the flusher: dirs pending REMOVED_FLUSH_SECONDS, backing off */
	FLUSH_NOW,  /* before an unlink populates its dir: what waits comes first */
	FLUSH_LAST, /* at unmount: a dir that fails is dropped, its unlinks lost */
};

/* Populates one pending dir: true when one was, and the next may be tried.
 * A failure (a full upper) keeps the flusher from trying again for a while,
 * twice as long each time. */
static bool pending_flush_one(struct fs *fs, enum flush how)
{
	double now = now_seconds();
	bool tried = false, failed = false;

	pthread_mutex_lock(&fs->populating);
	pending_drop_removed_locked(fs);
	for (size_t i = 0; !tried && i < fs->pending_count; i++) {
		struct fs_node *dir = fs->pending[i].dir;

		if (how == FLUSH_RIPE && (now - fs->pending[i].since < REMOVED_FLUSH_SECONDS ||
					  now < fs->flush_retry_at))
			continue;
		tried = true;
		failed = populate_locked(fs, dir, true) < 0;
		if (!failed) {
			fs->flush_backoff = 0;
		} else if (how != FLUSH_LAST) {
			fs->flush_backoff = fs->flush_backoff ? 2 * fs->flush_backoff : 2;
			if (fs->flush_backoff > 60)
				fs->flush_backoff = 60;
			fs->flush_retry_at = now + fs->flush_backoff;
			break;
		} else {
			log_entry(fs, dir, NULL, "the files unlinked from it while lazy are back "
				  "at the next mount");
		}
		pending_drop_locked(fs, i);
	}
	pthread_mutex_unlock(&fs->populating);
	return tried && (!failed || how == FLUSH_LAST);
}

/* One dir at a time: unlinks and populations of other dirs go on between. */
static void pending_flush(struct fs *fs, enum flush how)
{
	while (pending_flush_one(fs, how))
		;
}

/* Unlinks name from dir while dir is lazy: 1 done, 0 not so (dir is not
 * lazy, or may not wait: it is to be populated and the upper's file
 * unlinked), or -errno. */
static int unlink_lazy(struct fs *fs, struct fs_node *dir, const char *name)
{
	const struct plan *plan = fs->config->plan;
	uint32_t plan_dir, index = PLAN_NONE;
	int rc = 0;

	pthread_mutex_lock(&fs->populating);
	pthread_rwlock_rdlock(&fs->population);
	plan_dir = dir->plan_dir;
	pthread_rwlock_unlock(&fs->population);
	if (plan_dir != PLAN_NONE)
		index = plan_child(plan, plan_dir, name);
	if (plan_dir == PLAN_NONE)
		rc = 0;
	else if (index == PLAN_NONE || plan_child_removed(fs, index))
		rc = -ENOENT;
	else if (plan->nodes[index].kind == PLAN_DIR)
		rc = -EISDIR;
	else if (!dir->pending && fs->pending_count == PENDING_LIMIT)
		rc = 0;
	else if (!dir->pending && !upper_has_room(fs, plan_dir))
		rc = 2;
	else if ((rc = touch_lazy_dir(fs, dir)) == 0)
		rc = 1;
	if (rc == 1) {
		__atomic_fetch_or(&fs->removed[index / 8], 1u << (index % 8), __ATOMIC_RELEASE);
		pending_add_locked(fs, dir);
	}
	pthread_mutex_unlock(&fs->populating);
	if (rc == 2) {
		/* The upper is short: what waits takes its room before this dir's
		 * population, which then fails as it would have (ENOSPC). */
		pending_flush(fs, FLUSH_NOW);
		rc = 0;
	}
	return rc;
}

static void *flusher_main(void *arg)
{
	struct fs *fs = arg;

	block_terminating_signals(); /* the main thread takes them, or none does */
	pthread_mutex_lock(&fs->flusher_lock);
	while (!fs->flusher_stop) {
		struct timespec at;

		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_sec++;
		pthread_cond_timedwait(&fs->flusher_wake, &fs->flusher_lock, &at);
		pthread_mutex_unlock(&fs->flusher_lock);
		pending_flush(fs, FLUSH_RIPE);
		pthread_mutex_lock(&fs->flusher_lock);
	}
	pthread_mutex_unlock(&fs->flusher_lock);
	return NULL;
}

/* ---- lookup and attributes ---- */

/* A file of several names is one node per name, so one kernel inode per
 * name, each with its own attributes and page cache: it asks again at every
 * stat and read (auto_inval_data then drops stale pages), so that a write
 * through one name shows through the others. So does a node whose name is
 * gone (an fd open on it): a write, or a link, through a name the file has
 * left, or through another such fd, reaches only that name's node. */
static double attr_timeout(struct fs *fs, const struct fs_node *node, const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return fs->config->timeout;
	if (st->st_nlink > 1 || node_is_removed(fs, node))
		return 0;
	return fs->config->timeout;
}

/* What stat shows of a stub is its volume file's, blocks included; of a
 * lazy dir, the plan's link count (its upper dir is empty); of any node, the
 * st_ino it was first shown with. */
static void node_fix_attr(struct fs *fs, struct fs_node *node, struct stat *st)
{
	pthread_rwlock_rdlock(&node->lock);
	/* The scan's count: a stat of the volume file per lookup slows walks. */
	if (node->stub == STUB_OK)
		st->st_blocks = (blkcnt_t)fs->config->plan->nodes[node->stub_file].attr.blocks;
	if (node->plan_dir != PLAN_NONE)
		st->st_nlink = fs->config->plan->nodes[node->plan_dir].attr.nlink;
	st->st_ino = node->ino;
	pthread_rwlock_unlock(&node->lock);
}

/* Under fs->population, held for reading. */
static int node_stat(struct fs *fs, struct fs_node *node, struct stat *st)
{
	int fd, rc;

	if (node->plan_node != PLAN_NONE) {
		plan_stat(fs->config->plan, node->plan_node, st);
		if (node_is_removed(fs, node))
			st->st_nlink = 0;
		return 0;
	}
	fd = rc = node_open(fs, node, NULL, O_PATH);

	if (fd >= 0) {
		rc = fstat(fd, st) < 0 ? -errno : 0;
		close(fd);
	} else if (fd == -ENOENT) {
		/* Unlinked, but still open: a stub's file is its volume file,
		 * whose attributes the stub had, but for the link count. */
		pthread_rwlock_rdlock(&node->lock);
		for (struct fs_file *file = node->files; file && rc < 0; file = file->next) {
			struct fd_hold *hold;

			fd = file_fd_hold(fs, file, &hold);
			rc = fd < 0 ? fd : fstat(fd, st) < 0 ? -errno : 0;
			if (hold)
				fd_cache_put(fs->volume_fds, hold);
			if (rc == 0 && file->lower) {
				st->st_ino = node->ino;
				st->st_nlink = 0;
			}
		}
		pthread_rwlock_unlock(&node->lock);
	}
	if (rc == 0)
		node_fix_attr(fs, node, st);
	return rc;
}

/* The lazy-dir mark of a directory of the upper (fd, O_PATH). */
static int lookup_lazy_mark(struct fs *fs, int fd, const struct fs_node *dir,
			    const char *name, uint32_t *plan_dir)
{
	char path[64];
	int rc;

	proc_path(path, sizeof(path), fd);
	rc = upper_lazy_get(path, fs->config->plan, plan_dir);
	if (rc == -EIO)
		log_entry(fs, dir, name, "its " UPPER_LAZY_XATTR " names no directory of the "
			  "merged volumes; refused with EIO");
	else if (rc < 0)
		log_entry(fs, dir, name, strerror(-rc));
	return rc < 0 ? -EIO : 0;
}

static int lookup_upper(struct fs *fs, struct fs_node *dir, const char *name,
			struct fuse_entry_param *e, struct fs_node **node)
{
	struct node_source source = { .st = &e->attr, .plan_node = PLAN_NONE,
				      .plan_dir = PLAN_NONE };
	int rc = 0;

	source.fd = node_open(fs, dir, name, O_PATH);
	if (source.fd < 0)
		return source.fd;
	if (fstat(source.fd, &e->attr) < 0)
		rc = -errno;
	else if (S_ISDIR(e->attr.st_mode))
		rc = lookup_lazy_mark(fs, source.fd, dir, name, &source.plan_dir);
	if (rc == 0) {
		*node = node_get(fs, dir, name, &source);
		e->ino = nodeid_of(*node);
	}
	close(source.fd);
	return rc;
}

/* An entry of a lazy dir: the plan's child. node is NULL for a file the
 * kernel knows by plan_ino. */
static int lookup_plan(struct fs *fs, struct fs_node *dir, const char *name,
		       struct fuse_entry_param *e, struct fs_node **node)
{
	const struct plan *plan = fs->config->plan;
	uint32_t index = plan_child(plan, dir->plan_dir, name);
	struct node_source source = { .st = &e->attr, .fd = -1, .plan_node = index };

	if (index == PLAN_NONE || plan_child_removed(fs, index))
		return -ENOENT;
	plan_stat(plan, index, &e->attr);
	if (plan->nodes[index].kind != PLAN_DIR) {
		*node = plan_file_show(fs, dir, name, index);
		e->ino = *node ? nodeid_of(*node) : plan_ino(index);
		return 0;
	}
	source.plan_dir = index;
	*node = node_get(fs, dir, name, &source);
	e->ino = nodeid_of(*node);
	return 0;
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct fs *fs = fs_of(req);
	struct fs_node *dir = node_of(req, parent), *node = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = e->entry_timeout = fs->config->timeout;
	pthread_rwlock_rdlock(&fs->population);
	rc = dir->plan_dir != PLAN_NONE ? lookup_plan(fs, dir, name, e, &node)
					: lookup_upper(fs, dir, name, e, &node);
	/* A file shown by plan_ino has the plan's attributes, not removed. */
	if (rc == 0 && node) {
		e->attr_timeout = attr_timeout(fs, node, &e->attr);
		node_fix_attr(fs, node, &e->attr);
	}
	pthread_rwlock_unlock(&fs->population);
	return rc;
}

static void reply_entry_or_error(fuse_req_t req, fuse_ino_t parent, const char *name, int rc)
{
	struct fuse_entry_param e;

	if (rc == 0)
		rc = do_lookup(req, parent, name, &e);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(req, parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry, cached like a positive one. */
		e.ino = 0;
		fuse_reply_entry(req, &e);
	} else if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_nodeid(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_nodeid(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_known(fs, ino);
	uint32_t index = (uint32_t)(ino & ~PLAN_INO_FLAG);
	struct stat st;
	int rc;

	/* Known by plan_ino and no node: nothing changed it but an unlink (a
	 * change makes the node first). */
	if (!node) {
		plan_stat(fs->config->plan, index, &st);
		if (plan_child_removed(fs, index))
			st.st_nlink = 0;
		fuse_reply_attr(req, &st, st.st_nlink ? fs->config->timeout : 0);
		return;
	}
	node_recheck(fs, node);
	pthread_rwlock_rdlock(&fs->population);
	rc = node_stat(fs, node, &st);
	pthread_rwlock_unlock(&fs->population);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, node, &st));
}

/* The fd of an open file, stable until file_fd_put (a copy-up may not
 * switch it meanwhile); or -errno, with nothing to put. */
static int file_fd_get(struct fs *fs, struct fs_file *file, struct fd_hold **hold)
{
	int fd;

	pthread_rwlock_rdlock(&file->node->lock);
	fd = file_fd_hold(fs, file, hold);
	if (fd < 0)
		pthread_rwlock_unlock(&file->node->lock);
	return fd;
}

static void file_fd_put(struct fs *fs, struct fs_file *file, struct fd_hold *hold)
{
	if (hold)
		fd_cache_put(fs->volume_fds, hold);
	pthread_rwlock_unlock(&file->node->lock);
}

/* The fd of a file about to be written, stable until file_fd_put; a stub
 * is copied up first. Or -errno (nothing to put). */
static int file_fd_write(struct fs *fs, struct fs_file *file, struct fd_hold **hold)
{
	for (;;) {
		int fd = file_fd_get(fs, file, hold), rc;

		if (fd < 0 || !file->lower)
			return fd;
		file_fd_put(fs, file, *hold);
		rc = copy_up(fs, file->node, -1);
		if (rc < 0)
			return rc;
	}
}

static int set_times(int path_fd, int valid, const struct stat *attr)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	char path[64];

	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		times[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		times[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		times[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		times[1] = attr->st_mtim;
	proc_path(path, sizeof(path), path_fd);
	return utimensat(AT_FDCWD, path, times, 0) < 0 ? -errno : 0;
}

/* Truncation keeps only the first size bytes of a stub: only they are copied. */
static int set_size(struct fs *fs, struct fs_node *node, int path_fd, off_t size,
		    struct fuse_file_info *fi)
{
	char path[64];
	int rc = copy_up(fs, node, size), fd;

	if (rc < 0)
		return rc;
	if (fi) {
		struct fd_hold *hold;

		fd = file_fd_get(fs, file_of(fi), &hold);
		if (fd < 0)
			return fd;
		rc = ftruncate(fd, size) < 0 ? -errno : 0;
		file_fd_put(fs, file_of(fi), hold);
		return rc;
	}
	proc_path(path, sizeof(path), path_fd);
	return truncate(path, size) < 0 ? -errno : 0;
}

static int apply_setattr(struct fs *fs, struct fs_node *node, int path_fd,
			 const struct stat *attr, int valid, struct fuse_file_info *fi)
{
	char path[64];
	int rc = 0;

	proc_path(path, sizeof(path), path_fd);
	if (valid & FUSE_SET_ATTR_MODE)
		rc = chmod(path, attr->st_mode) < 0 ? -errno : 0;
	if (rc == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		rc = fchownat(path_fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
			     ? -errno
			     : 0;
	}
	if (rc == 0 && (valid & FUSE_SET_ATTR_SIZE))
		rc = set_size(fs, node, path_fd, attr->st_size, fi);
	if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				 FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		rc = set_times(path_fd, valid, attr);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_of(req, ino);
	int fd = node_make_upper(fs, node);
	struct stat st;
	int rc;

	if (fd == 0)
		fd = node_open(fs, node, NULL, O_PATH);
	rc = fd < 0 ? fd : apply_setattr(fs, node, fd, attr, valid, fi);
	if (fd >= 0)
		close(fd);
	pthread_rwlock_rdlock(&fs->population);
	if (rc == 0)
		rc = node_stat(fs, node, &st);
	pthread_rwlock_unlock(&fs->population);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, node, &st));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_of(req, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd, e;

	/* The plan has no symlinks. */
	pthread_rwlock_rdlock(&fs->population);
	fd = node->plan_node != PLAN_NONE ? -EINVAL : node_open(fs, node, NULL, O_PATH);
	pthread_rwlock_unlock(&fs->population);
	n = fd < 0 ? (errno = -fd, -1) : readlinkat(fd, "", buf, sizeof(buf) - 1);
	e = errno;
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		fuse_reply_err(req, e);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* ---- directory entries ---- */

/* Which change of a directory entry to make, below an open parent. */
enum entry_change { ENTRY_MKNOD, ENTRY_SYMLINK, ENTRY_LINK, ENTRY_UNLINK, ENTRY_RMDIR };

struct entry_args {
	mode_t mode;
	dev_t rdev;
	const char *target;   /* ENTRY_SYMLINK */
	struct fs_node *from; /* ENTRY_LINK */
};

static int change_entry(fuse_req_t req, int dir_fd, const char *name,
			enum entry_change change, const struct entry_args *args)
{
	struct creds creds;
	char path[64];
	int fd, rc;

	switch (change) {
	case ENTRY_MKNOD:
		become_caller(req, &creds);
		if (S_ISDIR(args->mode))
			rc = mkdirat(dir_fd, name, args->mode & 07777) < 0 ? -errno : 0;
		else
			rc = mknodat(dir_fd, name, args->mode, args->rdev) < 0 ? -errno : 0;
		become_daemon(&creds);
		return rc;
	case ENTRY_SYMLINK:
		become_caller(req, &creds);
		rc = symlinkat(args->target, dir_fd, name) < 0 ? -errno : 0;
		become_daemon(&creds);
		return rc;
	case ENTRY_LINK:
		fd = node_make_upper(fs_of(req), args->from);
		if (fd == 0)
			fd = node_open(fs_of(req), args->from, NULL, O_PATH);
		if (fd < 0)
			return fd;
		proc_path(path, sizeof(path), fd);
		rc = linkat(AT_FDCWD, path, dir_fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
		close(fd);
		return rc;
	case ENTRY_UNLINK:
		return unlinkat(dir_fd, name, 0) < 0 ? -errno : 0;
	case ENTRY_RMDIR:
		rc = refuse_lazy_nonempty(fs_of(req), dir_fd, name);
		return rc < 0 ? rc : unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
	}
	return -EINVAL;
}

/* Makes the change below parent: 0 or -errno. */
static int change_below(fuse_req_t req, fuse_ino_t parent, const char *name,
			enum entry_change change, const struct entry_args *args)
{
	struct fs *fs = fs_of(req);
	struct fs_node *dir = node_of(req, parent);
	int fd, rc;

	if (change == ENTRY_UNLINK && (rc = unlink_lazy(fs, dir, name)) != 0)
		return rc < 0 ? rc : 0;
	fd = dir_populate(fs, dir);
	if (fd == 0)
		fd = node_open(fs, dir, NULL, O_PATH | O_DIRECTORY);
	/* The flusher finds a removed dir both gone and detached, or neither. */
	if (change == ENTRY_RMDIR)
		pthread_mutex_lock(&fs->populating);
	rc = fd < 0 ? fd : change_entry(req, fd, name, change, args);
	if (change == ENTRY_RMDIR) {
		if (rc == 0) {
			node_detach(fs, dir, name);
			pending_drop_removed_locked(fs);
		}
		pthread_mutex_unlock(&fs->populating);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Makes the change below parent; replies with the new entry or an error. */
static void reply_change(fuse_req_t req, fuse_ino_t parent, const char *name,
			 enum entry_change change, const struct entry_args *args)
{
	int rc = change_below(req, parent, name, change, args);

	if (change == ENTRY_UNLINK || change == ENTRY_RMDIR) {
		if (rc == 0)
			node_detach(fs_of(req), node_of(req, parent), name);
		fuse_reply_err(req, -rc);
	} else {
		reply_entry_or_error(req, parent, name, rc);
	}
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	reply_change(req, parent, name, ENTRY_MKNOD,
		     &(struct entry_args){ .mode = mode, .rdev = rdev });
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	op_mknod(req, parent, name, S_IFDIR | mode, 0);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	reply_change(req, parent, name, ENTRY_SYMLINK, &(struct entry_args){ .target = target });
}

/* The kernel drops the attributes it holds of node (ino), which it would
 * keep for the timeout. Attributes only: no cached page is wrong yet, and
 * auto_inval_data drops them once the size or mtime differs. */
static void forget_attributes(struct fs *fs, struct fs_node *node, fuse_ino_t ino)
{
	int rc = fs->session ? fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0) : 0;
	char *why;

	if (rc == 0 || rc == -ENOENT) /* ENOENT: the kernel holds none */
		return;
	why = xasprintf("linked, but the kernel cannot be told to drop its attributes (%s): "
			"stat may show its old link count and size for up to %g s",
			strerror(-rc), fs->config->timeout);
	log_entry(fs, node, NULL, why);
	free(why);
}

/* The new name is another node, and the kernel updates only that one: the
 * name linked from keeps what it was shown, for the timeout when the file
 * had one link (attr_timeout). Only that node can hold such attributes: a
 * file of several names, or a name unlinked since, is never cached.
 * The kernel is told before the reply, so that once link(2) returns the
 * first name shows two links and the changes made through the new one. This
 * cannot deadlock: attributes only, without writeback cache, the kernel
 * takes no lock of the inode, and it holds the inode while linking. */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct fs_node *from = node_of(req, ino);
	int rc = change_below(req, parent, name, ENTRY_LINK, &(struct entry_args){ .from = from });

	if (rc == 0)
		forget_attributes(fs_of(req), from, ino);
	reply_entry_or_error(req, parent, name, rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_change(req, parent, name, ENTRY_UNLINK, &(struct entry_args){ 0 });
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_change(req, parent, name, ENTRY_RMDIR, &(struct entry_args){ 0 });
}

/* The nodes follow a rename that was made. */
static void rename_nodes(struct fs *fs, struct fs_node *from, const char *name,
			 struct fs_node *to, const char *newname, unsigned int flags)
{
	struct fs_node *moved, *other;

	pthread_mutex_lock(&fs->mutex);
	moved = node_find_locked(fs, from, name);
	other = node_find_locked(fs, to, newname);
	if (moved)
		node_unhash_locked(fs, moved);
	if (other)
		node_unhash_locked(fs, other);
	/* Both parents keep the references of their old children until the end. */
	if (moved)
		node_hash_locked(fs, moved, to, newname);
	if (other && (flags & RENAME_EXCHANGE))
		node_hash_locked(fs, other, from, name);
	else if (other)
		__atomic_store_n(&other->parent, NULL, __ATOMIC_RELAXED); /* nameless now */
	if (moved)
		from->refs--;
	if (other) {
		to->refs--;
		node_put_locked(fs, other);
	}
	node_put_locked(fs, from);
	if (to != from)
		node_put_locked(fs, to);
	pthread_mutex_unlock(&fs->mutex);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_node *from = node_of(req, parent), *to = node_of(req, newparent);
	int from_fd = -1, to_fd = -1, rc;

	rc = dir_populate(fs, from);
	if (rc == 0)
		rc = dir_populate(fs, to);
	if (rc == 0 && (from_fd = rc = node_open(fs, from, NULL, O_PATH | O_DIRECTORY)) >= 0)
		to_fd = rc = node_open(fs, to, NULL, O_PATH | O_DIRECTORY);
	pthread_mutex_lock(&fs->populating); /* no population of newname meanwhile */
	if (rc >= 0 && !(flags & RENAME_EXCHANGE))
		rc = refuse_lazy_nonempty(fs, to_fd, newname);
	if (rc >= 0) {
		pthread_rwlock_wrlock(&fs->renaming);
		rc = renameat2(from_fd, name, to_fd, newname, flags) < 0 ? -errno : 0;
		if (rc == 0)
			rename_nodes(fs, from, name, to, newname, flags);
		pthread_rwlock_unlock(&fs->renaming);
	}
	pthread_mutex_unlock(&fs->populating);
	if (from_fd >= 0)
		close(from_fd);
	if (to_fd >= 0)
		close(to_fd);
	fuse_reply_err(req, -rc);
}

/* The offsets of a listing: "." and "..", then a lazy dir's children, at
 * their plan position + OFFSET_FIRST_CHILD; a name the plan does not have
 * comes after them all (listing.h). */
enum { OFFSET_DOT = 1, OFFSET_DOTDOT = 2, OFFSET_FIRST_CHILD = 3 };

/* Opens node's upper dir (a node below a lazy dir has none). */
static int node_open_dir(struct fs *fs, struct fs_node *node)
{
	int fd;

	pthread_rwlock_rdlock(&fs->population);
	fd = node_open(fs, node, NULL, O_RDONLY | O_DIRECTORY);
	pthread_rwlock_unlock(&fs->population);
	return fd;
}

static void dir_handle_free(struct fs_dir *dir)
{
	if (dir->fd >= 0)
		close(dir->fd);
	free(dir);
}

/* ENOSYS, once, where the kernel allows it: from then on it opens dirs by
 * itself, keeping their listings (keep_cache and cache_readdir), with no
 * round trip; a listing or fsyncdir opens the upper dir when it needs it
 * (node_open_dir). Else the handle holds its upper dir open. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_of(req, ino);
	struct fs_dir *dir;
	bool has_upper;
	int fd = -1;

	if (fs->opendir_is_optional) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	pthread_rwlock_rdlock(&fs->population);
	has_upper = node->plan_node == PLAN_NONE;
	pthread_rwlock_unlock(&fs->population);
	/* Population never goes back: a dir that had an upper dir has it still. */
	if (has_upper && (fd = node_open_dir(fs, node)) < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	dir = xcalloc(1, sizeof(*dir));
	dir->fd = fd;
	fi->fh = (uint64_t)(uintptr_t)dir;
	/* Offsets mean the same to every handle, lazy or not, and every change
	 * comes through the mount, which tells the kernel to drop a listing it
	 * caches: a second walk needs no readdir. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0) /* interrupted: no releasedir comes */
		dir_handle_free(dir);
}

/* A READDIR reply being filled. */
struct listing_reply {
	fuse_req_t req;
	fuse_ino_t dir;
	bool plus;
	char *buf;
	size_t size, used;
};

/* One entry into reply. With plus, the entry is looked up as a LOOKUP would
 * (the kernel takes a reference), but for "." and "..", and one that cannot
 * be, which the kernel looks up itself. False when it does not fit, and
 * then the kernel holds no reference. */
static bool reply_add(struct listing_reply *reply, const char *name, ino_t ino, mode_t mode,
		      off_t next)
{
	struct stat st = { .st_ino = ino, .st_mode = mode };
	struct fuse_entry_param entry = { .attr = st };
	char *at = reply->buf + reply->used;
	size_t room = reply->size - reply->used, size;

	if (!reply->plus) {
		size = fuse_add_direntry(reply->req, at, room, name, &st, next);
	} else {
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
		    do_lookup(reply->req, reply->dir, name, &entry) < 0)
			entry = (struct fuse_entry_param){ .attr = st };
		size = fuse_add_direntry_plus(reply->req, at, room, name, &entry, next);
		if (size > room && entry.ino)
			forget_nodeid(fs_of(reply->req), entry.ino, 1);
	}
	if (size > room)
		return false;
	reply->used += size;
	return true;
}

/* "." and "..", those after offset. False when the reply is full. */
static bool reply_add_dots(struct listing_reply *reply, const struct fs_node *node, off_t offset)
{
	struct fs *fs = fs_of(reply->req);
	ino_t parent_ino;

	pthread_mutex_lock(&fs->mutex);
	parent_ino = node->parent ? node->parent->ino : node->ino;
	pthread_mutex_unlock(&fs->mutex);
	if (offset < OFFSET_DOT && !reply_add(reply, ".", node->ino, S_IFDIR, OFFSET_DOT))
		return false;
	return offset >= OFFSET_DOTDOT || reply_add(reply, "..", parent_ino, S_IFDIR, OFFSET_DOTDOT);
}

/* The listing of a lazy dir: ".", "..", then the plan's children. */
static void readdir_plan(struct listing_reply *reply, const struct fs_node *node,
			 uint32_t plan_dir, off_t offset)
{
	const struct plan *plan = fs_of(reply->req)->config->plan;
	const struct plan_node *planned = &plan->nodes[plan_dir];

	if (!reply_add_dots(reply, node, offset))
		return;
	for (size_t i = offset < OFFSET_FIRST_CHILD ? 0 : (size_t)(offset - OFFSET_FIRST_CHILD) + 1;
	     i < planned->child_count; i++) {
		const struct plan_node *child = &plan->nodes[planned->children[i]];

		if (plan_child_removed(fs_of(reply->req), planned->children[i]))
			continue;
		if (!reply_add(reply, child->name, plan_ino(planned->children[i]),
			       child->attr.mode, (off_t)i + OFFSET_FIRST_CHILD))
			return;
	}
}

static pthread_mutex_t *listing_lock_of(struct fs *fs, const struct fs_node *node)
{
	return &fs->listing_locks[((uintptr_t)node / sizeof(*node)) % LISTING_LOCKS];
}

struct planned_listing {
	const struct plan *plan;
	uint32_t dir; /* a node's listed_plan_dir */
};

/* listing_fixed_offset_fn: a name of the plan dir that numbered a lazy
 * listing keeps the offset that listing gave it. */
static off_t planned_offset(const char *name, void *arg)
{
	const struct planned_listing *planned = arg;
	size_t position;

	if (planned->dir == PLAN_NONE)
		return 0;
	position = plan_child_position(planned->plan, planned->dir, name);
	return position == SIZE_MAX ? 0 : (off_t)position + OFFSET_FIRST_CHILD;
}

/* Reads node's listing anew from its upper dir: fd, or opened now when the
 * handle was opened below a lazy dir. Under listing_lock_of(node). 0 or -errno. */
static int listing_refresh(struct fs *fs, struct fs_node *node, int fd)
{
	struct planned_listing planned = { fs->config->plan, node->listed_plan_dir };
	int opened = -1, rc;

	if (fd < 0) {
		fd = opened = node_open_dir(fs, node);
		if (fd < 0)
			return fd;
	}
	if (!node->listing) {
		off_t first_free = OFFSET_FIRST_CHILD;

		if (planned.dir != PLAN_NONE)
			first_free += (off_t)planned.plan->nodes[planned.dir].child_count;
		node->listing = xcalloc(1, sizeof(*node->listing));
		listing_init(node->listing, first_free);
	}
	rc = listing_read(node->listing, fd, planned_offset, &planned);
	if (opened >= 0)
		close(opened);
	return rc;
}

/* The st_ino of an entry of a populated dir, as a LOOKUP gives it: the
 * upper's d_ino is not what the preview shows of a file of the plan. A
 * READDIRPLUS entry is looked up anyway (reply_add). */
static ino_t entry_ino(struct listing_reply *reply, const struct listing_entry *entry)
{
	struct fuse_entry_param looked_up;

	if (reply->plus || do_lookup(reply->req, reply->dir, entry->name, &looked_up) < 0)
		return entry->ino;
	forget_nodeid(fs_of(reply->req), looked_up.ino, 1);
	return looked_up.attr.st_ino;
}

/* The listing of a populated dir: ".", "..", then the upper dir's entries.
 * Under listing_lock_of(node). */
static void readdir_upper(struct listing_reply *reply, struct fs_node *node, off_t offset)
{
	const struct listing *listing = node->listing;

	if (!reply_add_dots(reply, node, offset))
		return;
	for (size_t i = listing_after(listing, offset); i < listing->count; i++) {
		const struct listing_entry *entry = &listing->entries[i];

		if (!reply_add(reply, entry->name, entry_ino(reply, entry),
			       (mode_t)DTTOIF(entry->type), entry->offset))
			return;
	}
}

/* READDIR, or READDIRPLUS (plus): the kernel then needs no LOOKUP of the
 * entries, as when vmstorage lists a partition and opens its parts. */
static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		     struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_of(req, ino);
	const struct fs_dir *dir = (struct fs_dir *)(uintptr_t)fi->fh;
	struct listing_reply reply = { req, ino, plus, xcalloc(1, size), size, 0 };
	int fd = dir ? dir->fd : -1;
	uint32_t plan_dir;
	int rc = 0;

	pthread_rwlock_rdlock(&fs->population);
	plan_dir = node->plan_dir;
	pthread_rwlock_unlock(&fs->population);
	if (plan_dir != PLAN_NONE) {
		readdir_plan(&reply, node, plan_dir, offset);
	} else {
		/* A rewind sees the dir as it is now; a handle going on is given
		 * what follows its offset in the listing read last. */
		pthread_mutex_lock(listing_lock_of(fs, node));
		if (offset == 0 || !node->listing)
			rc = listing_refresh(fs, node, fd);
		if (rc == 0)
			readdir_upper(&reply, node, offset);
		pthread_mutex_unlock(listing_lock_of(fs, node));
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, reply.buf, reply.used);
	free(reply.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	list_dir(req, ino, size, offset, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
			   struct fuse_file_info *fi)
{
	list_dir(req, ino, size, offset, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	dir_handle_free((struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Syncs node's upper dir: fd, or opened now (node_open_dir). A lazy dir has nothing to
 * sync, nor has a removed one (as on ext4 or tmpfs), unless files were unlinked from it:
 * it is populated first, whatever fd is. 0 or -errno. */
static int sync_dir(struct fs *fs, struct fs_node *node, int fd, int datasync)
{
	int opened = -1, rc;
	uint32_t plan_dir;

	pthread_rwlock_rdlock(&fs->population);
	plan_dir = node->plan_dir;
	pthread_rwlock_unlock(&fs->population);
	if (node_is_removed(fs, node))
		return 0; /* as on ext4 or tmpfs */
	if (plan_dir != PLAN_NONE &&
	    lazy_children_left(fs, plan_dir) < fs->config->plan->nodes[plan_dir].child_count) {
		rc = dir_populate(fs, node);
		if (rc < 0)
			return rc;
		plan_dir = PLAN_NONE;
	}
	if (fd < 0) {
		if (plan_dir == PLAN_NONE)
			fd = opened = node_open_dir(fs, node);
		if (plan_dir != PLAN_NONE || (fd == -ENOENT && node_is_removed(fs, node)))
			return 0;
		if (fd < 0)
			return fd;
	}
	rc = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	if (opened >= 0)
		close(opened);
	return rc;
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	const struct fs_dir *dir = (struct fs_dir *)(uintptr_t)fi->fh;

	fuse_reply_err(req, -sync_dir(fs_of(req), node_of(req, ino), dir ? dir->fd : -1, datasync));
}

/* ---- files ---- */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* A file open on node, listed so that a copy-up can switch its fd: fd, or
 * a stub's volume file (stub_file, fd -1). */
static struct fs_file *file_add(struct fs *fs, struct fs_node *node, int fd, int flags,
			       uint32_t stub_file, int upper_fd)
{
	struct fs_file *file = xcalloc(1, sizeof(*file));

	file->node = node;
	file->opens = 1;
	file->fd = fd;
	file->flags = flags;
	file->volume_file = stub_file;
	file->lower = stub_file != PLAN_NONE;
	file->upper_fd = upper_fd;
	file->next = node->files; /* under node->lock, held for writing */
	node->files = file;
	pthread_mutex_lock(&fs->mutex);
	node->refs++;
	pthread_mutex_unlock(&fs->mutex);
	return file;
}

/* A file of node open for reading with the same READ_FLAGS, for another
 * open for reading: reads are preads, and the kernel keeps each open's position and
 * locks (the daemon forwards none), so one fd serves them all, and a user's
 * opens cost the daemon an fd per file, not one per open. A frozen file is
 * shared only while the node is lazy, its upper file not yet made. NULL if
 * none. Under node->lock, held for writing. */
static struct fs_file *file_share(struct fs_node *node, int flags)
{
	if (wants_write(flags))
		return NULL;
	for (struct fs_file *file = node->files; file; file = file->next) {
		if (wants_write(file->flags) ||
		    (file->flags & READ_FLAGS) != (flags & READ_FLAGS) ||
		    (file->frozen && node->plan_node == PLAN_NONE))
			continue;
		file->opens++;
		return file;
	}
	return NULL;
}

/* ---- passthrough ----
 *
 * The kernel refuses (EIO) an open of an inode whose other opens go another
 * way: all passthrough to one backing file, or none. So a node registers its
 * upper file at its first passthrough open and unregisters it at the last
 * release; while it has an open read through the daemon (a stub's or a lazy
 * file's, kept across their copy-up), its new opens are too. Only plain
 * upper files pass through: a stub's reads must switch to the upper at its
 * copy-up, which the kernel's backing file would not. Nor may a volume file
 * ever be registered here: the kernel opens the backing file again for each
 * open, with that open's flags and the daemon's credentials, so an open for
 * writing would write the volume. The daemon counts a release after the
 * kernel has ended that open, so it never thinks an inode free of opens the
 * kernel still has. Under node->lock, held for writing. */

static bool node_has_daemon_opens(const struct fs_node *node, const struct fs_file *except)
{
	for (const struct fs_file *file = node->files; file; file = file->next)
		if (file != except && !file->passthrough)
			return true;
	return false;
}

/* Passes the open replied with fi through to the node's upper file, if it
 * may: file is the open's, new or shared. */
static void file_passthrough(struct fs *fs, fuse_req_t req, struct fs_node *node,
			     struct fs_file *file, struct fuse_file_info *fi)
{
	if (!file->passthrough) {
		if (file->fd < 0 || file->volume_file != PLAN_NONE || file->frozen ||
		    file->opens > 1 || node_has_daemon_opens(node, file))
			return;
		/* Through the daemon O_DIRECT needs no alignment (OPEN_FLAGS),
		 * unless the kernel has the file passed through already. */
		if ((file->flags & O_DIRECT) && node->backing_id == 0)
			return;
		/* Passthrough turned off stops new registrations only: an inode
		 * the kernel has open passed through takes no other open. */
		if (node->backing_id == 0 && __atomic_load_n(&fs->passthrough, __ATOMIC_RELAXED))
			node->backing_id = passthrough_register(req, file->fd, &fs->passthrough,
								"an upper file");
		if (node->backing_id == 0)
			return;
		file->passthrough = true;
	}
	node->backing_opens++;
	passthrough_reply(fi, node->backing_id);
}

/* The backing id the release of a passthrough open leaves unused, or 0. */
static int node_release_backing(struct fs_node *node, const struct fs_file *file)
{
	int id = 0;

	if (file->passthrough && --node->backing_opens == 0) {
		id = node->backing_id;
		node->backing_id = 0;
	}
	return id;
}

static void file_free(struct fs_file *file)
{
	if (file->fd >= 0)
		close(file->fd);
	if (file->upper_fd >= 0)
		close(file->upper_fd);
	free(file);
}

static void file_remove(struct fs *fs, struct fs_file *file)
{
	struct fs_node *node = file->node;
	struct fs_file **link;
	int unused_id;

	pthread_rwlock_wrlock(&node->lock);
	unused_id = node_release_backing(node, file);
	if (--file->opens > 0) {
		pthread_rwlock_unlock(&node->lock);
		if (unused_id)
			passthrough_unregister(fs->session, unused_id);
		return;
	}
	for (link = &node->files; *link && *link != file; link = &(*link)->next)
		;
	if (*link)
		*link = file->next;
	pthread_rwlock_unlock(&node->lock);
	if (unused_id)
		passthrough_unregister(fs->session, unused_id);
	file_free(file);
	pthread_mutex_lock(&fs->mutex);
	node->refs--;
	node_put_locked(fs, node);
	pthread_mutex_unlock(&fs->mutex);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	int dir_fd = dir_populate(fs, node_of(req, parent)), fd, flags, rc;
	struct fuse_entry_param e;
	struct fs_node *node;
	struct fs_file *file;
	struct creds creds;

	if (dir_fd == 0)
		dir_fd = node_open(fs, node_of(req, parent), NULL, O_PATH | O_DIRECTORY);
	if (dir_fd < 0) {
		fuse_reply_err(req, -dir_fd);
		return;
	}
	/* The kernel creates only what its lookup did not find; O_EXCL makes
	 * sure no stub is ever opened for writing here, past its copy-up. */
	become_caller(req, &creds);
	flags = (fi->flags & ~O_DIRECT) | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	fd = openat(dir_fd, name, flags, mode);
	if (fd < 0 && out_of_fds(fs, -errno))
		fd = openat(dir_fd, name, flags, mode);
	rc = fd < 0 ? -errno : 0;
	become_daemon(&creds);
	close(dir_fd);
	if (rc == 0)
		rc = do_lookup(req, parent, name, &e);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	node = node_of(req, e.ino);
	pthread_rwlock_wrlock(&node->lock);
	file = file_add(fs, node, fd, fi->flags, PLAN_NONE, -1);
	file_passthrough(fs, req, node, file, fi);
	fi->fh = (uint64_t)(uintptr_t)file;
	pthread_rwlock_unlock(&node->lock);
	/* A reply that failed (the create was interrupted) gets no release,
	 * and the kernel took no lookup of the file. */
	if (fuse_reply_create(req, &e, fi) < 0) {
		file_remove(fs, file);
		forget_nodeid(fs, e.ino, 1);
	}
}

/* A file below a lazy dir, opened for reading: its volume file (a stub's
 * open, switched at a copy-up like one), or the plan's bytes. */
static int open_plan_file(struct fs *fs, struct fs_node *node, struct fuse_file_info *fi)
{
	const struct plan_node *planned = &fs->config->plan->nodes[node->plan_node];
	bool lower = planned->kind == PLAN_LOWER_FILE;
	struct fs_file *file;
	int fd = -1, rc = 0;

	fi->keep_cache = lower; /* volume files never change */
	pthread_rwlock_wrlock(&node->lock);
	file = file_share(node, fi->flags);
	pthread_rwlock_unlock(&node->lock);
	if (file) {
		fi->fh = (uint64_t)(uintptr_t)file;
		return 0;
	}
	if (lower) {
		rc = volume_file_check(fs, node->plan_node);
	} else {
		fd = memfd_create("vmunionfs-plan-file", MFD_CLOEXEC);
		if (fd < 0 && out_of_fds(fs, -errno))
			fd = memfd_create("vmunionfs-plan-file", MFD_CLOEXEC);
		rc = fd < 0 ? -errno : write_all(fd, planned->content, planned->size) < 0 ? -EIO : 0;
	}
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	pthread_rwlock_wrlock(&node->lock);
	file = file_share(node, fi->flags); /* opened meanwhile by another open */
	if (file) {
		if (fd >= 0)
			close(fd);
	} else {
		file = file_add(fs, node, fd, fi->flags, lower ? node->plan_node : PLAN_NONE, -1);
		file->frozen = !lower;
	}
	fi->fh = (uint64_t)(uintptr_t)file;
	pthread_rwlock_unlock(&node->lock);
	return 0;
}

/* A stub opened for writing holds its upper file for the copy-up: the name
 * may be unlinked before the first write, which a POSIX file still takes.
 * Its reads come from the volume file till then. Under node->lock. */
static int open_stub(struct fs *fs, struct fs_node *node, int flags, int *upper_fd)
{
	int rc = 0;

	*upper_fd = -1;
	if (wants_write(flags))
		rc = *upper_fd = node_upper_open(fs, node, O_RDWR);
	if (rc >= 0)
		rc = volume_file_check(fs, node->stub_file);
	if (rc < 0 && *upper_fd >= 0) {
		close(*upper_fd);
		*upper_fd = -1;
	}
	return rc < 0 ? rc : 0;
}

static int open_upper_file(struct fs *fs, fuse_req_t req, struct fs_node *node,
			   struct fuse_file_info *fi)
{
	struct fs_file *file = NULL;
	uint32_t stub_file = PLAN_NONE;
	int fd = -1, upper_fd = -1, rc = 0;

	node_recheck(fs, node);
	pthread_rwlock_wrlock(&node->lock);
	if (node->stub == STUB_REFUSED) {
		rc = -EIO;
	} else if (!wants_write(fi->flags) && (file = file_share(node, fi->flags))) {
		fi->keep_cache = file->lower;
	} else if (node->stub == STUB_OK) {
		rc = open_stub(fs, node, fi->flags, &upper_fd);
		stub_file = node->stub_file;
		fi->keep_cache = 1; /* volume files never change */
	} else {
		rc = fd = node_open(fs, node, NULL, fi->flags & OPEN_FLAGS);
	}
	if (rc >= 0 && !file)
		file = file_add(fs, node, fd, fi->flags, stub_file, upper_fd);
	if (file) {
		file_passthrough(fs, req, node, file, fi);
		fi->fh = (uint64_t)(uintptr_t)file;
	}
	pthread_rwlock_unlock(&node->lock);
	return rc < 0 ? rc : 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node = node_of(req, ino);
	int rc = 0;

	/* A stub opened for writing is copied up at its first write or
	 * truncation, which may keep less; O_TRUNC keeps nothing. */
	if (wants_write(fi->flags))
		rc = node_make_upper(fs, node);
	if (rc == 0 && wants_write(fi->flags) && (fi->flags & O_TRUNC))
		rc = copy_up(fs, node, 0);
	if (rc == 0) {
		pthread_rwlock_rdlock(&fs->population);
		rc = node->plan_node != PLAN_NONE ? open_plan_file(fs, node, fi)
						  : open_upper_file(fs, req, node, fi);
		pthread_rwlock_unlock(&fs->population);
	}
	/* Closing what was opened for reading reports no error: the kernel
	 * then sends no FLUSH at each close (vmstorage opens every part). */
	fi->noflush = !wants_write(fi->flags);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_open(req, fi) < 0) /* interrupted: no release comes */
		file_remove(fs, file_of(fi));
}

/* Up to size bytes at offset of file (fd), to the end of the file, into
 * the thread's buffer: their count, or -errno. A volume file must hold what
 * the plan says (checked when opened): one that shrinks while read is EIO,
 * never a short read the kernel would fill with zeros. Through a buffer
 * rather than a splice: libfuse spliced no 1 MiB reply, and fell back to a
 * buffer it allocated and faulted in for each. */
static ssize_t read_file(struct fs *fs, const struct fs_file *file, int fd, char **buf,
			 size_t size, off_t offset)
{
	const struct plan_node *planned;
	uint64_t want;
	ssize_t n;

	*buf = thread_buffer(size);
	n = pread_full(fd, *buf, size, offset);
	if (n < 0 || file->volume_file == PLAN_NONE)
		return n;
	planned = &fs->config->plan->nodes[file->volume_file];
	want = planned->size > (uint64_t)offset ? planned->size - (uint64_t)offset : 0;
	if ((uint64_t)n < (want < size ? want : size)) {
		log_error("%s/%s: ends at %jd, but the plan says %" PRIu64 " bytes: the volume "
			  "file changed underneath the mount; reads fail with EIO",
			  fs->config->volumes[planned->volume].path, planned->lower_path,
			  (intmax_t)offset + (intmax_t)n, planned->size);
		return -EIO;
	}
	return n;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *file = file_of(fi);
	struct fd_hold *hold;
	char *buf = NULL;
	ssize_t n;
	int fd;

	/* A stub copied up through another of its names is read from the upper. */
	node_recheck(fs, file->node);
	fd = file_fd_get(fs, file, &hold);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = read_file(fs, file, fd, &buf, size, offset);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
	} else {
		metrics_add(hold ? METRIC_READ_VOLUME_BYTES : METRIC_READ_UPPER_BYTES,
			    (uint64_t)n);
		fuse_reply_buf(req, buf, (size_t)n);
	}
	file_fd_put(fs, file, hold);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t offset,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	struct fd_hold *hold;
	int fd = file_fd_write(fs_of(req), file_of(fi), &hold);
	ssize_t n;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = offset;
	n = fuse_buf_copy(&out, in, 0);
	file_fd_put(fs_of(req), file_of(fi), hold);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a dup reports delayed write errors, as a real close would;
	 * without a free fd there is nothing to close, and no error to report,
	 * nor from a volume file, never written. */
	struct fd_hold *hold;
	int fd = file_fd_get(fs_of(req), file_of(fi), &hold), rc = 0;

	if (fd < 0) {
		fuse_reply_err(req, 0);
		return;
	}
	fd = hold ? -1 : dup(fd);
	rc = !hold && fd < 0 ? errno : 0;
	file_fd_put(fs_of(req), file_of(fi), hold);
	if (fd >= 0 && close(fd) < 0)
		rc = errno;
	fuse_reply_err(req, rc == EMFILE || rc == ENFILE ? 0 : rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	file_remove(fs_of(req), file_of(fi));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fd_hold *hold;
	int fd = file_fd_get(fs_of(req), file_of(fi), &hold), rc;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	rc = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
	file_fd_put(fs_of(req), file_of(fi), hold);
	fuse_reply_err(req, rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	struct fd_hold *hold;
	int fd = file_fd_write(fs_of(req), file_of(fi), &hold), rc;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	rc = fallocate(fd, mode, offset, length) < 0 ? errno : 0;
	file_fd_put(fs_of(req), file_of(fi), hold);
	fuse_reply_err(req, rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	/* Real free space of the upper: vmstorage turns read-only when it looks low. */
	if (fstatvfs(fs_of(req)->config->upper_tree_fd, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

/* A dir below a lazy one: the ACL the plan merged, which populate sets on
 * it. */
static void reply_plan_acl(fuse_req_t req, const struct plan *plan, uint32_t dir,
			   const char *name, size_t size)
{
	const struct plan_dir_acl *acl = plan_dir_acl_find(plan->dir_acls, plan->dir_acl_count,
							   dir);
	bool access = strcmp(name, ACL_ACCESS_XATTR) == 0;
	const char *value = !acl ? NULL : access ? acl->access : acl->defaults;
	size_t len = !acl ? 0 : access ? acl->access_len : acl->defaults_len;

	if (!value)
		fuse_reply_err(req, ENODATA);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

/* Serves the POSIX ACLs that populate copied from the volumes onto the
 * upper (and those set on the upper's own files): the kernel checks them.
 * The daemon's own xattrs (stub references) stay hidden. */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct fs_node *node;
	const struct plan *plan = fs->config->plan;
	uint32_t plan_dir = PLAN_NONE, index;
	char path[64], *buf = NULL;
	ssize_t len;
	int fd;

	if (strcmp(name, ACL_ACCESS_XATTR) != 0 && strcmp(name, ACL_DEFAULT_XATTR) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	/* Below a lazy dir: a volume file's own ACL, which populate copies
	 * onto its stub, or a dir's the plan merged; a synthesized file has
	 * none. */
	pthread_rwlock_rdlock(&fs->population);
	node = node_known(fs, ino);
	if (!node) { /* known by plan_ino: as its node would be, a stub's */
		index = (uint32_t)(ino & ~PLAN_INO_FLAG);
		fd = plan->nodes[index].kind == PLAN_LOWER_FILE ? volume_file_open_own(fs, index)
								 : -ENODATA;
	} else if (node->plan_node == PLAN_NONE) {
		fd = node_open(fs, node, NULL, O_PATH);
	} else if (node->stub == STUB_OK) {
		fd = volume_file_open_own(fs, node->stub_file);
	} else {
		fd = -ENODATA;
	}
	if (node && node->plan_node != PLAN_NONE && plan->nodes[node->plan_node].kind == PLAN_DIR)
		plan_dir = node->plan_node;
	pthread_rwlock_unlock(&fs->population);
	if (plan_dir != PLAN_NONE) {
		reply_plan_acl(req, plan, plan_dir, name, size);
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (size > 0)
		buf = xmalloc(size);
	proc_path(path, sizeof(path), fd);
	len = getxattr(path, name, buf, size);
	if (len < 0)
		fuse_reply_err(req, errno == ENOTSUP ? ENODATA : errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
	free(buf);
	close(fd);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Reads reply from a buffer (read_file): nothing to splice. Never
	 * SPLICE_MOVE: stealing pages upsets the kernel ("trying to steal
	 * weird page") and close() then failed with EIO. */
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	/* The kernel checks the volumes' ACLs too, asking getxattr for them;
	 * it still applies the caller's umask (no FUSE_CAP_DONT_MASK). */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* A read that finds another size or mtime drops the cached pages: see
	 * attr_timeout. libfuse's default, relied on. */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* Every listing carries its entries' attributes, not only the first
	 * batch of each dir: vmstorage opens every part it lists. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Keep page-cache writes going straight to the upper: vmstorage fsyncs. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	fs->passthrough = passthrough_negotiate(conn, fs->config->passthrough);
	fs->opendir_is_optional = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	readahead_negotiate(conn);
	pthread_mutex_lock(&fs->flusher_lock);
	fs->flusher_started = pthread_create(&fs->flusher, NULL, flusher_main, fs) == 0;
	pthread_mutex_unlock(&fs->flusher_lock);
	if (!fs->flusher_started)
		log_error("cannot start a thread: files unlinked from lazy dirs reach the upper "
			  "only when their dir is synced or at unmount");
}

/* At unmount: the upper learns of every file unlinked from a lazy dir. */
static void op_destroy(void *userdata)
{
	struct fs *fs = userdata;

	pthread_mutex_lock(&fs->flusher_lock);
	fs->flusher_stop = true;
	pthread_cond_signal(&fs->flusher_wake);
	pthread_mutex_unlock(&fs->flusher_lock);
	if (fs->flusher_started)
		pthread_join(fs->flusher, NULL);
	fs->flusher_started = false;
	pending_flush(fs, FLUSH_LAST); /* serve() keeps SIGTERM and the like out */
}

static const struct fuse_lowlevel_ops operations = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.getxattr = op_getxattr,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.statfs = op_statfs,
};

struct fs *fs_new(const struct fs_config *config, struct error *err)
{
	struct fs *fs = xcalloc(1, sizeof(*fs));
	pthread_condattr_t monotonic;
	struct stat st;

	if (fstat(config->upper_tree_fd, &st) < 0) {
		error_set(err, errno, "upper tree: %s", strerror(errno));
		free(fs);
		return NULL;
	}
	/* The kernel applies the caller's umask; ours must not apply again. */
	umask(0);
	fs->config = config;
	fs->bucket_count = 65521;
	fs->buckets = xcalloc(fs->bucket_count, sizeof(*fs->buckets));
	fs->plan_buckets = xcalloc(fs->bucket_count, sizeof(*fs->plan_buckets));
	pthread_mutex_init(&fs->mutex, NULL);
	pthread_rwlock_init(&fs->root.lock, NULL);
	pthread_mutex_init(&fs->root.copy_up_lock, NULL);
	for (size_t i = 0; i < LISTING_LOCKS; i++)
		pthread_mutex_init(&fs->listing_locks[i], NULL);
	fs->root.ino = fs->root.upper_ino = st.st_ino;
	fs->root.plan_node = fs->root.plan_dir = PLAN_NONE; /* populated when made */
	fs->root.listed_plan_dir = PLAN_NONE;
	fs->root.stub_file = PLAN_NONE;
	fs->root.plan_key = PLAN_NONE;
	pthread_mutex_init(&fs->populating, NULL);
	rwlock_init_prefer_writer(&fs->population);
	rwlock_init_prefer_writer(&fs->renaming);
	fs->root.lookups = 2;
	plan_lower_index_build(&fs->stubs, config->plan);
	fs->volume_fds = fd_cache_new(VOLUME_FD_LIMIT, open_cached_volume_file, fs);
	fs->removed = xcalloc(config->plan->node_count / 8 + 1, 1);
	fs->plan_lookups = xcalloc(config->plan->node_count, sizeof(*fs->plan_lookups));
	pthread_mutex_init(&fs->flusher_lock, NULL);
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->flusher_wake, &monotonic);
	pthread_condattr_destroy(&monotonic);
	return fs;
}

/* The files still open when the daemon ends (the connection aborted, a
 * SIGTERM): no release will come for them. */
static void node_files_free(struct fs_node *node)
{
	while (node->files) {
		struct fs_file *file = node->files;

		node->files = file->next;
		file_free(file);
	}
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	while (fs->all) {
		struct fs_node *node = fs->all;

		fs->all = node->all_next;
		node_files_free(node);
		node_free(node);
	}
	pthread_rwlock_destroy(&fs->root.lock);
	pthread_mutex_destroy(&fs->root.copy_up_lock);
	for (size_t i = 0; i < LISTING_LOCKS; i++)
		pthread_mutex_destroy(&fs->listing_locks[i]);
	if (fs->root.listing)
		listing_free(fs->root.listing);
	free(fs->root.listing);
	pthread_rwlock_destroy(&fs->population);
	pthread_rwlock_destroy(&fs->renaming);
	pthread_mutex_destroy(&fs->populating);
	free(fs->buckets);
	free(fs->plan_buckets);
	fd_cache_free(fs->volume_fds);
	plan_lower_index_free(&fs->stubs);
	free(fs->removed);
	free(fs->plan_lookups);
	pthread_mutex_destroy(&fs->flusher_lock);
	pthread_cond_destroy(&fs->flusher_wake);
	pthread_mutex_destroy(&fs->mutex);
	free(fs);
}

void fs_set_session(struct fs *fs, struct fuse_session *session)
{
	fs->session = session;
}

const struct fuse_lowlevel_ops *fs_operations(void)
{
	return &operations;
}
