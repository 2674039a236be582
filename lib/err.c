/* err.c: error codes, the detail string on a handle, and format properties. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"

const char *img_strerror(int code)
{
	switch (code) {
	case IMG_E_CORRUPT:
		return "image is corrupt";
	case IMG_E_UNSUPPORTED:
		return "unsupported image feature";
	case IMG_E_UNKNOWN_FMT:
		return "unknown image format";
	case IMG_E_KEY:
		return "missing or wrong key";
	case IMG_E_CHAIN:
		return "backing chain too deep or looping";
	case IMG_E_TOOBIG:
		return "image too large";
	case IMG_E_LOCKED:
		return "in use by another process (is a VM running?)";
	case -ENODATA:
		return "offset beyond end of file";
	}
	if (code < 0 && code > IMG_E_BASE)
		return strerror(-code);
	return "unknown error";
}

int img_error(struct img *img, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(img->errmsg, sizeof(img->errmsg), fmt, ap);
	va_end(ap);
	img->err = code;
	return code;
}

const char *img_errmsg(const struct img *img)
{
	if (img->errmsg[0])
		return img->errmsg;
	return img->err ? img_strerror(img->err) : "";
}

int img_errcode(const struct img *img)
{
	return img->err;
}

int img_read_meta(struct img *img, const char *what, void *buf, size_t len,
		  uint64_t off)
{
	int ret = img_io_read_exact(img->io, buf, len, off);

	if (ret < 0)
		return img_error(img, ret == -ENODATA ? IMG_E_CORRUPT : ret,
				 "cannot read %s at 0x%llx: %s", what,
				 (unsigned long long)off, img_strerror(ret));
	return 0;
}

static struct img_prop *prop_add(struct img *img, const char *key,
				 enum img_prop_type type)
{
	struct img_prop *p;

	if (img->nprops >= IMG_MAX_PROPS)
		return NULL;
	p = &img->props[img->nprops++];
	memset(p, 0, sizeof(*p));
	p->key = key;
	p->type = type;
	return p;
}

void img_prop_str(struct img *img, const char *key, const char *val)
{
	struct img_prop *p = prop_add(img, key, IMG_PROP_STR);

	if (p)
		p->str = strdup(val ? val : "");
}

void img_prop_bool(struct img *img, const char *key, int val)
{
	struct img_prop *p = prop_add(img, key, IMG_PROP_BOOL);

	if (p)
		p->num = !!val;
}

void img_prop_int(struct img *img, const char *key, int64_t val)
{
	struct img_prop *p = prop_add(img, key, IMG_PROP_INT);

	if (p)
		p->num = val;
}

int img_cancel_point(struct img *img, const volatile sig_atomic_t *cancel)
{
	if (!cancel || !*cancel)
		return 0;
	return img_error(img, -ECANCELED, "interrupted");
}
