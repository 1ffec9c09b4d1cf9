/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the fuzz harnesses in tests/fuzz: each defines
 * LLVMFuzzerTestOneInput and is linked either with libFuzzer (make fuzz,
 * clang) or with replay.c (make check: replays the corpus and regressions).
 *
 * Parsers that read files get their input as a small bundle: the files'
 * bytes one after the other, separated by FUZZ_SEP, written into a scratch
 * directory before each run. A harness aborts (a crash for libFuzzer, a
 * failure for replay) when a property it checks does not hold. */
#ifndef VMUNION_FUZZ_H
#define VMUNION_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_SEP "--vmfuzz--"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's scratch directory (made once, removed at exit). */
const char *fuzz_scratch(void);
/* An empty directory below the scratch dir, opened; fuzz_dir_done removes it. */
int fuzz_dir_open(void);
void fuzz_dir_done(int dirfd);

/* Splits data at FUZZ_SEP into at most max pieces; returns how many. */
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **piece, size_t *len,
		  size_t max);
/* Writes len bytes to name below dirfd. */
void fuzz_write(int dirfd, const char *name, const void *data, size_t len);
/* data as a NUL-terminated string (caller frees). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Fails the run: prints why and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define FUZZ_ASSERT(cond)                                                          \
	do {                                                                       \
		if (!(cond))                                                       \
			fuzz_fail("%s:%d: %s", __FILE__, __LINE__, #cond);         \
	} while (0)

#endif
