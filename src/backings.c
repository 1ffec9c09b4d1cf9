/* SPDX-License-Identifier: Apache-2.0 */
#include "backings.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

enum { BUCKETS = 1024 };

struct backing {
	struct backing *next;
	uint32_t key;
	uint32_t opens;
	int id;
};

struct backings {
	pthread_mutex_t lock;
	struct backing *buckets[BUCKETS];
};

struct backings *backings_new(void)
{
	struct backings *backings = xcalloc(1, sizeof(*backings));

	pthread_mutex_init(&backings->lock, NULL);
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

int backings_open(struct backings *backings, uint32_t key)
{
	struct backing *backing;
	int id = -1;

	pthread_mutex_lock(&backings->lock);
	backing = *find_locked(backings, key);
	if (backing) {
		backing->opens++;
		id = backing->id;
	}
	pthread_mutex_unlock(&backings->lock);
	return id;
}

int backings_add(struct backings *backings, uint32_t key, int id, int *unused)
{
	struct backing **link;

	*unused = 0;
	pthread_mutex_lock(&backings->lock);
	link = find_locked(backings, key);
	if (*link) {
		*unused = id;
		(*link)->opens++;
		id = (*link)->id;
	} else {
		*link = xcalloc(1, sizeof(**link));
		**link = (struct backing){ .key = key, .opens = 1, .id = id };
	}
	pthread_mutex_unlock(&backings->lock);
	return id;
}

int backings_release(struct backings *backings, uint32_t key)
{
	struct backing **link, *unused = NULL;
	int id = 0;

	pthread_mutex_lock(&backings->lock);
	link = find_locked(backings, key);
	if (*link && --(*link)->opens == 0) {
		unused = *link;
		*link = unused->next;
	}
	pthread_mutex_unlock(&backings->lock);
	if (unused) {
		id = unused->id;
		free(unused);
	}
	return id;
}
