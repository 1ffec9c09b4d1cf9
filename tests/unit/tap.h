/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny TAP producer for the unit tests: one plan line, ok/not ok lines. */
#ifndef VMUNION_TAP_H
#define VMUNION_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static inline int tap_ok(int pass, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int tap_ok(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", pass ? "ok" : "not ok", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!pass)
		tap_failed++;
	return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define is_int(got, want, ...)                                               \
	do {                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);     \
		if (!tap_ok(g_ == w_, __VA_ARGS__))                          \
			printf("#   got %lld, want %lld\n", g_, w_);        \
	} while (0)
#define is_str(got, want, ...)                                               \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		if (!tap_ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))   \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", \
			       w_ ? w_ : "(null)");                          \
	} while (0)

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
