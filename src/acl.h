/* SPDX-License-Identifier: Apache-2.0 */
/* POSIX ACLs as the kernel keeps them in the system.posix_acl_access and
 * system.posix_acl_default xattrs (version 2, little-endian entries), and the
 * ACL a directory merged from several volumes serves: one granting no process
 * more than any of those directories grants it. */
#ifndef VMUNION_ACL_H
#define VMUNION_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_ACCESS_XATTR "system.posix_acl_access"
#define ACL_DEFAULT_XATTR "system.posix_acl_default"

/* A directory as the kernel checks it: its mode, owner and access ACL
 * (value NULL when it has none). */
struct acl_dir {
	uint32_t mode, uid, gid;
	const char *value;
	size_t len;
};

/* Whether value is an ACL the kernel would take. */
bool acl_valid(const char *value, size_t len);

/* The access ACL of a directory owned by uid:gid that grants no process
 * more than each of dirs grants it: *value (malloc'd; NULL when the mode
 * alone says it all) and *perms, the rwx bits of its mode. -EINVAL and *bad,
 * the dir, when one holds no valid ACL. */
int acl_intersect(const struct acl_dir *dirs, size_t count, uint32_t uid, uint32_t gid,
		  uint32_t *perms, char **value, size_t *len, size_t *bad);

/* A file's access ACL as materialize copies it: carried with the file, or,
 * where it cannot be (another owner, a filesystem without ACLs), folded
 * into a mode that grants no one more. */
struct acl_value {
	char *value;
	size_t size; /* 0: none */
};

/* fd's access ACL into acl (size 0 when it has none; free it with
 * acl_value_free): 0 or -errno. */
int acl_get(int fd, struct acl_value *acl);
void acl_value_free(struct acl_value *acl);
/* The mode, without the ACL, that grants no one more than mode with it. */
uint32_t acl_fold_mode(const struct acl_value *acl, uint32_t mode);

#endif
