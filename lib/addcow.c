/* addcow.c: add-cow reader: header validation, the image file beside it, the COW bitmap and block status. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "addcow.h"
#include "endian.h"
#include "lock.h"
#include "writer.h"

void img_addcow_decode(const uint8_t *buf, struct img_addcow_header *h)
{
	h->backing_offset = get_le32(buf + 8);
	h->backing_size = get_le32(buf + 12);
	h->image_offset = get_le32(buf + 16);
	h->image_size = get_le32(buf + 20);
	h->features = get_le64(buf + 24);
	h->optional_features = get_le64(buf + 32);
	h->cluster_bits = get_le32(buf + 40);
	h->header_size = get_le32(buf + 44);
	memcpy(h->backing_fmt, buf + 48, IMG_ADDCOW_FMT_LEN);
	h->backing_fmt[IMG_ADDCOW_FMT_LEN] = 0;
	memcpy(h->image_fmt, buf + 64, IMG_ADDCOW_FMT_LEN);
	h->image_fmt[IMG_ADDCOW_FMT_LEN] = 0;
}

void img_addcow_encode(uint8_t *buf, const struct img_addcow_header *h)
{
	memset(buf, 0, IMG_ADDCOW_FIXED);
	memcpy(buf, IMG_ADDCOW_MAGIC, 8);
	put_le32(buf + 8, h->backing_offset);
	put_le32(buf + 12, h->backing_size);
	put_le32(buf + 16, h->image_offset);
	put_le32(buf + 20, h->image_size);
	put_le64(buf + 24, h->features);
	put_le64(buf + 32, h->optional_features);
	put_le32(buf + 40, h->cluster_bits);
	put_le32(buf + 44, h->header_size);
	/* NUL-terminated: at most 15 bytes of name */
	memcpy(buf + 48, h->backing_fmt,
	       strnlen(h->backing_fmt, IMG_ADDCOW_FMT_LEN - 1));
	memcpy(buf + 64, h->image_fmt,
	       strnlen(h->image_fmt, IMG_ADDCOW_FMT_LEN - 1));
}

uint64_t img_addcow_bitmap_bytes(uint64_t size, unsigned bits)
{
	uint64_t clusters = (size >> bits) + !!(size & ((1ULL << bits) - 1));

	return clusters / 8 + !!(clusters % 8);
}

static int addcow_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && !memcmp(buf, IMG_ADDCOW_MAGIC, 8) ? 100 : 0;
}

/* Why the fixed fields cannot be right, or NULL. */
static const char *header_problem(const struct img_addcow_header *h,
				  uint64_t file_size)
{
	if (h->features & ~IMG_ADDCOW_F_KNOWN)
		return NULL;    /* said by the caller, as unsupported */
	if (h->cluster_bits < IMG_ADDCOW_MIN_BITS ||
	    h->cluster_bits > IMG_ADDCOW_MAX_BITS)
		return "cluster bits out of range (9 to 21)";
	if (h->header_size < IMG_ADDCOW_FIXED ||
	    h->header_size > IMG_ADDCOW_MAX_HEADER)
		return "header size out of range (80 bytes to 2 MiB)";
	if (h->header_size > file_size)
		return "header size beyond end of file";
	if (!h->image_size)
		return "no image file name";
	if (h->image_size > IMG_ADDCOW_NAME_MAX ||
	    h->backing_size > IMG_ADDCOW_NAME_MAX)
		return "file name longer than 1023 bytes";
	if (h->image_offset < IMG_ADDCOW_FIXED ||
	    (uint64_t)h->image_offset + h->image_size > h->header_size)
		return "image file name outside the header";
	if (h->backing_offset &&
	    (h->backing_offset < IMG_ADDCOW_FIXED ||
	     (uint64_t)h->backing_offset + h->backing_size > h->header_size))
		return "backing file name outside the header";
	if (h->backing_offset && !h->backing_size)
		return "empty backing file name";
	if (strlen(h->backing_fmt) == IMG_ADDCOW_FMT_LEN)
		return "backing format not NUL-terminated";
	if (strlen(h->image_fmt) == IMG_ADDCOW_FMT_LEN)
		return "image format not NUL-terminated";
	if (h->backing_fmt[0] && !h->backing_offset)
		return "a backing format without a backing file";
	return NULL;
}

/* A file name of the header, NUL-terminated; one with a NUL in it is
 * refused (a reader would see another name). */
static int read_name(struct img *img, const char *what, uint32_t off,
		     uint32_t len, char **out)
{
	char *name = malloc((size_t)len + 1);
	int ret;

	if (!name)
		return img_error(img, -ENOMEM, "out of memory");
	ret = img_read_meta(img, what, name, len, off);
	if (ret < 0) {
		free(name);
		return ret;
	}
	name[len] = 0;
	if (strlen(name) != len) {
		free(name);
		return img_error(img, IMG_E_CORRUPT, "%s holds a NUL byte", what);
	}
	*out = name;
	return 0;
}

static int same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* The names must not point back at the add-cow file, nor at each other. */
static int refuse_loops(struct img *img, const struct addcow *a)
{
	struct stat st;
	char *b;
	int self, image;

	if (img->in_memory)
		return 0;
	if (same_file(img->data_path, img->dev, img->ino))
		return img_error(img, IMG_E_CORRUPT,
				 "'%s' names itself as its image file", img->path);
	if (!img->backing_name)
		return 0;
	b = img_path_beside(img->path, img->backing_name);
	if (!b)
		return img_error(img, -ENOMEM, "out of memory");
	self = same_file(b, img->dev, img->ino);
	image = stat(img->data_path, &st) == 0 &&
		same_file(b, st.st_dev, st.st_ino);
	free(b);
	if (self)
		return img_error(img, IMG_E_CORRUPT,
				 "'%s' names itself as its backing file", img->path);
	if (image)
		return img_error(img, IMG_E_CORRUPT,
				 "'%s' names its image file '%s' as its backing file too",
				 img->path, a->image_name);
	return 0;
}

static int open_image_file(struct img *img)
{
	/* the image file is as much the format's as the add-cow file: the
	 * two are locked alike */
	return img_open_data_io(img, "image file", img->lock_use,
				IMG_LOCK_IMAGE);
}

/* The disk's size: the image file's, in whole sectors as raw reads it.
 * In memory (fuzzing: no other file is opened) an empty memory file
 * stands in for the image file, and the disk is as big as the bitmap
 * reaches, at most 64 MiB. */
static int settle_size(struct img *img, struct addcow *a)
{
	uint64_t cs = 1ULL << a->h.cluster_bits, size;
	int ret;

	if (img->in_memory) {
		uint64_t most = (64ULL << 20) >> a->h.cluster_bits;

		img->size = img_min_u64(a->bitmap_stored * 8, most)
			    << a->h.cluster_bits;
		ret = img_io_open_mem(&img->data_io, "", 0);
		return ret < 0 ? img_error(img, ret, "out of memory") : 0;
	}
	ret = open_image_file(img);
	if (ret < 0)
		return ret;
	ret = img_io_size(img->data_io, &size);
	if (ret < 0)
		return img_error(img, ret, "cannot get the size of image file '%s': %s",
				 img->data_path, img_strerror(ret));
	if (size > UINT64_MAX - cs)
		return img_error(img, IMG_E_TOOBIG, "image file '%s' too large",
				 img->data_path);
	img->size = (size + 511) & ~511ULL;
	return 0;
}

static int check_formats(struct img *img, const struct addcow *a)
{
	const char *f = a->h.image_fmt;

	if (f[0] && strcmp(f, "raw")) {
		if (img_driver_by_name(f))
			return img_error(img, IMG_E_UNSUPPORTED,
					 "image file format '%s' is not supported (only raw)",
					 f);
		return img_error(img, IMG_E_CORRUPT,
				 "unknown image file format '%s'", f);
	}
	if (a->h.backing_fmt[0] && !img_driver_by_name(a->h.backing_fmt))
		return img_error(img, IMG_E_CORRUPT,
				 "unknown backing file format '%s'", a->h.backing_fmt);
	return 0;
}

static void addcow_close(struct img *img)
{
	struct addcow *a = img->priv;

	if (!a)
		return;
	free(a->image_name);
	free(a);
	img->priv = NULL;
}

static int addcow_open(struct img *img)
{
	uint8_t buf[IMG_ADDCOW_FIXED];
	struct addcow *a;
	const char *why;
	int ret;

	if (img->file_size < IMG_ADDCOW_FIXED)
		return img_error(img, IMG_E_CORRUPT,
				 "file too short for an add-cow header (%llu bytes)",
				 (unsigned long long)img->file_size);
	ret = img_read_meta(img, "header", buf, sizeof(buf), 0);
	if (ret < 0)
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return img_error(img, -ENOMEM, "out of memory");
	img->priv = a;
	img_addcow_decode(buf, &a->h);
	if (a->h.features & ~IMG_ADDCOW_F_KNOWN)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported add-cow features 0x%llx",
				 (unsigned long long)(a->h.features & ~IMG_ADDCOW_F_KNOWN));
	why = header_problem(&a->h, img->file_size);
	if (why)
		return img_error(img, IMG_E_CORRUPT, "%s", why);
	ret = check_formats(img, a);
	if (ret == 0)
		ret = read_name(img, "image file name", a->h.image_offset,
				a->h.image_size, &a->image_name);
	if (ret == 0 && a->h.backing_offset)
		ret = read_name(img, "backing file name", a->h.backing_offset,
				a->h.backing_size, &img->backing_name);
	if (ret < 0)
		return ret;
	if (a->h.backing_fmt[0] &&
	    !(img->backing_fmt = strdup(a->h.backing_fmt)))
		return img_error(img, -ENOMEM, "out of memory");
	img->data_path = img_path_beside(img->path, a->image_name);
	if (!img->data_path)
		return img_error(img, -ENOMEM, "out of memory");
	img->cluster_size = 1u << a->h.cluster_bits;
	a->bitmap_stored = img->file_size - a->h.header_size;
	ret = refuse_loops(img, a);
	if (ret == 0)
		ret = settle_size(img, a);
	if (ret < 0)
		return ret;
	a->clusters = img_div_up(img->size, img->cluster_size);
	a->bitmap_bytes = img_addcow_bitmap_bytes(img->size, a->h.cluster_bits);
	if (a->bitmap_bytes > IMG_ADDCOW_MAX_BITMAP)
		return img_error(img, IMG_E_TOOBIG,
				 "image file '%s' too large: its COW bitmap would exceed 1 GiB (%llu clusters)",
				 img->data_path, (unsigned long long)a->clusters);
	if (a->bitmap_stored < a->bitmap_bytes && !img->checking)
		return img_error(img, IMG_E_CORRUPT,
				 "COW bitmap too short: %llu bytes for the %llu clusters of image file '%s' (%llu bytes needed)",
				 (unsigned long long)a->bitmap_stored,
				 (unsigned long long)a->clusters, img->data_path,
				 (unsigned long long)a->bitmap_bytes);
	a->win_at = UINT64_MAX;
	img_prop_str(img, "image-file", a->image_name);
	img_prop_str(img, "image-format", a->h.image_fmt[0] ? a->h.image_fmt : "raw");
	return 0;
}

/* ---- the bitmap ------------------------------------------------------ */

/* Write back the window's dirty bytes, the image file's data first when
 * editing in place: a bit never says "written" before the data is. */
int img_addcow_flush_bits(struct img *img)
{
	struct addcow *a = img->priv;
	uint64_t at;
	int ret;

	if (a->dirty_to <= a->dirty_from)
		return 0;
	if (img->write_in_place && img->data_io != img->io) {
		ret = img_io_flush(img->data_io);
		if (ret < 0)
			return img_error(img, ret, "cannot flush image file '%s': %s",
					 img->data_path, img_strerror(ret));
	}
	at = a->h.header_size + a->win_at + a->dirty_from;
	ret = img_io_pwrite(img->io, a->win + a->dirty_from,
			    (size_t)(a->dirty_to - a->dirty_from), at);
	if (ret < 0)
		return img_error(img, ret, "cannot write the COW bitmap of '%s' at 0x%llx: %s",
				 img->path, (unsigned long long)at, img_strerror(ret));
	a->dirty_from = a->dirty_to = 0;
	return 0;
}

/* Make the window hold bitmap byte b. Bytes the file does not hold (a
 * short bitmap, for a check) read as clear. */
static int load_window(struct img *img, uint64_t b)
{
	struct addcow *a = img->priv;
	uint64_t end = img_max_u64(a->bitmap_bytes, a->bitmap_stored);
	int ret;

	if (a->win_at != UINT64_MAX && b >= a->win_at && b < a->win_at + a->win_len)
		return 0;
	ret = img_addcow_flush_bits(img);
	if (ret < 0)
		return ret;
	a->win_at = b;
	a->win_len = img_min_u64(IMG_ADDCOW_WINDOW, end - b);
	ret = img_io_read_zfill(img->io, a->win, (size_t)a->win_len,
				a->h.header_size + b);
	if (ret < 0) {
		a->win_at = UINT64_MAX;
		return img_error(img, ret, "cannot read the COW bitmap of '%s' at 0x%llx: %s",
				 img->path,
				 (unsigned long long)(a->h.header_size + b),
				 img_strerror(ret));
	}
	return 0;
}

int img_addcow_bit(struct img *img, uint64_t cl)
{
	struct addcow *a = img->priv;
	int ret = load_window(img, cl / 8);

	if (ret < 0)
		return ret;
	return a->win[cl / 8 - a->win_at] >> (cl % 8) & 1;
}

int img_addcow_set_bits(struct img *img, uint64_t first, uint64_t n, int set)
{
	struct addcow *a = img->priv;

	for (uint64_t cl = first; cl < first + n; cl++) {
		uint64_t i;
		uint8_t m = (uint8_t)(1u << (cl % 8)), *p;
		int ret = load_window(img, cl / 8);

		if (ret < 0)
			return ret;
		i = cl / 8 - a->win_at;
		p = &a->win[i];
		if (!!(*p & m) == !!set)
			continue;
		*p = set ? *p | m : *p & ~m;
		if (a->dirty_to <= a->dirty_from) {
			a->dirty_from = i;
			a->dirty_to = i + 1;
		} else {
			a->dirty_from = img_min_u64(a->dirty_from, i);
			a->dirty_to = img_max_u64(a->dirty_to, i + 1);
		}
	}
	return 0;
}

int img_addcow_count_set(struct img *img, uint64_t first, uint64_t n,
			 uint64_t *set)
{
	struct addcow *a = img->priv;
	uint64_t cl = first, end = first + n;

	*set = 0;
	while (cl < end) {
		int ret;

		if (cl % 8 || end - cl < 8) {
			ret = img_addcow_bit(img, cl);
			if (ret < 0)
				return ret;
			*set += (uint64_t)ret;
			cl++;
			continue;
		}
		/* whole bytes, as many as the window holds */
		ret = load_window(img, cl / 8);
		if (ret < 0)
			return ret;
		for (uint64_t i = cl / 8 - a->win_at;
		     i < a->win_len && end - cl >= 8; i++, cl += 8)
			*set += (uint64_t)__builtin_popcount(a->win[i]);
	}
	return 0;
}

/* ---- block status ---------------------------------------------------- */

/* Set bit: the image file's bytes at the same offset; clear: the backing
 * chain's. Runs of equal bits join, a whole byte at a time. */
static int addcow_block_status(struct img *img, uint64_t off, uint64_t len,
			       struct img_extent *ext)
{
	struct addcow *a = img->priv;
	unsigned bits = a->h.cluster_bits;
	uint64_t cl = off >> bits, end = off + len, pos;
	int bit = img_addcow_bit(img, cl), b;

	if (bit < 0)
		return bit;
	pos = (cl + 1) << bits;
	while (pos < end) {
		uint64_t c = pos >> bits;

		if (c % 8 == 0 && c / 8 >= a->win_at &&
		    c / 8 < a->win_at + a->win_len &&
		    a->win[c / 8 - a->win_at] == (bit ? 0xff : 0)) {
			pos += 8ULL << bits;
			continue;
		}
		b = img_addcow_bit(img, c);
		if (b < 0)
			return b;
		if (b != bit)
			break;
		pos += 1ULL << bits;
	}
	ext->start = off;
	ext->length = img_min_u64(pos, end) - off;
	ext->kind = bit ? IMG_EXT_DATA : IMG_EXT_UNALLOC;
	ext->flags = bit ? IMG_EXT_F_OFFSET : 0;
	ext->host = bit ? off : 0;
	ext->clen = 0;
	return 0;
}

const struct img_driver img_addcow_driver = {
	.name = "add-cow",
	.probe = addcow_probe,
	.open = addcow_open,
	.close = addcow_close,
	.block_status = addcow_block_status,
	.create_opts = img_addcow_create_opts,
	.create = img_addcow_create,
	.writer = &img_addcow_writer,
	.check = img_addcow_check,
	.compact = img_addcow_compact,
	.demote = img_addcow_demote,
};
