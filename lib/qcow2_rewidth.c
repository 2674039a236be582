/* qcow2_rewidth.c: qcow2 refcounts rebuilt at 16 bits past the end of the file, the header switched to them with one write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "endian.h"
#include "qcow2.h"
#include "relocate.h"

#define NEW_ORDER 4   /* 16-bit refcounts, what version 2 implies */

/*
 * Where the new structures go: from the first cluster past the end of the
 * file, nb blocks then a table of nt clusters, enough to cover the file
 * and themselves (a fixed point).
 */
static void layout(uint64_t first, uint64_t cs, unsigned cb, uint64_t *nb,
		   uint64_t *nt)
{
	uint64_t epb = 1ull << (cb + 3 - NEW_ORDER);

	*nb = 0;
	*nt = 0;
	for (;;) {
		uint64_t end = first + *nb + *nt;
		uint64_t b = img_div_up(end, epb);
		uint64_t t = img_div_up(b * 8, cs);

		if (b == *nb && t == *nt)
			return;
		*nb = b;
		*nt = t;
	}
}

static int file_clusters(struct img *img, uint64_t cs, uint64_t *n)
{
	uint64_t size;
	int ret = img_io_size(img->io, &size);

	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	*n = img_div_up(size, cs);
	return 0;
}

int img_qcow2_rewidth_cost(struct img *img, uint64_t *growth)
{
	struct img_qcow2 *q = img->priv;
	uint64_t first, nb, nt;
	int ret = file_clusters(img, q->cluster_size, &first);

	if (ret < 0)
		return ret;
	layout(first, q->cluster_size, q->h.cluster_bits, &nb, &nt);
	*growth = (nb + nt) * q->cluster_size;
	return 0;
}

/* The clusters of the old refcount structures (free after the switch),
 * marked in old[] (first entries). */
static void mark_old(const struct img_qcow2 *q, const uint64_t *rt,
		     uint64_t rt_n, uint8_t *old, uint64_t first, unsigned cb)
{
	uint64_t t0 = q->h.reftable_offset >> cb;

	for (uint64_t cl = t0; cl < t0 + q->h.reftable_clusters && cl < first; cl++)
		old[cl] = 1;
	for (uint64_t i = 0; i < rt_n; i++)
		if (rt[i] && rt[i] >> cb < first)
			old[rt[i] >> cb] = 1;
}

int img_qcow2_rewidth(struct img_check_ctx *c)
{
	struct img *img = c->img;
	struct img_qcow2 *q = img->priv;
	uint64_t cs = q->cluster_size, first, nb, nt, epb, *oldrt = NULL;
	uint64_t oldrt_n = (uint64_t)q->h.reftable_clusters * cs / 8;
	unsigned cb = q->h.cluster_bits;
	uint8_t *blk = malloc(cs), *rt = NULL, *raw = NULL, *old = NULL, hdr[52];
	int ret = file_clusters(img, cs, &first);

	if (ret < 0)
		goto out;
	layout(first, cs, cb, &nb, &nt);
	epb = 1ull << (cb + 3 - NEW_ORDER);
	rt = calloc(nt, cs);
	oldrt = malloc((oldrt_n ? oldrt_n : 1) * sizeof(*oldrt));
	raw = malloc(oldrt_n ? oldrt_n * 8 : 1);
	old = calloc(first ? first : 1, 1);
	if (!blk || !rt || !oldrt || !raw || !old) {
		ret = img_error(img, -ENOMEM, "out of memory");
		goto out;
	}
	ret = img_read_meta(img, "refcount table", raw, oldrt_n * 8,
			    q->h.reftable_offset);
	for (uint64_t i = 0; ret == 0 && i < oldrt_n; i++)
		oldrt[i] = get_be64(raw + 8 * i) & ~QCOW2_REFTABLE_RESERVED;
	if (ret == 0)
		mark_old(q, oldrt, oldrt_n, old, first, cb);
	/* Each block: the stored counts (exact: the caller checked them)
	 * for the old file, 1 for the new structures, 0 for the old ones. */
	for (uint64_t b = 0; ret == 0 && b < nb; b++) {
		memset(blk, 0, cs);
		for (uint64_t j = 0; ret == 0 && j < epb; j++) {
			uint64_t cl = b * epb + j, v = 0;

			if (cl >= first + nb + nt)
				break;
			if (cl >= first)
				v = 1;
			else if (!old[cl])
				ret = img_qcow2_refcount(img, cl, &v);
			if (ret == 0 && v > UINT16_MAX)
				ret = img_error(img, IMG_E_UNSUPPORTED,
						"cluster %llu has refcount %llu, more than 16 bits hold",
						(unsigned long long)cl,
						(unsigned long long)v);
			if (ret == 0)
				img_qcow2_refblock_set(blk, j, NEW_ORDER, v);
		}
		put_be64(rt + 8 * b, (first + b) << cb);
		if (ret == 0 && (ret = img_io_pwrite(img->io, blk, cs,
						     (first + b) << cb)) < 0)
			ret = img_error(img, ret, "cannot write a refcount block at 0x%llx: %s",
					(unsigned long long)((first + b) << cb),
					img_strerror(ret));
	}
	if (ret == 0 && (ret = img_io_pwrite(img->io, rt, nt * cs,
					     (first + nb) << cb)) < 0)
		ret = img_error(img, ret, "cannot write the refcount table: %s",
				img_strerror(ret));
	if (ret == 0)
		ret = img_check_flush(c);
	if (ret < 0)
		goto out;
	/* One write switches table, its size and the width (bytes 48-99). */
	ret = img_read_meta(img, "header", hdr, sizeof(hdr), 48);
	if (ret < 0)
		goto out;
	put_be64(hdr, (first + nb) << cb);
	put_be32(hdr + 8, (uint32_t)nt);
	put_be32(hdr + 48, NEW_ORDER);
	ret = img_io_pwrite(img->io, hdr, sizeof(hdr), 48);
	if (ret < 0) {
		ret = img_error(img, ret, "cannot write the header: %s",
				img_strerror(ret));
		goto out;
	}
	ret = img_check_flush(c);
	if (ret < 0)
		goto out;
	q->h.reftable_offset = (first + nb) << cb;
	q->h.reftable_clusters = (uint32_t)nt;
	q->h.refcount_order = NEW_ORDER;
	free(q->reftable);
	q->reftable = NULL;
	q->reftable_entries = 0;
	img_tcache_free(q->refblock_cache);
	q->refblock_cache = NULL;
	img_check_say(c, "Rebuilt the refcounts at 16 bits: %llu blocks and a table of %llu clusters at 0x%llx",
		      (unsigned long long)nb, (unsigned long long)nt,
		      (unsigned long long)((first + nb) << cb));
out:
	free(old);
	free(raw);
	free(oldrt);
	free(rt);
	free(blk);
	return ret;
}
