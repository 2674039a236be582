/* test-compress.c: unit tests of lib/compress.c: clusters compress and inflate back, for zlib and zstd. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"
#include "unit.h"

#define CS 65536

static void round_trip(enum img_compress type, const char *name)
{
	uint8_t *in = malloc(CS), *z = malloc(CS), *out = malloc(CS);
	uint32_t x = 12345;
	int n;

	/* Text-like data: compressible. */
	for (size_t i = 0; i < CS; i++)
		in[i] = (uint8_t)("the quick brown fox "[i % 20] + (i / 4096));
	n = img_compress(type, in, CS, z, CS);
	tap_ok(n > 0 && n < CS / 4, "%s: text compresses (%d bytes)", name, n);
	tap_ok(n > 0 && img_decompress(type, z, (size_t)n, out, CS) == 0 &&
	       !memcmp(in, out, CS), "%s: and inflates back to the same bytes",
	       name);

	/* Noise does not shrink: the writer must store it plain. */
	for (size_t i = 0; i < CS; i++) {
		x = x * 1103515245 + 12345;
		in[i] = (uint8_t)(x >> 16);
	}
	n = img_compress(type, in, CS, z, CS);
	tap_ok(n == -ENOSPC, "%s: random data gives -ENOSPC (got %d)", name, n);

	/* Zeros, the -S 0 case: tiny. */
	memset(in, 0, CS);
	n = img_compress(type, in, CS, z, CS);
	tap_ok(n > 0 && n < 512, "%s: a zero cluster compresses to %d bytes",
	       name, n);
	free(in);
	free(z);
	free(out);
}

void test_compress(void)
{
	round_trip(IMG_COMPRESS_ZLIB, "zlib");
	round_trip(IMG_COMPRESS_ZSTD, "zstd");
	/* Twice must be harmless (ASan would report a double free). */
	img_codec_thread_end();
	img_codec_thread_end();
}
