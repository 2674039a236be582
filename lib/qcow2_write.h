/* qcow2_write.h: the qcow2 writer's private state, shared by qcow2_write.c (tables and data) and qcow2_wrefs.c (refcounts). */
#ifndef IMG_QCOW2_WRITE_H
#define IMG_QCOW2_WRITE_H

#include <stdint.h>

struct img;
struct img_io;

#define Q2W_NONE UINT64_MAX
#define Q2W_REFTABLE_FIELDS 48 /* header: reftable offset (8), clusters (4) */

/* The refcount table, decoded and kept whole: at most
 * QCOW2_MAX_REFTABLE_BYTES, whatever the image size. Entries of blocks
 * allocated but not yet written carry Q2W_FRESH in their reserved bits. */
struct q2w_reftable {
	uint64_t *e;
	uint64_t n;                /* entries in e */
	uint64_t used;             /* entries up to the last block in use */
	uint64_t disk_n;           /* entries the table in the file holds */
	uint64_t offset, clusters; /* where the table lives */
	int moved;                 /* a new, bigger table replaces the old */
	uint64_t lo, hi;           /* entries changed in place: [lo, hi) */
};

struct q2_writer {
	struct img_qcow2 *q;
	uint64_t cs;
	unsigned cb;               /* cluster_bits */
	unsigned l1_shift;         /* log2 of the guest bytes an L2 maps */
	uint64_t first_new;        /* the old end of file, cluster aligned:
				    * everything from here on is ours */
	uint64_t next;             /* allocation pointer; byte granular
				    * after compressed data */

	/* Refcounts (qcow2_wrefs.c). Allocation only appends, so clusters
	 * get their counts as they are claimed, straight into the one
	 * refcount block held here; it goes to disk when left. */
	unsigned block_shift;      /* log2 of the clusters a block counts */
	uint64_t refmax;           /* largest refcount the width holds */
	struct q2w_reftable rt;
	uint8_t *blk;              /* the refcount block at hand */
	uint64_t blk_index;        /* its reftable slot, or Q2W_NONE */
	int blk_changed;
	uint64_t *freed;           /* old clusters losing one reference each,
				    * applied in batches */
	uint64_t nfreed, freed_cap;

	uint64_t l2_index;         /* L1 slot of the table in l2, or Q2W_NONE */
	uint8_t *l2;
	int l2_changed;
	uint64_t peek_index;       /* L1 slot of the table in peek, or none */
	uint8_t *peek;             /* a table looked at ahead of a data call */
	int l1_changed;

	uint64_t *hosts;           /* host offset per cluster of a data call */
	uint64_t hosts_cap;
	uint8_t *zeros;            /* zeros, for v2 over a backing file */
	int marked;                /* begin set the dirty bit */
};

static inline uint64_t q2w_round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* qcow2_write.c */
int img_q2w_write_at(struct img *img, struct img_io *io, const char *what,
		     const void *buf, uint64_t len, uint64_t off);

/* qcow2_wrefs.c: read the refcount table (after first_new is known). */
int img_q2w_refs_begin(struct img *img, struct q2_writer *w);
/* n whole clusters at the end of the file, each referenced once. */
int img_q2w_alloc(struct img *img, struct q2_writer *w, uint64_t n,
		  uint64_t *host);
/* Where the next compressed stream starts: in the partly used cluster
 * while its refcount has room, else at the next cluster. */
int img_q2w_stream_start(struct img *img, struct q2_writer *w,
			 uint64_t *host);
/* Account for a stream written at [host, end) (host from stream_start). */
int img_q2w_add_stream(struct img *img, struct q2_writer *w, uint64_t host,
		       uint64_t end);
/* One reference less on an old cluster, applied later in a batch. */
int img_q2w_drop_ref(struct img *img, struct q2_writer *w, uint64_t cluster);
/* Apply the dropped references if there are many; call only when no
 * table in the file still names the clusters (after put_table). */
int img_q2w_refs_checkpoint(struct img *img, struct q2_writer *w);
/* At finish: the table grown if needed, every count written. */
int img_q2w_settle_refcounts(struct img *img, struct q2_writer *w);
void img_q2w_refs_end(struct q2_writer *w);

#endif
