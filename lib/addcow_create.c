/* addcow_create.c: new add-cow files: options, the image file (used if it exists, else made sparse and atomically), header and an all-clear bitmap. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addcow.h"
#include "lock.h"
#include "opts.h"
#include "outfile.h"

static const char *const image_fmts[] = { "raw", NULL };

const struct img_opt_desc img_addcow_create_opts[] = {
	{ "size", IMG_OPT_SIZE,
	  "virtual disk size (default: the image file's, else the backing file's)",
	  NULL, NULL, 1 },
	{ "image_file", IMG_OPT_STR,
	  "the file holding the data (raw), made if missing", NULL, NULL, 1 },
	{ "image_fmt", IMG_OPT_STR, "format of the image file", image_fmts,
	  "raw", 0 },
	{ "backing_file", IMG_OPT_STR, "file name of a base image", NULL, NULL, 0 },
	{ "backing_fmt", IMG_OPT_STR, "image format of the base image", NULL,
	  NULL, 0 },
	{ "cluster_size", IMG_OPT_SIZE,
	  "bytes one bit of the COW bitmap stands for (512 to 2M)", NULL,
	  "65536", 1 },
	{ NULL, 0, NULL, NULL, NULL, 0 },
};

int img_addcow_create_size(struct img *img, const char *path,
			   const struct img_opts *o, uint64_t *size)
{
	const char *name = img_opt_str(o, "image_file");
	char *where;
	struct stat st;
	int ret;

	if (!name || !*name)
		return 0;
	where = img_path_beside(path, name);
	if (!where)
		return img_error(img, -ENOMEM, "out of memory");
	ret = stat(where, &st);
	free(where);
	if (ret < 0)
		return 0;
	*size = (uint64_t)st.st_size;
	return 1;
}

static int check_options(struct img *img, const struct img_opts *o,
			 uint64_t *cs)
{
	const char *image = img_opt_str(o, "image_file");
	const char *backing = img_opt_str(o, "backing_file");
	const char *bfmt = img_opt_str(o, "backing_fmt");

	*cs = img_opt_num(o, "cluster_size");
	if (!img_is_pow2(*cs) || *cs < (1u << IMG_ADDCOW_MIN_BITS) ||
	    *cs > (1u << IMG_ADDCOW_MAX_BITS))
		return img_error(img, -EINVAL,
				 "cluster size must be a power of two between 512 and 2M");
	if (!image || !*image)
		return img_error(img, -EINVAL,
				 "an add-cow file needs an image file (-o image_file=NAME)");
	if (strlen(image) > IMG_ADDCOW_NAME_MAX ||
	    (backing && strlen(backing) > IMG_ADDCOW_NAME_MAX))
		return img_error(img, -EINVAL, "file name longer than 1023 bytes");
	if (bfmt && strlen(bfmt) >= IMG_ADDCOW_FMT_LEN)
		return img_error(img, -EINVAL, "backing format name too long");
	return 0;
}

/* An existing image file: a regular file (or device) that nobody writes,
 * neither the add-cow file being replaced nor the backing file, exactly
 * as big as the disk. */
static int use_image_file(struct img *img, const char *where,
			  const struct stat *st, const struct img_opts *o)
{
	const char *backing = img_opt_str(o, "backing_file");
	struct stat t;
	int fd, ret;

	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return img_error(img, -EINVAL,
				 "image file '%s' is not a regular file", where);
	if (stat(img->path, &t) == 0 && t.st_dev == st->st_dev &&
	    t.st_ino == st->st_ino)
		return img_error(img, -EEXIST,
				 "image file '%s' is the add-cow file itself", where);
	if (backing) {
		char *b = img_path_beside(img->path, backing);

		if (!b)
			return img_error(img, -ENOMEM, "out of memory");
		ret = stat(b, &t) == 0 && t.st_dev == st->st_dev &&
		      t.st_ino == st->st_ino;
		free(b);
		if (ret)
			return img_error(img, -EEXIST,
					 "image file '%s' is the backing file", where);
	}
	if (S_ISREG(st->st_mode) && (uint64_t)st->st_size != img->size &&
	    ((uint64_t)st->st_size + 511) / 512 * 512 != img->size)
		return img_error(img, -EINVAL,
				 "image file '%s' is %llu bytes, not the %llu asked for",
				 where, (unsigned long long)st->st_size,
				 (unsigned long long)img->size);
	/* a running VM's disk is not taken */
	fd = open(where, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		return img_error(img, ret, "cannot open image file '%s': %s",
				 where, img_strerror(ret));
	}
	ret = img_lock_fd(fd, IMG_LOCK_READ, IMG_LOCK_IMAGE, 0);
	close(fd);
	if (ret < 0)
		return img_error(img, ret, "image file '%s': %s", where,
				 img_strerror(ret));
	return 0;
}

/* A new image file: sparse, the disk's size, under a temporary name
 * until the add-cow file is written. */
static int make_image_file(struct img *img, const char *where,
			   struct img_outfile *out)
{
	int ret = img_outfile_create(out, where);

	if (ret == 0 && ftruncate(out->fd, (off_t)img->size) < 0)
		ret = -errno;
	if (ret < 0)
		return img_error(img, ret, "cannot create image file '%s': %s",
				 where, img_strerror(ret));
	return 0;
}

static int write_header(struct img *img, const struct img_opts *o,
			unsigned bits)
{
	const char *image = img_opt_str(o, "image_file");
	const char *backing = img_opt_str(o, "backing_file");
	const char *bfmt = img_opt_str(o, "backing_fmt");
	struct img_addcow_header h = { 0 };
	uint8_t *buf = calloc(1, IMG_ADDCOW_HEADER_SIZE);
	uint64_t end;
	int ret;

	if (!buf)
		return img_error(img, -ENOMEM, "out of memory");
	h.image_offset = IMG_ADDCOW_FIXED;
	h.image_size = (uint32_t)strlen(image);
	if (backing && *backing) {
		h.backing_offset = h.image_offset + h.image_size;
		h.backing_size = (uint32_t)strlen(backing);
		memcpy(buf + h.backing_offset, backing, h.backing_size);
		if (bfmt)
			strcpy(h.backing_fmt, bfmt);
	}
	h.cluster_bits = bits;
	h.header_size = IMG_ADDCOW_HEADER_SIZE;
	strcpy(h.image_fmt, "raw");
	img_addcow_encode(buf, &h);
	memcpy(buf + h.image_offset, image, h.image_size);
	ret = img_io_pwrite(img->io, buf, IMG_ADDCOW_HEADER_SIZE, 0);
	free(buf);
	end = IMG_ADDCOW_HEADER_SIZE + img_addcow_bitmap_bytes(img->size, bits);
	if (ret == 0)
		ret = img_io_truncate(img->io, end);   /* all clear: a hole */
	if (ret < 0)
		return img_error(img, ret, "cannot write the add-cow header: %s",
				 img_strerror(ret));
	return 0;
}

int img_addcow_create(struct img *img, const struct img_opts *o)
{
	struct img_outfile out = { .fd = -1 };
	const char *image;
	struct stat st;
	char *where;
	uint64_t cs;
	int ret = check_options(img, o, &cs);

	if (ret < 0)
		return ret;
	image = img_opt_str(o, "image_file");
	where = img_path_beside(img->path, image);
	if (!where)
		return img_error(img, -ENOMEM, "out of memory");
	if (stat(where, &st) == 0) {
		if (img->create_flags & IMG_CREATE_NEW_FILES)
			ret = img_error(img, -EEXIST,
					"image file '%s' exists (to write into an existing pair, use -n)",
					where);
		else
			ret = use_image_file(img, where, &st, o);
	} else {
		ret = make_image_file(img, where, &out);
	}
	if (ret == 0)
		ret = write_header(img, o, img_log2(cs));
	if (ret == 0 && out.fd >= 0) {
		ret = img_outfile_commit(&out,
					 !!(img->create_flags & IMG_CREATE_SYNC));
		if (ret < 0)
			img_error(img, ret, "cannot create image file '%s': %s",
				  where, img_strerror(ret));
	}
	img_outfile_abort(&out);
	free(out.path);
	free(out.tmp);
	free(where);
	return ret;
}
