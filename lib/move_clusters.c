/* move_clusters.c: compacting a file by moving its last clusters down into free ones, in batches of ordered, crash-safe writes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "relocate.h"

/*
 * The moves are planned greedily (the last used cluster of the file goes
 * to the lowest free run below it, until the last one cannot move) and
 * carried out a batch at a time:
 *
 *   1. claim the refcounts of the new places (qcow2), then copy every
 *      cluster there (so a refcount block copied carries the claims);
 *   2. flush: the copies are durable, nothing references them yet;
 *   3. repoint every owner (tables first, then entries inside them);
 *   4. flush: the old places are unreferenced (refcounts released after).
 *
 * An interruption anywhere leaves each owner pointing at a complete copy;
 * the worst left behind is leaked clusters, which a rerun gives back.
 * Within a batch no destination is another move's source (sources lie
 * above every destination), so the moves are independent and may be
 * reordered: one-cluster moves are paired in ascending order at both ends,
 * so data that was in order stays in order.
 */

#define BATCH_MAX  65536u           /* moves planned at a time */
#define COPY_MAX   (4u << 20)       /* bytes copied per read/write */

struct move {
	uint64_t src, dst, n;
	uint64_t ref;
	uint8_t kind;
};

struct batch {
	struct move *m;
	size_t n;
};

/* The first run of n unreferenced clusters at or after first, ending by
 * limit; limit if there is none. */
static uint64_t free_run(const struct img_refs *r, uint64_t first,
			 uint64_t limit, uint64_t n)
{
	uint64_t len = 0;

	for (uint64_t cl = first; cl < limit; cl++) {
		len = r->count[cl] ? 0 : len + 1;
		if (len == n)
			return cl + 1 - n;
	}
	return limit;
}

/* The unit (a data cluster, or a whole table) that ends the used part of
 * the file, if it can move: *start and *n. *end is lowered past unused
 * clusters on the way. */
static int last_unit(struct img_check_ctx *c, const struct img_refs *r,
		     const struct img_owners *o,
		     const struct img_reloc_ops *ops, uint64_t first,
		     uint64_t *end, uint64_t *start, uint64_t *n)
{
	uint64_t last, at;

	while (*end > first && !r->count[*end - 1])
		(*end)--;
	if (*end <= first)
		return 0;
	last = *end - 1;
	if (r->count[last] != 1)
		return 0;
	if (o->kind[last] == IMG_OWN_DATA || o->kind[last] == IMG_OWN_REFBLOCK) {
		if (ops->spare && ops->spare(c, r, last))
			return 0;   /* let go of rather than moved */
		*start = last;
		*n = 1;
		return 1;
	}
	if (o->kind[last] == IMG_OWN_TABLE) {
		at = ops->table_at(c, o->ref[last]);
		*n = ops->table_clusters;
	} else if (o->kind[last] == IMG_OWN_ROOT) {
		ops->root_at(c, o->ref[last], &at, n);
	} else {
		return 0;
	}
	*start = at >> r->cluster_bits;
	if ((at & ((1ULL << r->cluster_bits) - 1)) || *start + *n != *end)
		return 0;
	for (uint64_t k = *start; k < *end; k++)
		if (r->count[k] != 1 || o->kind[k] != o->kind[last] ||
		    o->ref[k] != o->ref[last])
			return 0;
	return 1;
}

/* Record a move; in r the destination is taken at once (by a placeholder
 * owner, so nothing else lands there) and the source is free for the
 * planning (sources are never chosen as destinations in the same batch:
 * they lie above). */
static void plan_move(struct img_refs *r, struct img_owners *o,
		      struct batch *b, uint64_t start, uint64_t dst, uint64_t n)
{
	struct move *m = &b->m[b->n++];

	m->src = start;
	m->dst = dst;
	m->n = n;
	m->kind = o->kind[start];
	m->ref = o->ref[start];
	for (uint64_t k = 0; k < n; k++) {
		r->count[dst + k] = 1;
		o->kind[dst + k] = IMG_OWN_FIXED;
		r->count[start + k] = 0;
		o->kind[start + k] = IMG_OWN_NONE;
	}
}

/*
 * Plan a batch. Returns 1 when the next unit is a table whose gap below
 * is too small for it but may move past the end first (c->may_grow): the
 * caller carries out the batch, then that move alone (*grow = its start).
 */
static int plan_batch(struct img_check_ctx *c, struct img_refs *r,
		      struct img_owners *o, const struct img_reloc_ops *ops,
		      uint64_t first, struct batch *b, uint64_t *grow)
{
	uint64_t end = r->nclusters, start, n, dst;
	uint64_t low = first;     /* nothing below is free: destinations
				   * only fill up while planning */

	b->n = 0;
	while (b->n < BATCH_MAX &&
	       last_unit(c, r, o, ops, first, &end, &start, &n)) {
		while (low < start && r->count[low])
			low++;
		dst = free_run(r, low, start, n);
		if (dst < start) {
			plan_move(r, o, b, start, dst, n);
			end = start;
			continue;
		}
		if (n > 1 && start > first && c->may_grow &&
		    !r->count[start - 1]) {
			*grow = start;
			return 1;
		}
		/* A hole lower down, a data cluster right below the table:
		 * that cluster fills the hole, so the gap rises to the table
		 * (which then moves as above). */
		if (n > 1 && start > first + 1 && c->may_grow &&
		    r->count[start - 1] == 1 &&
		    o->kind[start - 1] == IMG_OWN_DATA &&
		    (dst = free_run(r, low, start - 1, 1)) < start - 1) {
			plan_move(r, o, b, start - 1, dst, 1);
			continue;
		}
		break;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_src(const void *a, const void *b)
{
	return cmp_u64(&((const struct move *)a)->src,
		       &((const struct move *)b)->src);
}

/* One-cluster moves: the lowest source to the lowest destination, and so
 * on (the greedy plan paired them the other way round). */
static int pair_in_order(struct img_check_ctx *c, struct batch *b)
{
	size_t singles = 0, j = 0;
	uint64_t *dst;

	for (size_t i = 0; i < b->n; i++)
		singles += b->m[i].n == 1;
	dst = malloc((singles ? singles : 1) * sizeof(*dst));
	if (!dst)
		return img_error(c->img, -ENOMEM, "out of memory");
	for (size_t i = 0; i < b->n; i++)
		if (b->m[i].n == 1)
			dst[j++] = b->m[i].dst;
	qsort(dst, singles, sizeof(*dst), cmp_u64);
	qsort(b->m, b->n, sizeof(*b->m), cmp_src);
	j = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->m[i].n == 1)
			b->m[i].dst = dst[j++];
	free(dst);
	return 0;
}

static int flush(struct img_check_ctx *c)
{
	int ret = img_io_flush(c->img->io);

	if (ret < 0)
		return img_error(c->img, ret, "cannot flush '%s': %s",
				 c->img->path, img_strerror(ret));
	return 0;
}

/* Moves i.. that continue each other at both ends: one read, one write. */
static size_t run_length(const struct batch *b, size_t i, unsigned bits)
{
	size_t j = i + 1;
	uint64_t n = b->m[i].n;

	while (j < b->n && b->m[j].src == b->m[i].src + n &&
	       b->m[j].dst == b->m[i].dst + n && b->m[j].kind == b->m[i].kind &&
	       (n + b->m[j].n) << bits <= COPY_MAX) {
		n += b->m[j].n;
		j++;
	}
	return j - i;
}

/* A run is copied in the kernel where it can be (shared, not written
 * again, on XFS and btrfs), else read and written here; the flush that
 * follows the batch makes either durable. */
static int copy_run(struct img_check_ctx *c, struct img_copier *cp,
		    uint8_t *buf, uint64_t src, uint64_t dst, size_t len)
{
	struct img *img = c->img;
	int ret = img_io_copy(cp, img->io, dst, img->io, src, len);

	if (ret == 0)
		return 0;
	if (ret < 0)
		return img_error(img, ret, "cannot copy clusters from 0x%llx to 0x%llx: %s",
				 (unsigned long long)src,
				 (unsigned long long)dst, img_strerror(ret));
	ret = img_io_read_zfill(img->io, buf, len, src);

	if (ret < 0)
		return img_error(img, ret, "cannot read clusters at 0x%llx: %s",
				 (unsigned long long)src, img_strerror(ret));
	ret = img_io_pwrite(img->io, buf, len, dst);
	if (ret < 0)
		return img_error(img, ret, "cannot write clusters at 0x%llx: %s",
				 (unsigned long long)dst, img_strerror(ret));
	return 0;
}

static void say_run(struct img_check_ctx *c, const struct move *m,
		    uint64_t n, unsigned bits)
{
	const char *what = m->kind == IMG_OWN_TABLE ? "L2 table" :
			   m->kind == IMG_OWN_REFBLOCK ? "refcount block" :
			   m->kind == IMG_OWN_ROOT ? "root table" :
			   n > 1 ? "data clusters" : "data cluster";

	img_check_say(c, "Relocated %s (%llu cluster%s) from cluster %llu (offset 0x%llx) to cluster %llu (offset 0x%llx)",
		      what, (unsigned long long)n, n > 1 ? "s" : "",
		      (unsigned long long)m->src,
		      (unsigned long long)(m->src << bits),
		      (unsigned long long)m->dst,
		      (unsigned long long)(m->dst << bits));
}

/* Steps 1 and 2: the new places claimed, the copies made, all durable. */
static int copy_batch(struct img_check_ctx *c,
		      const struct img_reloc_ops *ops, const struct batch *b,
		      unsigned bits)
{
	struct img_copier cp = { .mode = IMG_COPY_AUTO };
	uint8_t *buf;
	int ret = 0;

	for (size_t i = 0; i < b->n && ret == 0 && ops->claim; i++)
		ret = ops->claim(c, b->m[i].dst, b->m[i].n);
	if (ret == 0 && ops->claim)
		ret = ops->sync(c);
	if (ret < 0)
		return ret;
	buf = malloc(COPY_MAX > (1u << bits) ? COPY_MAX : 1u << bits);
	if (!buf)
		return img_error(c->img, -ENOMEM, "out of memory");
	for (size_t i = 0, k; i < b->n && ret == 0; i += k) {
		uint64_t n = 0;

		k = run_length(b, i, bits);
		for (size_t j = i; j < i + k; j++)
			n += b->m[j].n;
		ret = copy_run(c, &cp, buf, b->m[i].src << bits,
			       b->m[i].dst << bits, (size_t)(n << bits));
		if (ret == 0)
			say_run(c, &b->m[i], n, bits);
	}
	free(buf);
	return ret ? ret : flush(c);
}

/* Steps 3 and 4: the tables the header points at first, then the tables
 * below them, then data, so that the entries of a table that moved in
 * this batch are written into its new place. */
static int repoint_batch(struct img_check_ctx *c,
			 const struct img_reloc_ops *ops,
			 const struct batch *b, unsigned bits)
{
	int ret = 0;

	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < b->n && ret == 0; i++) {
			const struct move *m = &b->m[i];
			uint64_t host = m->dst << bits;

			if (pass == 0 && m->kind == IMG_OWN_ROOT)
				ret = ops->set_root(c, m->ref, host);
			else if (pass == 1 && m->kind == IMG_OWN_TABLE)
				ret = ops->set_table(c, m->ref, host);
			else if (pass == 1 && m->kind == IMG_OWN_REFBLOCK)
				ret = ops->set_refblock(c, m->ref, host);
			else if (pass == 2 && m->kind == IMG_OWN_DATA)
				ret = ops->set_data(c, img_ref_table(m->ref),
						    img_ref_entry(m->ref), host);
		}
	return ret ? ret : flush(c);
}

static int release_sources(struct img_check_ctx *c,
			   const struct img_reloc_ops *ops, const struct batch *b)
{
	int ret = 0;

	if (!ops->release)
		return 0;
	for (size_t i = 0; i < b->n && ret == 0; i++)
		ret = ops->release(c, b->m[i].src, b->m[i].n);
	return ret ? ret : ops->sync(c);
}

static int carry_out(struct img_check_ctx *c, struct img_refs *r,
		     struct img_owners *o, const struct img_reloc_ops *ops,
		     struct batch *b)
{
	unsigned bits = r->cluster_bits;
	int ret = pair_in_order(c, b);

	if (ret == 0)
		ret = copy_batch(c, ops, b, bits);
	if (ret == 0)
		ret = repoint_batch(c, ops, b, bits);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < b->n; i++)
		for (uint64_t k = 0; k < b->m[i].n; k++) {
			o->kind[b->m[i].dst + k] = b->m[i].kind;
			o->ref[b->m[i].dst + k] = b->m[i].ref;
		}
	return release_sources(c, ops, b);
}

/* Room for n more clusters past the end of the file in r and o. */
static int grow_tracking(struct img_check_ctx *c, struct img_refs *r,
			 struct img_owners *o, uint64_t n)
{
	uint64_t total = r->nclusters + n;
	uint16_t *count = realloc(r->count, total * sizeof(*count));
	uint8_t *kind;
	uint64_t *ref;

	if (count)
		r->count = count;
	kind = count ? realloc(o->kind, total * sizeof(*kind)) : NULL;
	if (kind)
		o->kind = kind;
	ref = kind ? realloc(o->ref, total * sizeof(*ref)) : NULL;
	if (!ref)
		return img_error(c->img, -ENOMEM,
				 "cannot track %llu more clusters",
				 (unsigned long long)n);
	o->ref = ref;
	for (uint64_t cl = r->nclusters; cl < total; cl++) {
		r->count[cl] = 0;
		o->kind[cl] = IMG_OWN_NONE;
		o->ref[cl] = 0;
	}
	r->nclusters = total;
	o->nclusters = total;
	return 0;
}

/* A table with a gap below it too small to hold it moves past the end of
 * the file first (the file grows by one table for a moment); the next
 * batch moves it down over its old place. */
static int move_past_end(struct img_check_ctx *c, struct img_refs *r,
			 struct img_owners *o, const struct img_reloc_ops *ops,
			 struct batch *b, uint64_t start)
{
	uint64_t n = 1, at;
	int ret;

	if (o->kind[start] == IMG_OWN_TABLE)
		n = ops->table_clusters;
	else if (o->kind[start] == IMG_OWN_ROOT)
		ops->root_at(c, o->ref[start], &at, &n);
	ret = grow_tracking(c, r, o, n);

	if (ret < 0)
		return ret;
	b->n = 0;
	plan_move(r, o, b, start, r->nclusters - n, n);
	return carry_out(c, r, o, ops, b);
}

int img_move_tail_down(struct img_check_ctx *c, struct img_refs *r,
		       struct img_owners *o, const struct img_reloc_ops *ops,
		       uint64_t first)
{
	struct batch b = { .m = malloc(BATCH_MAX * sizeof(*b.m)) };
	uint64_t grow = 0;
	int ret = 0;

	if (!b.m)
		return img_error(c->img, -ENOMEM, "out of memory");
	for (;;) {
		int more;

		/* Between batches every owner points at a complete copy:
		 * a safe point to stop at (leaks at worst). */
		ret = img_cancel_point(c->img, c->cancel);
		if (ret < 0)
			break;
		more = plan_batch(c, r, o, ops, first, &b, &grow);

		if (b.n)
			ret = carry_out(c, r, o, ops, &b);
		if (ret == 0 && more)
			ret = move_past_end(c, r, o, ops, &b, grow);
		if (ret < 0)
			break;
		if (more || b.n == BATCH_MAX)
			continue;
		/* Stopped at a cluster that cannot move: the format may be
		 * able to let go of some (qcow2 refcount blocks that count
		 * only themselves), which makes room. */
		if (!ops->release_spare)
			break;
		ret = ops->release_spare(c, r);
		if (ret <= 0)
			break;
	}
	free(b.m);
	return ret < 0 ? ret : 0;
}
