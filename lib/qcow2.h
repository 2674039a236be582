/* qcow2.h: qcow2 on-disk constants and the decoded header, shared by the reader and (later) check and writer. */
#ifndef IMG_QCOW2_H
#define IMG_QCOW2_H

#include <stdint.h>

#include "tcache.h"

#define QCOW2_MAGIC            0x514649fbu   /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN    72
#define QCOW2_V3_HEADER_MIN    104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21

/* Limits QEMU 7.2 enforces on open. */
#define QCOW2_MAX_REFTABLE_BYTES  (8u << 20)
#define QCOW2_MAX_L1_BYTES        (32u << 20)
#define QCOW2_MAX_SNAPSHOTS       65536u
#define QCOW2_MAX_SNAPSHOT_TABLE  (64u << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA  1024u
#define QCOW2_SNAPSHOT_FIXED_LEN  40
#define QCOW2_MAX_BACKING_NAME    1023u
#define QCOW2_MAX_BACKING_FMT     15u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       0x1ull
#define QCOW2_INCOMPAT_CORRUPT     0x2ull
#define QCOW2_INCOMPAT_DATA_FILE   0x4ull
#define QCOW2_INCOMPAT_COMPRESSION 0x8ull
#define QCOW2_INCOMPAT_EXTL2       0x10ull
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS 0x1ull
#define QCOW2_AUTOCLEAR_BITMAPS    0x1ull
#define QCOW2_AUTOCLEAR_DATA_RAW   0x2ull

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES  1
#define QCOW2_CRYPT_LUKS 2

/* Header extension types. */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
#define QCOW2_EXT_FDE          0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

/* L1/L2 entries. */
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull
#define QCOW2_L2_RESERVED_EXT  0x3f000000000001ffull  /* bit 0 too */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       1ull
#define QCOW2_SUBCLUSTERS      32
#define QCOW2_REFTABLE_RESERVED 0x1ffull

/* Bitmap directory. */
#define QCOW2_BITMAP_ENTRY_FIXED  24
#define QCOW2_MAX_BITMAPS         65535u
#define QCOW2_MAX_BITMAP_DIR      (1024u * 65535u)
#define QCOW2_MAX_BITMAP_TABLE    0x8000000u
#define QCOW2_MAX_BITMAP_PHYS     (512ull << 20)
#define QCOW2_MAX_BITMAP_NAME     1023u
#define QCOW2_BITMAP_IN_USE       0x1u
#define QCOW2_BITMAP_AUTO         0x2u
#define QCOW2_BITMAP_TYPE_DIRTY   1
#define QCOW2_MIN_GRANULARITY_BITS 9
#define QCOW2_MAX_GRANULARITY_BITS 31

/* The header as stored (v2 fields, then the v3 additions; v2 gets the
 * implied v3 values: refcount_order 4, header_length 72, zlib). */
struct img_qcow2_header {
	uint32_t version;
	uint64_t backing_offset;
	uint32_t backing_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
};

/* Where a snapshot's L1 lives (check walks these trees). */
struct img_qcow2_snap_l1 {
	uint64_t offset;
	uint32_t size;
};

/* Driver state (img->priv), kept whole for img-check and the writer. */
struct img_qcow2 {
	struct img_qcow2_header h;
	uint64_t cluster_size;
	unsigned l2_bits;          /* log2 of entries per L2 table */
	unsigned entry_len;        /* 8, or 16 with extended L2 */
	int extended_l2;
	int has_data_file;
	char *data_file_name;      /* as stored in the extension */

	uint64_t *l1;              /* active L1, decoded */
	struct img_tcache *l2_cache;
	const uint8_t *l2;         /* last L2 table fetched from l2_cache */
	uint64_t l2_offset;        /* its host offset, 0 = none */

	char *incompat_names[64];  /* from the feature name table */

	uint64_t bitmap_dir_offset, bitmap_dir_size;
	uint32_t nb_bitmaps;       /* 0 unless the extension is valid */

	struct img_qcow2_snap_l1 *snap_l1;  /* h.nb_snapshots entries */
	uint64_t snapshot_table_len;

	uint64_t *reftable;        /* decoded on first use */
	uint64_t reftable_entries;
	struct img_tcache *refblock_cache;
	int prealloc_checked;
	int metadata_prealloc;     /* QEMU's "metadata preallocation" guess */
};

/* Header extensions, snapshot entries and bitmap entries are 8-aligned. */
static inline uint64_t img_qcow2_align8(uint64_t n)
{
	return (n + 7) & ~7ull;
}

struct img;
struct img_extent;
struct img_walk_layout;

/* qcow2.c: open the external data file on first need. */
int img_qcow2_open_data_file(struct img *img);

/* qcow2_meta.c: the snapshot table and the bitmap directory, into
 * img->snapshots / img->bitmaps and the snapshot L1 list. */
int img_qcow2_read_snapshots(struct img *img, struct img_qcow2 *q);
int img_qcow2_read_bitmaps(struct img *img, struct img_qcow2 *q);
const char *img_qcow2_bitmap_entry_problem(const struct img *img,
					   const struct img_qcow2 *q,
					   const uint8_t *b, uint64_t left,
					   uint64_t *len);

/* qcow2_map.c: the driver's block_status and walk_layout. */
int img_qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
			   struct img_extent *ext);
int img_qcow2_walk_layout(struct img *img, struct img_walk_layout *lay);

/* qcow2_refcount.c: whether QEMU would take the image for metadata-
 * preallocated (then map shows host-file holes as zeros). */
int img_qcow2_detect_prealloc(struct img *img, struct img_qcow2 *q);

/* Refcount of host cluster `cluster` (0 past the refcount table or in an
 * unallocated refcount block). For img-check and the map heuristic. */
int img_qcow2_refcount(struct img *img, uint64_t cluster, uint64_t *refcount);

/* Entry j of a refcount block with 2^order-bit entries (sub-byte widths
 * packed LSB first, whole bytes big-endian): read it, or store v. */
uint64_t img_qcow2_refblock_get(const uint8_t *blk, uint64_t j, unsigned order);
void img_qcow2_refblock_set(uint8_t *blk, uint64_t j, unsigned order,
			    uint64_t v);

/* qcow2_check.c: img-check (check.h). */
struct img_check_ctx;
int img_qcow2_check(struct img_check_ctx *c);

/* qcow2_compact.c: the driver's compact. */
struct img_compact_opts;
struct img_compact_result;
int img_qcow2_compact(struct img *img, const struct img_compact_opts *o,
		      struct img_compact_result *r);

/* qcow2_demote.c: the driver's demote. */
struct img_demote_opts;
struct img_demote_result;
int img_qcow2_demote(struct img *img, const struct img_demote_opts *o,
		     struct img_demote_result *r);
/* qcow2_rewidth.c: refcounts rebuilt at 16 bits past the end of the file
 * (the stored ones must be exact), the header switched in one write; and
 * how much that grows the file. */
int img_qcow2_rewidth(struct img_check_ctx *c);
int img_qcow2_rewidth_cost(struct img *img, uint64_t *growth);

/* qcow2_create.c: the creation options and the image writer. */
#include "opts.h"
extern const struct img_opt_desc img_qcow2_create_opts[];
int img_qcow2_create(struct img *img, const struct img_opts *o);
/* The size to make an image that a stream of unknown length fills (its
 * L1 table cut to the real size at the end), or 0 where the options
 * need the size from the start (preallocation, a data file). */
uint64_t img_qcow2_stream_size(const struct img_opts *o);

/* qcow2_write.c: the sequential cluster writer (writer.h). */
struct img_writer_ops;
extern const struct img_writer_ops img_qcow2_writer;

#endif
