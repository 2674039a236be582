/* test-walk-formats.c: unit tests of the qcow and QED walk_layout operations over small hand-built images. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endian.h"
#include "imgint.h"
#include "qcow.h"
#include "qed.h"
#include "unit.h"
#include "walk.h"

void test_walk_formats(void);

/* Write len bytes to a new temporary file; returns its path (to free) or
 * NULL. */
static char *temp_image(const uint8_t *buf, size_t len)
{
	char *path = strdup("/tmp/imgtools-walk-XXXXXX");
	int fd;

	if (!path)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	if (write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

#define MAX_SEEN 8

struct tally {
	int tables, entries, kinds[3], bad_tables;
	uint64_t table_off[4];
	int mismatches;       /* entries block_status reads differently */
	int nseen;            /* allocated entries, in walk order */
	struct img_extent seen[MAX_SEEN];
	uint64_t seen_entry_off[MAX_SEEN];
};

static int on_table(struct img *img, uint64_t i, uint64_t off, void *arg)
{
	struct tally *t = arg;

	if (t->tables < 4)
		t->table_off[t->tables] = off;
	t->tables++;
	return 0;
}

static int on_bad(struct img *img, uint64_t i, uint64_t entry,
		  enum img_walk_problem why, void *arg)
{
	((struct tally *)arg)->bad_tables++;
	return 0;
}

/* Count kinds, remember allocated entries, and check that the driver's
 * block status says the same about the cluster (there is one decoder). */
static int on_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct tally *t = arg;
	struct img_extent bs;
	int ret;

	t->entries++;
	t->kinds[e->ext.kind]++;
	if (e->ext.kind == IMG_EXT_DATA && t->nseen < MAX_SEEN) {
		t->seen_entry_off[t->nseen] = e->entry_offset;
		t->seen[t->nseen++] = e->ext;
	}
	ret = img->drv->block_status(img, e->guest, img->cluster_size, &bs);
	if (ret < 0) {
		/* only an entry it cannot use: checked by the caller */
		return 0;
	}
	if (bs.kind != e->ext.kind || bs.flags != e->ext.flags ||
	    bs.host != e->ext.host || bs.clen != e->ext.clen ||
	    e->ext.start != e->guest || e->ext.length != img->cluster_size)
		t->mismatches++;
	return 0;
}

static const struct img_walk_cb cbs = { on_table, on_bad, on_entry };

static struct img *open_image(const char *path, int metadata_only)
{
	struct img_open_opts o = { .no_backing = 1,
				   .metadata_only = metadata_only };
	struct img *img = img_new();

	if (img && img_open(img, path, &o) < 0) {
		tap_diag("cannot open %s: %s", path, img_errmsg(img));
		img_free(img);
		return NULL;
	}
	return img;
}

/*
 * QED: 4 KiB clusters, one-cluster tables (512 entries, 2 MiB each),
 * a 3 MiB disk, so the L1 table has 2 entries that count (and a third,
 * past image_size, that the walker must not follow).
 */
#define QCS 0x1000u

/* img_read through the same image: data, zero and unallocated clusters,
 * reads across cluster boundaries, and the errors. */
static void check_reads(struct img *img)
{
	static uint8_t buf[6 * QCS], want[6 * QCS];
	int ret;

	memset(want, 0, sizeof(want));
	memset(want, 0xaa, QCS);
	memset(want + 5 * QCS, 0xbb, QCS);
	ret = img_read(img, 0, buf, sizeof(buf));
	tap_ok(ret == 0 && !memcmp(buf, want, sizeof(buf)),
	       "img_read: data, zero and unallocated clusters read right");
	ret = img_read(img, QCS - 7, buf, 14);
	tap_ok(ret == 0 && !memcmp(buf, want + QCS - 7, 14),
	       "img_read: a read across a data/zero cluster boundary");
	ret = img_read(img, (2u << 20) + 3 * QCS, buf, 16);
	tap_ok(ret == IMG_E_CORRUPT,
	       "img_read: a misaligned entry is an error, not data (%s)",
	       img_errmsg(img));
	ret = img_read(img, img_size(img) - 8, buf, 16);
	tap_ok(ret == -EINVAL, "img_read: past the virtual size is refused");
}

static void test_qed(void)
{
	static uint8_t f[7 * QCS];
	struct img_walk_layout lay;
	struct tally t = { 0 };
	struct img *img;
	char *path;
	int ret;

	memset(f, 0, sizeof(f));
	put_le32(f, IMG_QED_MAGIC);
	put_le32(f + 4, QCS);                 /* cluster size */
	put_le32(f + 8, 1);                   /* table size, clusters */
	put_le32(f + 12, 1);                  /* header size, clusters */
	put_le64(f + 40, QCS);                /* L1 table */
	put_le64(f + 48, 3u << 20);           /* image size */
	put_le64(f + QCS, 2 * QCS);           /* L1[0] */
	put_le64(f + QCS + 8, 3 * QCS);       /* L1[1] */
	put_le64(f + QCS + 16, 6 * QCS);      /* L1[2]: past image_size */
	/* table 0 */
	put_le64(f + 2 * QCS, 4 * QCS);       /* data */
	put_le64(f + 2 * QCS + 8, 1);         /* zero */
	put_le64(f + 2 * QCS + 40, 5 * QCS);  /* data (entry 5) */
	/* table 1 */
	put_le64(f + 3 * QCS, 1);             /* zero */
	put_le64(f + 3 * QCS + 3 * 8, 4 * QCS + 8);   /* unusable: misaligned */
	put_le64(f + 3 * QCS + 255 * 8, 5 * QCS);     /* last entry in the disk */
	put_le64(f + 3 * QCS + 256 * 8, 4 * QCS);     /* past the disk */
	/* table 2 (L1[2]): would add entries if followed */
	put_le64(f + 6 * QCS, 4 * QCS);
	/* data: cluster 4 (guest 0) holds 0xaa, cluster 5 (guest 5) 0xbb */
	memset(f + 4 * QCS, 0xaa, QCS);
	memset(f + 5 * QCS, 0xbb, QCS);

	path = temp_image(f, sizeof(f));
	img = path ? open_image(path, 0) : NULL;
	if (!tap_ok(img != NULL, "qed walk: hand-built image opens")) {
		if (path)
			unlink(path);
		free(path);
		return;
	}
	ret = img->drv->walk_layout ? img->drv->walk_layout(img, &lay) : -1;
	tap_ok(ret == 0, "qed walk: the driver has a layout");
	tap_ok(lay.l1_entries == 2 && lay.l1[0] == 2 * QCS &&
	       lay.l1[1] == 3 * QCS,
	       "qed walk: decoded L1 of the entries below image_size (%llu)",
	       (unsigned long long)lay.l1_entries);
	tap_ok(lay.l2_bytes == QCS && lay.entry_bytes == 8 &&
	       lay.cluster_size == QCS && lay.table_align == QCS &&
	       lay.min_offset == QCS && lay.l1_offset_mask == ~0ULL,
	       "qed walk: geometry from the header");

	ret = img_walk(img, &lay, &cbs, &t);
	if (!tap_ok(ret == 0, "qed walk: succeeds"))
		tap_diag("%s", img_errmsg(img));
	tap_ok(t.tables == 2 && t.table_off[0] == 2 * QCS &&
	       t.table_off[1] == 3 * QCS && !t.bad_tables,
	       "qed walk: both tables, not the one past image_size (%d)",
	       t.tables);
	tap_ok(t.entries == 512 + 256,
	       "qed walk: entries up to the virtual size (%d)", t.entries);
	tap_ok(t.kinds[IMG_EXT_DATA] == 4 && t.kinds[IMG_EXT_ZERO] == 2 &&
	       t.kinds[IMG_EXT_UNALLOC] == 512 + 256 - 6,
	       "qed walk: kinds data %d, zero %d, unallocated %d",
	       t.kinds[IMG_EXT_DATA], t.kinds[IMG_EXT_ZERO],
	       t.kinds[IMG_EXT_UNALLOC]);
	tap_ok(t.nseen == 4 &&
	       t.seen[0].host == 4 * QCS && t.seen[0].start == 0 &&
	       t.seen[1].host == 5 * QCS && t.seen[1].start == 5 * QCS &&
	       t.seen[2].host == 4 * QCS + 8 &&
	       t.seen[2].start == (2u << 20) + 3 * QCS &&
	       t.seen[3].host == 5 * QCS &&
	       t.seen[3].start == (2u << 20) + 255 * QCS &&
	       t.seen[0].flags == IMG_EXT_F_OFFSET &&
	       t.seen_entry_off[1] == 2 * QCS + 40 &&
	       t.seen_entry_off[3] == 3 * QCS + 255 * 8,
	       "qed walk: guest and host offsets of the data entries");
	tap_ok(t.mismatches == 0,
	       "qed walk: block status decodes every entry the same (%d differ)",
	       t.mismatches);
	check_reads(img);
	ret = img->drv->block_status(img, (2u << 20) + 3 * QCS, QCS,
				     &(struct img_extent){ 0 });
	tap_ok(ret == IMG_E_CORRUPT && strstr(img_errmsg(img), "not cluster aligned"),
	       "qed walk: the misaligned entry the walker passes on is one block status refuses");
	img_free(img);
	unlink(path);
	free(path);
}

/*
 * qcow (v1): 512-byte clusters, 64-entry (512-byte) L2 tables, a disk of
 * 64 + 10 clusters. Table 0 sits right after the L1 table, at a byte
 * offset no cluster boundary: qcow does not align tables.
 */
#define CS 512u
#define COMPRESSED(off, len) \
	(IMG_QCOW_COMPRESSED | ((uint64_t)(len) << (63 - 9)) | (off))

static void test_qcow(void)
{
	static uint8_t f[8 * CS];
	struct img_walk_layout lay;
	struct tally t = { 0 };
	struct img *img;
	char *path;
	int ret, ok;

	memset(f, 0, sizeof(f));
	put_be32(f, IMG_QCOW_MAGIC);
	put_be32(f + 4, IMG_QCOW_VERSION);
	put_be64(f + 24, (64 + 10) * CS);     /* size */
	f[32] = 9;                            /* cluster bits */
	f[33] = 6;                            /* L2 bits */
	put_be64(f + 40, 48);                 /* L1 table, right after the header */
	put_be64(f + 48, 64);                 /* L1[0] */
	put_be64(f + 56, 2 * CS);             /* L1[1] */
	/* table 0 at 64 */
	put_be64(f + 64, 4 * CS);                     /* data */
	put_be64(f + 64 + 8, COMPRESSED(3600, 100));  /* compressed */
	put_be64(f + 64 + 63 * 8, 5 * CS);            /* data */
	/* table 1 at 1024 */
	put_be64(f + 2 * CS + 4 * 8, 4 * CS + 8);     /* unusable: misaligned */
	put_be64(f + 2 * CS + 9 * 8, 6 * CS);         /* last in the disk */
	put_be64(f + 2 * CS + 10 * 8, 4 * CS);        /* past the disk */

	path = temp_image(f, sizeof(f));
	img = path ? open_image(path, 0) : NULL;
	if (!tap_ok(img != NULL, "qcow walk: hand-built image opens")) {
		if (path)
			unlink(path);
		free(path);
		return;
	}
	ret = img->drv->walk_layout ? img->drv->walk_layout(img, &lay) : -1;
	tap_ok(ret == 0, "qcow walk: the driver has a layout");
	tap_ok(lay.l1_entries == 2 && lay.l1[0] == 64 && lay.l1[1] == 2 * CS &&
	       lay.l2_bytes == 512 && lay.entry_bytes == 8 &&
	       lay.cluster_size == CS && lay.min_offset == IMG_QCOW_HEADER_LEN &&
	       lay.table_align <= 1,
	       "qcow walk: geometry from the header, tables at any offset");

	ret = img_walk(img, &lay, &cbs, &t);
	if (!tap_ok(ret == 0, "qcow walk: succeeds"))
		tap_diag("%s", img_errmsg(img));
	tap_ok(t.tables == 2 && t.table_off[0] == 64 &&
	       t.table_off[1] == 2 * CS && !t.bad_tables,
	       "qcow walk: both tables, the unaligned one included");
	tap_ok(t.entries == 64 + 10 && t.kinds[IMG_EXT_DATA] == 5 &&
	       t.kinds[IMG_EXT_ZERO] == 0 &&
	       t.kinds[IMG_EXT_UNALLOC] == 64 + 10 - 5,
	       "qcow walk: %d entries: data %d, zero %d, unallocated %d",
	       t.entries, t.kinds[IMG_EXT_DATA], t.kinds[IMG_EXT_ZERO],
	       t.kinds[IMG_EXT_UNALLOC]);
	ok = t.nseen == 5;
	tap_ok(ok && t.seen[1].flags == IMG_EXT_F_COMPRESSED &&
	       t.seen[1].host == 3600 && t.seen[1].clen == 100 &&
	       t.seen[1].start == CS && t.seen_entry_off[1] == 64 + 8,
	       "qcow walk: compressed entry: byte offset and exact length");
	tap_ok(ok && t.seen[0].flags == IMG_EXT_F_OFFSET &&
	       t.seen[0].host == 4 * CS && t.seen[0].start == 0 &&
	       t.seen[2].host == 5 * CS && t.seen[2].start == 63 * CS &&
	       t.seen[3].host == 4 * CS + 8 && t.seen[3].start == 68 * CS &&
	       t.seen[4].host == 6 * CS && t.seen[4].start == 73 * CS,
	       "qcow walk: guest and host offsets of the data entries");
	tap_ok(t.mismatches == 0,
	       "qcow walk: block status decodes every entry the same (%d differ)",
	       t.mismatches);
	img_free(img);

	/* The same tables with AES: data is encrypted, compressed is not. */
	put_be32(f + 36, IMG_QCOW_CRYPT_AES);
	unlink(path);
	free(path);
	path = temp_image(f, sizeof(f));
	img = path ? open_image(path, 1) : NULL;
	memset(&t, 0, sizeof(t));
	ret = img && img->drv->walk_layout(img, &lay) == 0 ?
		img_walk(img, &lay, &cbs, &t) : -1;
	tap_ok(ret == 0 && t.nseen == 5 &&
	       t.seen[0].flags == IMG_EXT_F_ENCRYPTED &&
	       t.seen[1].flags == IMG_EXT_F_COMPRESSED &&
	       t.seen[4].flags == IMG_EXT_F_ENCRYPTED && t.mismatches == 0,
	       "qcow walk: AES image: data entries flagged encrypted");
	img_free(img);
	if (path)
		unlink(path);
	free(path);
}

void test_walk_formats(void)
{
	test_qed();
	test_qcow();
}
