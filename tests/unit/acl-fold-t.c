/* SPDX-License-Identifier: Apache-2.0 */
/* What a copy may grant (src/acl.c, plan_attr_mode_as in src/plan.c): an
 * ACL folded into the mode never grants the owning group, a named user or
 * group, or others more than the ACL did; a copy owned by another user or
 * group gets for that group only what the original granted it. */
#include <endian.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <string.h>
#include <sys/stat.h>

#include "acl.h"
#include "plan.h"
#include "tap.h"
#include "util.h"

/* An ACL of count (tag, perm) entries, ids 1000 for the named ones. */
static void make_acl(struct acl_value *acl, const unsigned (*entries)[2], size_t count)
{
	struct posix_acl_xattr_header header = { htole32(POSIX_ACL_XATTR_VERSION) };

	acl_value_free(acl);
	acl->value = xmalloc(sizeof(header) + count * sizeof(struct posix_acl_xattr_entry));
	memcpy(acl->value, &header, sizeof(header));
	acl->size = sizeof(header);
	for (size_t i = 0; i < count; i++) {
		struct posix_acl_xattr_entry e = { htole16((uint16_t)entries[i][0]),
						   htole16((uint16_t)entries[i][1]),
						   htole32(1000) };

		memcpy(acl->value + acl->size, &e, sizeof(e));
		acl->size += sizeof(e);
	}
}

int main(void)
{
	struct acl_value acl = { 0 };
	struct plan_attr attr = { .mode = S_IFREG | 04750, .uid = 10, .gid = 20 };

	make_acl(&acl, (const unsigned[][2]){ { ACL_USER_OBJ, 6 }, { ACL_USER, 4 },
					      { ACL_GROUP_OBJ, 0 }, { ACL_MASK, 4 },
					      { ACL_OTHER, 0 } }, 5);
	is_int(acl_fold_mode(&acl, S_IFREG | 0640), S_IFREG | 0600,
	       "group::--- under mask r--: the group bits are the group's, not the mask");
	make_acl(&acl, (const unsigned[][2]){ { ACL_USER_OBJ, 7 }, { ACL_USER, 0 },
					      { ACL_GROUP_OBJ, 5 }, { ACL_MASK, 5 },
					      { ACL_OTHER, 5 } }, 5);
	is_int(acl_fold_mode(&acl, S_IFDIR | 0755), S_IFDIR | 0700,
	       "user:1000:--- leaves the group and others nothing (the user may be either)");
	make_acl(&acl, (const unsigned[][2]){ { ACL_USER_OBJ, 7 }, { ACL_GROUP_OBJ, 7 },
					      { ACL_GROUP, 1 }, { ACL_MASK, 7 },
					      { ACL_OTHER, 5 } }, 5);
	is_int(acl_fold_mode(&acl, S_IFDIR | 0775), S_IFDIR | 0771,
	       "group:1000:--x: others no more than that group (its members get others' bits)");
	make_acl(&acl, (const unsigned[][2]){ { ACL_USER_OBJ, 6 }, { ACL_USER, 6 },
					      { ACL_GROUP_OBJ, 4 }, { ACL_MASK, 4 },
					      { ACL_OTHER, 4 } }, 5);
	is_int(acl_fold_mode(&acl, S_IFREG | 0644), S_IFREG | 0644,
	       "a named entry the mask cuts to r--: nothing more to narrow");
	acl_value_free(&acl);
	is_int(acl_fold_mode(&acl, S_IFREG | 0644), S_IFREG | 0644, "no ACL: the mode");

	is_int(plan_attr_mode_as(&attr, 10, 20), 04750, "its own owner and group: the mode");
	is_int(plan_attr_mode_as(&attr, 30, 20), 0750,
	       "another owner: the owner bits, no set-id bits");
	is_int(plan_attr_mode_as(&attr, 10, 40), 0700,
	       "another group: for it what attr grants others (none)");
	attr.mode = S_IFDIR | 01705;
	is_int(plan_attr_mode_as(&attr, 30, 40), 01755,
	       "another group where others get r-x: r-x; the sticky bit kept");
	return done_testing();
}
