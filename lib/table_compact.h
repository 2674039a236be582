/* table_compact.h: compacting in place the formats without refcounts (QED, qcow v1), shared; each format describes itself. */
#ifndef IMG_TABLE_COMPACT_H
#define IMG_TABLE_COMPACT_H

#include <stdint.h>

#include "check.h"

/*
 * What the shared compaction needs to know about a format. A zero data
 * cluster becomes unallocated (entry 0) where that reads as zeros: no
 * backing file, or (formats without a zero entry) the backing chain reads
 * zeros there. Over a backing file a format with a zero entry uses it; one
 * without keeps the cluster stored.
 */
struct img_table_compact_fmt {
	/* The format's checker: a read-only check first, then its leak
	 * repair (IMG_CHECK_FIX_LEAKS, may_grow) gives the space back. */
	int (*check)(struct img_check_ctx *c);
	int little_endian;           /* byte order of L2 entries */
	int has_zero_entry;
	uint64_t zero_entry;         /* the L2 entry that reads as zeros */
	/* Once, before the first entry changes (NULL: nothing to do), made
	 * durable by the callee: e.g. a need-check bit in the header. */
	int (*before_change)(struct img_check_ctx *c);
	/* Point an L1 entry at host (0: an L2 table left empty is dropped). */
	int (*set_l1)(struct img_check_ctx *c, uint64_t idx, uint64_t host);
};

int img_table_compact(struct img *img, const struct img_table_compact_fmt *f,
		      const struct img_compact_opts *o,
		      struct img_compact_result *r);

#endif
