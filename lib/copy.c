/* copy.c: copying file ranges in the kernel (shared extents, copy_file_range), and the writers' data path that uses it. */
#include <errno.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "emit.h"
#include "imgint.h"

/* Cloning works on whole file system blocks; 4 KiB is XFS's and btrfs's
 * usual block size (a larger one makes the first clone fail, and the
 * copier then stops trying). */
#define CLONE_ALIGN 4096u

static int clone_range(struct img_copier *cp, int dfd, uint64_t doff,
		       int sfd, uint64_t soff, uint64_t len)
{
	struct file_clone_range r = {
		.src_fd = sfd, .src_offset = soff, .src_length = len,
		.dest_offset = doff,
	};
	int ret;

	do
		ret = ioctl(dfd, FICLONERANGE, &r);
	while (ret < 0 && errno == EINTR);
	if (ret == 0) {
		cp->cloned += len;
		return 0;
	}
	if (cp->mode == IMG_COPY_REFLINK)
		return cp->clone_error = -errno;
	cp->no_clone = 1;
	return 1;
}

/* Errors of copy_file_range that say "not here" (another file system,
 * file types or flags it does not handle), not "the data is lost". */
static int kernel_cannot(int err)
{
	return err == EXDEV || err == EINVAL || err == ENOSYS ||
	       err == EOPNOTSUPP || err == EBADF || err == EPERM ||
	       err == ETXTBSY || err == EISDIR;
}

static int kernel_copy(struct img_copier *cp, int dfd, uint64_t doff,
		       int sfd, uint64_t soff, uint64_t len)
{
	loff_t in = (loff_t)soff, out = (loff_t)doff;
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = copy_file_range(sfd, &in, dfd, &out,
					    (size_t)img_min_u64(len - done, 1u << 30), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && kernel_cannot(errno) && done == 0) {
			cp->no_kernel = 1;
			return 1;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return 1;   /* the source shrank: read it, see why */
		done += (uint64_t)n;
	}
	cp->kernel += len;
	return 0;
}

int img_io_copy(struct img_copier *cp, struct img_io *dst, uint64_t doff,
		struct img_io *src, uint64_t soff, uint64_t len)
{
	int dfd = img_io_plain_fd(dst), sfd = img_io_plain_fd(src), ret = 1;
	struct stat st;

	if (!cp || cp->mode == IMG_COPY_READ_WRITE || dfd < 0 || sfd < 0 ||
	    (dst->flags & IMG_IO_RDONLY) || !len)
		return 1;
	if (fstat(sfd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    soff + len < soff || soff + len > (uint64_t)st.st_size)
		return 1;
	if (cp->mode != IMG_COPY_KERNEL && !cp->no_clone &&
	    !((doff | soff | len) % CLONE_ALIGN))
		ret = clone_range(cp, dfd, doff, sfd, soff, len);
	if (ret == 1 && !cp->no_kernel)
		ret = kernel_copy(cp, dfd, doff, sfd, soff, len);
	if (ret == 0) {
		img_io_note_end(dst, doff + len);
		img_io_count_written(len);
	}
	return ret;
}

int img_copy_refused(struct img *img, const struct img_copier *cp,
		     const char *src_path, int err)
{
	if (!cp->clone_error)
		return 0;
	return img_error(img, err, "cannot share data with '%s': %s (the file system cannot share extents between these files)",
			 src_path, img_strerror(cp->clone_error));
}

int img_extent_copyable(struct img *l, const struct img_extent *e)
{
	uint64_t size;

	if (e->kind != IMG_EXT_DATA ||
	    (e->flags & (IMG_EXT_F_COMPRESSED | IMG_EXT_F_ENCRYPTED)) ||
	    !(e->flags & IMG_EXT_F_OFFSET) || l->encrypted || !l->data_io ||
	    img_io_plain_fd(l->data_io) < 0 ||
	    img_io_size(l->data_io, &size) < 0)
		return 0;
	return e->host <= size && e->length <= size - e->host;
}

/* Copy n bytes of cluster i (and on, contiguous in its source) to host;
 * read and write them here where the kernel cannot. */
static int copy_clusters(const struct img_copy_src *s, struct img_io *io,
			 uint64_t i, uint64_t n, uint64_t host)
{
	uint8_t *b = s->base + i * s->cs;
	int ret = img_io_copy(s->copier, io, host, s->from[i], s->from_off[i], n);

	if (ret != 1)
		return ret;
	ret = img_io_read_exact(s->from[i], b, (size_t)n, s->from_off[i]);
	if (ret < 0)
		return ret;
	return img_io_pwrite(io, b, (size_t)n, host);
}

int img_write_data(struct img *img, struct img_io *io, const uint8_t *buf,
		   uint64_t len, uint64_t host)
{
	const struct img_copy_src *s = img->copy_src;
	uint64_t first, pos = 0;

	if (img->emit && io == img->io && img_emit_is_data(s, buf))
		return img_emit_data(img, buf, len, host);
	if (!s || !s->from || buf < s->base || buf >= s->base + s->ncl * s->cs)
		return img_io_pwrite(io, buf, (size_t)len, host);
	/* Writers hand over whole clusters of the buffer */
	if ((uint64_t)(buf - s->base) % s->cs ||
	    (uint64_t)(buf - s->base) + len > s->ncl * s->cs)
		return -EINVAL;
	first = (uint64_t)(buf - s->base) / s->cs;
	while (pos < len) {
		uint64_t i = first + pos / s->cs, j = i + 1, n;
		int ret;

		if (!s->from[i]) {
			while (j - first < (len + s->cs - 1) / s->cs && !s->from[j])
				j++;
		} else {
			while (j - first < (len + s->cs - 1) / s->cs &&
			       s->from[j] == s->from[i] &&
			       s->from_off[j] == s->from_off[i] + (j - i) * s->cs)
				j++;
		}
		n = img_min_u64((j - first) * s->cs, len) - pos;
		if (!s->from[i])
			ret = img_io_pwrite(io, buf + pos, (size_t)n, host + pos);
		else
			ret = copy_clusters(s, io, i, n, host + pos);
		if (ret < 0)
			return ret;
		pos += n;
	}
	return 0;
}
