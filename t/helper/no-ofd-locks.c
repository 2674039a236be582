/* no-ofd-locks.c: LD_PRELOAD shim for tests: fcntl's OFD lock commands fail with EINVAL, as on a kernel without them; everything else passes through. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

/* Built without sanitizers: it must load before anything else. */

typedef int (*fcntl_fn)(int, int, ...);

static int forward(const char *name, int fd, int cmd, void *arg)
{
	fcntl_fn next = (fcntl_fn)dlsym(RTLD_NEXT, name);

	if (!next) {
		errno = ENOSYS;
		return -1;
	}
	return next(fd, cmd, arg);
}

static int is_ofd(int cmd)
{
	return cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}

int fcntl(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...);

/* fcntl and fcntl64 alike: the OFD commands fail, others go on to name. */
static int shim(const char *name, int fd, int cmd, va_list ap)
{
	void *arg = va_arg(ap, void *);

	if (is_ofd(cmd)) {
		errno = EINVAL;
		return -1;
	}
	return forward(name, fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int ret;

	va_start(ap, cmd);
	ret = shim("fcntl", fd, cmd, ap);
	va_end(ap);
	return ret;
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	int ret;

	va_start(ap, cmd);
	ret = shim("fcntl64", fd, cmd, ap);
	va_end(ap);
	return ret;
}
