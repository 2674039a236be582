/* test-zero.c: unit tests of zero detection (img_is_zero, img_zero_prefix in lib/zero.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"
#include "unit.h"

#define MAX_LEN 200
#define MAX_ALIGN 16
#define GUARD 16

#define BUF_SIZE (64 + MAX_ALIGN + MAX_LEN + GUARD)

/* A buffer with 64 bytes of slack before the first start tried. */
static uint8_t *new_buffer(void)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, BUF_SIZE))
		abort();
	return p;
}

/* What img_zero_prefix must return when the only non-zero byte is at pos
 * (pos == len: none): whole granules before it, or everything. */
static size_t expected_prefix(size_t pos, size_t len, size_t gran)
{
	return pos < len ? pos / gran * gran : len;
}

/*
 * Every start alignment, every length 0..MAX_LEN, a single non-zero byte at
 * every position (and none), inside a buffer whose surrounding bytes are
 * non-zero so that looking outside [p, p+len) changes the answer.
 */
static void test_is_zero_exhaustive(void)
{
	static const uint8_t marks[] = { 0x01, 0x80, 0xff };
	uint8_t *buf = new_buffer();
	int bad = 0;

	for (size_t align = 0; align < MAX_ALIGN; align++) {
		uint8_t *p = buf + 64 + align;
		for (size_t len = 0; len <= MAX_LEN; len++) {
			memset(buf, 0xa5, BUF_SIZE);
			memset(p, 0, len);
			if (!img_is_zero(p, len) && bad++ < 5)
				tap_diag("align %zu len %zu all zero: said non-zero",
					 align, len);
			for (size_t pos = 0; pos < len; pos++) {
				p[pos] = marks[pos % 3];
				if (img_is_zero(p, len) && bad++ < 5)
					tap_diag("align %zu len %zu byte %zu set: said zero",
						 align, len, pos);
				p[pos] = 0;
			}
		}
	}
	free(buf);
	tap_ok(!bad, "zero: img_is_zero, all alignments, lengths 0..%d, one byte set anywhere",
	       MAX_LEN);
}

/* Exactly sized heap buffers: a sanitizer build catches reads past the end. */
static void test_is_zero_exact_buffers(void)
{
	int bad = 0;

	for (size_t len = 1; len <= MAX_LEN + 64; len++) {
		uint8_t *p = calloc(1, len);
		bad |= !img_is_zero(p, len);
		p[len - 1] = 1;
		bad |= img_is_zero(p, len);
		p[len - 1] = 0;
		p[0] = 1;
		bad |= img_is_zero(p, len);
		bad |= !img_is_zero(p + 1, len - 1);
		free(p);
	}
	tap_ok(!bad, "zero: img_is_zero stays inside exactly sized buffers");
}

static void test_is_zero_large(void)
{
	const size_t len = 4u << 20;
	static const size_t spots[] = { 0, 1, 63, 64, 4095, 4096, 65535,
					65536 + 7, (4u << 20) - 9, (4u << 20) - 1 };
	uint8_t *p = calloc(1, len);
	int bad = !img_is_zero(p, len);

	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		p[spots[i]] = 0x10;
		bad |= img_is_zero(p, len);
		bad |= !img_is_zero(p, spots[i]);
		p[spots[i]] = 0;
	}
	free(p);
	tap_ok(!bad, "zero: img_is_zero on 4 MiB with one byte set at edges");
}

static void test_prefix_exhaustive(void)
{
	static const size_t grans[] = { 1, 2, 3, 7, 8, 16, 64, 512 };
	uint8_t *buf = new_buffer();
	int bad = 0;

	for (size_t g = 0; g < sizeof(grans) / sizeof(grans[0]); g++) {
		for (size_t align = 0; align < MAX_ALIGN; align += 3) {
			uint8_t *p = buf + 64 + align;
			for (size_t len = 0; len <= MAX_LEN; len++) {
				memset(buf, 0xa5, BUF_SIZE);
				memset(p, 0, len);
				for (size_t pos = 0; pos <= len; pos++) {
					size_t want, got;
					if (pos < len)
						p[pos] = 0x40;
					want = expected_prefix(pos, len, grans[g]);
					got = img_zero_prefix(p, len, grans[g]);
					if (got != want && bad++ < 5)
						tap_diag("gran %zu align %zu len %zu byte %zu: got %zu, want %zu",
							 grans[g], align, len, pos, got, want);
					if (pos < len)
						p[pos] = 0;
				}
			}
		}
	}
	free(buf);
	tap_ok(!bad, "zero: img_zero_prefix, granules 1..512, lengths 0..%d, one byte set anywhere",
	       MAX_LEN);
}

static void test_prefix_large(void)
{
	const size_t len = 1u << 20, gran = 4096;
	uint8_t *p = calloc(1, len + 100);
	int bad = 0;

	bad |= img_zero_prefix(p, len, gran) != len;
	bad |= img_zero_prefix(p, len + 100, gran) != len + 100;
	p[len + 99] = 1;
	bad |= img_zero_prefix(p, len + 100, gran) != len;
	p[len + 99] = 0;
	p[12345] = 1;
	bad |= img_zero_prefix(p, len, gran) != 12288;
	p[12345] = 0;
	p[4096] = 1;
	bad |= img_zero_prefix(p, len, gran) != 4096;
	p[4095] = 1;
	bad |= img_zero_prefix(p, len, gran) != 0;
	free(p);
	tap_ok(!bad, "zero: img_zero_prefix on 1 MiB with 4 KiB granules, partial tail");
}

void test_zero(void)
{
	test_is_zero_exhaustive();
	test_is_zero_exact_buffers();
	test_is_zero_large();
	test_prefix_exhaustive();
	test_prefix_large();
}
