/* stream.h: pipes, compressed files and archive members read front to back, as blocks of data with the holes between them. */
#ifndef IMG_STREAM_H
#define IMG_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct img_stream;

/*
 * Open fd (a pipe, a file, anything read front to back) as a stream of
 * bytes: decompressed (gzip by zlib with its CRCs checked; xz, zstd,
 * bzip2, lz4 by libarchive), and from a tar, zip, cpio or 7z archive the
 * member named member. From an archive without a member name the stream
 * stands on its first regular file and img_stream_must_choose() says so:
 * which member to take is then decided by reading them all (unpack.h).
 * Returns 0, or a negative code with the reason in err.
 */
int img_stream_open(int fd, const char *member, struct img_stream **sp,
		    char *err, size_t errlen);
void img_stream_close(struct img_stream *s);

/* The compression ("gzip"...) or "", the archive format ("tar"...) or "",
 * the member being read or "". */
const char *img_stream_filter(const struct img_stream *s);
const char *img_stream_format(const struct img_stream *s);
const char *img_stream_member(const struct img_stream *s);
int img_stream_must_choose(const struct img_stream *s);

/* From an archive: stand on its next regular file (the rest of the one
 * at hand skipped): 1, or 0 after the last one, or a negative code. */
int img_stream_next_member(struct img_stream *s);

/*
 * The bytes in order, one block at a time: *off is where the block
 * starts (never before the end of the last one; the gap between reads as
 * zeros, as holes in a sparse tar member). 1 for a block, 0 at the end
 * (then img_stream_size() is the length, trailing holes included), or a
 * negative code with the reason from img_stream_error(), which names the
 * offset in the input ("xz: truncated input at offset 1048576"). The
 * block stays valid until the next call.
 */
int img_stream_next(struct img_stream *s, const uint8_t **buf, size_t *len,
		    uint64_t *off);
uint64_t img_stream_size(const struct img_stream *s);
const char *img_stream_error(const struct img_stream *s);
/* Whether reading failed (then img_stream_error says why). */
int img_stream_failed(const struct img_stream *s);

/*
 * The first bytes, up to len (fewer only if the stream is shorter), for
 * telling image formats from raw data; reading with img_stream_next then
 * starts from the beginning all the same. Call before the first next.
 * Returns how many, or a negative code (img_stream_error says why).
 */
long img_stream_peek(struct img_stream *s, uint8_t *buf, size_t len);

/*
 * A cursor over a stream for readers that want ranges, in increasing
 * order: [off, off+len) into buf, zeros where the stream has none;
 * *got is less than len only at the end of the stream.
 */
struct img_stream_cursor {
	struct img_stream *s;
	const uint8_t *buf;     /* the block at hand */
	size_t len;
	uint64_t off;           /* where it starts */
	int ended;
};

int img_stream_read(struct img_stream_cursor *c, uint64_t off, uint8_t *buf,
		    size_t len, size_t *got);
/* Where the next data at or after off starts, or the stream's size when
 * none follows (reads ahead to find it). */
int img_stream_data_after(struct img_stream_cursor *c, uint64_t off,
			  uint64_t *next);

/*
 * Convert a stream of raw disk bytes into dst (opened writable, made
 * with img_create_stream_size() or bigger than the stream) as it comes,
 * as img_convert does from an image: zero clusters are not written. The
 * image then shrinks to the stream's length (rounded up to 512 bytes),
 * returned in *size. name is the stream's, for messages.
 */
struct img;
struct img_convert_opts;
int img_convert_stream(struct img_stream *s, const char *name,
		       struct img *dst, const struct img_convert_opts *o,
		       uint64_t *size);

#endif
