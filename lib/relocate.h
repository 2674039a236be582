/* relocate.h: what the qcow and QED checkers share: cluster owners, leak counting, and compacting a file by moving its last clusters into leaked ones. */
#ifndef IMG_RELOCATE_H
#define IMG_RELOCATE_H

#include <stdint.h>

#include "check.h"

/*
 * Who references each host cluster, so that a repair can move it: in
 * qcow and QED every cluster has at most one owner (no refcounts), an L2
 * entry for a data cluster or an L1 entry for an L2 table. Clusters that
 * must stay where they are (header, L1 table, compressed streams, clusters
 * referenced twice, tables not cluster aligned) are FIXED.
 */
enum img_owner_kind {
	IMG_OWN_NONE,
	IMG_OWN_DATA,      /* ref: img_data_ref() of its L2 entry */
	IMG_OWN_TABLE,     /* ref: L1 index of the table */
	IMG_OWN_REFBLOCK,  /* ref: refcount table index (qcow2) */
	IMG_OWN_ROOT,      /* a table the header points at (qcow2: L1 table,
			    * refcount table); ref: which (format's own) */
	IMG_OWN_FIXED,
};

struct img_owners {
	uint64_t nclusters;
	uint8_t *kind;
	uint64_t *ref;
};

int img_owners_init(struct img_check_ctx *c, struct img_owners *o,
		    uint64_t nclusters);
void img_owners_free(struct img_owners *o);
/* Record an owner for the clusters of [off, off+len); a second owner of a
 * cluster makes it FIXED. */
void img_owners_set(struct img_owners *o, unsigned cluster_bits, uint64_t off,
		    uint64_t len, enum img_owner_kind kind, uint64_t ref);

struct img_walk_cb;

/* Walk every table of the image with the checker's callbacks. A table
 * that cannot be read makes a read-only check incomplete: it is said and
 * counted as a check error (leaks are then not counted), and 0 returned;
 * while repairing it is an error. */
int img_check_walk(struct img_check_ctx *c, const struct img_walk_cb *cb,
		   void *arg);

/* Flush the image, naming it in the error. */
int img_check_flush(struct img_check_ctx *c);

/* Write one 8-byte table entry v at file offset off (little-endian for
 * QED, big-endian for qcow); errors name what ("L2 entry") and where. */
int img_write_entry(struct img_check_ctx *c, int little_endian,
		    const char *what, uint64_t off, uint64_t v);

/* An owner reference for a data cluster: the L1 index of its table and
 * the entry's index in it (the entry moves when its table moves). */
static inline uint64_t img_data_ref(uint64_t l1_index, uint64_t l2_index)
{
	return l1_index << 32 | l2_index;
}
static inline uint64_t img_ref_table(uint64_t ref) { return ref >> 32; }
static inline uint64_t img_ref_entry(uint64_t ref) { return ref & 0xffffffffu; }

/* How the format repoints one reference (a single entry write; the
 * caller flushes around it) and where an L2 table lives. */
struct img_reloc_ops {
	int (*set_data)(struct img_check_ctx *c, uint64_t l1_index,
			uint64_t l2_index, uint64_t host);
	int (*set_table)(struct img_check_ctx *c, uint64_t l1_index,
			 uint64_t host);
	uint64_t (*table_at)(struct img_check_ctx *c, uint64_t l1_index);
	int (*set_refblock)(struct img_check_ctx *c, uint64_t index,
			    uint64_t host);
	/* Root tables: where one is (offset, clusters) and the header
	 * write that moves it. */
	void (*root_at)(struct img_check_ctx *c, uint64_t which, uint64_t *off,
			uint64_t *clusters);
	int (*set_root)(struct img_check_ctx *c, uint64_t which, uint64_t host);
	uint64_t table_clusters;     /* clusters one L2 table occupies */
	/* Formats with refcounts (qcow2): clusters [cl, cl+n) go from
	 * refcount 0 to 1 (claim) or 1 to 0 (release); sync writes what
	 * these buffered. A refcount block whose range holds nothing but
	 * itself is spare: it is let go of (release_spare: all such, their
	 * number returned, r updated) rather than moved. */
	int (*claim)(struct img_check_ctx *c, uint64_t cl, uint64_t n);
	int (*release)(struct img_check_ctx *c, uint64_t cl, uint64_t n);
	int (*sync)(struct img_check_ctx *c);
	int (*spare)(struct img_check_ctx *c, const struct img_refs *r,
		     uint64_t cl);
	int (*release_spare)(struct img_check_ctx *c, struct img_refs *r);
};

/*
 * Count one reference to each cluster of [off, off+len) in r (and, for a
 * compressed stream, in cr too, which may be NULL otherwise). Returns how
 * many clusters are now referenced twice in a way the format forbids
 * (compressed streams may share clusters with each other); *past gets
 * how many clusters lay past the end of the file.
 */
uint64_t img_refs_claim(struct img_refs *r, struct img_refs *cr, int compressed,
			uint64_t off, uint64_t len, uint64_t *past);

/* Mark the clusters of [off, off+len) used by metadata that may share
 * clusters with each other (header, backing name, L1 table). */
void img_refs_mark(struct img_refs *r, uint64_t off, uint64_t len);

/* Leaked clusters from first on: unreferenced ones; holes (e.g. punched
 * by an earlier repair) only if holes is set (QED: qemu-img counts them).
 * With say, one line each. */
uint64_t img_count_leaks(struct img_check_ctx *c, const struct img_refs *r,
			 uint64_t first, int holes, int say);

/*
 * Repair leaks: move the last clusters of the file into leaked ones below
 * them (copy, flush, repoint, flush), then give the rest back with
 * img_reclaim_leaks (truncate the tail, punch holes inside). Sets
 * res->leaks_fixed to the leaks that are gone. Every reference must be
 * durable before this is called.
 */

int img_compact_leaks(struct img_check_ctx *c, struct img_refs *r,
		      struct img_owners *o, const struct img_reloc_ops *ops,
		      uint64_t first, int holes);

/* The moving part of that (move_clusters.c): move the last used clusters
 * of the file (from first on) down into unused ones while the last can
 * move; o says who owns each cluster and is kept up to date. */
int img_move_tail_down(struct img_check_ctx *c, struct img_refs *r,
		       struct img_owners *o, const struct img_reloc_ops *ops,
		       uint64_t first);

#endif
