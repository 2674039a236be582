/* qcow2_unextend.c: qcow2 extended L2 tables rewritten as standard ones, past the end of the file, for the active disk and every snapshot, switched to with one header write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "qcow2_demote.h"
#include "relocate.h"

/* A cluster of data that a partly allocated extended entry becomes. */
struct job {
	uint64_t entry_off;      /* the old entry (dedup key) */
	uint64_t guest, host, bitmap;
	uint64_t refs;           /* trees naming it */
	uint64_t new_host;
};

struct tree {
	uint64_t *old_l1;
	uint32_t old_size, new_size;
	uint8_t **l2;            /* new tables (NULL: none), new_size of them */
	uint64_t l1_host;        /* where its new L1 goes */
};

struct unext {
	struct q2demote *k;
	struct tree *t;
	uint32_t nt;
	struct job *jobs;
	size_t njobs, cap;
	uint64_t old_n, new_n;   /* entries per old and new table */
	uint64_t new_tables;
};

static int backing_read(struct q2demote *k, uint64_t off, uint8_t *buf,
			size_t len)
{
	struct img *img = k->img, *b;
	int ret;

	memset(buf, 0, len);
	if (!img->backing_name)
		return 0;
	ret = img_open_backing(img);
	if (ret < 0)
		return ret;
	b = img->backing;
	if (off >= b->size)
		return 0;
	ret = img_read(b, off, buf, (size_t)img_min_u64(len, b->size - off));
	return ret < 0 ? img_error(img, ret, "backing file '%s': %s", b->path,
				   img_errmsg(b)) : 0;
}

/* What the guest reads in the cluster of an extended entry: allocated
 * subclusters from the image, zero ones as zeros, the rest from the
 * backing chain. */
static int merged(struct q2demote *k, const struct job *j, uint8_t *buf)
{
	uint64_t sub = k->q->cluster_size / QCOW2_SUBCLUSTERS;
	int ret = 0;

	for (unsigned i = 0; ret == 0 && i < QCOW2_SUBCLUSTERS; i++) {
		uint8_t *p = buf + i * sub;

		if (j->bitmap >> i & 1)
			ret = img_io_read_zfill(k->img->data_io, p, sub,
						j->host + i * sub);
		else if (j->bitmap >> (32 + i) & 1)
			memset(p, 0, sub);
		else
			ret = backing_read(k, j->guest + i * sub, p, sub);
	}
	return ret < 0 ? img_error(k->img, ret, "cannot read guest offset 0x%llx: %s",
				   (unsigned long long)j->guest,
				   img_strerror(ret)) : 0;
}

static int job_cmp(const void *a, const void *b)
{
	const struct job *x = a, *y = b;

	return x->entry_off < y->entry_off ? -1 : x->entry_off > y->entry_off;
}

static struct job *job_find(struct unext *u, uint64_t entry_off)
{
	struct job key = { .entry_off = entry_off };

	return bsearch(&key, u->jobs, u->njobs, sizeof(*u->jobs), job_cmp);
}

/*
 * One pass over every old table of every tree: with build unset, the
 * jobs are collected (a partly allocated entry, or zeros over a backing
 * file that does not read zeros); with build set, the new tables are
 * filled in memory.
 */
static int unext_pass(struct unext *u, int build)
{
	struct q2demote *k = u->k;
	uint64_t cs = k->q->cluster_size, full = 0xffffffffull;
	uint8_t *tbl = malloc(cs);
	int ret = tbl ? 0 : img_error(k->img, -ENOMEM, "out of memory");

	for (uint32_t ti = 0; ret == 0 && ti < u->nt; ti++) {
		struct tree *t = &u->t[ti];

		for (uint32_t i = 0; ret == 0 && i < t->old_size; i++) {
			uint64_t l2 = t->old_l1[i] & QCOW2_OFFSET_MASK;

			if (!l2)
				continue;
			ret = img_read_meta(k->img, "L2 table", tbl, cs, l2);
			for (uint64_t j = 0; ret == 0 && j < u->old_n; j++) {
				uint64_t e = get_be64(tbl + 16 * j);
				uint64_t bm = get_be64(tbl + 16 * j + 8);
				uint64_t g = (uint64_t)i * u->old_n + j, v = 0;
				uint64_t host = e & QCOW2_OFFSET_MASK;
				uint64_t guest = g * cs, ni = g / u->new_n;
				struct job jb = { .entry_off = l2 + 16 * j,
						  .guest = guest, .host = host,
						  .bitmap = bm };
				int zero;

				if (guest >= k->img->size)
					break;
				if (e & QCOW2_OFLAG_COMPRESSED) {
					v = e;
				} else if ((uint32_t)bm == full) {
					v = e;
				} else if (!(uint32_t)bm && !(bm >> 32)) {
					v = 0;
				} else if (!(uint32_t)bm && bm >> 32 == full &&
					   (zero = q2d_chain_reads_zero(k, guest, 0)) != 0) {
					if (zero < 0)
						ret = zero;
					v = 0;
				} else if (!build) {
					struct job *p = u->njobs ? u->jobs + u->njobs - 1 : NULL;

					if (u->njobs == u->cap) {
						size_t cap = u->cap ? 2 * u->cap : 64;

						p = realloc(u->jobs, cap * sizeof(*p));
						if (!p) {
							ret = img_error(k->img, -ENOMEM, "out of memory");
							break;
						}
						u->jobs = p;
						u->cap = cap;
					}
					u->jobs[u->njobs++] = jb;
					continue;
				} else {
					struct job *p = job_find(u, jb.entry_off);

					v = p->new_host |
					    (p->refs == 1 ? QCOW2_OFLAG_COPIED : 0);
				}
				if (!build || !v)
					continue;
				if (!t->l2[ni]) {
					t->l2[ni] = calloc(1, cs);
					if (!t->l2[ni]) {
						ret = img_error(k->img, -ENOMEM, "out of memory");
						break;
					}
					u->new_tables++;
				}
				put_be64(t->l2[ni] + 8 * (g % u->new_n), v);
			}
		}
	}
	free(tbl);
	return ret;
}

/* Dedupe the jobs (a table shared by trees is walked once per tree). */
static void unext_dedupe(struct unext *u)
{
	size_t n = 0;

	if (u->njobs)
		qsort(u->jobs, u->njobs, sizeof(*u->jobs), job_cmp);
	for (size_t i = 0; i < u->njobs; i++) {
		if (n && u->jobs[n - 1].entry_off == u->jobs[i].entry_off) {
			u->jobs[n - 1].refs++;
			continue;
		}
		u->jobs[n] = u->jobs[i];
		u->jobs[n++].refs = 1;
	}
	u->njobs = n;
}

static int unext_trees(struct unext *u)
{
	struct q2demote *k = u->k;
	struct img_qcow2 *q = k->q;
	int ret = 0;

	u->nt = 1 + q->h.nb_snapshots;
	u->t = calloc(u->nt, sizeof(*u->t));
	if (!u->t)
		return img_error(k->img, -ENOMEM, "out of memory");
	for (uint32_t i = 0; ret == 0 && i < u->nt; i++) {
		struct tree *t = &u->t[i];

		if (i == 0) {
			t->old_size = q->h.l1_size;
			t->old_l1 = malloc((t->old_size ? t->old_size : 1) * 8);
			if (t->old_l1)
				memcpy(t->old_l1, q->l1, (size_t)t->old_size * 8);
			else
				ret = img_error(k->img, -ENOMEM, "out of memory");
		} else {
			t->old_size = q->snap_l1[i - 1].size;
			ret = q2d_read_l1(k, q->snap_l1[i - 1].offset, t->old_size,
				      &t->old_l1);
		}
		t->new_size = (uint32_t)img_div_up((uint64_t)t->old_size * u->old_n,
						   u->new_n);
		t->l2 = calloc(t->new_size ? t->new_size : 1, sizeof(*t->l2));
		if (ret == 0 && !t->l2)
			ret = img_error(k->img, -ENOMEM, "out of memory");
	}
	return ret;
}

static void unext_free(struct unext *u)
{
	for (uint32_t i = 0; u->t && i < u->nt; i++) {
		for (uint32_t j = 0; u->t[i].l2 && j < u->t[i].new_size; j++)
			free(u->t[i].l2[j]);
		free(u->t[i].l2);
		free(u->t[i].old_l1);
	}
	free(u->t);
	free(u->jobs);
}

/* The cost, for --list: the new clusters, tables and L1 tables. */
int q2d_unextend_cost(struct q2demote *k, uint64_t *growth, uint64_t *entries)
{
	struct unext u = { .k = k, .old_n = k->q->cluster_size / 16,
			   .new_n = k->q->cluster_size / 8 };
	uint64_t cs = k->q->cluster_size, n = 0;
	int ret = unext_trees(&u);

	if (ret == 0)
		ret = unext_pass(&u, 0);
	if (ret == 0) {
		unext_dedupe(&u);
		ret = unext_pass(&u, 1);
	}
	for (uint32_t i = 0; ret == 0 && i < u.nt; i++)
		n += img_div_up((uint64_t)u.t[i].new_size * 8, cs);
	if (ret == 0) {
		*growth = (u.njobs + u.new_tables + n) * cs;
		*entries = u.njobs;
	}
	unext_free(&u);
	return ret;
}

/*
 * The whole tree rebuilt past the end of the file: partly allocated
 * clusters written whole, new standard L2 tables and L1 tables for the
 * active disk and every snapshot, a new snapshot table; counted, flushed;
 * then one header write (bytes 36-79: L1 size and offset, snapshot
 * table, the incompatible bits) switches to them, and the old tables and
 * clusters are given back by the leak repair.
 */
int q2d_unextend(struct q2demote *k)
{
	struct img_qcow2 *q = k->q;
	uint64_t cs = q->cluster_size, n, first = 0, pos, *refs = NULL;
	uint64_t snap_len = q->h.nb_snapshots ? q->snapshot_table_len : 0;
	uint64_t snap_host = 0, snap_cl = img_div_up(snap_len, cs);
	struct unext u = { .k = k, .old_n = cs / 16, .new_n = cs / 8 };
	uint8_t *snaps = NULL, hdr[44];
	int ret = unext_trees(&u);

	if (ret == 0)
		ret = unext_pass(&u, 0);
	if (ret < 0)
		goto out;
	unext_dedupe(&u);
	/* layout: jobs, then per tree its tables and L1, then snapshots */
	n = u.njobs;
	for (size_t i = 0; i < u.njobs; i++)
		u.jobs[i].new_host = i;   /* index for now */
	ret = unext_pass(&u, 1);
	if (ret < 0)
		goto out;
	n += u.new_tables;
	for (uint32_t i = 0; i < u.nt; i++)
		n += img_div_up((uint64_t)u.t[i].new_size * 8, cs);
	n += snap_cl;
	refs = malloc((n ? n : 1) * sizeof(*refs));
	if (!refs) {
		ret = img_error(k->img, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		refs[i] = i < u.njobs ? u.jobs[i].refs : 1;
	ret = q2d_claim_clusters(k, n, refs, &first);
	if (ret < 0)
		goto out;
	/* the jobs' real places; tables filled again with them */
	for (size_t i = 0; i < u.njobs; i++)
		u.jobs[i].new_host = first + i * cs;
	for (uint32_t i = 0; i < u.nt; i++)
		for (uint32_t j = 0; j < u.t[i].new_size; j++) {
			free(u.t[i].l2[j]);
			u.t[i].l2[j] = NULL;
		}
	u.new_tables = 0;
	ret = unext_pass(&u, 1);
	for (size_t i = 0; ret == 0 && i < u.njobs; i++) {
		ret = merged(k, &u.jobs[i], k->buf);
		if (ret == 0)
			ret = q2d_write_meta(k, "data cluster", k->buf, cs,
					 u.jobs[i].new_host);
	}
	pos = first + u.njobs * cs;
	for (uint32_t i = 0; ret == 0 && i < u.nt; i++) {
		struct tree *t = &u.t[i];
		uint64_t l1b = img_div_up((uint64_t)t->new_size * 8, cs) * cs;
		uint8_t *l1 = calloc(1, l1b ? l1b : 1);

		if (!l1) {
			ret = img_error(k->img, -ENOMEM, "out of memory");
			break;
		}
		for (uint32_t j = 0; ret == 0 && j < t->new_size; j++) {
			if (!t->l2[j])
				continue;
			ret = q2d_write_meta(k, "L2 table", t->l2[j], cs, pos);
			put_be64(l1 + 8 * j, pos | QCOW2_OFLAG_COPIED);
			pos += cs;
		}
		t->l1_host = pos;
		if (ret == 0 && l1b)
			ret = q2d_write_meta(k, "L1 table", l1, l1b, pos);
		pos += l1b;
		free(l1);
	}
	if (ret == 0 && snap_len) {
		snaps = malloc(snap_cl * cs);
		if (!snaps)
			ret = img_error(k->img, -ENOMEM, "out of memory");
		if (ret == 0) {
			memset(snaps, 0, snap_cl * cs);
			ret = img_read_meta(k->img, "snapshot table", snaps,
					    snap_len, q->h.snapshots_offset);
		}
		for (uint32_t i = 0, at = 0; ret == 0 && i < q->h.nb_snapshots; i++) {
			uint8_t *e = snaps + at;

			put_be64(e, u.t[i + 1].l1_host);
			put_be32(e + 8, u.t[i + 1].new_size);
			at = (uint32_t)img_qcow2_align8(at + QCOW2_SNAPSHOT_FIXED_LEN +
						       get_be32(e + 36) +
						       get_be16(e + 12) +
						       get_be16(e + 14));
		}
		snap_host = pos;
		if (ret == 0)
			ret = q2d_write_meta(k, "snapshot table", snaps, snap_cl * cs,
					 snap_host);
	}
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret < 0)
		goto out;
	/* The switch: one write of header bytes 36-79. */
	ret = img_read_meta(k->img, "header", hdr, sizeof(hdr), 36);
	if (ret < 0)
		goto out;
	put_be32(hdr, u.t[0].new_size);
	put_be64(hdr + 4, u.t[0].l1_host);
	if (snap_len)
		put_be64(hdr + 28, snap_host);
	put_be64(hdr + 36, q->h.incompat & ~QCOW2_INCOMPAT_EXTL2);
	ret = q2d_write_meta(k, "header", hdr, sizeof(hdr), 36);
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret < 0)
		goto out;
	/* The reader's state follows: standard tables from now on. */
	q->h.incompat &= ~QCOW2_INCOMPAT_EXTL2;
	q->extended_l2 = 0;
	q->entry_len = 8;
	q->l2_bits = q->h.cluster_bits - 3;
	q->h.l1_size = u.t[0].new_size;
	q->h.l1_offset = u.t[0].l1_host;
	free(q->l1);
	q->l1 = calloc(u.t[0].new_size ? u.t[0].new_size : 1, 8);
	if (!q->l1) {
		ret = img_error(k->img, -ENOMEM, "out of memory");
		goto out;
	}
	{
		uint8_t *raw = malloc((size_t)u.t[0].new_size * 8 + 1);

		if (!raw) {
			ret = img_error(k->img, -ENOMEM, "out of memory");
			goto out;
		}
		ret = img_read_meta(k->img, "L1 table", raw,
				    (size_t)u.t[0].new_size * 8, u.t[0].l1_host);
		for (uint32_t j = 0; ret == 0 && j < u.t[0].new_size; j++)
			q->l1[j] = get_be64(raw + 8 * j);
		free(raw);
	}
	if (snap_len)
		q->h.snapshots_offset = snap_host;
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		q->snap_l1[i].offset = u.t[i + 1].l1_host;
		q->snap_l1[i].size = u.t[i + 1].new_size;
	}
	q2d_reset_l2_cache(k);
	if (ret == 0)
		ret = q2d_exact_refcounts(k);
out:
	free(snaps);
	free(refs);
	unext_free(&u);
	return ret;
}

