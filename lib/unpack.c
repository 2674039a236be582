/* unpack.c: pipes, compressed files and archives written out as they come: into a sparse temporary file, or as a raw disk into the output. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgint.h"
#include "outfile.h"
#include "stream.h"
#include "unpack.h"

#define BLOCK 4096u

static int starts(const uint8_t *buf, size_t len, size_t at, const char *magic,
		  size_t n)
{
	return len >= at + n && !memcmp(buf + at, magic, n);
}

const char *img_packed_format(const uint8_t *buf, size_t len)
{
	if (starts(buf, len, 0, "\x1f\x8b", 2))
		return "gzip";
	if (starts(buf, len, 0, "\xfd" "7zXZ\0", 6))
		return "xz";
	if (starts(buf, len, 0, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (starts(buf, len, 0, "BZh", 3) && len > 3 && buf[3] >= '1' &&
	    buf[3] <= '9')
		return "bzip2";
	if (starts(buf, len, 0, "\x04\x22\x4d\x18", 4))
		return "lz4";
	if (starts(buf, len, 257, "ustar", 5))
		return "tar";
	if (starts(buf, len, 0, "PK\3\4", 4))
		return "zip";
	if (starts(buf, len, 0, "070701", 6) || starts(buf, len, 0, "070702", 6) ||
	    starts(buf, len, 0, "070707", 6))
		return "cpio";
	if (starts(buf, len, 0, "7z\xbc\xaf\x27\x1c", 6))
		return "7z";
	return NULL;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* Whether an archive member's name says it is a disk image. */
static int disk_like(const char *name)
{
	static const char *const ext[] = {
		".img", ".raw", ".qcow", ".qcow2", ".qed", ".bin", NULL,
	};
	size_t n = strlen(name);

	for (int i = 0; ext[i]; i++) {
		size_t e = strlen(ext[i]);

		if (n > e && !strcasecmp(name + n - e, ext[i]))
			return 1;
	}
	return 0;
}

/* Write [off, off+len) of buf to fd, skipping 4 KiB blocks of zeros
 * (they stay holes: the file only grows by ftruncate at the end). */
static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t i = 0;

	while (i < len) {
		size_t n = BLOCK - (size_t)((off + i) % BLOCK);

		if (n > len - i)
			n = len - i;
		if (!img_is_zero(buf + i, n)) {
			size_t j = i + n;

			/* extend the run over the blocks that hold data */
			while (j < len) {
				size_t k = len - j < BLOCK ? len - j : BLOCK;
				if (img_is_zero(buf + j, k))
					break;
				j += k;
			}
			for (size_t done = i; done < j;) {
				ssize_t w = pwrite(fd, buf + done, j - done,
						   (off_t)(off + done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					return -errno;
				done += (size_t)w;
			}
			n = j - i;
		}
		i += n;
	}
	return 0;
}

/* The stream's bytes into fd from offset 0, holes kept, sized at the end. */
static int copy_member(struct img_stream *s, int fd, uint64_t *size,
		       char *err, size_t errlen)
{
	const uint8_t *buf;
	size_t len;
	uint64_t off;
	int r, ret;

	if (ftruncate(fd, 0) < 0)
		return fail(err, errlen, -errno,
			    "cannot reset a temporary file: %s", strerror(errno));
	while ((r = img_stream_next(s, &buf, &len, &off)) == 1) {
		ret = write_sparse(fd, buf, len, off);
		if (ret < 0)
			return fail(err, errlen, ret,
				    "cannot write a temporary file: %s",
				    strerror(-ret));
	}
	if (r < 0)
		return fail(err, errlen, r, "%s", img_stream_error(s));
	*size = img_stream_size(s);
	if (ftruncate(fd, (off_t)*size) < 0)
		return fail(err, errlen, -errno,
			    "cannot size a temporary file: %s", strerror(errno));
	return 0;
}

/* From an archive without a member name: the only regular file, or the
 * only one named like a disk image. The archive is read once, so the
 * choice is made on the way: a disk-like member found after another
 * file replaces it. */
static int choose_member(struct img_stream *s, struct img_unpacked *u,
			 char *err, size_t errlen)
{
	char names[512] = "";
	int nfiles = 0, ndisk = 0, taken = 0, r, ret;

	do {
		const char *name = img_stream_member(s);
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "",
			 name);
		nfiles++;
		ndisk += disk_like(name);
		if (taken && (disk_like(u->member) || !disk_like(name)))
			continue;
		snprintf(u->member, sizeof(u->member), "%s", name);
		ret = copy_member(s, u->fd, &u->size, err, errlen);
		if (ret < 0)
			return ret;
		taken = 1;
	} while ((r = img_stream_next_member(s)) == 1);
	if (r < 0)
		return fail(err, errlen, r, "%s", img_stream_error(s));
	if (nfiles > 1 && ndisk != 1)
		return fail(err, errlen, -EINVAL,
			    "%d members, say which with --member: %s", nfiles,
			    names);
	return 0;
}

int img_unpack_stream(struct img_stream *s, const char *tmpdir,
		      struct img_unpacked *u, char *err, size_t errlen)
{
	int ret;

	memset(u, 0, sizeof(*u));
	snprintf(u->filter, sizeof(u->filter), "%s", img_stream_filter(s));
	snprintf(u->format, sizeof(u->format), "%s", img_stream_format(s));
	snprintf(u->member, sizeof(u->member), "%s", img_stream_member(s));
	u->fd = img_outfile_anon(tmpdir);
	if (u->fd < 0)
		return fail(err, errlen, u->fd,
			    "cannot make a temporary file in '%s': %s", tmpdir,
			    strerror(-u->fd));
	if (img_stream_must_choose(s))
		ret = choose_member(s, u, err, errlen);
	else
		ret = copy_member(s, u->fd, &u->size, err, errlen);
	if (ret < 0) {
		close(u->fd);
		u->fd = -1;
	}
	return ret;
}

int img_unpack(int fd, const char *member, const char *tmpdir,
	       struct img_unpacked *u, char *err, size_t errlen)
{
	struct img_stream *s;
	int ret = img_stream_open(fd, member, &s, err, errlen);

	if (ret < 0) {
		memset(u, 0, sizeof(*u));
		u->fd = -1;
		return ret;
	}
	ret = img_unpack_stream(s, tmpdir, u, err, errlen);
	img_stream_close(s);
	return ret;
}

/* Write all of [0, size) of the stream to fd in order, zeros included
 * (a pipe, a FIFO, a device). */
static int write_dense(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int write_zeros(int fd, uint64_t n)
{
	static const uint8_t zeros[1 << 16];

	while (n) {
		size_t k = (size_t)img_min_u64(n, sizeof(zeros));
		int ret = write_dense(fd, zeros, k);

		if (ret < 0)
			return ret;
		n -= k;
	}
	return 0;
}

int img_unpack_to(struct img_stream *s, int fd, int sparse,
		  img_progress_fn progress, void *arg, uint64_t *size,
		  char *err, size_t errlen)
{
	const uint8_t *buf;
	size_t len;
	uint64_t off, at = 0;
	int r, ret = 0;

	while ((r = img_stream_next(s, &buf, &len, &off)) == 1) {
		if (sparse) {
			ret = write_sparse(fd, buf, len, off);
		} else {
			ret = write_zeros(fd, off - at);
			if (ret == 0)
				ret = write_dense(fd, buf, len);
		}
		if (ret < 0)
			return fail(err, errlen, ret, "cannot write: %s",
				    strerror(-ret));
		at = off + len;
		if (progress)
			progress(at, 0, arg);
	}
	if (r < 0)
		return fail(err, errlen, r, "%s", img_stream_error(s));
	*size = img_stream_size(s);
	if (sparse && ftruncate(fd, (off_t)*size) < 0)
		ret = -errno;
	else if (!sparse)
		ret = write_zeros(fd, *size - at);
	if (ret < 0)
		return fail(err, errlen, ret, "cannot write: %s", strerror(-ret));
	return 0;
}
