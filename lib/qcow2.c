/* qcow2.c: qcow2 (v2 and v3) driver: probe, header and extension validation, open and close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "imgint.h"
#include "lock.h"
#include "qcow2.h"
#include "walk.h"
#include "tcache.h"

#define L2_CACHE_SLOTS 16

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
	/* As QEMU, a check opens it (and -r all rebuilds the table). */
	if (h->reftable_clusters == 0 && !img->checking)
		return img_error(img, IMG_E_CORRUPT,
				 "no refcount table (0 clusters)");
	ret = check_table(img, q, "refcount table", h->reftable_offset,
			  entries, 8, QCOW2_MAX_REFTABLE_BYTES);
	if (ret < 0)
		return ret;
	/* QEMU reads past the end as zeros: readers do not need it, img-check
	 * reports it, writers (which would build on it) refuse. */
	if (h->reftable_offset + entries * 8 > img->file_size && img->writable &&
	    !img->checking)
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
		/* Described by img-info; reading data is refused in image.c. */
		img->encrypted = 2;
		return 0;
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
		/* Only meaningful with LUKS (whose data we do not read). */
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
		pos += 8 + img_qcow2_align8(len);
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

int img_qcow2_open_data_file(struct img *img)
{
	return img_open_data_io(img, "data file",
				img->no_writers ? IMG_LOCK_COPY : IMG_LOCK_READ,
				IMG_LOCK_DATA);
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
	if (img->checking) {
		/* past end of file reads as zeros; the check reports it */
		ret = img_io_read_zfill(img->io, raw, bytes, q->h.l1_offset);
		if (ret < 0)
			img_error(img, ret, "cannot read L1 table at 0x%llx: %s",
				  (unsigned long long)q->h.l1_offset,
				  img_strerror(ret));
	} else {
		ret = img_read_meta(img, "L1 table", raw, bytes,
				    q->h.l1_offset);
	}
	for (uint32_t i = 0; ret == 0 && i < q->h.l1_size; i++)
		q->l1[i] = get_be64(raw + 8 * (size_t)i);
	free(raw);
	return ret;
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

/* The snapshot table and bitmap directory; opened for img-check, their
 * problems are left for the check to report. */
static int read_tables_for_check(struct img *img, struct img_qcow2 *q)
{
	int ret = img_qcow2_read_snapshots(img, q);

	/* qcow2_check.c reads the snapshot table again, its own way */
	if (ret < 0 && img->checking && ret != -ENOMEM) {
		img->err = 0;
		img->errmsg[0] = 0;
		ret = 0;
	}
	if (ret < 0)
		return ret;
	ret = img_qcow2_read_bitmaps(img, q);
	if (ret < 0 && img->checking && ret != -ENOMEM) {
		img->err = 0;
		img->errmsg[0] = 0;
		ret = 0;
	}
	return ret;
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
	    (ret = read_tables_for_check(img, q)) < 0)
		return ret;
	q->l2_cache = img_tcache_new(q->cluster_size, L2_CACHE_SLOTS);
	if (!q->l2_cache)
		return img_error(img, -ENOMEM, "cannot allocate L2 cache");
	/* QEMU reads an L2 table past the end of the file as zeros (guest
	 * data unallocated there); so do readers. img-check reports it, and
	 * writers, which would build on it, still refuse. */
	if (!img->writable)
		img_tcache_past_eof_zeros(q->l2_cache);
	set_props(img, q);
	/* img-check (qcow2_check.c) starts from q->h and q->l1 and reads
	 * the rest itself. */
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
const struct img_driver img_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.block_status = img_qcow2_block_status,
	.walk_layout = img_qcow2_walk_layout,
	.create_opts = img_qcow2_create_opts,
	.create = img_qcow2_create,
	.writer = &img_qcow2_writer,
	.check = img_qcow2_check,
	.compact = img_qcow2_compact,
	.demote = img_qcow2_demote,
};
