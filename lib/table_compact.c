/* table_compact.c: compacting in place the formats without refcounts (QED, qcow v1): zero data clusters stop being stored, then the checker's leak repair gives their space back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "relocate.h"
#include "table_compact.h"
#include "walk.h"

struct tcompact {
	const struct img_table_compact_fmt *f;
	struct img_check_ctx *c;
	const struct img_compact_opts *o;
	struct img_compact_result *r;
	uint8_t *buf;                /* one cluster */
	int changed;                 /* f->before_change has run */
	int table_open, table_empty; /* the table walked: no entry left */
	uint64_t table_l1i;
	uint64_t *empty;             /* L1 indexes of tables left empty */
	uint64_t nempty;
};

/*
 * The entry a zero cluster at guest gets: 1 if it stops being stored
 * (*entry set), 0 if it must stay. Without a backing file, unallocated.
 * Over one, a format's zero entry is taken without reading the backing
 * chain: the cluster then reads zeros whatever the backing file holds,
 * and compacting works without the backing file at hand. Without a zero
 * entry, unallocated only where the backing chain reads zeros too.
 */
static int zero_cluster_entry(struct tcompact *k, uint64_t guest,
			      uint64_t *entry)
{
	struct img *img = k->c->img;
	uint64_t len = img_min_u64(img->cluster_size, img->size - guest);
	int zero = 1, ret;

	*entry = 0;
	if (!img->backing_name)
		return 1;
	if (k->f->has_zero_entry) {
		*entry = k->f->zero_entry;
		return 1;
	}
	ret = img_backing_reads_zero(img, guest, len, k->buf, &zero);
	return ret < 0 ? ret : zero;
}

/* Once, before the first change. */
static int about_to_change(struct tcompact *k)
{
	int ret = 0;

	if (!k->changed && k->f->before_change)
		ret = k->f->before_change(k->c);
	k->changed = ret == 0;
	return ret;
}

static int change_entry(struct tcompact *k, struct img_walk_entry *e,
			uint64_t entry)
{
	int ret = about_to_change(k);

	if (ret < 0)
		return ret;
	if (k->f->little_endian)
		put_le64(e->raw, entry);
	else
		put_be64(e->raw, entry);
	return IMG_WALK_CHANGED;
}

/* Each stored data cluster is read (compressed ones are kept as they
 * are); a zero one gets its new entry, which the walker writes back. */
static int examine(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct tcompact *k = arg;
	uint64_t entry;
	int ret;

	/* Past the virtual size nothing is read: the entry stays. */
	if (e->ext.kind != IMG_EXT_DATA || e->beyond)
		return 0;
	if (e->problem)
		return img_error(img, IMG_E_CORRUPT,
				 "data cluster at 0x%llx for guest offset 0x%llx: %s",
				 (unsigned long long)e->ext.host,
				 (unsigned long long)e->guest, e->problem);
	if (e->ext.flags & IMG_EXT_F_COMPRESSED)
		return 0;
	if (k->o->progress)
		k->o->progress(e->guest, img->size, k->o->progress_arg);
	ret = img_compact_read_cluster(img, k->buf, e->ext.host, e->guest);
	if (ret < 0)
		return ret;
	k->r->clusters_scanned++;
	if (!img_is_zero(k->buf, img->cluster_size))
		return 0;
	k->r->zero_clusters++;
	ret = zero_cluster_entry(k, e->guest, &entry);
	if (ret < 0)
		return ret;
	if (!ret) {
		k->r->clusters_kept++;
		return 0;
	}
	k->r->clusters_freed++;
	return k->o->dry_run ? 0 : change_entry(k, e, entry);
}

/* A table whose entries are all 0 after the scan maps nothing: it is
 * dropped. (One with entries past the virtual size stays: they are kept
 * as they are, and what they point at stays referenced.) */
static void close_table(struct tcompact *k)
{
	if (k->table_open && k->table_empty)
		k->empty[k->nempty++] = k->table_l1i;
	k->table_open = 0;
}

static int scan_table(struct img *img, uint64_t l1i, uint64_t l2_off,
		      void *arg)
{
	struct tcompact *k = arg;

	/* Before a table: the changed ones are written whole, and stopping
	 * here leaves their freed clusters leaked at worst. */
	if (img_cancel_point(img, k->o->cancel) < 0)
		return -ECANCELED;

	(void)img;
	(void)l2_off;
	close_table(k);
	k->table_open = 1;
	k->table_empty = 1;
	k->table_l1i = l1i;
	return 0;
}

static int scan_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	struct tcompact *k = arg;
	int ret = examine(img, e, arg);

	if (ret >= 0 && get_le64(e->raw))
		k->table_empty = 0;
	return ret;
}

static const struct img_walk_cb scan_cb = {
	.table = scan_table,
	.entry = scan_entry,
};

/* The L1 entries of the empty tables are cleared (after the changed
 * tables are durable); the leak repair then gives the tables back. */
static int drop_empty_tables(struct tcompact *k)
{
	int ret = k->nempty ? img_check_flush(k->c) : 0;

	if (ret == 0 && k->nempty)
		ret = about_to_change(k);
	for (uint64_t i = 0; i < k->nempty && ret == 0; i++) {
		ret = k->f->set_l1(k->c, k->empty[i], 0);
		if (ret == 0)
			img_check_say(k->c, "Dropped the empty L2 table of L1 entry %llu",
				      (unsigned long long)k->empty[i]);
	}
	return ret;
}

/* Run the format's checker (fix: leaks only, with may_grow) and refuse an
 * image it finds errors in; when says what the errors are relative to. */
static int run_checker(struct tcompact *k, enum img_check_fix fix,
		       struct img_check *res, const char *when)
{
	struct img *img = k->c->img;
	struct img_check_ctx c = {
		.img = img, .fix = fix, .res = res, .may_grow = 1,
		.msg = fix ? k->o->msg : NULL, .msg_arg = k->o->msg_arg,
		.cancel = k->o->cancel,
	};
	int ret;

	memset(res, 0, sizeof(*res));
	ret = k->f->check(&c);
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
static int check_first(struct tcompact *k)
{
	struct img_check res;
	int ret = run_checker(k, IMG_CHECK_NO_FIX, &res,
			      "(repair it first: img-check -r all)");

	if (ret == 0)
		k->r->leaks = res.leaks;
	return ret;
}

/* The freed clusters and the old leaks go back to the file system. The
 * changed entries are durable before (img_check_flush), so no freed
 * cluster is reused while an entry still points at it; a crash leaves
 * leaks at worst, which a rerun reclaims. */
static int reclaim(struct tcompact *k)
{
	struct img_check res;
	int ret = img_check_flush(k->c);

	if (ret == 0)
		ret = run_checker(k, IMG_CHECK_FIX_LEAKS, &res,
				  "after compacting");
	if (ret == 0)
		k->r->bytes_freed = res.bytes_reclaimed;
	return ret;
}

int img_table_compact(struct img *img, const struct img_table_compact_fmt *f,
		      const struct img_compact_opts *o,
		      struct img_compact_result *r)
{
	struct img_check dummy;
	struct img_check_ctx c = { .img = img, .res = &dummy,
				   .msg = o->msg, .msg_arg = o->msg_arg,
				   .cancel = o->cancel };
	struct tcompact k = { .f = f, .c = &c, .o = o, .r = r };
	struct img_walk_layout lay;
	int ret;

	memset(&dummy, 0, sizeof(dummy));
	/* Without the key a zero cluster cannot be told from noise. */
	if (img->encrypted)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "compacting encrypted images is not supported");
	k.buf = malloc(img->cluster_size);
	if (!k.buf)
		return img_error(img, -ENOMEM, "cannot allocate a cluster buffer");
	ret = check_first(&k);
	if (ret == 0)
		ret = img->drv->walk_layout(img, &lay);
	if (ret == 0) {
		k.empty = malloc((lay.l1_entries ? lay.l1_entries : 1) *
				 sizeof(*k.empty));
		if (!k.empty)
			ret = img_error(img, -ENOMEM, "out of memory");
	}
	lay.past_size = 1;
	if (ret == 0)
		ret = img_walk(img, &lay, &scan_cb, &k);
	close_table(&k);
	if (ret == 0 && !o->dry_run)
		ret = drop_empty_tables(&k);
	if (ret == 0 && !o->dry_run)
		ret = reclaim(&k);
	if (ret == 0 && o->dry_run)
		r->bytes_freed = (r->clusters_freed + r->leaks) *
				 (uint64_t)img->cluster_size +
				 k.nempty * lay.l2_bytes;
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	free(k.empty);
	free(k.buf);
	return ret;
}
