/* SPDX-License-Identifier: Apache-2.0 */
/* The backing ids of passthrough opens (backings.c): every open of a key
 * gets the id the key has while any open of it is counted, a second id
 * registered meanwhile is given back, and the last release gives the id
 * back and forgets the key; an id 0 (read through the daemon) holds for
 * every open while one is counted. */
#include <pthread.h>
#include <stdatomic.h>

#include "backings.h"
#include "tap.h"

static void test_counts(void)
{
	struct backings *backings = backings_new();
	int unused;

	is_int(backings_open(backings, 7), -1, "a key not open has no id");
	is_int(backings_add(backings, 7, 70, &unused), 70, "added with its id");
	is_int(unused, 0, "... nothing to unregister");
	is_int(backings_open(backings, 7), 70, "a second open gets the same id");
	is_int(backings_add(backings, 7, 71, &unused), 70,
	       "one registered meanwhile by another open: the first id wins");
	is_int(unused, 71, "... and the other is to unregister");
	is_int(backings_release(backings, 7), 0, "a release of 3 opens: nothing to unregister");
	is_int(backings_release(backings, 7), 0, "... nor of 2");
	is_int(backings_release(backings, 7), 70, "the last release: its id to unregister");
	is_int(backings_open(backings, 7), -1, "... and the key is forgotten");
	is_int(backings_release(backings, 8), 0, "a release of a key not open: nothing");
	backings_free(backings);
}

static void test_daemon_reads(void)
{
	struct backings *backings = backings_new();
	int unused;

	is_int(backings_add(backings, 5, 0, &unused), 0, "an open that could not pass through");
	is_int(backings_open(backings, 5), 0, "... another open of it goes through the daemon too");
	is_int(backings_add(backings, 5, 50, &unused), 0, "... even one that registered an id");
	is_int(unused, 50, "... which is to unregister");
	backings_release(backings, 5);
	backings_release(backings, 5);
	is_int(backings_release(backings, 5), 0, "the last release: no id to unregister");
	is_int(backings_open(backings, 5), -1, "... and the next open may pass through");
	backings_free(backings);
}

enum { THREADS = 4, ROUNDS = 20000, KEYS = 8 };
static struct backings *shared;
static atomic_int mismatches, registered[KEYS];

/* Each thread opens and releases keys; a key's id is 100 + key, registered
 * again after every last release: registered counts the ids in use. */
static void *opener(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		uint32_t key = (uint32_t)(i % KEYS);
		int id = backings_open(shared, key), unused, given_back;

		if (id < 0) {
			atomic_fetch_add(&registered[key], 1);
			id = backings_add(shared, key, 100 + (int)key, &unused);
			if (unused)
				atomic_fetch_sub(&registered[key], 1);
		}
		if (id != 100 + (int)key)
			atomic_fetch_add(&mismatches, 1);
		given_back = backings_release(shared, key);
		if (given_back)
			atomic_fetch_sub(&registered[key], 1);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t threads[THREADS];
	int leaked = 0;

	shared = backings_new();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, opener, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	is_int(atomic_load(&mismatches), 0, "%d threads: every open of a key got its id", THREADS);
	for (int key = 0; key < KEYS; key++)
		leaked += atomic_load(&registered[key]) != 0 ||
			  backings_open(shared, (uint32_t)key) != -1;
	is_int(leaked, 0, "... every id registered was given back once, every key forgotten");
	backings_free(shared);
}

int main(void)
{
	test_counts();
	test_daemon_reads();
	test_threads();
	return done_testing();
}
