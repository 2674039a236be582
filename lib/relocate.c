/* relocate.c: shared by the qcow and QED checkers: cluster owners, leak counting, compacting a file by moving its last clusters into leaked ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "relocate.h"
#include "walk.h"

int img_owners_init(struct img_check_ctx *c, struct img_owners *o,
		    uint64_t nclusters)
{
	o->nclusters = nclusters;
	o->kind = calloc(nclusters ? nclusters : 1, sizeof(*o->kind));
	o->ref = calloc(nclusters ? nclusters : 1, sizeof(*o->ref));
	if (!o->kind || !o->ref) {
		img_owners_free(o);
		return img_error(c->img, -ENOMEM,
				 "cannot allocate owners of %llu clusters",
				 (unsigned long long)nclusters);
	}
	return 0;
}

void img_owners_free(struct img_owners *o)
{
	free(o->kind);
	free(o->ref);
	o->kind = NULL;
	o->ref = NULL;
}

void img_owners_set(struct img_owners *o, unsigned cluster_bits, uint64_t off,
		    uint64_t len, enum img_owner_kind kind, uint64_t ref)
{
	uint64_t first, last;

	if (!o->kind || !len || off + len < off)
		return;
	first = off >> cluster_bits;
	last = (off + len - 1) >> cluster_bits;
	for (uint64_t cl = first; cl <= last && cl < o->nclusters; cl++) {
		if (o->kind[cl] != IMG_OWN_NONE) {
			o->kind[cl] = IMG_OWN_FIXED;
			continue;
		}
		o->kind[cl] = (uint8_t)kind;
		o->ref[cl] = ref;
	}
}

uint64_t img_refs_claim(struct img_refs *r, struct img_refs *cr, int compressed,
			uint64_t off, uint64_t len, uint64_t *past)
{
	uint64_t first, last, twice = 0;

	*past = 0;
	if (!len)
		return 0;
	first = off >> r->cluster_bits;
	if (img_add_overflows(off, len - 1, &last))
		last = UINT64_MAX;
	last >>= r->cluster_bits;
	for (uint64_t cl = first; cl <= last; cl++) {
		uint16_t *n, cn;

		if (cl >= r->nclusters) {
			*past = last - cl + 1;
			break;
		}
		n = &r->count[cl];
		cn = cr ? cr->count[cl] : 0;
		/* Forbidden: any second reference, unless every reference
		 * to the cluster is a compressed stream. */
		if (*n && (!compressed || *n != cn))
			twice++;
		if (*n < IMG_REFS_MAX)
			(*n)++;
		if (compressed && cr && cn < IMG_REFS_MAX)
			cr->count[cl]++;
	}
	return twice;
}

void img_refs_mark(struct img_refs *r, uint64_t off, uint64_t len)
{
	uint64_t last;

	if (!len)
		return;
	if (img_add_overflows(off, len - 1, &last))
		last = UINT64_MAX;
	for (uint64_t cl = off >> r->cluster_bits;
	     cl <= last >> r->cluster_bits && cl < r->nclusters; cl++)
		if (!r->count[cl])
			r->count[cl] = 1;
}

/* Whether the file holds no data in cluster cl (all hole, or past EOF). */
static int cluster_is_hole(struct img *img, uint64_t cl, unsigned bits)
{
	uint64_t off = cl << bits, start, end;
	int ret = img_io_next_data(img->io, off, &start, &end);

	if (ret == -ENXIO)
		return 1;
	return ret == 0 && start >= off + (1ULL << bits);
}

uint64_t img_count_leaks(struct img_check_ctx *c, const struct img_refs *r,
			 uint64_t first, int holes, int say)
{
	uint64_t n = 0;

	for (uint64_t cl = first; cl < r->nclusters; cl++) {
		if (r->count[cl] ||
		    (!holes && cluster_is_hole(c->img, cl, r->cluster_bits)))
			continue;
		n++;
		if (say)
			img_check_say(c, "Leaked cluster %llu (offset 0x%llx)",
				      (unsigned long long)cl,
				      (unsigned long long)(cl << r->cluster_bits));
	}
	return n;
}

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

static int copy_clusters(struct img_check_ctx *c, unsigned bits, uint64_t from,
			 uint64_t to, uint64_t n)
{
	struct img *img = c->img;
	size_t cs = (size_t)1 << bits;
	uint8_t *buf = malloc(cs);
	int ret = 0;

	if (!buf)
		return img_error(img, -ENOMEM, "out of memory");
	for (uint64_t k = 0; k < n && ret == 0; k++) {
		uint64_t src = (from + k) << bits, dst = (to + k) << bits;

		ret = img_io_read_zfill(img->io, buf, cs, src);
		if (ret < 0) {
			img_error(img, ret, "cannot read cluster at 0x%llx: %s",
				  (unsigned long long)src, img_strerror(ret));
			break;
		}
		ret = img_io_pwrite(img->io, buf, cs, dst);
		if (ret < 0)
			img_error(img, ret, "cannot write cluster at 0x%llx: %s",
				  (unsigned long long)dst, img_strerror(ret));
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

static int flush(struct img_check_ctx *c)
{
	int ret = img_io_flush(c->img->io);

	if (ret < 0)
		return img_error(c->img, ret, "cannot flush '%s': %s",
				 c->img->path, img_strerror(ret));
	return 0;
}

/* Move the n clusters at start (one owner) to dst: the copy is durable
 * before the single entry that references it changes. */
static int move_clusters(struct img_check_ctx *c, struct img_refs *r,
			 struct img_owners *o, const struct img_reloc_ops *ops,
			 uint64_t start, uint64_t dst, uint64_t n)
{
	unsigned bits = r->cluster_bits;
	enum img_owner_kind kind = o->kind[start];
	uint64_t ref = o->ref[start], delta = (start - dst) << bits;
	int ret = copy_clusters(c, bits, start, dst, n);

	if (ret == 0)
		ret = flush(c);
	if (ret == 0)
		ret = kind == IMG_OWN_DATA ? ops->set_data(c, ref, dst << bits)
					   : ops->set_table(c, ref, dst << bits);
	if (ret == 0)
		ret = flush(c);
	if (ret < 0)
		return ret;
	for (uint64_t k = 0; k < n; k++) {
		r->count[dst + k] = r->count[start + k];
		r->count[start + k] = 0;
		o->kind[dst + k] = o->kind[start + k];
		o->ref[dst + k] = o->ref[start + k];
		o->kind[start + k] = IMG_OWN_NONE;
	}
	/* The entries of a moved table moved with it. */
	if (kind == IMG_OWN_TABLE)
		for (uint64_t cl = 0; cl < o->nclusters; cl++)
			if (o->kind[cl] == IMG_OWN_DATA &&
			    o->ref[cl] >= start << bits &&
			    o->ref[cl] < (start + n) << bits)
				o->ref[cl] -= delta;
	img_check_say(c, "Relocated %s (%llu cluster%s) from cluster %llu (offset 0x%llx) to cluster %llu (offset 0x%llx)",
		      kind == IMG_OWN_DATA ? "data cluster" : "L2 table",
		      (unsigned long long)n, n > 1 ? "s" : "",
		      (unsigned long long)start,
		      (unsigned long long)(start << bits),
		      (unsigned long long)dst, (unsigned long long)(dst << bits));
	return 0;
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

/* Move used clusters from the end of the file down into leaked ones
 * while the last one can move. */
static int relocate(struct img_check_ctx *c, struct img_refs *r,
		    struct img_owners *o, const struct img_reloc_ops *ops,
		    uint64_t first)
{
	uint64_t end = r->nclusters;

	for (;;) {
		uint64_t last, start, n, dst;
		int ret;

		while (end > first && !r->count[end - 1])
			end--;
		if (end <= first)
			return 0;
		last = end - 1;
		if (r->count[last] != 1)
			return 0;
		if (o->kind[last] == IMG_OWN_DATA) {
			start = last;
			n = 1;
		} else if (o->kind[last] == IMG_OWN_TABLE) {
			uint64_t at = ops->table_at(c, o->ref[last]);

			n = ops->table_clusters;
			start = at >> r->cluster_bits;
			if ((at & ((1ULL << r->cluster_bits) - 1)) ||
			    start + n != end)
				return 0;
			for (uint64_t k = start; k < end; k++)
				if (r->count[k] != 1 ||
				    o->kind[k] != IMG_OWN_TABLE ||
				    o->ref[k] != o->ref[last])
					return 0;
		} else {
			return 0;
		}
		dst = free_run(r, first, start, n);
		if (dst >= start && n > 1 && start > first &&
		    c->may_grow &&
		    !r->count[start - 1]) {
			/* A table with a gap below it too small to hold it:
			 * it moves past the end first (a few clusters of
			 * extra space), then down over its old place. */
			ret = grow_tracking(c, r, o, n);
			if (ret == 0)
				ret = move_clusters(c, r, o, ops, start,
						    r->nclusters - n, n);
			if (ret < 0)
				return ret;
			end = r->nclusters;
			continue;
		}
		if (dst >= start)
			return 0;
		ret = move_clusters(c, r, o, ops, start, dst, n);
		if (ret < 0)
			return ret;
	}
}

/* Leaks fixed: those no longer in the file or, unless holes count, no
 * longer holding data. */
static int count_fixed(struct img_check_ctx *c, const struct img_refs *r,
		       uint64_t first, int holes, uint64_t before)
{
	uint64_t size, after = 0, end;
	int ret = img_io_size(c->img->io, &size);

	if (ret < 0)
		return img_error(c->img, ret, "cannot get size: %s",
				 img_strerror(ret));
	end = size >> r->cluster_bits;
	end += (size & ((1ULL << r->cluster_bits) - 1)) != 0;
	for (uint64_t cl = first; cl < end && cl < r->nclusters; cl++)
		after += !r->count[cl] &&
			 (holes || !cluster_is_hole(c->img, cl, r->cluster_bits));
	c->res->leaks_fixed = before > after ? before - after : 0;
	return 0;
}

int img_compact_leaks(struct img_check_ctx *c, struct img_refs *r,
		      struct img_owners *o, const struct img_reloc_ops *ops,
		      uint64_t first, int holes)
{
	uint64_t before = c->res->leaks;
	int ret = flush(c);

	if (ret == 0 && o->kind)
		ret = relocate(c, r, o, ops, first);
	if (ret == 0)
		ret = img_reclaim_leaks(c, r, first);
	if (ret < 0)
		return ret;
	return count_fixed(c, r, first, holes, before);
}

int img_write_entry(struct img_check_ctx *c, int little_endian,
		    const char *what, uint64_t off, uint64_t v)
{
	uint8_t buf[8];
	int ret;

	if (little_endian)
		put_le64(buf, v);
	else
		put_be64(buf, v);
	ret = img_io_pwrite(c->img->io, buf, sizeof(buf), off);
	if (ret < 0)
		return img_error(c->img, ret, "cannot write %s at 0x%llx: %s",
				 what, (unsigned long long)off, img_strerror(ret));
	return 0;
}

int img_check_walk(struct img_check_ctx *c, const struct img_walk_cb *cb,
		   void *arg)
{
	struct img *img = c->img;
	struct img_walk_layout lay;
	int ret = img->drv->walk_layout(img, &lay);

	if (ret == 0)
		ret = img_walk(img, &lay, cb, arg);
	if (ret < 0 && !img->writable) {
		img_check_say(c, "ERROR %s", img_errmsg(img));
		c->res->check_errors++;
		return 0;
	}
	return ret;
}

int img_check_flush(struct img_check_ctx *c)
{
	int ret = img_io_flush(c->img->io);

	if (ret < 0)
		return img_error(c->img, ret, "cannot flush '%s': %s",
				 c->img->path, img_strerror(ret));
	return 0;
}
