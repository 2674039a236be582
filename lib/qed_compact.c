/* qed_compact.c: the QED driver's compact: the shared table compaction (table_compact.c) with QED's zero entry and need-check bit. */
#include "qed.h"
#include "relocate.h"
#include "table_compact.h"

/*
 * Before the first entry changes, the header says the image needs a
 * check: the freed clusters are leaks until the repair at the end gives
 * them back, and QEMU repairs leaks of such an image when it opens it.
 */
static int mark_need_check(struct img_check_ctx *c)
{
	struct qed *q = c->img->priv;
	int ret;

	if (q->h.features & IMG_QED_F_NEED_CHECK)
		return 0;
	ret = img_write_entry(c, 1, "header features", 16,
			      q->h.features | IMG_QED_F_NEED_CHECK);
	if (ret == 0)
		ret = img_check_flush(c);
	if (ret < 0)
		return ret;
	q->h.features |= IMG_QED_F_NEED_CHECK;
	c->img->dirty = 1;
	return 0;
}

static const struct img_table_compact_fmt qed_fmt = {
	.check = img_qed_check,
	.set_l1 = img_qed_set_l1,
	.little_endian = 1,
	.has_zero_entry = 1,
	.zero_entry = IMG_QED_L2_ZERO,
	.before_change = mark_need_check,
};

int img_qed_compact(struct img *img, const struct img_compact_opts *o,
		    struct img_compact_result *r)
{
	return img_table_compact(img, &qed_fmt, o, r);
}
