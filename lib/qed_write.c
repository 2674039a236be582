/* qed_write.c: filling a QED image front to back: data appended, each L2 table written once its range is passed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "copy.h"
#include "imgint.h"
#include "qed.h"
#include "writer.h"

#define NO_TABLE UINT64_MAX
#define FEATURES_OFFSET 16   /* of the features field in the header */
#define SIZE_OFFSET 48       /* of image_size */

struct qed_writer {
	struct qed *q;
	uint64_t table_bytes;    /* of an L1 or L2 table */
	uint64_t next;           /* first free host byte: the file's end */
	uint64_t l2_index;       /* L1 slot of the table in l2, or NO_TABLE */
	uint8_t *l2;             /* that table, as stored (little-endian) */
	int l2_changed;
	int l1_changed;
	int marked;              /* need-check was set by begin */
	uint8_t *zeros;          /* a zero cluster, for in-place zeroing */
};

static int write_at(struct img *img, const char *what, const void *buf,
		    uint64_t len, uint64_t off)
{
	int ret = img_write_data(img, img->io, buf, len, off);

	if (ret < 0)
		return img_error(img, ret, "cannot write %s at 0x%llx: %s", what,
				 (unsigned long long)off, img_strerror(ret));
	return 0;
}

static int flush(struct img *img)
{
	int ret = img_io_flush(img->io);

	if (ret < 0)
		return img_error(img, ret, "cannot flush: %s", img_strerror(ret));
	return 0;
}

/* Set or clear need-check in the header (flushed around it in place, so
 * that it is on disk before the tables change and after they did). */
static int set_need_check(struct img *img, int on)
{
	struct qed_writer *w = img->wstate;
	uint8_t buf[8];
	uint64_t f = w->q->h.features;
	int ret;

	f = on ? f | IMG_QED_F_NEED_CHECK : f & ~IMG_QED_F_NEED_CHECK;
	put_le64(buf, f);
	ret = flush(img);
	if (ret == 0)
		ret = write_at(img, "header", buf, 8, FEATURES_OFFSET);
	if (ret == 0)
		ret = flush(img);
	if (ret == 0)
		w->q->h.features = f;
	return ret;
}

static int qed_begin(struct img *img)
{
	struct qed *q = img->priv;
	struct qed_writer *w = calloc(1, sizeof(*w));
	uint64_t cs = q->h.cluster_size;

	if (!w)
		return img_error(img, -ENOMEM, "out of memory");
	img->wstate = w;
	w->q = q;
	w->table_bytes = (uint64_t)q->h.table_size * cs;
	w->next = (img->file_size + cs - 1) & ~(cs - 1);
	w->l2_index = NO_TABLE;
	w->l2 = malloc(w->table_bytes);
	w->zeros = calloc(1, cs);
	if (!w->l2 || !w->zeros)
		return img_error(img, -ENOMEM, "cannot allocate an L2 table");
	if (img->write_in_place && !(q->h.features & IMG_QED_F_NEED_CHECK)) {
		w->marked = 1;
		return set_need_check(img, 1);
	}
	return 0;
}

/* Write the current L2 table back; a new one goes to the file's end. */
static int put_table(struct img *img)
{
	struct qed_writer *w = img->wstate;
	uint64_t *slot;
	int ret;

	if (w->l2_index == NO_TABLE || !w->l2_changed)
		return 0;
	slot = &w->q->l1[w->l2_index];
	if (!*slot) {
		*slot = w->next;
		w->next += w->table_bytes;
		w->l1_changed = 1;
	}
	ret = write_at(img, "L2 table", w->l2, w->table_bytes, *slot);
	if (ret == 0)
		w->l2_changed = 0;
	return ret;
}

/* Make the L2 table covering guest offset off the current one. */
static int get_table(struct img *img, uint64_t off)
{
	struct qed_writer *w = img->wstate;
	uint64_t idx = off >> w->q->l1_shift, host;
	int ret;

	if (idx == w->l2_index)
		return 0;
	ret = put_table(img);
	if (ret < 0)
		return ret;
	if (idx >= w->q->l1_entries)
		return img_error(img, -EINVAL,
				 "guest offset 0x%llx past the end of the disk",
				 (unsigned long long)off);
	host = w->q->l1[idx];
	w->l2_index = NO_TABLE;
	if (host) {
		ret = img_read_meta(img, "L2 table", w->l2, w->table_bytes, host);
		if (ret < 0)
			return ret;
	} else {
		memset(w->l2, 0, w->table_bytes);
	}
	w->l2_index = idx;
	return 0;
}

/* The entry of the cluster at guest off, in the current table. */
static uint8_t *entry_of(struct qed_writer *w, uint64_t off)
{
	uint64_t i = (off >> w->q->cluster_bits) & (w->q->nelems - 1);

	return w->l2 + 8 * i;
}

/* Clusters from off to the end of its L2 table, at most len bytes. */
static uint64_t table_span(const struct qed_writer *w, uint64_t off,
			   uint64_t len)
{
	uint64_t span = 1ULL << w->q->l1_shift;

	return img_min_u64(len, span - (off & (span - 1)));
}

/*
 * Store clusters [off, off+len), all inside the current table. Clusters
 * already allocated are overwritten where they are; runs of new ones are
 * appended with one write each.
 */
static int data_in_table(struct img *img, uint64_t off, const uint8_t *buf,
			 uint64_t len)
{
	struct qed_writer *w = img->wstate;
	uint64_t cs = w->q->h.cluster_size;

	while (len) {
		uint64_t host = get_le64(entry_of(w, off)), n = cs;
		int ret;

		if (host > IMG_QED_L2_ZERO) {
			ret = write_at(img, "data cluster", buf, cs, host);
		} else {
			while (n < len && get_le64(entry_of(w, off + n)) <=
					  IMG_QED_L2_ZERO)
				n += cs;
			for (uint64_t i = 0; i < n; i += cs)
				put_le64(entry_of(w, off + i), w->next + i);
			w->l2_changed = 1;
			ret = write_at(img, "data clusters", buf, n, w->next);
			w->next += n;
		}
		if (ret < 0)
			return ret;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static int qed_data(struct img *img, uint64_t off, const uint8_t *buf,
		    uint64_t len)
{
	struct qed_writer *w = img->wstate;

	while (len) {
		uint64_t n = table_span(w, off, len);
		int ret = get_table(img, off);

		if (ret == 0)
			ret = data_in_table(img, off, buf, n);
		if (ret < 0)
			return ret;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Zero entries read as zeros whatever the backing file holds. A cluster
 * allocated already keeps its place (no leak for qemu-img check) and is
 * zeroed there. */
static int qed_zero(struct img *img, uint64_t off, uint64_t len)
{
	struct qed_writer *w = img->wstate;
	uint64_t cs = w->q->h.cluster_size;

	for (; len; off += cs, len -= cs) {
		uint8_t *e;
		uint64_t host;
		int ret = get_table(img, off);

		if (ret < 0)
			return ret;
		e = entry_of(w, off);
		host = get_le64(e);
		if (host > IMG_QED_L2_ZERO) {
			if (img_io_punch(img->io, host, cs) == 0)
				continue;
			ret = write_at(img, "data cluster", w->zeros, cs, host);
			if (ret < 0)
				return ret;
		} else if (host != IMG_QED_L2_ZERO) {
			put_le64(e, IMG_QED_L2_ZERO);
			w->l2_changed = 1;
		}
	}
	return 0;
}

static int put_l1(struct img *img)
{
	struct qed_writer *w = img->wstate;
	uint64_t n = w->q->l1_entries;
	uint8_t *raw;
	int ret;

	if (!w->l1_changed)
		return 0;
	raw = malloc(n * 8 + 1);
	if (!raw)
		return img_error(img, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		put_le64(raw + 8 * i, w->q->l1[i]);
	ret = write_at(img, "L1 table", raw, n * 8, w->q->h.l1_table_offset);
	free(raw);
	return ret;
}

/* The L1 table has the same room whatever the size: only the header's
 * size changes (the L1 entries past it are zero, never used). */
static int qed_set_size(struct img *img, uint64_t size)
{
	struct qed *q = img->priv;
	uint8_t buf[8];
	int ret;

	put_le64(buf, size);
	ret = write_at(img, "header", buf, 8, SIZE_OFFSET);
	if (ret < 0)
		return ret;
	q->h.image_size = img->size = size;
	q->l1_entries = size ? ((size - 1) >> q->l1_shift) + 1 : 0;
	return 0;
}

static int qed_finish(struct img *img)
{
	struct qed_writer *w = img->wstate;
	int ret = put_table(img);

	/* In place, tables reach the disk before the L1 names them. */
	if (ret == 0 && img->write_in_place)
		ret = flush(img);
	if (ret == 0)
		ret = put_l1(img);
	if (ret == 0 && w->marked)
		ret = set_need_check(img, 0);
	return ret;
}

static void qed_end(struct img *img)
{
	struct qed_writer *w = img->wstate;

	if (!w)
		return;
	free(w->l2);
	free(w->zeros);
	free(w);
	img->wstate = NULL;
}

const struct img_writer_ops img_qed_writer = {
	.begin = qed_begin,
	.data = qed_data,
	.zero = qed_zero,
	.set_size = qed_set_size,
	.finish = qed_finish,
	.end = qed_end,
};
