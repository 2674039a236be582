/* compact.c: the format-independent part of compacting an image in place: dispatch and file sizes. */
#include <errno.h>
#include <string.h>

#include "imgint.h"

static int file_size(struct img *img, uint64_t *size)
{
	int ret = img_io_size(img->io, size);

	if (ret < 0)
		return img_error(img, ret, "cannot get the size of '%s': %s",
				 img->path, img_strerror(ret));
	return 0;
}

int img_backing_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	struct img *b;
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
	if (ret < 0)
		return img_error(img, ret, "backing file '%s': %s",
				 b->path, img_errmsg(b));
	return 0;
}

int img_backing_reads_zero(struct img *img, uint64_t off, uint64_t len,
			   void *buf, int *zero)
{
	int ret = img_backing_read(img, off, buf, (size_t)len);

	*zero = ret == 0 && img_is_zero(buf, (size_t)len);
	return ret;
}

/* The largest the file was: its size before or the highest end written
 * since then, whichever is more. */
static uint64_t peak_size(struct img *img, uint64_t before)
{
	uint64_t high = img_io_high_end(img->io);

	return high > before ? high : before;
}

int img_compact_read_cluster(struct img *img, void *buf, uint64_t host,
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

int img_compact(struct img *img, const struct img_compact_opts *o,
		struct img_compact_result *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->dry_run = !!o->dry_run;
	r->cluster_size = img->cluster_size;
	if (!img->drv->compact)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "compacting %s images is not supported yet",
				 img->drv->name);
	if (!o->dry_run && !img->writable)
		return img_error(img, -EBADF,
				 "compacting needs the image opened writable");
	/* No format compacts subclusters (yet): zeros are found per cluster. */
	if (o->zero_gran && o->zero_gran != img->cluster_size)
		return img_error(img, -EINVAL,
				 "-S %llu: the zero detection unit of '%s' is its cluster size, %llu",
				 (unsigned long long)o->zero_gran, img->path,
				 (unsigned long long)img->cluster_size);
	ret = file_size(img, &r->file_size_before);
	if (ret < 0)
		return ret;
	img_io_reset_high_end(img->io);
	ret = img->drv->compact(img, o, r);
	r->file_size_peak = peak_size(img, r->file_size_before);
	if (ret < 0)
		return ret;
	if (o->dry_run) {
		r->file_size_peak = r->file_size_before;
		/* space freed in an add-cow's image file leaves the size
		 * of the add-cow file as it is */
		r->file_size_after = img->data_io != img->io ?
			r->file_size_before :
			r->file_size_before > r->bytes_freed ?
			r->file_size_before - r->bytes_freed : 0;
		return 0;
	}
	return file_size(img, &r->file_size_after);
}
