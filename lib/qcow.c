/* qcow.c: qcow (version 1) reader: header validation, L1/L2 translation and block status. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow.h"
#include "tcache.h"
#include "walk.h"

#define L2_CACHE_SLOTS 16

void img_qcow_decode_header(const uint8_t *buf, struct img_qcow_header *h)
{
	h->magic = get_be32(buf);
	h->version = get_be32(buf + 4);
	h->backing_file_offset = get_be64(buf + 8);
	h->backing_file_size = get_be32(buf + 16);
	h->mtime = get_be32(buf + 20);
	h->size = get_be64(buf + 24);
	h->cluster_bits = buf[32];
	h->l2_bits = buf[33];
	h->crypt_method = get_be32(buf + 36);
	h->l1_table_offset = get_be64(buf + 40);
}

static int qcow_probe(const uint8_t *buf, size_t len)
{
	if (len < 8 || get_be32(buf) != IMG_QCOW_MAGIC ||
	    get_be32(buf + 4) != IMG_QCOW_VERSION)
		return 0;
	return 100;
}

/* The header checks QEMU makes at open, in its order. */
static int check_header(struct img *img, const struct img_qcow_header *h)
{
	if (h->magic != IMG_QCOW_MAGIC)
		return img_error(img, IMG_E_UNKNOWN_FMT,
				 "bad magic 0x%08x: not a qcow image", h->magic);
	if (h->version != IMG_QCOW_VERSION)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "qcow version %u is not qcow (v1); use the qcow2 format",
				 h->version);
	if (h->size <= 1)
		return img_error(img, IMG_E_CORRUPT,
				 "image size %llu too small (must be at least 2 bytes)",
				 (unsigned long long)h->size);
	if (h->cluster_bits < IMG_QCOW_MIN_CLUSTER_BITS ||
	    h->cluster_bits > IMG_QCOW_MAX_CLUSTER_BITS)
		return img_error(img, IMG_E_CORRUPT,
				 "cluster size 2^%u out of range 2^%u..2^%u",
				 h->cluster_bits, IMG_QCOW_MIN_CLUSTER_BITS,
				 IMG_QCOW_MAX_CLUSTER_BITS);
	if (h->l2_bits < IMG_QCOW_MIN_L2_BITS ||
	    h->l2_bits > IMG_QCOW_MAX_L2_BITS)
		return img_error(img, IMG_E_CORRUPT,
				 "L2 table size 2^%u bytes out of range 2^%u..2^%u",
				 h->l2_bits + 3, IMG_QCOW_MIN_L2_BITS + 3,
				 IMG_QCOW_MAX_L2_BITS + 3);
	if (h->crypt_method != IMG_QCOW_CRYPT_NONE &&
	    h->crypt_method != IMG_QCOW_CRYPT_AES)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unknown encryption method %u", h->crypt_method);
	return 0;
}

/* L1 entries: ceil(size / bytes one L2 table covers), bounded like QEMU. */
static int l1_entries(struct img *img, const struct img_qcow_header *h,
		      uint64_t *out)
{
	unsigned shift = h->cluster_bits + h->l2_bits;
	uint64_t span = 1ULL << shift;

	if (h->size > UINT64_MAX - span)
		return img_error(img, IMG_E_TOOBIG, "image size %llu too large",
				 (unsigned long long)h->size);
	*out = (h->size + span - 1) >> shift;
	if (*out > INT_MAX / sizeof(uint64_t))
		return img_error(img, IMG_E_TOOBIG,
				 "L1 table of %llu entries too large (max %zu)",
				 (unsigned long long)*out,
				 INT_MAX / sizeof(uint64_t));
	return 0;
}

/* Is [off, off+len) inside the image file? */
static int in_file(const struct img *img, uint64_t off, uint64_t len)
{
	uint64_t end;

	return !img_add_overflows(off, len, &end) && end <= img->file_size;
}

static int read_l1(struct img *img, struct qcow *q)
{
	uint64_t off = q->h.l1_table_offset;
	size_t bytes = q->l1_size * sizeof(uint64_t);
	uint8_t *raw;
	int ret;

	/* A check reports an L1 table running past end of file itself, and
	 * reads what the file holds of it. */
	if (!in_file(img, off, bytes) &&
	    (!img->checking || !img_table_past_eof_ok(off, bytes, img->file_size)))
		return img_error(img, IMG_E_CORRUPT,
				 "L1 table at 0x%llx (%zu bytes) runs past end of file",
				 (unsigned long long)off, bytes);
	q->l1 = malloc(bytes ? bytes : 1);
	if (!q->l1)
		return img_error(img, -ENOMEM, "cannot allocate L1 table");
	/* Decode in place: each 8-byte slot becomes its host-order value. */
	raw = (uint8_t *)q->l1;
	if (img->checking) {
		ret = img_io_read_zfill(img->io, raw, bytes, off);
		if (ret < 0)
			return img_error(img, ret, "cannot read L1 table at 0x%llx: %s",
					 (unsigned long long)off,
					 img_strerror(ret));
	} else {
		ret = img_read_meta(img, "L1 table", raw, bytes, off);
		if (ret < 0)
			return ret;
	}
	for (uint64_t i = 0; i < q->l1_size; i++)
		q->l1[i] = get_be64(raw + i * 8);
	return 0;
}

static int read_backing_name(struct img *img, const struct img_qcow_header *h)
{
	uint64_t off = h->backing_file_offset;
	uint32_t len = h->backing_file_size;
	char *name;
	int ret;

	/* An empty name, wherever it is, means no backing file (as QEMU
	 * reads it: 0 bytes). */
	if (!off || !len)
		return 0;
	if (len > IMG_QCOW_MAX_BACKING_LEN)
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name of %u bytes too long (max %u)",
				 len, IMG_QCOW_MAX_BACKING_LEN);
	/* A name running past the end of the file QEMU reads as zeros there
	 * (wholly past it: no backing file), and so do readers and a check,
	 * which reports it. A writer refuses: clusters it appends would
	 * write a name. */
	if (!in_file(img, off, len) && img->writable && !img->checking)
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name at 0x%llx (%u bytes) runs past end of file",
				 (unsigned long long)off, len);
	name = calloc(1, len + 1);
	if (!name)
		return img_error(img, -ENOMEM, "cannot allocate backing file name");
	ret = img_io_read_zfill(img->io, name, len, off);
	if (ret < 0)
		ret = img_error(img, ret, "cannot read backing file name at 0x%llx: %s",
				(unsigned long long)off, img_strerror(ret));
	if (ret < 0 || !name[0]) {	/* an empty name means no backing */
		free(name);
		return ret;
	}
	img->backing_name = name;
	return 0;
}

static void qcow_close(struct img *img)
{
	struct qcow *q = img->priv;

	if (!q)
		return;
	img_tcache_free(q->l2_cache);
	free(q->l1);
	free(q);
	img->priv = NULL;
}

static int qcow_open(struct img *img)
{
	uint8_t buf[IMG_QCOW_HEADER_LEN];
	struct qcow *q;
	int ret;

	ret = img_read_meta(img, "header", buf, sizeof(buf), 0);
	if (ret < 0)
		return ret;
	q = calloc(1, sizeof(*q));
	if (!q)
		return img_error(img, -ENOMEM, "cannot allocate qcow state");
	img->priv = q;
	img_qcow_decode_header(buf, &q->h);
	ret = check_header(img, &q->h);
	if (ret < 0)
		goto fail;
	ret = l1_entries(img, &q->h, &q->l1_size);
	if (ret < 0)
		goto fail;
	ret = read_l1(img, q);
	if (ret < 0)
		goto fail;
	q->l2_bytes = (size_t)8 << q->h.l2_bits;
	q->l2_cache = img_tcache_new(q->l2_bytes, L2_CACHE_SLOTS);
	if (!q->l2_cache) {
		ret = img_error(img, -ENOMEM, "cannot allocate L2 cache");
		goto fail;
	}
	ret = read_backing_name(img, &q->h);
	if (ret < 0)
		goto fail;
	/* QEMU counts whole 512-byte sectors of the stored size. */
	img->size = q->h.size & ~511ULL;
	img->cluster_size = 1U << q->h.cluster_bits;
	img->compress = IMG_COMPRESS_ZLIB;
	img->encrypted = q->h.crypt_method == IMG_QCOW_CRYPT_AES;
	return 0;
fail:
	qcow_close(img);
	return ret;
}

/* Why decode() finds an L2 entry unusable. */
enum entry_problem { ENTRY_OK, ENTRY_EMPTY_STREAM, ENTRY_MISALIGNED };

/*
 * The one qcow L2 entry decoder (block status and the table walker): fill
 * kind, flags, host and clen for the stored entry (host order) of a whole
 * cluster; host is the cluster's start, or the stream's byte offset for a
 * compressed one. The fields are filled even when the entry is unusable,
 * so that a checker can see what it says.
 */
static enum entry_problem decode(const struct img *img, uint64_t entry,
				 struct img_extent *e)
{
	const struct qcow *q = img->priv;

	e->flags = 0;
	e->host = 0;
	e->clen = 0;
	if (!entry) {
		e->kind = IMG_EXT_UNALLOC;
		return ENTRY_OK;
	}
	e->kind = IMG_EXT_DATA;
	if (entry & IMG_QCOW_COMPRESSED) {
		/* Compressed clusters are never encrypted. */
		e->flags = IMG_EXT_F_COMPRESSED;
		img_qcow_compressed(entry, q->h.cluster_bits, &e->host,
				    &e->clen);
		return e->clen ? ENTRY_OK : ENTRY_EMPTY_STREAM;
	}
	e->flags = img->encrypted ? IMG_EXT_F_ENCRYPTED : IMG_EXT_F_OFFSET;
	e->host = entry;
	return entry & 511 ? ENTRY_MISALIGNED : ENTRY_OK;
}

/* Fill e for one L2 entry at guest pos (kind, flags, host of pos). */
static int decode_entry(struct img *img, uint64_t entry, uint64_t pos,
			struct img_extent *e)
{
	uint64_t in_cluster = pos & (img->cluster_size - 1);

	switch (decode(img, entry, e)) {
	case ENTRY_OK:
		break;
	case ENTRY_EMPTY_STREAM:
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: compressed cluster of 0 bytes",
				 (unsigned long long)(pos - in_cluster));
	case ENTRY_MISALIGNED:
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: data offset 0x%llx not 512-byte aligned",
				 (unsigned long long)(pos - in_cluster),
				 (unsigned long long)entry);
	}
	if (e->kind == IMG_EXT_DATA && !(e->flags & IMG_EXT_F_COMPRESSED))
		e->host += in_cluster;
	return 0;
}

static int usable(struct img *img, uint64_t entry, struct img_extent *e)
{
	return decode(img, entry, e) == ENTRY_OK;
}

/* The longest run at pos that stays inside one L2 table (or a stretch of
 * empty L1 slots) and ends by end. */
static int lookup(struct img *img, uint64_t pos, uint64_t end,
		  struct img_extent *e)
{
	struct qcow *q = img->priv;
	unsigned cbits = q->h.cluster_bits;
	unsigned shift = cbits + q->h.l2_bits;
	uint64_t l2_off = q->l1[pos >> shift];
	uint64_t cs = 1ULL << cbits, limit, idx;
	const uint8_t *l2;
	int ret;

	memset(e, 0, sizeof(*e));
	e->start = pos;
	if (!l2_off) {
		e->kind = IMG_EXT_UNALLOC;
		e->length = img_empty_l1_run(q->l1, q->l1_size, shift, pos, end);
		return 0;
	}
	/* QEMU reads an L2 table wholly past the end of the file as an
	 * empty one (but fails on one cut short): so do readers. */
	if (l2_off >= img->file_size && !img->writable) {
		e->kind = IMG_EXT_UNALLOC;
		e->length = img_min_u64(end - pos,
			(1ULL << shift) - (pos & ((1ULL << shift) - 1)));
		return 0;
	}
	if (!in_file(img, l2_off, q->l2_bytes))
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry for guest offset 0x%llx: L2 table at 0x%llx runs past end of file",
				 (unsigned long long)(pos >> shift << shift),
				 (unsigned long long)l2_off);
	ret = img_tcache_get(img, q->l2_cache, "L2 table", l2_off, &l2);
	if (ret < 0)
		return ret;
	limit = img_min_u64(end - pos,
			(1ULL << shift) - (pos & ((1ULL << shift) - 1)));
	idx = (pos >> cbits) & ((1ULL << q->h.l2_bits) - 1);
	ret = decode_entry(img, get_be64(l2 + idx * 8), pos, e);
	if (ret < 0)
		return ret;
	e->length = cs - (pos & (cs - 1));
	img_extend_in_table(img, l2, idx, (uint64_t)1 << q->h.l2_bits, 0, cs,
			    limit, usable, e);
	return 0;
}

static int qcow_block_status(struct img *img, uint64_t off, uint64_t len,
			     struct img_extent *ext)
{
	return img_status_by_lookup(img, lookup, off, len, ext);
}

/* The walker's decode: the stored entry is big-endian. An unusable entry
 * (see decode()) is passed on as it reads, for the caller to judge. */
static void walk_decode(struct img *img, const uint8_t *raw,
			struct img_walk_entry *e)
{
	static const char *const why[] = {
		[ENTRY_OK] = NULL,
		[ENTRY_EMPTY_STREAM] = "compressed cluster of 0 bytes",
		[ENTRY_MISALIGNED] = "data offset not aligned to 512 bytes",
	};

	e->problem = why[decode(img, get_be64(raw), &e->ext)];
}

static int qcow_walk_layout(struct img *img, struct img_walk_layout *lay)
{
	const struct qcow *q = img->priv;

	*lay = (struct img_walk_layout){
		.l1 = q->l1,		/* decoded at open */
		.l1_entries = q->l1_size,
		.l1_offset_mask = ~0ULL,	/* qcow L1 entries have no flags */
		.l2_bytes = q->l2_bytes,
		.entry_bytes = 8,
		.cluster_size = img->cluster_size,
		/*
		 * Nothing: qcow (v1) addresses L2 tables by byte. QEMU
		 * allocates them cluster-aligned at the end of the file but
		 * reads and updates them at any offset, and so does lookup()
		 * above; demanding more would make a checker condemn tables
		 * that every reader uses.
		 */
		.table_align = 1,
		.min_offset = IMG_QCOW_HEADER_LEN,
		.decode = walk_decode,
	};
	return 0;
}

const struct img_driver img_qcow_driver = {
	.name = "qcow",
	.probe = qcow_probe,
	.open = qcow_open,
	.close = qcow_close,
	.block_status = qcow_block_status,
	.walk_layout = qcow_walk_layout,
	.create_opts = img_qcow_create_opts,
	.create = img_qcow_create,
	.writer = &img_qcow_writer,
	.check = img_qcow_check,
	.compact = img_qcow_compact,
};
