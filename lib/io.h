/* io.h: the small stackable I/O layer every format reads and writes through. */
#ifndef IMG_IO_H
#define IMG_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct img_io;

/* Backend operations; each returns bytes done or 0, or -errno. */
struct img_io_ops {
	ssize_t (*pread)(struct img_io *io, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(struct img_io *io, const void *buf, size_t len,
			  uint64_t off);
	int (*size)(struct img_io *io, uint64_t *size);
	int (*truncate)(struct img_io *io, uint64_t size);
	int (*flush)(struct img_io *io);
	int (*punch)(struct img_io *io, uint64_t off, uint64_t len);
	/* Next data range at or after off: [*start, *end); -ENXIO past the
	 * last one. Backends without holes report everything as data. */
	int (*next_data)(struct img_io *io, uint64_t off, uint64_t *start,
			 uint64_t *end);
	void (*close)(struct img_io *io);
};

#define IMG_IO_RDONLY 0x1
#define IMG_IO_CREATE 0x2   /* create (O_EXCL) for writing */

struct img_io {
	const struct img_io_ops *ops;
	struct img_io *inner;    /* wrapped backend, for stacked ones */
	int fd;                  /* -1 where there is none */
	unsigned flags;
	void *priv;
	uint64_t high_end;       /* see img_io_high_end */
};

/* Backends. A file that cannot seek (pipe, FIFO, socket, terminal) is
 * refused with -ESPIPE: streams are not images. */
int img_io_open_file(struct img_io **out, const char *path, unsigned flags);
int img_io_from_fd(struct img_io **out, int fd, unsigned flags);
/* A copy of data in memory, sparse as a file is (4 KiB blocks of zeros
 * are holes; punching makes more). */
int img_io_open_mem(struct img_io **out, const void *data, size_t len);
/* The bytes of a memory backend (valid until its next write or close);
 * -EINVAL for other backends. */
int img_io_mem_data(struct img_io *io, const void **data, size_t *len);
/* Wrap io so that writes or reads fail (-EIO, -ENOSPC, a short write, a
 * signal) from the Nth on, as IMG_FAULT_WRITE, IMG_FAULT_MODE and
 * IMG_FAULT_READ ask (io_fault.c says how); returns io itself, unwrapped,
 * when none of them is set. */
struct img_io *img_io_fault_wrap(struct img_io *io);

/* Convenience wrappers over ops. */
ssize_t img_io_pread(struct img_io *io, void *buf, size_t len, uint64_t off);
int img_io_pwrite(struct img_io *io, const void *buf, size_t len, uint64_t off);
int img_io_size(struct img_io *io, uint64_t *size);
int img_io_truncate(struct img_io *io, uint64_t size);
int img_io_flush(struct img_io *io);
/* Deallocate [off, off+len), keeping the size; it then reads as zeros. */
int img_io_punch(struct img_io *io, uint64_t off, uint64_t len);
int img_io_next_data(struct img_io *io, uint64_t off, uint64_t *start,
		     uint64_t *end);
/* Whether [off, off+len) is all hole (or past the end of the file). The
 * cache remembers the last hole seen and the data after it, so asking
 * cluster after cluster costs one lookup per extent; zero it to start.
 * Errors answer no. */
struct img_io_holes {
	uint64_t hole_start, hole_end, data_end;
};
int img_io_is_hole(struct img_io *io, struct img_io_holes *h, uint64_t off,
		   uint64_t len);
void img_io_close(struct img_io *io);
/* The highest end offset that img_io_pwrite wrote to or img_io_truncate set
 * since the last img_io_reset_high_end (0: none): with the size before, how
 * large the file grew at most. */
uint64_t img_io_high_end(const struct img_io *io);
void img_io_reset_high_end(struct img_io *io);

/* The file descriptor of the plain file backend (no memory, no fault
 * injection in between), for copying file to file in the kernel; else -1. */
int img_io_plain_fd(const struct img_io *io);
/* Account for bytes written to [.., end) other than by img_io_pwrite. */
void img_io_note_end(struct img_io *io, uint64_t end);
/* Add n to img_bytes_written() (img_io_pwrite does it itself). */
void img_io_count_written(uint64_t n);

/* Read exactly len bytes; a short read (EOF) gives -ENODATA. */
int img_io_read_exact(struct img_io *io, void *buf, size_t len, uint64_t off);
/* Read len bytes, zero-filling whatever lies past end of file. */
int img_io_read_zfill(struct img_io *io, void *buf, size_t len, uint64_t off);

#endif
