/* gen.c: writes the deterministic raw benchmark corpus (random data, written zeros, holes, text) and hashes it. */
/*
 * Usage: gen SIZE_MIB FILE   create FILE (SIZE_MIB MiB), print its hash
 *        gen --hash FILE     print the hash of an existing FILE
 *
 * The content depends only on the MiB index, so a corpus of N MiB is the
 * first N MiB of any larger one. Every MiB gets one layout, chosen by a
 * splitmix64 generator seeded with its index:
 *   20%  pseudo-random data (incompressible)
 *   10%  zeros, written explicitly (allocated on disk, all-zero content)
 *   20%  a hole (never written)
 *   10%  text (words from a small list: compressible, roughly 3:1 with zlib)
 *   40%  mixed: sixteen 64 KiB pieces, each random 30%, zeros 15%, hole 30%,
 *        text 25%, and a random piece may carry a 4 KiB zero block inside
 *        (so zero detection has some work below the cluster size)
 * The hash is a 64-bit multiply-xor over little-endian words, holes
 * included as zeros; it is a stamp, not a cryptographic digest.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define PIECE (64 * 1024)

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* xorshift64* stream for bulk random bytes: fast, deterministic. */
static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < n; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		put_le64(p + i, x * 0x2545f4914f6cdd1dULL);
	}
}

static const char *const words[] = {
	"the", "disk", "image", "cluster", "table", "offset", "of", "and",
	"refcount", "header", "qcow2", "allocated", "zero", "backing", "file",
	"snapshot", "a", "to", "is", "in", "block", "sector", "write", "read",
	"extent", "metadata", "compressed", "virtual", "size", "l1", "l2", "map",
};

static void fill_text(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed, r = 0;
	size_t i = 0;
	int bits = 0, col = 0;

	while (i < n) {
		if (bits < 8) {
			r = splitmix64(&s);
			bits = 64;
		}
		const char *w = words[r & 31];
		int nl = (r >> 5) % 12 == 0;
		r >>= 8;
		bits -= 8;
		for (; *w && i < n; w++, col++)
			p[i++] = (unsigned char)*w;
		if (i < n)
			p[i++] = nl || col > 70 ? '\n' : ' ';
		col = nl || col > 70 ? 0 : col + 1;
	}
}

enum kind { K_RANDOM, K_ZERO, K_HOLE, K_TEXT };

static uint64_t hash_words(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		h ^= get_le64(p + i);
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

static int write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Build MiB number idx in buf; mark which 64 KiB pieces are holes. */
static void make_mib(uint64_t idx, unsigned char *buf, int hole[16])
{
	uint64_t s = idx * 0x51afd7ed558ccd1dULL + 0x1234567;
	uint64_t r = splitmix64(&s) % 100;
	enum kind k[16];

	if (r < 60) {
		enum kind all = r < 20 ? K_RANDOM : r < 30 ? K_ZERO :
				r < 50 ? K_HOLE : K_TEXT;
		for (int i = 0; i < 16; i++)
			k[i] = all;
	} else {
		for (int i = 0; i < 16; i++) {
			uint64_t q = splitmix64(&s) % 100;
			k[i] = q < 30 ? K_RANDOM : q < 45 ? K_ZERO :
			       q < 75 ? K_HOLE : K_TEXT;
		}
	}
	for (int i = 0; i < 16; i++) {
		unsigned char *p = buf + (size_t)i * PIECE;
		uint64_t seed = splitmix64(&s);
		hole[i] = k[i] == K_HOLE;
		switch (k[i]) {
		case K_RANDOM:
			fill_random(p, PIECE, seed);
			if (r >= 60 && seed % 4 == 0)
				memset(p + ((seed >> 8) % 16) * 4096, 0, 4096);
			break;
		case K_TEXT:
			fill_text(p, PIECE, seed);
			break;
		default:
			memset(p, 0, PIECE);
			break;
		}
	}
}

static int do_hash(const char *path)
{
	static unsigned char buf[MIB];
	uint64_t h = 0xcbf29ce484222325ULL;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "gen: cannot open '%s': %s\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, MIB)) > 0) {
		if (n % 8)
			memset(buf + n, 0, 8 - n % 8);
		h = hash_words(h, buf, (size_t)(n + 7) / 8 * 8);
	}
	close(fd);
	if (n < 0) {
		fprintf(stderr, "gen: cannot read '%s': %s\n", path, strerror(errno));
		return 1;
	}
	printf("%016" PRIx64 "\n", h);
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char buf[MIB];
	uint64_t h = 0xcbf29ce484222325ULL, mibs;
	char *end;
	int fd;

	if (argc == 3 && strcmp(argv[1], "--hash") == 0)
		return do_hash(argv[2]);
	if (argc != 3) {
		fprintf(stderr, "usage: gen SIZE_MIB FILE | gen --hash FILE\n");
		return 2;
	}
	mibs = strtoull(argv[1], &end, 10);
	if (*end || mibs == 0) {
		fprintf(stderr, "gen: bad size '%s'\n", argv[1]);
		return 2;
	}
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)(mibs * MIB)) < 0) {
		fprintf(stderr, "gen: cannot create '%s': %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (uint64_t m = 0; m < mibs; m++) {
		int hole[16];
		make_mib(m, buf, hole);
		h = hash_words(h, buf, MIB);
		/* Write runs of non-hole pieces with one pwrite each. */
		for (int i = 0; i < 16;) {
			int j = i;
			if (hole[i]) {
				i++;
				continue;
			}
			while (j < 16 && !hole[j])
				j++;
			if (write_all(fd, buf + (size_t)i * PIECE, (size_t)(j - i) * PIECE,
				      (off_t)(m * MIB + (uint64_t)i * PIECE)) < 0) {
				fprintf(stderr, "gen: cannot write '%s': %s\n", argv[2],
					strerror(errno));
				return 1;
			}
			i = j;
		}
	}
	if (close(fd) < 0) {
		fprintf(stderr, "gen: cannot close '%s': %s\n", argv[2], strerror(errno));
		return 1;
	}
	printf("%016" PRIx64 "\n", h);
	return 0;
}
