/* qcow2.c: qcow2 (v2 and v3) reader driver: header, extensions, snapshots, bitmaps, L1/L2 block status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "qcow2.h"
#include "walk.h"
#include "tcache.h"

#define L2_CACHE_SLOTS 16

static uint64_t align8(uint64_t n)
{
	return (n + 7) & ~7ull;
}

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	uint32_t version;

	if (len < 8 || get_be32(buf) != QCOW2_MAGIC)
		return 0;
	version = get_be32(buf + 4);
	if (version == 2 || version == 3)
		return 100;
	/* Version 1 belongs to the qcow driver; claim any other version so
	 * that open() refuses it instead of it being read as raw. */
	return version == 1 ? 0 : 50;
}

/* ---- header ---------------------------------------------------------- */

static void decode_header(const uint8_t *b, struct img_qcow2_header *h)
{
	h->version = get_be32(b + 4);
	h->backing_offset = get_be64(b + 8);
	h->backing_size = get_be32(b + 16);
	h->cluster_bits = get_be32(b + 20);
	h->size = get_be64(b + 24);
	h->crypt_method = get_be32(b + 32);
	h->l1_size = get_be32(b + 36);
	h->l1_offset = get_be64(b + 40);
	h->reftable_offset = get_be64(b + 48);
	h->reftable_clusters = get_be32(b + 56);
	h->nb_snapshots = get_be32(b + 60);
	h->snapshots_offset = get_be64(b + 64);
	if (h->version < 3) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
		return;
	}
	h->incompat = get_be64(b + 72);
	h->compat = get_be64(b + 80);
	h->autoclear = get_be64(b + 88);
	h->refcount_order = get_be32(b + 96);
	h->header_length = get_be32(b + 100);
}

static int check_version_and_cluster(struct img *img,
				     const struct img_qcow2_header *h)
{
	if (h->version != 2 && h->version != 3)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported qcow2 version %u", h->version);
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cluster size 2^%u out of range 2^%d..2^%d",
				 h->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
				 QCOW2_MAX_CLUSTER_BITS);
	return 0;
}

static int check_header_length(struct img *img, const struct img_qcow2 *q)
{
	uint32_t len = q->h.header_length;

	if (q->h.version < 3)
		return 0;
	if (len < QCOW2_V3_HEADER_MIN)
		return img_error(img, IMG_E_CORRUPT,
				 "header length %u too short (minimum %d)",
				 len, QCOW2_V3_HEADER_MIN);
	if (len > q->cluster_size)
		return img_error(img, IMG_E_CORRUPT,
				 "header length %u exceeds cluster size %llu",
				 len, (unsigned long long)q->cluster_size);
	/* The spec asks for a multiple of 8; QEMU does not check it. */
	if (len % 8)
		return img_error(img, IMG_E_CORRUPT,
				 "header length %u not a multiple of 8", len);
	return 0;
}

static int check_backing_fields(struct img *img, const struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;
	uint64_t room;

	if (h->backing_offset > q->cluster_size)
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name offset 0x%llx beyond the first cluster",
				 (unsigned long long)h->backing_offset);
	room = q->cluster_size - h->backing_offset;
	if (h->backing_offset && (h->backing_size > QCOW2_MAX_BACKING_NAME ||
				  h->backing_size > room))
		return img_error(img, IMG_E_CORRUPT,
				 "backing file name too long (%u bytes at 0x%llx)",
				 h->backing_size,
				 (unsigned long long)h->backing_offset);
	return 0;
}

/* A table of entries*entry_len bytes at offset: aligned, at most max_bytes,
 * and its end representable (QEMU uses signed 64-bit offsets). */
static int check_table(struct img *img, const struct img_qcow2 *q,
		       const char *what, uint64_t offset, uint64_t entries,
		       uint64_t entry_len, uint64_t max_bytes)
{
	uint64_t bytes, end;

	if (img_mul_overflows(entries, entry_len, &bytes) || bytes > max_bytes)
		return img_error(img, IMG_E_TOOBIG,
				 "%s too large (%llu entries, maximum %llu)",
				 what, (unsigned long long)entries,
				 (unsigned long long)(max_bytes / entry_len));
	if (offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "%s at 0x%llx: offset not cluster aligned",
				 what, (unsigned long long)offset);
	if (img_add_overflows(offset, bytes, &end) || end > INT64_MAX)
		return img_error(img, IMG_E_CORRUPT,
				 "%s at 0x%llx: end offset overflows", what,
				 (unsigned long long)offset);
	return 0;
}

static int check_refcounts(struct img *img, const struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;
	uint64_t entries = (uint64_t)h->reftable_clusters * q->cluster_size / 8;
	int ret;

	if (h->refcount_order > 6)
		return img_error(img, IMG_E_CORRUPT,
				 "refcount order %u out of range 0..6",
				 h->refcount_order);
	if (h->reftable_clusters == 0)
		return img_error(img, IMG_E_CORRUPT,
				 "no refcount table (0 clusters)");
	ret = check_table(img, q, "refcount table", h->reftable_offset,
			  entries, 8, QCOW2_MAX_REFTABLE_BYTES);
	if (ret < 0)
		return ret;
	if (h->reftable_offset + entries * 8 > img->file_size)
		return img_error(img, IMG_E_CORRUPT,
				 "refcount table at 0x%llx: offset beyond end of file",
				 (unsigned long long)h->reftable_offset);
	return 0;
}

/* Entries the L1 needs for the virtual size, without overflowing. */
static uint64_t l1_entries_needed(const struct img_qcow2 *q)
{
	unsigned shift = q->h.cluster_bits + q->l2_bits;
	uint64_t n = q->h.size >> shift;

	return n + ((q->h.size & ((1ull << shift) - 1)) != 0);
}

static int check_l1(struct img *img, const struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;
	uint64_t needed = l1_entries_needed(q);
	int ret;

	ret = check_table(img, q, "L1 table", h->l1_offset, h->l1_size, 8,
			  QCOW2_MAX_L1_BYTES);
	if (ret < 0)
		return ret;
	if (needed > INT32_MAX)
		return img_error(img, IMG_E_TOOBIG,
				 "virtual size %llu too large for cluster size %llu",
				 (unsigned long long)h->size,
				 (unsigned long long)q->cluster_size);
	if (h->l1_size < needed)
		return img_error(img, IMG_E_CORRUPT,
				 "L1 table too small (%u entries, virtual size needs %llu)",
				 h->l1_size, (unsigned long long)needed);
	return 0;
}

static int check_snapshot_table(struct img *img, const struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return img_error(img, IMG_E_TOOBIG,
				 "too many snapshots (%u, maximum %u)",
				 h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	return check_table(img, q, "snapshot table", h->snapshots_offset,
			   h->nb_snapshots, QCOW2_SNAPSHOT_FIXED_LEN,
			   QCOW2_MAX_SNAPSHOTS * QCOW2_SNAPSHOT_FIXED_LEN);
}

static int check_encryption(struct img *img, const struct img_qcow2 *q)
{
	switch (q->h.crypt_method) {
	case QCOW2_CRYPT_NONE:
		return 0;
	case QCOW2_CRYPT_AES:
		img->encrypted = 1;
		return 0;
	case QCOW2_CRYPT_LUKS:
		return img_error(img, IMG_E_UNSUPPORTED,
				 "LUKS encryption is not supported");
	default:
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported encryption method %u",
				 q->h.crypt_method);
	}
}

static int check_compression(struct img *img, const struct img_qcow2 *q)
{
	uint8_t type = q->h.compression_type;
	int bit = !!(q->h.incompat & QCOW2_INCOMPAT_COMPRESSION);

	if (type > 1)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported compression type %u", type);
	if (type && !bit)
		return img_error(img, IMG_E_CORRUPT,
				 "compression type %u without incompatible feature bit 0x8",
				 type);
	if (!type && bit)
		return img_error(img, IMG_E_CORRUPT,
				 "incompatible feature bit 0x8 set with compression type zlib");
	img->compress = type ? IMG_COMPRESS_ZSTD : IMG_COMPRESS_ZLIB;
	return 0;
}

/* Unknown incompatible bits: name each one, with its feature-table name. */
static int refuse_incompat(struct img *img, const struct img_qcow2 *q,
			   uint64_t unknown)
{
	char list[400];
	size_t used = 0;
	int nbits = __builtin_popcountll(unknown);

	list[0] = 0;
	for (int bit = 0; bit < 64 && used < sizeof(list); bit++) {
		if (!(unknown >> bit & 1))
			continue;
		used += snprintf(list + used, sizeof(list) - used, "%s0x%llx",
				 used ? ", " : "", 1ull << bit);
		if (q->incompat_names[bit] && used < sizeof(list))
			used += snprintf(list + used, sizeof(list) - used,
					 " (%s)", q->incompat_names[bit]);
	}
	return img_error(img, IMG_E_UNSUPPORTED,
			 "unsupported incompatible feature bit%s %s",
			 nbits > 1 ? "s" : "", list);
}

static int check_features(struct img *img, struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;
	uint64_t unknown = h->incompat & ~QCOW2_INCOMPAT_KNOWN;

	if (unknown)
		return refuse_incompat(img, q, unknown);
	if ((h->incompat & QCOW2_INCOMPAT_DATA_FILE) && !q->data_file_name)
		return img_error(img, IMG_E_CORRUPT,
				 "image needs an external data file (incompatible feature bit 0x4) but names none");
	q->has_data_file = !!(h->incompat & QCOW2_INCOMPAT_DATA_FILE);
	if ((h->autoclear & QCOW2_AUTOCLEAR_DATA_RAW) && !q->has_data_file)
		return img_error(img, IMG_E_CORRUPT,
				 "raw external data bit set without an external data file");
	img->dirty = !!(h->incompat & QCOW2_INCOMPAT_DIRTY);
	return 0;
}

/* ---- header extensions ----------------------------------------------- */

static char *dup_printable(const uint8_t *p, size_t len)
{
	char *s = strndup((const char *)p, len);

	if (s)
		for (char *c = s; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
	return s;
}

static int ext_backing_fmt(struct img *img, const uint8_t *data, uint32_t len,
			   uint64_t at)
{
	if (len > QCOW2_MAX_BACKING_FMT)
		return img_error(img, IMG_E_CORRUPT,
				 "backing format extension at 0x%llx too long (%u bytes, maximum %u)",
				 (unsigned long long)at, len,
				 QCOW2_MAX_BACKING_FMT);
	free(img->backing_fmt);
	img->backing_fmt = strndup((const char *)data, len);
	return img->backing_fmt ? 0 : -ENOMEM;
}

static int ext_feature_names(struct img *img, struct img_qcow2 *q,
			     const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i + 48 <= len; i += 48) {
		uint8_t type = data[i], bit = data[i + 1];

		if (type != 0 || bit >= 64)
			continue;
		free(q->incompat_names[bit]);
		q->incompat_names[bit] = dup_printable(data + i + 2, 46);
		if (!q->incompat_names[bit])
			return -ENOMEM;
	}
	return 0;
}

/* Only the location here; the directory is read once the header is known. */
static int ext_bitmaps(struct img *img, struct img_qcow2 *q,
		       const uint8_t *data, uint32_t len, uint64_t at)
{
	uint32_t nb;

	/* The extension is only valid while autoclear bit 0 says so. */
	if (!(q->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	if (len != 24)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmaps extension at 0x%llx: length %u, expected 24",
				 (unsigned long long)at, len);
	nb = get_be32(data);
	if (get_be32(data + 4))
		return img_error(img, IMG_E_CORRUPT,
				 "bitmaps extension at 0x%llx: reserved field not zero",
				 (unsigned long long)at);
	if (nb == 0 || nb > QCOW2_MAX_BITMAPS)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmaps extension at 0x%llx: %u bitmaps, expected 1..%u",
				 (unsigned long long)at, nb, QCOW2_MAX_BITMAPS);
	q->bitmap_dir_size = get_be64(data + 8);
	q->bitmap_dir_offset = get_be64(data + 16);
	if (q->bitmap_dir_size > QCOW2_MAX_BITMAP_DIR)
		return img_error(img, IMG_E_TOOBIG,
				 "bitmap directory too large (%llu bytes, maximum %u)",
				 (unsigned long long)q->bitmap_dir_size,
				 QCOW2_MAX_BITMAP_DIR);
	if (q->bitmap_dir_offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "bitmap directory at 0x%llx: offset not cluster aligned",
				 (unsigned long long)q->bitmap_dir_offset);
	q->nb_bitmaps = nb;
	return 0;
}

static int ext_data_file(struct img *img, struct img_qcow2 *q,
			 const uint8_t *data, uint32_t len)
{
	free(q->data_file_name);
	q->data_file_name = strndup((const char *)data, len);
	return q->data_file_name ? 0 : -ENOMEM;
}

static int read_one_extension(struct img *img, struct img_qcow2 *q,
			      uint32_t type, const uint8_t *data, uint32_t len,
			      uint64_t at)
{
	switch (type) {
	case QCOW2_EXT_BACKING_FMT:
		return ext_backing_fmt(img, data, len, at);
	case QCOW2_EXT_FEATURES:
		return ext_feature_names(img, q, data, len);
	case QCOW2_EXT_BITMAPS:
		return ext_bitmaps(img, q, data, len, at);
	case QCOW2_EXT_DATA_FILE:
		return ext_data_file(img, q, data, len);
	case QCOW2_EXT_FDE:
		/* Only meaningful with LUKS, which open() refuses anyway. */
		if (q->h.crypt_method != QCOW2_CRYPT_LUKS)
			return img_error(img, IMG_E_CORRUPT,
					 "LUKS header extension at 0x%llx in an image without LUKS encryption",
					 (unsigned long long)at);
		return 0;
	default:
		return 0;   /* unknown extensions are ignored */
	}
}

/* Extensions run from the header's end to the backing name (or the end of
 * cluster 0); hdr holds cluster 0, zero-filled past end of file. */
static int read_extensions(struct img *img, struct img_qcow2 *q,
			   const uint8_t *hdr)
{
	uint64_t pos = q->h.header_length;
	uint64_t end = q->h.backing_offset ? q->h.backing_offset :
					     q->cluster_size;

	while (pos < end) {
		uint32_t type, len;
		int ret;

		if (end - pos < 8)
			return img_error(img, IMG_E_CORRUPT,
					 "header extension too large at 0x%llx (truncated header)",
					 (unsigned long long)pos);
		type = get_be32(hdr + pos);
		len = get_be32(hdr + pos + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos - 8)
			return img_error(img, IMG_E_CORRUPT,
					 "header extension too large at 0x%llx (type 0x%08x, %u bytes)",
					 (unsigned long long)pos, type, len);
		ret = read_one_extension(img, q, type, hdr + pos + 8, len, pos);
		if (ret < 0)
			return ret;
		pos += 8 + align8(len);
	}
	return 0;
}

static int read_backing_name(struct img *img, const struct img_qcow2 *q)
{
	char name[QCOW2_MAX_BACKING_NAME + 1];
	int ret;

	if (!q->h.backing_offset || !q->h.backing_size)
		return 0;
	ret = img_read_meta(img, "backing file name", name,
			    q->h.backing_size, q->h.backing_offset);
	if (ret < 0)
		return ret;
	name[q->h.backing_size] = 0;
	if (!name[0])
		return 0;
	img->backing_name = strdup(name);
	return img->backing_name ? 0 : -ENOMEM;
}

/* ---- external data file ---------------------------------------------- */

/* Resolve the data file's path at open; open it only when data is first
 * looked up, so that info works without it, as with qemu-img info. */
static int resolve_data_file(struct img *img, struct img_qcow2 *q)
{
	if (!q->has_data_file)
		return 0;
	if (!q->data_file_name[0])
		return img_error(img, IMG_E_CORRUPT,
				 "external data file name is empty");
	img->data_path = img_path_beside(img->path, q->data_file_name);
	return img->data_path ? 0 : -ENOMEM;
}

static int open_data_file(struct img *img)
{
	struct img_io *io;
	int ret;

	ret = img_io_open_file(&io, img->data_path, IMG_IO_RDONLY);
	if (ret < 0)
		return img_error(img, ret, "cannot open data file '%s': %s",
				 img->data_path, img_strerror(ret));
	img->data_io = io;
	return 0;
}

/* ---- tables ---------------------------------------------------------- */

static int read_l1(struct img *img, struct img_qcow2 *q)
{
	size_t bytes = (size_t)q->h.l1_size * 8;
	uint8_t *raw;
	int ret;

	if (!q->h.l1_size)
		return 0;
	raw = malloc(bytes);
	q->l1 = malloc(bytes);
	if (!raw || !q->l1) {
		free(raw);
		return img_error(img, -ENOMEM, "cannot allocate L1 table (%zu bytes)",
				 bytes);
	}
	ret = img_read_meta(img, "L1 table", raw, bytes, q->h.l1_offset);
	for (uint32_t i = 0; ret == 0 && i < q->h.l1_size; i++)
		q->l1[i] = get_be64(raw + 8 * (size_t)i);
	free(raw);
	return ret;
}

/* ---- snapshots ------------------------------------------------------- */

struct snap_fixed {
	uint64_t l1_offset, vm_clock_nsec;
	uint32_t l1_size, date_sec, date_nsec, vm_state_size, extra_len;
	uint16_t id_len, name_len;
};

static void decode_snap_fixed(const uint8_t *b, struct snap_fixed *f)
{
	f->l1_offset = get_be64(b);
	f->l1_size = get_be32(b + 8);
	f->id_len = get_be16(b + 12);
	f->name_len = get_be16(b + 14);
	f->date_sec = get_be32(b + 16);
	f->date_nsec = get_be32(b + 20);
	f->vm_clock_nsec = get_be64(b + 24);
	f->vm_state_size = get_be32(b + 32);
	f->extra_len = get_be32(b + 36);
}

static int check_snap_l1(struct img *img, const struct img_qcow2 *q,
			 uint32_t i, const struct snap_fixed *f)
{
	uint64_t end = f->l1_offset + (uint64_t)f->l1_size * 8;

	if ((uint64_t)f->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot %u: L1 table too large (%u entries)",
				 i, f->l1_size);
	if (f->l1_offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "snapshot %u: L1 table at 0x%llx: offset not cluster aligned",
				 i, (unsigned long long)f->l1_offset);
	if (end < f->l1_offset || end > INT64_MAX)
		return img_error(img, IMG_E_CORRUPT,
				 "snapshot %u: L1 table at 0x%llx: end offset overflows",
				 i, (unsigned long long)f->l1_offset);
	return 0;
}

/* Fill sn from the fixed part and the variable part (extra, id, name). */
static int fill_snapshot(struct img *img, struct img_snapshot *sn,
			 const struct snap_fixed *f, const uint8_t *var)
{
	const uint8_t *extra = var;

	sn->vm_state_size = f->extra_len >= 8 ? get_be64(extra) :
						f->vm_state_size;
	sn->disk_size = f->extra_len >= 16 ? get_be64(extra + 8) : img->size;
	sn->icount = f->extra_len >= 24 ? get_be64(extra + 16) : UINT64_MAX;
	sn->has_icount = sn->icount != UINT64_MAX;
	sn->date_sec = f->date_sec;
	sn->date_nsec = f->date_nsec;
	sn->vm_clock_nsec = f->vm_clock_nsec;
	sn->id = strndup((const char *)var + f->extra_len, f->id_len);
	sn->name = strndup((const char *)var + f->extra_len + f->id_len,
			   f->name_len);
	return sn->id && sn->name ? 0 : -ENOMEM;
}

/* Read entry i at *pos (relative to the table start), advance *pos. */
static int read_snapshot(struct img *img, struct img_qcow2 *q, uint32_t i,
			 uint64_t *pos, uint8_t *var)
{
	uint64_t at = q->h.snapshots_offset + *pos, len;
	uint8_t fixed[QCOW2_SNAPSHOT_FIXED_LEN];
	struct snap_fixed f;
	int ret;

	ret = img_read_meta(img, "snapshot table entry", fixed, sizeof(fixed), at);
	if (ret < 0)
		return ret;
	decode_snap_fixed(fixed, &f);
	if (f.extra_len > QCOW2_MAX_SNAPSHOT_EXTRA)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot %u at 0x%llx: extra data too large (%u bytes, maximum %u)",
				 i, (unsigned long long)at, f.extra_len,
				 QCOW2_MAX_SNAPSHOT_EXTRA);
	len = (uint64_t)f.extra_len + f.id_len + f.name_len;
	*pos = align8(*pos + QCOW2_SNAPSHOT_FIXED_LEN + len);
	if (*pos > QCOW2_MAX_SNAPSHOT_TABLE)
		return img_error(img, IMG_E_TOOBIG,
				 "snapshot table at 0x%llx larger than %u bytes",
				 (unsigned long long)q->h.snapshots_offset,
				 QCOW2_MAX_SNAPSHOT_TABLE);
	ret = img_read_meta(img, "snapshot table entry", var, len,
			    at + QCOW2_SNAPSHOT_FIXED_LEN);
	if (ret < 0)
		return ret;
	ret = check_snap_l1(img, q, i, &f);
	if (ret < 0)
		return ret;
	q->snap_l1[i].offset = f.l1_offset;
	q->snap_l1[i].size = f.l1_size;
	return fill_snapshot(img, &img->snapshots[i], &f, var);
}

static int read_snapshots(struct img *img, struct img_qcow2 *q)
{
	uint32_t n = q->h.nb_snapshots;
	uint64_t pos = 0;
	uint8_t *var;
	int ret = 0;

	if (!n)
		return 0;
	img->snapshots = calloc(n, sizeof(*img->snapshots));
	q->snap_l1 = calloc(n, sizeof(*q->snap_l1));
	/* Largest variable part: extra data plus two u16-sized strings. */
	var = malloc(QCOW2_MAX_SNAPSHOT_EXTRA + 2 * 65535);
	if (!img->snapshots || !q->snap_l1 || !var) {
		free(var);
		return img_error(img, -ENOMEM, "cannot allocate snapshot table");
	}
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		ret = read_snapshot(img, q, i, &pos, var);
		img->nsnapshots = (int)i + 1;  /* so the strings get freed */
	}
	free(var);
	q->snapshot_table_len = pos;
	return ret;
}

/* ---- persistent bitmaps ---------------------------------------------- */

struct bitmap_entry {
	uint64_t table_offset;
	uint32_t table_size, flags, extra_len;
	uint8_t type, granularity_bits;
	uint16_t name_len;
};

static void decode_bitmap_entry(const uint8_t *b, struct bitmap_entry *e)
{
	e->table_offset = get_be64(b);
	e->table_size = get_be32(b + 8);
	e->flags = get_be32(b + 12);
	e->type = b[16];
	e->granularity_bits = b[17];
	e->name_len = get_be16(b + 18);
	e->extra_len = get_be32(b + 20);
}

/* A bitmap not in use must cover the whole disk. */
static int bitmap_covers_disk(const struct img *img, const struct img_qcow2 *q,
			      const struct bitmap_entry *e)
{
	uint64_t have_bits = (uint64_t)e->table_size * q->cluster_size * 8;
	uint64_t gran = 1ull << e->granularity_bits;
	uint64_t need_bits = img->size / gran + (img->size % gran != 0);

	return need_bits <= have_bits;
}

static const char *bitmap_entry_problem(const struct img *img,
					const struct img_qcow2 *q,
					const struct bitmap_entry *e)
{
	if (!e->table_offset || (e->table_offset & (q->cluster_size - 1)))
		return "bitmap table offset invalid";
	if (!e->table_size || e->table_size > QCOW2_MAX_BITMAP_TABLE ||
	    (uint64_t)e->table_size * q->cluster_size > QCOW2_MAX_BITMAP_PHYS)
		return "bitmap table size out of range";
	if (e->flags & ~(QCOW2_BITMAP_IN_USE | QCOW2_BITMAP_AUTO))
		return "reserved flags set";
	if (e->type != QCOW2_BITMAP_TYPE_DIRTY)
		return "unknown bitmap type";
	if (e->granularity_bits < QCOW2_MIN_GRANULARITY_BITS ||
	    e->granularity_bits > QCOW2_MAX_GRANULARITY_BITS)
		return "granularity out of range 2^9..2^31";
	if (!e->name_len || e->name_len > QCOW2_MAX_BITMAP_NAME)
		return "name length out of range 1..1023";
	if (!(e->flags & QCOW2_BITMAP_IN_USE) && !bitmap_covers_disk(img, q, e))
		return "bitmap table too small for the virtual size";
	return NULL;
}

/* Decode entry i at dir[*pos], advance *pos. */
static int parse_bitmap_entry(struct img *img, const struct img_qcow2 *q,
			      const uint8_t *dir, uint64_t *pos, uint32_t i)
{
	uint64_t left = q->bitmap_dir_size - *pos, len;
	struct img_bitmap *bm = &img->bitmaps[i];
	struct bitmap_entry e;
	const char *problem;

	if (left < QCOW2_BITMAP_ENTRY_FIXED)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmap directory at 0x%llx: entry %u truncated",
				 (unsigned long long)q->bitmap_dir_offset, i);
	decode_bitmap_entry(dir + *pos, &e);
	len = align8((uint64_t)QCOW2_BITMAP_ENTRY_FIXED + e.extra_len +
		     e.name_len);
	if (len > left)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmap directory at 0x%llx: entry %u truncated",
				 (unsigned long long)q->bitmap_dir_offset, i);
	problem = bitmap_entry_problem(img, q, &e);
	if (problem)
		return img_error(img, IMG_E_CORRUPT,
				 "bitmap directory at 0x%llx: entry %u: %s",
				 (unsigned long long)q->bitmap_dir_offset, i,
				 problem);
	bm->name = strndup((const char *)dir + *pos +
			   QCOW2_BITMAP_ENTRY_FIXED + e.extra_len, e.name_len);
	bm->granularity = 1u << e.granularity_bits;
	bm->in_use = !!(e.flags & QCOW2_BITMAP_IN_USE);
	bm->autom = !!(e.flags & QCOW2_BITMAP_AUTO);
	*pos += len;
	return bm->name ? 0 : -ENOMEM;
}

static int read_bitmaps(struct img *img, struct img_qcow2 *q)
{
	uint64_t pos = 0;
	uint8_t *dir;
	int ret;

	if (!q->nb_bitmaps)
		return 0;
	dir = malloc(q->bitmap_dir_size ? q->bitmap_dir_size : 1);
	img->bitmaps = calloc(q->nb_bitmaps, sizeof(*img->bitmaps));
	if (!dir || !img->bitmaps) {
		free(dir);
		return img_error(img, -ENOMEM, "cannot allocate bitmap directory");
	}
	ret = img_read_meta(img, "bitmap directory", dir, q->bitmap_dir_size,
			    q->bitmap_dir_offset);
	for (uint32_t i = 0; ret == 0 && i < q->nb_bitmaps; i++) {
		ret = parse_bitmap_entry(img, q, dir, &pos, i);
		img->nbitmaps = (int)i + 1;  /* so the names get freed */
	}
	free(dir);
	if (ret == 0 && pos != q->bitmap_dir_size)
		ret = img_error(img, IMG_E_CORRUPT,
				"bitmap directory at 0x%llx: %llu bytes, but its %u entries take %llu",
				(unsigned long long)q->bitmap_dir_offset,
				(unsigned long long)q->bitmap_dir_size,
				q->nb_bitmaps, (unsigned long long)pos);
	return ret;
}

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

/* Entry j of a refcount block; sub-byte widths are packed LSB first. */
static uint64_t refblock_entry(const uint8_t *blk, uint64_t j, unsigned order)
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
	*refcount = refblock_entry(blk, cluster & ((1ull << block_bits) - 1),
				   q->h.refcount_order);
	return 0;
}

/*
 * QEMU guesses "metadata preallocation" when clusters with a refcount are
 * clearly more than the clusters the host file really allocates, and then
 * lets holes in the host file show through its data clusters as zeros in
 * map output. Errors just mean no.
 */
static int detect_metadata_prealloc(struct img *img, struct img_qcow2 *q)
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

/* ---- open / close ---------------------------------------------------- */

static void set_props(struct img *img, const struct img_qcow2 *q)
{
	const struct img_qcow2_header *h = &q->h;
	int v3 = h->version >= 3;

	img_prop_str(img, "compat", v3 ? "1.1" : "0.10");
	img_prop_str(img, "compression-type",
		     h->compression_type ? "zstd" : "zlib");
	if (v3)
		img_prop_bool(img, "lazy-refcounts",
			      !!(h->compat & QCOW2_COMPAT_LAZY_REFCOUNTS));
	img_prop_int(img, "refcount-bits", 1ll << h->refcount_order);
	if (v3) {
		img_prop_bool(img, "corrupt",
			      !!(h->incompat & QCOW2_INCOMPAT_CORRUPT));
		img_prop_bool(img, "extended-l2", q->extended_l2);
	}
	if (q->has_data_file) {
		img_prop_str(img, "data-file", q->data_file_name);
		img_prop_bool(img, "data-file-raw",
			      !!(h->autoclear & QCOW2_AUTOCLEAR_DATA_RAW));
	}
}

/* Read the fixed header and cluster 0 (for the extensions) into *hdr. */
static int read_header(struct img *img, struct img_qcow2 *q, uint8_t **hdr)
{
	uint8_t fixed[QCOW2_V3_HEADER_MIN];
	size_t len = QCOW2_V2_HEADER_LEN;
	int ret;

	ret = img_read_meta(img, "qcow2 header", fixed, len, 0);
	if (ret < 0)
		return ret;
	if (get_be32(fixed) != QCOW2_MAGIC)
		return img_error(img, IMG_E_CORRUPT, "not a qcow2 image (bad magic)");
	decode_header(fixed, &q->h);
	ret = check_version_and_cluster(img, &q->h);
	if (ret < 0)
		return ret;
	q->cluster_size = 1ull << q->h.cluster_bits;
	if (q->h.version >= 3) {
		ret = img_read_meta(img, "qcow2 header", fixed,
				    QCOW2_V3_HEADER_MIN, 0);
		if (ret < 0)
			return ret;
		decode_header(fixed, &q->h);
		ret = check_header_length(img, q);
		if (ret < 0)
			return ret;
	}
	*hdr = calloc(1, q->cluster_size);
	if (!*hdr)
		return -ENOMEM;
	ret = img_read_meta(img, "qcow2 header", *hdr, q->h.header_length, 0);
	if (ret < 0)
		return ret;
	/* QEMU reads the extension area past end of file as zeros. */
	ret = img_io_read_zfill(img->io, *hdr + q->h.header_length,
				q->cluster_size - q->h.header_length,
				q->h.header_length);
	if (ret < 0)
		return img_error(img, ret, "header extensions at 0x%x: %s",
				 q->h.header_length, img_strerror(ret));
	if (q->h.header_length > QCOW2_V3_HEADER_MIN)
		q->h.compression_type = (*hdr)[QCOW2_V3_HEADER_MIN];
	return 0;
}

static int check_header(struct img *img, struct img_qcow2 *q)
{
	int ret;

	q->extended_l2 = !!(q->h.incompat & QCOW2_INCOMPAT_EXTL2);
	q->entry_len = q->extended_l2 ? 16 : 8;
	q->l2_bits = q->h.cluster_bits - (q->extended_l2 ? 4 : 3);
	/* Subclusters are at least 512 bytes. */
	if (q->extended_l2 && q->cluster_size < 16384)
		return img_error(img, IMG_E_CORRUPT,
				 "extended L2 entries need a cluster size of at least 16384 (have %llu)",
				 (unsigned long long)q->cluster_size);
	img->cluster_size = (uint32_t)q->cluster_size;
	/* QEMU keeps whole 512-byte sectors of the virtual size. */
	img->size = q->h.size & ~511ull;

	if ((ret = check_backing_fields(img, q)) < 0 ||
	    (ret = check_encryption(img, q)) < 0 ||
	    (ret = check_compression(img, q)) < 0 ||
	    (ret = check_refcounts(img, q)) < 0 ||
	    (ret = check_l1(img, q)) < 0 ||
	    (ret = check_snapshot_table(img, q)) < 0)
		return ret;
	return 0;
}

static int qcow2_open_priv(struct img *img, struct img_qcow2 *q)
{
	uint8_t *hdr = NULL;
	int ret;

	ret = read_header(img, q, &hdr);
	if (ret == 0)
		ret = check_header(img, q);
	if (ret == 0)
		ret = read_extensions(img, q, hdr);
	free(hdr);
	if (ret < 0)
		return ret;
	if ((ret = check_features(img, q)) < 0 ||
	    (ret = resolve_data_file(img, q)) < 0 ||
	    (ret = read_backing_name(img, q)) < 0 ||
	    (ret = read_l1(img, q)) < 0 ||
	    (ret = read_snapshots(img, q)) < 0 ||
	    (ret = read_bitmaps(img, q)) < 0)
		return ret;
	q->l2_cache = img_tcache_new(q->cluster_size, L2_CACHE_SLOTS);
	if (!q->l2_cache)
		return img_error(img, -ENOMEM, "cannot allocate L2 cache");
	set_props(img, q);
	/* img-check hooks in here: q->h holds the refcount table location and
	 * q->snap_l1 the snapshot trees it must walk besides q->l1. */
	return 0;
}

static void qcow2_close(struct img *img)
{
	struct img_qcow2 *q = img->priv;

	if (!q)
		return;
	free(q->l1);
	img_tcache_free(q->l2_cache);
	for (int i = 0; i < 64; i++)
		free(q->incompat_names[i]);
	free(q->data_file_name);
	free(q->snap_l1);
	free(q->reftable);
	img_tcache_free(q->refblock_cache);
	free(q);
	img->priv = NULL;
	/* img_free() closes img->data_io and frees img->data_path. */
}

static int qcow2_open(struct img *img)
{
	struct img_qcow2 *q = calloc(1, sizeof(*q));
	int ret;

	if (!q)
		return -ENOMEM;
	img->priv = q;
	ret = qcow2_open_priv(img, q);
	if (ret < 0)
		qcow2_close(img);
	return ret;
}

/* ---- block status ---------------------------------------------------- */

/* One run of guest space with a single state: a cluster, a run of alike
 * subclusters, or a whole unallocated L1 range. */
struct unit {
	enum img_ext_kind kind;
	unsigned flags;
	uint64_t host;   /* host offset of the byte asked for */
	uint64_t clen;
	uint64_t end;    /* guest offset where the run ends */
};

static int get_l2_table(struct img *img, struct img_qcow2 *q, uint64_t off)
{
	int ret;

	if (q->l2 && q->l2_offset == off)
		return 0;
	q->l2 = NULL;   /* a failed fetch may reuse the slot it points to */
	ret = img_tcache_get(img, q->l2_cache, "L2 table", off, &q->l2);
	if (ret < 0)
		q->l2 = NULL;
	else
		q->l2_offset = off;
	return ret;
}

static int bad_entry(struct img *img, uint64_t off, uint64_t entry,
		     const char *problem)
{
	return img_error(img, IMG_E_CORRUPT,
			 "L2 entry 0x%016llx for guest offset 0x%llx: %s",
			 (unsigned long long)entry, (unsigned long long)off,
			 problem);
}

static int compressed_unit(struct img *img, const struct img_qcow2 *q,
			   uint64_t off, uint64_t entry, struct unit *u)
{
	unsigned shift = 62 - (q->h.cluster_bits - 8);
	uint64_t coffset = entry & ((1ull << shift) - 1);
	uint64_t nsect = (entry >> shift) & ((1ull << (q->h.cluster_bits - 8)) - 1);

	if (q->has_data_file)
		return bad_entry(img, off, entry,
				 "compressed cluster in an image with an external data file");
	u->kind = IMG_EXT_DATA;
	u->flags = IMG_EXT_F_COMPRESSED;
	u->host = coffset;
	u->clen = (nsect + 1) * 512 - (coffset & 511);
	return 0;
}

/* A run backed by a host cluster (data, preallocated zeros, or with
 * subclusters: unallocated space inside an allocated cluster). */
static int allocated_unit(struct img *img, const struct img_qcow2 *q,
			  uint64_t off, uint64_t entry, enum img_ext_kind kind,
			  struct unit *u)
{
	uint64_t host = entry & QCOW2_OFFSET_MASK;

	if (host & (q->cluster_size - 1))
		return bad_entry(img, off, entry,
				 "host offset not cluster aligned");
	u->kind = kind;
	u->host = host + (off & (q->cluster_size - 1));
	/* qemu-img map shows no offset for encrypted data. */
	if (!img->encrypted)
		u->flags = IMG_EXT_F_OFFSET;
	else
		u->flags = kind == IMG_EXT_DATA ? IMG_EXT_F_ENCRYPTED : 0;
	return 0;
}

/* Offset 0 means unallocated, except that with an external data file 0 is
 * a real offset, told apart by the COPIED flag. */
static int entry_unallocated(const struct img_qcow2 *q, uint64_t entry)
{
	return !(entry & QCOW2_OFFSET_MASK) &&
	       !(q->has_data_file && (entry & QCOW2_OFLAG_COPIED));
}

static int standard_unit(struct img *img, const struct img_qcow2 *q,
			 uint64_t off, uint64_t entry, struct unit *u)
{
	if (entry & QCOW2_L2_RESERVED)
		return bad_entry(img, off, entry, "reserved bits set");
	if (entry & QCOW2_OFLAG_ZERO) {
		/* QEMU fails reads of such clusters with EIO, so do we. */
		if (q->h.version < 3)
			return bad_entry(img, off, entry,
					 "zero flag in a version 2 image");
		if (!(entry & QCOW2_OFFSET_MASK)) {
			u->kind = IMG_EXT_ZERO;
			return 0;
		}
		return allocated_unit(img, q, off, entry, IMG_EXT_ZERO, u);
	}
	if (entry_unallocated(q, entry)) {
		u->kind = IMG_EXT_UNALLOC;
		return 0;
	}
	return allocated_unit(img, q, off, entry, IMG_EXT_DATA, u);
}

/* Extended L2: the state of subcluster sc, and how far it repeats. */
static int subcluster_unit(struct img *img, const struct img_qcow2 *q,
			   uint64_t off, uint64_t entry, uint64_t bitmap,
			   struct unit *u)
{
	uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
	unsigned sc_bits = q->h.cluster_bits - 5;
	unsigned sc = (off >> sc_bits) & (QCOW2_SUBCLUSTERS - 1), next = sc + 1;
	uint64_t cluster = off & ~(q->cluster_size - 1);
	int is_zero = zero >> sc & 1, is_alloc = alloc >> sc & 1;

	if (entry & QCOW2_L2_RESERVED_EXT)
		return bad_entry(img, off, entry, "reserved bits set");
	while (next < QCOW2_SUBCLUSTERS && (int)(zero >> next & 1) == is_zero &&
	       (int)(alloc >> next & 1) == is_alloc)
		next++;
	u->end = cluster + ((uint64_t)next << sc_bits);
	if (entry_unallocated(q, entry)) {
		if (alloc)
			return bad_entry(img, off, entry,
					 "allocated subclusters in an unallocated cluster");
		u->kind = is_zero ? IMG_EXT_ZERO : IMG_EXT_UNALLOC;
		return 0;
	}
	if (alloc & zero)
		return bad_entry(img, off, entry,
				 "subcluster both allocated and zero");
	return allocated_unit(img, q, off, entry,
			      is_zero ? IMG_EXT_ZERO :
			      is_alloc ? IMG_EXT_DATA : IMG_EXT_UNALLOC, u);
}

static int l2_unit(struct img *img, struct img_qcow2 *q, uint64_t off,
		   struct unit *u)
{
	size_t idx = (off >> q->h.cluster_bits) & ((1u << q->l2_bits) - 1);
	const uint8_t *e = q->l2 + idx * q->entry_len;
	uint64_t entry = get_be64(e);
	uint64_t bitmap = q->extended_l2 ? get_be64(e + 8) : 0;

	u->end = (off & ~(q->cluster_size - 1)) + q->cluster_size;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		if (bitmap)
			return bad_entry(img, off, entry,
					 "compressed cluster with a subcluster bitmap");
		return compressed_unit(img, q, off, entry, u);
	}
	if (q->extended_l2)
		return subcluster_unit(img, q, off, entry, bitmap, u);
	return standard_unit(img, q, off, entry, u);
}

static int describe(struct img *img, struct img_qcow2 *q, uint64_t off,
		    struct unit *u)
{
	unsigned l1_shift = q->h.cluster_bits + q->l2_bits;
	uint64_t l1_index = off >> l1_shift, l1e, l2_offset;
	int ret;

	memset(u, 0, sizeof(*u));
	u->kind = IMG_EXT_UNALLOC;
	if (l1_index >= q->h.l1_size) {
		u->end = UINT64_MAX;
		return 0;
	}
	l1e = q->l1[l1_index];
	if (l1e & QCOW2_L1_RESERVED)
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry %llu (0x%016llx): reserved bits set",
				 (unsigned long long)l1_index,
				 (unsigned long long)l1e);
	l2_offset = l1e & QCOW2_OFFSET_MASK;
	if (!l2_offset) {
		u->end = (l1_index + 1) << l1_shift;
		return 0;
	}
	if (l2_offset & (q->cluster_size - 1))
		return img_error(img, IMG_E_CORRUPT,
				 "L1 entry %llu: L2 table offset 0x%llx not cluster aligned",
				 (unsigned long long)l1_index,
				 (unsigned long long)l2_offset);
	ret = get_l2_table(img, q, l2_offset);
	if (ret < 0)
		return ret;
	return l2_unit(img, q, off, u);
}

static int same_run(const struct unit *a, uint64_t a_start,
		    const struct unit *b, uint64_t b_start)
{
	if (a->kind != b->kind || a->flags != b->flags)
		return 0;
	if (a->flags & (IMG_EXT_F_OFFSET | IMG_EXT_F_ENCRYPTED))
		return b->host == a->host + (b_start - a_start);
	return 1;
}

static int qcow2_block_status(struct img *img, uint64_t off, uint64_t len,
			      struct img_extent *ext)
{
	struct img_qcow2 *q = img->priv;
	uint64_t limit = off + len, end;
	struct unit u, next;
	int ret;

	if (q->has_data_file && img->data_io == img->io) {
		ret = open_data_file(img);
		if (ret < 0)
			return ret;
	}
	ret = describe(img, q, off, &u);
	if (ret < 0)
		return ret;
	end = u.end < limit ? u.end : limit;
	/* A compressed extent is exactly one cluster's part. Other runs grow
	 * while they stay alike; a unit that fails to decode ends the run and
	 * is reported when asked for on its own. */
	while (!(u.flags & IMG_EXT_F_COMPRESSED) && end < limit &&
	       describe(img, q, end, &next) == 0 &&
	       same_run(&u, off, &next, end))
		end = next.end < limit ? next.end : limit;

	ext->start = off;
	ext->length = end - off;
	ext->kind = u.kind;
	ext->flags = u.flags;
	if (!q->prealloc_checked) {
		q->metadata_prealloc = detect_metadata_prealloc(img, q);
		q->prealloc_checked = 1;
	}
	/* Host holes then read as zeros in map (map.c asks the host file). */
	if (q->metadata_prealloc && u.kind == IMG_EXT_DATA &&
	    (u.flags & IMG_EXT_F_OFFSET))
		ext->flags |= IMG_EXT_F_RECURSE;
	ext->host = u.host;
	ext->clen = u.clen;
	return 0;
}

/* ---- table walker --------------------------------------------------- */

/* The walker's view of one stored L2 entry: the cluster as a whole (a
 * checker counts clusters; subclusters only matter to block status). */
static void walk_decode(struct img *img, const uint8_t *raw,
			struct img_walk_entry *e)
{
	const struct img_qcow2 *q = img->priv;
	uint64_t entry = get_be64(raw);
	uint64_t bitmap = q->extended_l2 ? get_be64(raw + 8) : 0;
	int zero_flag = !q->extended_l2 && (entry & QCOW2_OFLAG_ZERO);
	struct img_extent *x = &e->ext;

	x->flags = 0;
	x->host = 0;
	x->clen = 0;
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		unsigned shift = 62 - (q->h.cluster_bits - 8);
		uint64_t nsect = (entry >> shift) &
				 ((1ull << (q->h.cluster_bits - 8)) - 1);

		x->kind = IMG_EXT_DATA;
		x->flags = IMG_EXT_F_COMPRESSED;
		x->host = entry & ((1ull << shift) - 1);
		x->clen = (nsect + 1) * 512 - (x->host & 511);
		if (q->has_data_file)
			e->problem = "compressed cluster in an image with an external data file";
		else if (bitmap)
			e->problem = "compressed cluster with a subcluster bitmap";
		else if (entry & QCOW2_OFLAG_COPIED)
			e->problem = "copied flag set on a compressed cluster";
		return;
	}
	if (entry & (q->extended_l2 ? QCOW2_L2_RESERVED_EXT : QCOW2_L2_RESERVED))
		e->problem = "reserved bits set";
	else if (zero_flag && q->h.version < 3)
		e->problem = "zero flag in a version 2 image";
	if (entry_unallocated(q, entry)) {
		x->kind = zero_flag || (bitmap >> 32) ? IMG_EXT_ZERO
						      : IMG_EXT_UNALLOC;
		if ((uint32_t)bitmap && !e->problem)
			e->problem = "allocated subclusters in an unallocated cluster";
		return;
	}
	x->kind = zero_flag ? IMG_EXT_ZERO : IMG_EXT_DATA;
	x->host = entry & QCOW2_OFFSET_MASK;
	if (!img->encrypted)
		x->flags = IMG_EXT_F_OFFSET;
	else if (x->kind == IMG_EXT_DATA)
		x->flags = IMG_EXT_F_ENCRYPTED;
	if ((x->host & (q->cluster_size - 1)) && !e->problem)
		e->problem = "host offset not cluster aligned";
}

static int qcow2_walk_layout(struct img *img, struct img_walk_layout *lay)
{
	const struct img_qcow2 *q = img->priv;

	*lay = (struct img_walk_layout){
		.l1 = q->l1,
		.l1_entries = q->h.l1_size,
		.l1_offset_mask = QCOW2_OFFSET_MASK,
		.l2_bytes = q->cluster_size,
		.entry_bytes = q->entry_len,
		.cluster_size = q->cluster_size,
		.table_align = q->cluster_size,
		.min_offset = q->cluster_size,   /* cluster 0 is the header */
		.decode = walk_decode,
	};
	return 0;
}

const struct img_driver img_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.block_status = qcow2_block_status,
	.walk_layout = qcow2_walk_layout,
};
