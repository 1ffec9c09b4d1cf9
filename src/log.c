/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's log (log.h): the stderr it was started with, kept across
 * fuse_daemonize, and syslog when it runs in the background. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <fuse_log.h>

#include "log.h"
#include "util.h"

static bool to_syslog;
static bool with_debug;
/* The stderr the daemon was started with: fuse_daemonize points stderr at
 * /dev/null, but whoever started it (a terminal, mount(8)'s caller, a
 * systemd unit's journal) still reads this one. */
static int log_fd = STDERR_FILENO;

/* One write per message, so that threads do not interleave. */
static void write_line(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s", prefix), m;

	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	n += m > 0 ? m : 0;
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (n <= 0 || line[n - 1] != '\n')
		line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0) {
		/* Nobody reads it any more: syslog is what remains. */
	}
}

static void log_vwrite(int priority, const char *fmt, va_list ap)
{
	va_list copy;

	if (priority == LOG_DEBUG && !with_debug)
		return;
	if (to_syslog) {
		va_copy(copy, ap);
		vsyslog(priority, fmt, copy);
		va_end(copy);
	}
	write_line("vmunionfs: ", fmt, ap);
}

/* libfuse's own messages ("fuse: unknown option", the -d trace) end in '\n'
 * already: they go to the same place as ours, without our prefix. */
static void log_from_fuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	va_list copy;

	if (level == FUSE_LOG_DEBUG && !with_debug)
		return;
	if (to_syslog) {
		va_copy(copy, ap);
		vsyslog((int)level, fmt, copy);
		va_end(copy);
	}
	write_line("", fmt, ap);
}

void log_init(bool foreground, bool debug)
{
	to_syslog = !foreground;
	with_debug = debug;
	if (!foreground) {
		int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);

		if (fd >= 0)
			log_fd = fd;
	}
	if (to_syslog)
		openlog("vmunionfs", LOG_PID, LOG_DAEMON);
	fuse_set_log_func(log_from_fuse);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap);
	va_end(ap);
}

void log_open_limit(time_t *last, const char *dir, const char *path, int rc)
{
	if (once_a_second(last))
		log_error("%s/%s: cannot open: %s (the daemon's own limit)", dir, path,
			  strerror(-rc));
}
