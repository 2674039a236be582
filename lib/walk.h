/* walk.h: one traversal of the two-level (L1/L2) cluster tables that qcow, qcow2 and QED share. */
#ifndef IMG_WALK_H
#define IMG_WALK_H

#include <stdint.h>

#include "imgint.h"

/*
 * What a format tells the walker about its tables. The L1 table is given
 * decoded (host-endian values); L2 tables are read from img->io in pieces
 * of at most IMG_WALK_CHUNK bytes and each entry is handed to the format's
 * decode function, then to the caller's callback.
 */
struct img_walk_entry;

struct img_walk_layout {
	const uint64_t *l1;        /* l1_entries decoded L1 entries */
	uint64_t l1_entries;
	uint64_t l1_offset_mask;   /* bits of an L1 entry holding the L2 offset */
	uint64_t l2_bytes;         /* size of one L2 table */
	unsigned entry_bytes;      /* 8, or 16 for qcow2 extended L2 */
	uint64_t cluster_size;     /* guest bytes one L2 entry maps */
	uint64_t table_align;      /* required alignment of L2 offsets */
	uint64_t min_offset;       /* tables and data start at or after this */
	int past_size;             /* also the entries past the virtual size
				    * (checks and compaction: QEMU's checks
				    * count what they point at) */
	/* Fill e->ext (kind, flags, host, clen) from the stored entry. */
	void (*decode)(struct img *img, const uint8_t *raw,
		       struct img_walk_entry *e);
};

struct img_walk_entry {
	uint64_t guest;            /* guest offset of the cluster */
	uint64_t l1_index, l2_index;
	uint64_t l2_offset;        /* host offset of its L2 table */
	uint64_t entry_offset;     /* host offset of the entry itself */
	uint8_t *raw;              /* the stored bytes; callbacks may edit
				    * them and return IMG_WALK_CHANGED */
	struct img_extent ext;     /* decoded; ext.start == guest */
	const char *problem;       /* set by decode when the entry is unusable
				    * (e.g. "data offset not aligned"); ext
				    * still says what the entry claims */
	int beyond;                /* the entry maps nothing below the virtual
				    * size (guest is then where it would map,
				    * or UINT64_MAX): no reader uses it, but
				    * what it points at is still referenced */
};

/* Callback results, or-ed together; a negative value is an error. */
#define IMG_WALK_CONTINUE 0
#define IMG_WALK_CHANGED  0x1  /* entry edited: write its table back */
#define IMG_WALK_ABORT    0x2  /* stop the walk, successfully */
#define IMG_WALK_SKIP     0x4  /* (table callback) do not read this table */

/* Why an L1 entry's table cannot be read. */
enum img_walk_problem {
	IMG_WALK_MISALIGNED,       /* L2 offset not aligned */
	IMG_WALK_BEYOND_EOF,       /* L2 table runs past end of file */
	IMG_WALK_BEFORE_DATA,      /* L2 offset inside the header area */
};

struct img_walk_cb {
	/* Each non-empty L1 entry whose table is sound, before its entries. */
	int (*table)(struct img *img, uint64_t l1_index, uint64_t l2_offset,
		     void *arg);
	/* Each non-empty L1 entry whose table is not; without this callback
	 * the walk fails with an error naming the problem. */
	int (*bad_table)(struct img *img, uint64_t l1_index, uint64_t l1_entry,
			 enum img_walk_problem why, void *arg);
	/* Each entry of every sound L2 table, unallocated ones included,
	 * within the virtual size; with lay->past_size those past it too,
	 * e->beyond set. */
	int (*entry)(struct img *img, struct img_walk_entry *e, void *arg);
};

#define IMG_WALK_CHUNK (64u << 10)

/* Walk every table; returns 0, or the first negative callback result or
 * I/O error (recorded on img). Changed entries are written back at the end
 * of each piece of table, through img->io (which must then be writable). */
int img_walk(struct img *img, const struct img_walk_layout *lay,
	     const struct img_walk_cb *cb, void *arg);

const char *img_walk_problem_str(enum img_walk_problem why);

#endif
