/* raw.c: the raw format: the file is the disk; holes in the file read as zeros. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

#include "imgint.h"

/* Raw has no magic; it is what is left when nothing else matches. */
static int raw_probe(const uint8_t *buf, size_t len)
{
	return 1;
}

/* Like QEMU, see whole sectors: a partial last sector reads as zero-padded. */
static int raw_open(struct img *img)
{
	if (img->file_size > UINT64_MAX - 511)
		return img_error(img, IMG_E_TOOBIG, "file too large");
	img->size = (img->file_size + 511) & ~511ULL;
	return 0;
}

/* Data and holes as the host file system reports them (SEEK_DATA/HOLE). */
static int raw_block_status(struct img *img, uint64_t off, uint64_t len,
			    struct img_extent *ext)
{
	uint64_t start, end;
	int ret = img_io_next_data(img->io, off, &start, &end);

	ext->start = off;
	ext->host = off;
	ext->flags = IMG_EXT_F_OFFSET;
	ext->clen = 0;
	if (ret == -ENXIO) {
		start = end = UINT64_MAX;
	} else if (ret < 0) {
		return img_error(img, ret, "cannot find data at 0x%llx: %s",
				 (unsigned long long)off, img_strerror(ret));
	}
	if (start <= off) {
		ext->kind = IMG_EXT_DATA;
		ext->length = end - off;
	} else {
		ext->kind = IMG_EXT_ZERO;
		ext->length = start - off;
	}
	if (ext->length > len)
		ext->length = len;
	return 0;
}

static const char *const prealloc_modes[] = { "off", "falloc", "full", NULL };

static const struct img_opt_desc raw_create_opts[] = {
	{ "size", IMG_OPT_SIZE, "virtual disk size", NULL, NULL, 1 },
	{ "preallocation", IMG_OPT_STR,
	  "off: a sparse file; falloc: reserve the blocks; full: write zeros",
	  prealloc_modes, "off", 0 },
	{ NULL, 0, NULL, NULL, NULL, 0 },
};

/* Write n zero bytes from off, a megabyte at a time. */
int img_write_zeros(struct img_io *io, uint64_t off, uint64_t n)
{
	size_t chunk = 1u << 20;
	uint8_t *zeros = calloc(1, chunk);
	int ret = zeros ? 0 : -ENOMEM;

	while (ret == 0 && n) {
		size_t k = n < chunk ? (size_t)n : chunk;
		ret = img_io_pwrite(io, zeros, k, off);
		off += k;
		n -= k;
	}
	free(zeros);
	return ret;
}

/* Give a new file its size, reserving or writing its blocks as asked. */
int img_preallocate(struct img *img, uint64_t from, uint64_t to,
		    const char *mode)
{
	int ret;

	if (!strcmp(mode, "full"))
		ret = img_write_zeros(img->io, from, to - from);
	else if (!strcmp(mode, "falloc"))
		ret = -posix_fallocate(img->io->fd, (off_t)from,
				       (off_t)(to - from));
	else
		ret = 0;
	if (ret < 0)
		return img_error(img, ret, "cannot allocate %llu bytes at 0x%llx: %s",
				 (unsigned long long)(to - from),
				 (unsigned long long)from, img_strerror(ret));
	ret = img_io_truncate(img->io, to);
	if (ret < 0)
		return img_error(img, ret, "cannot set the file size to %llu: %s",
				 (unsigned long long)to, img_strerror(ret));
	return 0;
}

static int raw_create(struct img *img, const struct img_opts *o)
{
	return img_preallocate(img, 0, img->size,
			       img_opt_str(o, "preallocation"));
}

const struct img_driver img_raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.block_status = raw_block_status,
	.create_opts = raw_create_opts,
	.create = raw_create,
};
