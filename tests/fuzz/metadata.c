/* SPDX-License-Identifier: Apache-2.0 */
/* A part's metadata.json (data and mergeset parts), and
 * metadata/minTimestampForCompositeIndex: no crash, no undefined behaviour
 * on any number (huge, negative, fractional, NaN-like). */
#include <stdbool.h>

#include "fuzz.h"
#include "partsjson.h"
#include "vmformat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct part_header header;
	struct error err = { { 0 } };
	uint8_t again[VM_MIN_TS_COMPOSITE_SIZE];
	int64_t ts;

	for (int mergeset = 0; mergeset < 2; mergeset++)
		if (part_header_from_json((const char *)data, size, mergeset, &header, &err) < 0)
			FUZZ_ASSERT(err.message[0] != '\0');
	if (vm_min_ts_composite_decode(data, size, &ts, &err) == 0) {
		FUZZ_ASSERT(size == VM_MIN_TS_COMPOSITE_SIZE);
		vm_min_ts_composite_encode(ts, again);
		for (size_t i = 0; i < sizeof(again); i++)
			FUZZ_ASSERT(again[i] == data[i]);
	}
	return 0;
}
