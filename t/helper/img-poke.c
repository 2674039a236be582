/* img-poke.c: test-only tool to read or overwrite one integer field of a file, for making damaged images. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endian.h"

static const char usage[] =
	"usage: img-poke FILE OFFSET TYPE VALUE   write VALUE at OFFSET\n"
	"       img-poke FILE OFFSET read TYPE    print the value at OFFSET\n"
	"TYPE is u8, be16, be32, be64, le16, le32 or le64; numbers may be\n"
	"decimal, 0x hex or 0 octal; values are printed in decimal.\n";

struct field_type {
	const char *name;
	size_t width;
	int big_endian;
};

static const struct field_type types[] = {
	{ "u8", 1, 1 },
	{ "be16", 2, 1 }, { "be32", 4, 1 }, { "be64", 8, 1 },
	{ "le16", 2, 0 }, { "le32", 4, 0 }, { "le64", 8, 0 },
};

static const struct field_type *find_type(const char *name)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end ? -1 : 0;
}

static uint64_t decode(const struct field_type *t, const uint8_t *b)
{
	switch (t->width) {
	case 1: return b[0];
	case 2: return t->big_endian ? get_be16(b) : get_le16(b);
	case 4: return t->big_endian ? get_be32(b) : get_le32(b);
	default: return t->big_endian ? get_be64(b) : get_le64(b);
	}
}

static void encode(const struct field_type *t, uint8_t *b, uint64_t v)
{
	switch (t->width) {
	case 1: b[0] = (uint8_t)v; break;
	case 2: t->big_endian ? put_be16(b, v) : put_le16(b, v); break;
	case 4: t->big_endian ? put_be32(b, v) : put_le32(b, v); break;
	default: t->big_endian ? put_be64(b, v) : put_le64(b, v); break;
	}
}

static int die(const char *file, const char *what)
{
	fprintf(stderr, "img-poke: %s '%s': %s\n", what, file, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	const int reading = argc == 5 && !strcmp(argv[3], "read");
	const struct field_type *t;
	uint64_t off, val = 0;
	uint8_t buf[8];
	ssize_t n;
	int fd;

	if (argc != 5) {
		fputs(usage, stderr);
		return 2;
	}
	t = find_type(argv[reading ? 4 : 3]);
	if (!t || parse_u64(argv[2], &off) || off > INT64_MAX - 8 ||
	    (!reading && parse_u64(argv[4], &val))) {
		fputs(usage, stderr);
		return 2;
	}
	if (t->width < 8 && val >> (8 * t->width)) {
		fprintf(stderr, "img-poke: value %s does not fit in %s\n",
			argv[4], t->name);
		return 2;
	}
	fd = open(argv[1], reading ? O_RDONLY : O_WRONLY);
	if (fd < 0)
		return die(argv[1], "cannot open");
	if (reading) {
		n = pread(fd, buf, t->width, (off_t)off);
		if (n != (ssize_t)t->width) {
			if (n >= 0)
				errno = ENODATA;
			return die(argv[1], "cannot read");
		}
		printf("%" PRIu64 "\n", decode(t, buf));
	} else {
		encode(t, buf, val);
		if (pwrite(fd, buf, t->width, (off_t)off) != (ssize_t)t->width)
			return die(argv[1], "cannot write");
	}
	if (close(fd))
		return die(argv[1], "cannot close");
	return fflush(stdout) ? 1 : 0;
}
