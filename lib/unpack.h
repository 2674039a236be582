/* unpack.h: sources that are not seekable image files (pipes, compressed files, archives) written out: into a temporary file, or as a raw disk. */
#ifndef IMG_UNPACK_H
#define IMG_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "img.h"

struct img_stream;

/*
 * Whether the first len bytes of a file look like a compressed stream
 * (gzip, xz, zstd, bzip2, lz4) or an archive (tar, zip, cpio, 7z): then
 * the name of that format, else NULL. Such a file is never a disk image
 * nor a raw disk to read as it is.
 */
const char *img_packed_format(const uint8_t *buf, size_t len);

/* What img_unpack read. */
struct img_unpacked {
	int fd;                 /* the bytes: an unlinked temporary file */
	uint64_t size;          /* how many */
	char filter[32];        /* the compression ("gzip"...), or "" */
	char format[32];        /* the archive format ("tar"...), or "" */
	char member[256];       /* the member read from an archive, or "" */
};

/*
 * Read fd to its end (a pipe, a compressed stream, an archive, any
 * mixture libarchive understands) into an unlinked temporary file in
 * tmpdir, leaving holes where 4 KiB blocks hold zeros (and where a sparse
 * tar member has them). From an archive, the member named member; with
 * member NULL, its only regular file, else its only one named like a disk
 * image (.img, .raw, .qcow, .qcow2, .qed, .bin). Returns 0, or a negative
 * code with the reason in err ("xz: truncated input at offset 1048576",
 * "no member 'x.img' (members: a.img, b.img)").
 */
int img_unpack(int fd, const char *member, const char *tmpdir,
	       struct img_unpacked *u, char *err, size_t errlen);
/* The same from a stream opened (and maybe peeked at) by stream.h. */
int img_unpack_stream(struct img_stream *s, const char *tmpdir,
		      struct img_unpacked *u, char *err, size_t errlen);

/*
 * The stream as a raw disk into fd, from its offset 0: sparse (a new
 * regular file: zero blocks and holes are not written, the file sized at
 * the end) or dense (a pipe: every byte in order). progress gets the
 * bytes done so far (total 0: unknown). *size is the disk's length.
 */
int img_unpack_to(struct img_stream *s, int fd, int sparse,
		  img_progress_fn progress, void *arg, uint64_t *size,
		  char *err, size_t errlen);

#endif
