/* test-walk.c: unit tests of the L1/L2 table walker (lib/walk.h) over a synthetic in-memory format. */
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "unit.h"
#include "walk.h"

/*
 * The synthetic format: 4 KiB "clusters", L2 tables of 8 big-endian
 * entries (64 bytes), an entry of 0 is unallocated and anything else is
 * the host offset of data. Tables must be 64-byte aligned and lie at or
 * after 0x1000.
 */
#define CS 4096
#define L2_BYTES 64

static void decode(struct img *img, const uint8_t *raw,
		   struct img_walk_entry *e)
{
	uint64_t v = get_be64(raw);

	e->ext.kind = v ? IMG_EXT_DATA : IMG_EXT_UNALLOC;
	e->ext.host = v;
}

struct tally {
	int tables, entries, allocated, beyond, bad[3];
	uint64_t last_guest;
	int abort_at;       /* abort after this many entries (0 = never) */
	uint64_t clear;     /* host offset whose entry is to be zeroed */
};

static int on_table(struct img *img, uint64_t i, uint64_t off, void *arg)
{
	((struct tally *)arg)->tables++;
	return 0;
}

static int on_bad(struct img *img, uint64_t i, uint64_t entry,
		  enum img_walk_problem why, void *arg)
{
	((struct tally *)arg)->bad[why]++;
	return 0;
}

static int on_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct tally *t = arg;

	t->entries++;
	t->beyond += e->beyond;
	t->last_guest = e->guest;
	if (e->ext.kind == IMG_EXT_DATA)
		t->allocated++;
	if (t->clear && e->ext.host == t->clear) {
		put_be64(e->raw, 0);
		return IMG_WALK_CHANGED;
	}
	if (t->abort_at && t->entries == t->abort_at)
		return IMG_WALK_ABORT;
	return 0;
}

static struct img *make_image(void)
{
	uint8_t file[0x3000] = { 0 };
	struct img *img = img_new();

	/* table 0 at 0x1000: entries 1 and 7 allocated */
	put_be64(file + 0x1000 + 8, 0x2000);
	put_be64(file + 0x1000 + 56, 0x2100);
	/* table 1 at 0x1040: entry 0 allocated */
	put_be64(file + 0x1040, 0x2200);
	img_io_open_mem(&img->io, file, sizeof(file));
	img->data_io = img->io;
	img->file_size = sizeof(file);
	img->size = 6 * 8 * CS;     /* six L1 entries' worth */
	return img;
}

void test_walk(void)
{
	/* 0: empty; 1: table 0; 2: misaligned; 3: table 1; 4: past EOF;
	 * 5: inside the header */
	uint64_t l1[6] = { 0, 0x1000, 0x1008, 0x1040, 0x3000, 0x40 };
	struct img_walk_layout lay = {
		.l1 = l1, .l1_entries = 6, .l1_offset_mask = ~0ULL,
		.l2_bytes = L2_BYTES, .entry_bytes = 8, .cluster_size = CS,
		.table_align = 64, .min_offset = 0x1000, .decode = decode,
	};
	struct img_walk_cb cb = { on_table, on_bad, on_entry };
	struct tally t = { 0 };
	struct img *img = make_image();
	uint8_t back[8];
	int ret;

	ret = img_walk(img, &lay, &cb, &t);
	tap_ok(ret == 0, "walk: succeeds over good and bad tables");
	tap_ok(t.tables == 2, "walk: visits the two sound tables (%d)", t.tables);
	tap_ok(t.entries == 16, "walk: visits every entry of them (%d)", t.entries);
	tap_ok(t.allocated == 3, "walk: decodes the allocated entries (%d)",
	       t.allocated);
	tap_ok(t.bad[IMG_WALK_MISALIGNED] == 1 && t.bad[IMG_WALK_BEYOND_EOF] == 1 &&
	       t.bad[IMG_WALK_BEFORE_DATA] == 1,
	       "walk: reports misaligned, past-EOF and in-header tables");
	tap_ok(t.last_guest == (3 * 8 + 7) * (uint64_t)CS,
	       "walk: guest offsets follow L1 and L2 indexes");

	cb.bad_table = NULL;
	memset(&t, 0, sizeof(t));
	ret = img_walk(img, &lay, &cb, &t);
	tap_ok(ret == IMG_E_CORRUPT && strstr(img_errmsg(img), "0x1008") &&
	       strstr(img_errmsg(img), "not aligned"),
	       "walk: without a bad_table callback, fails naming the table (%s)",
	       img_errmsg(img));

	lay.l1_entries = 2;
	memset(&t, 0, sizeof(t));
	t.abort_at = 3;
	ret = img_walk(img, &lay, &cb, &t);
	tap_ok(ret == 0 && t.entries == 3, "walk: ABORT stops at once");

	memset(&t, 0, sizeof(t));
	t.clear = 0x2100;
	ret = img_walk(img, &lay, &cb, &t);
	img_io_pread(img->io, back, 8, 0x1000 + 56);
	tap_ok(ret == 0 && get_be64(back) == 0,
	       "walk: CHANGED entries are written back");
	memset(&t, 0, sizeof(t));
	img_walk(img, &lay, &cb, &t);
	tap_ok(t.allocated == 1, "walk: a second walk sees the change");

	/* A virtual size that ends inside a table stops the entries there. */
	img->size = 8 * CS + 2 * CS;
	memset(&t, 0, sizeof(t));
	lay.l1_entries = 2;
	img_walk(img, &lay, &cb, &t);
	tap_ok(t.entries == 2, "walk: entries past the virtual size are not visited (%d)",
	       t.entries);
	/* A check asks for them too: the rest of that table, flagged. */
	memset(&t, 0, sizeof(t));
	lay.past_size = 1;
	img_walk(img, &lay, &cb, &t);
	tap_ok(t.entries == 8 && t.beyond == 6,
	       "walk: with past_size, the whole table, 6 entries flagged beyond (%d, %d)",
	       t.entries, t.beyond);
	img_free(img);
}
