/* addcow_demote.c: the add-cow driver's demote: every cluster still read from the backing chain copied into the image file, its bit set after, until the image file stands alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "addcow.h"
#include "check.h"

/* Bits are written back (after the data they vouch for is flushed) at
 * least this often: an interruption loses little, a rerun goes on. */
#define FLUSH_EVERY (64ULL << 20)

struct ademote {
	struct img *img;
	struct addcow *a;
	const struct img_demote_opts *o;
	uint8_t *buf;
	struct img_io_holes holes;
	uint64_t clear;              /* clusters read from the backing chain */
	uint64_t copied, zeroed;     /* of those: data written, zeros made */
	uint64_t since_flush;
};

static int count_clear(struct ademote *k)
{
	uint64_t set;
	int ret = img_addcow_count_set(k->img, 0, k->a->clusters, &set);

	k->clear = k->a->clusters - set;
	return ret;
}

/* Cluster cl reads what the backing chain holds there: written into the
 * image file (zeros only where it holds other bytes), then marked. */
static int take_cluster(struct ademote *k, uint64_t cl)
{
	struct img *img = k->img;
	uint64_t off = cl * img->cluster_size;
	uint64_t len = img_min_u64(img->cluster_size, img->size - off);
	int ret = img_backing_read(img, off, k->buf, (size_t)len);

	if (ret < 0)
		return ret;
	if (!img_is_zero(k->buf, (size_t)len)) {
		ret = img_io_pwrite(img->data_io, k->buf, (size_t)len, off);
		k->copied++;
	} else if (!img_io_is_hole(img->data_io, &k->holes, off, len)) {
		ret = img_io_punch(img->data_io, off, len);
		if (ret == -EOPNOTSUPP || ret == -ENOSYS)
			ret = img_write_zeros(img->data_io, off, len);
		k->zeroed++;
	}
	if (ret < 0)
		return img_error(img, ret, "cannot write image file '%s' at 0x%llx: %s",
				 img->data_path, (unsigned long long)off,
				 img_strerror(ret));
	ret = img_addcow_set_bits(img, cl, 1, 1);
	if (ret < 0)
		return ret;
	k->since_flush += len;
	if (k->since_flush >= FLUSH_EVERY) {
		k->since_flush = 0;
		ret = img_addcow_flush_bits(img);   /* data flushed first */
		if (ret == 0)
			ret = img_cancel_point(img, k->o->cancel);
	}
	return ret;
}

static int fill(struct ademote *k)
{
	struct img *img = k->img;
	int ret = 0;

	img->write_in_place = 1;   /* img_addcow_flush_bits orders its writes */
	for (uint64_t cl = 0; cl < k->a->clusters && ret == 0; cl++) {
		uint64_t set;
		int bit;

		/* eight set bits at a time */
		if (cl % 8 == 0 && k->a->clusters - cl >= 8) {
			ret = img_addcow_count_set(img, cl, 8, &set);
			if (ret == 0 && set == 8) {
				cl += 7;
				continue;
			}
		}
		bit = ret < 0 ? ret : img_addcow_bit(img, cl);
		if (bit < 0)
			return bit;
		if (!bit)
			ret = take_cluster(k, cl);
		if (k->o->progress && cl % 4096 == 0)
			k->o->progress(cl * img->cluster_size, img->size,
				       k->o->progress_arg);
	}
	if (ret == 0)
		ret = img_addcow_flush_bits(img);
	if (ret == 0)
		ret = img_io_flush(img->io);
	if (ret < 0 && !img->errmsg[0])
		img_error(img, ret, "cannot flush '%s': %s", img->path,
			  img_strerror(ret));
	return ret;
}

int img_addcow_demote(struct img *img, const struct img_demote_opts *o,
		      struct img_demote_result *r)
{
	struct ademote k = { .img = img, .a = img->priv, .o = o };
	struct img_check res;
	struct img_check_ctx c = { .img = img, .res = &res, .cancel = o->cancel };
	struct img_feature *f;
	uint64_t bytes;
	int ret;

	r->version_before = "add-cow";
	r->version_after = "add-cow";
	ret = img_demote_check(&c, img_addcow_check);
	if (ret == 0)
		ret = count_clear(&k);
	if (ret < 0)
		return ret;
	r->standalone = img->data_path;
	if (!k.clear)
		return 0;   /* the image file stands alone already */
	bytes = k.clear * img->cluster_size;
	f = img_demote_add(r, "backing-file", IMG_FEATURE_INCOMPATIBLE);
	f->entries = k.clear;
	f->bytes = bytes;
	f->growth = 0;  /* the image file keeps its size; its blocks grow */
	snprintf(f->note, sizeof(f->note),
		 "%llu clusters still read from %s",
		 (unsigned long long)k.clear,
		 img->backing_name ? img->backing_name : "nothing (zeros)");
	if (r->dry_run || !img_demote_wanted(o, "backing-file"))
		return 0;
	ret = img_demote_room(img, r, bytes);
	k.buf = malloc(img->cluster_size);
	if (ret == 0 && !k.buf)
		ret = img_error(img, -ENOMEM, "out of memory");
	if (ret == 0)
		ret = fill(&k);
	/* what demote writes must check clean: no stray bits left either */
	if (ret == 0 && (res.leaks || k.a->bitmap_stored > k.a->bitmap_bytes))
		ret = img_addcow_clear_stray(img);
	free(k.buf);
	if (o->progress)
		o->progress(img->size, img->size, o->progress_arg);
	if (ret < 0)
		return ret;
	f->removed = 1;
	snprintf(f->note, sizeof(f->note),
		 "%llu clusters copied into '%s', %llu zeroed there, %llu already read as zeros",
		 (unsigned long long)k.copied, img->data_path,
		 (unsigned long long)k.zeroed,
		 (unsigned long long)(k.clear - k.copied - k.zeroed));
	return 0;
}
