/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion verify --live: does a running VictoriaMetrics (single-node, or
 * vmselect for a cluster) serve every series of the volumes with every
 * sample? */
#ifndef VMUNION_LIVE_H
#define VMUNION_LIVE_H

#include <stdbool.h>

/* True when argv (after the command name) asks for --live. */
bool live_requested(int argc, char **argv);
/* argv[0] = "verify"; returns the exit status: 0 equal, 1 different,
 * 2 I/O error (a volume unreadable, the node unreachable), 64 usage. */
int command_verify_live(int argc, char **argv);

#endif
