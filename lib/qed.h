/* qed.h: QED on-disk constants and decoded header, shared by the reader and later check/write code. */
#ifndef IMG_QED_H
#define IMG_QED_H

#include <stdint.h>

#include "opts.h"
#include "tcache.h"

#define IMG_QED_MAGIC		0x00444551U	/* "QED\0", little-endian */
#define IMG_QED_HEADER_LEN	64

#define IMG_QED_MIN_CLUSTER	4096U
#define IMG_QED_MAX_CLUSTER	(64U << 20)
#define IMG_QED_MIN_TABLE	1U		/* clusters per table */
#define IMG_QED_MAX_TABLE	16U
#define IMG_QED_MAX_BACKING_LEN	4095U		/* QEMU's PATH_MAX - 1 */

/* features */
#define IMG_QED_F_BACKING_FILE	0x1ULL
#define IMG_QED_F_NEED_CHECK	0x2ULL
#define IMG_QED_F_NO_PROBE	0x4ULL		/* backing file is raw */
#define IMG_QED_F_KNOWN		0x7ULL

/* L2 entries below any valid cluster offset */
#define IMG_QED_L2_UNALLOC	0
#define IMG_QED_L2_ZERO		1

/* The 64-byte header, decoded; sizes in bytes except where noted. */
struct img_qed_header {
	uint32_t magic;
	uint32_t cluster_size;
	uint32_t table_size;		/* clusters */
	uint32_t header_size;		/* clusters */
	uint64_t features;
	uint64_t compat_features;
	uint64_t autoclear_features;
	uint64_t l1_table_offset;
	uint64_t image_size;
	uint32_t backing_filename_offset;
	uint32_t backing_filename_size;
};

/* Reader state (img->priv), shared with the writer and later the checker. */
struct qed {
	struct img_qed_header h;
	uint64_t file_size;		/* rounded down to whole clusters */
	uint64_t header_bytes;
	unsigned cluster_bits;
	unsigned l1_shift;		/* guest bits one L1 entry covers */
	uint64_t nelems;		/* entries per table */
	uint64_t l1_entries;		/* entries below image_size */
	uint64_t l1_read;		/* entries read: l1_entries, or for a
					 * check the whole table (as far as
					 * the file holds it) */
	uint64_t *l1;
	uint64_t chunk_entries;		/* L2 entries per cached piece */
	struct img_tcache *l2_cache;
};

void img_qed_decode_header(const uint8_t *buf, struct img_qed_header *h);

/* Why off cannot hold a cluster (or a table_size-cluster table), or NULL
 * if it can: alignment, header, end of file (rounded down). */
const char *img_qed_cluster_problem(const struct qed *q, uint64_t off);
const char *img_qed_table_problem(const struct qed *q, uint64_t off);

/* qed_check.c: the driver's check. */
struct img_check_ctx;
int img_qed_check(struct img_check_ctx *c);
/* Point L1 entry idx at host (0: no table), on disk and in memory. */
int img_qed_set_l1(struct img_check_ctx *c, uint64_t idx, uint64_t host);
/* qed_compact.c: the driver's compact. */
struct img;
struct img_compact_opts;
struct img_compact_result;
int img_qed_compact(struct img *img, const struct img_compact_opts *o,
		    struct img_compact_result *r);

/* qed_demote.c: the driver's demote. */
struct img_demote_opts;
struct img_demote_result;
int img_qed_demote(struct img *img, const struct img_demote_opts *o,
		   struct img_demote_result *r);

/* Largest virtual size the geometry can address (saturating). */
uint64_t img_qed_max_image_size(uint32_t cluster_size, uint32_t table_size);

/* qed_create.c: the options img-create takes, and the driver's create. */
struct img;
extern const struct img_opt_desc img_qed_create_opts[];
int img_qed_create(struct img *img, const struct img_opts *o);
/* The size to make an image that a stream of unknown length fills: the
 * most the L1 table maps (its room does not depend on the size). */
uint64_t img_qed_stream_size(const struct img_opts *o);

/* qed_write.c: the sequential writer (writer.h). */
struct img_writer_ops;
extern const struct img_writer_ops img_qed_writer;

#endif
