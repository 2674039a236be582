/* copy.h: moving bytes between files (or within one) without passing them through user space: shared extents, in-kernel copy. */
#ifndef IMG_COPY_H
#define IMG_COPY_H

#include <stdint.h>

#include "img.h"
#include "io.h"

struct img_extent;

/*
 * One copier per job: its mode (img.h, enum img_copy_mode), what it has
 * learned the file systems cannot do (so that a failing method is tried
 * once, not per cluster), and how many bytes went which way.
 */
struct img_copier {
	enum img_copy_mode mode;
	int no_clone;           /* FICLONERANGE failed: not tried again */
	int no_kernel;          /* copy_file_range failed: not tried again */
	int clone_error;        /* IMG_COPY_REFLINK: the -errno of the clone
				 * that failed, for the caller's message */
	uint64_t cloned;        /* bytes now shared with their source */
	uint64_t kernel;        /* bytes copied by copy_file_range */
};

/*
 * Make [doff, doff+len) of dst hold [soff, soff+len) of src (src may be
 * dst, the ranges then must not overlap) without reading them here:
 * FICLONERANGE where both offsets and the length are multiples of 4 KiB,
 * else, or where cloning fails, copy_file_range. The source range must lie
 * within the source file. Returns 0 when done; 1 when it cannot be done
 * here (a backend without a plain file, other file systems, the mode
 * says read-write), and nothing was written; -errno on a failure (with
 * IMG_COPY_REFLINK: also when an aligned range cannot be shared).
 */
int img_io_copy(struct img_copier *cp, struct img_io *dst, uint64_t doff,
		struct img_io *src, uint64_t soff, uint64_t len);

/* Record on img why the copier cp failed in IMG_COPY_REFLINK mode (data
 * of src_path could not be shared) and return err; 0 when it did not. */
int img_copy_refused(struct img *img, const struct img_copier *cp,
		     const char *src_path, int err);

/* Whether extent e of layer l holds plain bytes that may be copied file
 * to file: stored data, not compressed, not encrypted, inside a plain
 * file. */
int img_extent_copyable(struct img *l, const struct img_extent *e);

/*
 * Where the clusters of a writer's input buffer already lie, unchanged,
 * in a source file (img-convert sets img->copy_src for each data call;
 * writer.h). from[i] == NULL: cluster i is in the buffer; otherwise the
 * buffer's bytes for it are not filled in: they are from_off[i] in from[i].
 */
struct img_copy_src {
	uint8_t *base;          /* the buffer handed to the writer */
	uint64_t cs;            /* cluster size */
	uint64_t ncl;           /* clusters in the buffer */
	struct img_io *const *from;
	const uint64_t *from_off;
	struct img_copier *copier;
	const uint8_t *zbase;   /* the chunk's compressed clusters, if any */
	uint64_t zlen;
};

/*
 * What a format writer calls to store data bytes buf[0, len) at host in
 * io: a plain write, except for the clusters img->copy_src says lie in a
 * source file, which are copied file to file (read and written here
 * where that cannot be done). -errno on failure.
 */
int img_write_data(struct img *img, struct img_io *io, const uint8_t *buf,
		   uint64_t len, uint64_t host);

#endif
