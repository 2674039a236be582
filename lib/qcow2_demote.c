/* qcow2_demote.c: the qcow2 driver's demote: v3 features removed in place (zero clusters in every tree, bitmaps, lazy refcounts, the dirty bit, header extensions), the v2 header written last in one write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "endian.h"
#include "qcow2.h"
#include "qcow2_demote.h"
#include "relocate.h"
#include "walk.h"

/* ---- finding zero clusters in every tree ------------------------------ */

int q2d_chain_reads_zero(struct q2demote *k, uint64_t guest, int beyond)
{
	struct img *img = k->img;
	int zero = 1, ret;

	if (beyond || !img->backing_name)
		return 1;
	ret = img_backing_reads_zero(img, guest,
				     img_min_u64(img->cluster_size,
						 img->size - guest),
				     k->buf, &zero);
	return ret < 0 ? ret : zero;
}

static int on_table(struct img *img, uint64_t l1i, uint64_t l2_off, void *arg)
{
	struct q2demote *k = arg;
	int ret = img_qcow2_refcount(img, l2_off / k->q->cluster_size,
				     &k->l2_refs);
	uint64_t guest = l1i << (k->q->h.cluster_bits + k->q->l2_bits);

	/* a table shared by trees is seen once */
	for (size_t i = 0; i < k->nseen; i++)
		if (k->seen[i] == l2_off)
			return IMG_WALK_SKIP;
	if (k->nseen == k->capseen) {
		size_t cap = k->capseen ? 2 * k->capseen : 64;
		uint64_t *p = realloc(k->seen, cap * sizeof(*p));

		if (!p)
			return img_error(img, -ENOMEM, "out of memory");
		k->seen = p;
		k->capseen = cap;
	}
	k->seen[k->nseen++] = l2_off;
	k->table_zero = 0;
	/* progress once a table: the walk of the active tree */
	if (k->o->progress && guest < img->size)
		k->o->progress(guest, img->size, k->o->progress_arg);

	return ret < 0 ? ret : 0;
}

static int add_act(struct q2demote *k, const struct act *a)
{
	if (k->nacts == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		struct act *p = realloc(k->acts, cap * sizeof(*p));

		if (!p)
			return img_error(k->img, -ENOMEM, "out of memory");
		k->acts = p;
		k->cap = cap;
	}
	k->acts[k->nacts++] = *a;
	return 0;
}

static int on_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct q2demote *k = arg;
	uint64_t v = get_be64(e->raw), host = v & QCOW2_OFFSET_MASK, rc = 0;
	struct act a = { .entry_off = e->entry_offset, .old = v };
	int zero, ret;

	if (v & QCOW2_OFLAG_COMPRESSED) {
		if (k->q->h.compression_type == 0 || e->beyond ||
		    k->write_unalloc)
			return 0;
		a.kind = ACT_ZSTD;
		a.refs = k->l2_refs;
		a.chost = e->ext.host;
		a.cb = k->q->h.cluster_bits;
		a.clen = e->ext.clen;
		return add_act(k, &a);
	}
	if (!(v & QCOW2_OFLAG_ZERO))
		return 0;
	zero = q2d_chain_reads_zero(k, e->guest, e->beyond);
	if (zero < 0)
		return zero;
	if (host) {
		ret = img_qcow2_refcount(img, host / k->q->cluster_size, &rc);
		if (ret < 0)
			return ret;
	}
	/* A preallocated cluster only this entry names gets zeros where it
	 * is; one named elsewhere too is let go of (the leak repair at the
	 * end lowers its refcount). */
	if (host && rc == k->l2_refs && !e->beyond)
		a.kind = ACT_IN_PLACE;
	else if (zero)
		a.kind = ACT_UNALLOC;
	else
		a.kind = ACT_ALLOC;
	if (!k->table_zero)
		k->tables++;
	k->table_zero = 1;
	if (a.kind == ACT_UNALLOC && k->write_unalloc) {
		put_be64(e->raw, 0);
		return IMG_WALK_CHANGED;
	}
	if (k->write_unalloc)
		return 0;
	if (a.kind == ACT_UNALLOC) {
		k->unalloc++;
		return 0;
	}
	a.refs = k->l2_refs;
	return add_act(k, &a);
}

static const struct img_walk_cb find_cb = {
	.table = on_table,
	.entry = on_entry,
};

int q2d_read_l1(struct q2demote *k, uint64_t off, uint32_t n, uint64_t **l1)
{
	uint8_t *raw = malloc(n ? (size_t)n * 8 : 1);
	int ret;

	*l1 = malloc(n ? (size_t)n * 8 : 1);
	if (!raw || !*l1) {
		free(raw);
		return img_error(k->img, -ENOMEM, "out of memory");
	}
	ret = img_read_meta(k->img, "snapshot L1 table", raw, (size_t)n * 8, off);
	for (uint32_t i = 0; ret == 0 && i < n; i++)
		(*l1)[i] = get_be64(raw + 8 * (size_t)i);
	free(raw);
	return ret;
}

static int cmp_act(const void *a, const void *b)
{
	const struct act *x = a, *y = b;

	return x->entry_off < y->entry_off ? -1 : x->entry_off > y->entry_off;
}

static int new_cluster(const struct act *a)
{
	return a->kind == ACT_ALLOC || a->kind == ACT_ZSTD ||
	       a->kind == ACT_ZLIB;
}

/* Counts of what the acts do (zstd ones apart). */
static void count_acts(struct q2demote *k)
{
	uint64_t last = UINT64_MAX;

	k->allocs = k->in_place = k->compressed = 0;
	for (size_t i = 0; i < k->nacts; i++) {
		uint64_t t = k->acts[i].entry_off / k->q->cluster_size;

		k->allocs += new_cluster(&k->acts[i]);
		k->in_place += k->acts[i].kind == ACT_IN_PLACE;
		k->compressed += k->acts[i].kind == ACT_ZSTD;
		(void)t;
		(void)last;
	}
}

/* Only the acts of the features being removed stay. */
static void keep_acts(struct q2demote *k, int zero, int zstd)
{
	size_t n = 0;

	for (size_t i = 0; i < k->nacts; i++)
		if (k->acts[i].kind == ACT_ZSTD ? zstd : zero)
			k->acts[n++] = k->acts[i];
	k->nacts = n;
	count_acts(k);
}

/* The active tree and every snapshot's; a table shared by several is
 * seen once per tree, its entries kept once. */
/* Every tree walked with the callbacks above (each table once). */
static int walk_trees(struct q2demote *k)
{
	struct img_walk_layout lay;
	int ret = img_qcow2_walk_layout(k->img, &lay);

	k->nseen = 0;
	k->unalloc = 0;
	k->tables = 0;
	lay.past_size = 1;
	if (ret == 0)
		ret = img_walk(k->img, &lay, &find_cb, k);
	for (uint32_t i = 0; ret == 0 && i < k->q->h.nb_snapshots; i++) {
		uint64_t *l1;
		struct img_walk_layout sl = lay;

		ret = q2d_read_l1(k, k->q->snap_l1[i].offset, k->q->snap_l1[i].size,
			      &l1);
		sl.l1 = l1;
		sl.l1_entries = k->q->snap_l1[i].size;
		if (ret == 0)
			ret = img_walk(k->img, &sl, &find_cb, k);
		free(l1);
	}
	return ret;
}

static int find_zero_clusters(struct q2demote *k)
{
	int ret, sorted = 1;

	k->nacts = 0;
	ret = walk_trees(k);
	if (ret < 0)
		return ret;
	for (size_t i = 1; i < k->nacts && sorted; i++)
		sorted = k->acts[i - 1].entry_off < k->acts[i].entry_off;
	if (!sorted)
		qsort(k->acts, k->nacts, sizeof(*k->acts), cmp_act);
	count_acts(k);
	return 0;
}

/* The zero entries that become unallocated, cleared where they are (the
 * walker writes each changed piece of table back). */
static int clear_unalloc(struct q2demote *k)
{
	uint64_t n = k->unalloc, tables = k->tables;
	int ret;

	k->write_unalloc = 1;
	ret = walk_trees(k);
	k->write_unalloc = 0;
	k->unalloc = n;
	k->tables = tables;
	return ret;
}

/* ---- the checker --------------------------------------------------------- */

static int run_check(struct q2demote *k, enum img_check_fix fix)
{
	struct img_check_ctx c = {
		.img = k->img, .fix = fix, .res = &k->res,
		.msg = NULL,
		.cancel = k->o->cancel,
	};

	return img_demote_check(&c, img_qcow2_check);
}

/* Refcounts made exact: a dirty image repaired as QEMU repairs one it
 * opens, then leaks given back; errors refuse the image. */
int q2d_exact_refcounts(struct q2demote *k)
{
	int ret = 0;

	if (k->q->h.incompat & QCOW2_INCOMPAT_DIRTY)
		ret = run_check(k, IMG_CHECK_FIX_ALL);
	if (ret == 0)
		ret = run_check(k, IMG_CHECK_NO_FIX);
	if (ret == 0 && k->res.leaks)
		ret = run_check(k, IMG_CHECK_FIX_LEAKS);
	if (ret == 0 && k->res.leaks)
		ret = run_check(k, IMG_CHECK_NO_FIX);
	if (ret == 0 && k->res.leaks)
		ret = img_error(k->img, IMG_E_CORRUPT,
				"'%s' still leaks %llu clusters after a repair",
				k->img->path, (unsigned long long)k->res.leaks);
	return ret;
}

/* ---- writing the zero clusters ------------------------------------------- */

struct rt {
	uint64_t *e;             /* the refcount table, decoded */
	uint64_t n;
	unsigned rb_bits;        /* log2 of entries per refcount block */
};

static int load_reftable(struct q2demote *k, struct rt *t)
{
	const struct img_qcow2_header *h = &k->q->h;
	uint64_t n = (uint64_t)h->reftable_clusters * k->q->cluster_size / 8;
	uint8_t *raw = malloc(n ? n * 8 : 1);
	int ret;

	t->e = malloc((n ? n : 1) * sizeof(*t->e));
	t->n = n;
	t->rb_bits = h->cluster_bits + 3 - h->refcount_order;
	if (!raw || !t->e) {
		free(raw);
		return img_error(k->img, -ENOMEM, "out of memory");
	}
	ret = img_read_meta(k->img, "refcount table", raw, n * 8,
			    h->reftable_offset);
	for (uint64_t i = 0; ret == 0 && i < n; i++)
		t->e[i] = get_be64(raw + 8 * i) & ~QCOW2_REFTABLE_RESERVED;
	free(raw);
	return ret;
}

int q2d_write_meta(struct q2demote *k, const char *what, const void *buf,
		      size_t len, uint64_t off)
{
	int ret = img_io_pwrite(k->img->io, buf, len, off);

	if (ret < 0)
		return img_error(k->img, ret, "cannot write %s at 0x%llx: %s",
				 what, (unsigned long long)off,
				 img_strerror(ret));
	return 0;
}

/* ACT_ZSTD: a zstd cluster inflated into its new cluster (a->host).
 * ACT_ZLIB: a plain cluster deflated there (a->zlen set; 0 when that
 * is not smaller: nothing is written). */
static int recompress(struct q2demote *k, struct act *a)
{
	uint64_t cs = k->q->cluster_size;
	uint64_t inlen = a->kind == ACT_ZSTD ? a->clen : cs;
	uint8_t *in = malloc(inlen ? inlen : 1), *out = malloc(cs);
	int ret = in && out ? 0 : -ENOMEM, len = 0;

	if (ret == 0)
		ret = img_io_read_zfill(k->img->io, in, inlen, a->chost);
	if (ret == 0 && a->kind == ACT_ZSTD) {
		ret = img_decompress(IMG_COMPRESS_ZSTD, in, inlen, k->buf, cs);
		if (ret == 0)
			ret = img_io_pwrite(k->img->io, k->buf, cs, a->host);
	} else if (ret == 0) {
		/* worth it only if a sector is left unused */
		len = img_compress(IMG_COMPRESS_ZLIB, in, cs, out, cs - 512);
		if (len == -ENOSPC)
			len = 0;
		ret = len < 0 ? len : 0;
		if (ret == 0 && len > 0)
			ret = img_io_pwrite(k->img->io, out, (size_t)len, a->host);
		a->zlen = len > 0 ? (uint64_t)len : 0;
	}
	if (ret < 0)
		ret = img_error(k->img, ret,
				"cannot recompress the cluster at 0x%llx: %s",
				(unsigned long long)a->chost, img_strerror(ret));
	free(in);
	free(out);
	return ret;
}

/*
 * n new clusters at the end of the file, one after another, cluster i
 * counted refs[i] times; a range without a refcount block gets one right
 * after them. The blocks are written and flushed, then the refcount table
 * entries of new blocks, flushed: the new clusters are leaks at worst
 * until something names them. *first: the first new cluster's offset.
 */
int q2d_claim_clusters(struct q2demote *k, uint64_t n, const uint64_t *refs,
			  uint64_t *first_host)
{
	struct img_qcow2 *q = k->q;
	uint64_t cs = q->cluster_size, size, first, next, *newblk = NULL;
	unsigned cb = q->h.cluster_bits, order = q->h.refcount_order;
	struct rt t = { 0 };
	uint64_t nnew = 0;
	int ret = img_io_size(k->img->io, &size);

	if (ret < 0)
		return img_error(k->img, ret, "cannot get size: %s",
				 img_strerror(ret));
	ret = load_reftable(k, &t);
	if (ret < 0)
		goto out;
	first = (size + cs - 1) / cs;
	next = first + n;
	*first_host = first << cb;
	/* Ranges without a block: new blocks after the data, which may
	 * need blocks of their own (found by going on until none lacks). */
	for (uint64_t c = first; c < next; c++) {
		uint64_t b = c >> t.rb_bits, *p;

		if (b >= t.n) {
			ret = img_error(k->img, IMG_E_UNSUPPORTED,
					"the refcount table of '%s' would have to grow (not supported yet)",
					k->img->path);
			goto out;
		}
		if (t.e[b])
			continue;
		t.e[b] = next++ << cb;
		p = realloc(newblk, (nnew + 1) * sizeof(*newblk));
		if (!p) {
			ret = img_error(k->img, -ENOMEM, "out of memory");
			goto out;
		}
		newblk = p;
		newblk[nnew++] = b;
	}
	/* Refcounts, block by block; a new block counts itself. */
	for (uint64_t c = first; ret == 0 && c < next;) {
		uint64_t b = c >> t.rb_bits, blk = t.e[b];
		uint64_t end = img_min_u64(next, (b + 1) << t.rb_bits);
		int fresh = 0;

		for (uint64_t x = 0; x < nnew; x++)
			fresh |= newblk[x] == b;
		if (fresh)
			memset(k->buf, 0, cs);
		else
			ret = img_read_meta(k->img, "refcount block", k->buf, cs,
					    blk);
		for (; ret == 0 && c < end; c++)
			img_qcow2_refblock_set(k->buf, c & ((1ull << t.rb_bits) - 1),
					       order, c < first + n ?
					       refs[c - first] : 1);
		if (ret == 0)
			ret = q2d_write_meta(k, "refcount block", k->buf, cs, blk);
	}
	if (ret == 0)
		ret = img_check_flush(&k->c);
	for (uint64_t x = 0; ret == 0 && x < nnew; x++)
		ret = img_write_entry(&k->c, 0, "refcount table entry",
				      q->h.reftable_offset + newblk[x] * 8,
				      t.e[newblk[x]]);
	if (ret == 0 && nnew)
		ret = img_check_flush(&k->c);
	/* the reader's cached refcounts are stale now */
	free(q->reftable);
	q->reftable = NULL;
	q->reftable_entries = 0;
	img_tcache_free(q->refblock_cache);
	q->refblock_cache = NULL;
out:
	free(newblk);
	free(t.e);
	return ret;
}

/* The acts' new clusters: claimed (each counted as its table), then
 * zeros or their recompressed data written (flushed by the caller). */
static int allocate(struct q2demote *k)
{
	uint64_t cs = k->q->cluster_size, first = 0, *arefs;
	int ret;

	if (!k->allocs)
		return 0;
	arefs = malloc(k->allocs * sizeof(*arefs));
	if (!arefs)
		return img_error(k->img, -ENOMEM, "out of memory");
	for (size_t i = 0, j = 0; i < k->nacts; i++)
		if (new_cluster(&k->acts[i]))
			arefs[j++] = k->acts[i].refs ? k->acts[i].refs : 1;
	ret = q2d_claim_clusters(k, k->allocs, arefs, &first);
	free(arefs);
	if (ret == 0 && (ret = img_write_zeros(k->img->io, first,
					       k->allocs * cs)) < 0)
		ret = img_error(k->img, ret, "cannot write zero clusters at 0x%llx: %s",
				(unsigned long long)first, img_strerror(ret));
	for (size_t i = 0, j = 0; ret == 0 && i < k->nacts; i++)
		if (new_cluster(&k->acts[i]))
			k->acts[i].host = first + j++ * cs;
	for (size_t i = 0; ret == 0 && i < k->nacts; i++)
		if (k->acts[i].kind == ACT_ZSTD || k->acts[i].kind == ACT_ZLIB)
			ret = recompress(k, &k->acts[i]);
	return ret;
}

/* Preallocated zero clusters get their zeros, before any flag goes. */
static int zero_in_place(struct q2demote *k)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < k->nacts; i++) {
		uint64_t host = k->acts[i].old & QCOW2_OFFSET_MASK;

		if (k->acts[i].kind != ACT_IN_PLACE)
			continue;
		ret = img_write_zeros(k->img->io, host, k->q->cluster_size);
		if (ret < 0)
			ret = img_error(k->img, ret,
					"cannot write zeros at 0x%llx: %s",
					(unsigned long long)host,
					img_strerror(ret));
	}
	return ret;
}

static uint64_t new_entry(const struct act *a)
{
	switch (a->kind) {
	case ACT_UNALLOC:
		return 0;
	case ACT_IN_PLACE:
		return a->old & ~QCOW2_OFLAG_ZERO;
	case ACT_ZLIB: {
		unsigned shift = 62 - (a->cb - 8);
		uint64_t extra = (a->zlen - 1) / 512;

		if (!a->zlen)   /* not smaller: stays plain */
			return a->chost | (a->refs == 1 ? QCOW2_OFLAG_COPIED : 0);
		return QCOW2_OFLAG_COMPRESSED | extra << shift | a->host;
	}
	default:
		return a->host | (a->refs == 1 ? QCOW2_OFLAG_COPIED : 0);
	}
}

/* The reader's cached L2 tables are stale after tables changed. */
void q2d_reset_l2_cache(struct q2demote *k)
{
	struct img_qcow2 *q = k->q;

	img_tcache_free(q->l2_cache);
	q->l2_cache = img_tcache_new(q->cluster_size, 16);
	if (q->l2_cache)
		img_tcache_past_eof_zeros(q->l2_cache);
	q->l2 = NULL;
	q->l2_offset = 0;
}

/* Each L2 table with zero entries read, changed and written whole. */
static int rewrite_tables(struct q2demote *k)
{
	uint64_t cs = k->q->cluster_size;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < k->nacts;) {
		uint64_t t = k->acts[i].entry_off / cs * cs;

		ret = img_cancel_point(k->img, k->o->cancel);
		if (ret == 0)
			ret = img_read_meta(k->img, "L2 table", k->buf, cs, t);
		for (; ret == 0 && i < k->nacts &&
		       k->acts[i].entry_off / cs * cs == t; i++)
			put_be64(k->buf + (k->acts[i].entry_off - t),
				 new_entry(&k->acts[i]));
		if (ret == 0)
			ret = q2d_write_meta(k, "L2 table", k->buf, cs, t);
	}
	if (ret == 0)
		ret = img_check_flush(&k->c);
	q2d_reset_l2_cache(k);
	return ret;
}

/* ---- the header ----------------------------------------------------------- */

/* A header field of 8 bytes (offset off), written and flushed. */
static int set_field(struct q2demote *k, const char *what, uint64_t off,
		     uint64_t v)
{
	int ret = img_write_entry(&k->c, 0, what, off, v);

	return ret < 0 ? ret : img_check_flush(&k->c);
}

/*
 * Cluster 0 rebuilt: version (2: the 72-byte header, no feature fields),
 * the extensions kept (backing format, unknown ones; the feature name
 * table unless keep_names, bitmaps and data file never), the end mark,
 * the backing file name; written in one write over what was there.
 */
int q2d_write_header(struct q2demote *k, int version, int keep_names)
{
	struct img_qcow2 *q = k->q;
	const struct img_qcow2_header *h = &q->h;
	uint64_t cs = q->cluster_size, len = version >= 3 ? h->header_length :
							    QCOW2_V2_HEADER_LEN;
	uint64_t pos = h->header_length, old_end = h->header_length, name_at = 0;
	uint64_t end = h->backing_offset ? h->backing_offset : cs;
	uint8_t *n = calloc(1, cs);
	int ret;

	if (!n)
		return img_error(k->img, -ENOMEM, "out of memory");
	/* as it is now: repairs may have moved the refcount table */
	ret = img_io_read_zfill(k->img->io, k->hdr, cs, 0);
	if (ret < 0) {
		free(n);
		return img_error(k->img, ret, "cannot read the header: %s",
				 img_strerror(ret));
	}
	memcpy(n, k->hdr, len);
	put_be32(n + 4, (uint32_t)version);
	if (version >= 3) {
		/* the feature fields as they are now */
		put_be64(n + 72, h->incompat);
		put_be64(n + 80, h->compat);
		put_be64(n + 88, h->autoclear);
		if (len > 104)
			n[104] = h->compression_type;
	}
	/* the tables as they are now */
	put_be32(n + 36, h->l1_size);
	put_be64(n + 40, h->l1_offset);
	put_be64(n + 48, h->reftable_offset);
	put_be32(n + 56, h->reftable_clusters);
	put_be32(n + 60, h->nb_snapshots);
	put_be64(n + 64, h->snapshots_offset);
	while (pos + 8 <= end) {
		uint32_t type = get_be32(k->hdr + pos), elen = get_be32(k->hdr + pos + 4);
		uint64_t total = 8 + img_qcow2_align8(elen);
		int keep = version >= 3 ||
			   (type != QCOW2_EXT_DATA_FILE && type != QCOW2_EXT_FDE);

		if (type == QCOW2_EXT_BITMAPS)
			keep = !!(h->autoclear & QCOW2_AUTOCLEAR_BITMAPS);
		if (type == QCOW2_EXT_DATA_FILE)
			keep = q->has_data_file;
		if (type == QCOW2_EXT_FEATURES)
			keep = keep_names;

		if (type == QCOW2_EXT_END || total > end - pos)
			break;
		if (keep && len + total + 8 <= cs) {
			memcpy(n + len, k->hdr + pos, total);
			len += total;
		}
		pos += total;
	}
	old_end = pos + 8;
	len += 8;       /* the end mark: zeros */
	if (h->backing_offset && h->backing_size) {
		if (len + h->backing_size > cs) {
			free(n);
			return img_error(k->img, IMG_E_UNSUPPORTED,
					 "the header of '%s' does not fit its first cluster",
					 k->img->path);
		}
		memcpy(n + len, k->hdr + h->backing_offset, h->backing_size);
		put_be64(n + 8, len);
		name_at = len;
		old_end = h->backing_offset + h->backing_size;
		len += h->backing_size;
	}
	ret = img_check_flush(&k->c);
	if (ret == 0)
		ret = q2d_write_meta(k, "header", n, img_max_u64(len, old_end), 0);
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret == 0) {
		memcpy(k->hdr, n, cs);
		/* where the next rewrite finds the name */
		if (name_at)
			q->h.backing_offset = name_at;
		if (version < 3)
			q->h.header_length = QCOW2_V2_HEADER_LEN;
	}
	free(n);
	return ret;
}

static int read_header(struct q2demote *k)
{
	uint64_t cs = k->q->cluster_size, pos = k->q->h.header_length;
	uint64_t end = k->q->h.backing_offset ? k->q->h.backing_offset : cs;
	int ret;

	k->hdr = malloc(cs);
	if (!k->hdr)
		return img_error(k->img, -ENOMEM, "out of memory");
	ret = img_io_read_zfill(k->img->io, k->hdr, cs, 0);
	if (ret < 0)
		return img_error(k->img, ret, "cannot read the header: %s",
				 img_strerror(ret));
	while (pos + 8 <= end) {
		uint32_t type = get_be32(k->hdr + pos), elen = get_be32(k->hdr + pos + 4);

		if (type == QCOW2_EXT_END)
			break;
		k->has_feature_table |= type == QCOW2_EXT_FEATURES;
		pos += 8 + img_qcow2_align8(elen);
	}
	return 0;
}

/* ---- what the image uses -------------------------------------------------- */

static struct img_feature *cannot(struct img_feature *f, const char *why)
{
	f->removable = 0;
	f->why_not = why;
	return f;
}

static void list_features(struct q2demote *k, struct img_demote_result *r)
{
	const struct img_qcow2 *q = k->q;
	const struct img_qcow2_header *h = &q->h;
	uint64_t cs = q->cluster_size;
	struct img_feature *f;

	r->version_before = h->version >= 3 ? "1.1" : "0.10";
	r->version_after = "0.10";
	if (h->version < 3)
		return;
	if (h->incompat & QCOW2_INCOMPAT_CORRUPT)
		cannot(img_demote_add(r, "corrupt", IMG_FEATURE_INCOMPATIBLE),
		       "repair the image first: img-check -r all");
	if (k->was_dirty) {
		f = img_demote_add(r, "dirty", IMG_FEATURE_INCOMPATIBLE);
		f->bytes = 8;
		snprintf(f->note, sizeof(f->note),
			 "the refcounts are repaired first");
	}
	if (k->nacts > k->compressed || k->unalloc) {
		uint64_t zeros = k->unalloc + k->nacts - k->compressed;
		uint64_t stored = k->allocs - k->compressed;

		f = img_demote_add(r, "zero-clusters", IMG_FEATURE_INCOMPATIBLE);
		f->entries = zeros;
		f->growth = stored * cs;
		f->bytes = (stored + k->in_place + k->tables) * cs;
		snprintf(f->note, sizeof(f->note),
			 "%llu unallocated, %llu preallocated written as zeros, %llu stored as zero clusters",
			 (unsigned long long)(zeros - stored - k->in_place),
			 (unsigned long long)k->in_place,
			 (unsigned long long)stored);
	}
	if (h->compression_type != 0) {
		f = img_demote_add(r, "zstd", IMG_FEATURE_INCOMPATIBLE);
		f->entries = k->compressed;
		f->growth = k->compressed * cs;     /* at most */
		f->bytes = f->growth + 8;
		snprintf(f->note, sizeof(f->note),
			 "%llu compressed clusters recompressed with zlib (or stored plain)",
			 (unsigned long long)k->compressed);
	}
	if (q->extended_l2) {
		uint64_t g = 0, jobs = 0;

		f = img_demote_add(r, "extended-l2", IMG_FEATURE_INCOMPATIBLE);
		if (q2d_unextend_cost(k, 0, &g, &jobs) == 0) {
			f->entries = jobs;
			f->bytes = f->growth = g;
			snprintf(f->note, sizeof(f->note),
				 "%llu partly allocated clusters written whole",
				 (unsigned long long)jobs);
		}
	}
	if (q->has_data_file) {
		uint64_t g = 0, jobs = 0;

		f = img_demote_add(r, "external-data-file",
				   IMG_FEATURE_INCOMPATIBLE);
		if (q2d_unextend_cost(k, 1, &g, &jobs) == 0) {
			f->entries = jobs;
			f->bytes = f->growth = g;
			snprintf(f->note, sizeof(f->note),
				 "%llu clusters moved in from '%s' (left untouched)",
				 (unsigned long long)jobs, q->data_file_name);
		}
	}
	if (h->refcount_order != 4) {
		uint64_t g = 0;

		f = img_demote_add(r, "refcount-bits", IMG_FEATURE_INCOMPATIBLE);
		if (img_qcow2_rewidth_cost(k->img, &g) == 0)
			f->bytes = f->growth = g;
		snprintf(f->note, sizeof(f->note), "%u -> 16 bits",
			 1u << h->refcount_order);
	}
	if (h->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) {
		f = img_demote_add(r, "lazy-refcounts", IMG_FEATURE_COMPATIBLE);
		f->bytes = 8;
	}
	if (k->has_feature_table) {
		f = img_demote_add(r, "feature-name-table", IMG_FEATURE_COMPATIBLE);
		f->bytes = cs;
	}
	if (q->nb_bitmaps || (h->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
		size_t used = 0;

		f = img_demote_add(r, "bitmaps", IMG_FEATURE_AUTOCLEAR);
		f->entries = k->img->nbitmaps;
		f->bytes = 8;
		for (int i = 0; i < k->img->nbitmaps && used < sizeof(f->note); i++)
			used += (size_t)snprintf(f->note + used,
						 sizeof(f->note) - used, "%s'%s'",
						 i ? ", " : "dropped: ",
						 k->img->bitmaps[i].name);
	}
	if (h->autoclear & QCOW2_AUTOCLEAR_DATA_RAW) {
		f = img_demote_add(r, "raw-data-file", IMG_FEATURE_AUTOCLEAR);
		snprintf(f->note, sizeof(f->note),
			 "goes with the external data file");
	}
	f = img_demote_add(r, "version-3", IMG_FEATURE_INCOMPATIBLE);
	f->bytes = cs;
	snprintf(f->note, sizeof(f->note), "compat 1.1 -> 0.10");
	for (int i = 0; i < r->n - 1; i++)
		if (!r->f[i].removable && r->f[i].cls != IMG_FEATURE_COMPATIBLE)
			cannot(f, "a feature it depends on cannot be removed");
}

static struct img_feature *find(struct img_demote_result *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->f[i].name, name))
			return &r->f[i];
	return NULL;
}

/* Whether feature name is used and to be removed (refused if it cannot). */
static int wanted(struct q2demote *k, struct img_demote_result *r,
		  const char *name, int *err)
{
	struct img_feature *f = find(r, name);

	if (!f || *err)
		return 0;
	if (!img_demote_wanted(k->o, name) &&
	    !img_demote_wanted(k->o, "version-3"))
		return 0;
	if (!f->removable)
		*err = img_error(k->img, IMG_E_UNSUPPORTED, "%s: %s", name,
				 f->why_not);
	return !*err;
}

/*
 * Once the header no longer says zstd, the clusters stored plain in its
 * place are deflated with zlib where that makes them smaller: new
 * clusters, then the tables, then the plain ones given back as leaks.
 */
static int zlib_pass(struct q2demote *k)
{
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < k->nacts; i++) {
		struct act a = k->acts[i];

		if (a.kind != ACT_ZSTD)
			continue;
		a.kind = ACT_ZLIB;
		a.chost = a.host;
		a.host = 0;
		k->acts[n++] = a;
	}
	k->nacts = n;
	count_acts(k);
	if (!n)
		return 0;
	/* Every one gets a new cluster and is deflated once; one that does
	 * not shrink keeps its plain cluster, the new one is given back
	 * with the rest. */
	ret = img_check_flush(&k->c);
	if (ret == 0)
		ret = allocate(k);
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret == 0)
		ret = rewrite_tables(k);
	return ret == 0 ? q2d_exact_refcounts(k) : ret;
}

/* After a rebuild the entries found before are named no more: found
 * again in the new tables. */
static int refind(struct q2demote *k)
{
	return find_zero_clusters(k);
}

/* ---- the whole job -------------------------------------------------------- */

static int do_demote(struct q2demote *k, struct img_demote_result *r)
{
	struct img_qcow2 *q = k->q;
	int err = 0, ret, all = img_demote_wanted(k->o, "version-3");
	int w_zero = wanted(k, r, "zero-clusters", &err);
	int w_bitmaps = wanted(k, r, "bitmaps", &err);
	int w_lazy = wanted(k, r, "lazy-refcounts", &err);
	int w_names = wanted(k, r, "feature-name-table", &err);
	int w_dirty = wanted(k, r, "dirty", &err);
	int w_zstd = wanted(k, r, "zstd", &err);
	int w_refbits = wanted(k, r, "refcount-bits", &err);
	struct img_feature *f;

	if (err)
		return err;
	if (all)
		for (int i = 0; i < r->n; i++)
			if (!r->f[i].removable)
				return img_error(k->img, IMG_E_UNSUPPORTED,
						 "%s: %s", r->f[i].name,
						 r->f[i].why_not);
	uint64_t growth = 0;

	for (int i = 0; i < r->n; i++)
		if (img_demote_wanted(k->o, r->f[i].name) || all)
			growth += r->f[i].growth;
	ret = img_demote_room(k->img, r, growth);
	if (ret < 0)
		return ret;
	if (w_dirty && (f = find(r, "dirty")))
		f->removed = !(q->h.incompat & QCOW2_INCOMPAT_DIRTY);
	if (w_bitmaps) {
		/* Without the autoclear bit the directory means nothing: its
		 * clusters are leaks, which the repair then gives back. */
		ret = set_field(k, "header (autoclear features)", 88,
				q->h.autoclear & ~QCOW2_AUTOCLEAR_BITMAPS);
		if (ret < 0)
			return ret;
		q->h.autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
		q->nb_bitmaps = 0;
		ret = q2d_exact_refcounts(k);
		if (ret < 0)
			return ret;
		find(r, "bitmaps")->removed = 1;
		if (!all)
			ret = q2d_write_header(k, 3, !w_names);
		if (ret < 0)
			return ret;
	}
	if (w_refbits) {
		ret = img_qcow2_rewidth(&k->c);
		if (ret < 0)
			return ret;
		find(r, "refcount-bits")->removed = 1;
	}
	if (wanted(k, r, "external-data-file", &err) ||
	    wanted(k, r, "raw-data-file", &err)) {
		ret = q2d_unextend(k, 1);
		if (ret == 0)
			ret = refind(k);
		if (ret < 0)
			return ret;
		find(r, "external-data-file")->removed = 1;
		if (find(r, "raw-data-file"))
			find(r, "raw-data-file")->removed = 1;
		if (find(r, "extended-l2"))
			find(r, "extended-l2")->removed = 1;
	}
	if (wanted(k, r, "extended-l2", &err) && q->extended_l2) {
		ret = q2d_unextend(k, 0);
		if (ret == 0)
			ret = refind(k);
		if (ret < 0)
			return ret;
		find(r, "extended-l2")->removed = 1;
	}
	if (err)
		return err;
	if (w_zero || w_zstd) {
		keep_acts(k, w_zero, w_zstd);
		ret = w_zero ? clear_unalloc(k) : 0;
		if (ret == 0)
			ret = allocate(k);
		if (ret == 0)
			ret = zero_in_place(k);
		if (ret == 0)
			ret = img_check_flush(&k->c);
		if (ret == 0)
			ret = rewrite_tables(k);
		if (ret == 0)
			ret = q2d_exact_refcounts(k);
		if (ret < 0)
			return ret;
		if (w_zero)
			find(r, "zero-clusters")->removed = 1;
	}
	if (w_zstd && !all) {
		q->h.incompat &= ~QCOW2_INCOMPAT_COMPRESSION;
		q->h.compression_type = 0;
		ret = q2d_write_header(k, 3, !w_names && find(r, "feature-name-table"));
		if (ret == 0)
			ret = zlib_pass(k);
		if (ret < 0)
			return ret;
		find(r, "zstd")->removed = 1;
	}
	if (w_lazy && !all) {
		ret = set_field(k, "header (compatible features)", 80,
				q->h.compat & ~QCOW2_COMPAT_LAZY_REFCOUNTS);
		if (ret < 0)
			return ret;
		q->h.compat &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
		find(r, "lazy-refcounts")->removed = 1;
	}
	if (w_names && !all) {
		ret = q2d_write_header(k, 3, 0);
		if (ret < 0)
			return ret;
		find(r, "feature-name-table")->removed = 1;
	}
	if (all) {
		/* The refcounts are exact: the v2 header, last, in one write. */
		ret = q2d_write_header(k, 2, 0);
		if (ret < 0)
			return ret;
		q->h.version = 2;
		q->h.compression_type = 0;
		q->h.incompat = q->h.compat = q->h.autoclear = 0;
		if (w_zstd)
			ret = zlib_pass(k);
		if (ret < 0)
			return ret;
		for (int i = 0; i < r->n; i++)
			r->f[i].removed = 1;
		k->img->dirty = 0;
	}
	return 0;
}

int img_qcow2_demote(struct img *img, const struct img_demote_opts *o,
		     struct img_demote_result *r)
{
	struct q2demote k = { .img = img, .q = img->priv, .o = o };
	int ret;

	k.c = (struct img_check_ctx){ .img = img, .res = &k.res,
				      .msg = o->msg, .msg_arg = o->msg_arg,
				      .cancel = o->cancel };
	if (img->encrypted)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "demoting encrypted images is not supported");
	k.buf = malloc(k.q->cluster_size);
	if (!k.buf)
		return img_error(img, -ENOMEM, "cannot allocate a cluster buffer");
	ret = read_header(&k);
	/* A corrupt image is refused before anything else (a dirty one is
	 * repaired first when writing, as QEMU repairs one it opens; its
	 * stored refcounts mean nothing before). */
	if (ret == 0 && k.q->h.version >= 3) {
		int dirty = !!(k.q->h.incompat & QCOW2_INCOMPAT_DIRTY);

		k.was_dirty = dirty;
		int corrupt = !!(k.q->h.incompat & QCOW2_INCOMPAT_CORRUPT);

		if (!r->dry_run && !corrupt)
			ret = q2d_exact_refcounts(&k);
		else if (!dirty)
			ret = run_check(&k, IMG_CHECK_NO_FIX);
	}
	if (ret == 0 && k.q->h.version >= 3)
		ret = find_zero_clusters(&k);
	if (ret == 0)
		list_features(&k, r);
	if (ret == 0 && k.q->h.version < 3) {
		r->oldest = 1;
		/* A run killed after the version 2 header finishes here: the
		 * leaks it left are given back (nothing else is touched). */
		if (!r->dry_run && run_check(&k, IMG_CHECK_NO_FIX) == 0 &&
		    k.res.leaks)
			ret = run_check(&k, IMG_CHECK_FIX_LEAKS);
	}
	if (ret == 0 && !r->dry_run && k.q->h.version >= 3)
		ret = do_demote(&k, r);
	if (ret == 0 && k.q->h.version < 3)
		r->version_after = "0.10";
	else if (ret == 0 && !r->dry_run)
		r->version_after = k.q->h.version < 3 ? "0.10" : "1.1";
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	free(k.acts);
	free(k.seen);
	free(k.hdr);
	free(k.buf);
	return ret;
}
