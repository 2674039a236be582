/* qed_compact.c: QED compaction in place: zero data clusters stop being stored, then the checker's leak repair gives their space back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "qed.h"
#include "relocate.h"
#include "walk.h"

struct qcompact {
	struct img_check_ctx *c;
	struct qed *q;
	const struct img_compact_opts *o;
	struct img_compact_result *r;
	uint8_t *buf;                /* one cluster */
	uint64_t zero_entry;         /* what a zero cluster's entry becomes */
};

/*
 * Before the first entry changes, the header says the image needs a
 * check: the freed clusters are leaks until the repair at the end gives
 * them back, and QEMU repairs leaks of such an image when it opens it.
 */
static int mark_need_check(struct qcompact *k)
{
	struct img_check_ctx *c = k->c;
	struct qed *q = k->q;
	int ret;

	if (q->h.features & IMG_QED_F_NEED_CHECK)
		return 0;
	ret = img_write_entry(c, 1, "header features", 16,
			      q->h.features | IMG_QED_F_NEED_CHECK);
	if (ret == 0)
		ret = img_check_flush(c);
	if (ret < 0)
		return ret;
	q->h.features |= IMG_QED_F_NEED_CHECK;
	c->img->dirty = 1;
	return 0;
}

static int read_cluster(struct img *img, uint8_t *buf, uint64_t host,
			uint64_t guest)
{
	int ret = img_io_read_zfill(img->io, buf, img->cluster_size, host);

	if (ret < 0)
		return img_error(img, ret,
				 "cannot read data cluster at 0x%llx (guest offset 0x%llx): %s",
				 (unsigned long long)host,
				 (unsigned long long)guest, img_strerror(ret));
	return 0;
}

/* Each stored data cluster is read; a zero one gets the zero entry (the
 * walker writes the edited table back). */
static int scan_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct qcompact *k = arg;
	int ret;

	if (e->ext.kind != IMG_EXT_DATA)
		return 0;
	if (e->problem)
		return img_error(img, IMG_E_CORRUPT,
				 "data cluster at 0x%llx for guest offset 0x%llx: %s",
				 (unsigned long long)e->ext.host,
				 (unsigned long long)e->guest, e->problem);
	if (k->o->progress)
		k->o->progress(e->guest, img->size, k->o->progress_arg);
	ret = read_cluster(img, k->buf, e->ext.host, e->guest);
	if (ret < 0)
		return ret;
	k->r->clusters_scanned++;
	if (!img_is_zero(k->buf, img->cluster_size))
		return 0;
	k->r->zero_clusters++;
	/* QED has a way to drop every zero cluster: none is kept. */
	k->r->clusters_freed++;
	if (k->o->dry_run)
		return 0;
	ret = mark_need_check(k);
	if (ret < 0)
		return ret;
	put_le64(e->raw, k->zero_entry);
	return IMG_WALK_CHANGED;
}

static const struct img_walk_cb scan_cb = {
	.entry = scan_entry,
};

/* Run the QED checker (fix: leaks only, with may_grow) and refuse an
 * image it finds errors in; when says what the errors are relative to. */
static int run_checker(struct qcompact *k, enum img_check_fix fix,
		       struct img_check *res, const char *when)
{
	struct img *img = k->c->img;
	struct img_check_ctx c = {
		.img = img, .fix = fix, .res = res, .may_grow = 1,
		.msg = fix ? k->o->msg : NULL, .msg_arg = k->o->msg_arg,
	};
	int ret;

	memset(res, 0, sizeof(*res));
	ret = img_qed_check(&c);
	if (ret < 0)
		return ret;
	if (res->corruptions || res->check_errors)
		return img_error(img, IMG_E_CORRUPT, "'%s' has %llu errors %s",
				 img->path,
				 (unsigned long long)(res->corruptions +
						      res->check_errors), when);
	return 0;
}

/* A read-only check first: compacting a corrupt image could make it
 * worse. It also counts the leaks there are already. */
static int check_first(struct qcompact *k)
{
	struct img_check res;
	int ret = run_checker(k, IMG_CHECK_NO_FIX, &res,
			      "(repair it first: img-check -r all)");

	if (ret == 0)
		k->r->leaks = res.leaks;
	return ret;
}

/* The freed clusters and the old leaks go back to the file system; the
 * repair clears need-check once everything is durable. */
static int reclaim(struct qcompact *k)
{
	struct img_check res;
	int ret = run_checker(k, IMG_CHECK_FIX_LEAKS, &res,
			      "after compacting");

	if (ret == 0)
		k->r->bytes_freed = res.bytes_reclaimed;
	return ret;
}

int img_qed_compact(struct img *img, const struct img_compact_opts *o,
		    struct img_compact_result *r)
{
	struct img_check dummy;
	struct img_check_ctx c = { .img = img, .res = &dummy,
				   .msg = o->msg, .msg_arg = o->msg_arg };
	struct qcompact k = { .c = &c, .q = img->priv, .o = o, .r = r };
	struct img_walk_layout lay;
	int ret;

	memset(&dummy, 0, sizeof(dummy));
	/* Over a backing file an unallocated cluster reads from it. */
	k.zero_entry = k.q->h.features & IMG_QED_F_BACKING_FILE ?
		IMG_QED_L2_ZERO : IMG_QED_L2_UNALLOC;
	k.buf = malloc(img->cluster_size);
	if (!k.buf)
		return img_error(img, -ENOMEM, "cannot allocate a cluster buffer");
	ret = check_first(&k);
	if (ret == 0)
		ret = img->drv->walk_layout(img, &lay);
	if (ret == 0)
		ret = img_walk(img, &lay, &scan_cb, &k);
	if (ret < 0 || o->dry_run)
		goto out;
	ret = img_check_flush(&c);
	if (ret == 0)
		ret = reclaim(&k);
out:
	if (ret == 0 && o->dry_run)
		r->bytes_freed = (r->zero_clusters + r->leaks) *
				 (uint64_t)img->cluster_size;
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	free(k.buf);
	return ret;
}
