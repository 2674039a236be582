/* io_fault.c: fault-injecting I/O wrapper: IMG_FAULT_WRITE=N fails the Nth write and every later one. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/*
 * The counter is process-wide so that a test can say "fail the 7th write
 * of this command" without knowing which file it goes to. Writes that fail
 * never reach the file, as if the process had been killed just before.
 * IMG_FAULT_MODE=kill makes the Nth write end the process with SIGKILL
 * instead (a crash: how crash safety is tested), and IMG_FAULT_MODE=term
 * sends it SIGTERM (an interruption it may clean up after).
 * IMG_FAULT_MODE=stop stops the process (SIGSTOP) just before its Nth
 * write and fails nothing: the write happens once it is continued. Tests
 * use it to hold a command mid-way, its files open and locked.
 */
static long fault_writes;

struct fault {
	long fail_at;
	int sig;         /* signal to raise at the Nth write, or 0 */
};

static ssize_t fault_pread(struct img_io *io, void *buf, size_t len,
			   uint64_t off)
{
	return io->inner->ops->pread(io->inner, buf, len, off);
}

static int fault_hit(struct img_io *io)
{
	struct fault *f = io->priv;

	if (++fault_writes < f->fail_at)
		return 0;
	if (f->sig == SIGSTOP) {
		if (fault_writes == f->fail_at)
			kill(getpid(), SIGSTOP);
		return 0;
	}
	if (f->sig)
		kill(getpid(), f->sig);
	return 1;
}

static ssize_t fault_pwrite(struct img_io *io, const void *buf, size_t len,
			    uint64_t off)
{
	if (fault_hit(io))
		return -EIO;
	return io->inner->ops->pwrite(io->inner, buf, len, off);
}

static int fault_size(struct img_io *io, uint64_t *size)
{
	return io->inner->ops->size(io->inner, size);
}

static int fault_truncate(struct img_io *io, uint64_t size)
{
	if (fault_hit(io))
		return -EIO;
	return img_io_truncate(io->inner, size);
}

static int fault_flush(struct img_io *io)
{
	return img_io_flush(io->inner);
}

static int fault_punch(struct img_io *io, uint64_t off, uint64_t len)
{
	if (fault_hit(io))
		return -EIO;
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

struct img_io *img_io_fault_wrap(struct img_io *inner)
{
	const char *n = getenv("IMG_FAULT_WRITE");
	const char *mode = getenv("IMG_FAULT_MODE");
	struct img_io *io;
	struct fault *f;

	if (!n || !*n || (inner->flags & IMG_IO_RDONLY))
		return inner;
	io = calloc(1, sizeof(*io));
	f = calloc(1, sizeof(*f));
	if (!io || !f) {
		free(io);
		free(f);
		return inner;
	}
	f->fail_at = atol(n);
	f->sig = !mode ? 0 : !strcmp(mode, "kill") ? SIGKILL :
		 !strcmp(mode, "term") ? SIGTERM :
		 !strcmp(mode, "stop") ? SIGSTOP : 0;
	io->ops = &fault_ops;
	io->inner = inner;
	io->fd = inner->fd;
	io->flags = inner->flags;
	io->priv = f;
	return io;
}
