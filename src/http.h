/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP GET through libcurl, for talking to a running VictoriaMetrics. */
#ifndef VMUNION_HTTP_H
#define VMUNION_HTTP_H

#include <stddef.h>

#include "util.h"

/* Called for every line of the body, without its '\n' and NUL-terminated;
 * a non-zero return stops the transfer and is returned by http_get_lines. */
typedef int (*http_line_fn)(void *arg, char *line, size_t len);

/* GETs url and streams its body to fn line by line. Every call is bounded:
 * timeout_s seconds in all, at most 10 s to connect. A status other than
 * 200 is an error showing the start of the body. Returns 0 or -errno
 * (-ECONNREFUSED: the node cannot be reached) with err saying
 * "URL: reason". */
int http_get_lines(const char *url, long timeout_s, http_line_fn fn, void *arg,
		   struct error *err);

/* "%XX"-escapes s for a query string. Caller frees. */
char *http_escape(const char *s);

#endif
