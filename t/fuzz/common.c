/* common.c: helpers of the fuzz targets: opening from memory, guest data snapshots and their comparison, fresh checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: post-condition failed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		fuzz_fail("out of memory");
	return p;
}

struct img *fuzz_open(const void *data, size_t len,
		      const struct img_open_opts *o)
{
	struct img *img = img_new();

	if (!img)
		fuzz_fail("out of memory");
	if (img_open_mem(img, "fuzz.img", data, len, o) < 0) {
		img_free(img);
		return NULL;
	}
	return img;
}

void fuzz_collect_msg(const char *line, void *arg)
{
	struct fuzz_ranges *r = arg;
	const char *p = strstr(line, "guest range 0x");
	unsigned long long a, b;

	r->problems++;
	if (!p || sscanf(p, "guest range 0x%llx..0x%llx", &a, &b) != 2 ||
	    !strstr(p, "lost its data"))
		return;
	fuzz_ranges_add(r, a, b);
}

void fuzz_ranges_add(struct fuzz_ranges *r, uint64_t a, uint64_t b)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		void *q = realloc(r->r, cap * sizeof(*r->r));
		if (!q)
			fuzz_fail("out of memory");
		r->r = q;
		r->cap = cap;
	}
	r->r[r->n][0] = a;
	r->r[r->n][1] = b;
	r->n++;
}

void fuzz_collect_shared(const char *line, void *arg)
{
	struct fuzz_shared *sh = arg;
	unsigned long long n, rc, refs, g;
	const char *p = strstr(line, "for guest offset 0x");

	/* A cluster used twice with a refcount to match (or above: a
	 * leak line) is shared as much as one counted too low. */
	if ((sscanf(line, "ERROR cluster %llu refcount=%llu reference=%llu",
		    &n, &rc, &refs) == 3 ||
	     sscanf(line, "Leaked cluster %llu refcount=%llu reference=%llu",
		    &n, &rc, &refs) == 3) && refs > 1)
		fuzz_ranges_add(&sh->host, n, n);
	else if (sscanf(line, "ERROR: overflow cluster offset=0x%llx", &g) == 1 &&
		 sh->cluster_size)
		/* more references than the refcount width holds */
		fuzz_ranges_add(&sh->host, g / sh->cluster_size,
				g / sh->cluster_size);
	else if (p && sscanf(p, "for guest offset 0x%llx", &g) == 1 &&
		 (strstr(p, "referenced more than once") ||
		  strstr(p, " shares ")) && !strstr(line, "L2 table"))
		fuzz_ranges_add(&sh->guest, g, g);
}

void fuzz_ranges_free(struct fuzz_ranges *r)
{
	free(r->r);
	memset(r, 0, sizeof(*r));
}

static int lost(const struct fuzz_ranges *r, uint64_t off, uint64_t len)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (off <= r->r[i][1] && r->r[i][0] < off + len)
			return 1;
	return 0;
}

/* Read what can be read: whole blocks, sector by sector where a block
 * fails. */
static void snap_read(struct fuzz_snap *s, struct img *img)
{
	const uint64_t block = 64 * 1024;

	for (uint64_t off = 0; off < s->len; off += block) {
		size_t n = (size_t)(s->len - off < block ? s->len - off : block);

		if (img_read(img, off, s->data + off, n) == 0) {
			for (uint64_t i = off / FUZZ_SECTOR;
			     i * FUZZ_SECTOR < off + n; i++)
				s->flags[i] |= FUZZ_READABLE;
			continue;
		}
		for (uint64_t so = off; so < off + n; so += FUZZ_SECTOR) {
			size_t sn = (size_t)(off + n - so < FUZZ_SECTOR ?
					     off + n - so : FUZZ_SECTOR);
			if (img_read(img, so, s->data + so, sn) == 0)
				s->flags[so / FUZZ_SECTOR] |= FUZZ_READABLE;
			else
				memset(s->data + so, 0, sn);
		}
	}
}

/* Which sectors fall through to the backing file, and where each is
 * stored, as the map says. */
static void snap_map(struct fuzz_snap *s, struct img *img)
{
	struct img_map m;
	uint64_t off = 0;

	for (int steps = 0; off < s->len && steps < FUZZ_MAX_MAP_STEPS;
	     steps++) {
		if (img_map_next(img, off, s->len - off, &m) != 1 ||
		    m.start != off || !m.length) {
			/* Unmapped: on to the next cluster. */
			uint64_t cs = s->cluster_size ? s->cluster_size
						       : FUZZ_SECTOR;
			off = (off / cs + 1) * cs;
			continue;
		}
		for (uint64_t i = off / FUZZ_SECTOR;
		     i * FUZZ_SECTOR < off + m.length; i++) {
			s->flags[i] |= FUZZ_MAPPED |
				       (m.present ? 0 : FUZZ_THROUGH);
			if (m.has_offset && !m.compressed && !m.depth)
				s->host[i] = m.offset + (i * FUZZ_SECTOR - off);
		}
		off += m.length;
	}
}

void fuzz_snap_take(struct fuzz_snap *s, const void *bytes, size_t len)
{
	struct img_info info;
	struct img *img;

	memset(s, 0, sizeof(*s));
	img = fuzz_open(bytes, len, NULL);
	if (!img)
		return;
	s->opened = 1;
	img_get_info(img, &info);
	s->has_backing = info.backing_file != NULL;
	s->size = img_size(img);
	s->len = s->size < FUZZ_MAX_GUEST ? s->size : FUZZ_MAX_GUEST;
	s->data = xcalloc((size_t)s->len, 1);
	s->flags = xcalloc((size_t)(s->len / FUZZ_SECTOR + 1), 1);
	s->host = xcalloc((size_t)(s->len / FUZZ_SECTOR + 1), sizeof(*s->host));
	memset(s->host, 0xff, (size_t)(s->len / FUZZ_SECTOR + 1) * sizeof(*s->host));
	s->cluster_size = info.cluster_size;
	snap_read(s, img);
	snap_map(s, img);
	img_free(img);
}

void fuzz_snap_free(struct fuzz_snap *s)
{
	free(s->data);
	free(s->flags);
	free(s->host);
	memset(s, 0, sizeof(*s));
}

/* Whether sector i of s is stored in a cluster others use too. */
static int shared(const struct fuzz_snap *s, const struct fuzz_shared *sh,
		  uint64_t i)
{
	uint64_t cs = s->cluster_size;

	if (!sh || !cs)
		return 0;
	if (lost(&sh->guest, i * FUZZ_SECTOR / cs * cs, 1))
		return 1;
	return s->host[i] != UINT64_MAX && lost(&sh->host, s->host[i] / cs, 1);
}

void fuzz_snap_same(const struct fuzz_snap *before,
		    const struct fuzz_snap *after,
		    const struct fuzz_ranges *lost_ranges,
		    const struct fuzz_shared *sh, const char *what)
{
	if (!before->opened)
		return;
	FUZZ_ASSERT(after->opened, "%s: the image opened before, not after",
		    what);
	FUZZ_ASSERT(after->size == before->size,
		    "%s: virtual size %llu became %llu", what,
		    (unsigned long long)before->size,
		    (unsigned long long)after->size);
	for (uint64_t off = 0; off < before->len; off += FUZZ_SECTOR) {
		uint64_t i = off / FUZZ_SECTOR;
		uint64_t n = before->len - off < FUZZ_SECTOR ?
			     before->len - off : FUZZ_SECTOR;
		uint8_t fb = before->flags[i], fa = after->flags[i];

		if (!(fb & FUZZ_READABLE) || lost(lost_ranges, off, n) ||
		    shared(before, sh, i))
			continue;
		FUZZ_ASSERT(fa & FUZZ_READABLE,
			    "%s: guest 0x%llx read before, fails after", what,
			    (unsigned long long)off);
		FUZZ_ASSERT(!memcmp(before->data + off, after->data + off,
				    (size_t)n),
			    "%s: guest 0x%llx reads differently after", what,
			    (unsigned long long)off);
		FUZZ_ASSERT(!before->has_backing || !(fb & fa & FUZZ_MAPPED) ||
			    (fb & FUZZ_THROUGH) == (fa & FUZZ_THROUGH),
			    "%s: guest 0x%llx %s the backing file after", what,
			    (unsigned long long)off,
			    fa & FUZZ_THROUGH ? "falls through to" : "hides");
	}
}

int fuzz_check_bytes(const void *bytes, size_t len, struct img_check *res,
		     struct fuzz_shared *sh)
{
	struct img_open_opts o = { .check = 1, .metadata_only = 1,
				   .no_backing = 1 };
	struct img_check_opts co = { .fix = IMG_CHECK_NO_FIX,
				     .msg = sh ? fuzz_collect_shared : NULL,
				     .msg_arg = sh };
	struct img *img = img_new();
	int ret;

	memset(res, 0, sizeof(*res));
	if (!img)
		fuzz_fail("out of memory");
	ret = img_open_mem(img, "fuzz.img", bytes, len, &o);
	if (ret == 0)
		ret = img_check(img, &co, res);
	img_free(img);
	return ret;
}
