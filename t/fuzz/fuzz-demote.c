/* fuzz-demote.c: fuzz target: img_demote on an in-memory copy; the image after must check clean when it said so, and read the same. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_write_path(data, size, FUZZ_DEMOTE);
}
