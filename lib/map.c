/* map.c: the guest address space as merged extents, field-compatible with `qemu-img map`. */
#include <errno.h>
#include <string.h>

#include "imgint.h"

static void to_map(struct img *l, int depth, const struct img_extent *e,
		   struct img_map *m)
{
	memset(m, 0, sizeof(*m));
	m->start = e->start;
	m->length = e->length;
	m->depth = depth;
	m->layer = l;
	m->present = e->kind != IMG_EXT_UNALLOC;
	m->data = e->kind == IMG_EXT_DATA;
	/* The bottom of the chain, or past its end, reads as zeros. */
	m->zero = e->kind != IMG_EXT_DATA;
	m->has_offset = !!(e->flags & IMG_EXT_F_OFFSET);
	m->offset = m->has_offset ? e->host : 0;
	m->file = m->has_offset && l->data_io != l->io && l->data_path
			  ? l->data_path : l->path;
	m->compressed = !!(e->flags & IMG_EXT_F_COMPRESSED);
	m->encrypted = !!(e->flags & IMG_EXT_F_ENCRYPTED);
}

/*
 * For data the format stores in a preallocated-looking image, QEMU asks the
 * host file as well and reports its holes as zero (data stays true). Trim
 * the extent to one run of the host file and say which it is.
 */
static int host_holes(struct img *l, struct img_extent *e, struct img_map *m)
{
	uint64_t start, end;
	int ret = img_io_next_data(l->data_io, e->host, &start, &end);

	if (ret == -ENXIO) {
		m->zero = 1;        /* past the end of the file */
		return 0;
	}
	if (ret < 0)
		return img_error(l, ret, "cannot find data at 0x%llx: %s",
				 (unsigned long long)e->host, img_strerror(ret));
	if (start > e->host) {
		m->zero = 1;
		if (start - e->host < e->length)
			e->length = start - e->host;
	} else if (end - e->host < e->length) {
		e->length = end - e->host;
	}
	m->length = e->length;
	return 0;
}

/* Whether next continues cur: every field agrees, offsets contiguous. */
static int mergeable(const struct img_map *cur, const struct img_map *next)
{
	if (cur->depth != next->depth || cur->present != next->present ||
	    cur->zero != next->zero || cur->data != next->data ||
	    cur->has_offset != next->has_offset ||
	    cur->compressed != next->compressed ||
	    cur->encrypted != next->encrypted || cur->layer != next->layer)
		return 0;
	return !cur->has_offset || cur->offset + cur->length == next->offset;
}

int img_map_next(struct img *img, uint64_t off, uint64_t len,
		 struct img_map *m)
{
	uint64_t end;
	int first = 1;

	if (off > img->size || len > img->size - off)
		len = off < img->size ? img->size - off : 0;
	end = off + len;
	while (off < end) {
		struct img_extent e;
		struct img_map next;
		struct img *l;
		int depth;
		int ret = img_chain_status(img, off, end - off, &e, &l, &depth);

		if (ret < 0)
			return ret;
		to_map(l, depth, &e, &next);
		if ((e.flags & IMG_EXT_F_RECURSE) && next.data && next.has_offset) {
			ret = host_holes(l, &e, &next);
			if (ret < 0)
				return ret;
		}
		if (first) {
			*m = next;
			first = 0;
		} else if (mergeable(m, &next)) {
			m->length += next.length;
		} else {
			break;
		}
		off += e.length;
	}
	return first ? 0 : 1;
}
