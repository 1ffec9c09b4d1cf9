/* SPDX-License-Identifier: Apache-2.0 */
/* The in-place commit: vmunion materialize --into TARGET, rollback and
 * finalize. The merged view is staged inside TARGET (one of the volumes),
 * swapped in under restore-in-progress, and TARGET's previous layout is kept
 * until finalize drops it or rollback puts it back. */
#ifndef VMUNION_COMMIT_H
#define VMUNION_COMMIT_H

#include <stddef.h>

#include "materialize.h"

/* vmunion materialize --into: the options are parsed; volumes are the
 * VOLUME operands (TARGET among them). Returns the exit status. */
int commit_materialize(const struct materialize_options *opt, char **volumes, size_t count);

/* vmunion rollback TARGET and vmunion finalize TARGET (argv[0] = the command). */
int command_rollback(int argc, char **argv);
int command_finalize(int argc, char **argv);

#endif
