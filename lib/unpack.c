/* unpack.c: reading pipes, compressed files and archives through libarchive into a sparse temporary file. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "imgint.h"
#include "outfile.h"
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

struct gz;
static uint64_t in_offset(struct archive *a, const struct gz *g);

static const char *archive_why(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unknown error";
}

/* The name of a's compression: its outermost filter but "none". */
static void note_filter(struct archive *a, struct img_unpacked *u)
{
	int n = archive_filter_count(a);

	if (*u->filter)
		return;         /* gzip, inflated before libarchive */
	for (int i = 0; i < n; i++) {
		const char *name = archive_filter_name(a, i);

		if (name && strcmp(name, "none")) {
			snprintf(u->filter, sizeof(u->filter), "%s", name);
			return;
		}
	}
}

/* Copy the current entry's data into u->fd. */
static int copy_entry(struct archive *a, const struct gz *g,
		      struct img_unpacked *u, char *err, size_t errlen,
		      int64_t declared)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	uint64_t end = 0;
	int r, ret;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (off < 0)
			return fail(err, errlen, IMG_E_CORRUPT,
				    "negative offset in the archive");
		ret = write_sparse(u->fd, buf, len, (uint64_t)off);
		if (ret < 0)
			return fail(err, errlen, ret,
				    "cannot write a temporary file: %s",
				    strerror(-ret));
		if ((uint64_t)off + len > end)
			end = (uint64_t)off + len;
	}
	if (r != ARCHIVE_EOF)
		return fail(err, errlen, IMG_E_CORRUPT, "%s at offset %llu",
			    archive_why(a),
			    (unsigned long long)in_offset(a, g));
	/* a sparse member may end in a hole */
	if (declared > 0 && (uint64_t)declared > end)
		end = (uint64_t)declared;
	if (ftruncate(u->fd, (off_t)end) < 0)
		return fail(err, errlen, -errno,
			    "cannot size a temporary file: %s", strerror(errno));
	u->size = end;
	return 0;
}

/* Read the archive from its first entry e on, into u: the member named
 * member, or without a name the only regular file, or the only one named
 * like a disk image. The archive is read once, so the choice is made on
 * the way: a disk-like member found after another file replaces it. */
static int read_archive(struct archive *a, const struct gz *g,
			struct archive_entry *e, const char *member,
			struct img_unpacked *u, char *err, size_t errlen)
{
	char names[512] = "";
	int nfiles = 0, ndisk = 0, taken = 0, r = ARCHIVE_OK, ret;

	for (; r == ARCHIVE_OK; r = archive_read_next_header(a, &e)) {
		const char *name = archive_entry_pathname(e);
		size_t l = strlen(names);
		int take;

		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		if (!name)
			name = "";
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "",
			 name);
		nfiles++;
		ndisk += disk_like(name);
		if (member)
			take = !strcmp(name, member);
		else
			take = !taken || (!disk_like(u->member) && disk_like(name));
		if (!take)
			continue;
		if (ftruncate(u->fd, 0) < 0)
			return fail(err, errlen, -errno,
				    "cannot reset a temporary file: %s",
				    strerror(errno));
		snprintf(u->member, sizeof(u->member), "%s", name);
		ret = copy_entry(a, g, u, err, errlen,
				 archive_entry_size_is_set(e) ?
				 archive_entry_size(e) : -1);
		if (ret < 0)
			return ret;
		taken = 1;
		if (member)
			return 0;
	}
	if (r != ARCHIVE_EOF)
		return fail(err, errlen, IMG_E_CORRUPT, "%s at offset %llu",
			    archive_why(a),
			    (unsigned long long)in_offset(a, g));
	if (member)
		return fail(err, errlen, -ENOENT, "no member '%s' (members: %s)",
			    member, *names ? names : "none");
	if (!nfiles)
		return fail(err, errlen, -ENOENT, "no file in the archive");
	if (nfiles > 1 && ndisk != 1)
		return fail(err, errlen, -EINVAL,
			    "%d members, say which with --member: %s", nfiles,
			    names);
	return 0;
}

/*
 * gzip is inflated here, with zlib, not by libarchive: its gzip reader
 * does not check the CRC, and a corrupted .gz would convert without a
 * word. zlib checks each member's CRC and length; members follow each
 * other (as gzip -c a b makes); zeros after the last one are padding.
 */
#define GZ_IN (1u << 16)
#define GZ_OUT (1u << 20)

struct gz {
	int fd;
	z_stream z;
	uint8_t in[GZ_IN];
	uint8_t out[GZ_OUT];
	uint64_t in_off;        /* compressed bytes consumed, for messages */
	int eof_in, ended;
	int plain;              /* not gzip: the bytes as they come */
	size_t nhead;           /* plain: bytes read ahead, at in */
};

/* Plain input: the bytes read ahead, then the rest of fd. */
static la_ssize_t plain_read(struct archive *a, struct gz *g,
			     const void **buf)
{
	ssize_t n;

	if (g->nhead) {
		*buf = g->in;
		n = (ssize_t)g->nhead;
		g->nhead = 0;
		return n;
	}
	do
		n = read(g->fd, g->out, GZ_OUT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "cannot read: %s", strerror(errno));
		return -1;
	}
	*buf = g->out;
	return n;
}

static int gz_fill(struct archive *a, struct gz *g)
{
	ssize_t n;

	if (g->z.avail_in || g->eof_in)
		return 0;
	do
		n = read(g->fd, g->in, GZ_IN);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "cannot read: %s", strerror(errno));
		return -1;
	}
	g->z.next_in = g->in;
	g->z.avail_in = (uInt)n;
	g->eof_in = n == 0;
	return 0;
}

/* After a member: another one follows, or padding zeros, or the end. */
static int gz_next_member(struct archive *a, struct gz *g)
{
	for (;;) {
		if (gz_fill(a, g) < 0)
			return -1;
		if (!g->z.avail_in) {
			g->ended = 1;
			return 0;
		}
		if (g->z.next_in[0] == 0x1f) {
			inflateReset(&g->z);
			return 0;
		}
		if (!img_is_zero(g->z.next_in, g->z.avail_in)) {
			archive_set_error(a, EINVAL,
					  "gzip: trailing garbage");
			return -1;
		}
		g->in_off += g->z.avail_in;
		g->z.avail_in = 0;
	}
}

static la_ssize_t gz_read(struct archive *a, void *arg, const void **buf)
{
	struct gz *g = arg;

	if (g->plain)
		return plain_read(a, g, buf);
	g->z.next_out = g->out;
	g->z.avail_out = GZ_OUT;
	while (g->z.avail_out == GZ_OUT && !g->ended) {
		uInt before;
		int r;

		if (gz_fill(a, g) < 0)
			return -1;
		if (g->eof_in && !g->z.avail_in) {
			archive_set_error(a, EINVAL,
					  "gzip: truncated input");
			return -1;
		}
		before = g->z.avail_in;
		r = inflate(&g->z, Z_NO_FLUSH);
		g->in_off += before - g->z.avail_in;
		if (r == Z_STREAM_END) {
			if (gz_next_member(a, g) < 0)
				return -1;
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			archive_set_error(a, EINVAL, "gzip: %s",
					  g->z.msg ? g->z.msg : "bad data");
			return -1;
		}
	}
	*buf = g->out;
	return (la_ssize_t)(GZ_OUT - g->z.avail_out);
}

/* Open a on fd, through zlib when fd starts with gzip's magic (then *gp
 * holds the state, to free after a). */
static int open_input(struct archive *a, int fd, struct gz **gp)
{
	uint8_t m[2];
	ssize_t n;

	*gp = NULL;
	do
		n = read(fd, m, 2);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ENODATA;
	if (n == 2 && m[0] == 0x1f && m[1] == 0x8b) {
		struct gz *g = calloc(1, sizeof(*g));

		if (!g || inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
			free(g);
			return -ENOMEM;
		}
		g->fd = fd;
		memcpy(g->in, m, 2);
		g->z.next_in = g->in;
		g->z.avail_in = 2;
		*gp = g;
		return archive_read_open(a, g, NULL, gz_read, NULL);
	}
	/* not gzip: a file libarchive reads itself (7z needs to seek), a
	 * pipe through us, the bytes read ahead first */
	if (lseek(fd, 0, SEEK_SET) == 0)
		return archive_read_open_fd(a, fd, 1 << 20);
	{
		struct gz *g = calloc(1, sizeof(*g));

		if (!g)
			return -ENOMEM;
		g->fd = fd;
		g->plain = 1;
		g->nhead = n > 0 ? (size_t)n : 0;
		memcpy(g->in, m, g->nhead);
		*gp = g;
		return archive_read_open(a, g, NULL, gz_read, NULL);
	}
}

/* How far into the input (the compressed bytes) reading went. */
static uint64_t in_offset(struct archive *a, const struct gz *g)
{
	if (g && !g->plain)
		return g->in_off;
	return (uint64_t)archive_filter_bytes(a, -1);
}

static const char *format_name(struct archive *a)
{
	switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
	case ARCHIVE_FORMAT_TAR:
		return "tar";
	case ARCHIVE_FORMAT_ZIP:
		return "zip";
	case ARCHIVE_FORMAT_CPIO:
		return "cpio";
	case ARCHIVE_FORMAT_7ZIP:
		return "7z";
	}
	return "archive";
}

int img_unpack(int fd, const char *member, const char *tmpdir,
	       struct img_unpacked *u, char *err, size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct gz *g = NULL;
	int r, ret;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	if (!a)
		return fail(err, errlen, -ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	/* Only these: others (iso9660, ar, mtree...) would take raw disks
	 * and image files for archives. "raw" is the bytes as they are. */
	archive_read_support_format_tar(a);
	archive_read_support_format_zip_streamable(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_raw(a);
	ret = img_outfile_anon(tmpdir);
	if (ret < 0) {
		archive_read_free(a);
		return fail(err, errlen, ret, "cannot make a temporary file in '%s': %s",
			    tmpdir, strerror(-ret));
	}
	u->fd = ret;
	ret = open_input(a, fd, &g);
	if (ret == -ENODATA) {
		ret = fail(err, errlen, ret, "no data (an empty input)");
		goto out;
	}
	if (ret == -ENOMEM) {
		ret = fail(err, errlen, ret, "out of memory");
		goto out;
	}
	if (ret != ARCHIVE_OK) {
		ret = fail(err, errlen, IMG_E_CORRUPT, "%s", archive_why(a));
		goto out;
	}
	if (g && !g->plain)
		snprintf(u->filter, sizeof(u->filter), "gzip");
	r = archive_read_next_header(a, &e);
	note_filter(a, u);
	if (r == ARCHIVE_EOF) {
		ret = 0;        /* an empty stream: a disk of 0 bytes */
		goto out;
	}
	if (r != ARCHIVE_OK) {
		ret = fail(err, errlen, IMG_E_CORRUPT, "%s%s%s", u->filter,
			   *u->filter ? ": " : "", archive_why(a));
		goto out;
	}
	if (archive_format(a) == ARCHIVE_FORMAT_RAW) {
		ret = copy_entry(a, g, u, err, errlen, -1);
	} else {
		snprintf(u->format, sizeof(u->format), "%s", format_name(a));
		ret = read_archive(a, g, e, member, u, err, errlen);
	}
out:
	archive_read_free(a);
	if (g && !g->plain)
		inflateEnd(&g->z);
	free(g);
	if (ret < 0) {
		close(u->fd);
		u->fd = -1;
	}
	return ret;
}
