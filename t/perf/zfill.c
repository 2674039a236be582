/* zfill.c: writes the raw source of the compaction jobs: a disk whose free space a guest zero-filled (1 MiB extents, lower half 3/4 data, upper half 1/4). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXTENT (1 << 20)

/*
 * Extent i of n is data when, in the lower half, i % 4 != 3, and in the
 * upper half, i % 4 == 0; every other extent is zeros. Half the disk is
 * then zeros, and a compaction must move the upper half's data (a quarter
 * of it all) down into the zeros of the lower half. The data is a
 * xorshift64 stream seeded by the extent number: deterministic, never a
 * whole zero cluster, and different in every extent, so that a cluster
 * moved to the wrong place is caught by a compare.
 */
static int is_data(uint64_t i, uint64_t n)
{
	return i < n / 2 ? i % 4 != 3 : i % 4 == 0;
}

static void fill(uint64_t *buf, uint64_t i)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (i + 1);

	for (size_t k = 0; k < EXTENT / 8; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = x | 1;	/* no zero word, so no zero cluster */
	}
}

int main(int argc, char **argv)
{
	static uint64_t buf[EXTENT / 8];
	static const uint64_t zeros[EXTENT / 8];
	uint64_t n;
	FILE *f;

	if (argc != 3 || !(n = strtoull(argv[1], NULL, 10))) {
		fprintf(stderr, "usage: zfill MIB FILE\n");
		return 2;
	}
	f = fopen(argv[2], "wb");
	if (!f) {
		fprintf(stderr, "zfill: cannot create '%s': %s\n", argv[2],
			strerror(errno));
		return 1;
	}
	for (uint64_t i = 0; i < n; i++) {
		const void *p = zeros;

		if (is_data(i, n)) {
			fill(buf, i);
			p = buf;
		}
		if (fwrite(p, EXTENT, 1, f) != 1) {
			fprintf(stderr, "zfill: cannot write '%s': %s\n",
				argv[2], strerror(errno));
			return 1;
		}
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "zfill: cannot write '%s': %s\n", argv[2],
			strerror(errno));
		return 1;
	}
	return 0;
}
