/* test-endian.c: unit tests of the big/little-endian field helpers in lib/endian.h. */
#include <stdint.h>
#include <string.h>

#include "endian.h"
#include "unit.h"

static const uint8_t bytes[9] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe };

/* Loads at every misalignment: the helpers must not assume alignment. */
static void test_loads(void)
{
	uint8_t buf[32];
	int bad = 0;

	for (int shift = 0; shift < 8; shift++) {
		const uint8_t *p = buf + shift;
		memset(buf, 0xcc, sizeof(buf));
		memcpy(buf + shift, bytes, sizeof(bytes));
		bad |= get_be16(p) != 0x0123;
		bad |= get_be32(p) != 0x01234567;
		bad |= get_be64(p) != 0x0123456789abcdefULL;
		bad |= get_le16(p) != 0x2301;
		bad |= get_le32(p) != 0x67452301;
		bad |= get_le64(p) != 0xefcdab8967452301ULL;
		bad |= get_be64(p + 1) != 0x23456789abcdeffeULL;
	}
	tap_ok(!bad, "endian: get_be/le 16/32/64 at every alignment");
}

/* High bits must not sign-extend (bytes >= 0x80 promoted through int). */
static void test_high_bits(void)
{
	const uint8_t ff[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t top[8] = { 0x80, 0, 0, 0, 0, 0, 0, 0x80 };

	tap_ok(get_be16(ff) == 0xffff && get_be32(ff) == 0xffffffffU &&
	       get_be64(ff) == UINT64_MAX && get_le16(ff) == 0xffff &&
	       get_le32(ff) == 0xffffffffU && get_le64(ff) == UINT64_MAX,
	       "endian: all-ones fields");
	tap_ok(get_be64(top) == 0x8000000000000080ULL &&
	       get_le64(top) == 0x8000000000000080ULL &&
	       get_be32(top) == 0x80000000U && get_le32(top + 4) == 0x80000000U,
	       "endian: top bit set does not sign-extend");
}

static void test_stores(void)
{
	uint8_t buf[16];
	int bad = 0;

	for (int shift = 0; shift < 8; shift++) {
		memset(buf, 0xcc, sizeof(buf));
		put_be64(buf + shift, 0x0123456789abcdefULL);
		bad |= memcmp(buf + shift, bytes, 8) != 0;
		bad |= shift && buf[shift - 1] != 0xcc;
		bad |= buf[shift + 8] != 0xcc;

		memset(buf, 0xcc, sizeof(buf));
		put_le64(buf + shift, 0xefcdab8967452301ULL);
		bad |= memcmp(buf + shift, bytes, 8) != 0;
		bad |= buf[shift + 8] != 0xcc;

		memset(buf, 0xcc, sizeof(buf));
		put_be32(buf + shift, 0x01234567);
		put_le32(buf + shift + 4, 0xefcdab89);
		bad |= memcmp(buf + shift, bytes, 8) != 0;

		memset(buf, 0xcc, sizeof(buf));
		put_be16(buf + shift, 0x0123);
		put_le16(buf + shift + 2, 0x6745);
		bad |= memcmp(buf + shift, bytes, 4) != 0;
		bad |= buf[shift + 4] != 0xcc;
	}
	tap_ok(!bad, "endian: put_be/le 16/32/64 write exactly their bytes");
}

static void test_round_trip(void)
{
	static const uint64_t values[] = {
		0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
		0x7fffffffffffffffULL, 0x8000000000000000ULL, UINT64_MAX,
		0x00fffffffffffe00ULL, 0x3f000000000001feULL,
	};
	uint8_t buf[8];
	int bad = 0;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t v = values[i];
		put_be16(buf, (uint16_t)v); bad |= get_be16(buf) != (uint16_t)v;
		put_le16(buf, (uint16_t)v); bad |= get_le16(buf) != (uint16_t)v;
		put_be32(buf, (uint32_t)v); bad |= get_be32(buf) != (uint32_t)v;
		put_le32(buf, (uint32_t)v); bad |= get_le32(buf) != (uint32_t)v;
		put_be64(buf, v); bad |= get_be64(buf) != v;
		put_le64(buf, v); bad |= get_le64(buf) != v;
	}
	tap_ok(!bad, "endian: put then get gives the value back");
}

void test_endian(void)
{
	test_loads();
	test_high_bits();
	test_stores();
	test_round_trip();
}
