/* SPDX-License-Identifier: Apache-2.0 */
#include "acl.h"

#include <endian.h>
#include <errno.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <string.h>
#include <sys/xattr.h>

int acl_get(int fd, struct acl *acl)
{
	ssize_t len = fgetxattr(fd, ACL_ACCESS_XATTR, acl->value, sizeof(acl->value));

	acl->size = len > 0 ? (size_t)len : 0;
	if (len >= 0 || errno == ENODATA || errno == ENOTSUP)
		return 0;
	return -errno;
}

/* The mode's group bits are the ACL's mask, which bounds every named entry
 * and the owning group's. Without the ACL, a named user gets the group or
 * the other bits, a named group's member the other bits: those are cut to
 * what each named entry grants, the group bits to the owning group's. */
uint32_t acl_fold_mode(const struct acl *acl, uint32_t mode)
{
	const struct posix_acl_xattr_entry *entries =
		(const void *)(acl->value + sizeof(struct posix_acl_xattr_header));
	size_t count = acl->size < sizeof(struct posix_acl_xattr_header)
			       ? 0
			       : (acl->size - sizeof(struct posix_acl_xattr_header)) /
					 sizeof(*entries);
	uint32_t mask = (mode >> 3) & 07, group = mask, other = mode & 07;

	for (size_t i = 0; i < count; i++) {
		uint32_t perm = le16toh(entries[i].e_perm) & 07;
		uint16_t tag = le16toh(entries[i].e_tag);

		if (tag == ACL_GROUP_OBJ)
			group &= perm;
		if (tag == ACL_USER)
			group &= perm & mask;
		if (tag == ACL_USER || tag == ACL_GROUP)
			other &= perm & mask;
	}
	return (mode & ~(uint32_t)077) | group << 3 | other;
}
