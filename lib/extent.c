/* extent.c: what the table-based drivers share to describe the longest runs for block_status. */
#include "imgint.h"

int img_extent_joins(const struct img_extent *a, const struct img_extent *b)
{
	if (a->kind != b->kind || a->flags != b->flags ||
	    (a->flags & IMG_EXT_F_COMPRESSED))
		return 0;
	return a->kind != IMG_EXT_DATA || b->host == a->host + a->length;
}

uint64_t img_empty_l1_run(const uint64_t *l1, uint64_t l1_entries,
			  unsigned shift, uint64_t pos, uint64_t end)
{
	uint64_t i = pos >> shift;
	uint64_t len = (1ULL << shift) - (pos & ((1ULL << shift) - 1));

	while (len < end - pos && i + 1 < l1_entries && !l1[i + 1]) {
		len += 1ULL << shift;
		i++;
	}
	return len < end - pos ? len : end - pos;
}

int img_status_by_lookup(struct img *img, img_lookup_fn lookup, uint64_t off,
			 uint64_t len, struct img_extent *ext)
{
	uint64_t end = off + len;
	struct img_extent next;
	int ret = lookup(img, off, end, ext);

	if (ret < 0)
		return ret;
	/* A failing lookup further on only ends the run; the next call,
	 * starting there, reports it. */
	while (off + ext->length < end) {
		if (lookup(img, off + ext->length, end, &next) < 0 ||
		    !img_extent_joins(ext, &next))
			break;
		ext->length += next.length;
	}
	return 0;
}
