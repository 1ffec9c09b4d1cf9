/* SPDX-License-Identifier: Apache-2.0 */
/* A volume file's POSIX access ACL is part of its permissions (the mount
 * serves it): a copy carries it, and where it cannot (another owner, a
 * filesystem without ACLs) gets a mode folded from it that grants no one
 * more. */
#ifndef VMUNION_ACL_H
#define VMUNION_ACL_H

#include <stddef.h>
#include <stdint.h>

#define ACL_ACCESS_XATTR "system.posix_acl_access"
#define ACL_DEFAULT_XATTR "system.posix_acl_default"

struct acl {
	size_t size; /* 0: none */
	char value[4 + 8 * 128];
};

/* fd's access ACL into acl (size 0 when it has none): 0 or -errno. */
int acl_get(int fd, struct acl *acl);
/* The mode, without the ACL, that grants no one more than mode with it. */
uint32_t acl_fold_mode(const struct acl *acl, uint32_t mode);

#endif
