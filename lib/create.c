/* create.c: creating new images: options, the backing file, atomic appearance; formats write the bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addcow.h"
#include "imgint.h"
#include "opts.h"
#include "outfile.h"
#include "qcow2.h"
#include "qed.h"

const struct img_opt_desc *img_create_options(const char *fmt)
{
	const struct img_driver *drv = img_driver_by_name(fmt);

	return drv && drv->create ? drv->create_opts : NULL;
}

uint64_t img_create_stream_size(const char *fmt, const struct img_opts *o)
{
	if (!strcmp(fmt, "qed"))
		return img_qed_stream_size(o);
	if (!strcmp(fmt, "qcow2"))
		return img_qcow2_stream_size(o);
	return 0;
}

/* The new image must not replace a file its own backing chain needs
 * (path, or what a symbolic link there names, is the backing file). */
static int refuse_protected(struct img *img, const char *path,
			    const struct img *b)
{
	struct stat st;
	const char *role;
	int depth;

	if (stat(path, &st) < 0)
		return 0;
	depth = img_depends_on(b, st.st_dev, st.st_ino, &role);
	if (depth < 0)
		return 0;
	if (depth == 0 && !strcmp(role, "the image itself"))
		return img_error(img, -EEXIST,
				 "it is the new image's own backing file");
	return img_error(img, -EEXIST, "it is %s of the new image's backing file '%s'",
			 role, img_path(b));
}

/* -u: the backing file is not opened, but may not be replaced either. */
static int refuse_unsafe_self(struct img *img, const char *path,
			      const char *name)
{
	char *where = img_path_beside(path, name);
	struct stat a, b;
	int same;

	if (!where)
		return img_error(img, -ENOMEM, "out of memory");
	same = stat(path, &a) == 0 && stat(where, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	free(where);
	return same ? img_error(img, -EEXIST,
				"it is the new image's own backing file") : 0;
}

/* Open the backing file as the new image will see it, for its size. Its
 * header is all we read: as qemu-img create, we share everything and take
 * nothing, so that an overlay can be made while a VM runs on it. */
static int probe_backing(struct img *img, const char *path,
			 struct img_opts *o, uint64_t *size)
{
	const char *name = img_opt_str(o, "backing_file");
	const char *fmt = img_opt_str(o, "backing_fmt");
	struct img_open_opts bo = { .format = fmt, .metadata_only = 1,
				    .force_share = 1 };
	struct img *b = img_new();
	char *where = img_path_beside(path, name);
	int ret;

	if (!b || !where) {
		free(where);
		img_free(b);
		return img_error(img, -ENOMEM, "out of memory");
	}
	ret = img_open(b, where, &bo);
	if (ret < 0)
		img_error(img, ret, "cannot open backing file '%s': %s", where,
			  img_errmsg(b));
	else if ((ret = refuse_protected(img, path, b)) < 0)
		;
	else if (!fmt)
		/* As qemu-img 7.2: an unstated format is a probing hazard. */
		ret = img_error(img, -EINVAL,
				"backing file '%s' given without its format: add -F %s",
				name, img_format(b));
	else
		*size = img_size(b);
	img_free(b);
	free(where);
	return ret;
}

/* Check the options and settle the size (taken from the backing file
 * when none is given, rounded up to whole sectors). */
static int settle_options(struct img *img, const char *path, const char *fmt,
			  struct img_opts *o, unsigned flags, uint64_t *sizep)
{
	uint64_t size = 0, backing_size = 0;
	char num[32], err[256];
	int ret;

	if (img_opt_str(o, "backing_fmt") && !img_opt_str(o, "backing_file"))
		return img_error(img, -EINVAL,
				 "a backing format without a backing file");
	if (img_opt_str(o, "backing_file") && !(flags & IMG_CREATE_UNSAFE)) {
		ret = probe_backing(img, path, o, &backing_size);
		if (ret < 0)
			return ret;
	} else if (img_opt_str(o, "backing_file")) {
		ret = refuse_unsafe_self(img, path, img_opt_str(o, "backing_file"));
		if (ret < 0)
			return ret;
	}
	if (img_opt_isset(o, "size"))
		size = img_opt_num(o, "size");
	else if (!strcmp(fmt, "add-cow") &&
		 (ret = img_addcow_create_size(img, path, o, &size)) != 0) {
		if (ret < 0)
			return ret;
	} else if (img_opt_str(o, "backing_file") && !(flags & IMG_CREATE_UNSAFE))
		size = backing_size;
	else
		return img_error(img, -EINVAL, "the image size is missing");
	if (!img_opt_isset(o, "size")) {
		/* Say the size taken from the backing file, as qemu-img does. */
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		ret = img_opts_set(o, "size", num, err, sizeof(err));
		if (ret < 0)
			return img_error(img, ret, "%s", err);
	}
	if (size > UINT64_MAX - 511)
		return img_error(img, IMG_E_TOOBIG, "image size too large");
	*sizep = (size + 511) & ~511ULL;   /* whole sectors, as qemu-img */
	return 0;
}

int img_create_fd(struct img *img, const char *path, int fd, const char *fmt,
		  struct img_opts *o, unsigned flags)
{
	const struct img_driver *drv = img_driver_by_name(fmt);
	uint64_t size;
	int dfd, ret;

	if (!drv || !drv->create)
		return img_error(img, IMG_E_UNKNOWN_FMT,
				 "format '%s' cannot be created", fmt);
	ret = settle_options(img, path, fmt, o, flags, &size);
	if (ret < 0)
		return ret;
	img->drv = drv;
	img->path = strdup(path);
	if (!img->path)
		return img_error(img, -ENOMEM, "out of memory");
	img->size = size;
	img->create_flags = flags;
	dfd = dup(fd);
	ret = dfd < 0 ? -errno : img_io_from_fd(&img->io, dfd, 0);
	if (ret < 0) {
		if (dfd >= 0)
			close(dfd);
		img->drv = NULL;
		return img_error(img, ret, "%s", img_strerror(ret));
	}
	img->data_io = img->io;
	ret = drv->create(img, o);
	if (ret < 0 && !img->errmsg[0])
		img_error(img, ret, "%s", img_strerror(ret));
	/* The handle's driver state is the creator's: nothing to close. */
	img->drv = NULL;
	return ret;
}

int img_create(struct img *img, const char *path, const char *fmt,
	       struct img_opts *o, unsigned flags)
{
	struct img_outfile out = { .fd = -1 };
	int ret;

	if (!img_driver_by_name(fmt) || !img_driver_by_name(fmt)->create)
		return img_error(img, IMG_E_UNKNOWN_FMT,
				 "format '%s' cannot be created", fmt);
	ret = img_outfile_create(&out, path);
	if (ret < 0) {
		free(out.path);
		return img_error(img, ret, "%s", img_strerror(ret));
	}
	ret = img_create_fd(img, path, out.fd, fmt, o, flags);
	if (ret == 0) {
		ret = img_outfile_commit(&out, !!(flags & IMG_CREATE_SYNC));
		if (ret < 0)
			img_error(img, ret, "cannot write: %s", img_strerror(ret));
	}
	img_outfile_abort(&out);
	free(out.path);
	free(out.tmp);
	return ret;
}

int img_create_describe(const char *fmt, const struct img_opts *o, char *buf,
			size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "fmt=%s", fmt);

	for (int i = 0; i < o->n && n < len; i++) {
		const struct img_opt_desc *d = &o->desc[i];
		const char *v = img_opt_str(o, d->name);

		if (!o->v[i].set && !(d->announce && v))
			continue;
		if (d->type == IMG_OPT_BOOL)
			n += (size_t)snprintf(buf + n, len - n, " %s=%s", d->name,
					      img_opt_num(o, d->name) ? "on" : "off");
		else if (d->type == IMG_OPT_SIZE || d->type == IMG_OPT_NUM)
			n += (size_t)snprintf(buf + n, len - n, " %s=%llu", d->name,
					      (unsigned long long)img_opt_num(o, d->name));
		else
			n += (size_t)snprintf(buf + n, len - n, " %s=%s", d->name, v);
	}
	return n < len ? 0 : -ENOSPC;
}
