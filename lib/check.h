/* check.h: what the format checkers share: the result being built, problem lines, host-cluster reference counts, leak reclaiming. */
#ifndef IMG_CHECK_H
#define IMG_CHECK_H

#include <stdint.h>

#include "imgint.h"

/*
 * A check walks every structure of an image, counts the references to
 * each host cluster of the file and compares: a cluster referenced twice
 * (where the format allows one) or a reference outside the file is a
 * corruption; a cluster of the file nothing references is a leak. With
 * fix, the driver repairs what it can, crash-safely: every write is
 * ordered so that an interruption at any point leaves an image that opens
 * and reads as before, and a second run finishes the job.
 */
struct img_check_ctx {
	struct img *img;
	enum img_check_fix fix;
	struct img_check *res;       /* counts, filled by the driver */
	img_check_msg_fn msg;        /* problem lines go here (may be NULL) */
	void *msg_arg;
	img_progress_fn progress;    /* may be NULL */
	void *progress_arg;
	/* img-compact: to close a gap too small for the L2 table above it,
	 * the table may move past the end of the file first (the file grows
	 * by a table for a moment), then down over its old place. */
	int may_grow;
	/* Set by a check that finds a table overlapping other clusters
	 * (or data inside a table): -r all repairs leaks only then, since
	 * which of them holds the real bytes is not known and "repairing" a
	 * table's entries could overwrite the other. */
	int overlap;
	const volatile sig_atomic_t *cancel;   /* img.h: cancellation */
};

/* -r all: a read-only pass of check first;
 * if it finds tables overlapping other clusters, c->fix becomes leaks
 * only (said through img_check_say). Returns 0 or the pass's error. */
int img_check_overlap_first(struct img_check_ctx *c,
			    int (*check)(struct img_check_ctx *c));

/* Report progress (e.g. L1 entries walked of all), if asked for. */
static inline void img_check_progress(struct img_check_ctx *c, uint64_t done,
				      uint64_t total)
{
	if (c->progress)
		c->progress(done, total, c->progress_arg);
}

/* Hand one problem line (printf format, no newline) to the caller, e.g.
 * "Leaked cluster 5 refcount=1 reference=0". */
void img_check_say(struct img_check_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * References per host cluster of the file: 2 bytes a cluster, so memory
 * follows the file's size, not the virtual size. Counts saturate at
 * IMG_REFS_MAX (more references than that is a corruption anyway, for
 * every format but qcow2's compressed clusters, which cannot reach it).
 */
#define IMG_REFS_MAX UINT16_MAX
struct img_refs {
	uint64_t nclusters;          /* clusters of the file, rounded up */
	unsigned cluster_bits;
	uint16_t *count;
	/* From this cluster to the end of the file, nothing is reclaimed:
	 * a table runs from here past the end, referenced but uncounted
	 * (qcow2 counts no part of a region a cluster or more past the
	 * end, as QEMU). UINT64_MAX: no such table. */
	uint64_t keep_from;
	/* Such tables near the end (within IMG_MAX_TABLE_PAST_EOF of it)
	 * reach up to this cluster: a rebuild puts nothing past the end
	 * below it, where they would read it. 0: none. */
	uint64_t keep_to;
};
int img_refs_init(struct img_check_ctx *c, struct img_refs *r,
		  uint64_t file_size, unsigned cluster_bits);
void img_refs_free(struct img_refs *r);
/* Count one reference to each cluster of host bytes [off, off+len);
 * returns how many of them lie past the end of the file (not counted). */
uint64_t img_refs_add(struct img_refs *r, uint64_t off, uint64_t len);
static inline uint64_t img_refs_get(const struct img_refs *r, uint64_t cl)
{
	return cl < r->nclusters ? r->count[cl] : 0;
}

/*
 * Give back the space of leaked clusters (those with no reference from
 * first_cluster on): trailing ones are truncated away; others are punched
 * as holes (the file keeps its size, the space returns to the file
 * system). Adds the bytes given back to res->bytes_reclaimed (the caller
 * counts leaks_fixed, which depends on the format) and says what it did
 * through img_check_say. The caller has made every reference durable
 * first.
 */
int img_reclaim_leaks(struct img_check_ctx *c, const struct img_refs *r,
		      uint64_t first_cluster);

#endif
