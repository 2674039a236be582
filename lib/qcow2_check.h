/* qcow2_check.h: the qcow2 checker's private state, shared by qcow2_check.c (the check) and qcow2_repair.c (the repairs). */
#ifndef IMG_QCOW2_CHECK_H
#define IMG_QCOW2_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "qcow2.h"

#define REFT_OFFSET_MASK  (~QCOW2_REFTABLE_RESERVED)
#define L2_BITMAP_ALL_ALLOC 0xffffffffull

/* One check pass over the image. */
struct q2c {
	struct img_check_ctx *c;
	struct img *img;
	struct img_qcow2 *q;
	struct img_check *res;
	struct img_refs refs;
	uint64_t cs, file_size, refmax, epb;
	uint64_t file_clusters;  /* clusters of the file, rounded up */
	uint64_t nclusters;      /* ...and those up to one cluster past its end
				  * that references reach (QEMU counts them) */
	unsigned cb, order;
	int rebuild;             /* refcount structures must be rebuilt */
	uint64_t highest;        /* 1 + highest cluster with refcount or reference */
	uint8_t *tbuf;           /* one L2 table */
	uint8_t *blk;            /* one refcount block */
	uint64_t *reftable;      /* as stored, decoded */
	uint64_t rt_n;
	uint64_t cblk_off;       /* refcount block cached in cblk, 0 = none */
	uint8_t *cblk;
	uint8_t *kind;           /* enum cluster_kind of each of refs' clusters */
	/* -r all: data clusters past the end of the file (but near it) that
	 * entries still name (v2 over a backing file, as qemu-img leaves
	 * them): a refcount rebuild puts its structures after them. */
	uint64_t *kept_eof;
	size_t nkept, capkept;
};

/* What a cluster holds, as the references say (metadata first; only
 * metadata is noted). */
enum cluster_kind { K_NONE, K_HEADER, K_L1, K_L2, K_REFTABLE, K_REFBLOCK,
		    K_SNAPSHOTS, K_LUKS, K_BITMAP_DIR, K_BITMAP_TABLE,
		    K_BITMAP_DATA, K_DATA, K_COMPRESSED };
/* Or'ed into a kind: guest data lies in the cluster too. */
#define K_HOLDS_DATA 0x80

/* One L2 table being walked. */
struct l2_walk {
	uint64_t l1i;            /* L1 index of this table */
	int active;              /* the active L1: statistics too */
	uint64_t next_contig;    /* fragmentation: where the next should be */
	int dirty;               /* entries were cleared: write the table */
	int ro;                  /* not cluster aligned: never written (its
				  * entries' bytes may belong to another
				  * cluster, data included) */
};

enum cluster_type { CT_UNALLOC, CT_ZERO_PLAIN, CT_ZERO_ALLOC, CT_NORMAL,
		    CT_COMPRESSED };

/* qcow2_check.c */

/* What L2 entry e maps. */
enum cluster_type q2c_cluster_type(const struct img_qcow2 *q, uint64_t e);
/* Count one corruption. */
void q2c_corrupt(struct q2c *k);
/* Whether [off, off+len) reaches a cluster or more past the end of the file. */
int q2c_past_eof(const struct q2c *k, uint64_t off, uint64_t len);
/* Whether guest data entries point into [off, off+len): a table there is
 * read by the guest, and its flags are not rewritten (that would change
 * what the guest reads). */
int q2c_holds_data(const struct q2c *k, uint64_t off, uint64_t len);
/* Read metadata (zeros past the end of the file); a failure is a check error. */
int q2c_read_meta(struct q2c *k, const char *what, void *buf, size_t len,
		  uint64_t off);
/* Entry j of the L2 table in k->tbuf. */
uint64_t q2c_get_entry(const struct q2c *k, uint64_t j);
/* Refcount of cluster cl as stored; -EIO where the table is unusable. */
int q2c_stored_refcount(struct q2c *k, uint64_t cl, uint64_t *rc);

/* qcow2_repair.c */

/* Write metadata; a failure is an error on the image. */
int q2c_write_meta(struct q2c *k, const char *what, const void *buf,
		   size_t len, uint64_t off);
/* Whether entries past the end of the file are cleared (-r all). */
int q2c_can_clear(const struct q2c *k);
/* Whether refcount table entry e names a refcount block the counting
 * counts (well placed, inside the file). */
int q2c_refblock_counted(const struct q2c *k, uint64_t e);
/* -r all: L2 entry j (in k->tbuf), whose data lies past the end of the file,
 * made to read as before; 0 if it cannot be (left as it is). */
int q2c_clear_entry(struct q2c *k, struct l2_walk *w, uint64_t j,
		     uint64_t e, uint64_t bitmap, enum cluster_type t);
/* -r all: clear L1 entry i naming an L2 table past the end of the file. */
int q2c_clear_l1_entry(struct q2c *k, uint64_t l1_off, uint64_t i,
		       uint64_t e, uint64_t *l1);
/* OFLAG_COPIED of the active tree against the stored refcounts; repaired when allowed. */
int q2c_check_copied(struct q2c *k);
/* -r all: new refcount structures after the end of the file, from k->refs. */
int q2c_rebuild_refcounts(struct q2c *k);
/* Clear the dirty and corrupt bits of the header. */
int q2c_clear_flags(struct q2c *k);
/* Leaked space back to the file system, once every refcount is right. */
int q2c_reclaim(struct q2c *k);

#endif
