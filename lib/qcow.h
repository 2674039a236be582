/* qcow.h: qcow (version 1) on-disk constants and decoded header, shared by the reader and later check/write code. */
#ifndef IMG_QCOW_H
#define IMG_QCOW_H

#include <stdint.h>

#include "opts.h"

#define IMG_QCOW_MAGIC		0x514649fbU	/* "QFI\xfb", big-endian */
#define IMG_QCOW_VERSION	1
#define IMG_QCOW_HEADER_LEN	48

#define IMG_QCOW_MIN_CLUSTER_BITS	9
#define IMG_QCOW_MAX_CLUSTER_BITS	16
#define IMG_QCOW_MIN_L2_BITS		6	/* 512-byte L2 table */
#define IMG_QCOW_MAX_L2_BITS		13	/* 64 KiB L2 table */
#define IMG_QCOW_MAX_BACKING_LEN	1023

#define IMG_QCOW_CRYPT_NONE	0
#define IMG_QCOW_CRYPT_AES	1

/* L2 entry with bit 63 set: compressed; see img_qcow_compressed(). */
#define IMG_QCOW_COMPRESSED	(1ULL << 63)

/* The 48-byte header, decoded; field names follow the on-disk layout. */
struct img_qcow_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t mtime;
	uint64_t size;
	uint8_t cluster_bits;
	uint8_t l2_bits;
	uint32_t crypt_method;
	uint64_t l1_table_offset;
};

/* Driver state (img->priv): the reader's, shared with the writer. */
struct img_tcache;
struct qcow {
	struct img_qcow_header h;
	uint64_t l1_size;		/* entries */
	uint64_t *l1;			/* host order; the writer keeps it current */
	size_t l2_bytes;
	struct img_tcache *l2_cache;
};

void img_qcow_decode_header(const uint8_t *buf, struct img_qcow_header *h);

/* Split a compressed L2 entry into the stream's byte offset and exact
 * byte length. */
static inline void img_qcow_compressed(uint64_t entry, unsigned cluster_bits,
				       uint64_t *host, uint64_t *len)
{
	unsigned shift = 63 - cluster_bits;

	*host = entry & ((1ULL << shift) - 1);
	*len = (entry >> shift) & ((1ULL << cluster_bits) - 1);
}

/* qcow_create.c: the options img-create takes, and the driver's create. */
struct img;
extern const struct img_opt_desc img_qcow_create_opts[];
int img_qcow_create(struct img *img, const struct img_opts *o);

/* qcow_check.c: the driver's check (qemu-img has none for qcow). */
struct img_check_ctx;
int img_qcow_check(struct img_check_ctx *c);
/* Point L1 entry idx at host (0: no table), on disk and in memory. */
int img_qcow_set_l1(struct img_check_ctx *c, uint64_t idx, uint64_t host);

/* qcow_compact.c: the driver's compact. */
struct img_compact_opts;
struct img_compact_result;
int img_qcow_compact(struct img *img, const struct img_compact_opts *o,
		     struct img_compact_result *r);

/* qcow_write.c: the sequential cluster writer (writer.h). */
struct img_writer_ops;
extern const struct img_writer_ops img_qcow_writer;

#endif
