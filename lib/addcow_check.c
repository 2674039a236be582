/* addcow_check.c: the add-cow driver's check: bitmap length against the image file, bits past the disk, the backing file; -r clears what lies past the disk. */
#include <errno.h>
#include <stdlib.h>

#include "addcow.h"
#include "check.h"

/* Bits set past the last cluster of the disk, in the last byte the disk
 * needs and in any bytes after it: clusters written to an image file that
 * has since shrunk (or noise). They are unreachable: leaks. */
static int stray_bits(struct img_check_ctx *c, struct addcow *a,
		      uint64_t *stray)
{
	struct img *img = c->img;
	uint64_t from = a->clusters, to = a->bitmap_stored * 8;

	*stray = 0;
	for (uint64_t cl = from; cl < to; cl++) {
		int bit;

		/* whole zero bytes at a time */
		if (cl % 8 == 0 && to - cl >= 8) {
			uint8_t b;
			int ret = img_read_meta(img, "COW bitmap", &b, 1,
						a->h.header_size + cl / 8);
			if (ret < 0)
				return ret;
			if (!b) {
				cl += 7;
				continue;
			}
		}
		bit = img_addcow_bit(img, cl);
		if (bit < 0)
			return bit;
		*stray += (uint64_t)bit;
	}
	return 0;
}

int img_addcow_clear_stray(struct img *img)
{
	struct addcow *a = img->priv;
	uint64_t end = a->h.header_size + a->bitmap_bytes;
	int ret = img_addcow_set_bits(img, a->clusters,
				      a->bitmap_bytes * 8 - a->clusters, 0);

	if (ret == 0)
		ret = img_addcow_flush_bits(img);
	if (ret == 0 && img->file_size > end)
		ret = img_io_truncate(img->io, end);
	if (ret == 0)
		ret = img_io_flush(img->io);
	if (ret < 0)
		return img_error(img, ret, "cannot repair the COW bitmap of '%s': %s",
				 img->path, img_strerror(ret));
	a->bitmap_stored = a->bitmap_bytes;
	a->win_at = UINT64_MAX;
	return 0;
}

/* -r: clear the stray bits and cut the bitmap to its length. */
static int fix_stray(struct img_check_ctx *c, uint64_t n)
{
	int ret = img_addcow_clear_stray(c->img);

	if (ret < 0)
		return ret;
	c->res->leaks_fixed += n;
	img_check_say(c, "Cleared %llu bits past the end of the disk",
		      (unsigned long long)n);
	return 0;
}

static void count_allocated(struct img_check_ctx *c, struct addcow *a)
{
	for (uint64_t cl = 0; cl < a->clusters; cl++) {
		int bit = img_addcow_bit(c->img, cl);

		if (bit < 0) {
			c->res->check_errors++;
			return;
		}
		c->res->allocated_clusters += (uint64_t)bit;
		if (cl % 65536 == 0)
			img_check_progress(c, cl, a->clusters);
	}
}

int img_addcow_check(struct img_check_ctx *c)
{
	struct img *img = c->img;
	struct addcow *a = img->priv;
	uint64_t stray = 0;
	int ret;

	c->res->total_clusters = a->clusters;
	if (a->bitmap_stored < a->bitmap_bytes) {
		img_check_say(c, "ERROR the COW bitmap holds %llu bytes; the %llu clusters of image file '%s' need %llu",
			      (unsigned long long)a->bitmap_stored,
			      (unsigned long long)a->clusters, img->data_path,
			      (unsigned long long)a->bitmap_bytes);
		c->res->corruptions++;
	}
	if (img->backing_name && !img->in_memory) {
		ret = img_open_backing(img);
		/* a backing file someone writes is no damage: say who holds it */
		if (ret == IMG_E_LOCKED)
			return ret;
		if (ret < 0) {
			img_check_say(c, "ERROR %s", img_errmsg(img));
			c->res->check_errors++;
		}
	}
	ret = stray_bits(c, a, &stray);
	if (ret < 0)
		return ret;
	if (stray) {
		img_check_say(c, "Leaked: %llu bits set past the end of the disk (cluster %llu on)",
			      (unsigned long long)stray,
			      (unsigned long long)a->clusters);
		c->res->leaks += stray;
	}
	count_allocated(c, a);
	/* a longer bitmap of clear bits is trimmed too, quietly */
	if (c->fix && a->bitmap_stored >= a->bitmap_bytes &&
	    (stray || a->bitmap_stored > a->bitmap_bytes))
		return fix_stray(c, stray);
	img_check_progress(c, a->clusters, a->clusters);
	return 0;
}
