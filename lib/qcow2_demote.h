/* qcow2_demote.h: what the qcow2 demotion's files share (qcow2_demote.c, qcow2_unextend.c): its state and helpers. */
#ifndef IMG_QCOW2_DEMOTE_H
#define IMG_QCOW2_DEMOTE_H

#include <stdint.h>

#include "check.h"
#include "qcow2.h"

/* What becomes of one zero-cluster entry. */
enum act_kind {
	ACT_UNALLOC,    /* entry 0: the chain reads zeros there */
	ACT_IN_PLACE,   /* preallocated: its cluster gets zeros, flag off */
	ACT_ALLOC,      /* a new cluster of zeros, refcount as its table's */
	ACT_ZSTD,       /* a zstd cluster: stored plain in a new cluster,
			 * refcount as its table's (readable whatever the
			 * header's compression type says) */
	ACT_ZLIB,       /* once the header says zlib: such a plain cluster
			 * deflated into a new cluster */
};
struct act {
	uint64_t entry_off;     /* host offset of the L2 entry */
	uint64_t old;           /* the entry as stored */
	uint64_t refs;          /* ACT_ALLOC: refcount of its L2 table */
	uint64_t host;          /* ACT_ALLOC, ACT_ZSTD, ACT_ZLIB: the new cluster */
	uint64_t chost, clen;   /* ACT_ZSTD: the stream; ACT_ZLIB: the plain
				 * cluster */
	uint64_t zlen;          /* ACT_ZLIB: zlib stream length */
	unsigned cb;            /* cluster bits */
	enum act_kind kind;
};

struct q2demote {
	struct img *img;
	struct img_qcow2 *q;
	const struct img_demote_opts *o;
	struct img_check_ctx c;
	struct img_check res;
	uint8_t *buf;                /* one cluster of scratch */
	uint64_t l2_refs;            /* refcount of the table walked */
	struct act *acts;
	size_t nacts, cap;
	uint64_t allocs, in_place, tables, compressed, zstd_plain;
	uint8_t *hdr;                /* cluster 0 as stored */
	int has_feature_table;
	int was_dirty;               /* the dirty bit was set at the start */
	/* The walks: zero entries that become unallocated are counted (or,
	 * with write_unalloc, cleared on the spot: nothing else depends on
	 * them); each table is walked once, shared or not. */
	int write_unalloc;
	uint64_t unalloc;
	uint64_t *seen;              /* tables walked */
	size_t nseen, capseen;
	int table_zero;              /* the table walked has zero entries */
};

/* qcow2_demote.c */
/* Whether the backing chain reads zeros over the cluster at guest (1),
 * not (0), or an error; past the virtual size (beyond) always 1. */
int q2d_chain_reads_zero(struct q2demote *k, uint64_t guest, int beyond);
/* An L1 table of n entries at off, decoded into a new array *l1. */
int q2d_read_l1(struct q2demote *k, uint64_t off, uint32_t n, uint64_t **l1);
int q2d_write_meta(struct q2demote *k, const char *what, const void *buf,
		   size_t len, uint64_t off);
/* The refcounts made exact (dirty repaired, leaks given back), or the
 * image refused. */
int q2d_exact_refcounts(struct q2demote *k);
void q2d_reset_l2_cache(struct q2demote *k);
/* n new clusters past the end, cluster i counted refs[i] times (durable
 * before it returns); *first_host: the first one. */
int q2d_claim_clusters(struct q2demote *k, uint64_t n, const uint64_t *refs,
		       uint64_t *first_host);

/* Cluster 0 rewritten in one write from q->h (version 2: the 72-byte
 * header), the extensions kept as q->h says (the feature name table if
 * keep_names). */
int q2d_write_header(struct q2demote *k, int version, int keep_names);

/* qcow2_unextend.c: the tree rebuilt with standard tables and every data
 * cluster in the image: extended L2 made standard, or (data_file) the
 * data file's clusters moved in. The cost (bytes the file grows by,
 * clusters written), and the work. */
int q2d_unextend_cost(struct q2demote *k, int data_file, uint64_t *growth,
		      uint64_t *entries);
int q2d_unextend(struct q2demote *k, int data_file);

#endif
