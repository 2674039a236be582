/* io.c: I/O backends (file descriptor, memory) and the convenience wrappers over them. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img.h"
#include "io.h"

/* ---- file descriptor backend ---- */

static ssize_t fd_pread(struct img_io *io, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(io->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return (ssize_t)done;
}

static ssize_t fd_pwrite(struct img_io *io, const void *buf, size_t len,
			 uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(io->fd, (const char *)buf + done,
				   len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += n;
	}
	return (ssize_t)done;
}

static int fd_size(struct img_io *io, uint64_t *size)
{
	struct stat st;

	if (fstat(io->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(io->fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int fd_truncate(struct img_io *io, uint64_t size)
{
	return ftruncate(io->fd, (off_t)size) < 0 ? -errno : 0;
}

static int fd_flush(struct img_io *io)
{
	return fdatasync(io->fd) < 0 ? -errno : 0;
}

static int fd_punch(struct img_io *io, uint64_t off, uint64_t len)
{
	if (fallocate(io->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

static int fd_next_data(struct img_io *io, uint64_t off, uint64_t *start,
			uint64_t *end)
{
	uint64_t size;
	off_t d, h;
	int ret = fd_size(io, &size);

	if (ret < 0)
		return ret;
	if (off >= size)
		return -ENXIO;
	d = lseek(io->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO)
			return -ENXIO;
		/* No SEEK_DATA support here: everything is data. */
		*start = off;
		*end = size;
		return 0;
	}
	h = lseek(io->fd, d, SEEK_HOLE);
	if (h < 0)
		h = (off_t)size;
	*start = (uint64_t)d;
	*end = (uint64_t)h;
	return 0;
}

static void fd_close(struct img_io *io)
{
	if (io->fd >= 0)
		close(io->fd);
	free(io);
}

static const struct img_io_ops fd_ops = {
	.pread = fd_pread,
	.pwrite = fd_pwrite,
	.size = fd_size,
	.truncate = fd_truncate,
	.flush = fd_flush,
	.punch = fd_punch,
	.next_data = fd_next_data,
	.close = fd_close,
};

int img_io_from_fd(struct img_io **out, int fd, unsigned flags)
{
	struct img_io *io = calloc(1, sizeof(*io));

	if (!io)
		return -ENOMEM;
	io->ops = &fd_ops;
	io->fd = fd;
	io->flags = flags;
	*out = img_io_fault_wrap(io);
	return 0;
}

/*
 * The one place that decides whether a file can be read as an image: a
 * pipe, FIFO, socket or terminal cannot seek, and would read as an empty
 * disk. FIFOs are refused before open(), which would wait for a writer.
 */
static int refuse_stream(const char *path, int fd)
{
	struct stat st;

	if (fd < 0)
		return stat(path, &st) == 0 &&
		       (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? -ESPIPE : 0;
	if (lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE)
		return -ESPIPE;
	return 0;
}

int img_io_open_file(struct img_io **out, const char *path, unsigned flags)
{
	int oflags = O_CLOEXEC;
	int fd, ret;

	ret = refuse_stream(path, -1);
	if (ret < 0)
		return ret;

	if (flags & IMG_IO_RDONLY)
		oflags |= O_RDONLY;
	else if (flags & IMG_IO_CREATE)
		oflags |= O_RDWR | O_CREAT | O_EXCL;
	else
		oflags |= O_RDWR;
	fd = open(path, oflags, 0644);
	if (fd < 0)
		return -errno;
	ret = refuse_stream(path, fd);
	if (ret == 0)
		ret = img_io_from_fd(out, fd, flags);
	if (ret < 0)
		close(fd);
	return ret;
}

/* ---- memory backend (unit tests, fuzzing, in-memory images) ---- */

/* A sparse file in memory: blocks of MEM_BLOCK bytes are data or holes,
 * as a file system's are, so that punching holes and finding them work
 * as on a file (holes read as zeros). */
#define MEM_BLOCK 4096

struct mem {
	uint8_t *data;
	uint8_t *hole;           /* per block of the capacity: 1 if a hole */
	size_t len, cap;
};

static void mem_mark(struct mem *m, uint64_t first, uint64_t end, int hole)
{
	for (uint64_t b = first; b < end && b < m->cap / MEM_BLOCK; b++)
		m->hole[b] = (uint8_t)hole;
}

static ssize_t mem_pread(struct img_io *io, void *buf, size_t len, uint64_t off)
{
	struct mem *m = io->priv;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	memcpy(buf, m->data + off, len);
	return (ssize_t)len;
}

static int mem_grow(struct mem *m, uint64_t size)
{
	if (size > SIZE_MAX / 2)
		return -EFBIG;
	if (size > m->cap) {
		size_t cap = m->cap ? m->cap : MEM_BLOCK;
		while (cap < size)
			cap *= 2;
		uint8_t *p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		memset(p + m->cap, 0, cap - m->cap);
		m->data = p;
		p = realloc(m->hole, cap / MEM_BLOCK);
		if (!p)
			return -ENOMEM;
		/* past the end of the file: holes once it grows over them */
		memset(p + m->cap / MEM_BLOCK, 1, (cap - m->cap) / MEM_BLOCK);
		m->hole = p;
		m->cap = cap;
	}
	return 0;
}

static ssize_t mem_pwrite(struct img_io *io, const void *buf, size_t len,
			  uint64_t off)
{
	struct mem *m = io->priv;
	int ret = mem_grow(m, off + len);

	if (ret < 0)
		return ret;
	memcpy(m->data + off, buf, len);
	if (len)
		mem_mark(m, off / MEM_BLOCK, (off + len - 1) / MEM_BLOCK + 1, 0);
	if (off + len > m->len)
		m->len = off + len;
	return (ssize_t)len;
}

static int mem_size(struct img_io *io, uint64_t *size)
{
	*size = ((struct mem *)io->priv)->len;
	return 0;
}

static int mem_truncate(struct img_io *io, uint64_t size)
{
	struct mem *m = io->priv;
	int ret = mem_grow(m, size);

	if (ret < 0)
		return ret;
	if (size < m->len) {
		memset(m->data + size, 0, m->len - size);
		mem_mark(m, (size + MEM_BLOCK - 1) / MEM_BLOCK, m->cap / MEM_BLOCK, 1);
	}
	m->len = size;
	return 0;
}

/* As FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the range reads as zeros,
 * and the blocks it covers whole become holes. */
static int mem_punch(struct img_io *io, uint64_t off, uint64_t len)
{
	struct mem *m = io->priv;
	uint64_t end = off + len < off ? UINT64_MAX : off + len;

	if (end > m->len)
		end = m->len;
	if (off >= end)
		return 0;
	memset(m->data + off, 0, end - off);
	mem_mark(m, (off + MEM_BLOCK - 1) / MEM_BLOCK,
		 end == m->len ? (end + MEM_BLOCK - 1) / MEM_BLOCK
			       : end / MEM_BLOCK, 1);
	return 0;
}

/* As SEEK_DATA and SEEK_HOLE from off. */
static int mem_next_data(struct img_io *io, uint64_t off, uint64_t *start,
			 uint64_t *end)
{
	struct mem *m = io->priv;
	uint64_t nblocks = (m->len + MEM_BLOCK - 1) / MEM_BLOCK, b;

	if (off >= m->len)
		return -ENXIO;
	for (b = off / MEM_BLOCK; b < nblocks && m->hole[b]; b++)
		;
	if (b >= nblocks)
		return -ENXIO;
	*start = b * MEM_BLOCK > off ? b * MEM_BLOCK : off;
	while (b < nblocks && !m->hole[b])
		b++;
	*end = b * MEM_BLOCK < m->len ? b * MEM_BLOCK : m->len;
	return 0;
}

static int mem_flush(struct img_io *io)
{
	return 0;
}

static void mem_close(struct img_io *io)
{
	struct mem *m = io->priv;

	free(m->data);
	free(m->hole);
	free(m);
	free(io);
}

static const struct img_io_ops mem_ops = {
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.size = mem_size,
	.truncate = mem_truncate,
	.flush = mem_flush,
	.punch = mem_punch,
	.next_data = mem_next_data,
	.close = mem_close,
};

int img_io_open_mem(struct img_io **out, const void *data, size_t len)
{
	struct img_io *io = calloc(1, sizeof(*io));
	struct mem *m = calloc(1, sizeof(*m));

	if (!io || !m || mem_grow(m, len) < 0) {
		free(io);
		free(m);
		return -ENOMEM;
	}
	if (len)
		memcpy(m->data, data, len);
	m->len = len;
	/* Sparse where zero, as cp --sparse=always would make the file. */
	for (size_t b = 0; b * MEM_BLOCK < len; b++) {
		size_t n = len - b * MEM_BLOCK < MEM_BLOCK ? len - b * MEM_BLOCK
							   : MEM_BLOCK;
		const uint8_t *p = m->data + b * MEM_BLOCK;

		m->hole[b] = !p[0] && !memcmp(p, p + 1, n - 1);
	}
	io->ops = &mem_ops;
	io->fd = -1;
	io->priv = m;
	*out = io;
	return 0;
}

int img_io_mem_data(struct img_io *io, const void **data, size_t *len)
{
	struct mem *m = io->priv;

	if (io->ops != &mem_ops)
		return -EINVAL;
	*data = m->data;
	*len = m->len;
	return 0;
}

/* ---- wrappers ---- */

/* What img_bytes_written() reports; the writer threads add to it. */
static _Atomic uint64_t bytes_written;

void img_io_count_written(uint64_t n)
{
	bytes_written += n;
}

uint64_t img_bytes_written(void)
{
	return bytes_written;
}

int img_io_plain_fd(const struct img_io *io)
{
	return io->ops == &fd_ops ? io->fd : -1;
}

/* Remember the highest end of file a write or truncate asked for. */
void img_io_note_end(struct img_io *io, uint64_t end)
{
	if (end > io->high_end)
		io->high_end = end;
}

uint64_t img_io_high_end(const struct img_io *io)
{
	return io->high_end;
}

void img_io_reset_high_end(struct img_io *io)
{
	io->high_end = 0;
}

ssize_t img_io_pread(struct img_io *io, void *buf, size_t len, uint64_t off)
{
	return io->ops->pread(io, buf, len, off);
}

int img_io_pwrite(struct img_io *io, const void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	if (io->flags & IMG_IO_RDONLY)
		return -EBADF;
	n = io->ops->pwrite(io, buf, len, off);
	if (n > 0) {
		img_io_note_end(io, off + (uint64_t)n);
		img_io_count_written((uint64_t)n);
	}
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int img_io_size(struct img_io *io, uint64_t *size)
{
	return io->ops->size(io, size);
}

int img_io_truncate(struct img_io *io, uint64_t size)
{
	int ret;

	if (!io->ops->truncate)
		return -EOPNOTSUPP;
	ret = io->ops->truncate(io, size);
	if (ret == 0)
		img_io_note_end(io, size);
	return ret;
}

int img_io_flush(struct img_io *io)
{
	return io->ops->flush ? io->ops->flush(io) : 0;
}

int img_io_punch(struct img_io *io, uint64_t off, uint64_t len)
{
	return io->ops->punch ? io->ops->punch(io, off, len) : -EOPNOTSUPP;
}

int img_io_next_data(struct img_io *io, uint64_t off, uint64_t *start,
		     uint64_t *end)
{
	uint64_t size;
	int ret;

	if (io->ops->next_data)
		return io->ops->next_data(io, off, start, end);
	ret = img_io_size(io, &size);
	if (ret < 0)
		return ret;
	if (off >= size)
		return -ENXIO;
	*start = off;
	*end = size;
	return 0;
}

int img_io_is_hole(struct img_io *io, struct img_io_holes *h, uint64_t off,
		   uint64_t len)
{
	uint64_t start, end;
	int ret;

	if (off >= h->hole_start && off + len <= h->hole_end)
		return 1;
	if (off >= h->hole_end && off + len <= h->data_end)
		return 0;
	ret = img_io_next_data(io, off, &start, &end);
	if (ret == -ENXIO) {
		start = UINT64_MAX;
		end = UINT64_MAX;
	} else if (ret < 0) {
		return 0;
	}
	h->hole_start = off;
	h->hole_end = start > off ? start : off;
	h->data_end = end;
	return off + len <= h->hole_end;
}

void img_io_close(struct img_io *io)
{
	if (io)
		io->ops->close(io);
}

int img_io_read_exact(struct img_io *io, void *buf, size_t len, uint64_t off)
{
	ssize_t n = img_io_pread(io, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -ENODATA;
}

int img_io_read_zfill(struct img_io *io, void *buf, size_t len, uint64_t off)
{
	ssize_t n = img_io_pread(io, buf, len, off);

	if (n < 0)
		return (int)n;
	if ((size_t)n < len)
		memset((char *)buf + n, 0, len - n);
	return 0;
}
