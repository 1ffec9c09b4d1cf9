/* SPDX-License-Identifier: Apache-2.0 */
/* The backing ids of passthrough opens (backings.c): every open of a key
 * gets the id the key has while any open of it is counted; an id stays
 * registered after the last release, and the oldest unused one is given
 * back past the bound; an id 0 (read through the daemon) is forgotten at
 * the last release, so that the next open may pass through. */
#include <pthread.h>
#include <stdatomic.h>

#include "backings.h"
#include "tap.h"

static void test_counts(void)
{
	struct backings *backings = backings_new(2);
	int unused;

	is_int(backings_open(backings, 7), -1, "an unknown key has no id");
	is_int(backings_add(backings, 7, 70, &unused), 70, "added with its id");
	is_int(unused, 0, "... nothing to unregister");
	is_int(backings_open(backings, 7), 70, "a second open gets the same id");
	is_int(backings_add(backings, 7, 71, &unused), 70,
	       "one registered meanwhile by another open: the first id wins");
	is_int(unused, 71, "... and the other is to unregister");
	is_int(backings_release(backings, 7), 0, "a release of 3 opens: nothing unused");
	is_int(backings_release(backings, 7), 0, "... nor of 2");
	is_int(backings_release(backings, 7), 0, "the last release keeps the id registered");
	is_int(backings_open(backings, 7), 70, "... and the next open gets it");
	is_int(backings_release(backings, 7), 0, "released again");
	backings_free(backings);
}

static void test_keep_bound(void)
{
	struct backings *backings = backings_new(2);
	int unused;

	for (uint32_t key = 1; key <= 3; key++)
		backings_add(backings, key, (int)key * 10, &unused);
	is_int(backings_release(backings, 1), 0, "one unused id kept");
	is_int(backings_release(backings, 2), 0, "two kept");
	is_int(backings_open(backings, 1), 10, "the oldest opened again: no longer unused");
	is_int(backings_release(backings, 3), 0, "two unused again (2 and 3)");
	is_int(backings_release(backings, 1), 20, "a third: the oldest unused (2) is given back");
	is_int(backings_open(backings, 2), -1, "... and forgotten");
	is_int(backings_open(backings, 3), 30, "the others are kept");
	backings_free(backings);
}

static void test_daemon_reads(void)
{
	struct backings *backings = backings_new(4);
	int unused;

	is_int(backings_add(backings, 5, 0, &unused), 0, "an open that could not pass through");
	is_int(backings_open(backings, 5), 0, "... another open of it goes through the daemon too");
	is_int(backings_add(backings, 5, 50, &unused), 0, "... even one that registered an id");
	is_int(unused, 50, "... which is to unregister");
	backings_release(backings, 5);
	backings_release(backings, 5);
	is_int(backings_release(backings, 5), 0, "the last release of it");
	is_int(backings_open(backings, 5), -1, "... forgets it: the next open may pass through");
	backings_free(backings);
}

enum { THREADS = 4, ROUNDS = 20000 };
static struct backings *shared;
static atomic_int mismatches, registrations;

static void *opener(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		uint32_t key = (uint32_t)(i % 8);
		int id = backings_open(shared, key), unused;

		if (id < 0) {
			atomic_fetch_add(&registrations, 1);
			id = backings_add(shared, key, 100 + (int)key, &unused);
		}
		if (id != 100 + (int)key)
			atomic_fetch_add(&mismatches, 1);
		backings_release(shared, key);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t threads[THREADS];

	shared = backings_new(0); /* nothing kept: every key comes and goes */
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, opener, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	is_int(atomic_load(&mismatches), 0, "%d threads: every open of a key got its id",
	       THREADS);
	ok(atomic_load(&registrations) > 0, "... keys were registered again once released");
	for (uint32_t key = 0; key < 8; key++)
		if (backings_open(shared, key) != -1)
			ok(0, "key %u still counted", key);
	backings_free(shared);
}

int main(void)
{
	test_counts();
	test_keep_bound();
	test_daemon_reads();
	test_threads();
	return done_testing();
}
