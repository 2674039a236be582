/* cli_source.c: sources that are not seekable image files (standard input, pipes, FIFOs, compressed files, archives): read as they come, or unpacked into a temporary file first. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "stream.h"
#include "unpack.h"

const char *cli_member;

/* The packing (compression or archive format) a regular file starts
 * with, by its first bytes; NULL for anything else. */
static const char *packing_of(int fd, const struct stat *st)
{
	uint8_t head[512];
	ssize_t n = S_ISREG(st->st_mode) ? pread(fd, head, sizeof(head), 0) : 0;

	return n > 0 ? img_packed_format(head, (size_t)n) : NULL;
}

/* Whether path must be unpacked: standard input ("-"), anything that
 * cannot seek, or a file that starts like a compressed stream or an
 * archive. Then its descriptor (*fd), identity (*st) and, for a packed
 * file, the name of its packing (*packed); else -1 in *fd. */
static void classify(const char *path, int *fd, struct stat *st,
		     const char **packed)
{
	*packed = NULL;
	/* A named FIFO is opened waiting for a writer, as cat does; anything
	 * else without waiting (a device that would block is not ours). */
	if (strcmp(path, "-") && stat(path, st) == 0 && S_ISFIFO(st->st_mode))
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	else
		*fd = strcmp(path, "-") ?
		      open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) :
		      dup(STDIN_FILENO);
	if (*fd < 0)
		return;         /* img_open says why */
	if (fstat(*fd, st) < 0 || S_ISDIR(st->st_mode))
		goto plain;
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		int fl = fcntl(*fd, F_GETFL);

		if (fl >= 0)
			fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
		return;
	}
	*packed = packing_of(*fd, st);
	if (*packed)
		return;
plain:
	close(*fd);
	*fd = -1;
}

/* A stream being read: one per process (a command has one source). */
static struct {
	const char *path;       /* NULL: none open */
	struct img_stream *s;
	int fd;
	struct stat st;         /* the file it comes from */
	char what[400];         /* "xz-compressed", "tar member 'a.img'" */
} cur;

/* A short description of what is read: "xz-compressed", "tar member
 * 'disk.img'", "a pipe". */
static void describe(const struct img_stream *s, const char *member,
		     const struct stat *st, char *buf, size_t len)
{
	const char *filter = img_stream_filter(s), *format = img_stream_format(s);

	if (*format && *filter && strcmp(filter, "none"))
		snprintf(buf, len, "%s member '%s' (%s-compressed)", format,
			 member, filter);
	else if (*format)
		snprintf(buf, len, "%s member '%s'", format, member);
	else if (*filter)
		snprintf(buf, len, "%s-compressed", filter);
	else
		snprintf(buf, len, "%s", S_ISFIFO(st->st_mode) ? "a pipe" :
			 S_ISSOCK(st->st_mode) ? "a socket" : "a stream");
}

void cli_close_stream(void)
{
	if (!cur.path)
		return;
	img_stream_close(cur.s);
	close(cur.fd);
	cur.path = NULL;
}

/* Open path as a stream (cur), or return 0 if it is an ordinary file. */
static int open_stream(const char *path)
{
	char err[768];
	const char *packed;
	int fd, ret;

	if (cur.path && !strcmp(cur.path, path))
		return 1;       /* cli_open_raw_stream opened it */
	cli_close_stream();
	classify(path, &fd, &cur.st, &packed);
	if (fd < 0 && cli_member)
		cli_die(EXIT_FAIL, "cannot open '%s': --member is for archives, and this is not one",
			path);
	if (fd < 0)
		return 0;
	if (isatty(fd))
		cli_die(EXIT_FAIL, "cannot read an image from a terminal ('%s')",
			path);
	ret = img_stream_open(fd, cli_member, &cur.s, err, sizeof(err));
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot read '%s': %s", path, err);
	if (cli_member && !*img_stream_format(cur.s))
		cli_die(EXIT_FAIL, "cannot open '%s': --member is for archives, and this is not one",
			path);
	cur.path = path;
	cur.fd = fd;
	describe(cur.s, img_stream_member(cur.s), &cur.st, cur.what,
		 sizeof(cur.what));
	return 1;
}

/* The stream in cur into a temporary file, opened as img. */
static struct img *spool(struct img *img, const char *path,
			 const struct img_open_opts *o)
{
	const char *tmpdir = getenv("TMPDIR");
	struct img_unpacked u;
	char err[768];

	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	if (img_unpack_stream(cur.s, tmpdir, &u, err, sizeof(err)) < 0)
		cli_die(EXIT_FAIL, "cannot read '%s': %s", path, err);
	/* the member chosen on the way is known only now */
	describe(cur.s, u.member, &cur.st, cur.what, sizeof(cur.what));
	cli_close_stream();
	if (img_open_fd(img, path, u.fd, &cur.st, o) < 0)
		cli_die(EXIT_FAIL, "cannot open '%s' (%s): %s", path, cur.what,
			img_errmsg(img));
	/* An image file needs random access, which only the copy gives. */
	if (strcmp(img_format(img), "raw"))
		cli_warn("'%s' (%s) holds a %s image: read through a temporary file in %s",
			 path, cur.what, img_format(img), tmpdir);
	return img;
}

struct img *cli_open_source(struct img *img, const char *path,
			    const struct img_open_opts *o)
{
	if (!open_stream(path)) {
		int fd;

		if (strcmp(path, "-"))
			return NULL;
		/* standard input is a file: read it where it is */
		fd = dup(STDIN_FILENO);
		if (fd < 0 || img_open_fd(img, path, fd, NULL, o) < 0)
			cli_die_open(EXIT_FAIL, path, img);
		return img;
	}
	return spool(img, path, o);
}

struct img_stream *cli_open_raw_stream(const char *path, struct stat *st)
{
	uint8_t head[64 << 10];
	const char *fmt;
	long n;

	if (!open_stream(path))
		return NULL;
	if (img_stream_must_choose(cur.s))
		return NULL;    /* which member is known only at the end */
	n = img_stream_peek(cur.s, head, sizeof(head));
	if (n < 0)
		cli_die(EXIT_FAIL, "cannot read '%s' (%s): %s", path, cur.what,
			img_stream_error(cur.s));
	fmt = cli_format ? cli_format :
	      img_probe_format(path, head, (size_t)n);
	if (!fmt || strcmp(fmt, "raw"))
		return NULL;
	*st = cur.st;
	return cur.s;
}

int cli_is_packed(const char *path)
{
	const char *packed = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0)
		packed = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ?
			 packing_of(fd, &st) : "a stream";
	close(fd);
	return packed != NULL;
}

void cli_refuse_packed(const char *path)
{
	const char *packed = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return;         /* opening says why */
	if (fstat(fd, &st) == 0)
		packed = packing_of(fd, &st);
	close(fd);
	if (packed)
		cli_die(EXIT_FAIL, "cannot open '%s': %s data, not an image: %s works on an image file in place",
			path, packed, cli_prog);
}
