/* SPDX-License-Identifier: Apache-2.0 */
/* The fd cache (fd_cache.h): a chained hash table of entries, and a list of
 * the unheld ones, most recently used first, under one lock. Opens happen
 * outside the lock, so a slow volume holds up no other read. */
#include "fd_cache.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct fd_hold {
	struct fd_hold *next;             /* in its bucket */
	struct fd_hold *newer, *older;    /* in the unheld list, if refs == 0 */
	uint32_t key;
	unsigned int refs;
	int fd;
};

struct fd_cache {
	pthread_mutex_t lock;
	struct fd_hold **buckets;
	size_t bucket_mask;
	struct fd_hold *newest, *oldest; /* the unheld list */
	size_t count;                    /* entries, held or not */
	size_t limit, current_limit;     /* as asked; as the fd limit allows now */
	fd_cache_open_fn *open;
	void *arg;
};

struct fd_cache *fd_cache_new(size_t limit, fd_cache_open_fn *open, void *arg)
{
	struct fd_cache *cache = xcalloc(1, sizeof(*cache));
	size_t buckets = 16;

	while (buckets < limit)
		buckets *= 2;
	cache->buckets = xcalloc(buckets, sizeof(*cache->buckets));
	cache->bucket_mask = buckets - 1;
	cache->limit = cache->current_limit = limit;
	cache->open = open;
	cache->arg = arg;
	pthread_mutex_init(&cache->lock, NULL);
	return cache;
}

void fd_cache_free(struct fd_cache *cache)
{
	if (!cache)
		return;
	for (size_t i = 0; i <= cache->bucket_mask; i++) {
		for (struct fd_hold *hold = cache->buckets[i], *next; hold; hold = next) {
			next = hold->next;
			close(hold->fd);
			free(hold);
		}
	}
	pthread_mutex_destroy(&cache->lock);
	free(cache->buckets);
	free(cache);
}

int fd_hold_fd(const struct fd_hold *hold)
{
	return hold->fd;
}

/* ---- under the lock ---- */

static struct fd_hold **bucket_of(struct fd_cache *cache, uint32_t key)
{
	return &cache->buckets[(key * 2654435761u) & cache->bucket_mask];
}

static struct fd_hold *find(struct fd_cache *cache, uint32_t key)
{
	struct fd_hold *hold = *bucket_of(cache, key);

	while (hold && hold->key != key)
		hold = hold->next;
	return hold;
}

static void unlist(struct fd_cache *cache, struct fd_hold *hold)
{
	*(hold->newer ? &hold->newer->older : &cache->newest) = hold->older;
	*(hold->older ? &hold->older->newer : &cache->oldest) = hold->newer;
	hold->newer = hold->older = NULL;
}

static void take(struct fd_cache *cache, struct fd_hold *hold)
{
	if (hold->refs++ == 0)
		unlist(cache, hold);
}

static void drop(struct fd_cache *cache, struct fd_hold *hold)
{
	struct fd_hold **link = bucket_of(cache, hold->key);

	while (*link != hold)
		link = &(*link)->next;
	*link = hold->next;
	unlist(cache, hold);
	close(hold->fd);
	free(hold);
	cache->count--;
}

/* Closes the oldest unheld fds until at most keep entries are left (or
 * none is unheld). */
static void trim(struct fd_cache *cache, size_t keep)
{
	while (cache->count > keep && cache->oldest)
		drop(cache, cache->oldest);
}

/* ---- holds ---- */

/* Half the fd limit as it is now: a limit lowered on the running daemon
 * (prlimit) shrinks the cache too. */
static size_t current_limit(const struct fd_cache *cache)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur / 2 < cache->limit)
		return (size_t)(limit.rlim_cur / 2);
	return cache->limit;
}

size_t fd_cache_give_back(struct fd_cache *cache)
{
	size_t count;

	pthread_mutex_lock(&cache->lock);
	count = cache->count;
	trim(cache, 0);
	count -= cache->count;
	pthread_mutex_unlock(&cache->lock);
	return count;
}

static int open_for(struct fd_cache *cache, uint32_t key)
{
	int fd = cache->open(key, cache->arg);

	if (fd != -EMFILE && fd != -ENFILE)
		return fd;
	/* Out of fds: the ones nobody holds are the cache's to give back. */
	fd_cache_give_back(cache);
	return cache->open(key, cache->arg);
}

struct fd_hold *fd_cache_get(struct fd_cache *cache, uint32_t key, int *rc)
{
	struct fd_hold *hold;
	size_t limit;
	int fd;

	pthread_mutex_lock(&cache->lock);
	hold = find(cache, key);
	if (hold)
		take(cache, hold);
	pthread_mutex_unlock(&cache->lock);
	if (hold)
		return hold;
	limit = current_limit(cache);
	fd = open_for(cache, key);
	if (fd < 0) {
		*rc = fd;
		return NULL;
	}
	pthread_mutex_lock(&cache->lock);
	hold = find(cache, key);
	if (hold) { /* opened by another read meanwhile: share its fd */
		take(cache, hold);
	} else {
		struct fd_hold **bucket = bucket_of(cache, key);

		hold = xmalloc(sizeof(*hold));
		*hold = (struct fd_hold){ .next = *bucket, .key = key, .refs = 1, .fd = fd };
		*bucket = hold;
		cache->count++;
		fd = -1;
	}
	cache->current_limit = limit;
	trim(cache, limit);
	pthread_mutex_unlock(&cache->lock);
	if (fd >= 0)
		close(fd);
	return hold;
}

void fd_cache_put(struct fd_cache *cache, struct fd_hold *hold)
{
	pthread_mutex_lock(&cache->lock);
	if (--hold->refs == 0) {
		hold->older = cache->newest;
		*(cache->newest ? &cache->newest->newer : &cache->oldest) = hold;
		cache->newest = hold;
		trim(cache, cache->current_limit);
	}
	pthread_mutex_unlock(&cache->lock);
}
