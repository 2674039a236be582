/* raw.c: the raw format: the file is the disk; holes in the file read as zeros. */
#include <errno.h>

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

const struct img_driver img_raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.block_status = raw_block_status,
};
