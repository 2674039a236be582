/* salvage.c: reading what can be read of a damaged image (img-convert --salvage): unreadable ranges read as zeros and are reported. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "imgint.h"

/*
 * Errors that mean "these bytes cannot be read" rather than "the work
 * cannot go on": damaged metadata, failed reads, data that does not
 * decompress. Running out of memory, a missing key, an interruption or
 * an unsupported feature stay fatal: zeros would hide them.
 */
static int salvageable(int code)
{
	switch (code) {
	case -ENOMEM:
	case -ECANCELED:
	case -EINTR:
	case IMG_E_KEY:
	case IMG_E_UNSUPPORTED:
	case IMG_E_LOCKED:
	case IMG_E_CHAIN:
		return 0;
	}
	return code < 0;
}

void img_salvage_init(struct img_salvage *s, const struct img_convert_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->fn = o->salvaged;
	s->arg = o->salvaged_arg;
}

void img_salvage_flush(struct img_salvage *s)
{
	if (s->len && s->fn)
		s->fn(s->off, s->len, s->why, s->arg);
	s->len = 0;
}

/* Whether two reasons differ only in their numbers (offsets, indexes):
 * then adjacent ranges merge, keeping the first one's reason. */
static int same_shape(const char *a, const char *b)
{
	for (;;) {
		if (a[0] == '0' && a[1] == 'x' && b[0] == '0' && b[1] == 'x') {
			a += 2, b += 2;
			while (isxdigit((unsigned char)*a))
				a++;
			while (isxdigit((unsigned char)*b))
				b++;
		} else if (isdigit((unsigned char)*a) &&
			   isdigit((unsigned char)*b)) {
			while (isdigit((unsigned char)*a))
				a++;
			while (isdigit((unsigned char)*b))
				b++;
		} else if (*a != *b) {
			return 0;
		} else if (!*a) {
			return 1;
		} else {
			a++, b++;
		}
	}
}

/* Note [off, off+len) as unreadable for the reason img's error gives;
 * a neighbour with the same kind of reason extends the pending report. */
static void note(struct img_salvage *s, struct img *img, uint64_t off,
		 uint64_t len)
{
	const char *why = img_errmsg(img);

	if (s->len && s->off + s->len == off && same_shape(s->why, why)) {
		s->len += len;
		return;
	}
	img_salvage_flush(s);
	s->off = off;
	s->len = len;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

int img_salvage_status(struct img_salvage *s, struct img *img, uint64_t off,
		       uint64_t len, struct img_extent *e, struct img **layer,
		       int *depth)
{
	uint64_t unit = img->cluster_size ? img->cluster_size : 512, n;
	int ret = img_chain_status(img, off, len, e, layer, depth);

	if (ret == 0 || !s->fn || !salvageable(ret))
		return ret;
	/* Narrow down to one cluster of the top image: the failure may lie
	 * further out than off (a run reaching into a damaged table). */
	n = img_min_u64(len, unit - off % unit);
	if (n < len) {
		ret = img_chain_status(img, off, n, e, layer, depth);
		if (ret == 0 || !salvageable(ret))
			return ret;
	}
	note(s, img, off, n);
	memset(e, 0, sizeof(*e));
	e->start = off;
	e->length = n;
	e->kind = IMG_EXT_ZERO;
	*layer = img;
	*depth = 0;
	return 0;
}

int img_salvage_read(struct img_salvage *s, struct img *img, struct img *l,
		     const struct img_extent *e, uint64_t off, uint8_t *buf,
		     size_t n)
{
	int ret = img_read_extent(l, e, off, buf, n);

	if (ret == 0)
		return 0;
	if (l != img)
		img_error(img, ret, "backing file '%s': %s", l->path,
			  img_errmsg(l));
	else
		img->err = ret;
	if (!s->fn || !salvageable(ret))
		return ret;
	/* A compressed cluster stands or falls whole; plain data is tried
	 * again sector by sector, so that one bad sector costs only itself. */
	if (e->flags & IMG_EXT_F_COMPRESSED) {
		memset(buf, 0, n);
		note(s, img, off, n);
		return 0;
	}
	for (size_t done = 0; done < n;) {
		size_t piece = (size_t)img_min_u64(n - done,
					512 - (off + done) % 512);

		ret = img_read_extent(l, e, off + done, buf + done, piece);
		if (ret < 0) {
			if (l != img)
				img_error(img, ret, "backing file '%s': %s",
					  l->path, img_errmsg(l));
			if (!salvageable(ret))
				return ret;
			memset(buf + done, 0, piece);
			note(s, img, off + done, piece);
		}
		done += piece;
	}
	return 0;
}
