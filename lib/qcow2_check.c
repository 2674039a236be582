/* qcow2_check.c: img-check for qcow2: reference counting of every host cluster, comparison with the stored refcounts, statistics; the driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "qcow2_check.h"

#define BITMAP_ENTRY_RESERVED 0xff000000000001feull
#define BITMAP_ENTRY_ALL_ONES 1ull

enum cluster_type q2c_cluster_type(const struct img_qcow2 *q, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return CT_COMPRESSED;
	if ((e & QCOW2_OFLAG_ZERO) && !q->extended_l2)
		return e & QCOW2_OFFSET_MASK ? CT_ZERO_ALLOC : CT_ZERO_PLAIN;
	if (!(e & QCOW2_OFFSET_MASK))
		return q->has_data_file && (e & QCOW2_OFLAG_COPIED) ?
		       CT_NORMAL : CT_UNALLOC;
	return CT_NORMAL;
}

void q2c_corrupt(struct q2c *k)
{
	k->res->corruptions++;
}

/* Whether [off, off+len) reaches a cluster or more past the end of the
 * file (QEMU's rule: less than that is tolerated). */
int q2c_past_eof(const struct q2c *k, uint64_t off, uint64_t len)
{
	return (int64_t)(off + len - k->file_size) >= (int64_t)k->cs;
}

/* Note what cluster cl holds. A cluster that holds two kinds of metadata
 * (an L2 table inside the L1 table or the snapshot table) makes
 * k->c->overlap: which of them holds the real bytes cannot be known, and
 * repairing one's entries could destroy the other. Not counted: data
 * inside metadata, which is only damaged data (refcounts are repaired as
 * qemu-img does; the cluster is marked K_HOLDS_DATA, and flags in a table
 * the guest reads are left: see q2c_holds_data), and refcount
 * structures, which a cluster shares only to be rebuilt elsewhere (never
 * written in place then). */
static void note_kind(struct q2c *k, uint64_t cl, enum cluster_kind kind)
{
	enum cluster_kind was;

	if (!k->kind || kind == K_REFTABLE || kind == K_REFBLOCK)
		return;
	if (kind >= K_DATA) {
		k->kind[cl] |= K_HOLDS_DATA;
		return;
	}
	was = k->kind[cl] & ~K_HOLDS_DATA;
	if (was && was != kind)
		k->c->overlap = 1;
	k->kind[cl] = (uint8_t)(kind | (k->kind[cl] & K_HOLDS_DATA));
}

int q2c_holds_data(const struct q2c *k, uint64_t off, uint64_t len)
{
	if (!k->kind || !len)
		return 0;
	for (uint64_t cl = off >> k->cb; cl <= (off + len - 1) >> k->cb &&
	     cl < k->refs.nclusters; cl++)
		if (k->kind[cl] & K_HOLDS_DATA)
			return 1;
	return 0;
}

/* Whether -r all may rewrite entries of the L2 table being walked (never
 * one that is not cluster aligned: its bytes may belong to another
 * cluster). */
static int can_clear_in(const struct q2c *k, const struct l2_walk *w)
{
	return q2c_can_clear(k) && !w->ro;
}

/* Count a reference to every cluster of [off, off+len), which holds kind;
 * 1 if it lies (partly) a cluster or more past the end of the file. */
static int inc_refs(struct q2c *k, enum cluster_kind kind, uint64_t off,
		    uint64_t len)
{
	uint64_t first, last;

	if (!len)
		return 0;
	if (q2c_past_eof(k, off, len)) {
		img_check_say(k->c, "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%llx size 0x%llx",
			      (unsigned long long)off, (unsigned long long)len);
		q2c_corrupt(k);
		/* uncounted, as by QEMU, but what of it lies in the file
		 * is in use: leak repair must not cut or punch it */
		if (off < k->file_size && (off >> k->cb) < k->refs.keep_from)
			k->refs.keep_from = off >> k->cb;
		if (off < k->file_size + IMG_MAX_TABLE_PAST_EOF &&
		    img_div_up(off + len, k->cs) > k->refs.keep_to)
			k->refs.keep_to = img_div_up(off + len, k->cs);
		return 1;
	}
	first = off >> k->cb;
	last = (off + len - 1) >> k->cb;
	for (uint64_t cl = first; cl <= last && cl < k->refs.nclusters; cl++) {
		uint16_t *n = &k->refs.count[cl];

		if (cl >= k->nclusters)
			k->nclusters = cl + 1;
		note_kind(k, cl, kind);

		if (k->refmax <= IMG_REFS_MAX && *n >= k->refmax) {
			img_check_say(k->c, "ERROR: overflow cluster offset=0x%llx",
				      (unsigned long long)(cl << k->cb));
			q2c_corrupt(k);
			continue;
		}
		if (*n < IMG_REFS_MAX)
			(*n)++;
	}
	return 0;
}

/* Read len bytes at off; what lies past end of file reads as zeros, as
 * it does for QEMU. */
int q2c_read_meta(struct q2c *k, const char *what, void *buf, size_t len,
		  uint64_t off)
{
	int ret = img_io_read_zfill(k->img->io, buf, len, off);

	if (ret < 0) {
		img_check_say(k->c, "ERROR: cannot read %s at 0x%llx: %s", what,
			      (unsigned long long)off, img_strerror(ret));
		k->res->check_errors++;
		img_error(k->img, ret, "cannot read %s at 0x%llx: %s", what,
			  (unsigned long long)off, img_strerror(ret));
	}
	return ret;
}

/* ---- walking the L1/L2 trees ------------------------------------------ */

uint64_t q2c_get_entry(const struct q2c *k, uint64_t j)
{
	return get_be64(k->tbuf + j * k->q->entry_len);
}

static uint64_t get_bitmap(const struct q2c *k, uint64_t j)
{
	return k->q->extended_l2 ? get_be64(k->tbuf + j * 16 + 8) : 0;
}

static void check_compressed(struct q2c *k, struct l2_walk *w, uint64_t j,
			     uint64_t e, uint64_t bitmap)
{
	unsigned shift = 62 - (k->cb - 8);
	uint64_t coff_mask = (1ull << shift) - 1;
	uint64_t coff = e & coff_mask;
	uint64_t nsect = ((e >> shift) & ((1ull << (k->cb - 8)) - 1)) + 1;
	uint64_t clen = nsect * 512 - (coff & 511);

	if (e & QCOW2_OFLAG_COPIED) {
		img_check_say(k->c, "ERROR: coffset=0x%llx: copied flag must never be set for compressed clusters",
			      (unsigned long long)coff);
		q2c_corrupt(k);
	}
	if (k->q->has_data_file) {
		img_check_say(k->c, "ERROR compressed cluster %llu with data file, entry=0x%llx",
			      (unsigned long long)j, (unsigned long long)e);
		q2c_corrupt(k);
		return;
	}
	if (bitmap) {
		img_check_say(k->c, "ERROR compressed cluster %llu with non-zero subcluster allocation bitmap, entry=0x%llx",
			      (unsigned long long)j, (unsigned long long)e);
		q2c_corrupt(k);
		return;
	}
	if (can_clear_in(k, w) && q2c_past_eof(k, coff, clen) &&
	    q2c_clear_entry(k, w, j, e, bitmap, CT_COMPRESSED))
		return;
	inc_refs(k, K_COMPRESSED, coff, clen);
	if (w->active) {
		k->res->allocated_clusters++;
		k->res->compressed_clusters++;
		k->res->fragmented_clusters++;
	}
}

static void check_allocated(struct q2c *k, struct l2_walk *w, uint64_t j,
			    uint64_t e, uint64_t bitmap, enum cluster_type t)
{
	uint64_t off = e & QCOW2_OFFSET_MASK;

	if ((bitmap >> 32) & bitmap) {
		img_check_say(k->c, "ERROR offset=%llx: Allocated cluster has corrupted subcluster allocation bitmap",
			      (unsigned long long)off);
		q2c_corrupt(k);
	}
	if (off & (k->cs - 1)) {
		int data = k->q->extended_l2 ? !!(bitmap & L2_BITMAP_ALL_ALLOC) :
					       !(e & QCOW2_OFLAG_ZERO);

		if (!data && can_clear_in(k, w)) {
			/* As qemu-img -r all: it becomes a plain zero cluster
			 * (it read zeros, and still does); the cluster it
			 * named is left to the leak count. */
			put_be64(k->tbuf + j * k->q->entry_len,
				 k->q->extended_l2 ? 0 : QCOW2_OFLAG_ZERO);
			if (k->q->extended_l2)
				put_be64(k->tbuf + j * 16 + 8,
					 L2_BITMAP_ALL_ALLOC << 32);
			w->dirty = 1;
			k->res->corruptions_fixed++;
			img_check_say(k->c, "Repairing offset=%llx: Preallocated cluster is not properly aligned; L2 entry corrupted.",
				      (unsigned long long)off);
			return;
		}
		q2c_corrupt(k);
		if (data)
			img_check_say(k->c, "ERROR offset=%llx: Data cluster is not properly aligned; L2 entry corrupted.",
				      (unsigned long long)off);
		else
			img_check_say(k->c, "ERROR offset=%llx: Preallocated cluster is not properly aligned; L2 entry corrupted.",
				      (unsigned long long)off);
	}
	if (!k->q->has_data_file && can_clear_in(k, w) &&
	    q2c_past_eof(k, off, k->cs) &&
	    q2c_clear_entry(k, w, j, e, bitmap, t))
		return;
	if (w->active) {
		k->res->allocated_clusters++;
		if (w->next_contig && off != w->next_contig)
			k->res->fragmented_clusters++;
		w->next_contig = off + k->cs;
	}
	if (!k->q->has_data_file)
		inc_refs(k, K_DATA, off, k->cs);
}

static int walk_l2(struct q2c *k, uint64_t l2_off, struct l2_walk *w)
{
	uint64_t n = 1ull << k->q->l2_bits;
	int ret;

	ret = q2c_read_meta(k, "L2 table", k->tbuf, k->cs, l2_off);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < n; j++) {
		uint64_t e = q2c_get_entry(k, j), bitmap = get_bitmap(k, j);
		enum cluster_type t = q2c_cluster_type(k->q, e);

		if (t != CT_COMPRESSED && (e & QCOW2_L2_RESERVED)) {
			img_check_say(k->c, "ERROR found l2 entry with reserved bits set: %llx",
				      (unsigned long long)e);
			q2c_corrupt(k);
		}
		switch (t) {
		case CT_COMPRESSED:
			check_compressed(k, w, j, e, bitmap);
			break;
		case CT_NORMAL:
		case CT_ZERO_ALLOC:
			check_allocated(k, w, j, e, bitmap, t);
			break;
		case CT_UNALLOC:
			if (bitmap & L2_BITMAP_ALL_ALLOC) {
				img_check_say(k->c, "ERROR: Unallocated cluster has non-zero subcluster allocation bitmap");
				q2c_corrupt(k);
			}
			break;
		case CT_ZERO_PLAIN:
			break;
		}
	}
	if (w->dirty)
		return q2c_write_meta(k, "L2 table", k->tbuf, k->cs, l2_off);
	return 0;
}

/* An L1 table and its tree; active: the image's own (statistics, and its
 * in-memory copy kept in step with repairs). */
static int walk_l1(struct q2c *k, uint64_t l1_off, uint32_t l1_size,
		   int active)
{
	uint8_t *raw;
	int ret = 0;

	inc_refs(k, K_L1, l1_off, (uint64_t)l1_size * 8);
	if (!l1_size)
		return 0;
	raw = malloc((size_t)l1_size * 8);
	if (!raw)
		return img_error(k->img, -ENOMEM, "cannot allocate L1 table (%u entries)",
				 l1_size);
	ret = q2c_read_meta(k, "L1 table", raw, (size_t)l1_size * 8, l1_off);
	for (uint64_t i = 0; ret == 0 && i < l1_size; i++) {
		uint64_t e = get_be64(raw + 8 * i);
		uint64_t l2 = e & QCOW2_OFFSET_MASK;
		struct l2_walk w = { .l1i = i, .active = active };

		/* As QEMU: an entry with flags but offset 0 names the header
		 * as its L2 table (readers take it as unallocated). */
		if (!e)
			continue;
		if (e & QCOW2_L1_RESERVED) {
			img_check_say(k->c, "ERROR found L1 entry with reserved bits set: %llx",
				      (unsigned long long)e);
			q2c_corrupt(k);
		}
		if (q2c_can_clear(k) && (!l2 || q2c_past_eof(k, l2, k->cs))) {
			ret = q2c_clear_l1_entry(k, l1_off, i, e,
						 active ? k->q->l1 : NULL);
			continue;
		}
		inc_refs(k, K_L2, l2, k->cs);
		if (l2 & (k->cs - 1)) {
			img_check_say(k->c, "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted",
				      (unsigned long long)l2);
			q2c_corrupt(k);
			w.ro = 1;
		}
		ret = walk_l2(k, l2, &w);
		img_check_progress(k->c, i + 1, l1_size);
	}
	free(raw);
	return ret;
}

/* ---- the other structures --------------------------------------------- */

/* One snapshot's L1 tree, unless its table entry is unusable (as QEMU:
 * a corruption, and the snapshot is skipped). */
static int count_snapshot(struct q2c *k, const uint8_t *fixed,
			  const char *id, const char *name)
{
	uint64_t l1_off = get_be64(fixed);
	uint32_t l1_size = get_be32(fixed + 8);

	if (l1_off & (k->cs - 1)) {
		img_check_say(k->c, "ERROR snapshot %s (%s) l1_offset=%#llx: L1 table is not cluster aligned; snapshot table entry corrupted",
			      id, name, (unsigned long long)l1_off);
		q2c_corrupt(k);
		return 0;
	}
	if ((uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		img_check_say(k->c, "ERROR snapshot %s (%s) l1_size=%#x: L1 table is too large; snapshot table entry corrupted",
			      id, name, l1_size);
		q2c_corrupt(k);
		return 0;
	}
	return walk_l1(k, l1_off, l1_size, 0);
}

/* A v3 snapshot table entry must carry at least 16 bytes of extra data
 * (the large VM state size and the disk size). */
static int snapshot_incomplete(const struct img_qcow2 *q, const uint8_t *fixed)
{
	return q->h.version >= 3 && get_be32(fixed + 36) < 16;
}

/* Entry i at *pos of the snapshot table: its tree; *pos moves past it. */
static int count_snapshot_entry(struct q2c *k, uint32_t i, uint64_t *pos,
				char *var)
{
	uint64_t at = k->q->h.snapshots_offset + *pos;
	uint8_t fixed[QCOW2_SNAPSHOT_FIXED_LEN];
	uint32_t extra;
	uint16_t id_len, name_len;
	int ret;

	ret = q2c_read_meta(k, "snapshot table", fixed, sizeof(fixed), at);
	if (ret < 0)
		return ret;
	id_len = get_be16(fixed + 12);
	name_len = get_be16(fixed + 14);
	extra = get_be32(fixed + 36);
	if (snapshot_incomplete(k->q, fixed)) {
		/* As QEMU (whose -r all rewrites the table; not done here:
		 * see refuse_repair()). */
		img_check_say(k->c, "ERROR snapshot table entry %u is incomplete",
			      i);
		q2c_corrupt(k);
	}
	if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
		return img_error(k->img, IMG_E_CORRUPT,
				 "snapshot %u at 0x%llx: extra data too large (%u bytes)",
				 i, (unsigned long long)at, extra);
	ret = q2c_read_meta(k, "snapshot table", var, (size_t)id_len + name_len,
			    at + QCOW2_SNAPSHOT_FIXED_LEN + extra);
	if (ret < 0)
		return ret;
	/* id and name, each NUL-terminated in var */
	memmove(var + id_len + 1, var + id_len, name_len);
	var[id_len] = 0;
	var[id_len + 1 + name_len] = 0;
	*pos = img_qcow2_align8(*pos + QCOW2_SNAPSHOT_FIXED_LEN + extra +
				id_len + name_len);
	return count_snapshot(k, fixed, var, var + id_len + 1);
}

static int count_snapshots(struct q2c *k)
{
	struct img_qcow2 *q = k->q;
	uint64_t pos = 0;
	char *var;
	int ret = 0;

	if (q->has_data_file && q->h.nb_snapshots) {
		img_check_say(k->c, "ERROR %u snapshots in image with data file",
			      q->h.nb_snapshots);
		q2c_corrupt(k);
	}
	var = malloc(2 * 65536 + 2);
	if (!var)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->h.nb_snapshots && ret == 0; i++) {
		ret = count_snapshot_entry(k, i, &pos, var);
		if (ret == 0 && pos > QCOW2_MAX_SNAPSHOT_TABLE)
			ret = img_error(k->img, IMG_E_CORRUPT,
					"snapshot table at 0x%llx larger than %u bytes",
					(unsigned long long)q->h.snapshots_offset,
					QCOW2_MAX_SNAPSHOT_TABLE);
	}
	free(var);
	if (ret == IMG_E_CORRUPT) {
		/* the unread snapshots' clusters would look leaked: no
		 * repair, as QEMU, whose check fails there */
		q2c_corrupt(k);
		img_check_say(k->c, "ERROR snapshot table: %s",
			      img_errmsg(k->img));
		return ret;
	}
	if (ret < 0)
		return ret;
	inc_refs(k, K_SNAPSHOTS, q->h.snapshots_offset, pos);
	return 0;
}

/* The LUKS header's place, from the FDE header extension. */
static int count_luks_header(struct q2c *k)
{
	const struct img_qcow2 *q = k->q;
	uint64_t pos = q->h.header_length;
	uint64_t end = q->h.backing_offset ? q->h.backing_offset : k->cs;
	uint8_t *hdr;
	int ret;

	if (q->h.crypt_method != QCOW2_CRYPT_LUKS)
		return 0;
	hdr = malloc(k->cs);
	if (!hdr)
		return -ENOMEM;
	ret = q2c_read_meta(k, "header", hdr, k->cs, 0);
	while (ret == 0 && pos + 8 <= end) {
		uint32_t type = get_be32(hdr + pos), len = get_be32(hdr + pos + 4);

		if (type == QCOW2_EXT_END || len > end - pos - 8)
			break;
		if (type == QCOW2_EXT_FDE && len >= 16)
			inc_refs(k, K_LUKS, get_be64(hdr + pos + 8),
				 get_be64(hdr + pos + 16));
		pos += 8 + img_qcow2_align8(len);
	}
	free(hdr);
	return ret;
}

static int bitmap_table_entry_bad(const struct q2c *k, uint64_t e)
{
	uint64_t off = e & QCOW2_OFFSET_MASK;

	if (e & BITMAP_ENTRY_RESERVED)
		return 1;
	return off && ((e & BITMAP_ENTRY_ALL_ONES) || (off & (k->cs - 1)));
}

static int count_bitmap_table(struct q2c *k, uint64_t off, uint32_t size)
{
	uint8_t *t = malloc((size_t)size * 8);
	int ret;

	if (!t)
		return -ENOMEM;
	inc_refs(k, K_BITMAP_TABLE, off, (uint64_t)size * 8);
	ret = q2c_read_meta(k, "bitmap table", t, (size_t)size * 8, off);
	for (uint32_t i = 0; ret == 0 && i < size; i++) {
		uint64_t e = get_be64(t + 8 * (size_t)i);

		if (bitmap_table_entry_bad(k, e)) {
			q2c_corrupt(k);
			continue;
		}
		if (e & QCOW2_OFFSET_MASK)
			inc_refs(k, K_BITMAP_DATA, e & QCOW2_OFFSET_MASK, k->cs);
	}
	free(t);
	return ret;
}

static int count_bitmaps(struct q2c *k)
{
	const struct img_qcow2 *q = k->q;
	uint64_t pos = 0, size = q->bitmap_dir_size;
	uint8_t *dir;
	int ret;

	if (!q->nb_bitmaps)
		return 0;
	inc_refs(k, K_BITMAP_DIR, q->bitmap_dir_offset, size);
	dir = malloc(size ? size : 1);
	if (!dir)
		return -ENOMEM;
	ret = q2c_read_meta(k, "bitmap directory", dir, size,
			    q->bitmap_dir_offset);
	for (uint32_t i = 0; ret == 0 && i < q->nb_bitmaps; i++) {
		const uint8_t *b = dir + pos;
		uint64_t len = 0;

		/* Entries the open path would refuse (a directory past the
		 * end of the file reads as zeros) name unknown clusters. */
		if (img_qcow2_bitmap_entry_problem(k->img, q, b, size - pos,
						   &len))
			goto bad;
		ret = count_bitmap_table(k, get_be64(b), get_be32(b + 8));
		pos += len;
	}
	if (ret == 0 && pos != size)
		goto bad;
	free(dir);
	return ret;
bad:
	/* As QEMU: the check cannot go on without knowing the bitmaps'
	 * clusters (fixing leaks would free them). */
	q2c_corrupt(k);
	free(dir);
	return img_error(k->img, IMG_E_CORRUPT,
			 "bitmap directory at 0x%llx is corrupted",
			 (unsigned long long)q->bitmap_dir_offset);
}

static int load_reftable(struct q2c *k)
{
	const struct img_qcow2 *q = k->q;
	uint64_t n = (uint64_t)q->h.reftable_clusters * k->cs / 8;
	int ret;

	free(k->reftable);
	k->reftable = malloc(n ? n * 8 : 1);
	if (!k->reftable)
		return img_error(k->img, -ENOMEM, "cannot allocate refcount table");
	ret = q2c_read_meta(k, "refcount table", k->reftable, n * 8,
			    q->h.reftable_offset);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < n; i++)
		k->reftable[i] = get_be64((const uint8_t *)&k->reftable[i]);
	k->rt_n = n;
	return 0;
}

/* The refcount blocks: each referenced once, well placed. */
int q2c_refblock_counted(const struct q2c *k, uint64_t e)
{
	uint64_t off = e & REFT_OFFSET_MASK;

	return !(e & QCOW2_REFTABLE_RESERVED) && off &&
	       !(off & (k->cs - 1)) && (off >> k->cb) < k->nclusters;
}

static void count_refblocks(struct q2c *k)
{
	for (uint64_t i = 0; i < k->rt_n; i++) {
		uint64_t e = k->reftable[i], off = e & REFT_OFFSET_MASK;
		uint64_t cl = off >> k->cb;

		if (e & QCOW2_REFTABLE_RESERVED) {
			img_check_say(k->c, "ERROR refcount table entry %llu has reserved bits set",
				      (unsigned long long)i);
			q2c_corrupt(k);
			k->rebuild = 1;
			continue;
		}
		if (off & (k->cs - 1)) {
			img_check_say(k->c, "ERROR refcount block %llu is not cluster aligned; refcount table entry corrupted",
				      (unsigned long long)i);
			q2c_corrupt(k);
			k->rebuild = 1;
			continue;
		}
		if (!off)
			continue;
		if (cl >= k->nclusters) {
			img_check_say(k->c, "ERROR refcount block %llu is outside image",
				      (unsigned long long)i);
			q2c_corrupt(k);
			k->rebuild = 1;
			continue;
		}
		inc_refs(k, K_REFBLOCK, off, k->cs);
		if (k->refs.count[cl] != 1) {
			img_check_say(k->c, "ERROR refcount block %llu refcount=%u",
				      (unsigned long long)i, k->refs.count[cl]);
			q2c_corrupt(k);
			k->rebuild = 1;
		}
	}
}

/* Every reference to every cluster of the file, into k->refs. */
static int count_references(struct q2c *k)
{
	struct img_qcow2 *q = k->q;
	int ret;

	memset(k->refs.count, 0, k->refs.nclusters * sizeof(*k->refs.count));
	memset(k->kind, 0, k->refs.nclusters);
	k->nclusters = k->file_clusters;
	k->rebuild = 0;
	inc_refs(k, K_HEADER, 0, k->cs);
	if ((ret = walk_l1(k, q->h.l1_offset, q->h.l1_size, 1)) < 0 ||
	    (ret = count_snapshots(k)) < 0)
		return ret;
	inc_refs(k, K_REFTABLE, q->h.reftable_offset, (uint64_t)q->h.reftable_clusters * k->cs);
	if ((ret = count_luks_header(k)) < 0 ||
	    (ret = count_bitmaps(k)) < 0 ||
	    (ret = load_reftable(k)) < 0)
		return ret;
	count_refblocks(k);
	return 0;
}

/* ---- stored refcounts ------------------------------------------------- */

/* Refcount of cluster cl as stored; -EIO where the table is unusable. */
int q2c_stored_refcount(struct q2c *k, uint64_t cl, uint64_t *rc)
{
	uint64_t b = cl / k->epb, off;
	int ret;

	*rc = 0;
	if (b >= k->rt_n || !(off = k->reftable[b] & REFT_OFFSET_MASK))
		return 0;
	if (off & (k->cs - 1))
		return -EIO;
	if (off != k->cblk_off) {
		ret = img_io_read_zfill(k->img->io, k->cblk, k->cs, off);
		if (ret < 0)
			return ret;
		k->cblk_off = off;
	}
	*rc = img_qcow2_refblock_get(k->cblk, cl % k->epb, k->order);
	return 0;
}

/* Compare the refcounts of one block's clusters [first, first+n) with the
 * references; with fix, set them right in blk (*dirty when changed). */
static void compare_block(struct q2c *k, uint64_t first, uint64_t n,
			  enum img_check_fix fix, int *dirty)
{
	for (uint64_t j = 0; j < n; j++) {
		uint64_t cl = first + j;
		uint64_t r1 = img_qcow2_refblock_get(k->blk, j, k->order);
		uint64_t r2 = k->refs.count[cl];
		uint64_t *num_fixed = NULL;

		if (r1 || r2)
			k->highest = cl + 1;
		if (r1 == r2)
			continue;
		if (!r1)
			k->rebuild = 1;
		else if (r1 > r2 && fix >= IMG_CHECK_FIX_LEAKS)
			num_fixed = &k->res->leaks_fixed;
		else if (r1 < r2 && fix == IMG_CHECK_FIX_ALL)
			num_fixed = &k->res->corruptions_fixed;
		img_check_say(k->c, "%s cluster %llu refcount=%llu reference=%llu",
			      num_fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked",
			      (unsigned long long)cl, (unsigned long long)r1,
			      (unsigned long long)r2);
		if (num_fixed) {
			img_qcow2_refblock_set(k->blk, j, k->order,
					       r2 > k->refmax ? k->refmax : r2);
			*dirty = 1;
			(*num_fixed)++;
			continue;
		}
		if (r1 < r2)
			q2c_corrupt(k);
		else
			k->res->leaks++;
	}
}

static int compare_refcounts(struct q2c *k, enum img_check_fix fix)
{
	uint64_t nblocks = (k->nclusters + k->epb - 1) / k->epb;
	int ret;

	k->highest = 0;
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t first = b * k->epb, off = 0;
		uint64_t n = img_min_u64(k->epb, k->nclusters - first);
		int dirty = 0;

		if (b < k->rt_n)
			off = k->reftable[b] & REFT_OFFSET_MASK;
		if (off & (k->cs - 1)) {
			for (uint64_t j = 0; j < n; j++)
				img_check_say(k->c, "Can't get refcount for cluster %llu: %s",
					      (unsigned long long)(first + j),
					      img_strerror(-EIO));
			k->res->check_errors += n;
			continue;
		}
		if (off) {
			ret = q2c_read_meta(k, "refcount block", k->blk, k->cs,
					    off);
			if (ret < 0)
				return ret;
		} else {
			memset(k->blk, 0, k->cs);
		}
		compare_block(k, first, n, fix, &dirty);
		if (dirty) {
			ret = q2c_write_meta(k, "refcount block", k->blk, k->cs,
					     off);
			if (ret < 0)
				return ret;
		}
	}
	k->cblk_off = 0;
	if (fix)
		return img_io_flush(k->img->io);
	return 0;
}

/* ---- the pass --------------------------------------------------------- */

static int setup(struct q2c *k)
{
	struct img *img = k->img;
	int ret;

	ret = img_io_size(img->io, &k->file_size);
	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s", img_strerror(ret));
	img->file_size = k->file_size;
	img_refs_free(&k->refs);
	/* room for one cluster past the end: see inc_refs() */
	ret = img_refs_init(k->c, &k->refs, k->file_size + k->cs, k->cb);
	if (ret < 0)
		return ret;
	free(k->kind);
	k->kind = calloc(k->refs.nclusters ? k->refs.nclusters : 1, 1);
	if (!k->kind)
		return img_error(img, -ENOMEM, "out of memory");
	k->file_clusters = img_div_up(k->file_size, k->cs);
	k->nclusters = k->file_clusters;
	k->nkept = 0;
	if (k->nclusters > INT32_MAX) {
		k->res->check_errors++;
		return img_error(img, -EFBIG, "image file too large to check (%llu clusters)",
				 (unsigned long long)k->nclusters);
	}
	return 0;
}

static void reset_counts(struct q2c *k)
{
	struct img_check *r = k->res;

	r->corruptions = r->leaks = r->check_errors = 0;
	r->allocated_clusters = r->fragmented_clusters = 0;
	r->compressed_clusters = 0;
}

/* -r all with refcount structures beyond use: rebuild, count again, and
 * compare (fixing what leaks remain). */
static int rebuild_and_recount(struct q2c *k)
{
	struct img_check old = *k->res;
	int ret;

	img_check_say(k->c, "Rebuilding refcount structure");
	ret = q2c_rebuild_refcounts(k);
	if (ret < 0)
		return ret;
	if ((ret = setup(k)) < 0)
		return ret;
	reset_counts(k);
	k->res->corruptions_fixed = old.corruptions_fixed;
	k->res->leaks_fixed = old.leaks_fixed;
	if ((ret = count_references(k)) < 0 ||
	    (ret = compare_refcounts(k, IMG_CHECK_FIX_LEAKS)) < 0)
		return ret;
	if (k->rebuild)
		img_check_say(k->c, "ERROR rebuilt refcount structure is still broken");
	if (k->res->corruptions < old.corruptions)
		k->res->corruptions_fixed += old.corruptions - k->res->corruptions;
	return 0;
}

static int check_refcounts(struct q2c *k)
{
	enum img_check_fix fix = k->c->fix;
	struct img_check before;
	int ret;

	k->res->total_clusters = img_div_up(k->img->size, k->cs);
	if ((ret = count_references(k)) < 0)
		return ret;
	before = *k->res;
	if ((ret = compare_refcounts(k, IMG_CHECK_NO_FIX)) < 0)
		return ret;
	if (k->rebuild && fix == IMG_CHECK_FIX_ALL) {
		ret = rebuild_and_recount(k);
	} else if (fix) {
		if (k->rebuild) {
			img_check_say(k->c, "ERROR need to rebuild refcount structures");
			k->res->check_errors++;
			return img_error(k->img, -EIO,
					 "refcount structures need a rebuild (-r all)");
		}
		if (k->res->leaks || k->res->corruptions) {
			*k->res = before;
			ret = compare_refcounts(k, fix);
		}
	}
	if (ret < 0)
		return ret;
	if ((ret = q2c_check_copied(k)) < 0)
		return ret;
	/* as qemu-img: at least the header's cluster */
	k->res->image_end_offset = (k->highest ? k->highest : 1) * k->cs;
	return 0;
}

/* Whether an L1 table of n entries at off lies (partly) in cluster 0:
 * its "entries" are the header's bytes, and clearing them would overwrite
 * the header. */
static int l1_over_header(const struct q2c *k, uint64_t off, uint32_t n)
{
	return n && off < k->cs;
}

/*
 * Damage the repair cannot undo (incomplete snapshot table entries) or
 * would make worse (an L1 table over the header): nothing is written at
 * all. Only the fixed parts of the snapshot entries are read; what is
 * wrong elsewhere in the table the counting reports.
 */
static int refuse_repair(struct q2c *k)
{
	const struct img_qcow2 *q = k->q;
	uint8_t fixed[QCOW2_SNAPSHOT_FIXED_LEN];
	uint64_t pos = 0;

	if (l1_over_header(k, q->h.l1_offset, q->h.l1_size)) {
		img_check_say(k->c, "ERROR L1 table at 0x%llx overlaps the header: nothing repaired",
			      (unsigned long long)q->h.l1_offset);
		return 1;
	}
	for (uint64_t i = 0; q->l1 && i < q->h.l1_size; i++) {
		uint64_t l2 = q->l1[i] & QCOW2_OFFSET_MASK;

		if (l2 && l2 < k->cs) {
			img_check_say(k->c, "ERROR L2 table of L1 entry %llu at 0x%llx overlaps the header: nothing repaired",
				      (unsigned long long)i,
				      (unsigned long long)l2);
			return 1;
		}
	}

	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		uint64_t len;

		if (img_io_read_zfill(k->img->io, fixed, sizeof(fixed),
				      q->h.snapshots_offset + pos) < 0 ||
		    get_be32(fixed + 36) > QCOW2_MAX_SNAPSHOT_EXTRA)
			return 0;    /* the counting reports it */
		if (snapshot_incomplete(q, fixed)) {
			img_check_say(k->c, "ERROR snapshot table entry %u is incomplete: nothing repaired",
				      i);
			return 1;
		}
		if (l1_over_header(k, get_be64(fixed), get_be32(fixed + 8))) {
			img_check_say(k->c, "ERROR L1 table of snapshot table entry %u overlaps the header: nothing repaired",
				      i);
			return 1;
		}
		len = QCOW2_SNAPSHOT_FIXED_LEN + (uint64_t)get_be32(fixed + 36) +
		      get_be16(fixed + 12) + get_be16(fixed + 14);
		pos = img_qcow2_align8(pos + len);
		if (pos > QCOW2_MAX_SNAPSHOT_TABLE)
			return 0;
	}
	return 0;
}

int img_qcow2_check(struct img_check_ctx *c)
{
	struct img *img = c->img;
	struct img_qcow2 *q = img->priv;
	struct q2c k = {
		.c = c, .img = img, .q = q, .res = c->res,
		.cs = q->cluster_size, .cb = q->h.cluster_bits,
		.order = q->h.refcount_order,
	};
	int ret;

	k.refmax = k.order == 6 ? UINT64_MAX : (1ull << (1u << k.order)) - 1;
	k.epb = (k.cs * 8) >> k.order;
	k.tbuf = malloc(k.cs);
	k.blk = malloc(k.cs);
	k.cblk = malloc(k.cs);
	if (!k.tbuf || !k.blk || !k.cblk)
		ret = img_error(img, -ENOMEM, "out of memory");
	else
		ret = img_check_overlap_first(c, img_qcow2_check);
	if (ret == 0)
		ret = setup(&k);
	if (ret == 0 && c->fix && refuse_repair(&k))
		c->fix = IMG_CHECK_NO_FIX;
	if (ret == 0)
		ret = check_refcounts(&k);
	if (ret == 0 && c->fix && !c->res->check_errors &&
	    !c->res->corruptions)
		ret = q2c_clear_flags(&k);
	if (ret == 0 && c->fix)
		ret = q2c_reclaim(&k);
	c->res->dirty = img->dirty;
	img_refs_free(&k.refs);
	free(k.kind);
	free(k.kept_eof);
	free(k.tbuf);
	free(k.blk);
	free(k.cblk);
	free(k.reftable);
	return ret;
}
