/* SPDX-License-Identifier: Apache-2.0 */
#include "backings.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

enum { BUCKETS = 1024 };

struct backing {
	struct backing *next;             /* in its bucket */
	struct backing *idle_prev, *idle_next; /* unused, oldest first */
	uint32_t key;
	uint32_t opens;
	int id;
};

struct backings {
	pthread_mutex_t lock;
	size_t keep, idle_count;
	struct backing *idle_first, *idle_last;
	struct backing *buckets[BUCKETS];
};

struct backings *backings_new(size_t keep)
{
	struct backings *backings = xcalloc(1, sizeof(*backings));

	pthread_mutex_init(&backings->lock, NULL);
	backings->keep = keep;
	return backings;
}

void backings_free(struct backings *backings)
{
	if (!backings)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while (backings->buckets[i]) {
			struct backing *next = backings->buckets[i]->next;

			free(backings->buckets[i]);
			backings->buckets[i] = next;
		}
	pthread_mutex_destroy(&backings->lock);
	free(backings);
}

static struct backing **find_locked(struct backings *backings, uint32_t key)
{
	struct backing **link = &backings->buckets[key % BUCKETS];

	while (*link && (*link)->key != key)
		link = &(*link)->next;
	return link;
}

static void idle_remove_locked(struct backings *backings, struct backing *backing)
{
	*(backing->idle_prev ? &backing->idle_prev->idle_next : &backings->idle_first) =
		backing->idle_next;
	*(backing->idle_next ? &backing->idle_next->idle_prev : &backings->idle_last) =
		backing->idle_prev;
	backing->idle_prev = backing->idle_next = NULL;
	backings->idle_count--;
}

static void idle_append_locked(struct backings *backings, struct backing *backing)
{
	backing->idle_prev = backings->idle_last;
	*(backings->idle_last ? &backings->idle_last->idle_next : &backings->idle_first) = backing;
	backings->idle_last = backing;
	backings->idle_count++;
}

/* Counts an open of the backing: its id. */
static int open_locked(struct backings *backings, struct backing *backing)
{
	if (backing->opens++ == 0)
		idle_remove_locked(backings, backing);
	return backing->id;
}

int backings_open(struct backings *backings, uint32_t key)
{
	struct backing *backing;
	int id = -1;

	pthread_mutex_lock(&backings->lock);
	backing = *find_locked(backings, key);
	if (backing)
		id = open_locked(backings, backing);
	pthread_mutex_unlock(&backings->lock);
	return id;
}

int backings_add(struct backings *backings, uint32_t key, int id, int *unused)
{
	struct backing **link, *backing;

	*unused = 0;
	pthread_mutex_lock(&backings->lock);
	link = find_locked(backings, key);
	if (*link) {
		*unused = id;
		id = open_locked(backings, *link);
	} else {
		backing = xcalloc(1, sizeof(*backing));
		*backing = (struct backing){ .key = key, .opens = 1, .id = id };
		*link = backing;
	}
	pthread_mutex_unlock(&backings->lock);
	return id;
}

/* Unlinks and frees backing: its id. */
static int remove_locked(struct backings *backings, struct backing *backing)
{
	struct backing **link = find_locked(backings, backing->key);
	int id = backing->id;

	*link = backing->next;
	free(backing);
	return id;
}

int backings_release(struct backings *backings, uint32_t key)
{
	struct backing *backing;
	int unused = 0;

	pthread_mutex_lock(&backings->lock);
	backing = *find_locked(backings, key);
	if (backing && --backing->opens == 0) {
		if (backing->id == 0 || backings->keep == 0) {
			unused = remove_locked(backings, backing); /* 0: may pass through next time */
		} else {
			idle_append_locked(backings, backing);
			if (backings->idle_count > backings->keep) {
				backing = backings->idle_first;
				idle_remove_locked(backings, backing);
				unused = remove_locked(backings, backing);
			}
		}
	}
	pthread_mutex_unlock(&backings->lock);
	return unused;
}
