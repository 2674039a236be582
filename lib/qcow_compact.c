/* qcow_compact.c: the qcow (v1) driver's compact: the shared table compaction (table_compact.c); no zero entry, no need-check bit. */
#include "qcow.h"
#include "table_compact.h"

/*
 * qcow has no zero entry: over a backing file a zero cluster stays stored
 * unless the backing chain reads zeros there too. Nor a dirty bit: crash
 * safety comes from the order of writes alone (an entry change is durable
 * before its cluster is reused; a crash leaves leaks, which a rerun takes
 * back).
 */
static const struct img_table_compact_fmt qcow_fmt = {
	.check = img_qcow_check,
	.set_l1 = img_qcow_set_l1,
	.little_endian = 0,
};

int img_qcow_compact(struct img *img, const struct img_compact_opts *o,
		     struct img_compact_result *r)
{
	return img_table_compact(img, &qcow_fmt, o, r);
}
