/* The daemon's log (log.h). Before fuse_daemonize a background daemon's
 * stderr is still the caller's terminal, so a failed mount is seen there;
 * after it stderr is /dev/null and syslog is what remains. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include <fuse_log.h>

#include "log.h"

static bool to_syslog;
static bool with_debug;

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
	flockfile(stderr);
	fputs("vmunionfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
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
	vfprintf(stderr, fmt, ap);
}

void log_init(bool foreground, bool debug)
{
	to_syslog = !foreground;
	with_debug = debug;
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
