/* check.c: the format-independent part of checking: dispatch, problem lines, reference counts, giving leaked space back. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int img_check(struct img *img, const struct img_check_opts *o,
	      struct img_check *res)
{
	struct img_check_ctx c = {
		.img = img, .fix = o->fix, .res = res,
		.msg = o->msg, .msg_arg = o->msg_arg,
		.progress = o->progress, .progress_arg = o->progress_arg,
		.cancel = o->cancel,
	};

	memset(res, 0, sizeof(*res));
	res->dirty = img->dirty;
	if (o->fix && !img->writable)
		return img_error(img, -EBADF, "repair needs the image opened writable");
	if (!img_can_check(img))
		return img_error(img, IMG_E_UNSUPPORTED,
				 "the %s format does not support checks",
				 img->drv->name);
	return img->drv->check(&c);
}

int img_can_check(const struct img *img)
{
	return img->drv && img->drv->check;
}

void img_check_say(struct img_check_ctx *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->msg)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->msg(line, c->msg_arg);
}

int img_refs_init(struct img_check_ctx *c, struct img_refs *r,
		  uint64_t file_size, unsigned cluster_bits)
{
	uint64_t cs = 1ULL << cluster_bits;

	r->cluster_bits = cluster_bits;
	r->keep_from = UINT64_MAX;
	r->nclusters = file_size / cs + (file_size % cs != 0);
	r->count = calloc(r->nclusters ? r->nclusters : 1, sizeof(*r->count));
	if (!r->count)
		return img_error(c->img, -ENOMEM,
				 "cannot allocate reference counts for %llu clusters",
				 (unsigned long long)r->nclusters);
	return 0;
}

void img_refs_free(struct img_refs *r)
{
	free(r->count);
	r->count = NULL;
}

uint64_t img_refs_add(struct img_refs *r, uint64_t off, uint64_t len)
{
	uint64_t first, last, past = 0;

	if (!len)
		return 0;
	first = off >> r->cluster_bits;
	last = (off + len - 1) >> r->cluster_bits;
	if (off + len < off)
		last = UINT64_MAX >> r->cluster_bits;
	for (uint64_t cl = first; cl <= last; cl++) {
		if (cl >= r->nclusters) {
			past += last - cl + 1;
			break;
		}
		if (r->count[cl] < IMG_REFS_MAX)
			r->count[cl]++;
	}
	return past;
}

int img_reclaim_leaks(struct img_check_ctx *c, const struct img_refs *r,
		      uint64_t first_cluster)
{
	struct img *img = c->img;
	uint64_t cs = 1ULL << r->cluster_bits, size, in_file, end, keep, cl;
	int pinned, ret = img_io_size(img->io, &size);

	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	in_file = size / cs + (size % cs != 0);
	end = in_file < r->nclusters ? in_file : r->nclusters;
	/* r may count clusters past the end of the file (metadata there
	 * reads as zeros, if less than a cluster past): cutting the file
	 * shorter would put them further past it. A file grown since r was
	 * counted keeps its new clusters too. */
	pinned = in_file > r->nclusters || r->keep_from < in_file;
	for (cl = end; cl < r->nclusters; cl++)
		pinned |= r->count[cl] != 0;
	if (r->keep_from < end)
		end = r->keep_from > first_cluster ? r->keep_from : first_cluster;
	keep = in_file;
	if (!pinned) {
		keep = end;
		while (keep > first_cluster && !r->count[keep - 1])
			keep--;
	}
	/* Trailing leaks: the file ends after the last used cluster. */
	if (keep < in_file) {
		uint64_t n = in_file - keep;

		ret = img_io_flush(img->io);
		if (ret == 0)
			ret = img_io_truncate(img->io, keep * cs);
		if (ret < 0)
			return img_error(img, ret, "cannot truncate to 0x%llx: %s",
					 (unsigned long long)(keep * cs),
					 img_strerror(ret));
		img_check_say(c, "Truncated %llu leaked clusters at the end of the file (from offset 0x%llx)",
			      (unsigned long long)n,
			      (unsigned long long)(keep * cs));
		c->res->bytes_reclaimed += n * cs;
		end = keep;
	}
	/* Leaks inside: holes, runs at a time. */
	for (cl = first_cluster; cl < end;) {
		uint64_t n = 0;

		if (r->count[cl]) {
			cl++;
			continue;
		}
		while (cl + n < end && !r->count[cl + n])
			n++;
		ret = img_io_punch(img->io, cl * cs, n * cs);
		if (ret < 0 && ret != -EOPNOTSUPP)
			return img_error(img, ret, "cannot punch a hole at 0x%llx: %s",
					 (unsigned long long)(cl * cs),
					 img_strerror(ret));
		if (ret == 0) {
			img_check_say(c, "Punched a hole over %llu leaked clusters at offset 0x%llx",
				      (unsigned long long)n,
				      (unsigned long long)(cl * cs));
			c->res->bytes_reclaimed += n * cs;
		}
		cl += n;
	}
	return 0;
}

int img_check_overlap_first(struct img_check_ctx *c,
			    int (*check)(struct img_check_ctx *c))
{
	struct img_check res;
	struct img_check_ctx ro = {
		.img = c->img, .fix = IMG_CHECK_NO_FIX, .res = &res,
	};
	int ret;

	if (c->fix != IMG_CHECK_FIX_ALL)
		return 0;
	memset(&res, 0, sizeof(res));
	ret = check(&ro);
	if (ret < 0)
		return ret;
	if (ro.overlap) {
		img_check_say(c, "ERROR tables overlap other clusters: corruptions not repaired");
		c->fix = IMG_CHECK_FIX_LEAKS;
	}
	return 0;
}

int img_repair_if_dirty(struct img *img, const char *path,
			const struct img_open_opts *o, int *repaired)
{
	struct img_open_opts co = *o;
	struct img_check_opts fix = { .fix = IMG_CHECK_FIX_ALL };
	struct img_check res;
	struct img *c = img_new();
	int ret;

	*repaired = 0;
	if (!c)
		return img_error(img, -ENOMEM, "out of memory");
	co.check = 1;
	co.writable = 1;
	co.no_backing = 1;
	co.metadata_only = 1;
	/* What cannot be opened so is left to the caller's own open. */
	if (img_open(c, path, &co) < 0 || !c->dirty || !c->drv->check) {
		img_free(c);
		return 0;
	}
	ret = img_check(c, &fix, &res);
	if (ret < 0)
		ret = img_error(img, ret, "it is marked dirty and cannot be repaired: %s",
				img_errmsg(c));
	else if (res.corruptions || res.check_errors || c->dirty)
		ret = img_error(img, IMG_E_CORRUPT,
				"it is marked dirty and a repair leaves errors (see img-check)");
	else
		*repaired = 1;
	img_free(c);
	return ret;
}
