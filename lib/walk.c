/* walk.c: the L1/L2 table walker behind check, compact, convert and demote: bounds checks live here once. */
#include <errno.h>
#include <stdlib.h>

#include "walk.h"

const char *img_walk_problem_str(enum img_walk_problem why)
{
	switch (why) {
	case IMG_WALK_MISALIGNED:
		return "offset not aligned";
	case IMG_WALK_BEYOND_EOF:
		return "offset beyond end of file";
	case IMG_WALK_BEFORE_DATA:
		return "offset inside the image header";
	}
	return "bad offset";
}

static int table_problem(const struct img *img,
			 const struct img_walk_layout *lay, uint64_t off,
			 enum img_walk_problem *why)
{
	uint64_t end;

	if (lay->table_align && off % lay->table_align) {
		*why = IMG_WALK_MISALIGNED;
		return 1;
	}
	if (off < lay->min_offset) {
		*why = IMG_WALK_BEFORE_DATA;
		return 1;
	}
	if (img_add_overflows(off, lay->l2_bytes, &end) ||
	    end > img->file_size) {
		*why = IMG_WALK_BEYOND_EOF;
		return 1;
	}
	return 0;
}

/* Entries of one piece of an L2 table: decode, call back, write back. */
static int walk_piece(struct img *img, const struct img_walk_layout *lay,
		      const struct img_walk_cb *cb, void *arg, uint8_t *buf,
		      size_t len, struct img_walk_entry *e, uint64_t piece_off)
{
	size_t n = len / lay->entry_bytes;
	int changed = 0, ret = 0;

	for (size_t k = 0; k < n; k++, e->l2_index++) {
		uint64_t guest, idx;

		if (img_mul_overflows(e->l1_index, lay->l2_bytes / lay->entry_bytes,
				      &idx) ||
		    img_add_overflows(idx, e->l2_index, &idx) ||
		    img_mul_overflows(idx, lay->cluster_size, &guest))
			guest = UINT64_MAX;
		e->beyond = guest >= img->size;
		if (e->beyond && !lay->past_size)
			break;
		e->guest = guest;
		e->raw = buf + k * lay->entry_bytes;
		e->entry_offset = piece_off + k * lay->entry_bytes;
		e->ext = (struct img_extent){ .start = guest,
					      .length = lay->cluster_size };
		e->problem = NULL;
		lay->decode(img, e->raw, e);
		ret = cb->entry ? cb->entry(img, e, arg) : 0;
		if (ret < 0)
			break;
		changed |= ret & IMG_WALK_CHANGED;
		if (ret & IMG_WALK_ABORT)
			break;
	}
	if (changed) {
		int w = img_io_pwrite(img->io, buf, len, piece_off);
		if (w < 0)
			return img_error(img, w,
					 "cannot write L2 table at 0x%llx: %s",
					 (unsigned long long)piece_off,
					 img_strerror(w));
	}
	return ret;
}

static int walk_table(struct img *img, const struct img_walk_layout *lay,
		      const struct img_walk_cb *cb, void *arg, uint8_t *buf,
		      uint64_t l1_index, uint64_t l2_off)
{
	struct img_walk_entry e = { .l1_index = l1_index, .l2_offset = l2_off };

	for (uint64_t done = 0; done < lay->l2_bytes;) {
		size_t len = lay->l2_bytes - done < IMG_WALK_CHUNK
				     ? (size_t)(lay->l2_bytes - done)
				     : IMG_WALK_CHUNK;
		int ret = img_read_meta(img, "L2 table", buf, len, l2_off + done);

		if (ret < 0)
			return ret;
		ret = walk_piece(img, lay, cb, arg, buf, len, &e, l2_off + done);
		if (ret < 0 || (ret & IMG_WALK_ABORT))
			return ret;
		done += len;
	}
	return 0;
}

int img_walk(struct img *img, const struct img_walk_layout *lay,
	     const struct img_walk_cb *cb, void *arg)
{
	size_t bufsize = lay->l2_bytes < IMG_WALK_CHUNK ? (size_t)lay->l2_bytes
							 : IMG_WALK_CHUNK;
	uint8_t *buf;
	int ret = 0;

	if (!lay->entry_bytes || lay->l2_bytes % lay->entry_bytes ||
	    !lay->cluster_size)
		return img_error(img, -EINVAL, "bad table layout");
	buf = malloc(bufsize);
	if (!buf)
		return img_error(img, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < lay->l1_entries; i++) {
		uint64_t l2_off = lay->l1[i] & lay->l1_offset_mask;
		enum img_walk_problem why;

		if (!l2_off)
			continue;
		if (table_problem(img, lay, l2_off, &why)) {
			if (!cb->bad_table) {
				ret = img_error(img, IMG_E_CORRUPT,
						"cannot read L2 table at 0x%llx (L1 entry %llu): %s",
						(unsigned long long)l2_off,
						(unsigned long long)i,
						img_walk_problem_str(why));
				break;
			}
			ret = cb->bad_table(img, i, lay->l1[i], why, arg);
			if (ret < 0 || (ret & IMG_WALK_ABORT))
				break;
			continue;
		}
		ret = cb->table ? cb->table(img, i, l2_off, arg) : 0;
		if (ret < 0 || (ret & IMG_WALK_ABORT))
			break;
		if (ret & IMG_WALK_SKIP)
			continue;
		ret = walk_table(img, lay, cb, arg, buf, i, l2_off);
		if (ret < 0 || (ret & IMG_WALK_ABORT))
			break;
	}
	free(buf);
	return ret < 0 ? ret : 0;
}
