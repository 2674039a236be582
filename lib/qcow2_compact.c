/* qcow2_compact.c: qcow2 compaction in place: zero clusters stop being stored, their refcounts drop, clusters from the end move into the freed space. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "qcow2.h"
#include "relocate.h"
#include "walk.h"

/* Clusters whose entries were dropped, waiting for the flush after which
 * their refcounts may fall: at most this many plus one table's worth. */
#define PENDING_MAX 65536u

struct q2compact {
	struct img_check_ctx c;      /* first: the relocation hooks get &c */
	struct img *img;
	struct img_qcow2 *q;
	const struct img_compact_opts *o;
	struct img_compact_result *r;
	unsigned cb;                 /* cluster bits */
	uint8_t *buf;                /* one cluster of data */

	/* Refcounts of the file's clusters (saturating at IMG_REFS_MAX),
	 * kept equal to the stored ones; owners of the movable clusters. */
	struct img_refs refs;
	struct img_owners owners;
	uint64_t *reftable;          /* as stored, decoded */
	uint64_t rt_n;
	unsigned rb_bits;            /* log2 of entries per refcount block */
	uint64_t blk_off;            /* refcount block in blk, 0 = none */
	uint8_t *blk;
	int blk_dirty;

	int table_shared;            /* the L2 table walked has refcount > 1 */
	struct img_io_holes holes;   /* holes of the file: zeros, not read */
	uint64_t table_l1i;          /* its L1 index */
	int table_open;              /* a table is being walked */
	int table_empty;             /* ...and all its entries are (now) 0 */
	uint64_t *empty;             /* L1 indexes of unshared tables left empty */
	uint64_t nempty;
	uint64_t *pending;
	size_t npending, pending_cap;
};

static struct q2compact *of_ctx(struct img_check_ctx *c)
{
	return (struct q2compact *)((char *)c - offsetof(struct q2compact, c));
}

/* ---- refcounts ------------------------------------------------------- */

static int write_block(struct q2compact *k)
{
	int ret;

	if (!k->blk_dirty)
		return 0;
	ret = img_io_pwrite(k->img->io, k->blk, k->q->cluster_size, k->blk_off);
	if (ret < 0)
		return img_error(k->img, ret,
				 "cannot write refcount block at 0x%llx: %s",
				 (unsigned long long)k->blk_off,
				 img_strerror(ret));
	k->blk_dirty = 0;
	return 0;
}

static int load_block(struct q2compact *k, uint64_t off)
{
	int ret;

	if (off == k->blk_off)
		return 0;
	ret = write_block(k);
	if (ret == 0)
		ret = img_read_meta(k->img, "refcount block", k->blk,
				    k->q->cluster_size, off);
	k->blk_off = ret == 0 ? off : 0;
	return ret;
}

/* The refcount block covering cluster cl, 0 if there is none. */
static uint64_t block_of(const struct q2compact *k, uint64_t cl)
{
	uint64_t i = cl >> k->rb_bits;

	return i < k->rt_n ? k->reftable[i] : 0;
}

/* Store refcount v for clusters [cl, cl+n) (buffered in blk). */
static int set_refcounts(struct q2compact *k, uint64_t cl, uint64_t n,
			 uint64_t v)
{
	uint64_t mask = (1ULL << k->rb_bits) - 1;

	for (uint64_t x = cl; x < cl + n; x++) {
		uint64_t off = block_of(k, x);
		int ret;

		if (!off)
			return img_error(k->img, IMG_E_CORRUPT,
					 "no refcount block for cluster %llu",
					 (unsigned long long)x);
		ret = load_block(k, off);
		if (ret < 0)
			return ret;
		img_qcow2_refblock_set(k->blk, x & mask, k->q->h.refcount_order,
				       v);
		k->blk_dirty = 1;
		if (x < k->refs.nclusters)
			k->refs.count[x] = (uint16_t)v;
	}
	return 0;
}

static int claim(struct img_check_ctx *c, uint64_t cl, uint64_t n)
{
	return set_refcounts(of_ctx(c), cl, n, 1);
}

static int release(struct img_check_ctx *c, uint64_t cl, uint64_t n)
{
	return set_refcounts(of_ctx(c), cl, n, 0);
}

static int sync_refs(struct img_check_ctx *c)
{
	return write_block(of_ctx(c));
}

static int load_reftable(struct q2compact *k)
{
	const struct img_qcow2_header *h = &k->q->h;
	uint64_t n = (uint64_t)h->reftable_clusters * k->q->cluster_size / 8;
	uint8_t *raw = malloc(n ? n * 8 : 1);
	int ret;

	k->reftable = malloc((n ? n : 1) * sizeof(*k->reftable));
	if (!raw || !k->reftable) {
		free(raw);
		return img_error(k->img, -ENOMEM, "cannot allocate the refcount table");
	}
	ret = img_read_meta(k->img, "refcount table", raw, n * 8,
			    h->reftable_offset);
	for (uint64_t i = 0; ret == 0 && i < n; i++)
		k->reftable[i] = get_be64(raw + 8 * i) & ~QCOW2_REFTABLE_RESERVED;
	free(raw);
	k->rt_n = n;
	return ret;
}

/*
 * The stored refcount of every cluster of the file, into refs. A free
 * cluster without a refcount block cannot take a moved cluster (its
 * refcount could not be raised): below the last used cluster such ones
 * count as used.
 */
static int load_refcounts(struct q2compact *k, uint64_t file_size)
{
	uint64_t mask = (1ULL << k->rb_bits) - 1, last = 0;
	int ret = img_refs_init(&k->c, &k->refs, file_size, k->cb);

	for (uint64_t cl = 0; ret == 0 && cl < k->refs.nclusters; cl++) {
		uint64_t off = block_of(k, cl), v;

		if (!off)
			continue;
		ret = load_block(k, off);
		if (ret < 0)
			break;
		v = img_qcow2_refblock_get(k->blk, cl & mask,
					   k->q->h.refcount_order);
		k->refs.count[cl] = v > IMG_REFS_MAX ? IMG_REFS_MAX : (uint16_t)v;
		if (v)
			last = cl + 1;
	}
	for (uint64_t cl = 0; ret == 0 && cl < last; cl++)
		if (!block_of(k, cl))
			k->refs.count[cl] = 1;
	return ret;
}

/* ---- moving clusters -------------------------------------------------- */

static uint64_t table_at(struct img_check_ctx *c, uint64_t l1i)
{
	return of_ctx(c)->q->l1[l1i] & QCOW2_OFFSET_MASK;
}

/* Point an entry (L1 or L2) at host, keeping its flags. */
static int repoint(struct img_check_ctx *c, const char *what, uint64_t off,
		   uint64_t host, uint64_t *now)
{
	struct img *img = c->img;
	uint8_t raw[8];
	int ret = img_read_meta(img, what, raw, 8, off);

	if (ret < 0)
		return ret;
	*now = (get_be64(raw) & ~QCOW2_OFFSET_MASK) | host;
	return img_write_entry(c, 0, what, off, *now);
}

static int set_data(struct img_check_ctx *c, uint64_t l1i, uint64_t l2i,
		    uint64_t host)
{
	struct img_qcow2 *q = of_ctx(c)->q;
	uint64_t now;

	return repoint(c, "L2 entry", table_at(c, l1i) + l2i * q->entry_len,
		       host, &now);
}

static int set_table(struct img_check_ctx *c, uint64_t l1i, uint64_t host)
{
	struct img_qcow2 *q = of_ctx(c)->q;

	return repoint(c, "L1 entry", q->h.l1_offset + l1i * 8, host,
		       &q->l1[l1i]);
}

/* A refcount block moves: its refcount table entry is repointed. */
static int set_refblock(struct img_check_ctx *c, uint64_t i, uint64_t host)
{
	struct q2compact *k = of_ctx(c);
	int ret = write_block(k);

	if (ret == 0)
		ret = img_write_entry(c, 0, "refcount table entry",
				      k->q->h.reftable_offset + i * 8, host);
	if (ret < 0)
		return ret;
	if (k->blk_off == k->reftable[i])
		k->blk_off = 0;
	k->reftable[i] = host;
	return 0;
}

/* The tables the header points at: the L1 table (0), the refcount
 * table (1). */
enum { ROOT_L1, ROOT_REFTABLE };

static void root_at(struct img_check_ctx *c, uint64_t which, uint64_t *off,
		    uint64_t *clusters)
{
	const struct img_qcow2 *q = of_ctx(c)->q;

	if (which == ROOT_L1) {
		*off = q->h.l1_offset;
		*clusters = img_div_up((uint64_t)q->h.l1_size * 8,
				       q->cluster_size);
	} else {
		*off = q->h.reftable_offset;
		*clusters = q->h.reftable_clusters;
	}
}

/* One 8-byte header field moves a root table. */
static int set_root(struct img_check_ctx *c, uint64_t which, uint64_t host)
{
	struct img_qcow2 *q = of_ctx(c)->q;
	int ret = img_write_entry(c, 0, which == ROOT_L1 ? "header (L1 table offset)" :
				  "header (refcount table offset)",
				  which == ROOT_L1 ? 40 : 48, host);

	if (ret == 0 && which == ROOT_L1)
		q->h.l1_offset = host;
	else if (ret == 0)
		q->h.reftable_offset = host;
	return ret;
}

/* Whether cluster cl is a refcount block (index *i) counting nothing
 * but itself. */
static int counts_only_itself(const struct q2compact *k,
			      const struct img_refs *r, uint64_t cl,
			      uint64_t *i)
{
	uint64_t first, end;

	if (cl >= k->owners.nclusters ||
	    k->owners.kind[cl] != IMG_OWN_REFBLOCK || r->count[cl] != 1)
		return 0;
	*i = k->owners.ref[cl];
	if (*i >= k->rt_n || k->reftable[*i] != cl << k->cb)
		return 0;
	first = *i << k->rb_bits;
	end = img_min_u64((*i + 1) << k->rb_bits, r->nclusters);
	for (uint64_t x = first; x < end; x++)
		if (r->count[x] && x != cl)
			return 0;
	return 1;
}

/* 1 + the last used cluster that is not such a block. Clusters only move
 * down, so a range from there on stays empty for good. */
static uint64_t used_top(const struct q2compact *k, const struct img_refs *r)
{
	uint64_t i;

	for (uint64_t x = r->nclusters; x > 0; x--)
		if (r->count[x - 1] && !counts_only_itself(k, r, x - 1, &i))
			return x;
	return 0;
}

/* A spare refcount block: it counts only itself, in a range past every
 * used cluster (a range below could not take moved clusters without it). */
static int spare_block(const struct q2compact *k, const struct img_refs *r,
		       uint64_t cl, uint64_t top, uint64_t *i)
{
	return counts_only_itself(k, r, cl, i) && *i << k->rb_bits >= top;
}

static int spare(struct img_check_ctx *c, const struct img_refs *r,
		 uint64_t cl)
{
	struct q2compact *k = of_ctx(c);
	uint64_t i;

	return spare_block(k, r, cl, used_top(k, r), &i);
}

/*
 * Every spare refcount block is let go of: its refcount table entry is
 * cleared (durable), then its own refcount if another block holds it.
 */
static int release_spare(struct img_check_ctx *c, struct img_refs *r)
{
	struct q2compact *k = of_ctx(c);
	uint64_t i, n = 0, top = used_top(k, r);
	uint64_t *idx = malloc((k->rt_n ? k->rt_n : 1) * sizeof(*idx));
	int ret;

	if (!idx)
		return img_error(k->img, -ENOMEM, "out of memory");
	for (uint64_t j = 0; j < k->rt_n; j++)
		if (k->reftable[j] &&
		    spare_block(k, r, k->reftable[j] >> k->cb, top, &i))
			idx[n++] = i;
	ret = write_block(k);
	for (uint64_t j = 0; j < n && ret == 0; j++)
		ret = img_write_entry(c, 0, "refcount table entry",
				      k->q->h.reftable_offset + idx[j] * 8, 0);
	if (ret == 0 && n)
		ret = img_check_flush(c);
	for (uint64_t j = 0; j < n && ret == 0; j++) {
		uint64_t host = k->reftable[idx[j]], cl = host >> k->cb;

		k->reftable[idx[j]] = 0;
		if (k->blk_off == host)
			k->blk_off = 0;
		if (block_of(k, cl))
			ret = set_refcounts(k, cl, 1, 0);
		else
			r->count[cl] = 0;
		if (ret == 0)
			img_check_say(c, "Dropped the refcount block at 0x%llx: its range holds nothing else",
				      (unsigned long long)host);
	}
	if (ret == 0)
		ret = write_block(k);
	free(idx);
	return ret < 0 ? ret : (int)img_min_u64(n, 1);
}

/* ---- finding zero clusters ------------------------------------------- */

/* Refcounts of the clusters whose entries are gone may fall once the
 * changed tables are durable. */
static int drop_pending(struct q2compact *k)
{
	int ret = img_check_flush(&k->c);

	for (size_t i = 0; i < k->npending && ret == 0; i++)
		ret = set_refcounts(k, k->pending[i], 1, 0);
	if (ret == 0)
		ret = write_block(k);
	k->npending = 0;
	return ret;
}

/* A table left with nothing in it goes too (once its last entries are
 * gone for good). */
static void close_table(struct q2compact *k)
{
	if (k->table_open && k->table_empty && !k->table_shared)
		k->empty[k->nempty++] = k->table_l1i;
	k->table_open = 0;
}

static int scan_table(struct img *img, uint64_t l1i, uint64_t l2_off,
		      void *arg)
{
	struct q2compact *k = arg;
	uint64_t cl = l2_off >> k->cb;

	/* Before a table: the changed ones are written whole, and stopping
	 * here leaves their clusters leaked at worst. */
	if (img_cancel_point(img, k->o->cancel) < 0)
		return -ECANCELED;
	close_table(k);
	k->table_open = 1;
	k->table_empty = 1;
	k->table_l1i = l1i;
	k->table_shared = img_refs_get(&k->refs, cl) != 1;
	if (!k->table_shared && k->owners.kind)
		img_owners_set(&k->owners, k->cb, l2_off, k->q->cluster_size,
			       IMG_OWN_TABLE, l1i);
	if (k->npending >= PENDING_MAX)
		return drop_pending(k);
	return 0;
}

/* Whether the allocated part of the cluster in k->buf is all zeros
 * (extended L2: only the subclusters the bitmap allocates). */
static int stored_zero(const struct q2compact *k, uint64_t bitmap)
{
	size_t sub = k->q->cluster_size / QCOW2_SUBCLUSTERS;

	if (!k->q->extended_l2)
		return img_is_zero(k->buf, k->q->cluster_size);
	for (unsigned i = 0; i < QCOW2_SUBCLUSTERS; i++)
		if ((bitmap >> i & 1) && !img_is_zero(k->buf + i * sub, sub))
			return 0;
	return 1;
}

/*
 * The entry a zero cluster gets: unallocated where that reads as zeros,
 * else a zero entry (v3), else none: *keep. Extended L2: the subclusters
 * that were allocated or zero become zero, the rest stay unallocated.
 */
static int zero_entry(struct q2compact *k, uint64_t guest, uint64_t bitmap,
		      uint64_t *entry, uint64_t *new_bitmap, int *keep)
{
	int zero;
	int ret;

	*keep = 0;
	*entry = 0;
	*new_bitmap = 0;
	if (!k->img->backing_name)
		return 0;
	if (k->q->extended_l2) {
		*new_bitmap = ((bitmap | bitmap >> 32) & 0xffffffffu) << 32;
		return 0;
	}
	if (k->q->h.version >= 3) {
		*entry = QCOW2_OFLAG_ZERO;
		return 0;
	}
	ret = img_backing_reads_zero(k->img, guest,
				     img_min_u64(k->q->cluster_size,
						 k->img->size - guest),
				     k->buf, &zero);
	*keep = !zero;
	return ret;
}

/* A data cluster that stays: it may move if nothing shares it. */
static void note_owner(struct q2compact *k, const struct img_walk_entry *e)
{
	if (k->owners.kind && !k->table_shared &&
	    img_refs_get(&k->refs, e->ext.host >> k->cb) == 1)
		img_owners_set(&k->owners, k->cb, e->ext.host,
			       k->q->cluster_size, IMG_OWN_DATA,
			       img_data_ref(e->l1_index, e->l2_index));
}

static int examine(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct q2compact *k = arg;
	const struct img_extent *x = &e->ext;
	uint64_t bitmap = k->q->extended_l2 ? get_be64(e->raw + 8) : 0;
	uint64_t entry, new_bitmap;
	int keep, ret;

	if (!x->host || (x->flags & IMG_EXT_F_COMPRESSED) ||
	    (x->kind != IMG_EXT_DATA && x->kind != IMG_EXT_ZERO))
		return 0;
	/* Past the virtual size nothing is read: the entry stays as it is
	 * (its cluster may still move). */
	if (e->beyond) {
		if (!e->problem)
			note_owner(k, e);
		return 0;
	}
	if (e->problem)
		return img_error(img, IMG_E_CORRUPT,
				 "data cluster at 0x%llx for guest offset 0x%llx: %s",
				 (unsigned long long)x->host,
				 (unsigned long long)e->guest, e->problem);
	if (k->o->progress)
		k->o->progress(e->guest, img->size, k->o->progress_arg);
	/* Zeros the metadata already knows of are not read. */
	if (x->kind == IMG_EXT_DATA && (!k->q->extended_l2 || (uint32_t)bitmap) &&
	    !img_io_is_hole(k->img->io, &k->holes, x->host,
			    k->q->cluster_size)) {
		ret = img_compact_read_cluster(k->img, k->buf, x->host, e->guest);
		if (ret < 0)
			return ret;
		k->r->clusters_scanned++;
		if (!stored_zero(k, bitmap)) {
			note_owner(k, e);
			return 0;
		}
	}
	k->r->zero_clusters++;
	keep = k->table_shared ||
	       img_refs_get(&k->refs, x->host >> k->cb) != 1;
	if (!keep) {
		ret = zero_entry(k, e->guest, bitmap, &entry, &new_bitmap, &keep);
		if (ret < 0)
			return ret;
	}
	if (keep) {
		/* Shared with a snapshot, or (v2) over a backing file that
		 * is not zero there. */
		k->r->clusters_kept++;
		note_owner(k, e);
		return 0;
	}
	k->r->clusters_freed++;
	if (k->o->dry_run)
		return 0;
	put_be64(e->raw, entry);
	if (k->q->extended_l2)
		put_be64(e->raw + 8, new_bitmap);
	k->pending[k->npending++] = x->host >> k->cb;
	return IMG_WALK_CHANGED;
}

static int scan_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct q2compact *k = arg;
	int ret = examine(img, e, arg);

	if (ret >= 0 && (get_be64(e->raw) ||
			 (k->q->extended_l2 && get_be64(e->raw + 8))))
		k->table_empty = 0;
	return ret;
}

static const struct img_walk_cb scan_cb = {
	.table = scan_table,
	.entry = scan_entry,
};

/* ---- the whole job ---------------------------------------------------- */

static int refuse(struct img *img, const struct img_qcow2 *q)
{
	if (img->encrypted)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "compacting encrypted images is not supported");
	if (q->has_data_file)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "compacting images with an external data file is not supported");
	/* QEMU will not open such an image for writing either. */
	if (q->h.incompat & QCOW2_INCOMPAT_CORRUPT)
		return img_error(img, IMG_E_CORRUPT,
				 "'%s' is marked corrupt (repair it first: img-check -r all)",
				 img->path);
	return 0;
}

/* The refcounts were found right and are kept so: the dirty bit goes, as
 * QEMU clears it once its own open-time check has passed. */
static int clear_dirty(struct q2compact *k)
{
	struct img_qcow2 *q = k->q;
	int ret;

	if (q->h.version < 3 || !(q->h.incompat & QCOW2_INCOMPAT_DIRTY))
		return 0;
	ret = img_write_entry(&k->c, 0, "header (incompatible features)", 72,
			      q->h.incompat & ~QCOW2_INCOMPAT_DIRTY);
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret < 0)
		return ret;
	q->h.incompat &= ~QCOW2_INCOMPAT_DIRTY;
	k->img->dirty = 0;
	return 0;
}

/* The qcow2 checker: a read-only pass first (an image with errors is not
 * touched), leaks repaired before anything else so that the stored
 * refcounts are exactly the references. */
static int check(struct q2compact *k, enum img_check_fix fix)
{
	struct img_check chk;
	struct img_check_ctx c = {
		.img = k->img, .fix = fix, .res = &chk,
		.msg = fix ? k->o->msg : NULL, .msg_arg = k->o->msg_arg,
		.cancel = k->o->cancel,
	};
	int ret;

	memset(&chk, 0, sizeof(chk));
	ret = img_qcow2_check(&c);
	if (ret < 0)
		return ret;
	if (chk.corruptions || chk.check_errors)
		return img_error(k->img, IMG_E_CORRUPT,
				 "'%s' has %llu errors (repair it first: img-check -r all)",
				 k->img->path,
				 (unsigned long long)(chk.corruptions +
						      chk.check_errors));
	if (fix == IMG_CHECK_NO_FIX)
		k->r->leaks = chk.leaks;
	k->c.res->bytes_reclaimed += chk.bytes_reclaimed;
	return 0;
}

static int setup(struct q2compact *k)
{
	uint64_t size;
	int ret = img_io_size(k->img->io, &size);

	if (ret < 0)
		return img_error(k->img, ret, "cannot get size: %s",
				 img_strerror(ret));
	k->cb = k->q->h.cluster_bits;
	k->rb_bits = k->cb + 3 - k->q->h.refcount_order;
	k->buf = malloc(k->q->cluster_size);
	k->blk = malloc(k->q->cluster_size);
	k->pending_cap = PENDING_MAX + (k->q->cluster_size / k->q->entry_len);
	k->pending = malloc(k->pending_cap * sizeof(*k->pending));
	k->empty = malloc((k->q->h.l1_size ? k->q->h.l1_size : 1) *
			  sizeof(*k->empty));
	if (!k->buf || !k->blk || !k->pending || !k->empty)
		return img_error(k->img, -ENOMEM, "out of memory");
	ret = load_reftable(k);
	/* As the check counts them: metadata may lie up to a cluster past
	 * the end of the file (it reads as zeros there), and pins the end. */
	if (ret == 0)
		ret = load_refcounts(k, size + k->q->cluster_size);
	if (ret == 0 && !k->o->dry_run)
		ret = img_owners_init(&k->c, &k->owners, k->refs.nclusters);
	for (uint64_t w = ROOT_L1; ret == 0 && k->owners.kind && w <= ROOT_REFTABLE; w++) {
		uint64_t off, n, used = 0;

		root_at(&k->c, w, &off, &n);
		for (uint64_t x = 0; x < n; x++)
			used += img_refs_get(&k->refs, (off >> k->cb) + x) == 1;
		if (n && used == n)
			img_owners_set(&k->owners, k->cb, off, n << k->cb,
				       IMG_OWN_ROOT, w);
	}
	/* Refcount blocks may move (their refcount table entry follows). */
	for (uint64_t i = 0; ret == 0 && k->owners.kind && i < k->rt_n; i++)
		if (k->reftable[i] &&
		    img_refs_get(&k->refs, k->reftable[i] >> k->cb) == 1)
			img_owners_set(&k->owners, k->cb, k->reftable[i],
				       k->q->cluster_size, IMG_OWN_REFBLOCK, i);
	return ret;
}

static void teardown(struct q2compact *k)
{
	img_owners_free(&k->owners);
	img_refs_free(&k->refs);
	free(k->reftable);
	free(k->pending);
	free(k->empty);
	free(k->blk);
	free(k->buf);
}

/* Empty tables: each L1 entry cleared, then (durable) the table's refcount. */
static int drop_empty_tables(struct q2compact *k)
{
	struct img_qcow2 *q = k->q;
	int ret = 0;

	for (uint64_t i = 0; i < k->nempty && ret == 0; i++)
		ret = img_write_entry(&k->c, 0, "L1 entry",
				      q->h.l1_offset + k->empty[i] * 8, 0);
	if (ret == 0 && k->nempty)
		ret = img_check_flush(&k->c);
	for (uint64_t i = 0; i < k->nempty && ret == 0; i++) {
		uint64_t host = q->l1[k->empty[i]] & QCOW2_OFFSET_MASK;

		q->l1[k->empty[i]] = 0;
		ret = set_refcounts(k, host >> k->cb, 1, 0);
		if (ret == 0)
			img_check_say(&k->c, "Dropped the empty L2 table at 0x%llx",
				      (unsigned long long)host);
	}
	return ret ? ret : write_block(k);
}

static const struct img_reloc_ops reloc_ops = {
	.set_data = set_data, .set_table = set_table, .table_at = table_at,
	.set_refblock = set_refblock, .table_clusters = 1,
	.root_at = root_at, .set_root = set_root,
	.claim = claim, .release = release, .sync = sync_refs,
	.spare = spare, .release_spare = release_spare,
};

int img_qcow2_compact(struct img *img, const struct img_compact_opts *o,
		      struct img_compact_result *r)
{
	struct img_check res;
	struct q2compact k = {
		.c = { .img = img, .res = &res, .msg = o->msg,
		       .msg_arg = o->msg_arg, .cancel = o->cancel },
		.img = img, .q = img->priv, .o = o, .r = r,
	};
	struct img_walk_layout lay;
	int ret;

	memset(&res, 0, sizeof(res));
	ret = refuse(img, k.q);
	if (ret == 0)
		ret = check(&k, IMG_CHECK_NO_FIX);
	if (ret == 0 && r->leaks && !o->dry_run)
		ret = check(&k, IMG_CHECK_FIX_LEAKS);
	if (ret == 0)
		ret = setup(&k);
	if (ret == 0)
		ret = img_qcow2_walk_layout(img, &lay);
	lay.past_size = 1;
	if (ret == 0)
		ret = img_walk(img, &lay, &scan_cb, &k);
	close_table(&k);
	if (ret < 0 || o->dry_run)
		goto out;
	ret = drop_pending(&k);
	if (ret == 0)
		ret = drop_empty_tables(&k);
	if (ret == 0)
		ret = img_move_tail_down(&k.c, &k.refs, &k.owners, &reloc_ops, 0);
	if (ret == 0)
		ret = write_block(&k);
	if (ret == 0)
		ret = img_reclaim_leaks(&k.c, &k.refs, 0);
	if (ret == 0)
		ret = img_check_flush(&k.c);
	if (ret == 0)
		ret = clear_dirty(&k);
	r->bytes_freed = res.bytes_reclaimed;
out:
	if (ret == 0 && o->dry_run)
		r->bytes_freed = (r->clusters_freed + r->leaks + k.nempty) *
				 (uint64_t)img->cluster_size;
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	teardown(&k);
	return ret;
}
