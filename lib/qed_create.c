/* qed_create.c: writing a new, empty QED image laid out as qemu-img create does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "opts.h"
#include "qed.h"

static const char *const qed_prealloc_modes[] = {
	"off", "falloc", "full", NULL
};

/* In qemu-img's order, so the "Formatting" line matches. */
const struct img_opt_desc img_qed_create_opts[] = {
	{ "size", IMG_OPT_SIZE, "virtual disk size", NULL, NULL, 1 },
	{ "backing_file", IMG_OPT_STR, "file name of a base image",
	  NULL, NULL, 0 },
	{ "backing_fmt", IMG_OPT_STR, "format of the base image",
	  NULL, NULL, 0 },
	{ "cluster_size", IMG_OPT_SIZE,
	  "cluster size in bytes, a power of 2 from 4K to 64M",
	  NULL, "65536", 1 },
	{ "table_size", IMG_OPT_SIZE,
	  "L1/L2 table size in clusters, a power of 2 from 2 to 16",
	  NULL, "4", 0 },
	/* qemu-img accepts it but truncates the file before writing the
	 * header, so it never changes the result; neither does it here. */
	{ "preallocation", IMG_OPT_STR,
	  "accepted for qemu-img compatibility; has no effect",
	  qed_prealloc_modes, "off", 0 },
	{ NULL, 0, NULL, NULL, NULL, 0 },
};

static int is_pow2_between(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && img_is_pow2(v);
}

/*
 * The largest size QEMU opens: (table entries)^2 * cluster size, computed
 * in 64 bits with wrap-around as QEMU does, so that for big geometries
 * (e.g. 16M clusters) it wraps to 0 and only empty images open. Unlike
 * img_qed_max_image_size(), which saturates for our reader.
 */
static uint64_t qemu_max_image_size(uint64_t cs, uint64_t ts)
{
	uint64_t nelems = ts * cs / 8;

	return nelems * cs * nelems;
}

/* The rules QEMU applies when it opens the image. */
static int check_geometry(struct img *img, uint64_t cs, uint64_t ts,
			  uint64_t size, size_t backing_len)
{
	uint64_t max;

	if (!is_pow2_between(cs, IMG_QED_MIN_CLUSTER, IMG_QED_MAX_CLUSTER))
		return img_error(img, -EINVAL,
				 "cluster size %llu is not a power of two between 4K and 64M",
				 (unsigned long long)cs);
	if (!is_pow2_between(ts, IMG_QED_MIN_TABLE, IMG_QED_MAX_TABLE))
		return img_error(img, -EINVAL,
				 "table size %llu is not a power of two between 2 and 16",
				 (unsigned long long)ts);
	/* qemu-img creates it, but QEMU then finds every table offset
	 * invalid and cannot open the image. */
	if (ts == 1)
		return img_error(img, -EINVAL,
				 "table size 1 is not supported: QEMU cannot open such images; use 2 to 16");
	max = qemu_max_image_size(cs, ts);
	if (size > max)
		return img_error(img, IMG_E_TOOBIG,
				 "image size %llu is larger than %llu, the most QEMU accepts with cluster size %llu and table size %llu",
				 (unsigned long long)size, (unsigned long long)max,
				 (unsigned long long)cs, (unsigned long long)ts);
	/* The name lives in the header cluster, after the 64 header bytes. */
	if (backing_len > IMG_QED_MAX_BACKING_LEN ||
	    backing_len > cs - IMG_QED_HEADER_LEN)
		return img_error(img, -ENAMETOOLONG,
				 "backing file name too long (%zu bytes)",
				 backing_len);
	return 0;
}

static uint64_t backing_features(const char *backing, const char *fmt)
{
	if (!backing)
		return 0;
	/* A raw base must never be probed: its guest could fake a header. */
	if (fmt && !strcmp(fmt, "raw"))
		return IMG_QED_F_BACKING_FILE | IMG_QED_F_NO_PROBE;
	return IMG_QED_F_BACKING_FILE;
}

/* Header cluster 0: the 64-byte header, the backing name at 64. */
static void encode_header(uint8_t *buf, uint32_t cs, uint32_t ts,
			  uint64_t size, uint64_t features,
			  const char *backing, size_t backing_len)
{
	put_le32(buf, IMG_QED_MAGIC);
	put_le32(buf + 4, cs);
	put_le32(buf + 8, ts);
	put_le32(buf + 12, 1);		/* header_size: one cluster */
	put_le64(buf + 16, features);
	/* compat (24) and autoclear (32) features stay 0 */
	put_le64(buf + 40, cs);		/* L1 right after the header */
	put_le64(buf + 48, size);
	if (features & IMG_QED_F_BACKING_FILE) {
		put_le32(buf + 56, IMG_QED_HEADER_LEN);
		put_le32(buf + 60, (uint32_t)backing_len);
		memcpy(buf + IMG_QED_HEADER_LEN, backing, backing_len);
	}
}

int img_qed_create(struct img *img, const struct img_opts *o)
{
	const char *backing = img_opt_str(o, "backing_file");
	size_t backing_len = backing ? strlen(backing) : 0;
	uint64_t cs = img_opt_num(o, "cluster_size");
	uint64_t ts = img_opt_num(o, "table_size");
	size_t hdr_len;
	uint8_t *hdr;
	int ret;

	ret = check_geometry(img, cs, ts, img->size, backing_len);
	if (ret < 0)
		return ret;
	hdr_len = IMG_QED_HEADER_LEN + backing_len;
	hdr = calloc(1, hdr_len);
	if (!hdr)
		return img_error(img, -ENOMEM, "out of memory");
	encode_header(hdr, (uint32_t)cs, (uint32_t)ts, img->size,
		      backing_features(backing, img_opt_str(o, "backing_fmt")),
		      backing, backing_len);
	ret = img_io_pwrite(img->io, hdr, hdr_len, 0);
	free(hdr);
	/* An empty L1 table: table_size zeroed clusters after the header. */
	if (ret == 0)
		ret = img_write_zeros(img->io, cs, cs * ts);
	if (ret == 0)
		ret = img_io_truncate(img->io, cs * (1 + ts));
	if (ret < 0)
		return img_error(img, ret, "cannot write the QED header: %s",
				 img_strerror(ret));
	return 0;
}

uint64_t img_qed_stream_size(const struct img_opts *o)
{
	return qemu_max_image_size(img_opt_num(o, "cluster_size"),
				   img_opt_num(o, "table_size")) / 512 * 512;
}
