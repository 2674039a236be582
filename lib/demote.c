/* demote.c: the format-independent part of demoting an image in place: dispatch, feature names, room on the file system, file sizes. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "check.h"
#include "imgint.h"

static const char *const feature_names[] = {
	"zero-clusters", "dirty", "lazy-refcounts", "feature-name-table",
	"bitmaps", "refcount-bits", "zstd", "extended-l2",
	"external-data-file", "raw-data-file", "corrupt", "need-check",
	"version-3", "backing-file", NULL,
};

const char *const *img_demote_feature_names(void)
{
	return feature_names;
}

struct img_feature *img_demote_add(struct img_demote_result *r,
				   const char *name,
				   enum img_feature_class cls)
{
	struct img_feature *f;

	if (r->n >= IMG_DEMOTE_MAX_FEATURES)
		return &r->f[IMG_DEMOTE_MAX_FEATURES - 1];
	f = &r->f[r->n++];
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->cls = cls;
	f->removable = 1;
	return f;
}

int img_demote_wanted(const struct img_demote_opts *o, const char *name)
{
	if (!o->only)
		return 1;
	for (const char *const *p = o->only; *p; p++)
		if (!strcmp(*p, name))
			return 1;
	return 0;
}

int img_demote_room(struct img *img, struct img_demote_result *r,
		    uint64_t growth)
{
	struct statvfs sv;
	int fd = img_io_plain_fd(img->io);

	r->free_space = UINT64_MAX;
	if (fd < 0 || fstatvfs(fd, &sv) < 0)
		return 0;       /* not a file we can ask about: let writes tell */
	r->free_space = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (growth > r->free_space)
		return img_error(img, -ENOSPC,
				 "'%s' would grow by %llu bytes, the file system has %llu free",
				 img->path, (unsigned long long)growth,
				 (unsigned long long)r->free_space);
	return 0;
}

static int file_size(struct img *img, uint64_t *size)
{
	int ret = img_io_size(img->io, size);

	if (ret < 0)
		return img_error(img, ret, "cannot get the size of '%s': %s",
				 img->path, img_strerror(ret));
	return 0;
}

int img_demote(struct img *img, const struct img_demote_opts *o,
	       struct img_demote_result *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->dry_run = o->dry_run || o->list;
	ret = file_size(img, &r->file_size_before);
	if (ret < 0)
		return ret;
	r->file_size_after = r->file_size_before;
	if (!img->drv->demote) {
		r->oldest = 1;
		return 0;
	}
	if (!r->dry_run && !img->writable)
		return img_error(img, -EBADF,
				 "demoting needs the image opened writable");
	ret = img->drv->demote(img, o, r);
	if (ret < 0)
		return ret;
	if (r->dry_run) {
		for (int i = 0; i < r->n; i++)
			if (r->f[i].removable && img_demote_wanted(o, r->f[i].name))
				r->file_size_after += r->f[i].growth;
		return 0;
	}
	return file_size(img, &r->file_size_after);
}

int img_demote_check(struct img_check_ctx *c,
		     int (*check)(struct img_check_ctx *c))
{
	int ret;

	memset(c->res, 0, sizeof(*c->res));
	ret = check(c);
	if (ret < 0)
		return ret;
	if (c->res->corruptions || c->res->check_errors)
		return img_error(c->img, IMG_E_CORRUPT,
				 "'%s' has %llu errors (repair it first: img-check -r all)",
				 c->img->path,
				 (unsigned long long)(c->res->corruptions +
						      c->res->check_errors));
	return 0;
}
