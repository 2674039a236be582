/* qcow_create.c: writing a new, empty qcow (version 1) image laid out as qemu-img create does. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "opts.h"
#include "qcow.h"

static const char *const qcow_prealloc_modes[] = {
	"off", "falloc", "full", NULL
};

/* In qemu-img's order, so the "Formatting" line matches. */
const struct img_opt_desc img_qcow_create_opts[] = {
	{ "size", IMG_OPT_SIZE, "virtual disk size", NULL, NULL, 1 },
	{ "backing_file", IMG_OPT_STR, "file name of a base image",
	  NULL, NULL, 0 },
	{ "backing_fmt", IMG_OPT_STR,
	  "format of the base image (checked, not stored: qcow cannot hold it)",
	  NULL, NULL, 0 },
	/* qemu-img accepts it but truncates the file before writing the
	 * header, so it never changes the result; neither does it here. */
	{ "preallocation", IMG_OPT_STR,
	  "accepted for qemu-img compatibility; has no effect",
	  qcow_prealloc_modes, "off", 0 },
	{ NULL, 0, NULL, NULL, NULL, 0 },
};

/* The geometry qemu-img picks: 4 KiB clusters and 512-entry L2 tables
 * alone, 512-byte clusters (no copying of unchanged sectors) and 32 KiB
 * L2 tables over a backing file. */
static void pick_geometry(int has_backing, uint8_t *cluster_bits,
			  uint8_t *l2_bits)
{
	*cluster_bits = has_backing ? 9 : 12;
	*l2_bits = has_backing ? 12 : 9;
}

/* L1 entries for size, refusing what QEMU would not open. */
static int l1_entries(struct img *img, uint64_t size, unsigned shift,
		      uint64_t *n)
{
	if (size == 0)
		return img_error(img, -EINVAL,
				 "image size is too small, cannot be zero length");
	if (size > UINT64_MAX - (1ULL << shift))
		return img_error(img, IMG_E_TOOBIG, "image size too large");
	*n = (size + (1ULL << shift) - 1) >> shift;
	if (*n > INT_MAX / 8)
		return img_error(img, IMG_E_TOOBIG,
				 "image size too large for a qcow L1 table");
	return 0;
}

static void encode_header(uint8_t *buf, uint64_t size, const char *backing,
			  size_t backing_len, uint8_t cluster_bits,
			  uint8_t l2_bits, uint64_t l1_offset)
{
	put_be32(buf, IMG_QCOW_MAGIC);
	put_be32(buf + 4, IMG_QCOW_VERSION);
	if (backing_len) {
		put_be64(buf + 8, IMG_QCOW_HEADER_LEN);
		put_be32(buf + 16, (uint32_t)backing_len);
		memcpy(buf + IMG_QCOW_HEADER_LEN, backing, backing_len);
	}
	/* mtime (20) stays 0, as qemu-img writes it */
	put_be64(buf + 24, size);
	buf[32] = cluster_bits;
	buf[33] = l2_bits;
	put_be32(buf + 36, IMG_QCOW_CRYPT_NONE);
	put_be64(buf + 40, l1_offset);
}

int img_qcow_create(struct img *img, const struct img_opts *o)
{
	const char *backing = img_opt_str(o, "backing_file");
	size_t backing_len = backing ? strlen(backing) : 0;
	uint8_t cluster_bits, l2_bits, *hdr;
	uint64_t l1_size = 0, l1_bytes;
	size_t hdr_len;
	int ret;

	pick_geometry(backing != NULL, &cluster_bits, &l2_bits);
	/* "fat:" names QEMU's virtual FAT directory: kept out of the header */
	if (backing && !strcmp(backing, "fat:"))
		backing_len = 0;
	if (backing_len > IMG_QCOW_MAX_BACKING_LEN)
		return img_error(img, -ENAMETOOLONG,
				 "backing file name longer than %d bytes",
				 IMG_QCOW_MAX_BACKING_LEN);
	ret = l1_entries(img, img->size, cluster_bits + l2_bits, &l1_size);
	if (ret < 0)
		return ret;
	/* The L1 follows the 8-aligned header and fills whole sectors. */
	hdr_len = (IMG_QCOW_HEADER_LEN + backing_len + 7) & ~(size_t)7;
	l1_bytes = (l1_size * 8 + 511) & ~511ULL;
	hdr = calloc(1, hdr_len);
	if (!hdr)
		return img_error(img, -ENOMEM, "out of memory");
	encode_header(hdr, img->size, backing, backing_len, cluster_bits,
		      l2_bits, hdr_len);
	ret = img_io_pwrite(img->io, hdr, hdr_len, 0);
	free(hdr);
	if (ret == 0)
		ret = img_write_zeros(img->io, hdr_len, l1_bytes);
	if (ret == 0)
		ret = img_io_truncate(img->io, hdr_len + l1_bytes);
	if (ret < 0)
		return img_error(img, ret, "cannot write the qcow header: %s",
				 img_strerror(ret));
	return 0;
}
