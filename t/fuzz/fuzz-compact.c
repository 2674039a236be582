/* fuzz-compact.c: fuzz target: img_compact on an in-memory copy; the image after must check clean when it said so, and read the same. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_write_path(data, size, FUZZ_COMPACT);
}
