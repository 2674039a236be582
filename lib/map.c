/* map.c: the guest address space as merged extents, field-compatible with `qemu-img map`. */
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
