/* cli_source.c: sources that are not seekable image files (standard input, pipes, FIFOs, compressed files, archives), unpacked into a temporary file before they are opened. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
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

/* A short description of what was unpacked: "xz-compressed", "tar
 * member 'disk.img'", "a pipe". */
static void describe(const struct img_unpacked *u, const struct stat *st,
		     char *buf, size_t len)
{
	if (*u->format && *u->filter && strcmp(u->filter, "none"))
		snprintf(buf, len, "%s member '%s' (%s-compressed)", u->format,
			 u->member, u->filter);
	else if (*u->format)
		snprintf(buf, len, "%s member '%s'", u->format, u->member);
	else if (*u->filter)
		snprintf(buf, len, "%s-compressed", u->filter);
	else
		snprintf(buf, len, "%s", S_ISFIFO(st->st_mode) ? "a pipe" :
			 S_ISSOCK(st->st_mode) ? "a socket" : "a stream");
}

struct img *cli_open_source(struct img *img, const char *path,
			    const struct img_open_opts *o)
{
	struct img_unpacked u;
	const char *packed, *tmpdir = getenv("TMPDIR");
	struct stat st;
	char err[768], what[400];
	int fd, ret;

	classify(path, &fd, &st, &packed);
	if (fd < 0 && cli_member)
		cli_die(EXIT_FAIL, "cannot open '%s': --member is for archives, and this is not one",
			path);
	if (fd < 0 && !strcmp(path, "-")) {
		/* standard input is a file: read it where it is */
		fd = dup(STDIN_FILENO);
		if (fd < 0 || img_open_fd(img, path, fd, NULL, o) < 0)
			cli_die_open(EXIT_FAIL, path, img);
		return img;
	}
	if (fd < 0)
		return NULL;
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	if (isatty(fd))
		cli_die(EXIT_FAIL, "cannot read an image from a terminal ('%s')",
			path);
	ret = img_unpack(fd, cli_member, tmpdir, &u, err, sizeof(err));
	close(fd);
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot read '%s': %s", path, err);
	if (cli_member && !*u.format)
		cli_die(EXIT_FAIL, "cannot open '%s': --member is for archives, and this is not one",
			path);
	describe(&u, &st, what, sizeof(what));
	if (img_open_fd(img, path, u.fd, &st, o) < 0)
		cli_die(EXIT_FAIL, "cannot open '%s' (%s): %s", path, what,
			img_errmsg(img));
	/* An image file needs random access, which only the copy gives. */
	if (strcmp(img_format(img), "raw"))
		cli_warn("'%s' (%s) holds a %s image: read through a temporary file in %s",
			 path, what, img_format(img), tmpdir);
	return img;
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
