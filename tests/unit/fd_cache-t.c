/* SPDX-License-Identifier: Apache-2.0 */
/* The mounts' fd cache of volume files: least recently used unheld fds go
 * first, a held fd is never closed, EMFILE gives the unheld fds back (also
 * when asked, for another open of the process), errors pass through, and
 * concurrent readers always read an open fd. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "fd_cache.h"
#include "tap.h"

struct opener {
	atomic_int opens;
	atomic_int fail_next; /* -errno to return once, or 0 */
};

static int open_null(uint32_t key, void *arg)
{
	struct opener *opener = arg;
	int fail = atomic_exchange(&opener->fail_next, 0);

	(void)key;
	if (fail)
		return fail;
	atomic_fetch_add(&opener->opens, 1);
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int use(struct fd_cache *cache, uint32_t key)
{
	int rc = 0;
	struct fd_hold *hold = fd_cache_get(cache, key, &rc);
	int fd = hold ? fd_hold_fd(hold) : rc;

	if (hold)
		fd_cache_put(cache, hold);
	return fd;
}

static void test_lru(void)
{
	struct opener opener = { 0 };
	struct fd_cache *cache = fd_cache_new(2, open_null, &opener);
	int first = use(cache, 1);

	use(cache, 2);
	use(cache, 1); /* 1 is now the most recently used */
	use(cache, 3); /* evicts 2 */
	is_int(atomic_load(&opener.opens), 3, "three keys, three opens");
	ok(is_open(first), "the recently used fd stays open");
	use(cache, 1);
	is_int(atomic_load(&opener.opens), 3, "a cached key opens nothing");
	use(cache, 2);
	is_int(atomic_load(&opener.opens), 4, "the least recently used key was closed");
	fd_cache_free(cache);
	ok(!is_open(first), "freeing the cache closes its fds");
}

static void test_held(void)
{
	struct opener opener = { 0 };
	struct fd_cache *cache = fd_cache_new(1, open_null, &opener);
	int rc = 0;
	struct fd_hold *hold = fd_cache_get(cache, 7, &rc);
	struct fd_hold *again;

	for (uint32_t key = 100; key < 110; key++)
		use(cache, key);
	ok(hold && is_open(fd_hold_fd(hold)), "a held fd survives evictions");
	again = fd_cache_get(cache, 7, &rc);
	ok(again == hold, "a second read of the key shares the held fd");
	fd_cache_put(cache, again);
	fd_cache_put(cache, hold);
	fd_cache_free(cache);
}

static void test_errors(void)
{
	struct opener opener = { 0 };
	struct fd_cache *cache = fd_cache_new(16, open_null, &opener);
	int rc = 0;

	use(cache, 1);
	atomic_store(&opener.fail_next, -EMFILE);
	ok(use(cache, 2) >= 0, "EMFILE: the open is tried again");
	use(cache, 1);
	is_int(atomic_load(&opener.opens), 3, "... after the unheld fds were closed");
	atomic_store(&opener.fail_next, -EIO);
	ok(!fd_cache_get(cache, 3, &rc) && rc == -EIO, "another error is returned as is");
	ok(use(cache, 3) >= 0, "... and not cached");
	fd_cache_free(cache);
}

static void test_give_back(void)
{
	struct opener opener = { 0 };
	struct fd_cache *cache = fd_cache_new(16, open_null, &opener);
	int rc = 0, idle = use(cache, 1);
	struct fd_hold *hold = fd_cache_get(cache, 2, &rc);

	use(cache, 3);
	is_int((int)fd_cache_give_back(cache), 2, "give back closes the two unheld fds");
	ok(!is_open(idle), "... an idle one is closed");
	ok(hold && is_open(fd_hold_fd(hold)), "... the held one stays open");
	is_int((int)fd_cache_give_back(cache), 0, "nothing more to give back");
	fd_cache_put(cache, hold);
	use(cache, 1);
	is_int(atomic_load(&opener.opens), 4, "a key given back is opened again");
	fd_cache_free(cache);
}

struct reader {
	struct fd_cache *cache;
	unsigned int seed;
	int bad;
};

static void *read_many(void *arg)
{
	struct reader *reader = arg;

	for (int i = 0; i < 20000; i++) {
		int rc = 0;
		uint32_t key = (uint32_t)rand_r(&reader->seed) % 50;
		struct fd_hold *hold = fd_cache_get(reader->cache, key, &rc);

		if (!hold || !is_open(fd_hold_fd(hold)))
			reader->bad++;
		if (hold)
			fd_cache_put(reader->cache, hold);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct opener opener = { 0 };
	struct fd_cache *cache = fd_cache_new(8, open_null, &opener);
	struct reader readers[4];
	pthread_t threads[4];
	int bad = 0;

	for (int i = 0; i < 4; i++)
		readers[i] = (struct reader){ .cache = cache, .seed = (unsigned int)i + 1 };
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, read_many, &readers[i]);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		bad += readers[i].bad;
	}
	is_int(bad, 0, "4 readers over 50 keys and 8 fds: every held fd is open");
	fd_cache_free(cache);
}

int main(void)
{
	test_lru();
	test_held();
	test_errors();
	test_give_back();
	test_concurrent();
	return done_testing();
}
