/* fuzz.h: what the fuzz targets share: images opened from memory, snapshots of guest data, and post-conditions that abort. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "img.h"

/* The libFuzzer entry point every target defines (replay.c calls it too). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest bytes compared or read in full: [0, FUZZ_MAX_GUEST) at most, so
 * that a mutated virtual size costs nothing. */
#define FUZZ_MAX_GUEST (512u << 10)
/* Steps of img_map_next over the whole disk before giving up. */
#define FUZZ_MAX_MAP_STEPS 100000

/* A broken post-condition: print why and abort(), which libFuzzer records
 * as a crash and the replay as a failure. */
void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
#define FUZZ_ASSERT(cond, ...) \
	do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

/* img_open_mem of data; NULL (nothing to test) when it does not open. */
struct img *fuzz_open(const void *data, size_t len,
		      const struct img_open_opts *o);

/* Guest ranges a repair said it cleared ("guest range 0x..0x.. lost its
 * data"), collected from its message lines (an img_check_msg_fn). */
struct fuzz_ranges {
	size_t n, cap;
	uint64_t (*r)[2];             /* first and last byte */
	int problems;                 /* lines seen */
};
void fuzz_collect_msg(const char *line, void *arg);
void fuzz_ranges_free(struct fuzz_ranges *r);
void fuzz_ranges_add(struct fuzz_ranges *r, uint64_t first, uint64_t last);

/*
 * Clusters a check says are referenced more than once (a data cluster
 * that is also metadata, or another entry's data): whatever writes one
 * owner changes what the other reads, so guest data stored there is
 * damaged, not kept. Collected from the problem lines of a check without
 * repairs (an img_check_msg_fn): host clusters from qcow2's "ERROR
 * cluster N refcount=R reference=M" (M > 1) and "ERROR: overflow cluster
 * offset=0x.." (more than the refcount width holds), guest clusters from qcow's
 * and QED's "for guest offset 0x.. is referenced more than once" / "...
 * shares N clusters".
 */
struct fuzz_shared {
	uint32_t cluster_size;        /* set by the caller, when known */
	struct fuzz_ranges host;      /* host cluster indexes */
	struct fuzz_ranges guest;     /* guest offsets of clusters */
};
void fuzz_collect_shared(const char *line, void *arg);

/*
 * What a reader sees of an image, per 512-byte sector of the first
 * FUZZ_MAX_GUEST bytes: whether it reads without error, its bytes, and
 * (for an image naming a backing file) whether it falls through to it.
 */
#define FUZZ_SECTOR 512u
#define FUZZ_READABLE 0x1
#define FUZZ_MAPPED   0x2             /* the map answered for it */
#define FUZZ_THROUGH  0x4             /* unallocated here: backing file */
struct fuzz_snap {
	int opened;                   /* the image opened for reading */
	int has_backing;
	uint64_t size;                /* virtual size */
	uint64_t len;                 /* bytes looked at */
	uint8_t *data;
	uint8_t *flags;               /* one per sector */
	uint64_t *host;               /* host offset per sector, or ~0 */
	uint32_t cluster_size;
};
void fuzz_snap_take(struct fuzz_snap *s, const void *bytes, size_t len);
void fuzz_snap_free(struct fuzz_snap *s);
/* Abort unless after reads as before wherever before read without error,
 * outside the ranges lost and the clusters shared (may be NULL); what
 * names the command for the message. */
void fuzz_snap_same(const struct fuzz_snap *before,
		    const struct fuzz_snap *after,
		    const struct fuzz_ranges *lost,
		    const struct fuzz_shared *shared, const char *what);

/* A fresh read-only check of an image's bytes: img_check's return code
 * (or the open's), counts in *res; shared clusters into *sh unless NULL. */
int fuzz_check_bytes(const void *bytes, size_t len, struct img_check *res,
		     struct fuzz_shared *sh);

/* The writing paths (write.c): one in-place command on a copy of the
 * input, then its post-conditions. */
enum fuzz_write { FUZZ_REPAIR_LEAKS, FUZZ_REPAIR_ALL, FUZZ_COMPACT,
		  FUZZ_DEMOTE };
int fuzz_write_path(const uint8_t *data, size_t size, enum fuzz_write what);

#endif
