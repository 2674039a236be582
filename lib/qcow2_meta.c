/* qcow2_meta.c: qcow2 internal snapshot table and persistent bitmap directory, read and validated for info and check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow2.h"

/* ---- snapshots ------------------------------------------------------- */

struct snap_fixed {
	uint64_t l1_offset, vm_clock_nsec;
	uint32_t l1_size, date_sec, date_nsec, vm_state_size, extra_len;
	uint16_t id_len, name_len;
};

static void decode_snap_fixed(const uint8_t *b, struct snap_fixed *f)
{
	f->l1_offset = get_be64(b);
	f->l1_size = get_be32(b + 8);
	f->id_len = get_be16(b + 12);
	f->name_len = get_be16(b + 14);
	f->date_sec = get_be32(b + 16);
	f->date_nsec = get_be32(b + 20);
	f->vm_clock_nsec = get_be64(b + 24);
	f->vm_state_size = get_be32(b + 32);
	f->extra_len = get_be32(b + 36);
}

static int check_snap_l1(struct img *img, const struct img_qcow2 *q,
			 uint32_t i, const struct snap_fixed *f)
{
	uint64_t end = f->l1_offset + (uint64_t)f->l1_size * 8;

	if ((uint64_t)f->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot %u: L1 table too large (%u entries)",
				 i, f->l1_size);
	if (f->l1_offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "snapshot %u: L1 table at 0x%llx: offset not cluster aligned",
				 i, (unsigned long long)f->l1_offset);
	if (end < f->l1_offset || end > INT64_MAX)
		return img_error(img, IMG_E_CORRUPT,
				 "snapshot %u: L1 table at 0x%llx: end offset overflows",
				 i, (unsigned long long)f->l1_offset);
	return 0;
}

/* Fill sn from the fixed part and the variable part (extra, id, name). */
static int fill_snapshot(struct img *img, struct img_snapshot *sn,
			 const struct snap_fixed *f, const uint8_t *var)
{
	const uint8_t *extra = var;

	sn->vm_state_size = f->extra_len >= 8 ? get_be64(extra) :
						f->vm_state_size;
	sn->disk_size = f->extra_len >= 16 ? get_be64(extra + 8) : img->size;
	sn->icount = f->extra_len >= 24 ? get_be64(extra + 16) : UINT64_MAX;
	sn->has_icount = sn->icount != UINT64_MAX;
	sn->date_sec = f->date_sec;
	sn->date_nsec = f->date_nsec;
	sn->vm_clock_nsec = f->vm_clock_nsec;
	sn->id = strndup((const char *)var + f->extra_len, f->id_len);
	sn->name = strndup((const char *)var + f->extra_len + f->id_len,
			   f->name_len);
	return sn->id && sn->name ? 0 : -ENOMEM;
}

/* The snapshot table's bytes: for a reader, as QEMU reads them, past the
 * end of the file as zeros; a writer wants them all in the file. */
static int read_table(struct img *img, void *buf, size_t len, uint64_t at)
{
	int ret;

	if (img->writable)
		return img_read_meta(img, "snapshot table entry", buf, len, at);
	ret = img_io_read_zfill(img->io, buf, len, at);
	if (ret < 0)
		return img_error(img, ret, "cannot read snapshot table entry at 0x%llx: %s",
				 (unsigned long long)at, img_strerror(ret));
	return 0;
}

/* Read entry i at *pos (relative to the table start), advance *pos. A
 * snapshot's L1 table is checked only for a writer: readers never use it
 * (QEMU too opens such images, and fails only when the snapshot is used);
 * img-check reports it. */
static int read_snapshot(struct img *img, struct img_qcow2 *q, uint32_t i,
			 uint64_t *pos, uint8_t *var)
{
	uint64_t at = q->h.snapshots_offset + *pos, len;
	uint8_t fixed[QCOW2_SNAPSHOT_FIXED_LEN];
	struct snap_fixed f;
	int ret;

	ret = read_table(img, fixed, sizeof(fixed), at);
	if (ret < 0)
		return ret;
	decode_snap_fixed(fixed, &f);
	if (f.extra_len > QCOW2_MAX_SNAPSHOT_EXTRA)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot %u at 0x%llx: extra data too large (%u bytes, maximum %u)",
				 i, (unsigned long long)at, f.extra_len,
				 QCOW2_MAX_SNAPSHOT_EXTRA);
	len = (uint64_t)f.extra_len + f.id_len + f.name_len;
	*pos = img_qcow2_align8(*pos + QCOW2_SNAPSHOT_FIXED_LEN + len);
	if (*pos > QCOW2_MAX_SNAPSHOT_TABLE)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot table at 0x%llx larger than %u bytes",
				 (unsigned long long)q->h.snapshots_offset,
				 QCOW2_MAX_SNAPSHOT_TABLE);
	ret = read_table(img, var, len, at + QCOW2_SNAPSHOT_FIXED_LEN);
	if (ret < 0)
		return ret;
	ret = img->writable ? check_snap_l1(img, q, i, &f) : 0;
	if (ret < 0)
		return ret;
	q->snap_l1[i].offset = f.l1_offset;
	q->snap_l1[i].size = f.l1_size;
	return fill_snapshot(img, &img->snapshots[i], &f, var);
}

int img_qcow2_read_snapshots(struct img *img, struct img_qcow2 *q)
{
	uint32_t n = q->h.nb_snapshots;
	uint64_t pos = 0;
	uint8_t *var;
	int ret = 0;

	if (!n)
		return 0;
	img->snapshots = calloc(n, sizeof(*img->snapshots));
	q->snap_l1 = calloc(n, sizeof(*q->snap_l1));
	/* Largest variable part: extra data plus two u16-sized strings. */
	var = malloc(QCOW2_MAX_SNAPSHOT_EXTRA + 2 * 65535);
	if (!img->snapshots || !q->snap_l1 || !var) {
		free(var);
		return img_error(img, -ENOMEM, "cannot allocate snapshot table");
	}
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		ret = read_snapshot(img, q, i, &pos, var);
		img->nsnapshots = (int)i + 1;  /* so the strings get freed */
	}
	free(var);
	q->snapshot_table_len = pos;
	return ret;
}

/* ---- persistent bitmaps ---------------------------------------------- */

struct bitmap_entry {
	uint64_t table_offset;
	uint32_t table_size, flags, extra_len;
	uint8_t type, granularity_bits;
	uint16_t name_len;
};

static void decode_bitmap_entry(const uint8_t *b, struct bitmap_entry *e)
{
	e->table_offset = get_be64(b);
	e->table_size = get_be32(b + 8);
	e->flags = get_be32(b + 12);
	e->type = b[16];
	e->granularity_bits = b[17];
	e->name_len = get_be16(b + 18);
	e->extra_len = get_be32(b + 20);
}

/* A bitmap not in use must cover the whole disk. */
static int bitmap_covers_disk(const struct img *img, const struct img_qcow2 *q,
			      const struct bitmap_entry *e)
{
	uint64_t have_bits = (uint64_t)e->table_size * q->cluster_size * 8;
	uint64_t gran = 1ull << e->granularity_bits;
	uint64_t need_bits = img->size / gran + (img->size % gran != 0);

	return need_bits <= have_bits;
}

static const char *bitmap_entry_problem(const struct img *img,
					const struct img_qcow2 *q,
					const struct bitmap_entry *e)
{
	if (!e->table_offset || (e->table_offset & (q->cluster_size - 1)))
		return "bitmap table offset invalid";
	if (!e->table_size || e->table_size > QCOW2_MAX_BITMAP_TABLE ||
	    (uint64_t)e->table_size * q->cluster_size > QCOW2_MAX_BITMAP_PHYS)
		return "bitmap table size out of range";
	if (e->flags & ~(QCOW2_BITMAP_IN_USE | QCOW2_BITMAP_AUTO))
		return "reserved flags set";
	if (e->type != QCOW2_BITMAP_TYPE_DIRTY)
		return "unknown bitmap type";
	if (e->granularity_bits < QCOW2_MIN_GRANULARITY_BITS ||
	    e->granularity_bits > QCOW2_MAX_GRANULARITY_BITS)
		return "granularity out of range 2^9..2^31";
	if (!e->name_len || e->name_len > QCOW2_MAX_BITMAP_NAME)
		return "name length out of range 1..1023";
	if (!(e->flags & QCOW2_BITMAP_IN_USE) && !bitmap_covers_disk(img, q, e))
		return "bitmap table too small for the virtual size";
	return NULL;
}

/* The entry at b, with left bytes of directory from b: NULL if valid
 * (its length, padded, in *len), else what is wrong with it. */
const char *img_qcow2_bitmap_entry_problem(const struct img *img,
					   const struct img_qcow2 *q,
					   const uint8_t *b, uint64_t left,
					   uint64_t *len)
{
	struct bitmap_entry e;

	if (left < QCOW2_BITMAP_ENTRY_FIXED)
		return "entry truncated";
	decode_bitmap_entry(b, &e);
	*len = img_qcow2_align8((uint64_t)QCOW2_BITMAP_ENTRY_FIXED +
				e.extra_len + e.name_len);
	if (*len > left)
		return "entry truncated";
	return bitmap_entry_problem(img, q, &e);
}

/* Decode entry i at dir[*pos], advance *pos. */
static int parse_bitmap_entry(struct img *img, const struct img_qcow2 *q,
			      const uint8_t *dir, uint64_t *pos, uint32_t i)
{
	struct img_bitmap *bm = &img->bitmaps[i];
	struct bitmap_entry e;
	const char *problem;
	uint64_t len = 0;

	problem = img_qcow2_bitmap_entry_problem(img, q, dir + *pos,
						 q->bitmap_dir_size - *pos,
						 &len);
	if (problem)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmap directory at 0x%llx: entry %u: %s",
				 (unsigned long long)q->bitmap_dir_offset, i,
				 problem);
	decode_bitmap_entry(dir + *pos, &e);
	bm->name = strndup((const char *)dir + *pos +
			   QCOW2_BITMAP_ENTRY_FIXED + e.extra_len, e.name_len);
	bm->granularity = 1u << e.granularity_bits;
	bm->in_use = !!(e.flags & QCOW2_BITMAP_IN_USE);
	bm->autom = !!(e.flags & QCOW2_BITMAP_AUTO);
	*pos += len;
	return bm->name ? 0 : -ENOMEM;
}

int img_qcow2_read_bitmaps(struct img *img, struct img_qcow2 *q)
{
	uint64_t pos = 0;
	uint8_t *dir;
	int ret;

	if (!q->nb_bitmaps)
		return 0;
	dir = malloc(q->bitmap_dir_size ? q->bitmap_dir_size : 1);
	img->bitmaps = calloc(q->nb_bitmaps, sizeof(*img->bitmaps));
	if (!dir || !img->bitmaps) {
		free(dir);
		return img_error(img, -ENOMEM, "cannot allocate bitmap directory");
	}
	ret = img_read_meta(img, "bitmap directory", dir, q->bitmap_dir_size,
			    q->bitmap_dir_offset);
	for (uint32_t i = 0; ret == 0 && i < q->nb_bitmaps; i++) {
		ret = parse_bitmap_entry(img, q, dir, &pos, i);
		img->nbitmaps = (int)i + 1;  /* so the names get freed */
	}
	free(dir);
	if (ret == 0 && pos != q->bitmap_dir_size)
		ret = img_error(img, IMG_E_CORRUPT,
				"bitmap directory at 0x%llx: %llu bytes, but its %u entries take %llu",
				(unsigned long long)q->bitmap_dir_offset,
				(unsigned long long)q->bitmap_dir_size,
				q->nb_bitmaps, (unsigned long long)pos);
	return ret;
}
