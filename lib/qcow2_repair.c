/* qcow2_repair.c: img-check -r for qcow2: entries past the end of the file, refcounts set right, OFLAG_COPIED, refcount rebuild, header flags, leaked space. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "qcow2_check.h"

static void fixed(struct q2c *k)
{
	k->res->corruptions_fixed++;
}

int q2c_write_meta(struct q2c *k, const char *what, const void *buf,
		   size_t len, uint64_t off)
{
	int ret;

	/* Only header fields are written in cluster 0: a table found there
	 * is the header misread, and "repairing" it would destroy it. */
	if (off < k->cs && strncmp(what, "header", 6))
		return img_error(k->img, IMG_E_CORRUPT,
				 "refusing to write %s at 0x%llx, in the header cluster",
				 what, (unsigned long long)off);
	ret = img_io_pwrite(k->img->io, buf, len, off);

	if (ret < 0)
		return img_error(k->img, ret, "cannot write %s at 0x%llx: %s",
				 what, (unsigned long long)off,
				 img_strerror(ret));
	return 0;
}

static uint64_t guest_of(const struct q2c *k, uint64_t l1i, uint64_t l2i)
{
	return ((l1i << k->q->l2_bits) + l2i) << k->cb;
}

/* ---- L1/L2 entries past the end of the file --------------------------- */

/* A v2 entry over a backing file cannot say "zeros": it stays, naming
 * data past the end of the file. Noted when near the end, so that a
 * rebuild does not write its structures where it points. */
static int keep_past_eof(struct q2c *k, uint64_t off)
{
	if (off >= k->file_size + IMG_MAX_TABLE_PAST_EOF)
		return 0;
	if (k->nkept == k->capkept) {
		size_t cap = k->capkept ? 2 * k->capkept : 16;
		uint64_t *p = realloc(k->kept_eof, cap * sizeof(*p));

		if (!p)
			return 0;       /* unlikely; the rebuild may then
					 * cover it, as qemu-img's would */
		k->kept_eof = p;
		k->capkept = cap;
	}
	k->kept_eof[k->nkept++] = off >> k->cb;
	return 0;
}

/* Whether the compressed data [coff, coff+clen) decompresses, the part
 * past the end of the file reading as zeros (as readers read it): its
 * stored length may overstate what the stream needs. */
static int compressed_reads(struct q2c *k, uint64_t coff, uint64_t clen)
{
	uint8_t *in, *out;
	int ok = 0;

	if (clen > 2 * k->cs + 1024)
		return 0;
	in = malloc(clen);
	out = malloc(k->cs);
	if (in && out && img_io_read_zfill(k->img->io, in, clen, coff) == 0)
		ok = img_decompress(k->img->compress, in, clen, out, k->cs) == 0;
	free(in);
	free(out);
	return ok;
}

/* -r all: an entry whose data lies past the end of the file, where it
 * reads as zeros. It becomes an entry that still reads zeros where the
 * format can say so (zero flag, extended L2 zero bits), or is cleared
 * where nothing shows through (no backing file); a v2 entry over a
 * backing file is left (returns 0). Compressed data that cannot be
 * decompressed never read and is cleared; compressed data that does
 * (its stream ends before the stated length does) reads, and is left,
 * as qemu-img leaves it, its clusters kept out of a rebuild's way. */
int q2c_clear_entry(struct q2c *k, struct l2_walk *w, uint64_t j,
		    uint64_t e, uint64_t bitmap, enum cluster_type t)
{
	uint64_t guest = guest_of(k, w->l1i, j);
	uint64_t ne = 0, nb = bitmap & ~L2_BITMAP_ALL_ALLOC;
	const char *after = "reads as zeros, as before";

	if (t == CT_COMPRESSED) {
		unsigned shift = 62 - (k->cb - 8);
		uint64_t coff = e & ((1ull << shift) - 1);
		uint64_t nsect = ((e >> shift) & ((1ull << (k->cb - 8)) - 1)) + 1;
		uint64_t clen = nsect * 512 - (coff & 511);

		if (compressed_reads(k, coff, clen)) {
			for (uint64_t cl = coff >> k->cb;
			     cl <= (coff + clen - 1) >> k->cb; cl++)
				keep_past_eof(k, cl << k->cb);
			return 0;
		}
		after = "lost its data (it could not be decompressed)";
	}
	else if (k->q->extended_l2)
		nb |= (bitmap & L2_BITMAP_ALL_ALLOC) << 32;
	else if (k->q->h.version >= 3 || t == CT_ZERO_ALLOC)
		ne = QCOW2_OFLAG_ZERO;
	else if (k->q->h.backing_offset && k->q->h.backing_size)
		return keep_past_eof(k, e & QCOW2_OFFSET_MASK);
	put_be64(k->tbuf + j * k->q->entry_len, ne);
	if (k->q->extended_l2)
		put_be64(k->tbuf + j * 16 + 8, nb);
	w->dirty = 1;
	img_check_say(k->c, "Repairing L2 entry %llx: data past the end of the file; guest range 0x%llx..0x%llx %s",
		      (unsigned long long)e, (unsigned long long)guest,
		      (unsigned long long)(guest + k->cs - 1), after);
	fixed(k);
	return 1;
}

int q2c_can_clear(const struct q2c *k)
{
	return k->c->fix == IMG_CHECK_FIX_ALL;
}

/* -r all: an L1 entry naming an L2 table past the end of the file, or
 * none (offset 0) with flags set. */
int q2c_clear_l1_entry(struct q2c *k, uint64_t l1_off, uint64_t i,
		       uint64_t e, uint64_t *l1)
{
	uint64_t guest = guest_of(k, i, 0);
	uint64_t span = k->cs << k->q->l2_bits;
	uint8_t zero[8] = { 0 };
	int ret;

	ret = q2c_write_meta(k, "L1 entry", zero, 8, l1_off + 8 * i);
	if (ret < 0)
		return ret;
	if (l1)
		l1[i] = 0;
	fixed(k);
	if (!(e & QCOW2_OFFSET_MASK)) {
		/* flags alone: read as unallocated already */
		img_check_say(k->c, "Repairing L1 entry %llu (%llx): offset 0 with flags set",
			      (unsigned long long)i, (unsigned long long)e);
		return 0;
	}
	/* Readers take such a table as empty (as QEMU does): the range
	 * stays unallocated. */
	img_check_say(k->c, "Repairing L1 entry %llu (%llx): L2 table past the end of the file; guest range 0x%llx..0x%llx stays unallocated, as it read before",
		      (unsigned long long)i, (unsigned long long)e,
		      (unsigned long long)guest,
		      (unsigned long long)(guest + span - 1));
	return 0;
}

/* ---- OFLAG_COPIED ----------------------------------------------------- */

static int copied_repair_allowed(const struct q2c *k)
{
	if (k->c->fix == IMG_CHECK_FIX_ALL)
		return 1;
	return k->c->fix == IMG_CHECK_FIX_LEAKS && !k->res->check_errors &&
	       !k->res->corruptions && !k->res->leaks;
}

static int copied_l2(struct q2c *k, uint64_t l2_off, int repair)
{
	uint64_t n = 1ull << k->q->l2_bits, rc, dirty = 0;
	int ret;

	ret = q2c_read_meta(k, "L2 table", k->tbuf, k->cs, l2_off);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < n; j++) {
		uint64_t e = q2c_get_entry(k, j);
		enum cluster_type t = q2c_cluster_type(k->q, e);

		if (t != CT_NORMAL && t != CT_ZERO_ALLOC)
			continue;
		rc = 1;
		if (!k->q->has_data_file &&
		    q2c_stored_refcount(k, (e & QCOW2_OFFSET_MASK) >> k->cb,
					&rc) < 0)
			continue;
		if ((rc == 1) == !!(e & QCOW2_OFLAG_COPIED))
			continue;
		q2c_corrupt(k);
		img_check_say(k->c, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
			      repair ? "Repairing" : "ERROR",
			      (unsigned long long)e, (unsigned long long)rc);
		if (repair) {
			e = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
			put_be64(k->tbuf + j * k->q->entry_len, e);
			dirty++;
		}
	}
	if (!dirty)
		return 0;
	ret = q2c_write_meta(k, "L2 table", k->tbuf, k->cs, l2_off);
	if (ret < 0)
		return ret;
	k->res->corruptions -= dirty;
	k->res->corruptions_fixed += dirty;
	return 0;
}

int q2c_check_copied(struct q2c *k)
{
	struct img_qcow2 *q = k->q;
	int repair = copied_repair_allowed(k), ret;
	uint8_t raw[8];
	uint64_t rc;

	for (uint64_t i = 0; i < q->h.l1_size; i++) {
		uint64_t e = q->l1[i], l2 = e & QCOW2_OFFSET_MASK;

		if (!l2)
			continue;
		if (q2c_stored_refcount(k, l2 >> k->cb, &rc) < 0)
			continue;
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
			int fix = repair &&
				  !q2c_holds_data(k, q->h.l1_offset + 8 * i, 8);

			q2c_corrupt(k);
			img_check_say(k->c, "%s OFLAG_COPIED L2 cluster: l1_index=%llu l1_entry=%llx refcount=%llu",
				      fix ? "Repairing" : "ERROR",
				      (unsigned long long)i,
				      (unsigned long long)e,
				      (unsigned long long)rc);
			if (fix) {
				e = rc == 1 ? e | QCOW2_OFLAG_COPIED :
					      e & ~QCOW2_OFLAG_COPIED;
				put_be64(raw, e);
				ret = q2c_write_meta(k, "L1 entry", raw, 8,
						     q->h.l1_offset + 8 * i);
				if (ret < 0)
					return ret;
				q->l1[i] = e;
				k->res->corruptions--;
				k->res->corruptions_fixed++;
			}
		}
		if (q2c_past_eof(k, l2, k->cs))
			continue;
		/* A table off a cluster boundary is never written (its
		 * bytes may belong to another cluster), nor one the guest
		 * reads as data. */
		ret = copied_l2(k, l2, repair && !(l2 & (k->cs - 1)) &&
				!q2c_holds_data(k, l2, k->cs));
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- rebuilding the refcount structures --------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* References to cluster cl that keep_past_eof noted (never counted in
 * k->refs); cl rises from call to call, *ki is the cursor into the
 * sorted list. */
static uint64_t kept_refs(const struct q2c *k, uint64_t cl, size_t *ki)
{
	uint64_t n = 0;

	while (*ki < k->nkept && k->kept_eof[*ki] < cl)
		(*ki)++;
	while (*ki < k->nkept && k->kept_eof[*ki] == cl)
		n++, (*ki)++;
	return n;
}

/* The old table and blocks are not counted in the new structures. */
static void uncount_old_structures(struct q2c *k)
{
	uint64_t first = k->q->h.reftable_offset >> k->cb;
	uint64_t n = k->q->h.reftable_clusters;

	for (uint64_t cl = first; cl < first + n && cl < k->nclusters; cl++)
		if (k->refs.count[cl])
			k->refs.count[cl]--;
	for (uint64_t i = 0; i < k->rt_n; i++) {
		uint64_t cl = (k->reftable[i] & REFT_OFFSET_MASK) >> k->cb;

		if (q2c_refblock_counted(k, k->reftable[i]) && k->refs.count[cl])
			k->refs.count[cl]--;
	}
}

/*
 * Where the new structures go, as QEMU's rebuild places them: each
 * refcount block in the first free cluster from the start of the range it
 * covers on, the table in the first run of free clusters of the file.
 * Taken are the clusters in use, the old structures (they stand until the
 * header switches to the new ones), kept data, anything from a table that
 * runs past the end on, [nclusters, end), and past the end whatever an
 * uncounted table there reaches (refs.keep_to); past that all is free.
 */
struct place {
	uint8_t *taken;
	uint64_t n, cap;
	uint64_t *blk;           /* refcount block of each range, 0 = none */
	uint64_t nblk, capblk;
};

static int place_grow(struct place *p, uint64_t n)
{
	if (n <= p->n)
		return 0;
	if (n > p->cap) {
		uint64_t cap = p->cap ? p->cap : 64;
		uint8_t *t;

		while (cap < n)
			cap *= 2;
		if (!(t = realloc(p->taken, cap)))
			return -ENOMEM;
		p->taken = t;
		p->cap = cap;
	}
	memset(p->taken + p->n, 0, n - p->n);
	p->n = n;
	return 0;
}

static int place_blk_grow(struct place *p, uint64_t n)
{
	if (n <= p->nblk)
		return 0;
	if (n > p->capblk) {
		uint64_t cap = p->capblk ? p->capblk : 16;
		uint64_t *b;

		while (cap < n)
			cap *= 2;
		if (!(b = realloc(p->blk, cap * sizeof(*b))))
			return -ENOMEM;
		p->blk = b;
		p->capblk = cap;
	}
	memset(p->blk + p->nblk, 0, (n - p->nblk) * sizeof(*p->blk));
	p->nblk = n;
	return 0;
}

/* The first run of len free clusters from `from` on, taken; *at its first. */
static int place_alloc(struct place *p, uint64_t from, uint64_t len,
		       uint64_t *at)
{
	uint64_t run = 0, cl = from;

	for (; run < len; cl++) {
		if (place_grow(p, cl + 1) < 0)
			return -ENOMEM;
		run = p->taken[cl] ? 0 : run + 1;
	}
	*at = cl - len;
	memset(p->taken + *at, 1, len);
	return 0;
}

/* A refcount block for the range of cluster cl, and for the range of
 * that block, and so on. */
static int place_cover(struct place *p, uint64_t epb, uint64_t cl)
{
	for (;;) {
		uint64_t b = cl / epb, at;

		if (place_blk_grow(p, b + 1) < 0)
			return -ENOMEM;
		if (p->blk[b])
			return 0;
		if (place_alloc(p, b * epb, 1, &at) < 0)
			return -ENOMEM;
		p->blk[b] = at;
		cl = at;
	}
}

static int place_structures(struct q2c *k, struct place *p, uint64_t end,
			    uint64_t *rt_at, uint64_t *nt)
{
	uint64_t ff = 0, prev_nt = 0;
	uint64_t avoid = end > k->refs.keep_to ? end : k->refs.keep_to;

	if (place_grow(p, avoid) < 0)
		return -ENOMEM;
	for (uint64_t cl = 0; cl < end; cl++)
		p->taken[cl] = cl >= k->nclusters || cl >= k->refs.keep_from ||
			       k->refs.count[cl];
	/* Uncounted tables past the end read what would be put there:
	 * not free, but nothing to count either (3). */
	for (uint64_t cl = end; cl < avoid; cl++)
		p->taken[cl] = 3;
	for (size_t i = 0; i < k->nkept; i++)
		if (k->kept_eof[i] < end)
			p->taken[k->kept_eof[i]] = 1;
	/* Ranges with anything in them, in order; a block may land in a
	 * later range, which then has something in it. */
	for (uint64_t b = 0; b * k->epb < p->n; b++) {
		uint64_t lo = b * k->epb, hi = lo + k->epb, at;
		int any = 0;

		for (uint64_t cl = lo; cl < hi && cl < p->n && !any; cl++)
			any = p->taken[cl] && p->taken[cl] != 3;
		if (!any)
			continue;
		if (place_blk_grow(p, b + 1) < 0)
			return -ENOMEM;
		if (p->blk[b])
			continue;
		if (ff < lo)
			ff = lo;
		if (place_alloc(p, ff, 1, &at) < 0)
			return -ENOMEM;
		p->blk[b] = at;
		ff = at + 1;
	}
	/* The table, until it holds an entry for every block, its own
	 * included; a table that proved too small stays taken (QEMU leaks
	 * it, and its second pass frees it; here it is never counted). */
	for (;;) {
		uint64_t last = 0;

		for (uint64_t b = 0; b < p->nblk; b++)
			if (p->blk[b])
				last = b + 1;
		*nt = img_div_up(last * 8, k->cs);
		if (*nt == prev_nt)
			break;
		if (*nt * k->cs > QCOW2_MAX_REFTABLE_BYTES)
			return img_error(k->img, IMG_E_TOOBIG,
					 "refcount table for %llu clusters too large",
					 (unsigned long long)(last * k->epb));
		if (place_alloc(p, 0, *nt, rt_at) < 0)
			return -ENOMEM;
		prev_nt = *nt;
		for (uint64_t x = 0; x < *nt; x++)
			if (place_cover(p, k->epb, *rt_at + x) < 0)
				return -ENOMEM;
	}
	return 0;
}

/*
 * New refcount blocks and table where place_structures puts them, in
 * clusters nothing uses, counting what the references say; flushed; then
 * the header switched to them with one write and flushed. Until that
 * write the old structures stand; after it the old ones are free clusters.
 */
int q2c_rebuild_refcounts(struct q2c *k)
{
	struct img_qcow2 *q = k->q;
	struct place p = { 0 };
	uint64_t end = k->nclusters, nb = 0, nt = 0, rt_at = 0, rt_entries;
	uint8_t *rt = NULL, hdr[12];
	size_t ki = 0;
	int ret;

	/* Data left past the end of the file (keep_past_eof) stays where
	 * it is, in the file from now on, counted once per reference. */
	if (k->nkept) {
		qsort(k->kept_eof, k->nkept, sizeof(*k->kept_eof), cmp_u64);
		if (k->kept_eof[k->nkept - 1] + 1 > end)
			end = k->kept_eof[k->nkept - 1] + 1;
	}
	ret = place_structures(k, &p, end, &rt_at, &nt);
	if (ret == -ENOMEM)
		ret = img_error(k->img, ret, "out of memory");
	if (ret < 0)
		goto out;
	uncount_old_structures(k);
	rt_entries = nt * k->cs / 8;
	rt = calloc(1, nt * k->cs);
	if (!rt) {
		ret = img_error(k->img, -ENOMEM, "cannot allocate refcount table");
		goto out;
	}
	/* New structures: taken, and not in use before (abandoned tables
	 * are never counted). */
	for (uint64_t b = 0; b < p.nblk; b++)
		if (p.blk[b])
			p.taken[p.blk[b]] = 2;
	for (uint64_t x = 0; x < nt; x++)
		p.taken[rt_at + x] = 2;
	for (uint64_t b = 0; b < p.nblk && ret == 0; b++) {
		if (!p.blk[b])
			continue;
		memset(k->blk, 0, k->cs);
		for (uint64_t j = 0; j < k->epb; j++) {
			uint64_t cl = b * k->epb + j, v = 0;

			if (cl < p.n && p.taken[cl] == 2)
				v = 1;
			else
				v = (cl < k->nclusters ? k->refs.count[cl] : 0) +
				    kept_refs(k, cl, &ki);
			img_qcow2_refblock_set(k->blk, j, k->order,
					       v > k->refmax ? k->refmax : v);
		}
		nb++;
		put_be64(rt + 8 * b, p.blk[b] << k->cb);
		ret = q2c_write_meta(k, "refcount block", k->blk, k->cs,
				     p.blk[b] << k->cb);
	}
	if (ret == 0)
		ret = q2c_write_meta(k, "refcount table", rt, nt * k->cs,
				     rt_at << k->cb);
	if (ret == 0 && (ret = img_io_flush(k->img->io)) < 0)
		img_error(k->img, ret, "cannot flush: %s", img_strerror(ret));
	if (ret < 0)
		goto out;
	put_be64(hdr, rt_at << k->cb);
	put_be32(hdr + 8, (uint32_t)nt);
	ret = q2c_write_meta(k, "header (refcount table)", hdr, sizeof(hdr),
			     48);
	if (ret == 0 && (ret = img_io_flush(k->img->io)) < 0)
		img_error(k->img, ret, "cannot flush: %s", img_strerror(ret));
	if (ret < 0)
		goto out;
	img_check_say(k->c, "Rebuilt the refcount structures: %llu blocks and a table of %llu entries at 0x%llx",
		      (unsigned long long)nb, (unsigned long long)rt_entries,
		      (unsigned long long)(rt_at << k->cb));
	q->h.reftable_offset = rt_at << k->cb;
	q->h.reftable_clusters = (uint32_t)nt;
	/* the reader's cached view of the old ones is stale */
	free(q->reftable);
	q->reftable = NULL;
	img_tcache_free(q->refblock_cache);
	q->refblock_cache = NULL;
out:
	free(rt);
	free(p.taken);
	free(p.blk);
	return ret;
}

/* ---- flags ------------------------------------------------------------ */

int q2c_clear_flags(struct q2c *k)
{
	struct img_qcow2 *q = k->q;
	uint64_t bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
	uint8_t raw[8];
	int ret;

	if (q->h.version < 3 || !(q->h.incompat & bits))
		return 0;
	ret = img_io_flush(k->img->io);
	if (ret < 0)
		return img_error(k->img, ret, "cannot flush: %s", img_strerror(ret));
	put_be64(raw, q->h.incompat & ~bits);
	ret = q2c_write_meta(k, "header (incompatible features)", raw, 8, 72);
	if (ret == 0)
		ret = img_io_flush(k->img->io);
	if (ret < 0)
		return img_error(k->img, ret, "cannot clear the dirty and corrupt bits: %s",
				 img_strerror(ret));
	q->h.incompat &= ~bits;
	k->img->dirty = 0;
	return 0;
}

/* ---- leaked space ----------------------------------------------------- */

/* Leaked space back to the file system, once every refcount is right. */
int q2c_reclaim(struct q2c *k)
{
	int ret;

	if (k->res->leaks || k->res->check_errors)
		return 0;
	ret = img_io_flush(k->img->io);
	if (ret < 0)
		return img_error(k->img, ret, "cannot flush: %s", img_strerror(ret));
	/* k->refs also counts the cluster past the end of the file: what is
	 * there keeps the file from getting shorter */
	/* leaks_fixed stays qemu-img's count: refcounts lowered */
	return img_reclaim_leaks(k->c, &k->refs, 0);
}
