/* outfile.c: atomic creation of output files (temporary name, fsync, rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int img_outfile_kind(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		/* a dangling link names a file still to be made */
		if (errno == ENOENT)
			return IMG_OUT_NEW;
		return -errno;
	}
	if (S_ISREG(st.st_mode))
		return IMG_OUT_REGULAR;
	if (S_ISDIR(st.st_mode))
		return IMG_OUT_DIR;
	return IMG_OUT_SPECIAL;
}

#define MAX_LINKS 40

char *img_outfile_resolve(const char *path)
{
	char *p = strdup(path);

	for (int i = 0; p && i < MAX_LINKS; i++) {
		char target[4096], *dir, *next;
		ssize_t n = readlink(p, target, sizeof(target) - 1);

		if (n < 0)
			return p;       /* not a link (or not there): this one */
		target[n] = '\0';
		if (target[0] == '/' || !strchr(p, '/')) {
			next = strdup(target);
		} else {
			dir = dir_of(p);
			if (!dir || asprintf(&next, "%s/%s", dir, target) < 0)
				next = NULL;
			free(dir);
		}
		free(p);
		p = next;
	}
	if (p) {
		free(p);
		p = strdup(path);
	}
	return p;
}

int img_outfile_create(struct img_outfile *o, const char *path)
{
	const char *base;
	char *dir;
	mode_t mask;
	int ret;

	o->fd = -1;
	o->tmp = NULL;
	o->path = img_outfile_resolve(path);
	if (!o->path)
		return -ENOMEM;
	base = strrchr(o->path, '/');
	base = base ? base + 1 : o->path;
	dir = dir_of(o->path);
	if (!dir || !*base) {
		free(dir);
		return !*base ? -EISDIR : -ENOMEM;
	}
	ret = asprintf(&o->tmp, "%s/.%s.XXXXXX", dir, base);
	free(dir);
	if (ret < 0) {
		o->tmp = NULL;
		return -ENOMEM;
	}
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		ret = -errno;
		free(o->tmp);
		o->tmp = NULL;
		return ret;
	}
	/* mkstemp makes 0600; give the file the usual mode. */
	mask = umask(0);
	umask(mask);
	fchmod(o->fd, 0644 & ~mask);
	return 0;
}

int img_outfile_commit(struct img_outfile *o, int durable)
{
	char *dir;
	int dfd, ret = 0;

	if (durable && fsync(o->fd) < 0 && errno != EINVAL)
		return -errno;
	if (close(o->fd) < 0) {
		o->fd = -1;
		return -errno;
	}
	o->fd = -1;
	if (rename(o->tmp, o->path) < 0)
		return -errno;
	free(o->tmp);
	o->tmp = NULL;
	if (!durable)
		return 0;
	dir = dir_of(o->path);
	if (dir) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) < 0)
				ret = -errno;
			close(dfd);
		}
		free(dir);
	}
	return ret;
}

void img_outfile_abort(struct img_outfile *o)
{
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	if (o->tmp) {
		unlink(o->tmp);
		/* the name is freed at exit; a handler must not call free() */
	}
}

int img_outfile_anon(const char *dir)
{
	char *path;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	if (asprintf(&path, "%s/imgtools-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd >= 0 ? fd : -errno;
}
