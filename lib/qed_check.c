/* qed_check.c: QED check and repair: per-cluster references, misplaced tables and entries, leaks (trailing ones too), need-check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qed.h"
#include "relocate.h"
#include "walk.h"

struct qchk {
	struct img_check_ctx *c;
	struct qed *q;
	struct img_refs refs;
	struct img_owners owners;    /* only when repairing leaks */
	struct img_refs intable;     /* clusters of the tables walked */
	uint8_t *walked;             /* bit per cluster: an L2 table starts
				    * there that was walked already */
	uint64_t prev;               /* last data offset in this table, or 0 */
	uint64_t unfixed;            /* corruptions that remain */
	int overlap;                 /* an L2 table overlaps other clusters */
};

/* Guest bytes one L1 entry maps. */
static uint64_t l1_span(const struct qed *q)
{
	return 1ULL << q->l1_shift;
}

int img_qed_set_l1(struct img_check_ctx *c, uint64_t idx, uint64_t host)
{
	struct qed *q = c->img->priv;
	int ret = img_write_entry(c, 1, "L1 entry",
				  q->h.l1_table_offset + idx * 8, host);

	if (ret == 0)
		q->l1[idx] = host;
	return ret;
}

static uint64_t table_at(struct img_check_ctx *c, uint64_t idx)
{
	const struct qed *q = c->img->priv;

	return q->l1[idx];
}

/* The L1 table is the one root table: it may move too (where a damaged
 * header put it past free clusters), by one header write. */
static void root_at(struct img_check_ctx *c, uint64_t which, uint64_t *off,
		    uint64_t *clusters)
{
	const struct qed *q = c->img->priv;

	(void)which;
	*off = q->h.l1_table_offset;
	*clusters = q->h.table_size;
}

static int set_root(struct img_check_ctx *c, uint64_t which, uint64_t host)
{
	struct qed *q = c->img->priv;
	int ret = img_write_entry(c, 1, "header (L1 table offset)", 40, host);

	(void)which;
	if (ret == 0)
		q->h.l1_table_offset = host;
	return ret;
}

static int set_l2_entry(struct img_check_ctx *c, uint64_t idx,
			uint64_t entry, uint64_t host)
{
	return img_write_entry(c, 1, "L2 entry", table_at(c, idx) + entry * 8,
			       host);
}

/* An L1 entry whose table cannot be read: with -r all it is cleared and
 * its guest range reads from the backing file (or as zeros). */
static int bad_table(struct qchk *k, uint64_t idx, uint64_t off,
		     const char *why)
{
	struct img_check_ctx *c = k->c;
	uint64_t guest = idx * l1_span(k->q);
	int ret;

	if (c->fix != IMG_CHECK_FIX_ALL) {
		img_check_say(c, "ERROR L2 table at 0x%llx for guest offset 0x%llx: %s",
			      (unsigned long long)off,
			      (unsigned long long)guest, why);
		c->res->corruptions++;
		k->unfixed++;
		return 0;
	}
	ret = img_qed_set_l1(c, idx, 0);
	if (ret < 0)
		return ret;
	c->res->corruptions_fixed++;
	if (guest >= c->img->size) {
		img_check_say(c, "Repairing L2 table at 0x%llx past the virtual size (L1 entry %llu): %s",
			      (unsigned long long)off, (unsigned long long)idx,
			      why);
		return 0;
	}
	img_check_say(c, "Repairing L2 table at 0x%llx for guest offset 0x%llx: %s; guest range 0x%llx..0x%llx lost its data",
		      (unsigned long long)off, (unsigned long long)guest, why,
		      (unsigned long long)guest,
		      (unsigned long long)(img_min_u64(guest + l1_span(k->q),
						       c->img->size) - 1));
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
	struct qed *q = k->q;
	uint64_t bytes = q->nelems * 8, past, twice, cl;
	const char *why = img_qed_table_problem(q, off);
	int ret;

	(void)img;
	k->prev = 0;
	img_check_progress(k->c, idx, k->q->l1_entries);
	if (why) {
		ret = bad_table(k, idx, off, why);
		return ret < 0 ? ret : IMG_WALK_SKIP;
	}
	cl = off >> q->cluster_bits;
	twice = img_refs_claim(&k->refs, NULL, 0, off, bytes, &past);
	img_owners_set(&k->owners, q->cluster_bits, off, bytes, IMG_OWN_TABLE,
		       idx);
	if (cl < k->refs.nclusters && (k->walked[cl / 8] >> (cl % 8) & 1)) {
		/* The table of an earlier L1 entry: as QEMU, its clusters
		 * count as used twice and its entries are not counted
		 * again (they were). It cannot move now (two owners). */
		img_check_say(k->c, "ERROR L2 table at 0x%llx for guest offset 0x%llx is also the table of an earlier L1 entry",
			      (unsigned long long)off,
			      (unsigned long long)(idx * l1_span(q)));
		k->c->res->corruptions += twice;
		k->unfixed += twice;
		return IMG_WALK_SKIP;
	}
	if (cl < k->refs.nclusters)
		k->walked[cl / 8] |= 1u << (cl % 8);
	img_refs_mark(&k->intable, off, bytes);
	if (twice) {
		/* As QEMU, its entries are not counted: they are the bytes
		 * of something else, and a repair of them would overwrite
		 * it. What they name may then pass for leaked: the leaks
		 * are not repaired (see img_qed_check). */
		img_check_say(k->c, "ERROR L2 table at 0x%llx for guest offset 0x%llx: %llu of its clusters are referenced more than once",
			      (unsigned long long)off,
			      (unsigned long long)(idx * l1_span(q)),
			      (unsigned long long)twice);
		k->c->res->corruptions += twice;
		k->unfixed += twice;
		k->overlap = 1;
		k->c->overlap = 1;
		return IMG_WALK_SKIP;
	}
	return 0;
}

static int walk_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct qchk *k = arg;
	struct img_check_ctx *c = k->c;
	uint64_t cs = img->cluster_size, host = e->ext.host, past, twice;

	if (e->ext.kind != IMG_EXT_DATA)
		return 0;
	c->res->allocated_clusters++;
	if (k->prev && host != k->prev + cs)
		c->res->fragmented_clusters++;
	k->prev = host;
	if (e->problem) {
		if (c->fix != IMG_CHECK_FIX_ALL) {
			img_check_say(c, "ERROR data cluster at 0x%llx for guest offset 0x%llx: %s",
				      (unsigned long long)host,
				      (unsigned long long)e->guest, e->problem);
			c->res->corruptions++;
			k->unfixed++;
			return 0;
		}
		memset(e->raw, 0, 8);
		if (e->beyond)
			img_check_say(c, "Repairing data cluster at 0x%llx past the virtual size (L1 entry %llu, L2 entry %llu): %s",
				      (unsigned long long)host,
				      (unsigned long long)e->l1_index,
				      (unsigned long long)e->l2_index, e->problem);
		else
			img_check_say(c, "Repairing data cluster at 0x%llx for guest offset 0x%llx: %s; guest range 0x%llx..0x%llx lost its data",
				      (unsigned long long)host,
				      (unsigned long long)e->guest, e->problem,
				      (unsigned long long)e->guest,
				      (unsigned long long)(e->guest + cs - 1));
		c->res->corruptions_fixed++;
		return IMG_WALK_CHANGED;
	}
	twice = img_refs_claim(&k->refs, NULL, 0, host, cs, &past);
	img_owners_set(&k->owners, k->q->cluster_bits, host, cs, IMG_OWN_DATA,
		       img_data_ref(e->l1_index, e->l2_index));
	if (twice && img_refs_get(&k->intable, host >> k->q->cluster_bits))
		c->overlap = 1;
	if (twice) {
		/* Which entry holds the data cannot be known: not repaired. */
		img_check_say(c, "ERROR cluster %llu (offset 0x%llx) for guest offset 0x%llx is referenced more than once",
			      (unsigned long long)(host >> k->q->cluster_bits),
			      (unsigned long long)host,
			      (unsigned long long)e->guest);
		c->res->corruptions++;
		k->unfixed++;
	}
	return 0;
}

/* The header's clusters and the L1 table's, which the header places.
 * Returns 1 if the header itself is wrong (its size, where it puts the L1
 * table): then nothing the walk finds can be trusted to repair by. */
static int claim_header_and_l1(struct qchk *k)
{
	struct img_check_ctx *c = k->c;
	struct qed *q = k->q;
	uint64_t off = q->h.l1_table_offset, bytes = q->nelems * 8, past;
	uint64_t hdr = img_max_u64(q->header_bytes, IMG_QED_HEADER_LEN);
	const char *why = img_qed_table_problem(q, off);
	int bad = !!why;

	/* The 64-byte header is in use whatever header_size says. */
	img_refs_mark(&k->refs, 0, hdr);
	img_owners_set(&k->owners, q->cluster_bits, 0, hdr, IMG_OWN_FIXED, 0);
	if (q->header_bytes < IMG_QED_HEADER_LEN) {
		img_check_say(c, "ERROR header size of %u clusters does not hold the header",
			      q->h.header_size);
		c->res->corruptions++;
		k->unfixed++;
		bad = 1;
	}
	if (why) {
		img_check_say(c, "ERROR L1 table at 0x%llx: %s",
			      (unsigned long long)off, why);
		c->res->corruptions++;
		k->unfixed++;
	}
	if (img_refs_claim(&k->refs, NULL, 0, off, bytes, &past) && !why) {
		img_check_say(c, "ERROR L1 table at 0x%llx overlaps the header",
			      (unsigned long long)off);
		c->res->corruptions++;
		k->unfixed++;
		bad = 1;
	}
	img_owners_set(&k->owners, q->cluster_bits, off, bytes,
		       bad ? IMG_OWN_FIXED : IMG_OWN_ROOT, 0);
	return bad;
}

/* Once nothing is left to repair, the image no longer needs a check; the
 * table fixes are flushed before the header says so. */
static int clear_need_check(struct qchk *k)
{
	struct img_check_ctx *c = k->c;
	struct qed *q = k->q;
	int ret;

	if (!(q->h.features & IMG_QED_F_NEED_CHECK))
		return 0;
	ret = img_check_flush(c);
	if (ret == 0)
		ret = img_write_entry(c, 1, "header features", 16,
				 q->h.features & ~IMG_QED_F_NEED_CHECK);
	if (ret == 0)
		ret = img_check_flush(c);
	if (ret < 0)
		return ret;
	q->h.features &= ~IMG_QED_F_NEED_CHECK;
	c->img->dirty = 0;
	img_check_say(c, "Cleared the need-check flag");
	return 0;
}

static const struct img_walk_cb walk_cb = {
	.table = walk_table,
	.bad_table = walk_bad_table,
	.entry = walk_entry,
};

int img_qed_check(struct img_check_ctx *c)
{
	struct img *img = c->img;
	struct qed *q = img->priv;
	struct qchk k = { .c = c, .q = q };
	const struct img_reloc_ops ops = {
		.set_data = set_l2_entry, .set_table = img_qed_set_l1,
		.table_at = table_at, .table_clusters = q->h.table_size,
		.root_at = root_at, .set_root = set_root,
	};
	uint64_t cs = q->h.cluster_size, fsize;
	int ret = img_io_size(img->io, &fsize);

	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	c->res->dirty = !!(q->h.features & IMG_QED_F_NEED_CHECK);
	c->res->total_clusters = q->h.image_size / cs + !!(q->h.image_size % cs);
	ret = img_check_overlap_first(c, img_qed_check);
	if (ret == 0)
		ret = img_refs_init(c, &k.refs, fsize, q->cluster_bits);
	if (ret == 0)
		ret = img_refs_init(c, &k.intable, fsize, q->cluster_bits);
	if (ret == 0 && c->fix)
		ret = img_owners_init(c, &k.owners, k.refs.nclusters);
	if (ret == 0) {
		k.walked = calloc(k.refs.nclusters / 8 + 1, 1);
		if (!k.walked)
			ret = img_error(img, -ENOMEM, "out of memory");
	}
	if (ret < 0)
		goto out;
	if (claim_header_and_l1(&k) && c->fix) {
		/* Nothing is written: a repair by a wrong header could only
		 * make things worse (moving data over the header, say). */
		img_check_say(c, "ERROR the header is damaged: nothing repaired");
		c->fix = IMG_CHECK_NO_FIX;
	}
	ret = img_check_walk(c, &walk_cb, &k);
	if (ret < 0 || c->res->check_errors)
		goto out;
	if (c->fix) {
		/* The repaired tables are durable before anything moves. */
		ret = img_check_flush(c);
		if (ret < 0)
			goto out;
	}
	c->res->leaks = img_count_leaks(c, &k.refs, 0, 1, 1);
	if (c->fix && c->res->leaks && k.overlap) {
		img_check_say(c, "ERROR leaks not repaired: an L2 table overlaps other clusters, what it names is not known");
	} else if (c->fix && c->res->leaks) {
		ret = img_compact_leaks(c, &k.refs, &k.owners, &ops, 0, 1);
		if (ret < 0)
			goto out;
	}
	if (c->fix && !k.unfixed)
		ret = clear_need_check(&k);
out:
	free(k.walked);
	img_refs_free(&k.intable);
	img_owners_free(&k.owners);
	img_refs_free(&k.refs);
	return ret;
}
