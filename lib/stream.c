/* stream.c: pipes, compressed files and archive members read front to back through libarchive (gzip through zlib), block by block. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "imgint.h"
#include "stream.h"
#include "unpack.h"

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
	size_t pipe_batch;      /* a pipe: bytes worth waking up for */
};

/*
 * Two layers: outer undoes the compression (libarchive's filters, with
 * only its "raw" format: the bytes as they are); when those bytes start
 * like an archive (by its magic: tar's "ustar" at 257, zip, cpio, 7z),
 * a reads the archive from them, else a is outer. libarchive's own
 * format detection is not trusted with disks: its tar reader takes a
 * disk that starts with 1 KiB of zeros for an empty archive.
 */
#define HEAD (64u << 10)        /* bytes read to tell archives from disks */

struct img_stream {
	struct archive *a;
	struct archive *outer;  /* if not a: the decompressing layer */
	uint8_t *o_head;        /* its first bytes, handed to a first */
	size_t o_head_len;
	const uint8_t *o_rest;  /* what was left of the block they ended in */
	size_t o_rest_len;
	struct gz *g;
	struct archive_entry *e;
	char filter[32], format[32], member[256];
	int choose;             /* an archive, no member named yet */
	int in_member;          /* e is a regular file whose data is next */
	int fresh;              /* e was read but not looked at yet */
	int64_t declared;       /* the member's size, or -1 */
	uint64_t end;           /* end of the data handed out so far */
	int ended;
	uint8_t *head;          /* img_stream_peek's bytes, handed out first */
	size_t head_len;
	int head_pending;
	const uint8_t *rest;    /* what peek left of the block it stopped in */
	size_t rest_len;
	uint64_t rest_off;
	char err[768];
};

static int fail(struct img_stream *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct img_stream *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return code;
}

static const char *archive_why(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unknown error";
}

/*
 * A reader faster than its writer sleeps in read() and is woken by each
 * of the writer's small writes (xz writes 8 KiB at a time): a context
 * switch per write, paid on the writer's side too, which is what makes
 * "xz -dc | img-convert" slower than xz alone. Waiting while the pipe
 * holds less than half its buffer lets the writer fill it without waking
 * anybody. A few milliseconds at most: a slow writer is still read.
 */
static void let_pipe_fill(const struct gz *g)
{
	struct timespec nap = { 0, 500 * 1000 };
	int avail, i;

	for (i = 0; g->pipe_batch && i < 20; i++) {
		if (ioctl(g->fd, FIONREAD, &avail) < 0 ||
		    (size_t)avail >= g->pipe_batch)
			return;
		nanosleep(&nap, NULL);
	}
}

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
	let_pipe_fill(g);
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
	let_pipe_fill(g);
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

/* For let_pipe_fill: half the pipe's buffer, at most a read's worth;
 * 0 if fd is not a pipe. */
static size_t pipe_batch(int fd, size_t read_size)
{
	struct stat st;
	int size;

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return 0;
	size = fcntl(fd, F_GETPIPE_SZ);
	if (size <= 0)
		return 0;
	return (size_t)size / 2 < read_size ? (size_t)size / 2 : read_size;
}

/* Open a on fd, through zlib when fd starts with gzip's magic (then *gp
 * holds the state, to free after a). */
static int open_input(struct archive *a, int fd, struct gz **gp)
{
	uint8_t m[2];
	ssize_t n;

	*gp = NULL;
	/* A pipe's 64 KiB make writer and reader take turns every few
	 * blocks; 1 MiB (the most an unprivileged process may ask) lets
	 * each run longer. Only a hint: a failure changes nothing. */
	fcntl(fd, F_SETPIPE_SZ, 1 << 20);
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
		g->pipe_batch = pipe_batch(fd, GZ_IN);
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
		g->pipe_batch = pipe_batch(fd, GZ_OUT);
		g->plain = 1;
		g->nhead = n > 0 ? (size_t)n : 0;
		memcpy(g->in, m, g->nhead);
		*gp = g;
		return archive_read_open(a, g, NULL, gz_read, NULL);
	}
}

/* How far into the input (the compressed bytes) reading went. */
static uint64_t in_offset(const struct img_stream *s)
{
	if (s->g && !s->g->plain)
		return s->g->in_off;
	return (uint64_t)archive_filter_bytes(s->outer ? s->outer : s->a, -1);
}

static int read_error(struct img_stream *s)
{
	if (*s->format && s->in_member)
		return fail(s, IMG_E_CORRUPT, "%s member '%s': %s at offset %llu",
			    s->format, s->member, archive_why(s->a),
			    (unsigned long long)in_offset(s));
	return fail(s, IMG_E_CORRUPT, "%s at offset %llu", archive_why(s->a),
		    (unsigned long long)in_offset(s));
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

/* The name of the compression: gzip (inflated before libarchive) or the
 * outermost filter that is not "none". */
static void note_filter(struct img_stream *s)
{
	int n = archive_filter_count(s->a);

	if (s->g && !s->g->plain) {
		snprintf(s->filter, sizeof(s->filter), "gzip");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *name = archive_filter_name(s->a, i);

		if (name && strcmp(name, "none")) {
			snprintf(s->filter, sizeof(s->filter), "%s", name);
			return;
		}
	}
}

/* Stand on the entry just read: its data comes next. */
static void enter(struct img_stream *s)
{
	const char *name = archive_entry_pathname(s->e);

	snprintf(s->member, sizeof(s->member), "%s", name ? name : "");
	s->declared = archive_entry_size_is_set(s->e) ?
		      archive_entry_size(s->e) : -1;
	s->in_member = 1;
	s->end = 0;
	s->ended = 0;
	s->head_pending = 0;    /* a peek was at the member before */
	s->rest_len = 0;
}

int img_stream_next_member(struct img_stream *s)
{
	int r;

	if (!*s->format)
		return 0;
	for (;;) {
		r = s->fresh ? ARCHIVE_OK : archive_read_next_header(s->a, &s->e);
		s->fresh = 0;
		if (r == ARCHIVE_WARN)
			r = ARCHIVE_OK; /* e.g. an unknown pax keyword: read on */
		s->in_member = 0;
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return read_error(s);
		if (archive_entry_filetype(s->e) == AE_IFREG) {
			enter(s);
			return 1;
		}
	}
}

/* With a member name: read up to it, listing the others for the error. */
static int seek_member(struct img_stream *s, const char *member)
{
	char names[512] = "";
	int r;

	while ((r = img_stream_next_member(s)) == 1) {
		size_t l = strlen(names);

		if (!strcmp(s->member, member))
			return 0;
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "",
			 s->member);
	}
	if (r < 0)
		return r;
	return fail(s, -ENOENT, "no member '%s' (members: %s)", member,
		    *names ? names : "none");
}

/* The archive format head starts with, or NULL. */
static const char *archive_magic(const uint8_t *head, size_t len)
{
	const char *f = img_packed_format(head, len);

	if (f && (!strcmp(f, "tar") || !strcmp(f, "zip") || !strcmp(f, "cpio") ||
		  !strcmp(f, "7z")))
		return f;
	return NULL;
}

static int peek_blocks(struct img_stream *s, size_t len);

/* The archive reader's input: the outer layer's bytes, its head first. */
static la_ssize_t outer_read(struct archive *a, void *arg, const void **buf)
{
	struct img_stream *s = arg;
	const void *b;
	size_t len;
	la_int64_t off;
	int r;

	if (s->o_head_len) {
		*buf = s->o_head;
		len = s->o_head_len;
		s->o_head_len = 0;
		return (la_ssize_t)len;
	}
	if (s->o_rest_len) {
		*buf = s->o_rest;
		len = s->o_rest_len;
		s->o_rest_len = 0;
		return (la_ssize_t)len;
	}
	r = archive_read_data_block(s->outer, &b, &len, &off);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK) {
		archive_set_error(a, archive_errno(s->outer), "%s",
				  archive_why(s->outer));
		return -1;
	}
	*buf = b;
	return (la_ssize_t)len;
}

/* The bytes are an archive (format fmt): read it with a second reader,
 * on the outer layer's bytes (a 7z archive from its file: it seeks). */
static int open_archive(struct img_stream *s, int fd, const char *fmt)
{
	struct archive *a = archive_read_new();
	int r;

	if (!a)
		return fail(s, -ENOMEM, "out of memory");
	archive_read_support_format_tar(a);
	archive_read_support_format_zip_streamable(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_7zip(a);
	s->outer = s->a;
	s->a = a;
	s->o_head = s->head;
	s->o_head_len = s->head_len;
	s->o_rest = s->rest;
	s->o_rest_len = s->rest_len;
	s->head = NULL;
	s->head_len = s->rest_len = 0;
	s->head_pending = 0;
	s->end = 0;
	s->ended = 0;
	if (!strcmp(fmt, "7z")) {
		if (*s->filter || lseek(fd, 0, SEEK_SET) != 0)
			return fail(s, -ENOTSUP,
				    "a 7z archive is read from its file, not from a pipe or compressed");
		archive_read_free(s->outer);
		s->outer = NULL;
		r = archive_read_open_fd(a, fd, 1 << 20);
	} else {
		r = archive_read_open(a, s, NULL, outer_read, NULL);
	}
	if (r != ARCHIVE_OK)
		return read_error(s);
	r = archive_read_next_header(a, &s->e);
	if (r == ARCHIVE_WARN)
		r = ARCHIVE_OK;
	if (r == ARCHIVE_EOF)
		return fail(s, -ENOENT, "no file in the archive");
	if (r != ARCHIVE_OK)
		return read_error(s);
	snprintf(s->format, sizeof(s->format), "%s", format_name(a));
	s->fresh = 1;
	return 0;
}

int img_stream_open(int fd, const char *member, struct img_stream **sp,
		    char *err, size_t errlen)
{
	struct img_stream *s = calloc(1, sizeof(*s));
	const char *fmt;
	int r, ret = 0;

	*sp = NULL;
	if (!s || !(s->a = archive_read_new())) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	archive_read_support_filter_all(s->a);
	archive_read_support_format_raw(s->a);
	s->declared = -1;
	ret = open_input(s->a, fd, &s->g);
	if (ret == -ENODATA)
		ret = fail(s, ret, "no data (an empty input)");
	else if (ret == -ENOMEM)
		ret = fail(s, ret, "out of memory");
	else if (ret != ARCHIVE_OK)
		ret = fail(s, IMG_E_CORRUPT, "%s", archive_why(s->a));
	if (ret < 0)
		goto out;
	r = archive_read_next_header(s->a, &s->e);
	note_filter(s);
	if (r == ARCHIVE_EOF) {
		s->ended = 1;   /* an empty stream: a disk of 0 bytes */
		goto out;
	}
	if (r != ARCHIVE_OK) {
		ret = fail(s, IMG_E_CORRUPT, "%s%s%s", s->filter,
			   *s->filter ? ": " : "", archive_why(s->a));
		goto out;
	}
	s->in_member = 1;
	ret = peek_blocks(s, HEAD);
	if (ret < 0)
		goto out;
	fmt = archive_magic(s->head, s->head_len);
	if (!fmt)
		goto out;       /* the bytes are the disk */
	ret = open_archive(s, fd, fmt);
	if (ret < 0)
		goto out;
	if (member) {
		ret = seek_member(s, member);
	} else {
		/* stand on the first regular file; the caller chooses */
		s->choose = 1;
		ret = img_stream_next_member(s);
		if (ret == 0)
			ret = fail(s, -ENOENT, "no file in the archive");
		else if (ret == 1)
			ret = 0;
	}
out:
	if (ret < 0) {
		snprintf(err, errlen, "%s", s->err);
		img_stream_close(s);
		return ret;
	}
	*sp = s;
	return 0;
}

void img_stream_close(struct img_stream *s)
{
	if (!s)
		return;
	archive_read_free(s->a);
	archive_read_free(s->outer);
	if (s->g && !s->g->plain)
		inflateEnd(&s->g->z);
	free(s->g);
	free(s->head);
	free(s->o_head);
	free(s);
}

const char *img_stream_filter(const struct img_stream *s) { return s->filter; }
const char *img_stream_format(const struct img_stream *s) { return s->format; }
const char *img_stream_member(const struct img_stream *s) { return s->member; }
int img_stream_must_choose(const struct img_stream *s) { return s->choose; }
const char *img_stream_error(const struct img_stream *s) { return s->err; }
int img_stream_failed(const struct img_stream *s) { return !!*s->err; }

uint64_t img_stream_size(const struct img_stream *s)
{
	if (s->declared > 0 && (uint64_t)s->declared > s->end)
		return (uint64_t)s->declared;   /* ends in a hole */
	return s->end;
}

/* The next block from libarchive (the peeked bytes first). */
static int next_block(struct img_stream *s, const uint8_t **buf, size_t *len,
		      uint64_t *off)
{
	const void *b;
	la_int64_t o;
	int r;

	if (s->ended || !s->in_member)
		return 0;
	r = archive_read_data_block(s->a, &b, len, &o);
	if (r == ARCHIVE_EOF) {
		s->ended = 1;
		return 0;
	}
	if (r != ARCHIVE_OK)
		return read_error(s);
	if (o < 0 || (uint64_t)o < s->end)
		return fail(s, IMG_E_CORRUPT,
			    "data out of order in the archive at offset %llu",
			    (unsigned long long)in_offset(s));
	*buf = b;
	*off = (uint64_t)o;
	s->end = *off + *len;
	return 1;
}

int img_stream_next(struct img_stream *s, const uint8_t **buf, size_t *len,
		    uint64_t *off)
{
	if (s->head_pending) {
		s->head_pending = 0;
		if (s->head_len) {
			*buf = s->head;
			*len = s->head_len;
			*off = 0;
			return 1;
		}
	}
	if (s->rest_len) {
		*buf = s->rest;
		*len = s->rest_len;
		*off = s->rest_off;
		s->rest_len = 0;
		return 1;
	}
	return next_block(s, buf, len, off);
}

/* Read the first len bytes into s->head (holes as zeros), to be handed
 * out first by img_stream_next. */
static int peek_blocks(struct img_stream *s, size_t len)
{
	const uint8_t *b;
	size_t n;
	uint64_t off;
	int r;

	free(s->head);
	s->head = calloc(1, len ? len : 1);
	if (!s->head)
		return fail(s, -ENOMEM, "out of memory");
	s->head_len = 0;
	while ((r = next_block(s, &b, &n, &off)) == 1) {
		if (off >= len) {
			s->rest = b, s->rest_len = n, s->rest_off = off;
			break;
		}
		size_t take = n < len - off ? n : (size_t)(len - off);

		memcpy(s->head + off, b, take);
		s->head_len = (size_t)off + take;
		if (take < n) {
			s->rest = b + take, s->rest_len = n - take;
			s->rest_off = off + take;
			break;
		}
	}
	if (r < 0)
		return r;
	/* a hole up to len, or the stream's end, is zeros in the head */
	if (s->rest_len)
		s->head_len = len;
	else if (s->ended)
		s->head_len = (size_t)img_min_u64(len, img_stream_size(s));
	s->head_pending = 1;
	return 0;
}

long img_stream_peek(struct img_stream *s, uint8_t *buf, size_t len)
{
	/* a disk's first bytes were read at open; a member's are read now */
	if (!s->head_pending || s->head_len < len) {
		if (s->head_pending && !*s->format)
			len = s->head_len;      /* all there is */
		else if (peek_blocks(s, len) < 0)
			return -1;
	}
	len = len < s->head_len ? len : s->head_len;
	memcpy(buf, s->head, len);
	return (long)len;
}

/* ---- cursor ---------------------------------------------------------- */

/* Make the block at hand one that ends after off, if the stream has one. */
static int reach(struct img_stream_cursor *c, uint64_t off)
{
	while (!c->ended && (!c->buf || c->off + c->len <= off)) {
		int r = img_stream_next(c->s, &c->buf, &c->len, &c->off);

		if (r < 0)
			return r;
		if (r == 0) {
			c->ended = 1;
			c->buf = NULL;
			c->len = 0;
		}
	}
	return 0;
}

int img_stream_read(struct img_stream_cursor *c, uint64_t off, uint8_t *buf,
		    size_t len, size_t *got)
{
	uint64_t end = off + len;
	size_t done = 0;

	*got = 0;
	while (off + done < end) {
		uint64_t pos = off + done;
		int ret = reach(c, pos);

		if (ret < 0)
			return ret;
		if (c->ended) {
			uint64_t size = img_stream_size(c->s);
			size_t n = size > pos ?
				   (size_t)img_min_u64(size - pos, end - pos) : 0;

			memset(buf + done, 0, n);
			*got = done + n;
			return 0;
		}
		if (c->off > pos) {     /* a hole before the block */
			size_t n = (size_t)img_min_u64(c->off - pos, end - pos);

			memset(buf + done, 0, n);
			done += n;
			continue;
		}
		size_t n = (size_t)img_min_u64(c->off + c->len - pos, end - pos);

		memcpy(buf + done, c->buf + (pos - c->off), n);
		done += n;
	}
	*got = done;
	return 0;
}

int img_stream_data_after(struct img_stream_cursor *c, uint64_t off,
			  uint64_t *next)
{
	int ret = reach(c, off);

	if (ret < 0)
		return ret;
	if (c->ended)
		*next = img_max_u64(off, img_stream_size(c->s));
	else
		*next = c->off > off ? c->off : off;
	return 0;
}
