/* qed_demote.c: the QED driver's demote: zero-cluster entries (which older readers take for data offsets) replaced, need-check cleared after a clean check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "endian.h"
#include "qed.h"
#include "relocate.h"
#include "walk.h"

struct qdemote {
	struct img *img;
	struct qed *q;
	const struct img_demote_opts *o;
	struct img_check_ctx c;
	struct img_check res;
	uint8_t *buf;                /* one cluster of scratch */
	int writing;                 /* second walk: entries are changed */
	uint64_t entries;            /* zero entries found */
	uint64_t allocs;             /* ...that need an allocated zero cluster */
	uint64_t tables;             /* tables holding zero entries */
	int table_counted;
	uint64_t next_host;          /* writing: the next zero cluster */
	uint64_t alloc_end;          /* ...and the end of those written */
};

/* Whether the zero cluster at guest must be stored (the backing chain
 * does not read zeros there): 1, 0, or an error. */
static int needs_cluster(struct qdemote *k, const struct img_walk_entry *e)
{
	struct img *img = k->img;
	uint64_t len;
	int zero = 1, ret;

	if (e->beyond || !img->backing_name)
		return 0;
	len = img_min_u64(img->cluster_size, img->size - e->guest);
	ret = img_backing_reads_zero(img, e->guest, len, k->buf, &zero);
	return ret < 0 ? ret : !zero;
}

static int on_table(struct img *img, uint64_t l1i, uint64_t l2_off, void *arg)
{
	struct qdemote *k = arg;

	k->table_counted = 0;
	if (k->o->progress && l1i << k->q->l1_shift < img->size)
		k->o->progress(l1i << k->q->l1_shift, img->size,
			       k->o->progress_arg);
	/* Before a table: those before it are written whole. */
	return img_cancel_point(img, k->o->cancel) < 0 ? -ECANCELED : 0;
}

static int on_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct qdemote *k = arg;
	int need;

	if (get_le64(e->raw) != IMG_QED_L2_ZERO)
		return 0;
	need = needs_cluster(k, e);
	if (need < 0)
		return need;
	if (!k->writing) {
		k->entries++;
		k->allocs += need;
		if (!k->table_counted)
			k->tables++;
		k->table_counted = 1;
		return 0;
	}
	if (!need) {
		put_le64(e->raw, IMG_QED_L2_UNALLOC);
		return IMG_WALK_CHANGED;
	}
	if (k->next_host >= k->alloc_end)
		return img_error(img, IMG_E_CORRUPT,
				 "more zero clusters need storing than were found at first");
	put_le64(e->raw, k->next_host);
	k->next_host += img->cluster_size;
	return IMG_WALK_CHANGED;
}

static const struct img_walk_cb walk_cb = {
	.table = on_table,
	.entry = on_entry,
};

static int walk(struct qdemote *k)
{
	struct img_walk_layout lay;
	int ret = k->img->drv->walk_layout(k->img, &lay);

	lay.past_size = 1;
	return ret < 0 ? ret : img_walk(k->img, &lay, &walk_cb, k);
}

/* The checker; fix leaks only. An image it finds errors in is refused. */
static int run_check(struct qdemote *k, enum img_check_fix fix)
{
	struct img_check_ctx c = {
		.img = k->img, .fix = fix, .res = &k->res, .may_grow = 1,
		.msg = NULL,
		.cancel = k->o->cancel,
	};

	return img_demote_check(&c, img_qed_check);
}

/* Before the first entry changes, the header says the image needs a
 * check: the new zero clusters are leaks until their entries are
 * written. */
static int mark_need_check(struct qdemote *k)
{
	struct qed *q = k->q;
	int ret;

	if (q->h.features & IMG_QED_F_NEED_CHECK)
		return 0;
	ret = img_write_entry(&k->c, 1, "header features", 16,
			      q->h.features | IMG_QED_F_NEED_CHECK);
	if (ret == 0)
		ret = img_check_flush(&k->c);
	if (ret < 0)
		return ret;
	q->h.features |= IMG_QED_F_NEED_CHECK;
	k->img->dirty = 1;
	return 0;
}

/* The zero clusters that must be stored, past the end of the file, made
 * durable before any entry names them. */
static int write_zero_clusters(struct qdemote *k)
{
	uint64_t cs = k->img->cluster_size, size, n = k->allocs * cs;
	int ret = img_io_size(k->img->io, &size);

	if (ret == 0) {
		k->next_host = (size + cs - 1) / cs * cs;
		k->alloc_end = k->next_host + n;
		ret = n ? img_write_zeros(k->img->io, k->next_host, n) : 0;
	}
	if (ret < 0)
		return img_error(k->img, ret,
				 "cannot write %llu zero clusters at the end of '%s': %s",
				 (unsigned long long)k->allocs, k->img->path,
				 img_strerror(ret));
	if (n && k->alloc_end > k->q->file_size)
		k->q->file_size = k->alloc_end;    /* the reader's bound */
	return n ? img_check_flush(&k->c) : 0;
}

static void plan(struct qdemote *k, struct img_demote_result *r)
{
	struct img_feature *f;
	uint64_t cs = k->img->cluster_size;

	r->version_before = r->version_after = "1";
	if (k->entries) {
		f = img_demote_add(r, "zero-clusters", IMG_FEATURE_INCOMPATIBLE);
		f->entries = k->entries;
		f->growth = k->allocs * cs;
		f->bytes = f->growth + k->tables * k->q->h.table_size * cs;
		snprintf(f->note, sizeof(f->note),
			 "%llu unallocated, %llu stored as zero clusters",
			 (unsigned long long)(k->entries - k->allocs),
			 (unsigned long long)k->allocs);
	}
	if (k->q->h.features & IMG_QED_F_NEED_CHECK) {
		f = img_demote_add(r, "need-check", IMG_FEATURE_INCOMPATIBLE);
		f->bytes = 8;
	}
}

int img_qed_demote(struct img *img, const struct img_demote_opts *o,
		   struct img_demote_result *r)
{
	struct qdemote k = { .img = img, .q = img->priv, .o = o };
	int want_zero = img_demote_wanted(o, "zero-clusters");
	int want_check = img_demote_wanted(o, "need-check") || want_zero;
	int ret;

	k.c = (struct img_check_ctx){ .img = img, .res = &k.res,
				      .msg = o->msg, .msg_arg = o->msg_arg,
				      .cancel = o->cancel };
	if (img->encrypted)
		return img_error(img, IMG_E_UNSUPPORTED, "encrypted image");
	k.buf = malloc(img->cluster_size);
	if (!k.buf)
		return img_error(img, -ENOMEM, "cannot allocate a cluster buffer");
	ret = run_check(&k, IMG_CHECK_NO_FIX);
	if (ret == 0)
		ret = walk(&k);
	if (ret < 0)
		goto out;
	plan(&k, r);
	if (r->dry_run)
		goto out;
	if (want_zero && k.entries) {
		ret = img_demote_room(img, r, k.allocs * img->cluster_size);
		if (ret == 0)
			ret = mark_need_check(&k);
		if (ret == 0)
			ret = write_zero_clusters(&k);
		k.writing = 1;
		if (ret == 0)
			ret = walk(&k);
		if (ret == 0)
			ret = img_check_flush(&k.c);
		if (ret < 0)
			goto out;
		r->f[0].removed = 1;
		img_check_say(&k.c, "Replaced %llu zero-cluster entries",
			      (unsigned long long)k.entries);
	}
	/* Leaks given back, then need-check cleared by a clean check. */
	if (want_check && (k.q->h.features & IMG_QED_F_NEED_CHECK)) {
		ret = run_check(&k, IMG_CHECK_FIX_LEAKS);
		if (ret == 0 && (k.q->h.features & IMG_QED_F_NEED_CHECK))
			ret = img_error(img, IMG_E_CORRUPT,
					"'%s' still needs a check after its repair",
					img->path);
		for (int i = 0; ret == 0 && i < r->n; i++)
			if (!strcmp(r->f[i].name, "need-check"))
				r->f[i].removed = 1;
	}
out:
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	free(k.buf);
	return ret;
}
