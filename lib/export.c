/* export.c: writing the whole virtual disk as raw bytes, sparse where the output allows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgint.h"

#define CHUNK (4u << 20)

/*
 * Where the bytes go. A regular file is written with pwrite and left with
 * holes where the guest reads zeros; anything else (a pipe) gets every byte
 * in order.
 */
struct sink {
	int fd;
	int seekable;
	int allocate;        /* write zeros instead of leaving holes */
	uint64_t pos;        /* bytes accounted for so far */
	const uint8_t *zeros;
};

static int sink_data(struct sink *s, const uint8_t *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = s->seekable
			? pwrite(s->fd, buf + done, n - done,
				 (off_t)(s->pos + done))
			: write(s->fd, buf + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)w;
	}
	s->pos += n;
	return 0;
}

static int sink_zero(struct sink *s, uint64_t n)
{
	if (s->seekable && !s->allocate) {
		s->pos += n;    /* a hole: the final ftruncate sets the length */
		return 0;
	}
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		int ret = sink_data(s, s->zeros, k);
		if (ret < 0)
			return ret;
		n -= k;
	}
	return 0;
}

/* Write buf, leaving zero runs of at least gran bytes as holes. */
static int sink_scan(struct sink *s, const uint8_t *buf, size_t n, size_t gran)
{
	size_t i = 0;

	if (!gran || !s->seekable)
		return sink_data(s, buf, n);
	while (i < n) {
		size_t z = img_zero_prefix(buf + i, n - i, gran);
		size_t d = 0;
		int ret;

		if (z) {
			ret = sink_zero(s, z);
			if (ret < 0)
				return ret;
			i += z;
			continue;
		}
		/* Extend the data run up to the next zero block. */
		while (i + d < n) {
			size_t k = n - i - d < gran ? n - i - d : gran;
			if (d && img_is_zero(buf + i + d, k))
				break;
			d += k;
		}
		ret = sink_data(s, buf + i, d);
		if (ret < 0)
			return ret;
		i += d;
	}
	return 0;
}

int img_export_raw(struct img *img, int fd, uint64_t zero_gran,
		   img_progress_fn progress, void *arg)
{
	struct sink s = { .fd = fd };
	struct stat st;
	uint8_t *buf = NULL, *zeros = NULL;
	uint64_t off = 0;
	int ret = 0;

	s.seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	s.allocate = zero_gran == 0;
	if (s.seekable && ftruncate(fd, 0) < 0)
		return img_error(img, -errno, "cannot truncate output: %s",
				 img_strerror(-errno));
	if (!s.seekable || s.allocate) {
		zeros = calloc(1, CHUNK);
		if (!zeros)
			return img_error(img, -ENOMEM, "out of memory");
	}
	s.zeros = zeros;
	buf = aligned_alloc(4096, CHUNK);
	if (!buf) {
		free(zeros);
		return img_error(img, -ENOMEM, "out of memory");
	}
	while (off < img->size) {
		uint64_t want = img->size - off < CHUNK ? img->size - off : CHUNK;
		struct img_extent e;
		struct img *l;
		int depth;

		ret = img_chain_status(img, off, want, &e, &l, &depth);
		if (ret < 0)
			break;
		if (e.kind != IMG_EXT_DATA) {
			ret = sink_zero(&s, e.length);
		} else {
			ret = img_read_extent(l, &e, off, buf, (size_t)e.length);
			if (ret < 0) {
				if (l != img)
					img_error(img, ret, "backing file '%s': %s",
						  l->path, img_errmsg(l));
				break;
			}
			ret = sink_scan(&s, buf, (size_t)e.length,
					(size_t)zero_gran);
		}
		if (ret < 0) {
			img_error(img, ret, "cannot write output: %s",
				  img_strerror(ret));
			break;
		}
		off += e.length;
		if (progress)
			progress(off, img->size, arg);
	}
	if (ret == 0 && s.seekable && ftruncate(fd, (off_t)img->size) < 0)
		ret = img_error(img, -errno, "cannot set output size: %s",
				img_strerror(-errno));
	free(buf);
	free(zeros);
	return ret;
}
