/* writer.h: the sequential cluster writer a writable format provides; lib/convert.c drives it. */
#ifndef IMG_WRITER_H
#define IMG_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct img;

/*
 * An image opened writable (img_open_opts.writable) is filled front to
 * back: after begin, the calls data/compressed/zero come in increasing
 * guest order and never overlap; ranges no call names keep what the image
 * had (for a new image: unallocated, so the backing file or zeros show
 * through). Offsets are multiples of img->cluster_size; lengths are whole
 * clusters, the last cluster of the disk included (its buffer is padded
 * with zeros to a full cluster). The state lives in img->wstate.
 *
 * Ordering for crash safety when editing an image in place (-n; the
 * caller sets img->write_in_place before begin): begin
 * marks the image dirty/need-check (and flushes) where the format has such
 * a bit; data reaches the file before the table entries naming it; finish
 * writes the remaining tables, the refcounts, flushes, then clears the bit.
 * A new output is a temporary file renamed only after finish, so for it
 * the order does not matter, and it is never flushed (that costs seconds
 * for a big image; img-convert --sync flushes it once at the end).
 */
struct img_writer_ops {
	int (*begin)(struct img *img);
	/* Uncompressed data for [off, off+len). Clusters already allocated
	 * (uncompressed, referenced once) are overwritten in place; others
	 * get new space at the end of the file, contiguous where possible. */
	int (*data)(struct img *img, uint64_t off, const uint8_t *buf,
		    uint64_t len);
	/* One cluster at off, stored as zlen compressed bytes (zlen smaller
	 * than a cluster; the caller compressed with img_compress() using
	 * img->compress). NULL where the format has no compression. */
	int (*compressed)(struct img *img, uint64_t off, const uint8_t *z,
			  size_t zlen);
	/* Make [off, off+len) read as zeros whatever the backing file
	 * holds: zero entries where the format has them, else unallocated
	 * (no backing file) or written zeros. */
	int (*zero)(struct img *img, uint64_t off, uint64_t len);
	/* The disk ends at size (a multiple of 512, at most the size the
	 * image was made with), for a source whose length is known only
	 * at its end (a stream): the image was made big enough, and shrinks
	 * to size now, after the last data call and before finish. NULL
	 * where the format's tables depend on the size from the start. */
	int (*set_size)(struct img *img, uint64_t size);
	/* Write back every pending table, refcounts and header; flush when
	 * in place; the image is then complete and consistent. */
	int (*finish)(struct img *img);
	/* Free the writer state; after finish or after a failure. */
	void (*end)(struct img *img);
};

#endif
