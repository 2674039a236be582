/* img-convert: convert an image into raw, qcow, qcow2 or QED, as `qemu-img convert` does. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "lock.h"
#include "opts.h"
#include "emit.h"
#include "outfile.h"
#include "stream.h"
#include "unpack.h"

static const char *out_format = "raw";
static const char **options;   /* every -o, in order */
static const char *sparse_size;
static const char *backing, *backing_fmt;
static int compress, no_create, target_is_zero, progress, quiet, durable;
static int salvage;
static const char *copy_mode = "auto";
static const char *target_dir, *output;
static int jobs, force;

/* Exit status when --salvage had to write zeros for unreadable parts. */
#define EXIT_SALVAGED 3

static struct poptOption opts_table[] = {
	{ NULL, 'O', POPT_ARG_STRING, &out_format, 0,
	  "output format: raw, qcow, qcow2 or qed (default raw)", "FMT" },
	{ NULL, 'o', POPT_ARG_ARGV, &options, 0,
	  "output format options, name=value,...; -o help lists them",
	  "OPTIONS" },
	{ NULL, 'c', POPT_ARG_NONE, &compress, 0,
	  "compressed clusters (qcow, qcow2)", NULL },
	{ NULL, 'S', POPT_ARG_STRING, &sparse_size, 0,
	  "zero runs of at least SIZE are not written (default 4k, 0 = write all)",
	  "SIZE" },
	{ NULL, 'B', POPT_ARG_STRING, &backing, 0,
	  "backing file of the output; only what differs from it is written",
	  "BACKING" },
	{ NULL, 'F', POPT_ARG_STRING, &backing_fmt, 0,
	  "format of the backing file (default: probed)", "BACKING_FMT" },
	{ NULL, 'n', POPT_ARG_NONE, &no_create, 0,
	  "write into the existing DST instead of creating it", NULL },
	{ "target-is-zero", 0, POPT_ARG_NONE, &target_is_zero, 0,
	  "with -n: DST reads as zeros already, zeros need not be written",
	  NULL },
	{ NULL, 'p', POPT_ARG_NONE, &progress, 0,
	  "show progress on stderr", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_progress_options, 0, NULL,
	  NULL },
	{ NULL, 'q', POPT_ARG_NONE, &quiet, 0, "quiet", NULL },
	{ "salvage", 0, POPT_ARG_NONE, &salvage, 0,
	  "write what cannot be read of SRC as zeros, saying where (exit 3)",
	  NULL },
	{ "copy-mode", 0, POPT_ARG_STRING, &copy_mode, 0,
	  "how stored data moves: auto (share, else copy in the kernel, else read and write), copy, reflink or read-write",
	  "MODE" },
	{ "sync", 0, POPT_ARG_NONE, &durable, 0,
	  "make the output durable (fsync) before it appears", NULL },
	{ NULL, 't', POPT_ARG_STRING, &target_dir, 0,
	  "batch: convert every SRC into DIR (name.FMT), see -j, --force",
	  "DIR" },
	{ NULL, 'j', POPT_ARG_INT, &jobs, 0,
	  "batch: conversions at a time (default: the number of CPUs)", "N" },
	{ "force", 0, POPT_ARG_NONE, &force, 0,
	  "batch: convert even where a complete output exists", NULL },
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "batch: status lines as text (human, the default) or json", "FMT" },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Source options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* The temporary output, removed if we die or are interrupted; and an
 * add-cow output's image file, made under its own name before the data
 * goes in, removed the same way until the add-cow file appears. */
static struct img_outfile out = { .fd = -1 };
static char *new_image_file;

static void cleanup(void)
{
	img_outfile_abort(&out);
	if (new_image_file)
		unlink(new_image_file);
}

/* Create the temporary output beside the file dst names; from now on it
 * is removed on every way out but the final rename, a fatal signal
 * included (cli_signal.c). */
static void start_output(const char *dst)
{
	sigset_t all, old;
	int ret;

	/* no signal between the file's creation and its cleanup's setup */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	ret = img_outfile_create(&out, dst);
	if (ret == 0) {
		atexit(cleanup);
		cli_signals_cleanup(cleanup);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", dst, strerror(-ret));
}

/* A conversion into an existing target (-n) stopped by a signal at a safe
 * point: the target is consistent, written up to some point. */
static void check_interrupted(int ret, const char *dst)
{
	if (ret == -ECANCELED)
		cli_interrupted("'%s' is consistent but only partly written", dst);
	if (ret == 0 && cli_cancel)
		cli_interrupted("'%s' was written completely before it could stop",
				dst);
}

static void commit_output(const char *dst)
{
	int ret = img_outfile_commit(&out, durable);

	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot write '%s': %s", dst, strerror(-ret));
	{
		/* kept: the add-cow file names it now (the name is dropped
		 * first, for the signal handler) */
		char *kept = new_image_file;

		new_image_file = NULL;
		free(kept);
	}
}

/* --salvage: one warning per unreadable range, and a tally for the end. */
struct salvage_tally {
	const char *src;
	uint64_t ranges, bytes;
};

static void report_salvaged(uint64_t off, uint64_t len, const char *why,
			    void *arg)
{
	struct salvage_tally *t = arg;

	cli_progress_end();
	t->ranges++;
	t->bytes += len;
	cli_warn("cannot read '%s' at 0x%llx (%llu bytes): %s; written as zeros",
		 t->src, (unsigned long long)off, (unsigned long long)len, why);
}

/* Refuse option mixes that cannot mean anything. */
static void check_options(void)
{
	const struct img_opt_desc *desc = img_create_options(out_format);

	if (!desc)
		cli_die(EXIT_USAGE, "unknown output format '%s' (raw, qcow, qcow2, qed, add-cow)",
			out_format);
	if (target_is_zero && !no_create)
		cli_die(EXIT_USAGE, "--target-is-zero needs -n");
	if (no_create && options)
		cli_die(EXIT_USAGE, "-o cannot be used with -n: the target exists");
	if (no_create && backing)
		cli_die(EXIT_USAGE, "-B cannot be used with -n: the target exists");
	if (backing_fmt && !backing)
		cli_die(EXIT_USAGE, "-F needs a backing file (-B)");
	if (!strcmp(out_format, "add-cow") && target_dir)
		cli_die(EXIT_USAGE, "-t cannot make add-cow outputs: each needs an image file of its own (-o image_file)");
	if (!strcmp(out_format, "raw") && backing)
		cli_die(EXIT_FAIL, "raw images have no backing file (-B)");
	if (compress && (!strcmp(out_format, "raw") || !strcmp(out_format, "qed") ||
			 !strcmp(out_format, "add-cow")))
		cli_die(EXIT_FAIL, "the %s format does not support compression (-c)",
			out_format);
}

/* Parse -o into the creation options of the output format. */
static void parse_create_options(struct img_opts *o)
{
	char err[256];

	img_opts_init(o, img_create_options(out_format));
	for (int i = 0; options && options[i]; i++)
		if (img_opts_parse(o, options[i], err, sizeof(err)) < 0)
			cli_die(EXIT_USAGE, "%s", err);
}

static void set_option(struct img_opts *o, const char *name, const char *value)
{
	char err[256];

	if (img_opts_set(o, name, value, err, sizeof(err)) < 0)
		cli_die(EXIT_FAIL, "%s", err);
}

/* -B: open the backing file as the output will see it (relative to DST);
 * its format is recorded as given by -F, or as probed. */
static struct img *open_target_backing(const char *dst)
{
	/* the output's backing file: nobody may write it, as under QEMU */
	struct img_open_opts bo = { .format = backing_fmt, .no_writers = 1 };
	char *where = img_path_beside(dst, backing);
	struct img *b = img_new();

	if (!where || !b)
		cli_die(EXIT_FAIL, "out of memory");
	if (img_open(b, where, &bo) < 0)
		cli_die(EXIT_FAIL, "cannot open backing file '%s': %s", where,
			img_errmsg(b));
	free(where);
	return b;
}

/* What is converted: an image, or a raw disk read as it comes. */
struct source {
	struct img *img;
	struct img_stream *stream;
	const char *name;
};

/* The size to create the target with: the source's, or for a stream
 * one the format shrinks from once the stream has ended. */
static void set_target_size(struct img_opts *o, const struct source *src)
{
	char num[32];
	uint64_t size = src->img ? img_size(src->img) :
			img_create_stream_size(out_format, o);

	snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
	set_option(o, "size", num);
}

/* Copy src into the opened target (named dst for messages), then close
 * it; last: the progress shown ends with it. */
static void fill_target(const struct source *src, struct img *target,
			const char *dst, struct img_convert_opts *co, int last)
{
	uint64_t size;
	int ret = src->img ? img_convert(src->img, target, co) :
		  img_convert_stream(src->stream, src->name, target, co, &size);

	if (ret == 0 && src->stream && co->progress)
		co->progress(size, size, NULL);    /* the length, known now */
	if (last || ret < 0)
		cli_progress_end();
	if (co->in_place)
		check_interrupted(ret, dst);
	if (ret < 0 && src->stream && img_stream_failed(src->stream))
		cli_die(EXIT_FAIL, "cannot read '%s': %s", src->name,
			img_stream_error(src->stream));
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot convert '%s' to '%s': %s",
			src->name, dst, img_errmsg(target));
	img_free(target);
}

static void refuse_protected(struct img *src, const struct stat *from,
			     struct img *tb, const char *dst);

/* An add-cow output's image file: a new file (an existing one is never
 * written over; -n writes into a pair), not one the source or the new
 * backing file needs; removed again if the conversion fails. */
static void claim_image_file(const struct source *src,
			     const struct img_convert_opts *co, const char *dst,
			     const struct img_opts *o)
{
	const char *name = img_opt_str(o, "image_file");
	struct stat st;
	char *where;

	if (!name || !*name)
		cli_die(EXIT_USAGE, "an add-cow output needs an image file: -o image_file=NAME");
	where = img_path_beside(dst, name);
	if (!where)
		cli_die(EXIT_FAIL, "out of memory");
	refuse_protected(src->img, NULL, co->target_backing, where);
	if (lstat(where, &st) == 0)
		cli_die(EXIT_FAIL, "image file '%s' exists: img-convert makes a new one (to write into an existing pair, use -n)",
			where);
	new_image_file = where;
}

/* The image file of an add-cow target for -n: never the source nor a
 * file it needs (looked up before the target is opened for writing,
 * whose locks would clash with the source's first). */
static void refuse_protected_data(const struct source *src,
				  const struct img_convert_opts *co,
				  const char *dst)
{
	struct img_open_opts po = { .format = out_format, .metadata_only = 1,
				    .no_backing = 1, .force_share = 1 };
	struct img *peek = img_new();
	struct img_info info;

	if (!peek)
		cli_die(EXIT_FAIL, "out of memory");
	if (img_open(peek, dst, &po) < 0)
		cli_die_open(EXIT_FAIL, dst, peek);
	img_get_info(peek, &info);
	if (info.data_path)
		refuse_protected(src->img, NULL, co->target_backing,
				 info.data_path);
	img_free(peek);
}

/* A new image of out_format as big as src, then filled by the format
 * writer under a temporary name. */
static void convert_to_new(const struct source *src, const char *dst,
			   struct img_convert_opts *co)
{
	struct img_opts o;
	struct img *created = img_new(), *target = img_new();
	struct img_open_opts wo = { .format = out_format, .writable = 1,
				    .no_backing = 1 };

	if (!created || !target)
		cli_die(EXIT_FAIL, "out of memory");
	parse_create_options(&o);
	if (co->target_backing) {
		set_option(&o, "backing_file", backing);
		set_option(&o, "backing_fmt", img_format(co->target_backing));
	}
	set_target_size(&o, src);
	if (!strcmp(out_format, "add-cow"))
		claim_image_file(src, co, dst, &o);
	start_output(dst);
	if (img_create_fd(created, dst, out.fd, out_format, &o,
			  IMG_CREATE_NEW_FILES) < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", dst,
			img_errmsg(created));
	img_free(created);
	if (img_open(target, out.tmp, &wo) < 0)
		cli_die(EXIT_FAIL, "cannot reopen '%s': %s", out.tmp,
			img_errmsg(target));
	fill_target(src, target, dst, co, 1);
	img_opts_free(&o);
	commit_output(dst);
}

/* Send the whole file fd to to, in file order (holes as zeros). */
static void send_file(int fd, int to, const char *dst)
{
	struct stat st;
	off_t off = 0;
	char buf[1 << 16];

	if (fstat(fd, &st) < 0)
		cli_die(EXIT_FAIL, "cannot read the temporary output: %s",
			strerror(errno));
	while (off < st.st_size) {
		ssize_t n = sendfile(to, fd, &off, (size_t)(st.st_size - off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			/* not through sendfile here: read and write */
			n = pread(fd, buf, sizeof(buf), off);
			if (n > 0 && write(to, buf, (size_t)n) != n)
				n = -1;
			if (n > 0)
				off += n;
		}
		if (n <= 0)
			cli_die(EXIT_FAIL, "cannot write '%s': %s", dst,
				n == 0 ? "unexpected end of the temporary output" :
				strerror(errno));
	}
}

/* A new target image in an unnamed temporary file, opened writable as
 * *target; returns the file's descriptor (the target has its own). */
static int temporary_target(const struct source *src, const char *name,
			    struct img **target)
{
	const char *tmpdir = getenv("TMPDIR");
	struct img_open_opts wo = { .format = out_format, .writable = 1,
				    .no_backing = 1 };
	struct img *created = img_new();
	struct img_opts o;
	int tmp, tfd;

	*target = img_new();
	if (!created || !*target)
		cli_die(EXIT_FAIL, "out of memory");
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	tmp = img_outfile_anon(tmpdir);
	if (tmp < 0)
		cli_die(EXIT_FAIL, "cannot make a temporary file in '%s': %s",
			tmpdir, strerror(-tmp));
	parse_create_options(&o);
	set_target_size(&o, src);
	if (img_create_fd(created, name, tmp, out_format, &o, 0) < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", name,
			img_errmsg(created));
	img_free(created);
	img_opts_free(&o);
	tfd = dup(tmp);
	if (tfd < 0 || img_open_fd(*target, name, tfd, NULL, &wo) < 0)
		cli_die(EXIT_FAIL, "cannot reopen the temporary output: %s",
			tfd < 0 ? strerror(errno) : img_errmsg(*target));
	return tmp;
}

/* Progress over the two passes of an image sent to a pipe: each is half
 * the work. */
static int emit_pass;

static void progress_two_passes(uint64_t done, uint64_t total, void *arg)
{
	cli_progress(emit_pass * (total / 2) + done / 2, total, arg);
}

/*
 * qcow, qcow2 or QED to a pipe, FIFO or device, in file order. From an
 * image, without holding the output anywhere (emit.h): a first pass
 * plans the tables in a sparse temporary file (no data), a second sends
 * the image, byte for byte the file a regular DST would get. From a raw
 * stream, which can be read only once, the image is made whole in a
 * temporary file, then sent.
 */
static void convert_to_stream(const struct source *src, const char *dst,
			      struct img_convert_opts *co)
{
	const char *name = strcmp(dst, "-") ? dst : "standard output";
	struct img_emit plan = { .planning = 1 }, emit = { .pos = 0 };
	img_progress_fn shown = co->progress;
	struct img *target;
	int fd, tmp, ret;

	if (co->target_backing)
		cli_die(EXIT_USAGE, "-B writes a backing file name relative to DST: not to a stream");
	if (!strcmp(out_format, "add-cow"))
		cli_die(EXIT_USAGE, "an add-cow output is two files: not to a stream");
	fd = strcmp(dst, "-") ? open(dst, O_WRONLY | O_CLOEXEC) : STDOUT_FILENO;
	if (fd < 0)
		cli_die(EXIT_FAIL, "cannot open '%s': %s", dst, strerror(errno));
	if (isatty(fd))
		cli_die(EXIT_USAGE, "refusing to write binary data to a terminal");
	if (src->stream) {
		tmp = temporary_target(src, name, &target);
		fill_target(src, target, name, co, 1);
		send_file(tmp, fd, name);
		close(tmp);
	} else {
		if (shown)
			co->progress = progress_two_passes;
		emit.plan_fd = temporary_target(src, name, &target);
		img_emit_attach(target, &plan);
		fill_target(src, target, name, co, 0);
		emit_pass = 1;
		emit.out = fd;
		tmp = temporary_target(src, name, &target);
		img_emit_attach(target, &emit);
		fill_target(src, target, name, co, 1);
		ret = img_emit_finish(&emit, tmp);
		if (ret == -EPROTO)
			cli_die(EXIT_FAIL, "cannot write '%s': the image sent differs from its plan (a bug: convert to a file instead)",
				name);
		if (ret < 0)
			cli_die(EXIT_FAIL, "cannot write '%s': %s", name,
				strerror(-ret));
		close(tmp);
		close(emit.plan_fd);
		co->progress = shown;
	}
	if (fd != STDOUT_FILENO && close(fd) < 0)
		cli_die(EXIT_FAIL, "cannot write '%s': %s", dst, strerror(errno));
}

/* -n: write into the existing image dst, which must be as big. An
 * add-cow pair's backing chain is opened too, to hold QEMU's locks on it:
 * its clear clusters read from there while we write. */
static void convert_in_place(const struct source *src, const char *dst,
			     struct img_convert_opts *co)
{
	struct img_open_opts wo = { .format = out_format, .writable = 1,
				    .no_backing = strcmp(out_format, "add-cow") };
	struct img *target = img_new();

	int repaired;

	if (!target)
		cli_die(EXIT_FAIL, "out of memory");
	if (img_repair_if_dirty(target, dst, &wo, &repaired) < 0)
		cli_die(EXIT_FAIL, "cannot write '%s': %s", dst,
			img_errmsg(target));
	if (repaired && !quiet)
		cli_warn("'%s' was marked dirty by an interrupted writer: its metadata is repaired",
			 dst);
	if (!strcmp(out_format, "add-cow"))
		refuse_protected_data(src, co, dst);
	if (img_open(target, dst, &wo) < 0)
		cli_die_open(EXIT_FAIL, dst, target);
	fill_target(src, target, dst, co, 1);
}

/* -n into a raw file or block device: QEMU's write locks, taken on a
 * descriptor of our own (fd may be write-only, and read locks need a
 * readable one) that stays open until we exit. Pipes have no locks. */
static void lock_raw_target(const char *dst, int fd)
{
	struct stat st;
	int lfd, ret;

	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return;
	lfd = open(dst, O_RDONLY | O_CLOEXEC);
	if (lfd < 0)
		return;         /* write-only to us: we cannot lock it */
	ret = img_lock_fd(lfd, IMG_LOCK_WRITE, IMG_LOCK_RAW, 0);
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot lock '%s': %s", dst, img_strerror(ret));
}

static int is_block_device(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
}

/* A raw disk read as it comes, into fd: a new file (sparse) or a pipe,
 * FIFO or device (every byte, in order). */
static void stream_to_raw(const struct source *src, int fd, int sparse,
			  const char *dst, struct img_convert_opts *co)
{
	char err[768] = "";
	uint64_t size;

	if (img_unpack_to(src->stream, fd, sparse, co->progress, NULL, &size,
			  err, sizeof(err)) < 0 && img_stream_failed(src->stream))
		cli_die(EXIT_FAIL, "cannot read '%s': %s", src->name,
			img_stream_error(src->stream));
	else if (*err)
		cli_die(EXIT_FAIL, "cannot convert '%s' to '%s': %s", src->name,
			strcmp(dst, "-") ? dst : "standard output", err);
	if (co->progress)
		co->progress(size, size, NULL);    /* the length, known now */
	cli_progress_end();
}

/* raw: bytes to a new file, an existing file or device (-n), or stdout. */

static void convert_to_raw(const struct source *src, const char *dst,
			   int kind, struct img_convert_opts *co)
{
	const char *prealloc;
	struct img_opts o;
	int fd, ret;

	/* raw's only creation option: how to allocate a new file. */
	parse_create_options(&o);
	prealloc = img_opt_str(&o, "preallocation");
	if (!strcmp(prealloc, "full"))
		co->zero_gran = 0;      /* every byte written, as -S 0 */
	co->reserve = !strcmp(prealloc, "falloc");
	if (!strcmp(dst, "-")) {
		if (isatty(STDOUT_FILENO))
			cli_die(EXIT_USAGE, "refusing to write binary data to a terminal");
		fd = STDOUT_FILENO;
	} else if (no_create || kind == IMG_OUT_SPECIAL) {
		/* written where it stands: a device, FIFO or socket is never
		 * replaced by a file (a symbolic link to one is followed) */
		fd = open(dst, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			cli_die(EXIT_FAIL, "cannot open '%s': %s", dst,
				strerror(errno));
		lock_raw_target(dst, fd);
		if (isatty(fd))
			cli_die(EXIT_USAGE, "refusing to write binary data to a terminal ('%s')",
				dst);
		/* only a block device is written in place (-n): anything
		 * else special gets every byte, in order */
		if (kind == IMG_OUT_SPECIAL && !(no_create && is_block_device(fd)))
			co->in_place = 0;
	} else {
		start_output(dst);
		fd = out.fd;
	}
	img_opts_free(&o);
	if (src->stream) {
		stream_to_raw(src, fd, out.fd >= 0 && co->zero_gran, dst, co);
	} else {
		ret = img_export_raw(src->img, fd, co);
		cli_progress_end();
		if (no_create)
			check_interrupted(ret, dst);
		if (ret < 0)
			cli_die(EXIT_FAIL, "cannot convert '%s' to '%s': %s",
				src->name, strcmp(dst, "-") ? dst : "standard output",
				img_errmsg(src->img));
	}
	if (out.fd >= 0)
		commit_output(dst);
	else if (fd != STDOUT_FILENO &&
		 ((durable && fsync(fd) < 0 && errno != EINVAL) || close(fd) < 0))
		cli_die(EXIT_FAIL, "cannot write '%s': %s", dst, strerror(errno));
}

/*
 * Writing into a file the conversion reads would destroy it: DST (or what
 * a symbolic link DST names, or standard output for "-") must be none of
 * the files the source depends on, nor (with -B) any file of the new
 * backing chain. Asked before any output is created or written.
 */
static void refuse_protected(struct img *src, const struct stat *from,
			     struct img *tb, const char *dst)
{
	struct stat st;
	const char *role;
	int depth;

	if (!strcmp(dst, "-") ? fstat(STDOUT_FILENO, &st) < 0 : stat(dst, &st) < 0)
		return;         /* nothing there yet, or opening says why */
	if (from && S_ISREG(from->st_mode) && from->st_dev == st.st_dev &&
	    from->st_ino == st.st_ino)
		cli_die(EXIT_FAIL, "'%s' is the source: refusing to overwrite it",
			dst);
	if (src && img_depends_on(src, st.st_dev, st.st_ino, &role) >= 0) {
		if (!strcmp(role, "the image itself"))
			cli_die(EXIT_FAIL, "'%s' is the source: refusing to overwrite it",
				dst);
		cli_die(EXIT_FAIL, "'%s' is %s of the source '%s': refusing to overwrite it",
			dst, role, img_path(src));
	}
	depth = tb ? img_depends_on(tb, st.st_dev, st.st_ino, &role) : -1;
	if (depth == 0 && !strcmp(role, "the image itself"))
		cli_die(EXIT_FAIL, "'%s' is the new backing file (-B): refusing to overwrite it",
			dst);
	if (depth >= 0)
		cli_die(EXIT_FAIL, "'%s' is %s of the new backing file '%s' (-B): refusing to overwrite it",
			dst, role, img_path(tb));
}

/* What DST is, and whether out_format can be written there. */
static int output_kind(const char *dst)
{
	int kind;

	if (!strcmp(dst, "-")) {
		if (no_create)
			cli_die(EXIT_USAGE, "-n writes into an existing image: not to standard output");
		return IMG_OUT_SPECIAL;
	}
	kind = img_outfile_kind(dst);
	if (kind < 0)
		cli_die(EXIT_FAIL, "cannot write '%s': %s", dst, strerror(-kind));
	return kind;
}

/* --copy-mode's names, in the order of enum img_copy_mode. */
static const char *const copy_modes[] = {
	"auto", "copy", "reflink", "read-write",
};

static enum img_copy_mode parse_copy_mode(const char *name)
{
	for (size_t i = 0; i < sizeof(copy_modes) / sizeof(*copy_modes); i++)
		if (!strcmp(name, copy_modes[i]))
			return (enum img_copy_mode)i;
	cli_die(EXIT_USAGE, "invalid copy mode '%s': auto, copy, reflink or read-write",
		name);
}

/* Batch: whether dst is already what converting src gives: it opens as
 * the output format (outputs appear only when whole, so this tells a
 * finished one from anything else of that name), with the size the
 * conversion would give it; for a compressed source or an archive, whose
 * size is known only by reading it all, instead no older than it. */
static int already_converted(const char *src_path, const char *dst)
{
	struct img_open_opts oo = { .format = out_format, .no_backing = 1,
				    .force_share = 1 };
	struct stat s, d;
	struct img *src, *made;
	uint64_t want;
	int same;

	if (stat(dst, &d) < 0 || !(made = img_new()))
		return 0;
	same = img_open(made, dst, &oo) == 0;
	if (same && cli_is_packed(src_path)) {
		same = stat(src_path, &s) == 0 &&
		       (d.st_mtim.tv_sec > s.st_mtim.tv_sec ||
			(d.st_mtim.tv_sec == s.st_mtim.tv_sec &&
			 d.st_mtim.tv_nsec >= s.st_mtim.tv_nsec));
	} else if (same) {
		src = cli_open(src_path, CLI_METADATA_ONLY | CLI_NO_BACKING);
		want = img_size(src);
		if (strcmp(out_format, "raw"))
			want = (want + 511) / 512 * 512;
		same = img_size(made) == want;
		img_free(src);
	}
	img_free(made);
	return same;
}

static int convert_one(const char *src_path, const char *dst,
		       struct img_convert_opts *co);

/* Batch: one conversion in a child process (batch.c). */
static int batch_job(const char *src_path, const char *dst, void *arg)
{
	struct img_convert_opts *co = arg;

	if (!force) {
		if (already_converted(src_path, dst)) {
			cli_warn("'%s' is complete already (--force converts again)",
				 dst);
			return BATCH_SKIPPED;
		}
	}
	return convert_one(src_path, dst, co);
}

/* -t DIR SRC...: every SRC into DIR, -j at a time. */
static int convert_batch(const char **srcs, int n, struct img_convert_opts *co)
{
	struct batch_opts bo = { .jobs = jobs, .done_word = "converted" };
	/* static: still reachable when cli_die exits (no LeakSanitizer report) */
	static char **dsts;

	dsts = calloc((size_t)n, sizeof(*dsts));
	struct stat st;
	int ret;

	if (!dsts)
		cli_die(EXIT_FAIL, "out of memory");
	if (no_create)
		cli_die(EXIT_USAGE, "-t and -n cannot go together");
	if (stat(target_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		cli_die(EXIT_FAIL, "cannot convert into '%s': %s", target_dir,
			errno && stat(target_dir, &st) < 0 ? strerror(errno) :
			"not a directory");
	bo.json = output ? cli_output_json(output) : 0;
	if (jobs < 0)
		cli_die(EXIT_USAGE, "invalid number of jobs %d", jobs);
	if (!bo.jobs) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		bo.jobs = cpus > 0 ? (int)cpus : 1;
	}
	for (int i = 0; i < n; i++) {
		if (!strcmp(srcs[i], "-"))
			cli_die(EXIT_USAGE, "a batch reads files, not standard input");
		dsts[i] = batch_output_name(target_dir, srcs[i], out_format);
		if (!dsts[i])
			cli_die(EXIT_FAIL, "out of memory");
		for (int k = 0; k < i; k++)
			if (!strcmp(dsts[k], dsts[i]))
				cli_die(EXIT_USAGE, "'%s' and '%s' would both become '%s'",
					srcs[k], srcs[i], dsts[i]);
	}
	cli_show_progress = 0;
	ret = batch_run(srcs, dsts, n, batch_job, co, &bo);
	for (int i = 0; i < n; i++)
		free(dsts[i]);
	free(dsts);
	return ret;
}

int main(int argc, const char **argv)
{
	struct img_convert_opts co = { .zero_gran = 4096 };
	const char **args;
	int nargs;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, opts_table,
			 "[OPTION...] SRC DST | -t DIR SRC...", 0, INT_MAX,
			 &nargs);
	for (int i = 0; options && options[i]; i++) {
		if (!strcmp(options[i], "help") &&
		    img_create_options(out_format)) {
			cli_list_options(img_create_options(out_format));
			return EXIT_OK;
		}
	}
	if (target_dir)
		cli_check_args(nargs, 1, INT_MAX);
	else
		cli_check_args(nargs, 2, 2);
	if (!target_dir && (jobs || force || output))
		cli_die(EXIT_USAGE, "-j, --force and --output go with -t DIR");
	check_options();
	if (sparse_size && (cli_parse_size(sparse_size, &co.zero_gran) < 0 ||
			    co.zero_gran % 512 || co.zero_gran > (16u << 20)))
		cli_die(EXIT_USAGE, "invalid sparse size '%s': a multiple of 512 up to 16M, or 0",
			sparse_size);
	co.compress = compress;
	co.copy_mode = parse_copy_mode(copy_mode);
	co.in_place = no_create;
	co.target_is_zero = target_is_zero;
	co.progress = cli_progress;
	cli_progress_setup(progress, quiet);
	if (target_dir)
		return convert_batch(args, nargs, &co);
	return convert_one(args[0], args[1], &co);
}

/* Whether a raw disk arriving on a stream can be converted as it comes
 * (else it is unpacked into a temporary file first, then converted):
 * not into an existing image (-n), and into a format that can make an
 * image before knowing its size. */
static int can_stream(void)
{
	struct img_opts o;
	int yes;

	if (no_create)
		return 0;
	parse_create_options(&o);
	if (!strcmp(out_format, "raw"))
		yes = !strcmp(img_opt_str(&o, "preallocation"), "off");
	else
		yes = img_create_stream_size(out_format, &o) > 0;
	img_opts_free(&o);
	return yes;
}

/* SRC to DST: the whole job of one conversion; dies on failure, returns
 * EXIT_OK or EXIT_SALVAGED. */
static int convert_one(const char *src_path, const char *dst,
		       struct img_convert_opts *co)
{
	struct salvage_tally tally = { 0 };
	struct source src = { .name = src_path };
	struct stat from;
	int kind;

	kind = output_kind(dst);
	src.stream = can_stream() ? cli_open_raw_stream(src_path, &from) :
		     NULL;
	if (!src.stream) {
		src.img = cli_open(src_path, CLI_NO_WRITERS);
		src.name = img_path(src.img);
	}
	if (salvage) {
		tally.src = src.name;
		co->salvaged = report_salvaged;
		co->salvaged_arg = &tally;
	}
	if (backing)
		co->target_backing = open_target_backing(dst);
	refuse_protected(src.img, src.stream ? &from : NULL,
			 co->target_backing, dst);
	if (no_create) {
		/* in place: a signal stops the copy at a safe point */
		cli_signals_defer();
		co->cancel = &cli_cancel;
	}
	if (!strcmp(out_format, "raw"))
		convert_to_raw(&src, dst, kind, co);
	else if (kind == IMG_OUT_SPECIAL && !no_create)
		convert_to_stream(&src, dst, co);
	else if (no_create)
		convert_in_place(&src, dst, co);
	else
		convert_to_new(&src, dst, co);
	img_free(co->target_backing);
	cli_close_stream();
	if (tally.ranges) {
		cli_warn("'%s' converted with %llu unreadable range%s (%llu bytes) written as zeros",
			 tally.src, (unsigned long long)tally.ranges,
			 tally.ranges == 1 ? "" : "s",
			 (unsigned long long)tally.bytes);
		img_free(src.img);
		return EXIT_SALVAGED;
	}
	img_free(src.img);
	return EXIT_OK;
}
