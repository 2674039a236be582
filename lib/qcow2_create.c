/* qcow2_create.c: writing a new qcow2 image (header, refcounts, L1, optional preallocated L2 and data) the way qemu-img create lays it out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endian.h"
#include "imgint.h"
#include "opts.h"
#include "qcow2.h"

/* A stream's image gets an L1 table of this many entries (1 MiB), cut
 * to the size at the end: 64 TiB with 64 KiB clusters, 4 GiB with 512. */
#define STREAM_L1_ENTRIES 131072u

static const char *const compression_types[] = { "zlib", "zstd", NULL };
static const char *const compat_levels[] = { "0.10", "1.1", "v2", "v3", NULL };
static const char *const prealloc_modes[] = {
	"off", "metadata", "falloc", "full", NULL
};

/* In the order of qemu-img's "Formatting" line. */
const struct img_opt_desc img_qcow2_create_opts[] = {
	{ "cluster_size", IMG_OPT_SIZE, "qcow2 cluster size", NULL, "65536", 1 },
	{ "extended_l2", IMG_OPT_BOOL, "extended L2 tables (32 subclusters)",
	  NULL, "off", 1 },
	{ "preallocation", IMG_OPT_STR,
	  "off, metadata (L2 tables and data clusters), falloc or full",
	  prealloc_modes, "off", 0 },
	{ "compression_type", IMG_OPT_STR, "compression for compressed clusters",
	  compression_types, "zlib", 1 },
	{ "size", IMG_OPT_SIZE, "virtual disk size", NULL, NULL, 1 },
	{ "compat", IMG_OPT_STR, "qcow2 version: 0.10 (v2) or 1.1 (v3)",
	  compat_levels, "1.1", 0 },
	{ "backing_file", IMG_OPT_STR, "file name of a base image", NULL, NULL, 0 },
	{ "backing_fmt", IMG_OPT_STR, "image format of the base image", NULL,
	  NULL, 0 },
	{ "data_file", IMG_OPT_STR, "file name of an external data file", NULL,
	  NULL, 0 },
	{ "data_file_raw", IMG_OPT_BOOL,
	  "the external data file is a valid raw image by itself", NULL, "off", 0 },
	{ "lazy_refcounts", IMG_OPT_BOOL, "postpone refcount updates", NULL,
	  "off", 1 },
	{ "refcount_bits", IMG_OPT_NUM, "width of a refcount entry", NULL, "16",
	  1 },
	{ NULL, 0, NULL, NULL, NULL, 0 },
};

/* Everything the layout and the header need, decided from the options. */
struct q2c {
	unsigned version, cluster_bits, refcount_order;
	uint64_t cs, size;
	int extl2, lazy, zstd, data_raw;
	const char *prealloc, *backing, *backing_fmt, *data_file;
	/* Layout, in clusters except where noted. */
	uint64_t l2_entries, l1_size, l1_clusters, guest_clusters;
	uint64_t reftable_clusters, refblocks, prealloc_clusters, total;
	uint64_t reftable_off, refblock_off, l1_off, meta_end, file_end;
};

/* log2 of a power of two, -1 for anything else. */
static int log2_exact(uint64_t v)
{
	return img_is_pow2(v) ? (int)img_log2(v) : -1;
}

static int is_v2(const struct img_opts *o)
{
	const char *c = img_opt_str(o, "compat");

	return !strcmp(c, "0.10") || !strcmp(c, "v2");
}

/* The v3-only features, with the words of qemu-img's refusals. */
static int check_v3_only(struct img *img, const struct q2c *c)
{
	const char *what = NULL;

	if (c->lazy)
		what = "lazy refcounts";
	else if (c->refcount_order != 4)
		what = "refcount widths other than 16 bits";
	else if (c->data_file)
		what = "external data files";
	else if (c->extl2)
		what = "extended L2 entries";
	else if (c->zstd)
		what = "compression types other than zlib";
	if (!what)
		return 0;
	return img_error(img, -EINVAL,
			 "%s need compatibility level 1.1 (compat=1.1 or v3)",
			 what);
}

static int read_options(struct img *img, const struct img_opts *o,
			struct q2c *c)
{
	uint64_t cs = img_opt_num(o, "cluster_size");
	uint64_t bits = img_opt_num(o, "refcount_bits");
	int cb = log2_exact(cs), rb = log2_exact(bits);

	memset(c, 0, sizeof(*c));
	if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS)
		return img_error(img, -EINVAL,
				 "cluster size %llu is not a power of two between 512 and 2M",
				 (unsigned long long)cs);
	if (rb < 0 || rb > 6)
		return img_error(img, -EINVAL,
				 "refcount width %llu is not a power of two between 1 and 64",
				 (unsigned long long)bits);
	c->cs = cs;
	c->cluster_bits = (unsigned)cb;
	c->refcount_order = (unsigned)rb;
	c->size = img->size;
	c->version = is_v2(o) ? 2 : 3;
	c->extl2 = !!img_opt_num(o, "extended_l2");
	c->lazy = !!img_opt_num(o, "lazy_refcounts");
	c->zstd = !strcmp(img_opt_str(o, "compression_type"), "zstd");
	c->data_raw = !!img_opt_num(o, "data_file_raw");
	c->prealloc = img_opt_str(o, "preallocation");
	/* A raw data file must read as the disk: map every cluster to it */
	if (c->data_raw && !strcmp(c->prealloc, "off"))
		c->prealloc = "metadata";
	c->backing = img_opt_str(o, "backing_file");
	c->backing_fmt = img_opt_str(o, "backing_fmt");
	c->data_file = img_opt_str(o, "data_file");
	if (c->version == 2 && check_v3_only(img, c) < 0)
		return -EINVAL;
	if (c->extl2 && cs < 16384)
		return img_error(img, -EINVAL,
				 "extended L2 entries need a cluster size of at least 16k");
	if (c->data_raw && !c->data_file)
		return img_error(img, -EINVAL, "data_file_raw needs data_file");
	if (c->backing && strcmp(c->prealloc, "off") && !c->extl2)
		return img_error(img, -EINVAL,
				 "a backing file with preallocation needs extended_l2=on");
	if (c->backing && strlen(c->backing) > QCOW2_MAX_BACKING_NAME)
		return img_error(img, -EINVAL, "backing file name too long");
	if (c->backing_fmt && strlen(c->backing_fmt) > QCOW2_MAX_BACKING_FMT)
		return img_error(img, -EINVAL, "backing format name too long");
	return 0;
}

/*
 * Header, reftable, refblocks, L1, then (preallocated) each L2 table
 * followed by its data clusters. For small images this is qemu-img's
 * layout exactly; bigger ones get more reftable and refblock clusters in
 * place, enough to cover every cluster of the file.
 */
static int plan_layout(struct img *img, struct q2c *c)
{
	uint64_t per_block = c->cs * 8 >> c->refcount_order, span, l2_tables;
	uint64_t data = 0;

	c->l2_entries = c->cs / (c->extl2 ? 16 : 8);
	span = c->cs * c->l2_entries;
	c->l1_size = img_div_up(c->size, span);
	if (c->l1_size > QCOW2_MAX_L1_BYTES / 8)
		return img_error(img, IMG_E_TOOBIG,
				 "image size too large for cluster size %llu (try a larger cluster size)",
				 (unsigned long long)c->cs);
	c->l1_clusters = img_div_up(c->l1_size * 8, c->cs);
	c->guest_clusters = img_div_up(c->size, c->cs);
	l2_tables = strcmp(c->prealloc, "off") ? c->l1_size : 0;
	if (l2_tables && !c->data_file)
		data = c->guest_clusters;
	c->prealloc_clusters = l2_tables + data;
	c->reftable_clusters = c->refblocks = 1;
	for (;;) {   /* grows until the refcounts cover themselves too */
		uint64_t blocks, table;

		c->total = 1 + c->reftable_clusters + c->refblocks +
			   c->l1_clusters + c->prealloc_clusters;
		blocks = img_div_up(c->total, per_block);
		table = img_div_up(blocks * 8, c->cs);
		if (blocks == c->refblocks && table == c->reftable_clusters)
			break;
		c->refblocks = blocks;
		c->reftable_clusters = table;
	}
	if (c->reftable_clusters * c->cs > QCOW2_MAX_REFTABLE_BYTES)
		return img_error(img, IMG_E_TOOBIG, "refcount table too large");
	c->reftable_off = c->cs;
	c->refblock_off = c->reftable_off + c->reftable_clusters * c->cs;
	c->l1_off = c->l1_size ? c->refblock_off + c->refblocks * c->cs : 0;
	c->meta_end = c->refblock_off + c->refblocks * c->cs + c->l1_size * 8;
	c->file_end = l2_tables ? c->total * c->cs : c->meta_end;
	return 0;
}

/* Append one header extension at *pos; false when it does not fit. */
static int put_ext(uint8_t *buf, size_t cs, size_t *pos, uint32_t type,
		   const void *data, size_t len)
{
	size_t padded = (len + 7) & ~(size_t)7;

	if (*pos + 8 + padded > cs)
		return 0;
	put_be32(buf + *pos, type);
	put_be32(buf + *pos + 4, (uint32_t)len);
	if (len)
		memcpy(buf + *pos + 8, data, len);
	*pos += 8 + padded;
	return 1;
}

static const struct { uint8_t type, bit; const char *name; } feature_names[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};

#define FEATURE_ENTRY 48
#define N_FEATURES (sizeof(feature_names) / sizeof(feature_names[0]))

static int put_feature_table(uint8_t *buf, size_t cs, size_t *pos)
{
	uint8_t table[N_FEATURES * FEATURE_ENTRY];

	memset(table, 0, sizeof(table));
	for (size_t i = 0; i < N_FEATURES; i++) {
		uint8_t *e = table + i * FEATURE_ENTRY;

		e[0] = feature_names[i].type;
		e[1] = feature_names[i].bit;
		memcpy(e + 2, feature_names[i].name, strlen(feature_names[i].name));
	}
	return put_ext(buf, cs, pos, QCOW2_EXT_FEATURES, table, sizeof(table));
}

static void put_fixed_header(uint8_t *h, const struct q2c *c)
{
	uint64_t incompat = 0, autoclear = 0;

	put_be32(h, QCOW2_MAGIC);
	put_be32(h + 4, c->version);
	put_be32(h + 20, c->cluster_bits);
	put_be64(h + 24, c->size);
	put_be32(h + 36, (uint32_t)c->l1_size);
	put_be64(h + 40, c->l1_off);
	put_be64(h + 48, c->reftable_off);
	put_be32(h + 56, (uint32_t)c->reftable_clusters);
	if (c->version == 2)
		return;
	if (c->data_file)
		incompat |= QCOW2_INCOMPAT_DATA_FILE;
	if (c->zstd)
		incompat |= QCOW2_INCOMPAT_COMPRESSION;
	if (c->extl2)
		incompat |= QCOW2_INCOMPAT_EXTL2;
	if (c->data_raw)
		autoclear |= QCOW2_AUTOCLEAR_DATA_RAW;
	put_be64(h + 72, incompat);
	put_be64(h + 80, c->lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
	put_be64(h + 88, autoclear);
	put_be32(h + 96, c->refcount_order);
	put_be32(h + 100, 112);
	h[104] = c->zstd ? 1 : 0;
}

/* Cluster 0: header, extensions, end marker, backing file name. */
static int write_header(struct img *img, const struct q2c *c)
{
	size_t cs = (size_t)c->cs, pos = c->version == 2 ? 72 : 112;
	size_t blen = c->backing ? strlen(c->backing) : 0;
	uint8_t *h = calloc(1, cs);
	int fits = 1, ret;

	if (!h)
		return img_error(img, -ENOMEM, "out of memory");
	put_fixed_header(h, c);
	if (c->backing_fmt)
		fits = put_ext(h, cs, &pos, QCOW2_EXT_BACKING_FMT, c->backing_fmt,
			       strlen(c->backing_fmt));
	if (fits && c->data_file)
		fits = put_ext(h, cs, &pos, QCOW2_EXT_DATA_FILE, c->data_file,
			       strlen(c->data_file));
	if (fits && c->version == 3 && cs > 4096)
		fits = put_feature_table(h, cs, &pos);
	fits = fits && put_ext(h, cs, &pos, QCOW2_EXT_END, NULL, 0) &&
	       pos + blen <= cs;
	if (fits && c->backing) {
		memcpy(h + pos, c->backing, blen);
		put_be64(h + 8, pos);
		put_be32(h + 16, (uint32_t)blen);
	}
	ret = fits ? img_io_pwrite(img->io, h, cs, 0) : 0;
	free(h);
	if (!fits)
		return img_error(img, -EINVAL,
				 "the header and file names do not fit in a %zu-byte cluster",
				 cs);
	if (ret < 0)
		return img_error(img, ret, "cannot write the header: %s",
				 img_strerror(ret));
	return 0;
}

/* Refcount 1 for entry i of a refblock with 2^order-bit entries. */
static void set_refcount_one(uint8_t *block, uint64_t i, unsigned order)
{
	uint64_t bit = i << order;

	if (order < 3)   /* sub-byte entries fill each byte from its LSB */
		block[bit / 8] |= (uint8_t)(1u << (bit % 8));
	else             /* whole-byte entries are big-endian */
		block[(bit + (1u << order)) / 8 - 1] = 1;
}

/* The reftable and refblocks: every cluster of the file is used once. */
static int write_refcounts(struct img *img, const struct q2c *c)
{
	uint64_t per_block = c->cs * 8 >> c->refcount_order, cl = 0;
	size_t tlen = (size_t)(c->reftable_clusters * c->cs);
	uint8_t *table = calloc(1, tlen), *block = malloc(c->cs);
	int ret = table && block ? 0 : -ENOMEM;

	for (uint64_t b = 0; ret == 0 && b < c->refblocks; b++) {
		uint64_t off = c->refblock_off + b * c->cs;

		memset(block, 0, c->cs);
		for (uint64_t i = 0; i < per_block && cl < c->total; i++, cl++)
			set_refcount_one(block, i, c->refcount_order);
		put_be64(table + b * 8, off);
		ret = img_io_pwrite(img->io, block, c->cs, off);
	}
	if (ret == 0)
		ret = img_io_pwrite(img->io, table, tlen, c->reftable_off);
	free(table);
	free(block);
	if (ret < 0)
		return img_error(img, ret, "cannot write the refcounts: %s",
				 img_strerror(ret));
	return 0;
}

/*
 * Preallocated metadata: each L1 entry gets an L2 table right after the
 * previous table's data clusters (in the data file: at the guest offset),
 * all entries COPIED; extended entries keep an empty subcluster bitmap.
 */
static int write_tables(struct img *img, const struct q2c *c)
{
	unsigned esize = c->extl2 ? 16 : 8;
	uint64_t pos = c->l1_off + c->l1_clusters * c->cs, guest = 0;
	uint8_t *l1 = calloc(1, c->l1_size * 8), *l2 = malloc(c->cs);
	int ret = l1 && l2 ? 0 : -ENOMEM;

	for (uint64_t i = 0; ret == 0 && i < c->l1_size; i++) {
		uint64_t l2_off = pos;

		memset(l2, 0, c->cs);
		pos += c->cs;
		for (uint64_t j = 0; j < c->l2_entries && guest < c->guest_clusters;
		     j++, guest++) {
			uint64_t host = c->data_file ? guest * c->cs : pos;

			put_be64(l2 + j * esize, host | QCOW2_OFLAG_COPIED);
			if (!c->data_file)
				pos += c->cs;
		}
		put_be64(l1 + i * 8, l2_off | QCOW2_OFLAG_COPIED);
		ret = img_io_pwrite(img->io, l2, c->cs, l2_off);
	}
	if (ret == 0)
		ret = img_io_pwrite(img->io, l1, c->l1_size * 8, c->l1_off);
	free(l1);
	free(l2);
	if (ret < 0)
		return img_error(img, ret, "cannot write the L1/L2 tables: %s",
				 img_strerror(ret));
	return 0;
}

/* The raw data file, sized to the disk (not created atomically). */
static int create_data_file(struct img *img, const struct q2c *c,
			    const char *mode)
{
	char *path = img_path_beside(img->path, c->data_file);
	struct img_io *image_io = img->io, *dio = NULL;
	int fd, ret;

	if (!path)
		return img_error(img, -ENOMEM, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	ret = fd < 0 ? -errno : img_io_from_fd(&dio, fd, 0);
	if (ret < 0) {
		if (fd >= 0)
			close(fd);
		img_error(img, ret, "cannot create data file '%s': %s", path,
			  img_strerror(ret));
		free(path);
		return ret;
	}
	free(path);
	img->io = dio;   /* img_preallocate works on img->io */
	ret = img_preallocate(img, 0, c->size, mode);
	img->io = image_io;
	img_io_close(dio);
	return ret;
}

int img_qcow2_create(struct img *img, const struct img_opts *o)
{
	struct q2c c;
	const char *data_mode;
	int ret;

	ret = read_options(img, o, &c);
	if (ret == 0)
		ret = plan_layout(img, &c);
	if (ret < 0)
		return ret;
	/* metadata alone leaves the data sparse; falloc/full fill it */
	data_mode = strcmp(c.prealloc, "metadata") ? c.prealloc : "off";
	if (c.data_file)
		ret = create_data_file(img, &c, data_mode);
	else
		ret = img_preallocate(img, c.meta_end, c.file_end, data_mode);
	if (ret == 0)
		ret = img_io_truncate(img->io, c.file_end);
	if (ret == 0)
		ret = write_header(img, &c);
	if (ret == 0)
		ret = write_refcounts(img, &c);
	if (ret == 0 && c.l1_size && strcmp(c.prealloc, "off"))
		ret = write_tables(img, &c);
	return ret;
}

uint64_t img_qcow2_stream_size(const struct img_opts *o)
{
	uint64_t cs = img_opt_num(o, "cluster_size");
	uint64_t entries = cs / (img_opt_num(o, "extended_l2") ? 16 : 8);
	const char *prealloc = img_opt_str(o, "preallocation");
	const char *data_file = img_opt_str(o, "data_file");

	if ((prealloc && strcmp(prealloc, "off")) || (data_file && *data_file) ||
	    cs < 512 || cs > (2u << 20))
		return 0;
	return cs * entries * STREAM_L1_ENTRIES;
}
