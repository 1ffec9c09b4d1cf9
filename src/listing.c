/* SPDX-License-Identifier: Apache-2.0 */
#include "listing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void listing_init(struct listing *listing, off_t first_free)
{
	*listing = (struct listing){ .next_offset = first_free };
}

static void entries_free(struct listing_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(entries[i].name);
	free(entries);
}

void listing_free(struct listing *listing)
{
	entries_free(listing->entries, listing->count);
	listing->entries = NULL;
	listing->count = 0;
}

static int compare_names(const void *a, const void *b)
{
	const struct listing_entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int compare_offsets(const void *a, const void *b)
{
	const struct listing_entry *x = a, *y = b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

/* The entries of dir_fd, with no offset yet. 0 or -errno. */
static int read_entries(int dir_fd, struct listing_entry **entries, size_t *count)
{
	int fd = dup(dir_fd);
	size_t capacity = 0;
	struct dirent *found;
	DIR *stream;

	*entries = NULL;
	*count = 0;
	if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0 || !(stream = fdopendir(fd))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return -e;
	}
	for (errno = 0; (found = readdir(stream)); errno = 0) {
		if (strcmp(found->d_name, ".") == 0 || strcmp(found->d_name, "..") == 0)
			continue;
		*ARRAY_PUSH(*entries, *count, capacity) = (struct listing_entry){
			.ino = found->d_ino, .type = found->d_type, .name = xstrdup(found->d_name)
		};
	}
	if (errno) {
		int e = errno;

		closedir(stream);
		entries_free(*entries, *count);
		*entries = NULL;
		return -e;
	}
	closedir(stream);
	return 0;
}

/* Gives each entry its offset: fixed, else the one it had, else a new one. */
static void number_entries(struct listing *listing, struct listing_entry *entries, size_t count,
			   listing_fixed_offset_fn *fixed, void *arg)
{
	struct listing_entry **before = xcalloc(listing->count + 1, sizeof(*before));

	for (size_t i = 0; i < listing->count; i++)
		before[i] = &listing->entries[i];
	qsort(before, listing->count, sizeof(*before), compare_names);
	for (size_t i = 0; i < count; i++) {
		struct listing_entry *key = &entries[i], **had;

		key->offset = fixed(key->name, arg);
		if (key->offset)
			continue;
		had = bsearch(&key, before, listing->count, sizeof(*before), compare_names);
		key->offset = had ? (*had)->offset : listing->next_offset++;
	}
	free(before);
}

int listing_read(struct listing *listing, int dir_fd, listing_fixed_offset_fn *fixed, void *arg)
{
	struct listing_entry *entries;
	size_t count;
	int rc = read_entries(dir_fd, &entries, &count);

	if (rc < 0)
		return rc;
	number_entries(listing, entries, count, fixed, arg);
	if (count) /* an empty dir has no array, which qsort must not be given */
		qsort(entries, count, sizeof(*entries), compare_offsets);
	entries_free(listing->entries, listing->count);
	listing->entries = entries;
	listing->count = count;
	return 0;
}

size_t listing_after(const struct listing *listing, off_t offset)
{
	size_t low = 0, high = listing->count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;

		if (listing->entries[mid].offset <= offset)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}
