/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX ACLs (acl.h). The kernel checks a directory so (fs/namei.c
 * acl_permission_check, fs/posix_acl.c posix_acl_permission): its owner by
 * the mode's owner bits; anyone else by the ACL, when the mode has group
 * bits: a named user by its entry, then a process in any of the owning or
 * named groups by the one of those entries granting all it asks, and no
 * more, then others by theirs. Named entries and groups are cut by the mask.
 * The merged ACL gives each of those classes, in each volume's terms, the
 * least that volume grants it however the process's groups fall. */
#include "acl.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum tag {
	TAG_USER_OBJ = 0x01,
	TAG_USER = 0x02,
	TAG_GROUP_OBJ = 0x04,
	TAG_GROUP = 0x08,
	TAG_MASK = 0x10,
	TAG_OTHER = 0x20,
};

#define ACL_VERSION 2
#define HEADER_SIZE 4
#define ENTRY_SIZE 8
#define ALL_PERMS 07u
#define NO_ID 0xffffffffu

struct named {
	uint32_t id, perm;
};

struct acl {
	uint32_t owner, group; /* the directory's uid and gid */
	uint32_t user_obj, group_obj, mask, other; /* mask ALL_PERMS when it has none */
	struct named *users, *groups;
	size_t user_count, group_count;
};

static uint32_t get16(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] | (uint32_t)u[1] << 8;
}

static uint32_t get32(const char *p)
{
	return get16(p) | get16(p + 2) << 16;
}

static void put16(char *p, uint32_t v)
{
	p[0] = (char)(v & 0xff);
	p[1] = (char)(v >> 8 & 0xff);
}

static void put32(char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static void acl_free(struct acl *acl)
{
	free(acl->users);
	free(acl->groups);
}

/* One entry of a value being parsed into acl; seen collects the tags. */
static int parse_entry(struct acl *acl, uint32_t tag, uint32_t perm, uint32_t id,
		       uint32_t *seen)
{
	uint32_t *single[] = { [TAG_USER_OBJ] = &acl->user_obj, [TAG_GROUP_OBJ] = &acl->group_obj,
			       [TAG_MASK] = &acl->mask, [TAG_OTHER] = &acl->other };

	if (perm & ~ALL_PERMS)
		return -EINVAL;
	if (tag == TAG_USER || tag == TAG_GROUP) {
		if (tag == TAG_USER)
			acl->users[acl->user_count++] = (struct named){ id, perm };
		else
			acl->groups[acl->group_count++] = (struct named){ id, perm };
		return 0;
	}
	if ((tag != TAG_USER_OBJ && tag != TAG_GROUP_OBJ && tag != TAG_MASK &&
	     tag != TAG_OTHER) ||
	    (*seen & tag))
		return -EINVAL;
	*seen |= tag;
	*single[tag] = perm;
	return 0;
}

/* Reads value into acl (whose owner and group are set); -EINVAL when the
 * kernel would refuse it. */
static int parse(const char *value, size_t len, struct acl *acl)
{
	uint32_t seen = 0, needed = TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER;
	size_t count;

	if (len < HEADER_SIZE || (len - HEADER_SIZE) % ENTRY_SIZE != 0 ||
	    get32(value) != ACL_VERSION)
		return -EINVAL;
	count = (len - HEADER_SIZE) / ENTRY_SIZE;
	acl->users = xcalloc(count, sizeof(*acl->users));
	acl->groups = xcalloc(count, sizeof(*acl->groups));
	acl->mask = ALL_PERMS;
	for (size_t i = 0; i < count; i++) {
		const char *entry = value + HEADER_SIZE + i * ENTRY_SIZE;

		if (parse_entry(acl, get16(entry), get16(entry + 2), get32(entry + 4), &seen) < 0)
			return -EINVAL;
	}
	if (acl->user_count + acl->group_count > 0)
		needed |= TAG_MASK;
	return (seen & needed) == needed ? 0 : -EINVAL;
}

bool acl_valid(const char *value, size_t len)
{
	struct acl acl = { 0 };
	int rc = parse(value, len, &acl);

	acl_free(&acl);
	return rc == 0;
}

/* The ACL the kernel checks dir by: its own, or the mode's alone when it
 * has none or the mode has no group bits (then the kernel skips it). */
static int dir_acl(const struct acl_dir *dir, struct acl *acl)
{
	*acl = (struct acl){ .owner = dir->uid, .group = dir->gid };
	if (dir->value && parse(dir->value, dir->len, acl) < 0)
		return -EINVAL;
	if (!dir->value || (dir->mode & 070) == 0) {
		acl->user_count = acl->group_count = 0;
		acl->group_obj = dir->mode >> 3 & ALL_PERMS;
		acl->other = dir->mode & ALL_PERMS;
		acl->mask = ALL_PERMS;
	}
	acl->user_obj = dir->mode >> 6 & ALL_PERMS;
	return 0;
}

static struct named *find(struct named *list, size_t count, uint32_t id)
{
	for (size_t i = 0; i < count; i++)
		if (list[i].id == id)
			return &list[i];
	return NULL;
}

/* The least acl grants a process none of its user entries names: others'
 * share, or a group entry's when the process is in that group only. */
static uint32_t unnamed_floor(const struct acl *acl)
{
	uint32_t perm = acl->other & acl->group_obj & acl->mask;

	for (size_t i = 0; i < acl->group_count; i++)
		perm &= acl->groups[i].perm & acl->mask;
	return perm;
}

/* The least acl grants a process of uid, whatever its groups. */
static uint32_t user_floor(const struct acl *acl, uint32_t uid)
{
	const struct named *named = find(acl->users, acl->user_count, uid);

	if (uid == acl->owner)
		return acl->user_obj;
	return named ? named->perm & acl->mask : unnamed_floor(acl);
}

/* What uid's named entry in the merged ACL may hold before its mask, which
 * is no wider than acl's. */
static uint32_t user_entry(const struct acl *acl, uint32_t uid)
{
	const struct named *named = find(acl->users, acl->user_count, uid);

	if (uid == acl->owner)
		return acl->user_obj;
	return named ? named->perm : unnamed_floor(acl);
}

/* The same for gid's group entry: a process in gid (and maybe in groups
 * acl names, which only add to what it grants). */
static uint32_t group_entry(const struct acl *acl, uint32_t gid)
{
	const struct named *named = find(acl->groups, acl->group_count, gid);

	if (gid == acl->group)
		return acl->group_obj;
	return named ? named->perm : unnamed_floor(acl);
}

static void add_named(struct named **list, size_t *count, uint32_t id, uint32_t except)
{
	if (id == except || find(*list, *count, id))
		return;
	*list = xrealloc(*list, (*count + 1) * sizeof(**list));
	(*list)[(*count)++] = (struct named){ id, ALL_PERMS };
}

/* Every user and group some dir names gets an entry of the merged ACL. */
static void collect_names(struct acl *merged, const struct acl *acls, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		add_named(&merged->users, &merged->user_count, acls[i].owner, merged->owner);
		add_named(&merged->groups, &merged->group_count, acls[i].group, merged->group);
		for (size_t j = 0; j < acls[i].user_count; j++)
			add_named(&merged->users, &merged->user_count, acls[i].users[j].id,
				  merged->owner);
		for (size_t j = 0; j < acls[i].group_count; j++)
			add_named(&merged->groups, &merged->group_count, acls[i].groups[j].id,
				  merged->group);
	}
}

static void narrow(struct acl *merged, const struct acl *acl)
{
	merged->user_obj &= user_floor(acl, merged->owner);
	merged->group_obj &= group_entry(acl, merged->group);
	merged->mask &= acl->mask;
	merged->other &= acl->other;
	for (size_t i = 0; i < merged->user_count; i++)
		merged->users[i].perm &= user_entry(acl, merged->users[i].id);
	for (size_t i = 0; i < merged->group_count; i++)
		merged->groups[i].perm &= group_entry(acl, merged->groups[i].id);
}

/* Without named entries the ACL is the mode's. The kernel skips an ACL
 * whose mask is empty, giving named users others' share: when no entry
 * gets anything past the mask, the mask is made others' (the entries
 * emptied), or, others getting nothing too, the mode says it all. */
static void tidy(struct acl *acl)
{
	uint32_t granted = acl->group_obj;

	for (size_t i = 0; i < acl->user_count; i++)
		granted |= acl->users[i].perm;
	for (size_t i = 0; i < acl->group_count; i++)
		granted |= acl->groups[i].perm;
	if (acl->user_count + acl->group_count > 0 && (granted & acl->mask) == 0) {
		for (size_t i = 0; i < acl->user_count; i++)
			acl->users[i].perm = 0;
		for (size_t i = 0; i < acl->group_count; i++)
			acl->groups[i].perm = 0;
		acl->group_obj = 0;
		if (acl->other == 0)
			acl->user_count = acl->group_count = 0;
		else if (acl->mask == 0)
			acl->mask = acl->other;
	}
	if (acl->user_count + acl->group_count == 0) {
		acl->group_obj &= acl->mask;
		acl->mask = ALL_PERMS;
	}
}

/* The mode's rwx bits: its group bits are the mask when there is one. */
static uint32_t mode_perms(const struct acl *acl)
{
	uint32_t group = acl->user_count + acl->group_count ? acl->mask : acl->group_obj;

	return acl->user_obj << 6 | group << 3 | acl->other;
}

static int compare_named(const void *a, const void *b)
{
	uint32_t x = ((const struct named *)a)->id, y = ((const struct named *)b)->id;

	return x < y ? -1 : x > y;
}

/* A list without entries has no array: qsort must not see its NULL. */
static void sort_named(struct named *list, size_t count)
{
	if (count)
		qsort(list, count, sizeof(*list), compare_named);
}

static char *put_entry(char *p, uint32_t tag, uint32_t perm, uint32_t id)
{
	put16(p, tag);
	put16(p + 2, perm);
	put32(p + 4, id);
	return p + ENTRY_SIZE;
}

/* The xattr value, entries in the kernel's order. */
static char *format(struct acl *acl, size_t *len)
{
	size_t count = 4 + acl->user_count + acl->group_count;
	char *value = xmalloc(HEADER_SIZE + count * ENTRY_SIZE), *p = value + HEADER_SIZE;

	sort_named(acl->users, acl->user_count);
	sort_named(acl->groups, acl->group_count);
	put32(value, ACL_VERSION);
	p = put_entry(p, TAG_USER_OBJ, acl->user_obj, NO_ID);
	for (size_t i = 0; i < acl->user_count; i++)
		p = put_entry(p, TAG_USER, acl->users[i].perm, acl->users[i].id);
	p = put_entry(p, TAG_GROUP_OBJ, acl->group_obj, NO_ID);
	for (size_t i = 0; i < acl->group_count; i++)
		p = put_entry(p, TAG_GROUP, acl->groups[i].perm, acl->groups[i].id);
	p = put_entry(p, TAG_MASK, acl->mask, NO_ID);
	put_entry(p, TAG_OTHER, acl->other, NO_ID);
	*len = HEADER_SIZE + count * ENTRY_SIZE;
	return value;
}

int acl_intersect(const struct acl_dir *dirs, size_t count, uint32_t uid, uint32_t gid,
		  uint32_t *perms, char **value, size_t *len, size_t *bad)
{
	struct acl *acls = xcalloc(count, sizeof(*acls));
	struct acl merged = { .owner = uid, .group = gid, .user_obj = ALL_PERMS,
			      .group_obj = ALL_PERMS, .mask = ALL_PERMS, .other = ALL_PERMS };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < count; i++)
		if ((rc = dir_acl(&dirs[i], &acls[i])) < 0)
			*bad = i;
	if (rc == 0) {
		collect_names(&merged, acls, count);
		for (size_t i = 0; i < count; i++)
			narrow(&merged, &acls[i]);
		tidy(&merged);
		*perms = mode_perms(&merged);
		*len = 0;
		*value = merged.user_count + merged.group_count ? format(&merged, len) : NULL;
	}
	for (size_t i = 0; i < count; i++)
		acl_free(&acls[i]);
	acl_free(&merged);
	free(acls);
	return rc;
}

int acl_get(int fd, struct acl_value *acl)
{
	return fd_xattr_get(fd, ACL_ACCESS_XATTR, &acl->value, &acl->size);
}

void acl_value_free(struct acl_value *acl)
{
	free(acl->value);
	*acl = (struct acl_value){ 0 };
}

/* The mode's group bits are the ACL's mask, which bounds every named entry
 * and the owning group's. Without the ACL, a named user gets the group or
 * the other bits, a named group's member the other bits: those are cut to
 * what each named entry grants, the group bits to the owning group's. */
uint32_t acl_fold_mode(const struct acl_value *acl, uint32_t mode)
{
	size_t count = acl->size < HEADER_SIZE ? 0 : (acl->size - HEADER_SIZE) / ENTRY_SIZE;
	uint32_t mask = (mode >> 3) & 07, group = mask, other = mode & 07;

	for (size_t i = 0; i < count; i++) {
		const char *entry = acl->value + HEADER_SIZE + i * ENTRY_SIZE;
		uint16_t tag, perm;

		memcpy(&tag, entry, sizeof(tag));
		memcpy(&perm, entry + 2, sizeof(perm));
		tag = le16toh(tag);
		perm = le16toh(perm) & 07;
		if (tag == TAG_GROUP_OBJ)
			group &= perm;
		if (tag == TAG_USER)
			group &= perm & mask;
		if (tag == TAG_USER || tag == TAG_GROUP)
			other &= perm & mask;
	}
	return (mode & ~(uint32_t)077) | group << 3 | other;
}
