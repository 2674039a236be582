/* qed.c: QED reader: header validation, L1/L2 translation and block status. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qed.h"
#include "tcache.h"
#include "walk.h"
#include "writer.h"

/* L2 tables can reach 1 GiB (64 MiB clusters x 16), so they are read and
 * cached in pieces of at most this many bytes. */
#define L2_CHUNK_MAX	(64U << 10)
#define L2_CACHE_SLOTS	16


void img_qed_decode_header(const uint8_t *buf, struct img_qed_header *h)
{
	h->magic = get_le32(buf);
	h->cluster_size = get_le32(buf + 4);
	h->table_size = get_le32(buf + 8);
	h->header_size = get_le32(buf + 12);
	h->features = get_le64(buf + 16);
	h->compat_features = get_le64(buf + 24);
	h->autoclear_features = get_le64(buf + 32);
	h->l1_table_offset = get_le64(buf + 40);
	h->image_size = get_le64(buf + 48);
	h->backing_filename_offset = get_le32(buf + 56);
	h->backing_filename_size = get_le32(buf + 60);
}

uint64_t img_qed_max_image_size(uint32_t cluster_size, uint32_t table_size)
{
	uint64_t nelems = (uint64_t)table_size * cluster_size / 8, l2_span, max;

	if (img_mul_overflows(nelems, cluster_size, &l2_span) ||
	    img_mul_overflows(l2_span, nelems, &max))
		return UINT64_MAX;
	return max;
}

static int qed_probe(const uint8_t *buf, size_t len)
{
	if (len < 4 || get_le32(buf) != IMG_QED_MAGIC)
		return 0;
	return 100;
}

/* Why off cannot hold a cluster, or NULL if it can. */
const char *img_qed_cluster_problem(const struct qed *q, uint64_t off)
{
	if (off & (q->h.cluster_size - 1))
		return "offset not cluster aligned";
	if (off < q->header_bytes)
		return "offset inside the header";
	if (off >= q->file_size)
		return "offset beyond end of file";
	return NULL;
}

/* Why off cannot hold a table, or NULL if it can. Unlike QEMU 7.2 this
 * accepts one-cluster tables. */
const char *img_qed_table_problem(const struct qed *q, uint64_t off)
{
	uint64_t last = off + (uint64_t)(q->h.table_size - 1) * q->h.cluster_size;
	const char *why = img_qed_cluster_problem(q, off);

	if (why)
		return why;
	if (last < off || img_qed_cluster_problem(q, last))
		return "table runs past end of file";
	return NULL;
}

static int check_geometry(struct img *img, const struct img_qed_header *h)
{
	uint64_t max;

	if (!img_is_pow2(h->cluster_size))
		return img_error(img, IMG_E_CORRUPT,
				 "cluster size %u is not a power of 2",
				 h->cluster_size);
	if (h->cluster_size < IMG_QED_MIN_CLUSTER ||
	    h->cluster_size > IMG_QED_MAX_CLUSTER)
		return img_error(img, IMG_E_CORRUPT,
				 "cluster size 2^%u out of range 2^%u..2^%u",
				 img_log2(h->cluster_size),
				 img_log2(IMG_QED_MIN_CLUSTER),
				 img_log2(IMG_QED_MAX_CLUSTER));
	if (!img_is_pow2(h->table_size) || h->table_size > IMG_QED_MAX_TABLE)
		return img_error(img, IMG_E_CORRUPT,
				 "table size %u clusters is not a power of 2 in %u..%u",
				 h->table_size, IMG_QED_MIN_TABLE,
				 IMG_QED_MAX_TABLE);
	if (h->image_size % 512)
		return img_error(img, IMG_E_CORRUPT,
				 "image size %llu is not a multiple of 512",
				 (unsigned long long)h->image_size);
	max = img_qed_max_image_size(h->cluster_size, h->table_size);
	if (h->image_size > max)
		return img_error(img, IMG_E_CORRUPT,
				 "image size %llu exceeds %llu, the most %u-byte clusters and %u-cluster tables can address",
				 (unsigned long long)h->image_size,
				 (unsigned long long)max, h->cluster_size,
				 h->table_size);
	if (h->header_size > UINT32_MAX / h->cluster_size)
		return img_error(img, IMG_E_CORRUPT,
				 "header size of %u clusters too large",
				 h->header_size);
	return 0;
}

static int check_header(struct img *img, struct qed *q)
{
	const struct img_qed_header *h = &q->h;
	const char *why;
	int ret;

	if (h->magic != IMG_QED_MAGIC)
		return img_error(img, IMG_E_UNKNOWN_FMT,
				 "bad magic 0x%08x: not a qed image", h->magic);
	if (h->features & ~IMG_QED_F_KNOWN)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported feature bits 0x%llx",
				 (unsigned long long)(h->features & ~IMG_QED_F_KNOWN));
	ret = check_geometry(img, h);
	if (ret < 0)
		return ret;
	q->header_bytes = (uint64_t)h->header_size * h->cluster_size;
	q->file_size = img->file_size & ~(uint64_t)(h->cluster_size - 1);
	why = img_qed_table_problem(q, h->l1_table_offset);
	/* A check reports a misplaced L1 table itself. */
	if (why && !img->checking)
		return img_error(img, IMG_E_CORRUPT,
				 "L1 table at 0x%llx: %s",
				 (unsigned long long)h->l1_table_offset, why);
	return 0;
}

/* A check sees every entry of the L1 table, as QEMU's does (those past
 * the virtual size still reference tables); past the end of the file
 * they would read as 0. */
static uint64_t l1_to_read(const struct img *img, const struct qed *q)
{
	uint64_t n = q->l1_entries, off = q->h.l1_table_offset;

	uint64_t held = off < img->file_size ?
			img_min_u64(q->nelems, (img->file_size - off) / 8) : 0;

	return img->checking && held > n ? held : n;
}

static int read_l1(struct img *img, struct qed *q)
{
	size_t bytes;
	uint8_t *raw;
	int ret;

	q->l1_read = l1_to_read(img, q);
	bytes = q->l1_read * 8;
	if (img->checking &&
	    !img_table_past_eof_ok(q->h.l1_table_offset, bytes, img->file_size))
		return img_error(img, IMG_E_CORRUPT,
				 "L1 table at 0x%llx (%zu bytes) runs past end of file",
				 (unsigned long long)q->h.l1_table_offset, bytes);

	q->l1 = malloc(bytes ? bytes : 1);
	if (!q->l1)
		return img_error(img, -ENOMEM, "cannot allocate L1 table");
	/* Decode in place: each 8-byte slot becomes its host-order value. */
	raw = (uint8_t *)q->l1;
	if (img->checking) {
		/* What the file holds of it; the check reports the rest. */
		ret = img_io_read_zfill(img->io, raw, bytes, q->h.l1_table_offset);
		if (ret < 0)
			return img_error(img, ret, "cannot read L1 table at 0x%llx: %s",
					 (unsigned long long)q->h.l1_table_offset,
					 img_strerror(ret));
	} else {
		ret = img_read_meta(img, "L1 table", raw, bytes,
				    q->h.l1_table_offset);
		if (ret < 0)
			return ret;
	}
	for (uint64_t i = 0; i < q->l1_read; i++)
		q->l1[i] = get_le64(raw + i * 8);
	return 0;
}

static int read_backing(struct img *img, const struct qed *q)
{
	uint64_t off = q->h.backing_filename_offset;
	uint32_t len = q->h.backing_filename_size;
	char *name;
	int ret;

	if (!(q->h.features & IMG_QED_F_BACKING_FILE))
		return 0;
	if (off + len > q->header_bytes)
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name at 0x%llx (%u bytes) outside the %llu-byte header",
				 (unsigned long long)off, len,
				 (unsigned long long)q->header_bytes);
	if (len > IMG_QED_MAX_BACKING_LEN)
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name of %u bytes too long (max %u)",
				 len, IMG_QED_MAX_BACKING_LEN);
	name = calloc(1, len + 1);
	if (!name)
		return img_error(img, -ENOMEM, "cannot allocate backing file name");
	ret = img_read_meta(img, "backing file name", name, len, off);
	if (ret < 0 || !name[0]) {	/* an empty name means no backing */
		free(name);
		return ret;
	}
	img->backing_name = name;
	if (q->h.features & IMG_QED_F_NO_PROBE) {
		img->backing_fmt = strdup("raw");
		if (!img->backing_fmt)
			return img_error(img, -ENOMEM, "out of memory");
	}
	return 0;
}

static void qed_close(struct img *img)
{
	struct qed *q = img->priv;

	if (!q)
		return;
	img_tcache_free(q->l2_cache);
	free(q->l1);
	free(q);
	img->priv = NULL;
}

/* Derived geometry; the header is already validated. */
static void set_geometry(struct qed *q)
{
	uint64_t table_bytes = (uint64_t)q->h.table_size * q->h.cluster_size;
	uint64_t chunk = img_min_u64(table_bytes, L2_CHUNK_MAX);

	q->cluster_bits = img_log2(q->h.cluster_size);
	q->nelems = table_bytes / 8;
	q->l1_shift = q->cluster_bits + img_log2(q->nelems);
	q->l1_entries = q->h.image_size ?
		((q->h.image_size - 1) >> q->l1_shift) + 1 : 0;
	q->chunk_entries = chunk / 8;
}

static int qed_open(struct img *img)
{
	uint8_t buf[IMG_QED_HEADER_LEN];
	struct qed *q;
	int need_check, ret;

	ret = img_read_meta(img, "header", buf, sizeof(buf), 0);
	if (ret < 0)
		return ret;
	q = calloc(1, sizeof(*q));
	if (!q)
		return img_error(img, -ENOMEM, "cannot allocate qed state");
	img->priv = q;
	img_qed_decode_header(buf, &q->h);
	ret = check_header(img, q);
	if (ret < 0)
		goto fail;
	set_geometry(q);
	ret = read_l1(img, q);
	if (ret < 0)
		goto fail;
	q->l2_cache = img_tcache_new(q->chunk_entries * 8, L2_CACHE_SLOTS);
	if (!q->l2_cache) {
		ret = img_error(img, -ENOMEM, "cannot allocate L2 cache");
		goto fail;
	}
	ret = read_backing(img, q);
	if (ret < 0)
		goto fail;
	need_check = !!(q->h.features & IMG_QED_F_NEED_CHECK);
	img->size = q->h.image_size;
	img->cluster_size = q->h.cluster_size;
	/* Shown as the dirty flag; qemu-img has no QED-specific info. */
	img->dirty = need_check;
	return 0;
fail:
	qed_close(img);
	return ret;
}

/*
 * The one QED L2 entry decoder (block status and the table walker): fill
 * kind, flags, host (the cluster's start) and clen for the stored entry
 * (host order) of a whole cluster. Returns NULL, or why the entry cannot
 * be a data cluster; the fields are filled even then (DATA at the stored
 * offset), so that a checker can see what the entry says.
 */
static const char *decode(const struct qed *q, uint64_t entry,
			  struct img_extent *e)
{
	e->flags = 0;
	e->host = 0;
	e->clen = 0;
	if (entry == IMG_QED_L2_UNALLOC) {
		e->kind = IMG_EXT_UNALLOC;
		return NULL;
	}
	if (entry == IMG_QED_L2_ZERO) {
		e->kind = IMG_EXT_ZERO;
		return NULL;
	}
	e->kind = IMG_EXT_DATA;
	e->flags = IMG_EXT_F_OFFSET;
	e->host = entry;
	return img_qed_cluster_problem(q, entry);
}

/* Fill e's kind and host for one L2 entry at guest pos. */
static int decode_entry(struct img *img, uint64_t entry, uint64_t pos,
			struct img_extent *e)
{
	struct qed *q = img->priv;
	uint64_t in_cluster = pos & (q->h.cluster_size - 1);
	const char *why = decode(q, entry, e);

	if (why)
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: data cluster at 0x%llx: %s",
				 (unsigned long long)(pos - in_cluster),
				 (unsigned long long)entry, why);
	if (e->kind == IMG_EXT_DATA)
		e->host += in_cluster;
	return 0;
}

/* Bytes from pos to the end of its aligned block of 2^bits bytes. */
static uint64_t to_boundary(uint64_t pos, unsigned bits)
{
	return (1ULL << bits) - (pos & ((1ULL << bits) - 1));
}

static int usable(struct img *img, uint64_t entry, struct img_extent *e)
{
	return decode(img->priv, entry, e) == NULL;
}

/* The longest run at pos inside one cached piece of an L2 table (or a
 * stretch of empty L1 slots), ending by end. */
static int lookup(struct img *img, uint64_t pos, uint64_t end,
		  struct img_extent *e)
{
	struct qed *q = img->priv;
	unsigned cbits = q->cluster_bits;
	uint64_t l1_idx = pos >> q->l1_shift, l2_off = q->l1[l1_idx];
	uint64_t cs = q->h.cluster_size, idx, limit;
	const uint8_t *chunk;
	const char *why;
	int ret;

	memset(e, 0, sizeof(*e));
	e->start = pos;
	if (!l2_off) {
		e->kind = IMG_EXT_UNALLOC;
		e->length = img_empty_l1_run(q->l1, q->l1_entries, q->l1_shift,
					     pos, end);
		return 0;
	}
	why = img_qed_table_problem(q, l2_off);
	if (why)
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry for guest offset 0x%llx: L2 table at 0x%llx: %s",
				 (unsigned long long)(l1_idx << q->l1_shift),
				 (unsigned long long)l2_off, why);
	idx = (pos >> cbits) & (q->nelems - 1);
	ret = img_tcache_get(img, q->l2_cache, "L2 table",
			     l2_off + idx / q->chunk_entries * q->chunk_entries * 8,
			     &chunk);
	if (ret < 0)
		return ret;
	idx %= q->chunk_entries;
	limit = img_min_u64(end - pos,
			to_boundary(pos, cbits + img_log2(q->chunk_entries)));
	ret = decode_entry(img, get_le64(chunk + idx * 8), pos, e);
	if (ret < 0)
		return ret;
	e->length = cs - (pos & (cs - 1));
	img_extend_in_table(img, chunk, idx, q->chunk_entries, 1, cs, limit,
			    usable, e);
	return 0;
}

static int qed_block_status(struct img *img, uint64_t off, uint64_t len,
			    struct img_extent *ext)
{
	return img_status_by_lookup(img, lookup, off, len, ext);
}

/* The walker's decode: the stored entry is little-endian. An unusable
 * entry (see decode()) is passed on as it reads, for the caller to judge. */
static void walk_decode(struct img *img, const uint8_t *raw,
			struct img_walk_entry *e)
{
	e->problem = decode(img->priv, get_le64(raw), &e->ext);
}

static int qed_walk_layout(struct img *img, struct img_walk_layout *lay)
{
	const struct qed *q = img->priv;

	*lay = (struct img_walk_layout){
		/* Decoded at open: the entries that map guest offsets
		 * below image_size, or for a check all of them. */
		.l1 = q->l1,
		.l1_entries = q->l1_read,
		.l1_offset_mask = ~0ULL,	/* QED L1 entries have no flags */
		.l2_bytes = q->nelems * 8,
		.entry_bytes = 8,
		.cluster_size = q->h.cluster_size,
		.table_align = q->h.cluster_size,	/* as img_qed_table_problem() */
		.min_offset = q->header_bytes,
		.decode = walk_decode,
	};
	return 0;
}

const struct img_driver img_qed_driver = {
	.name = "qed",
	.probe = qed_probe,
	.open = qed_open,
	.close = qed_close,
	.block_status = qed_block_status,
	.walk_layout = qed_walk_layout,
	.create_opts = img_qed_create_opts,
	.create = img_qed_create,
	.writer = &img_qed_writer,
	.check = img_qed_check,
	.compact = img_qed_compact,
	.demote = img_qed_demote,
};
