/* relocate.c: shared by the checkers that move clusters: cluster owners, leak counting, giving leaked space back. */
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
static int cluster_is_hole(struct img *img, struct img_io_holes *h,
			   uint64_t cl, unsigned bits)
{
	return img_io_is_hole(img->io, h, cl << bits, 1ULL << bits);
}

uint64_t img_count_leaks(struct img_check_ctx *c, const struct img_refs *r,
			 uint64_t first, int holes, int say)
{
	struct img_io_holes h = { 0 };
	uint64_t n = 0;

	for (uint64_t cl = first; cl < r->nclusters; cl++) {
		if (r->count[cl] ||
		    (!holes && cluster_is_hole(c->img, &h, cl, r->cluster_bits)))
			continue;
		n++;
		if (say)
			img_check_say(c, "Leaked cluster %llu (offset 0x%llx)",
				      (unsigned long long)cl,
				      (unsigned long long)(cl << r->cluster_bits));
	}
	return n;
}

/* Leaks fixed: those no longer in the file or, unless holes count, no
 * longer holding data. */
static int count_fixed(struct img_check_ctx *c, const struct img_refs *r,
		       uint64_t first, int holes, uint64_t before)
{
	struct img_io_holes h = { 0 };
	uint64_t size, after = 0, end;
	int ret = img_io_size(c->img->io, &size);

	if (ret < 0)
		return img_error(c->img, ret, "cannot get size: %s",
				 img_strerror(ret));
	end = size >> r->cluster_bits;
	end += (size & ((1ULL << r->cluster_bits) - 1)) != 0;
	for (uint64_t cl = first; cl < end && cl < r->nclusters; cl++)
		after += !r->count[cl] &&
			 (holes || !cluster_is_hole(c->img, &h, cl, r->cluster_bits));
	c->res->leaks_fixed = before > after ? before - after : 0;
	return 0;
}

int img_compact_leaks(struct img_check_ctx *c, struct img_refs *r,
		      struct img_owners *o, const struct img_reloc_ops *ops,
		      uint64_t first, int holes)
{
	uint64_t before = c->res->leaks;
	int ret = img_check_flush(c);

	if (ret == 0 && o->kind)
		ret = img_move_tail_down(c, r, o, ops, first);
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

	lay.past_size = 1;
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
