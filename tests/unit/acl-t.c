/* SPDX-License-Identifier: Apache-2.0 */
/* acl_intersect against a model of the kernel's check (fs/namei.c
 * acl_permission_check, fs/posix_acl.c posix_acl_permission): over random
 * directories, the merged ACL grants no process (uid, groups) any request a
 * source directory refuses it; identical sources come back byte for byte;
 * an empty mask (which the kernel skips) is no way around a named entry. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "tap.h"

#define IDS 5 /* uids and gids 0..4 */

struct entry {
	uint16_t tag, perm;
	uint32_t id;
};

static size_t put_entries(char *value, const struct entry *entries, size_t count)
{
	uint32_t version = 2;

	memcpy(value, &version, 4); /* little-endian hosts only, as the tests run */
	for (size_t i = 0; i < count; i++)
		memcpy(value + 4 + 8 * i, &entries[i], 8);
	return 4 + 8 * count;
}

static bool in_group(uint32_t groups, uint32_t gid)
{
	return gid < IDS && (groups >> gid & 1);
}

/* posix_acl_permission for someone not the owner. */
static bool acl_grants(const struct acl_dir *dir, uint32_t uid, uint32_t groups, uint32_t want)
{
	size_t count = (dir->len - 4) / 8;
	struct entry e[64];
	uint32_t mask = 7;
	bool found = false;

	memcpy(e, dir->value + 4, dir->len - 4);
	for (size_t i = 0; i < count; i++)
		if (e[i].tag == 0x10)
			mask = e[i].perm;
	for (size_t i = 0; i < count; i++) {
		if (e[i].tag == 0x02 && e[i].id == uid)
			return (e[i].perm & mask & want) == want;
		if ((e[i].tag == 0x04 && in_group(groups, dir->gid)) ||
		    (e[i].tag == 0x08 && in_group(groups, e[i].id))) {
			found = true;
			if ((e[i].perm & want) == want)
				return (e[i].perm & mask & want) == want;
		}
		if (e[i].tag == 0x20)
			return !found && (e[i].perm & want) == want;
	}
	return false;
}

static bool kernel_grants(const struct acl_dir *dir, uint32_t uid, uint32_t groups,
			  uint32_t want)
{
	uint32_t mode = dir->mode;

	if (uid == dir->uid)
		return (want & ~(mode >> 6)) == 0;
	if (dir->value && (mode & 070))
		return acl_grants(dir, uid, groups, want);
	if ((want & (mode ^ mode >> 3)) && in_group(groups, dir->gid))
		mode >>= 3;
	return (want & ~mode & 7) == 0;
}

/* A directory as setfacl leaves one: named entries, a mask, the mode in step. */
static void random_dir(struct acl_dir *dir, char *value)
{
	struct entry e[16];
	size_t n = 0;
	uint32_t user_obj = (uint32_t)rand() % 8, group_obj = (uint32_t)rand() % 8,
		 other = (uint32_t)rand() % 8, mask = (uint32_t)rand() % 8;
	uint32_t users = (uint32_t)rand() % 32, named_groups = (uint32_t)rand() % 32;

	dir->uid = (uint32_t)rand() % IDS;
	dir->gid = (uint32_t)rand() % IDS;
	e[n++] = (struct entry){ 0x01, (uint16_t)user_obj, 0xffffffff };
	for (uint32_t id = 0; id < IDS; id++)
		if (users >> id & 1)
			e[n++] = (struct entry){ 0x02, (uint16_t)(rand() % 8), id };
	e[n++] = (struct entry){ 0x04, (uint16_t)group_obj, 0xffffffff };
	for (uint32_t id = 0; id < IDS; id++)
		if (named_groups >> id & 1)
			e[n++] = (struct entry){ 0x08, (uint16_t)(rand() % 8), id };
	e[n++] = (struct entry){ 0x10, (uint16_t)mask, 0xffffffff };
	e[n++] = (struct entry){ 0x20, (uint16_t)other, 0xffffffff };
	if (n == 4 || rand() % 4 == 0) { /* no ACL: the mode alone */
		dir->mode = 040000 | (uint32_t)rand() % 01000;
		dir->value = NULL;
		dir->len = 0;
		return;
	}
	dir->mode = 040000 | user_obj << 6 | mask << 3 | other;
	dir->len = put_entries(value, e, n);
	dir->value = value;
}

/* How many (uid, groups, request) the merged dir grants and a source refuses. */
static int wider_grants(const struct acl_dir *dirs, size_t count)
{
	struct acl_dir merged = { .uid = dirs[0].uid, .gid = dirs[0].gid };
	uint32_t perms;
	char *value;
	size_t bad;
	int wider = 0;

	if (acl_intersect(dirs, count, merged.uid, merged.gid, &perms, &value, &merged.len,
			  &bad) < 0)
		return -1;
	merged.mode = 040000 | perms;
	merged.value = value;
	for (uint32_t uid = 0; uid <= IDS; uid++)
		for (uint32_t groups = 0; groups < 1u << IDS; groups++)
			for (uint32_t want = 1; want <= 7; want++) {
				bool refused = false;

				for (size_t i = 0; i < count; i++)
					refused |= !kernel_grants(&dirs[i], uid, groups, want);
				wider += refused && kernel_grants(&merged, uid, groups, want);
			}
	free(value);
	return wider;
}

static void test_random(void)
{
	char values[3][4 + 16 * 8];
	struct acl_dir dirs[3];
	int wider = 0, failed = 0;

	srand(1);
	for (int round = 0; round < 3000; round++) {
		size_t count = 1 + (size_t)round % 3;
		int n;

		for (size_t i = 0; i < count; i++)
			random_dir(&dirs[i], values[i]);
		n = wider_grants(dirs, count);
		failed += n < 0;
		wider += n > 0 ? n : 0;
	}
	is_int(failed, 0, "random valid ACLs are all taken");
	is_int(wider, 0, "the merged ACL grants no process more than each dir does");
}

static void test_identical(void)
{
	struct entry e[] = { { 0x01, 7, 0xffffffff }, { 0x02, 5, 3 },       { 0x02, 0, 65534 },
			     { 0x04, 5, 0xffffffff }, { 0x08, 7, 2 },       { 0x10, 5, 0xffffffff },
			     { 0x20, 5, 0xffffffff } };
	char value[4 + 7 * 8], *merged;
	size_t len = put_entries(value, e, 7), merged_len, bad;
	struct acl_dir dirs[2] = { { 040755, 0, 0, value, len }, { 040755, 0, 0, value, len } };
	uint32_t perms;

	ok(acl_valid(value, len), "a setfacl-made ACL is valid");
	ok(acl_intersect(dirs, 2, 0, 0, &perms, &merged, &merged_len, &bad) == 0 &&
		   merged_len == len && memcmp(merged, value, len) == 0 && perms == 0755,
	   "identical ACLs come back as they are");
	free(merged);
}

static void test_refused(void)
{
	struct entry no_mask[] = { { 0x01, 7, 0xffffffff },
				   { 0x02, 0, 65534 },
				   { 0x04, 5, 0xffffffff },
				   { 0x20, 5, 0xffffffff } };
	char value[4 + 4 * 8], *merged = NULL;
	size_t len = put_entries(value, no_mask, 4), merged_len, bad = 9;
	struct acl_dir dirs[2] = { { 040755, 0, 0, NULL, 0 }, { 040755, 0, 0, value, len } };
	uint32_t perms, version = 3;

	ok(!acl_valid(value, len), "named entries without a mask are no ACL");
	ok(acl_intersect(dirs, 2, 0, 0, &perms, &merged, &merged_len, &bad) < 0 && bad == 1,
	   "an invalid ACL is refused, naming its dir");
	ok(!acl_valid(value, len - 1), "a cut ACL is no ACL");
	memcpy(value, &version, 4);
	ok(!acl_valid(value, len), "another version is no ACL");
}

/* Masks r-- and --x meet at nothing; served so, the kernel would skip the
 * ACL and give user 3 others' r-x. */
static void test_empty_mask(void)
{
	struct entry a[] = { { 0x01, 7, 0xffffffff }, { 0x02, 0, 3 }, { 0x04, 4, 0xffffffff },
			     { 0x10, 4, 0xffffffff }, { 0x20, 5, 0xffffffff } };
	struct entry b[] = { { 0x01, 7, 0xffffffff }, { 0x02, 0, 3 }, { 0x04, 1, 0xffffffff },
			     { 0x10, 1, 0xffffffff }, { 0x20, 5, 0xffffffff } };
	char va[4 + 5 * 8], vb[4 + 5 * 8];
	struct acl_dir dirs[2] = { { 040745, 0, 0, va, put_entries(va, a, 5) },
				   { 040715, 0, 0, vb, put_entries(vb, b, 5) } };

	is_int(wider_grants(dirs, 2), 0, "an empty merged mask lets no named user in");
}

int main(void)
{
	test_identical();
	test_refused();
	test_empty_mask();
	test_random();
	return done_testing();
}
