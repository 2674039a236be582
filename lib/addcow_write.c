/* addcow_write.c: filling an add-cow pair front to back: data into the image file at its own offsets, then the bits saying so. */
#include <errno.h>
#include <stdlib.h>

#include "addcow.h"
#include "copy.h"
#include "writer.h"

/* In place, the bits are written back (after the data is flushed) at
 * least this often, so that an interruption loses little of the work. */
#define FLUSH_EVERY (256ULL << 20)

struct addcow_writer {
	uint64_t image_end;      /* the image file's size: nothing goes past */
	uint64_t since_flush;    /* bytes written since the bits were */
};

static int addcow_begin(struct img *img)
{
	struct addcow_writer *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return img_error(img, -ENOMEM, "out of memory");
	img->wstate = w;
	ret = img_io_size(img->data_io, &w->image_end);
	if (ret < 0)
		return img_error(img, ret, "cannot get the size of image file '%s': %s",
				 img->data_path, img_strerror(ret));
	return 0;
}

/* Clusters [off, off + len) of the guest, as bit numbers. */
static void clusters_of(const struct img *img, uint64_t off, uint64_t len,
			uint64_t *first, uint64_t *n)
{
	*first = off / img->cluster_size;
	*n = img_div_up(off + len, img->cluster_size) - *first;
}

static int mark(struct img *img, uint64_t off, uint64_t len, int set)
{
	struct addcow_writer *w = img->wstate;
	uint64_t first, n;
	int ret;

	clusters_of(img, off, len, &first, &n);
	ret = img_addcow_set_bits(img, first, n, set);
	if (ret < 0)
		return ret;
	w->since_flush += len;
	if (img->write_in_place && w->since_flush >= FLUSH_EVERY) {
		w->since_flush = 0;
		return img_addcow_flush_bits(img);
	}
	return 0;
}

static int addcow_data(struct img *img, uint64_t off, const uint8_t *buf,
		       uint64_t len)
{
	struct addcow_writer *w = img->wstate;
	uint64_t n = off < w->image_end ? img_min_u64(len, w->image_end - off) : 0;
	int ret = n ? img_write_data(img, img->data_io, buf, n, off) : 0;

	if (ret < 0)
		return img_error(img, ret, "cannot write image file '%s' at 0x%llx: %s",
				 img->data_path, (unsigned long long)off,
				 img_strerror(ret));
	return mark(img, off, len, 1);
}

/* Zeros whatever the backing file holds: the image file's range punched
 * (when editing in place; a new image file is all hole already), then the
 * bits set. Without a backing file a clear bit reads zeros too. */
static int addcow_zero(struct img *img, uint64_t off, uint64_t len)
{
	struct addcow_writer *w = img->wstate;
	uint64_t n = off < w->image_end ? img_min_u64(len, w->image_end - off) : 0;
	int ret = 0;

	if (img->write_in_place && n) {
		ret = img_io_punch(img->data_io, off, n);
		if (ret == -EOPNOTSUPP || ret == -ENOSYS)
			ret = img_write_zeros(img->data_io, off, n);
	}
	if (ret < 0)
		return img_error(img, ret, "cannot zero image file '%s' at 0x%llx: %s",
				 img->data_path, (unsigned long long)off,
				 img_strerror(ret));
	if (!img->backing_name && !img->write_in_place)
		return 0;
	return mark(img, off, len, !!img->backing_name);
}

static int addcow_finish(struct img *img)
{
	int ret = img_addcow_flush_bits(img);

	if (ret == 0 && img->write_in_place) {
		ret = img_io_flush(img->io);
		if (ret < 0)
			img_error(img, ret, "cannot flush '%s': %s", img->path,
				  img_strerror(ret));
	}
	return ret;
}

static void addcow_end(struct img *img)
{
	free(img->wstate);
	img->wstate = NULL;
}

const struct img_writer_ops img_addcow_writer = {
	.begin = addcow_begin,
	.data = addcow_data,
	.zero = addcow_zero,
	.finish = addcow_finish,
	.end = addcow_end,
};
