/* qcow_check.c: qcow (v1) check and repair, which qemu-img lacks: per-cluster references, misplaced tables and entries, leaks. */
#include <errno.h>
#include <string.h>

#include "qcow.h"
#include "relocate.h"
#include "walk.h"

struct qchk {
	struct img_check_ctx *c;
	struct qcow *q;
	uint64_t file_size;
	struct img_refs refs;
	struct img_refs crefs;       /* references by compressed streams */
	struct img_refs intable;     /* clusters of the tables walked */
	struct img_owners owners;    /* only when repairing leaks */
	uint64_t prev;               /* last data offset in this table, or 0 */
	uint64_t unfixed;            /* corruptions that remain */
	uint64_t extend_to;          /* -r all: end of data cut short by EOF */
};

static unsigned l1_shift(const struct qcow *q)
{
	return q->h.cluster_bits + q->h.l2_bits;
}

int img_qcow_set_l1(struct img_check_ctx *c, uint64_t idx, uint64_t host)
{
	struct qcow *q = c->img->priv;
	int ret = img_write_entry(c, 0, "L1 entry",
				  q->h.l1_table_offset + idx * 8, host);

	if (ret == 0)
		q->l1[idx] = host;
	return ret;
}

static uint64_t table_at(struct img_check_ctx *c, uint64_t idx)
{
	const struct qcow *q = c->img->priv;

	return q->l1[idx];
}

static int set_l2_entry(struct img_check_ctx *c, uint64_t idx,
			uint64_t entry, uint64_t host)
{
	return img_write_entry(c, 0, "L2 entry", table_at(c, idx) + entry * 8,
			       host);
}

/* The guest range [guest, guest+len) clipped to the virtual size, for
 * "lost its data" lines. */
static uint64_t range_end(const struct img *img, uint64_t guest, uint64_t len)
{
	return img_min_u64(guest + len, img->size) - 1;
}

static int bad_table(struct qchk *k, uint64_t idx, uint64_t off,
		     const char *why)
{
	struct img_check_ctx *c = k->c;
	uint64_t guest = idx << l1_shift(k->q);
	int ret;

	if (c->fix != IMG_CHECK_FIX_ALL) {
		img_check_say(c, "ERROR L2 table at 0x%llx for guest offset 0x%llx: %s",
			      (unsigned long long)off,
			      (unsigned long long)guest, why);
		c->res->corruptions++;
		k->unfixed++;
		return 0;
	}
	ret = img_qcow_set_l1(c, idx, 0);
	if (ret < 0)
		return ret;
	img_check_say(c, "Repairing L2 table at 0x%llx for guest offset 0x%llx: %s; guest range 0x%llx..0x%llx lost its data",
		      (unsigned long long)off, (unsigned long long)guest, why,
		      (unsigned long long)guest,
		      (unsigned long long)range_end(c->img, guest,
						    1ULL << l1_shift(k->q)));
	c->res->corruptions_fixed++;
	return 0;
}

static int walk_bad_table(struct img *img, uint64_t idx, uint64_t entry,
			  enum img_walk_problem why, void *arg)
{
	(void)img;
	return bad_table(arg, idx, entry, img_walk_problem_str(why));
}

static int walk_table(struct img *img, uint64_t idx, uint64_t off, void *arg)
{
	struct qchk *k = arg;
	uint64_t past, twice;

	(void)img;
	k->prev = 0;
	img_check_progress(k->c, idx, k->q->l1_size);
	twice = img_refs_claim(&k->refs, NULL, 0, off, k->q->l2_bytes, &past);
	img_owners_set(&k->owners, k->q->h.cluster_bits, off, k->q->l2_bytes,
		       IMG_OWN_TABLE, idx);
	img_refs_mark(&k->intable, off, k->q->l2_bytes);
	if (twice) {
		k->c->overlap = 1;
		img_check_say(k->c, "ERROR L2 table at 0x%llx for guest offset 0x%llx: %llu of its clusters are referenced more than once",
			      (unsigned long long)off,
			      (unsigned long long)(idx << l1_shift(k->q)),
			      (unsigned long long)twice);
		k->c->res->corruptions += twice;
		k->unfixed += twice;
	}
	return 0;
}

static const char CUT_SHORT[] = "cut short by the end of the file";

/* Why a decodable entry still cannot be used: its bytes lie outside the
 * file. NULL if they are inside. */
static const char *extent_problem(const struct qchk *k,
				  const struct img_extent *x, uint64_t *len)
{
	uint64_t end;

	*len = x->flags & IMG_EXT_F_COMPRESSED ? x->clen
					       : 1ULL << k->q->h.cluster_bits;
	if (x->host < IMG_QCOW_HEADER_LEN)
		return "offset inside the image header";
	if (x->host >= k->file_size || img_add_overflows(x->host, *len, &end))
		return "offset beyond end of file";
	if (end > k->file_size)
		return CUT_SHORT;
	return NULL;
}

static void count_stats(struct qchk *k, const struct img_extent *x)
{
	struct img_check *res = k->c->res;
	uint64_t cs = 1ULL << k->q->h.cluster_bits;

	res->allocated_clusters++;
	/* As qemu-img counts qcow2: a compressed cluster is always
	 * fragmented and does not continue a run. */
	if (x->flags & IMG_EXT_F_COMPRESSED) {
		res->compressed_clusters++;
		res->fragmented_clusters++;
		return;
	}
	if (k->prev && x->host != k->prev + cs)
		res->fragmented_clusters++;
	k->prev = x->host;
}

/* Data cut short by the end of the file is still read up to it (the rest
 * reads as zeros): unless the entry is cleared, what lies in the file is
 * no leak, and stays where it is. */
static void keep_partial(struct qchk *k, const struct img_extent *x,
			 uint64_t len)
{
	if (x->host < IMG_QCOW_HEADER_LEN || x->host >= k->file_size ||
	    len <= k->file_size - x->host)
		return;
	img_refs_mark(&k->refs, x->host, k->file_size - x->host);
	img_owners_set(&k->owners, k->q->h.cluster_bits, x->host,
		       k->file_size - x->host, IMG_OWN_FIXED, 0);
}

static int walk_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct qchk *k = arg;
	struct img_check_ctx *c = k->c;
	const struct img_extent *x = &e->ext;
	int compressed = !!(x->flags & IMG_EXT_F_COMPRESSED);
	uint64_t len = 0, past, twice;
	const char *why;

	(void)img;
	if (x->kind != IMG_EXT_DATA)
		return 0;
	count_stats(k, x);
	why = e->problem ? e->problem : extent_problem(k, x, &len);
	if (why) {
		const char *what = compressed ? "compressed data" : "data cluster";

		if (c->fix != IMG_CHECK_FIX_ALL) {
			img_check_say(c, "ERROR %s at 0x%llx for guest offset 0x%llx: %s",
				      what, (unsigned long long)x->host,
				      (unsigned long long)e->guest, why);
			c->res->corruptions++;
			k->unfixed++;
			if (!e->problem)
				keep_partial(k, x, len);
			return 0;
		}
		if (why == CUT_SHORT && !e->beyond) {
			/* Cut short: what is past the end reads as zeros,
			 * so extending the file mends it and reads the same. */
			img_check_say(c, "Repairing %s at 0x%llx for guest offset 0x%llx: %s; the file is extended to cover it",
				      what, (unsigned long long)x->host,
				      (unsigned long long)e->guest, why);
			if (x->host + len > k->extend_to)
				k->extend_to = x->host + len;
			c->res->corruptions_fixed++;
			goto claim;
		}
		if (!e->problem && !e->beyond && x->host >= k->file_size &&
		    k->q->h.backing_file_offset) {
			/* Past the end it reads as zeros; cleared, it would
			 * read the backing file's data instead. */
			img_check_say(c, "ERROR %s at 0x%llx for guest offset 0x%llx: %s; not repaired, as clearing it would show the backing file's data",
				      what, (unsigned long long)x->host,
				      (unsigned long long)e->guest, why);
			c->res->corruptions++;
			k->unfixed++;
			return 0;
		}
		memset(e->raw, 0, 8);
		c->res->corruptions_fixed++;
		if (e->beyond) {
			img_check_say(c, "Repairing %s at 0x%llx past the virtual size (L1 entry %llu, L2 entry %llu): %s",
				      what, (unsigned long long)x->host,
				      (unsigned long long)e->l1_index,
				      (unsigned long long)e->l2_index, why);
			return IMG_WALK_CHANGED;
		}
		img_check_say(c, "Repairing %s at 0x%llx for guest offset 0x%llx: %s; guest range 0x%llx..0x%llx %s",
			      what, (unsigned long long)x->host,
			      (unsigned long long)e->guest, why,
			      (unsigned long long)e->guest,
			      (unsigned long long)range_end(c->img, e->guest,
							    x->length),
			      x->host >= k->file_size ? "reads as zeros, as before"
						      : "lost its data");
		return IMG_WALK_CHANGED;
	}
claim:
	twice = img_refs_claim(&k->refs, &k->crefs, compressed, x->host, len,
			       &past);
	img_owners_set(&k->owners, k->q->h.cluster_bits, x->host, len,
		       compressed || (x->host & (len - 1)) ? IMG_OWN_FIXED
							   : IMG_OWN_DATA,
		       img_data_ref(e->l1_index, e->l2_index));
	if (twice && img_refs_get(&k->intable, x->host >> k->q->h.cluster_bits))
		c->overlap = 1;
	if (twice) {
		/* Which entry holds the data cannot be known: not repaired. */
		img_check_say(c, "ERROR %s at 0x%llx for guest offset 0x%llx shares %llu cluster%s with other references",
			      compressed ? "compressed data" : "data cluster",
			      (unsigned long long)x->host,
			      (unsigned long long)e->guest,
			      (unsigned long long)twice, twice > 1 ? "s" : "");
		c->res->corruptions++;
		k->unfixed++;
	}
	return 0;
}

/* Whether [a, a+alen) and [b, b+blen) share a byte. */
static int overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Header, backing file name and L1 table: metadata the header places,
 * which may share clusters with each other (qemu-img create packs them).
 * Returns 1 if the header misplaces the L1 table (past the end of the
 * file, over the header or the backing file name) or the backing file
 * name (past the end of the file): then nothing the walk finds can be
 * trusted to repair by. */
static int claim_header_and_l1(struct qchk *k)
{
	struct img_check_ctx *c = k->c;
	const struct img_qcow_header *h = &k->q->h;
	uint64_t off = h->l1_table_offset, bytes = k->q->l1_size * 8, end;
	uint64_t first_meta = IMG_QCOW_HEADER_LEN;
	unsigned bits = h->cluster_bits;
	int bad = 1;

	img_refs_mark(&k->refs, 0, IMG_QCOW_HEADER_LEN);
	img_owners_set(&k->owners, bits, 0, IMG_QCOW_HEADER_LEN,
		       IMG_OWN_FIXED, 0);
	if (h->backing_file_offset) {
		img_refs_mark(&k->refs, h->backing_file_offset,
			      h->backing_file_size);
		img_owners_set(&k->owners, bits, h->backing_file_offset,
			       h->backing_file_size, IMG_OWN_FIXED, 0);
	}
	if (img_add_overflows(off, bytes, &end) || end > k->file_size) {
		img_check_say(c, "ERROR L1 table at 0x%llx (%llu bytes): runs past end of file",
			      (unsigned long long)off,
			      (unsigned long long)bytes);
		c->res->corruptions++;
		k->unfixed++;
	} else if (bytes && off < first_meta) {
		img_check_say(c, "ERROR L1 table at 0x%llx overlaps the header",
			      (unsigned long long)off);
		c->res->corruptions++;
		k->unfixed++;
	} else if (h->backing_file_offset &&
		   overlap(off, bytes, h->backing_file_offset,
			   h->backing_file_size)) {
		img_check_say(c, "ERROR L1 table at 0x%llx overlaps the backing file name",
			      (unsigned long long)off);
		c->res->corruptions++;
		k->unfixed++;
	} else {
		bad = 0;
	}
	if (h->backing_file_offset && h->backing_file_size &&
	    (img_add_overflows(h->backing_file_offset, h->backing_file_size,
			       &end) || end > k->file_size)) {
		/* Read as zeros there, as QEMU reads it; a repair could
		 * only append clusters over it. */
		img_check_say(c, "ERROR backing file name at 0x%llx (%u bytes): runs past end of file",
			      (unsigned long long)h->backing_file_offset,
			      h->backing_file_size);
		c->res->corruptions++;
		k->unfixed++;
		bad = 1;
	}
	/* qemu-img create zeroes the L1 table in whole 512-byte sectors: the
	 * rest of its last sector belongs to it. */
	bytes = (bytes + 511) & ~511ULL;
	img_refs_mark(&k->refs, off, bytes);
	img_owners_set(&k->owners, bits, off, bytes, IMG_OWN_FIXED, 0);
	return bad;
}

/* Whether an L2 table the walk reads overlaps the backing file name or
 * the L1 table: its "entries" are their bytes, and a repair of them would
 * overwrite them (the walk reports the overlap). One inside the header is
 * not read: -r all clears its L1 entry. */
static int table_over_header(const struct qchk *k)
{
	const struct img_qcow_header *h = &k->q->h;
	uint64_t n = k->q->l2_bytes, l1 = k->q->l1_size * 8;

	for (uint64_t i = 0; i < k->q->l1_size; i++) {
		uint64_t t = k->q->l1[i];

		if (t >= IMG_QCOW_HEADER_LEN &&
		    (overlap(t, n, h->l1_table_offset, l1) ||
		     (h->backing_file_offset &&
		      overlap(t, n, h->backing_file_offset,
			      h->backing_file_size))))
			return 1;
	}
	return 0;
}

static const struct img_walk_cb walk_cb = {
	.table = walk_table,
	.bad_table = walk_bad_table,
	.entry = walk_entry,
};

int img_qcow_check(struct img_check_ctx *c)
{
	struct img *img = c->img;
	struct qcow *q = img->priv;
	struct qchk k = { .c = c, .q = q };
	unsigned bits = q->h.cluster_bits;
	const struct img_reloc_ops ops = {
		.set_data = set_l2_entry, .set_table = img_qcow_set_l1,
		.table_at = table_at,
		.table_clusters = (q->l2_bytes + (1ULL << bits) - 1) >> bits,
	};
	uint64_t cs = 1ULL << bits;
	int ret = img_io_size(img->io, &k.file_size);

	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	c->res->total_clusters = img->size / cs + !!(img->size % cs);
	ret = img_check_overlap_first(c, img_qcow_check);
	if (ret == 0)
		ret = img_refs_init(c, &k.refs, k.file_size, bits);
	if (ret == 0)
		ret = img_refs_init(c, &k.crefs, k.file_size, bits);
	if (ret == 0)
		ret = img_refs_init(c, &k.intable, k.file_size, bits);
	if (ret == 0 && c->fix)
		ret = img_owners_init(c, &k.owners, k.refs.nclusters);
	if (ret < 0)
		goto out;
	if (claim_header_and_l1(&k) && c->fix) {
		/* Nothing is written: entries read from the wrong place
		 * would be "repaired" into the header, and every cluster
		 * the real table names would pass for a leak. */
		img_check_say(c, "ERROR the header is damaged: nothing repaired");
		c->fix = IMG_CHECK_NO_FIX;
	}
	if (c->fix && table_over_header(&k)) {
		img_check_say(c, "ERROR an L2 table overlaps the L1 table or the backing file name: nothing repaired");
		c->fix = IMG_CHECK_NO_FIX;
	}
	ret = img_check_walk(c, &walk_cb, &k);
	if (ret < 0 || c->res->check_errors)
		goto out;
	if (c->fix && k.extend_to > k.file_size) {
		ret = img_io_truncate(img->io, k.extend_to);
		if (ret < 0) {
			img_error(img, ret, "cannot extend to 0x%llx: %s",
				  (unsigned long long)k.extend_to,
				  img_strerror(ret));
			goto out;
		}
	}
	if (c->fix) {
		/* The repaired tables are durable before anything moves. */
		ret = img_check_flush(c);
		if (ret < 0)
			goto out;
	}
	/* Holes are no leaks here: compressed streams cannot move, so space
	 * between them comes back as holes (no qemu-img count to match). */
	c->res->leaks = img_count_leaks(c, &k.refs, 0, 0, 1);
	if (c->fix && c->res->leaks)
		ret = img_compact_leaks(c, &k.refs, &k.owners, &ops, 0, 0);
out:
	img_owners_free(&k.owners);
	img_refs_free(&k.intable);
	img_refs_free(&k.crefs);
	img_refs_free(&k.refs);
	return ret;
}
