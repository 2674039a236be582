/* main.c: runs every C unit test group and prints one TAP stream. */
#include <stdarg.h>
#include <stdio.h>

#include "unit.h"

static int count, failures;

int tap_ok(int ok, const char *fmt, ...)
{
	va_list ap;

	count++;
	if (!ok)
		failures++;
	printf("%sok %d - ", ok ? "" : "not ", count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

int main(void)
{
	static void (*const groups[])(void) = {
		test_endian, test_zero, test_io, test_tcache,
		test_walk, test_walk_formats, test_compress,
		test_lock, test_open_mem,
	};

	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		groups[i]();
		fflush(stdout);
	}
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
