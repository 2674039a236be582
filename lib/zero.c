/* zero.c: zero detection, a word at a time; the one place the library looks for zeros in data. */
#include <stdint.h>
#include <string.h>

#include "imgint.h"

/* OR together 64 bytes per step; the compiler vectorises the inner loop. */
int img_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t head = (uintptr_t)p & 7;

	if (head) {
		head = 8 - head;
		if (head > len)
			head = len;
		for (size_t i = 0; i < head; i++)
			if (p[i])
				return 0;
		p += head;
		len -= head;
	}
	while (len >= 64) {
		const uint64_t *w = (const uint64_t *)(const void *)p;
		uint64_t acc = 0;
		for (int i = 0; i < 8; i++)
			acc |= w[i];
		if (acc)
			return 0;
		p += 64;
		len -= 64;
	}
	while (len >= 8) {
		if (*(const uint64_t *)(const void *)p)
			return 0;
		p += 8;
		len -= 8;
	}
	while (len--)
		if (*p++)
			return 0;
	return 1;
}

size_t img_zero_prefix(const void *buf, size_t len, size_t gran)
{
	const unsigned char *p = buf;
	size_t done = 0;

	if (!gran)
		return 0;
	while (done < len) {
		size_t n = len - done < gran ? len - done : gran;
		if (!img_is_zero(p + done, n))
			break;
		done += n;
	}
	return done;
}
