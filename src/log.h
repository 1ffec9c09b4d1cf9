/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's log: stderr in the foreground, syslog (and stderr until it
 * is detached) in the background. */
#ifndef VMUNION_LOG_H
#define VMUNION_LOG_H

#include <stdbool.h>
#include <time.h>

/* debug: also pass libfuse's request trace through (vmunionfs -d). */
void log_init(bool foreground, bool debug);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* That volume file dir/path could not be opened for the daemon's own limit
 * (rc, a -errno), once a second at most (*last, when it last said so):
 * every read of a file the fd cache does not hold fails meanwhile. */
void log_open_limit(time_t *last, const char *dir, const char *path, int rc);

#endif
