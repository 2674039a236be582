/* qcow2_wrefs.c: the qcow2 writer's refcounts: new clusters counted as they are claimed, one refcount block in memory, dropped references applied in batches, the table grown at finish. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "qcow2_write.h"

#define Q2W_FRESH 1ull          /* reftable entry: block not yet written */
#define FREED_BATCH 65536       /* dropped references held before applying */
#define MAX_REFTABLE_ENTRIES (QCOW2_MAX_REFTABLE_BYTES / 8)

/* ---- the refcount table ---------------------------------------------- */

static uint64_t block_host(const struct q2_writer *w, uint64_t b)
{
	return w->rt.e[b] & ~QCOW2_REFTABLE_RESERVED;
}

static int block_missing(const struct q2_writer *w, uint64_t b)
{
	return b >= w->rt.n || !block_host(w, b);
}

/* Every block the table names must lie in the old file: what lies
 * beyond is taken for our own allocations. */
static int check_reftable(struct img *img, struct q2_writer *w)
{
	for (uint64_t b = 0; b < w->rt.n; b++) {
		uint64_t host = block_host(w, b);

		if (!host)
			continue;
		if (host & (w->cs - 1) || host + w->cs > w->first_new)
			return img_error(img, IMG_E_CORRUPT,
					 "refcount block at 0x%llx: offset %s",
					 (unsigned long long)host,
					 host & (w->cs - 1) ? "not cluster aligned" :
							      "beyond end of file");
		w->rt.used = b + 1;
	}
	return 0;
}

int img_q2w_refs_begin(struct img *img, struct q2_writer *w)
{
	struct q2w_reftable *rt = &w->rt;
	uint64_t n = (uint64_t)w->q->h.reftable_clusters * w->cs / 8;
	unsigned order = w->q->h.refcount_order;
	int ret;

	w->refmax = order >= 5 ? UINT32_MAX : (1ull << (1u << order)) - 1;
	w->block_shift = w->cb + 3 - order;
	w->blk_index = Q2W_NONE;
	w->blk = malloc(w->cs);
	rt->e = malloc(n * 8);
	if (!w->blk || !rt->e)
		return img_error(img, -ENOMEM, "out of memory");
	rt->n = rt->disk_n = rt->lo = n;
	rt->offset = w->q->h.reftable_offset;
	rt->clusters = w->q->h.reftable_clusters;
	ret = img_read_meta(img, "refcount table", rt->e, n * 8, rt->offset);
	if (ret < 0)
		return ret;
	/* decoded in place: each entry from its own 8 bytes */
	for (uint64_t i = 0; i < n; i++)
		rt->e[i] = get_be64((const uint8_t *)&rt->e[i]);
	return check_reftable(img, w);
}

/* Name the block for reftable slot b, growing the table in memory. */
static int set_block_host(struct img *img, struct q2_writer *w, uint64_t b,
			  uint64_t e)
{
	struct q2w_reftable *rt = &w->rt;

	if (b >= MAX_REFTABLE_ENTRIES)
		return img_error(img, IMG_E_TOOBIG,
				 "refcount table would need more than %u bytes",
				 (unsigned)QCOW2_MAX_REFTABLE_BYTES);
	if (b >= rt->n) {
		uint64_t n = rt->n ? rt->n * 2 : 512, *t;

		while (n <= b)
			n *= 2;
		n = img_min_u64(n, MAX_REFTABLE_ENTRIES);
		t = realloc(rt->e, n * sizeof(*t));
		if (!t)
			return img_error(img, -ENOMEM, "out of memory");
		memset(t + rt->n, 0, (n - rt->n) * sizeof(*t));
		rt->e = t;
		rt->n = n;
	}
	rt->e[b] = e;
	rt->lo = img_min_u64(rt->lo, b);
	rt->hi = b + 1 > rt->hi ? b + 1 : rt->hi;
	rt->used = b + 1 > rt->used ? b + 1 : rt->used;
	return 0;
}

/* ---- the refcount block at hand -------------------------------------- */

static int put_block(struct img *img, struct q2_writer *w)
{
	int ret;

	if (w->blk_index == Q2W_NONE || !w->blk_changed)
		return 0;
	ret = img_q2w_write_at(img, img->io, "refcount block", w->blk, w->cs,
			       block_host(w, w->blk_index));
	if (ret == 0) {
		w->rt.e[w->blk_index] &= ~Q2W_FRESH;
		w->blk_changed = 0;
	}
	return ret;
}

/* Make block b (which exists) the one at hand: a fresh one starts empty. */
static int get_block(struct img *img, struct q2_writer *w, uint64_t b)
{
	int ret;

	if (b == w->blk_index)
		return 0;
	ret = put_block(img, w);
	if (ret < 0)
		return ret;
	w->blk_index = Q2W_NONE;
	if (w->rt.e[b] & Q2W_FRESH) {
		memset(w->blk, 0, w->cs);
	} else {
		ret = img_read_meta(img, "refcount block", w->blk, w->cs,
				    block_host(w, b));
		if (ret < 0)
			return ret;
	}
	w->blk_index = b;
	return 0;
}

static uint64_t slot_in_block(const struct q2_writer *w, uint64_t cluster)
{
	return cluster & ((1ull << w->block_shift) - 1);
}

/* Clusters [c, end) counted once each (they were free). */
static int count_new(struct img *img, struct q2_writer *w, uint64_t c,
		     uint64_t end)
{
	unsigned order = w->q->h.refcount_order;
	int ret = 0;

	while (ret == 0 && c < end) {
		uint64_t b = c >> w->block_shift;
		uint64_t stop = img_min_u64(end, (b + 1) << w->block_shift);

		ret = get_block(img, w, b);
		for (; ret == 0 && c < stop; c++)
			img_qcow2_refblock_set(w->blk, slot_in_block(w, c), order,
					       1);
		w->blk_changed = 1;
	}
	return ret;
}

/* ---- claiming space at the end of the file --------------------------- */

/*
 * Take host bytes up to end. The whole clusters this adds are counted;
 * the refcount blocks they lack go right after them (never inside a run
 * of data) and are counted too, as are the blocks those need.
 */
static int claim(struct img *img, struct q2_writer *w, uint64_t end)
{
	uint64_t fresh = q2w_round_up(w->next, w->cs) >> w->cb;
	uint64_t stop = q2w_round_up(end, w->cs) >> w->cb, grown = stop;
	uint64_t limit = (QCOW2_OFFSET_MASK + 1) >> w->cb;
	int ret;

	for (uint64_t b = fresh >> w->block_shift;
	     stop > fresh && b <= (stop - 1) >> w->block_shift; b++) {
		if (!block_missing(w, b))
			continue;
		if (stop >= limit)
			return img_error(img, IMG_E_TOOBIG,
					 "cannot allocate a refcount block at 0x%llx: image file too large",
					 (unsigned long long)(stop << w->cb));
		ret = set_block_host(img, w, b, stop << w->cb | Q2W_FRESH);
		if (ret < 0)
			return ret;
		stop++;
	}
	w->next = stop > grown ? stop << w->cb : end;
	return count_new(img, w, fresh, stop);
}

int img_q2w_alloc(struct img *img, struct q2_writer *w, uint64_t n,
		  uint64_t *host)
{
	uint64_t start = q2w_round_up(w->next, w->cs), end;
	int ret;

	if (img_add_overflows(start, n << w->cb, &end) ||
	    end > QCOW2_OFFSET_MASK + 1)
		return img_error(img, IMG_E_TOOBIG,
				 "cannot allocate %llu clusters at 0x%llx: image file too large",
				 (unsigned long long)n,
				 (unsigned long long)start);
	ret = claim(img, w, end);
	if (ret == 0)
		*host = start;
	return ret;
}

int img_q2w_stream_start(struct img *img, struct q2_writer *w,
			 uint64_t *host)
{
	uint64_t c = w->next >> w->cb;
	int ret;

	*host = w->next;
	if (!(w->next & (w->cs - 1)))
		return 0;
	ret = get_block(img, w, c >> w->block_shift);
	if (ret < 0)
		return ret;
	if (img_qcow2_refblock_get(w->blk, slot_in_block(w, c),
				   w->q->h.refcount_order) >= w->refmax)
		*host = q2w_round_up(w->next, w->cs);
	return 0;
}

int img_q2w_add_stream(struct img *img, struct q2_writer *w, uint64_t host,
		       uint64_t end)
{
	unsigned order = w->q->h.refcount_order;
	uint64_t c = host >> w->cb, v;
	int ret;

	if (host & (w->cs - 1)) {
		/* the partly used cluster: stream_start made it the one at hand */
		ret = get_block(img, w, c >> w->block_shift);
		if (ret < 0)
			return ret;
		v = img_qcow2_refblock_get(w->blk, slot_in_block(w, c), order);
		img_qcow2_refblock_set(w->blk, slot_in_block(w, c), order,
				       v + 1);
		w->blk_changed = 1;
	}
	return claim(img, w, end);
}

/* ---- references dropped from old clusters ---------------------------- */

int img_q2w_drop_ref(struct img *img, struct q2_writer *w, uint64_t cluster)
{
	if (w->nfreed == w->freed_cap) {
		uint64_t cap = w->freed_cap ? w->freed_cap * 2 : 256;
		uint64_t *f = realloc(w->freed, cap * sizeof(*f));

		if (!f)
			return img_error(img, -ENOMEM, "out of memory");
		w->freed = f;
		w->freed_cap = cap;
	}
	w->freed[w->nfreed++] = cluster;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Take the dropped references off, block by block in order. */
static int apply_freed(struct img *img, struct q2_writer *w)
{
	unsigned order = w->q->h.refcount_order;
	int ret = 0;

	if (!w->nfreed)
		return 0;
	qsort(w->freed, w->nfreed, sizeof(*w->freed), cmp_u64);
	for (uint64_t i = 0; ret == 0 && i < w->nfreed; i++) {
		uint64_t c = w->freed[i], b = c >> w->block_shift, v;

		if (block_missing(w, b))
			return img_error(img, IMG_E_CORRUPT,
					 "refcount block %llu missing for clusters in use",
					 (unsigned long long)b);
		ret = get_block(img, w, b);
		if (ret < 0)
			break;
		v = img_qcow2_refblock_get(w->blk, slot_in_block(w, c), order);
		if (!v)
			return img_error(img, IMG_E_CORRUPT,
					 "cluster at 0x%llx is released but its refcount is already 0",
					 (unsigned long long)(c << w->cb));
		img_qcow2_refblock_set(w->blk, slot_in_block(w, c), order,
				       v - 1);
		w->blk_changed = 1;
	}
	w->nfreed = 0;
	return ret;
}

int img_q2w_refs_checkpoint(struct img *img, struct q2_writer *w)
{
	return w->nfreed >= FREED_BATCH ? apply_freed(img, w) : 0;
}

/* ---- finish ---------------------------------------------------------- */

/* Clusters a table of t clusters at the end would bring: t plus the
 * blocks missing for them, and those blocks' own. */
static uint64_t table_growth(const struct q2_writer *w, uint64_t t)
{
	uint64_t fresh = q2w_round_up(w->next, w->cs) >> w->cb, m = 0;

	for (;;) {
		uint64_t m2 = 0, last = (fresh + t + m - 1) >> w->block_shift;

		for (uint64_t b = fresh >> w->block_shift; b <= last; b++)
			m2 += block_missing(w, b);
		if (m2 == m)
			return t + m;
		m = m2;
	}
}

/* Entries the table needs once it holds blocks up to cluster end. */
static uint64_t entries_for(const struct q2_writer *w, uint64_t end)
{
	uint64_t nb = ((end - 1) >> w->block_shift) + 1;

	return nb > w->rt.used ? nb : w->rt.used;
}

/*
 * A table too small for the blocks in use is replaced by a bigger one at
 * the end of the file; its size counts itself and the blocks it needs
 * (found as a fixed point). The old table's clusters are released.
 */
static int grow_reftable(struct img *img, struct q2_writer *w)
{
	struct q2w_reftable *rt = &w->rt;
	uint64_t fresh = q2w_round_up(w->next, w->cs) >> w->cb, t, host;
	int ret;

	if (rt->used <= rt->disk_n)
		return 0;
	t = img_div_up(rt->used * 8, w->cs);
	for (;;) {
		uint64_t need = entries_for(w, fresh + table_growth(w, t));
		uint64_t t2 = img_div_up(need * 8, w->cs);

		if (t2 <= t)
			break;
		t = t2;
	}
	if (t * w->cs > QCOW2_MAX_REFTABLE_BYTES)
		return img_error(img, IMG_E_TOOBIG,
				 "refcount table would need %llu clusters (too large)",
				 (unsigned long long)t);
	ret = img_q2w_alloc(img, w, t, &host);
	if (ret == 0 && rt->used * 8 > t * w->cs)
		ret = img_error(img, -EINVAL,
				"refcount table of %llu clusters too small for %llu blocks",
				(unsigned long long)t,
				(unsigned long long)rt->used);
	for (uint64_t k = 0; ret == 0 && k < rt->clusters; k++)
		ret = img_q2w_drop_ref(img, w, (rt->offset >> w->cb) + k);
	if (ret < 0)
		return ret;
	rt->offset = host;
	rt->clusters = t;
	rt->moved = 1;
	return 0;
}

/* The table: a moved one whole, then the header points at it; else the
 * entries that changed. */
static int put_reftable(struct img *img, struct q2_writer *w)
{
	const struct q2w_reftable *rt = &w->rt;
	uint64_t lo = rt->moved ? 0 : rt->lo;
	uint64_t hi = rt->moved ? rt->clusters * w->cs / 8 : rt->hi;
	uint8_t *buf, hdr[12];
	int ret;

	if (lo >= hi)
		return 0;
	buf = calloc(hi - lo, 8);
	if (!buf)
		return img_error(img, -ENOMEM, "out of memory");
	for (uint64_t i = lo; i < hi && i < rt->n; i++)
		put_be64(buf + (i - lo) * 8, rt->e[i] & ~Q2W_FRESH);
	ret = img_q2w_write_at(img, img->io, "refcount table", buf,
			       (hi - lo) * 8, rt->offset + lo * 8);
	free(buf);
	if (ret < 0 || !rt->moved)
		return ret;
	put_be64(hdr, rt->offset);
	put_be32(hdr + 8, (uint32_t)rt->clusters);
	ret = img_q2w_write_at(img, img->io, "header", hdr, sizeof(hdr),
			       Q2W_REFTABLE_FIELDS);
	if (ret == 0) {
		w->q->h.reftable_offset = rt->offset;
		w->q->h.reftable_clusters = (uint32_t)rt->clusters;
	}
	return ret;
}

/* The reader's refcount copies are stale now. */
static void forget_refcounts(struct img_qcow2 *q)
{
	free(q->reftable);
	q->reftable = NULL;
	q->reftable_entries = 0;
	img_tcache_free(q->refblock_cache);
	q->refblock_cache = NULL;
}

int img_q2w_settle_refcounts(struct img *img, struct q2_writer *w)
{
	int ret;

	ret = grow_reftable(img, w);
	if (ret == 0)
		ret = apply_freed(img, w);
	if (ret == 0)
		ret = put_block(img, w);
	if (ret == 0)
		ret = put_reftable(img, w);
	forget_refcounts(w->q);
	return ret;
}

void img_q2w_refs_end(struct q2_writer *w)
{
	free(w->rt.e);
	free(w->blk);
	free(w->freed);
}
