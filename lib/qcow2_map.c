/* qcow2_map.c: qcow2 L1/L2 translation: block status for reads and map, and the table walker's layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "tcache.h"
#include "walk.h"

/* ---- block status ---------------------------------------------------- */

/* One run of guest space with a single state: a cluster, a run of alike
 * subclusters, or a whole unallocated L1 range. */
struct unit {
	enum img_ext_kind kind;
	unsigned flags;
	uint64_t host;   /* host offset of the byte asked for */
	uint64_t clen;
	uint64_t end;    /* guest offset where the run ends */
};

static int get_l2_table(struct img *img, struct img_qcow2 *q, uint64_t off)
{
	int ret;

	if (q->l2 && q->l2_offset == off)
		return 0;
	q->l2 = NULL;   /* a failed fetch may reuse the slot it points to */
	ret = img_tcache_get(img, q->l2_cache, "L2 table", off, &q->l2);
	if (ret < 0)
		q->l2 = NULL;
	else
		q->l2_offset = off;
	return ret;
}

static int bad_entry(struct img *img, uint64_t off, uint64_t entry,
		     const char *problem)
{
	return img_error(img, IMG_E_CORRUPT,
			 "L2 entry 0x%016llx for guest offset 0x%llx: %s",
			 (unsigned long long)entry, (unsigned long long)off,
			 problem);
}

static int compressed_unit(struct img *img, const struct img_qcow2 *q,
			   uint64_t off, uint64_t entry, struct unit *u)
{
	unsigned shift = 62 - (q->h.cluster_bits - 8);
	uint64_t coffset = entry & ((1ull << shift) - 1);
	uint64_t nsect = (entry >> shift) & ((1ull << (q->h.cluster_bits - 8)) - 1);

	if (q->has_data_file)
		return bad_entry(img, off, entry,
				 "compressed cluster in an image with an external data file");
	u->kind = IMG_EXT_DATA;
	u->flags = IMG_EXT_F_COMPRESSED;
	u->host = coffset;
	u->clen = (nsect + 1) * 512 - (coffset & 511);
	return 0;
}

/* A run backed by a host cluster (data, preallocated zeros, or with
 * subclusters: unallocated space inside an allocated cluster). */
static int allocated_unit(struct img *img, const struct img_qcow2 *q,
			  uint64_t off, uint64_t entry, enum img_ext_kind kind,
			  struct unit *u)
{
	uint64_t host = entry & QCOW2_OFFSET_MASK;

	if (host & (q->cluster_size - 1))
		return bad_entry(img, off, entry,
				 "host offset not cluster aligned");
	u->kind = kind;
	u->host = host + (off & (q->cluster_size - 1));
	/* qemu-img map shows no offset for encrypted data. */
	if (!img->encrypted)
		u->flags = IMG_EXT_F_OFFSET;
	else
		u->flags = kind == IMG_EXT_DATA ? IMG_EXT_F_ENCRYPTED : 0;
	return 0;
}

/* Offset 0 means unallocated, except that with an external data file 0 is
 * a real offset, told apart by the COPIED flag. */
static int entry_unallocated(const struct img_qcow2 *q, uint64_t entry)
{
	return !(entry & QCOW2_OFFSET_MASK) &&
	       !(q->has_data_file && (entry & QCOW2_OFLAG_COPIED));
}

/* Reserved bits in an L2 entry are ignored here, as QEMU reads such
 * entries (img-check reports them). */
static int standard_unit(struct img *img, const struct img_qcow2 *q,
			 uint64_t off, uint64_t entry, struct unit *u)
{
	if (entry & QCOW2_OFLAG_ZERO) {
		/* QEMU fails reads of such clusters with EIO, so do we. */
		if (q->h.version < 3)
			return bad_entry(img, off, entry,
					 "zero flag in a version 2 image");
		if (!(entry & QCOW2_OFFSET_MASK)) {
			u->kind = IMG_EXT_ZERO;
			return 0;
		}
		return allocated_unit(img, q, off, entry, IMG_EXT_ZERO, u);
	}
	if (entry_unallocated(q, entry)) {
		u->kind = IMG_EXT_UNALLOC;
		return 0;
	}
	return allocated_unit(img, q, off, entry, IMG_EXT_DATA, u);
}

/* Extended L2: the state of subcluster sc, and how far it repeats. */
static int subcluster_unit(struct img *img, const struct img_qcow2 *q,
			   uint64_t off, uint64_t entry, uint64_t bitmap,
			   struct unit *u)
{
	uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
	unsigned sc_bits = q->h.cluster_bits - 5;
	unsigned sc = (off >> sc_bits) & (QCOW2_SUBCLUSTERS - 1), next = sc + 1;
	uint64_t cluster = off & ~(q->cluster_size - 1);
	int is_zero = zero >> sc & 1, is_alloc = alloc >> sc & 1;

	while (next < QCOW2_SUBCLUSTERS && (int)(zero >> next & 1) == is_zero &&
	       (int)(alloc >> next & 1) == is_alloc)
		next++;
	u->end = cluster + ((uint64_t)next << sc_bits);
	if (entry_unallocated(q, entry)) {
		if (alloc)
			return bad_entry(img, off, entry,
					 "allocated subclusters in an unallocated cluster");
		u->kind = is_zero ? IMG_EXT_ZERO : IMG_EXT_UNALLOC;
		return 0;
	}
	if (alloc & zero)
		return bad_entry(img, off, entry,
				 "subcluster both allocated and zero");
	return allocated_unit(img, q, off, entry,
			      is_zero ? IMG_EXT_ZERO :
			      is_alloc ? IMG_EXT_DATA : IMG_EXT_UNALLOC, u);
}

static int l2_unit(struct img *img, struct img_qcow2 *q, uint64_t off,
		   struct unit *u)
{
	size_t idx = (off >> q->h.cluster_bits) & ((1u << q->l2_bits) - 1);
	const uint8_t *e = q->l2 + idx * q->entry_len;
	uint64_t entry = get_be64(e);
	uint64_t bitmap = q->extended_l2 ? get_be64(e + 8) : 0;

	u->end = (off & ~(q->cluster_size - 1)) + q->cluster_size;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		if (bitmap)
			return bad_entry(img, off, entry,
					 "compressed cluster with a subcluster bitmap");
		return compressed_unit(img, q, off, entry, u);
	}
	if (q->extended_l2)
		return subcluster_unit(img, q, off, entry, bitmap, u);
	return standard_unit(img, q, off, entry, u);
}

static int describe(struct img *img, struct img_qcow2 *q, uint64_t off,
		    struct unit *u)
{
	unsigned l1_shift = q->h.cluster_bits + q->l2_bits;
	uint64_t l1_index = off >> l1_shift, l1e, l2_offset;
	int ret;

	memset(u, 0, sizeof(*u));
	u->kind = IMG_EXT_UNALLOC;
	if (l1_index >= q->h.l1_size) {
		u->end = UINT64_MAX;
		return 0;
	}
	l1e = q->l1[l1_index];
	if (l1e & QCOW2_L1_RESERVED)
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry %llu (0x%016llx): reserved bits set",
				 (unsigned long long)l1_index,
				 (unsigned long long)l1e);
	l2_offset = l1e & QCOW2_OFFSET_MASK;
	if (!l2_offset) {
		u->end = (l1_index + 1) << l1_shift;
		return 0;
	}
	if (l2_offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry %llu: L2 table offset 0x%llx not cluster aligned",
				 (unsigned long long)l1_index,
				 (unsigned long long)l2_offset);
	ret = get_l2_table(img, q, l2_offset);
	if (ret < 0)
		return ret;
	return l2_unit(img, q, off, u);
}

static int same_run(const struct unit *a, uint64_t a_start,
		    const struct unit *b, uint64_t b_start)
{
	if (a->kind != b->kind || a->flags != b->flags)
		return 0;
	if (a->flags & (IMG_EXT_F_OFFSET | IMG_EXT_F_ENCRYPTED))
		return b->host == a->host + (b_start - a_start);
	return 1;
}

int img_qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
			      struct img_extent *ext)
{
	struct img_qcow2 *q = img->priv;
	uint64_t limit = off + len, end;
	struct unit u, next;
	int ret;

	if (q->has_data_file && img->data_io == img->io) {
		ret = img_qcow2_open_data_file(img);
		if (ret < 0)
			return ret;
	}
	ret = describe(img, q, off, &u);
	if (ret < 0)
		return ret;
	end = u.end < limit ? u.end : limit;
	/* A compressed extent is exactly one cluster's part. Other runs grow
	 * while they stay alike; a unit that fails to decode ends the run and
	 * is reported when asked for on its own. */
	while (!(u.flags & IMG_EXT_F_COMPRESSED) && end < limit &&
	       describe(img, q, end, &next) == 0 &&
	       same_run(&u, off, &next, end))
		end = next.end < limit ? next.end : limit;

	ext->start = off;
	ext->length = end - off;
	ext->kind = u.kind;
	ext->flags = u.flags;
	if (!q->prealloc_checked) {
		q->metadata_prealloc = img_qcow2_detect_prealloc(img, q);
		q->prealloc_checked = 1;
	}
	/* Host holes then read as zeros in map (map.c asks the host file). */
	if (q->metadata_prealloc && u.kind == IMG_EXT_DATA &&
	    (u.flags & IMG_EXT_F_OFFSET))
		ext->flags |= IMG_EXT_F_RECURSE;
	ext->host = u.host;
	ext->clen = u.clen;
	return 0;
}

/* ---- table walker --------------------------------------------------- */

/* The walker's view of one stored L2 entry: the cluster as a whole (a
 * checker counts clusters; subclusters only matter to block status). */
static void walk_decode(struct img *img, const uint8_t *raw,
			struct img_walk_entry *e)
{
	const struct img_qcow2 *q = img->priv;
	uint64_t entry = get_be64(raw);
	uint64_t bitmap = q->extended_l2 ? get_be64(raw + 8) : 0;
	int zero_flag = !q->extended_l2 && (entry & QCOW2_OFLAG_ZERO);
	struct img_extent *x = &e->ext;

	x->flags = 0;
	x->host = 0;
	x->clen = 0;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		unsigned shift = 62 - (q->h.cluster_bits - 8);
		uint64_t nsect = (entry >> shift) &
				 ((1ull << (q->h.cluster_bits - 8)) - 1);

		x->kind = IMG_EXT_DATA;
		x->flags = IMG_EXT_F_COMPRESSED;
		x->host = entry & ((1ull << shift) - 1);
		x->clen = (nsect + 1) * 512 - (x->host & 511);
		if (q->has_data_file)
			e->problem = "compressed cluster in an image with an external data file";
		else if (bitmap)
			e->problem = "compressed cluster with a subcluster bitmap";
		else if (entry & QCOW2_OFLAG_COPIED)
			e->problem = "copied flag set on a compressed cluster";
		return;
	}
	if (entry & (q->extended_l2 ? QCOW2_L2_RESERVED_EXT : QCOW2_L2_RESERVED))
		e->problem = "reserved bits set";
	else if (zero_flag && q->h.version < 3)
		e->problem = "zero flag in a version 2 image";
	if (entry_unallocated(q, entry)) {
		x->kind = zero_flag || (bitmap >> 32) ? IMG_EXT_ZERO
						      : IMG_EXT_UNALLOC;
		if ((uint32_t)bitmap && !e->problem)
			e->problem = "allocated subclusters in an unallocated cluster";
		return;
	}
	x->kind = zero_flag ? IMG_EXT_ZERO : IMG_EXT_DATA;
	x->host = entry & QCOW2_OFFSET_MASK;
	if (!img->encrypted)
		x->flags = IMG_EXT_F_OFFSET;
	else if (x->kind == IMG_EXT_DATA)
		x->flags = IMG_EXT_F_ENCRYPTED;
	if ((x->host & (q->cluster_size - 1)) && !e->problem)
		e->problem = "host offset not cluster aligned";
}

int img_qcow2_walk_layout(struct img *img, struct img_walk_layout *lay)
{
	const struct img_qcow2 *q = img->priv;

	*lay = (struct img_walk_layout){
		.l1 = q->l1,
		.l1_entries = q->h.l1_size,
		.l1_offset_mask = QCOW2_OFFSET_MASK,
		.l2_bytes = q->cluster_size,
		.entry_bytes = q->entry_len,
		.cluster_size = q->cluster_size,
		.table_align = q->cluster_size,
		.min_offset = q->cluster_size,   /* cluster 0 is the header */
		.decode = walk_decode,
	};
	return 0;
}
