/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion materialize and verify: write the merged view onto a real
 * directory, and compare a directory with it. */
#ifndef VMUNION_MATERIALIZE_H
#define VMUNION_MATERIALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "mtree.h"
#include "stage.h"

struct materialize_options {
	enum copy_mode mode;
	unsigned jobs;
	bool quiet, json, dry_run, no_space_check, no_check;
	const char *upper;
	const char *into;  /* the in-place commit's TARGET (commit.c), or NULL */
};

/* Both take argv[0] = the command name and return the process exit status. */
int command_materialize(int argc, char **argv);
int command_verify(int argc, char **argv);

/* Opens the session of the volumes (and the upper) and runs the checks that
 * refuse a merge; on failure prints why and returns the exit status. */
int materialize_open(struct mtree_session *session, const struct materialize_options *opt,
		     char **volumes, size_t count, const char *command);

#endif
