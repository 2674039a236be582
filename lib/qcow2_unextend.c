/* qcow2_unextend.c: qcow2 trees rebuilt past the end of the file and switched to with one header write: extended L2 tables made standard, an external data file's clusters moved into the image. */
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
	int data_file;           /* moving the data in, else extended L2 */
	unsigned esz;            /* bytes per old entry */
	struct tree *t;
	uint32_t nt;
	struct job *jobs;
	size_t njobs, cap;
	uint64_t old_n, new_n;   /* entries per old and new table */
	struct img_io_holes holes; /* of the data file: zeros, not copied */
	uint64_t new_tables;
};

/* What the guest reads in the cluster of an extended entry: allocated
 * subclusters from the image, zero ones as zeros, the rest from the
 * backing chain. */
static int merged(struct q2demote *k, const struct job *j, uint8_t *buf)
{
	uint64_t sub = k->q->cluster_size / QCOW2_SUBCLUSTERS;
	int ret = 0;

	if (!k->q->extended_l2)
		return img_io_read_zfill(k->img->data_io, buf, k->q->cluster_size,
					 j->host) < 0 ?
		       img_error(k->img, -EIO, "cannot read the data file at 0x%llx",
				 (unsigned long long)j->host) : 0;
	for (unsigned i = 0; ret == 0 && i < QCOW2_SUBCLUSTERS; i++) {
		uint8_t *p = buf + i * sub;

		if (j->bitmap >> i & 1)
			ret = img_io_read_zfill(k->img->data_io, p, sub,
						j->host + i * sub);
		else if (j->bitmap >> (32 + i) & 1)
			memset(p, 0, sub);
		else
			ret = img_backing_read(k->img, j->guest + i * sub, p, sub);
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
 * What an old entry becomes: *v, or (returns 1) a job: a new cluster
 * holding what the guest reads there. Moving the data in, every cluster
 * stored in the data file is a job and the zero flag stays (plain);
 * making extended L2 standard, a job is a cluster allocated or zeroed in
 * part, or zeroed whole over a backing chain that does not read zeros.
 */
static int map_entry(struct unext *u, uint64_t e, uint64_t bm, uint64_t guest,
		     uint64_t *v)
{
	uint64_t full = 0xffffffffull, host = e & QCOW2_OFFSET_MASK;
	int zero;

	*v = 0;
	if (u->data_file && u->esz == 16) {
		/* extended too: whatever is stored is in the data file */
		if (!(uint32_t)bm && !(bm >> 32))
			return 0;
		if (!(uint32_t)bm && bm >> 32 == full) {
			zero = q2d_chain_reads_zero(u->k, guest, 0);
			return zero < 0 ? zero : !zero;
		}
		return 1;
	}
	if (u->data_file) {
		if (e & QCOW2_OFLAG_ZERO) {
			*v = QCOW2_OFLAG_ZERO;
			return 0;
		}
		/* offset 0 is data when COPIED */
		if (!host && !(e & QCOW2_OFLAG_COPIED))
			return 0;
		/* a hole of the data file (preallocated metadata, a sparse
		 * raw data file) is zeros: no copy where the chain reads
		 * zeros too */
		if (img_io_is_hole(u->k->img->data_io, &u->holes, host,
				   u->k->q->cluster_size)) {
			zero = q2d_chain_reads_zero(u->k, guest, 0);
			return zero < 0 ? zero : !zero;
		}
		return 1;
	}
	if ((e & QCOW2_OFLAG_COMPRESSED) || (uint32_t)bm == full) {
		*v = e;
		return 0;
	}
	if (!(uint32_t)bm && !(bm >> 32))
		return 0;
	if (!(uint32_t)bm && bm >> 32 == full) {
		zero = q2d_chain_reads_zero(u->k, guest, 0);
		return zero < 0 ? zero : !zero;
	}
	return 1;
}

static int add_job(struct unext *u, const struct job *jb)
{
	if (u->njobs == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 64;
		struct job *p = realloc(u->jobs, cap * sizeof(*p));

		if (!p)
			return img_error(u->k->img, -ENOMEM, "out of memory");
		u->jobs = p;
		u->cap = cap;
	}
	u->jobs[u->njobs++] = *jb;
	return 0;
}

/* Entry v for guest cluster g of tree t, in its new table. */
static int put_new(struct unext *u, struct tree *t, uint64_t g, uint64_t v)
{
	uint64_t ni = g / u->new_n;

	if (!v)
		return 0;
	if (!t->l2[ni]) {
		t->l2[ni] = calloc(1, u->k->q->cluster_size);
		if (!t->l2[ni])
			return img_error(u->k->img, -ENOMEM, "out of memory");
		u->new_tables++;
	}
	put_be64(t->l2[ni] + 8 * (g % u->new_n), v);
	return 0;
}

/*
 * One pass over every old table of every tree: with build unset, the
 * jobs are collected; with build set, the new tables are filled in
 * memory (jobs found by their old entry).
 */
static int unext_pass(struct unext *u, int build)
{
	struct q2demote *k = u->k;
	uint64_t cs = k->q->cluster_size;
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
				uint64_t e = get_be64(tbl + u->esz * j);
				uint64_t bm = u->esz == 16 ?
					      get_be64(tbl + 16 * j + 8) : 0;
				uint64_t g = (uint64_t)i * u->old_n + j, v;
				struct job jb = { .entry_off = l2 + u->esz * j,
						  .guest = g * cs,
						  .host = e & QCOW2_OFFSET_MASK,
						  .bitmap = bm };
				struct job *p;

				if (jb.guest >= k->img->size)
					break;
				ret = map_entry(u, e, bm, jb.guest, &v);
				if (ret < 0)
					break;
				if (ret && !build) {
					ret = add_job(u, &jb);
					continue;
				}
				if (ret) {
					p = job_find(u, jb.entry_off);
					v = p->new_host |
					    (p->refs == 1 ? QCOW2_OFLAG_COPIED : 0);
				}
				ret = build ? put_new(u, t, g, v) : 0;
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
/* The rebuild's settings; the data file opened when it is moved in. */
static int unext_init(struct unext *u, struct q2demote *k, int data_file)
{
	uint64_t cs = k->q->cluster_size;

	u->k = k;
	u->data_file = data_file;
	u->esz = k->q->entry_len;
	u->old_n = cs / u->esz;
	u->new_n = cs / 8;
	if (data_file && k->img->data_io == k->img->io) {
		int ret = img_qcow2_open_data_file(k->img);

		if (ret < 0)
			return ret;
	}
	return unext_trees(u);
}

int q2d_unextend_cost(struct q2demote *k, int data_file, uint64_t *growth,
		      uint64_t *entries)
{
	struct unext u = { 0 };
	uint64_t cs = k->q->cluster_size, n = 0;
	int ret = unext_init(&u, k, data_file);

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
int q2d_unextend(struct q2demote *k, int data_file)
{
	struct img_qcow2 *q = k->q;
	uint64_t cs = q->cluster_size, n, first = 0, pos, *refs = NULL;
	uint64_t snap_len = q->h.nb_snapshots ? q->snapshot_table_len : 0;
	uint64_t snap_host = 0, snap_cl = img_div_up(snap_len, cs);
	struct unext u = { 0 };
	uint8_t *snaps = NULL;
	int ret = unext_init(&u, k, data_file);

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
	/* The switch: the header rewritten in one write. */
	q->h.l1_size = u.t[0].new_size;
	q->h.l1_offset = u.t[0].l1_host;
	if (snap_len)
		q->h.snapshots_offset = snap_host;
	if (data_file) {
		q->h.incompat &= ~QCOW2_INCOMPAT_DATA_FILE;
		q->h.autoclear &= ~QCOW2_AUTOCLEAR_DATA_RAW;
		q->has_data_file = 0;
	}
	/* the new tables are standard ones in any case */
	q->h.incompat &= ~QCOW2_INCOMPAT_EXTL2;
	ret = q2d_write_header(k, 3, 1);
	if (ret < 0)
		goto out;
	/* The reader's state follows: standard tables from now on. */
	q->extended_l2 = 0;
	q->entry_len = 8;
	q->l2_bits = q->h.cluster_bits - 3;
	if (data_file && k->img->data_io != k->img->io) {
		img_io_close(k->img->data_io);
		k->img->data_io = k->img->io;
		free(k->img->data_path);
		k->img->data_path = NULL;
	}
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

