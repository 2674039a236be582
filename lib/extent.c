/* extent.c: what the table-based drivers share to describe the longest runs for block_status. */
#include "endian.h"
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

static uint64_t load(const uint8_t *table, uint64_t i, int little_endian)
{
	return little_endian ? get_le64(table + i * 8) : get_be64(table + i * 8);
}

void img_extend_in_table(struct img *img, const uint8_t *table, uint64_t idx,
			 uint64_t n, int little_endian, uint64_t cs,
			 uint64_t limit, img_entry_fn usable,
			 struct img_extent *e)
{
	struct img_extent next;

	/* Sparse tables are mostly zero entries: skip them a word at a time
	 * without decoding each. */
	if (e->kind == IMG_EXT_UNALLOC)
		while (e->length < limit && idx + 1 < n &&
		       !load(table, idx + 1, little_endian)) {
			idx++;
			e->length += cs;
		}
	while (e->length < limit && idx + 1 < n) {
		uint64_t entry = load(table, ++idx, little_endian);
		if (!usable(img, entry, &next) || !img_extent_joins(e, &next))
			break;
		e->length += cs;
	}
	if (e->length > limit)
		e->length = limit;
}
