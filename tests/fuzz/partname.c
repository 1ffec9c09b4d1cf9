/* SPDX-License-Identifier: Apache-2.0 */
/* Part directory names: gen-A data (<rows>_<blocks>_<min>_<max>_<16HEX>) and
 * mergeset (<items>_<blocks>_<16HEX>) names, as a string. A name that parses
 * has its 16-hex suffix where legacy_name_suffix says. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "partsjson.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = fuzz_strndup(data, size);
	struct part_header header;

	for (int mergeset = 0; mergeset < 2; mergeset++) {
		int ok = part_header_from_name(name, mergeset, &header) == 0;
		int suffix = legacy_name_suffix(name, mergeset);

		FUZZ_ASSERT(ok == (suffix >= 0));
		if (ok) {
			FUZZ_ASSERT((size_t)suffix + 16 == strlen(name));
			FUZZ_ASSERT(is_hex16_name(name + suffix));
		}
	}
	free(name);
	return 0;
}
