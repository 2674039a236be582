/* emit.c: an image written to a pipe in file order: the planning pass drops guest data, the emitting pass sends the plan's tables between the data (emit.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "emit.h"
#include "imgint.h"
#include "io.h"

void img_emit_attach(struct img *img, struct img_emit *e)
{
	img->emit = e;
}

int img_emit_is_data(const struct img_copy_src *s, const uint8_t *buf)
{
	if (!s)
		return 0;
	if (buf >= s->base && buf < s->base + s->ncl * s->cs)
		return 1;
	return s->zbase && buf >= s->zbase && buf < s->zbase + s->zlen;
}

static int write_all(int fd, const uint8_t *buf, uint64_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, (size_t)img_min_u64(len, 1u << 30));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* n bytes of in at *off to out, in the kernel where it can. */
static int send_range(int out, int in, uint64_t off, uint64_t n)
{
	uint8_t buf[1 << 16];

	while (n) {
		off_t o = (off_t)off;
		ssize_t w = sendfile(out, in, &o, (size_t)img_min_u64(n, 1u << 30));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EINVAL || errno == ENOSYS)) {
			/* not through sendfile here: read and write */
			w = pread(in, buf, (size_t)img_min_u64(n, sizeof(buf)),
				  (off_t)off);
			if (w > 0 && write_all(out, buf, (uint64_t)w) < 0)
				return -errno;
		}
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENODATA;
		off += (uint64_t)w;
		n -= (uint64_t)w;
	}
	return 0;
}

/* The plan from e->pos up to end. */
static int send_plan(struct img_emit *e, uint64_t end)
{
	int ret;

	if (end < e->pos)
		return -EPROTO;         /* the passes differ */
	ret = send_range(e->out, e->plan_fd, e->pos, end - e->pos);
	if (ret == 0)
		e->pos = end;
	return ret;
}

int img_emit_data(struct img *img, const uint8_t *buf, uint64_t len,
		  uint64_t host)
{
	struct img_emit *e = img->emit;
	const struct img_copy_src *s = img->copy_src;
	uint64_t done = 0;
	int ret;

	if (e->planning)
		return 0;
	ret = send_plan(e, host);
	while (ret == 0 && done < len) {
		const uint8_t *p = buf + done;
		uint64_t n = len - done, from_off = 0;
		int from = -1;

		/* a cluster left in a source file is sent from there */
		if (s->from && p >= s->base && p < s->base + s->ncl * s->cs) {
			uint64_t at = (uint64_t)(p - s->base);

			n = img_min_u64(n, s->cs - at % s->cs);
			if (s->from[at / s->cs]) {
				from = img_io_plain_fd(s->from[at / s->cs]);
				from_off = s->from_off[at / s->cs] + at % s->cs;
			}
		}
		ret = from >= 0 ? send_range(e->out, from, from_off, n) :
				  write_all(e->out, p, n);
		done += n;
	}
	if (ret == 0) {
		e->pos = host + len;
		img_io_count_written(len);
	}
	return ret;
}

/* Whether files a and b hold the same bytes wherever either has data. */
static int same_tables(int a, int b)
{
	struct stat sa, sb;
	uint8_t x[1 << 16], y[1 << 16];
	off_t off = 0;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	if (sa.st_size != sb.st_size)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		int fd = pass ? b : a;

		for (off = 0; off < sa.st_size;) {
			off_t d = lseek(fd, off, SEEK_DATA), h;

			if (d < 0)
				break;
			h = lseek(fd, d, SEEK_HOLE);
			if (h < 0)
				return -errno;
			for (off = d; off < h;) {
				size_t n = (size_t)img_min_u64((uint64_t)(h - off),
							       sizeof(x));

				if (pread(a, x, n, off) != (ssize_t)n ||
				    pread(b, y, n, off) != (ssize_t)n)
					return -EIO;
				if (memcmp(x, y, n))
					return 0;
				off += (off_t)n;
			}
		}
	}
	return 1;
}

int img_emit_finish(struct img_emit *e, int fd)
{
	struct stat st;
	int ret;

	if (fstat(e->plan_fd, &st) < 0)
		return -errno;
	ret = send_plan(e, (uint64_t)st.st_size);
	if (ret < 0)
		return ret;
	ret = same_tables(e->plan_fd, fd);
	return ret < 0 ? ret : ret ? 0 : -EPROTO;
}
