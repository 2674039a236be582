/* addcow_check.c: the add-cow driver's check: bitmap length against the image file, bits past the disk, the backing file; -r clears what lies past the disk. */
#include <errno.h>
#include <stdlib.h>

#include "addcow.h"
#include "check.h"

/* Bits set past the last cluster of the disk, in the last byte the disk
 * needs and in any bytes the file holds after it: clusters written to an
 * image file that has since shrunk (or noise). They are unreachable:
 * leaks. Only the data the file stores past the bitmap is read. */
static int stray_bits(struct img_check_ctx *c, struct addcow *a,
		      uint64_t *stray)
{
	struct img *img = c->img;
	uint64_t pos = a->h.header_size + a->bitmap_bytes, start, end, n;
	uint8_t buf[4096];
	int ret;

	*stray = 0;
	if (a->bitmap_stored < a->bitmap_bytes)
		return 0;
	ret = img_addcow_count_set(img, a->clusters,
				   a->bitmap_bytes * 8 - a->clusters, &n);
	if (ret < 0)
		return ret;
	*stray = n;
	while (pos < img->file_size) {
		ret = img_io_next_data(img->io, pos, &start, &end);
		if (ret == -ENXIO)
			break;
		if (ret < 0)
			return img_error(img, ret, "cannot find data in '%s': %s",
					 img->path, img_strerror(ret));
		end = img_min_u64(end, img->file_size);
		for (pos = start; pos < end; pos += n) {
			n = img_min_u64(sizeof(buf), end - pos);
			ret = img_read_meta(img, "COW bitmap", buf, n, pos);
			if (ret < 0)
				return ret;
			for (uint64_t i = 0; i < n; i++)
				*stray += (uint64_t)__builtin_popcount(buf[i]);
		}
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
	uint64_t set;

	if (img_addcow_count_set(c->img, 0, a->clusters, &set) < 0)
		c->res->check_errors++;
	else
		c->res->allocated_clusters = set;
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
