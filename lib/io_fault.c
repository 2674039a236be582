/* io_fault.c: fault-injecting I/O wrapper: failed, short and interrupted writes and failed reads, as the environment asks. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/*
 * The environment says what goes wrong; every file the process opens is
 * wrapped (the writable ones only, unless reads are to fail too):
 *
 *   IMG_FAULT_WRITE=N  the Nth write fails, and every later one. Writes
 *                      are pwrite, truncate and punch on any writable file.
 *   IMG_FAULT_MODE=M   how it fails:
 *     eio (default)    -EIO; the failed writes never reach the file.
 *     enospc           -ENOSPC, as a full disk.
 *     short            the Nth write stores only the first half of its
 *                      buffer (rounded down to 512 bytes, so nothing for
 *                      a write under 1 KiB), then fails with -ENOSPC;
 *                      every later write fails with -ENOSPC. This is what
 *                      the fd backend sees on a disk that fills up:
 *                      pwrite(2) returns a short count, and its retry of
 *                      the rest fails with ENOSPC.
 *     kill             SIGKILL at the Nth write (a crash: how crash
 *                      safety is tested).
 *     term             SIGTERM just before the Nth write, once; that
 *                      write and the later ones go ahead (an interruption
 *                      the process cleans up after or, in place, stops at
 *                      a safe point for). int, hup, quit, pipe, alrm,
 *                      usr1, usr2 and xcpu do the same with their signals.
 *     stop             SIGSTOP just before the Nth write, failing nothing:
 *                      the write happens once the process is continued.
 *                      Tests use it to hold a command mid-way, its files
 *                      open and locked.
 *   IMG_FAULT_READ=N   the Nth read (pread, of any file, read-only ones
 *                      included: the source of a conversion matters) fails
 *                      with -EIO, and every later one.
 *
 * The counters are process-wide so that a test can say "fail the 7th write
 * of this command" without knowing which file it goes to.
 */
static long fault_writes, fault_reads;

struct fault {
	long write_at;   /* 0: writes never fail */
	long read_at;    /* 0: reads never fail */
	int sig;         /* signal to raise at the Nth write, or 0 */
	int err;         /* what a failed write returns */
	int torn;        /* the Nth write stores half of its buffer */
};

static ssize_t fault_pread(struct img_io *io, void *buf, size_t len,
			   uint64_t off)
{
	struct fault *f = io->priv;

	if (f->read_at && ++fault_reads >= f->read_at)
		return -EIO;
	return io->inner->ops->pread(io->inner, buf, len, off);
}

/* 0: let the write through; 1: it fails (the first time: the Nth). */
static int fault_hit(struct img_io *io, int *first)
{
	struct fault *f = io->priv;

	if (!f->write_at || ++fault_writes < f->write_at)
		return 0;
	*first = fault_writes == f->write_at;
	if (f->sig && f->sig != SIGKILL) {
		/* an interruption, not a failure: the write goes ahead */
		if (*first)
			kill(getpid(), f->sig);
		return 0;
	}
	if (f->sig)
		kill(getpid(), f->sig);
	return 1;
}

static ssize_t fault_pwrite(struct img_io *io, const void *buf, size_t len,
			    uint64_t off)
{
	struct fault *f = io->priv;
	int first;

	if (!fault_hit(io, &first))
		return io->inner->ops->pwrite(io->inner, buf, len, off);
	if (first && f->torn && len / 2 >= 512) {
		ssize_t n = io->inner->ops->pwrite(io->inner, buf,
						   len / 2 / 512 * 512, off);
		if (n < 0)
			return n;
	}
	return -f->err;
}

static int fault_size(struct img_io *io, uint64_t *size)
{
	return io->inner->ops->size(io->inner, size);
}

static int fault_truncate(struct img_io *io, uint64_t size)
{
	struct fault *f = io->priv;
	int first;

	if (fault_hit(io, &first))
		return -f->err;
	return img_io_truncate(io->inner, size);
}

static int fault_flush(struct img_io *io)
{
	return img_io_flush(io->inner);
}

static int fault_punch(struct img_io *io, uint64_t off, uint64_t len)
{
	struct fault *f = io->priv;
	int first;

	if (fault_hit(io, &first))
		return -f->err;
	if (!io->inner->ops->punch)
		return -EOPNOTSUPP;
	return io->inner->ops->punch(io->inner, off, len);
}

static int fault_next_data(struct img_io *io, uint64_t off, uint64_t *start,
			   uint64_t *end)
{
	return img_io_next_data(io->inner, off, start, end);
}

static void fault_close(struct img_io *io)
{
	img_io_close(io->inner);
	free(io->priv);
	free(io);
}

static const struct img_io_ops fault_ops = {
	.pread = fault_pread,
	.pwrite = fault_pwrite,
	.size = fault_size,
	.truncate = fault_truncate,
	.flush = fault_flush,
	.punch = fault_punch,
	.next_data = fault_next_data,
	.close = fault_close,
};

/* The signal an IMG_FAULT_MODE sends, or 0. */
static int mode_signal(const char *mode)
{
	static const struct { const char *name; int sig; } modes[] = {
		{ "kill", SIGKILL }, { "term", SIGTERM }, { "int", SIGINT },
		{ "hup", SIGHUP }, { "quit", SIGQUIT }, { "pipe", SIGPIPE },
		{ "alrm", SIGALRM }, { "usr1", SIGUSR1 }, { "usr2", SIGUSR2 },
		{ "xcpu", SIGXCPU }, { "stop", SIGSTOP },
	};

	for (size_t i = 0; mode && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(mode, modes[i].name))
			return modes[i].sig;
	return 0;
}

static long env_count(const char *name)
{
	const char *s = getenv(name);

	return s && *s ? atol(s) : 0;
}

struct img_io *img_io_fault_wrap(struct img_io *inner)
{
	const char *mode = getenv("IMG_FAULT_MODE");
	long write_at = env_count("IMG_FAULT_WRITE");
	long read_at = env_count("IMG_FAULT_READ");
	struct img_io *io;
	struct fault *f;

	if (inner->flags & IMG_IO_RDONLY)
		write_at = 0;
	if (write_at <= 0 && read_at <= 0)
		return inner;
	io = calloc(1, sizeof(*io));
	f = calloc(1, sizeof(*f));
	if (!io || !f) {
		free(io);
		free(f);
		return inner;
	}
	f->write_at = write_at > 0 ? write_at : 0;
	f->read_at = read_at > 0 ? read_at : 0;
	f->err = EIO;
	f->sig = mode_signal(mode);
	if (mode && !strcmp(mode, "enospc"))
		f->err = ENOSPC;
	else if (mode && !strcmp(mode, "short"))
		f->err = ENOSPC, f->torn = 1;
	io->ops = &fault_ops;
	io->inner = inner;
	io->fd = inner->fd;
	io->flags = inner->flags;
	io->priv = f;
	return io;
}
