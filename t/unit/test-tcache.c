/* test-tcache.c: unit tests of the LRU table cache (lib/tcache.h) over an in-memory image file. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"
#include "tcache.h"
#include "unit.h"

#define TABLE 512
#define NTABLES 8
#define SLOTS 3

/* An I/O wrapper that counts reads and can be told to fail them. */
struct counter {
	long reads;
	int fail;
};

static ssize_t counting_pread(struct img_io *io, void *buf, size_t len,
			      uint64_t off)
{
	struct counter *c = io->priv;

	c->reads++;
	if (c->fail)
		return -EIO;
	return img_io_pread(io->inner, buf, len, off);
}

static int counting_size(struct img_io *io, uint64_t *size)
{
	return img_io_size(io->inner, size);
}

static void counting_close(struct img_io *io)
{
	img_io_close(io->inner);
	free(io);
}

static const struct img_io_ops counting_ops = {
	.pread = counting_pread,
	.size = counting_size,
	.close = counting_close,
};

/* An image handle whose file is NTABLES tables, table i filled with i+1. */
static struct img *new_image(struct counter *cnt)
{
	uint8_t data[TABLE * NTABLES];
	struct img *img = img_new();
	struct img_io *mem = NULL, *io = calloc(1, sizeof(*io));

	for (int i = 0; i < NTABLES; i++)
		memset(data + i * TABLE, i + 1, TABLE);
	if (!img || !io || img_io_open_mem(&mem, data, sizeof(data)) < 0)
		abort();
	io->ops = &counting_ops;
	io->inner = mem;
	io->fd = -1;
	io->priv = cnt;
	img->io = io;
	return img;
}

static int holds_table(const uint8_t *t, int i)
{
	return t && t[0] == i + 1 && t[TABLE / 2] == i + 1 && t[TABLE - 1] == i + 1;
}

/* Get table i; 1 if it came back right. */
static int get(struct img *img, struct img_tcache *c, int i)
{
	const uint8_t *t = NULL;

	return img_tcache_get(img, c, "L2 table", (uint64_t)i * TABLE, &t) == 0 &&
	       holds_table(t, i);
}

static void test_hits_and_eviction(void)
{
	struct counter cnt = { 0, 0 };
	struct img *img = new_image(&cnt);
	struct img_tcache *c = img_tcache_new(TABLE, SLOTS);
	const uint8_t *a = NULL, *b = NULL;

	tap_ok(c != NULL, "tcache: new");
	tap_ok(get(img, c, 0) && cnt.reads == 1, "tcache: first get reads");
	img_tcache_get(img, c, "L2 table", 0, &a);
	tap_ok(get(img, c, 0) && cnt.reads == 1, "tcache: second get is a hit");
	img_tcache_get(img, c, "L2 table", 0, &b);
	tap_ok(a == b, "tcache: a hit returns the cached copy");

	tap_ok(get(img, c, 1) && get(img, c, 2) && cnt.reads == 3,
	       "tcache: filling the slots reads each table once");
	tap_ok(get(img, c, 0) && get(img, c, 3) && cnt.reads == 4,
	       "tcache: a fourth table costs one read");
	tap_ok(get(img, c, 0) && get(img, c, 2) && get(img, c, 3) && cnt.reads == 4,
	       "tcache: the least recently used table (1) was the one evicted");
	tap_ok(get(img, c, 1) && cnt.reads == 5 && get(img, c, 3) && get(img, c, 2) &&
	       cnt.reads == 5 && get(img, c, 0) && cnt.reads == 6,
	       "tcache: eviction follows recency of use, not of loading");

	img_tcache_drop(c, 2 * TABLE);
	tap_ok(get(img, c, 2) && cnt.reads == 7, "tcache: a dropped table is read again");
	img_tcache_drop(c, 5 * TABLE);
	tap_ok(get(img, c, 2) && cnt.reads == 7,
	       "tcache: dropping an uncached offset changes nothing");

	img_tcache_free(c);
	img_free(img);
}

/* Random accesses against a model LRU: same data, same number of reads. */
static void test_against_model(void)
{
	struct counter cnt = { 0, 0 };
	struct img *img = new_image(&cnt);
	struct img_tcache *c = img_tcache_new(TABLE, SLOTS);
	int model[SLOTS], nmodel = 0, bad = 0;
	long misses = 0;
	unsigned seed = 12345;

	for (int step = 0; step < 5000; step++) {
		int i, pos = -1;
		seed = seed * 1103515245 + 12345;
		i = (seed >> 16) % (NTABLES - 3);   /* tables 0..4: some reuse */
		for (int k = 0; k < nmodel; k++)
			if (model[k] == i)
				pos = k;
		if (pos < 0) {
			misses++;
			if (nmodel < SLOTS)
				nmodel++;
			pos = nmodel - 1;   /* drop the oldest (last) */
		}
		memmove(model + 1, model, pos * sizeof(model[0]));
		model[0] = i;
		if (!get(img, c, i))
			bad++;
	}
	tap_ok(!bad, "tcache: 5000 random gets return the right tables");
	tap_ok(cnt.reads == misses,
	       "tcache: reads (%ld) equal the misses of an exact LRU (%ld)",
	       cnt.reads, misses);
	img_tcache_free(c);
	img_free(img);
}

static void test_read_errors(void)
{
	struct counter cnt = { 0, 0 };
	struct img *img = new_image(&cnt);
	struct img_tcache *c = img_tcache_new(TABLE, SLOTS);
	const uint8_t *t = NULL;
	const char *msg;
	int ret;

	/* A table that starts inside the file but runs past its end. */
	ret = img_tcache_get(img, c, "L2 table", NTABLES * TABLE - 100, &t);
	msg = img_errmsg(img);
	tap_ok(ret < 0, "tcache: a table past EOF is an error (%d)", ret);
	tap_ok(strstr(msg, "L2 table") && strstr(msg, "0xf9c") &&
	       strstr(msg, "end of file"),
	       "tcache: the error names the table, its offset and EOF: '%s'", msg);
	tap_ok(img_tcache_get(img, c, "L2 table", NTABLES * TABLE - 100, &t) < 0,
	       "tcache: a failed read is not cached");
	tap_ok(get(img, c, 0) && get(img, c, 1) && get(img, c, 2) && get(img, c, 3),
	       "tcache: the cache works after a failed read");

	cnt.fail = 1;
	ret = img_tcache_get(img, c, "L2 table", 5 * TABLE, &t);
	tap_ok(ret == -EIO, "tcache: an I/O error passes through (%d)", ret);
	tap_ok(strstr(img_errmsg(img), "0xa00") != NULL,
	       "tcache: the I/O error names the offset: '%s'", img_errmsg(img));
	tap_ok(get(img, c, 3), "tcache: cached tables still served while I/O fails");
	cnt.fail = 0;
	tap_ok(get(img, c, 5), "tcache: the table reads once I/O works again");

	img_tcache_free(c);
	img_free(img);
}

void test_tcache(void)
{
	test_hits_and_eviction();
	test_against_model();
	test_read_errors();
}
