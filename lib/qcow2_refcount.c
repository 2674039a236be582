/* qcow2_refcount.c: qcow2 reference counts (all widths) and QEMU's metadata-preallocation guess. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "tcache.h"

/* ---- refcounts ------------------------------------------------------- */

static int load_reftable(struct img *img, struct img_qcow2 *q)
{
	uint64_t n = (uint64_t)q->h.reftable_clusters * q->cluster_size / 8;
	uint8_t *raw = malloc(n * 8);
	int ret;

	q->reftable = malloc(n * sizeof(*q->reftable));
	q->refblock_cache = img_tcache_new(q->cluster_size, 4);
	if (!raw || !q->reftable || !q->refblock_cache) {
		free(raw);
		return img_error(img, -ENOMEM, "cannot allocate refcount table");
	}
	ret = img_read_meta(img, "refcount table", raw, n * 8,
			    q->h.reftable_offset);
	for (uint64_t i = 0; ret == 0 && i < n; i++)
		q->reftable[i] = get_be64(raw + 8 * i);
	free(raw);
	if (ret == 0)
		q->reftable_entries = n;
	return ret;
}

uint64_t img_qcow2_refblock_get(const uint8_t *blk, uint64_t j, unsigned order)
{
	uint64_t bit;

	switch (order) {
	case 3:
		return blk[j];
	case 4:
		return get_be16(blk + 2 * j);
	case 5:
		return get_be32(blk + 4 * j);
	case 6:
		return get_be64(blk + 8 * j);
	default:
		bit = j << order;
		return (blk[bit >> 3] >> (bit & 7)) & ((1u << (1u << order)) - 1);
	}
}

void img_qcow2_refblock_set(uint8_t *blk, uint64_t j, unsigned order,
			    uint64_t v)
{
	uint64_t bit;
	unsigned mask;

	switch (order) {
	case 3:
		blk[j] = (uint8_t)v;
		return;
	case 4:
		put_be16(blk + 2 * j, (uint16_t)v);
		return;
	case 5:
		put_be32(blk + 4 * j, (uint32_t)v);
		return;
	case 6:
		put_be64(blk + 8 * j, v);
		return;
	default:
		bit = j << order;
		mask = ((1u << (1u << order)) - 1) << (bit & 7);
		blk[bit >> 3] = (uint8_t)((blk[bit >> 3] & ~mask) |
					  ((v << (bit & 7)) & mask));
	}
}

int img_qcow2_refcount(struct img *img, uint64_t cluster, uint64_t *refcount)
{
	struct img_qcow2 *q = img->priv;
	unsigned block_bits = q->h.cluster_bits + 3 - q->h.refcount_order;
	uint64_t index = cluster >> block_bits, entry, block;
	const uint8_t *blk;
	int ret;

	*refcount = 0;
	if (!q->reftable && (ret = load_reftable(img, q)) < 0)
		return ret;
	if (index >= q->reftable_entries)
		return 0;
	entry = q->reftable[index];
	block = entry & ~QCOW2_REFTABLE_RESERVED;
	if (entry & QCOW2_REFTABLE_RESERVED)
		return img_error(img, IMG_E_CORRUPT,
				 "refcount table entry %llu (0x%llx): reserved bits set",
				 (unsigned long long)index,
				 (unsigned long long)entry);
	if (!block)
		return 0;
	if (block & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "refcount block at 0x%llx: offset not cluster aligned",
				 (unsigned long long)block);
	ret = img_tcache_get(img, q->refblock_cache, "refcount block", block,
			     &blk);
	if (ret < 0)
		return ret;
	*refcount = img_qcow2_refblock_get(blk,
					   cluster & ((1ull << block_bits) - 1),
					   q->h.refcount_order);
	return 0;
}

/*
 * QEMU guesses "metadata preallocation" when clusters with a refcount are
 * clearly more than the clusters the host file really allocates, and then
 * lets holes in the host file show through its data clusters as zeros in
 * map output. Errors just mean no.
 */
int img_qcow2_detect_prealloc(struct img *img, struct img_qcow2 *q)
{
	uint64_t real = img->actual_size / q->cluster_size;
	uint64_t threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
	uint64_t end = img->file_size / q->cluster_size +
		       (img->file_size % q->cluster_size != 0);
	uint64_t count = 0, rc;
	int saved_err = img->err;
	char saved_msg[sizeof(img->errmsg)];

	if (end < threshold)   /* too few clusters to get there */
		return 0;
	memcpy(saved_msg, img->errmsg, sizeof(saved_msg));
	for (uint64_t i = 0; i < end && count < threshold; i++) {
		if (img_qcow2_refcount(img, i, &rc) < 0) {
			img->err = saved_err;
			memcpy(img->errmsg, saved_msg, sizeof(saved_msg));
			return 0;
		}
		count += rc != 0;
	}
	return count >= threshold;
}
