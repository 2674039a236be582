/* addcow_compact.c: the add-cow driver's compact: zero clusters of the image file punched, and their bits cleared where the backing file reads zeros too. */
#include <errno.h>
#include <stdlib.h>

#include "addcow.h"

struct acompact {
	struct img *img;
	const struct img_compact_opts *o;
	struct img_compact_result *r;
	uint8_t *buf, *scratch;       /* a cluster each */
};

/* The zero cluster cl of the image file: punched (its bytes were either
 * unread, the bit being clear, or zeros); its bit cleared when the
 * backing chain reads zeros there as well, so that the cluster no longer
 * counts as written. Either order reads the same after a crash. */
static int zero_cluster(struct acompact *k, uint64_t cl, uint64_t len, int bit)
{
	struct img *img = k->img;
	uint64_t off = cl * img->cluster_size;
	int zero = 1, ret = 0;

	if (bit && img->backing_name)
		ret = img_backing_reads_zero(img, off, len, k->scratch, &zero);
	if (ret < 0)
		return ret;
	k->r->zero_clusters++;
	k->r->clusters_freed++;
	k->r->bytes_freed += len;
	if (k->o->dry_run)
		return 0;
	if (bit && zero) {
		ret = img_addcow_set_bits(img, cl, 1, 0);
		if (ret < 0)
			return ret;
	}
	ret = img_io_punch(img->data_io, off, len);
	if (ret < 0)
		return img_error(img, ret, "cannot punch image file '%s' at 0x%llx: %s",
				 img->data_path, (unsigned long long)off,
				 img_strerror(ret));
	return 0;
}

/* The clusters of one data extent [start, end) of the image file. */
static int scan_extent(struct acompact *k, uint64_t start, uint64_t end)
{
	struct img *img = k->img;
	uint64_t cs = img->cluster_size;

	for (uint64_t cl = start / cs; cl * cs < end; cl++) {
		uint64_t off = cl * cs, len = img_min_u64(cs, img->size - off);
		int bit, ret;

		if (off >= img->size)
			break;
		ret = img_cancel_point(img, k->o->cancel);
		if (ret < 0)
			return ret;
		bit = img_addcow_bit(img, cl);
		if (bit < 0)
			return bit;
		ret = img_io_read_zfill(img->data_io, k->buf, (size_t)len, off);
		if (ret < 0)
			return img_error(img, ret, "cannot read image file '%s' at 0x%llx: %s",
					 img->data_path, (unsigned long long)off,
					 img_strerror(ret));
		k->r->clusters_scanned++;
		if (!img_is_zero(k->buf, (size_t)len))
			continue;
		ret = zero_cluster(k, cl, len, bit);
		if (ret < 0)
			return ret;
	}
	if (k->o->progress)
		k->o->progress(img_min_u64(end, img->size), img->size,
			       k->o->progress_arg);
	return 0;
}

/* Set bits over holes of the image file read zeros: cleared where the
 * backing chain reads zeros too (the data extents are done by then). */
static int clear_hole_bits(struct acompact *k)
{
	struct img *img = k->img;
	struct addcow *a = img->priv;
	struct img_io_holes holes = { 0 };
	uint64_t cs = img->cluster_size;

	for (uint64_t cl = 0; cl < a->clusters; cl++) {
		uint64_t off = cl * cs, len = img_min_u64(cs, img->size - off);
		uint64_t set;
		int bit, zero = 0, ret;

		/* eight clear bits at a time */
		if (cl % 8 == 0 && a->clusters - cl >= 8) {
			ret = img_addcow_count_set(img, cl, 8, &set);
			if (ret < 0)
				return ret;
			if (!set) {
				cl += 7;
				continue;
			}
		}
		bit = img_addcow_bit(img, cl);
		if (bit <= 0) {
			if (bit < 0)
				return bit;
			continue;
		}
		if (!img_io_is_hole(img->data_io, &holes, off, len))
			continue;
		ret = img_cancel_point(img, k->o->cancel);
		if (ret == 0)
			ret = img_backing_reads_zero(img, off, len, k->scratch, &zero);
		if (ret < 0)
			return ret;
		if (!zero)
			continue;
		k->r->zero_clusters++;
		if (!k->o->dry_run && (ret = img_addcow_set_bits(img, cl, 1, 0)) < 0)
			return ret;
	}
	return 0;
}

int img_addcow_compact(struct img *img, const struct img_compact_opts *o,
		       struct img_compact_result *r)
{
	struct acompact k = { .img = img, .o = o, .r = r };
	const struct addcow *a = img->priv;
	uint64_t pos = 0, start, end;
	int ret = 0;


	if (a->bitmap_stored < a->bitmap_bytes)
		return img_error(img, IMG_E_CORRUPT,
				 "the COW bitmap of '%s' is shorter than the disk (img-check says more)",
				 img->path);
	k.buf = malloc(img->cluster_size);
	k.scratch = malloc(img->cluster_size);
	if (!k.buf || !k.scratch) {
		ret = img_error(img, -ENOMEM, "out of memory");
		goto out;
	}
	/* only what the image file stores is read: holes cost nothing */
	while (pos < img->size) {
		ret = img_io_next_data(img->data_io, pos, &start, &end);
		if (ret == -ENXIO) {
			ret = 0;
			break;
		}
		if (ret < 0) {
			img_error(img, ret, "cannot find data in image file '%s': %s",
				  img->data_path, img_strerror(ret));
			break;
		}
		start -= start % img->cluster_size;
		ret = scan_extent(&k, start, end);
		if (ret < 0)
			break;
		pos = img_max_u64(end, pos + 1);
		pos = img_div_up(pos, img->cluster_size) * img->cluster_size;
	}
	if (ret == 0 && img->backing_name)
		ret = clear_hole_bits(&k);
	/* bits past the disk are leaks: a compacted pair has none */
	if (ret == 0 && !o->dry_run)
		ret = img_addcow_clear_stray(img);
	/* interrupted too: the bits cleared so far are kept */
	if ((ret == 0 || ret == -ECANCELED) && !o->dry_run) {
		int fret = img_addcow_flush_bits(img);

		if (fret == 0)
			fret = img_io_flush(img->data_io);
		if (fret == 0)
			fret = img_io_flush(img->io);
		if (fret < 0 && !img->errmsg[0])
			img_error(img, fret, "cannot flush: %s", img_strerror(fret));
		if (fret < 0)
			ret = fret;
	}
out:
	free(k.buf);
	free(k.scratch);
	return ret;
}
