/* SPDX-License-Identifier: Apache-2.0 */
/* The preview's listing numbering (src/listing.c): a name keeps its offset
 * across readings, a name fixed by the caller has the caller's, a new name
 * comes after every other, a name removed is dropped, and listing_after
 * gives what follows an offset, even one no entry has any more. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listing.h"
#include "tap.h"

/* "fixed-N" has offset N + 3 (a plan position), others none. */
static off_t fixed_offset(const char *name, void *arg)
{
	(void)arg;
	return strncmp(name, "fixed-", 6) == 0 ? atoi(name + 6) + 3 : 0;
}

static off_t offset_of(const struct listing *listing, const char *name)
{
	for (size_t i = 0; i < listing->count; i++)
		if (strcmp(listing->entries[i].name, name) == 0)
			return listing->entries[i].offset;
	return -1;
}

static void make(int dir, const char *name)
{
	close(openat(dir, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
}

static bool in_offset_order(const struct listing *listing)
{
	for (size_t i = 1; i < listing->count; i++)
		if (listing->entries[i - 1].offset >= listing->entries[i].offset)
			return false;
	return true;
}

int main(void)
{
	char path[] = "/tmp/listing-t.XXXXXX";
	struct listing listing;
	off_t new_a, new_b;
	int dir;

	if (!mkdtemp(path) || (dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 99;
	make(dir, "fixed-0");
	make(dir, "fixed-2");
	make(dir, "new-a");
	make(dir, "new-b");
	listing_init(&listing, 6);
	is_int(listing_read(&listing, dir, fixed_offset, NULL), 0, "a dir read");
	is_int(listing.count, 4, "four entries, no dots");
	ok(in_offset_order(&listing), "entries come in offset order");
	is_int(offset_of(&listing, "fixed-0"), 3, "a fixed name has its fixed offset");
	is_int(offset_of(&listing, "fixed-2"), 5, "so has the other");
	new_a = offset_of(&listing, "new-a");
	new_b = offset_of(&listing, "new-b");
	ok(new_a >= 6 && new_b >= 6 && new_a != new_b, "new names get free offsets (%lld, %lld)",
	   (long long)new_a, (long long)new_b);

	unlinkat(dir, "new-a", 0);
	make(dir, "new-c");
	make(dir, "fixed-1");
	is_int(listing_read(&listing, dir, fixed_offset, NULL), 0, "the dir read anew");
	is_int(offset_of(&listing, "new-b"), new_b, "a name listed before keeps its offset");
	is_int(offset_of(&listing, "new-a"), -1, "a removed name is gone");
	ok(offset_of(&listing, "new-c") > (new_a > new_b ? new_a : new_b),
	   "a name made since comes after every name given an offset before");
	is_int(offset_of(&listing, "fixed-1"), 4, "a fixed name made since has its fixed offset");
	ok(in_offset_order(&listing), "entries still come in offset order");

	is_int(listing_after(&listing, 0), 0, "offset 0: from the first entry");
	is_int(listing.entries[listing_after(&listing, 4)].offset, 5, "after 4 comes 5");
	is_int(listing.entries[listing_after(&listing, new_a)].offset,
	       new_a < new_b ? new_b : offset_of(&listing, "new-c"),
	       "after a removed name's offset: the next one that stayed");
	is_int(listing_after(&listing, offset_of(&listing, "new-c")), listing.count,
	       "after the last: nothing");

	unlinkat(dir, "new-b", 0);
	unlinkat(dir, "new-c", 0);
	unlinkat(dir, "fixed-0", 0);
	unlinkat(dir, "fixed-1", 0);
	unlinkat(dir, "fixed-2", 0);
	rmdir(path);
	is_int(listing_read(&listing, dir, fixed_offset, NULL), 0, "a removed dir read");
	is_int(listing.count, 0, "it lists nothing");
	is_int(listing_read(&listing, -1, fixed_offset, NULL), -EBADF, "a bad fd: -EBADF");
	listing_free(&listing);
	close(dir);
	return done_testing();
}
