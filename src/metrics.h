/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's counters, served in the Prometheus text format on
 * -o metrics=127.0.0.1:PORT and written to the log on SIGUSR1. */
#ifndef VMUNION_METRICS_H
#define VMUNION_METRICS_H

#include <fuse_lowlevel.h>
#include <stdint.h>

#include "util.h"

enum metric {
	METRIC_READ_VOLUME_BYTES, /* read from the source volumes */
	METRIC_READ_UPPER_BYTES,  /* read from the upper */
	METRIC_COPY_UPS,          /* files given their own bytes in the upper */
	METRIC_COPY_UP_BYTES,
	METRIC_POPULATES,         /* lazy dirs of the upper populated (upper.h) */
	METRIC_COUNT
};

/* Thread-safe; for fs code. */
void metrics_add(enum metric metric, uint64_t n);

/* ops, as given to fuse_session_new, each call counted by name. */
const struct fuse_lowlevel_ops *metrics_wrap_ops(const struct fuse_lowlevel_ops *ops);

/* First thing, before the volumes: from then on SIGUSR1 dumps the counters
 * to the log instead of killing the daemon. With address ("PORT" or
 * "IPV4:PORT", loopback only) it also binds the metrics port, so a bad or
 * busy one fails the mount early. -EINVAL: a bad address. */
int metrics_init(const char *address, struct error *err);
/* After fuse_daemonize (threads do not survive fork): the SIGUSR1 thread
 * and the HTTP server. upper_fd: whose free space is reported. */
int metrics_start(int upper_fd, struct error *err);
void metrics_stop(void);

#endif
