/* qcow_write.c: the qcow (version 1) sequential cluster writer: append-only allocation, one L2 table in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "copy.h"
#include "imgint.h"
#include "qcow.h"
#include "tcache.h"
#include "writer.h"

/* Clusters planned at once; a conversion's calls (2 MiB, or one cluster
 * when clusters are bigger) fit, so each gets its new clusters in one
 * write. */
#define PIECE_CLUSTERS 4096

#define NO_TABLE UINT64_MAX

struct qcow_wstate {
	struct qcow *q;
	unsigned cbits, shift;		/* cluster bits; bits one L2 table maps */
	uint64_t cs;
	uint64_t start_size;		/* file length at begin */
	uint64_t end;			/* first free byte, not rounded */
	int has_backing;

	/* The one L2 table in memory: entries big-endian, as stored. */
	uint64_t cur;			/* its L1 index, or NO_TABLE */
	uint64_t cur_off;		/* its host offset; 0: new, not placed */
	int cur_dirty;
	uint8_t *l2;

	uint64_t *host;			/* per cluster of a piece: where it goes */
};

static uint64_t round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

/* Take n bytes at the end of the file, starting on a cluster boundary. */
static uint64_t alloc_clusters(struct qcow_wstate *s, uint64_t n)
{
	uint64_t off = round_up(s->end, s->cs);

	s->end = off + n;
	return off;
}

static int write_l1_entry(struct img *img, struct qcow_wstate *s, uint64_t t)
{
	uint64_t off = s->q->h.l1_table_offset + t * 8;
	uint8_t be[8];
	int ret;

	put_be64(be, s->q->l1[t]);
	ret = img_io_pwrite(img->io, be, sizeof(be), off);
	if (ret < 0)
		return img_error(img, ret, "cannot write L1 table at 0x%llx: %s",
				 (unsigned long long)off, img_strerror(ret));
	return 0;
}

/* Write the table in memory back if it changed; a new one is placed at
 * the end of the file first and then entered in the L1 table. */
static int put_table(struct img *img, struct qcow_wstate *s)
{
	struct qcow *q = s->q;
	int fresh = s->cur_off == 0, ret;

	if (s->cur == NO_TABLE || !s->cur_dirty)
		return 0;
	if (fresh)
		s->cur_off = alloc_clusters(s, q->l2_bytes);
	ret = img_io_pwrite(img->io, s->l2, q->l2_bytes, s->cur_off);
	if (ret < 0)
		return img_error(img, ret, "cannot write L2 table at 0x%llx: %s",
				 (unsigned long long)s->cur_off,
				 img_strerror(ret));
	img_tcache_drop(q->l2_cache, s->cur_off);
	s->cur_dirty = 0;
	if (!fresh)
		return 0;
	q->l1[s->cur] = s->cur_off;
	return write_l1_entry(img, s, s->cur);
}

/* Make table t the one in memory. */
static int get_table(struct img *img, struct qcow_wstate *s, uint64_t t)
{
	struct qcow *q = s->q;
	int ret;

	if (t == s->cur)
		return 0;
	if (t >= q->l1_size)
		return img_error(img, -EINVAL,
				 "guest offset 0x%llx beyond the L1 table",
				 (unsigned long long)(t << s->shift));
	ret = put_table(img, s);
	if (ret < 0)
		return ret;
	s->cur = NO_TABLE;
	if (q->l1[t]) {
		ret = img_read_meta(img, "L2 table", s->l2, q->l2_bytes,
				    q->l1[t]);
		if (ret < 0)
			return ret;
	} else {
		memset(s->l2, 0, q->l2_bytes);
	}
	s->cur = t;
	s->cur_off = q->l1[t];
	s->cur_dirty = 0;
	return 0;
}

static uint64_t table_of(const struct qcow_wstate *s, uint64_t g)
{
	return g >> s->shift;
}

static uint8_t *entry_at(const struct qcow_wstate *s, uint64_t g)
{
	uint64_t mask = (1ULL << (s->shift - s->cbits)) - 1;

	return s->l2 + ((g >> s->cbits) & mask) * 8;
}

static void set_entry(struct qcow_wstate *s, uint64_t g, uint64_t v)
{
	uint8_t *e = entry_at(s, g);

	if (get_be64(e) != v) {
		put_be64(e, v);
		s->cur_dirty = 1;
	}
}

/* Clusters from g on (at most n) that lie in g's L2 table. */
static uint64_t in_table(const struct qcow_wstate *s, uint64_t g, uint64_t n)
{
	uint64_t left = ((table_of(s, g) + 1) << s->shift) - g;

	return img_min_u64(n, left >> s->cbits);
}

/* The host cluster of an existing entry that may be overwritten in
 * place, 0 if the cluster needs new space. */
static int reusable(struct img *img, struct qcow_wstate *s, uint64_t g,
		    uint64_t *host)
{
	uint64_t e = get_be64(entry_at(s, g));

	*host = 0;
	if (!e || (e & IMG_QCOW_COMPRESSED))
		return 0;
	if (e & 511)
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: data offset 0x%llx not 512-byte aligned",
				 (unsigned long long)g, (unsigned long long)e);
	if (e > s->start_size || s->start_size - e < s->cs)
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: cluster at 0x%llx runs past end of file",
				 (unsigned long long)g, (unsigned long long)e);
	*host = e;
	return 0;
}

/* Pass 1: where each of the n clusters at off is now (0: needs space). */
static int find_hosts(struct img *img, struct qcow_wstate *s, uint64_t off,
		      uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t g = off + i * s->cs, t = table_of(s, g);
		uint64_t k = in_table(s, g, n - i);
		int ret;

		if (t != s->cur && t < s->q->l1_size && !s->q->l1[t]) {
			memset(s->host + i, 0, k * sizeof(*s->host));
			i += k;
			continue;
		}
		ret = get_table(img, s, t);
		for (uint64_t j = 0; ret == 0 && j < k; j++)
			ret = reusable(img, s, g + j * s->cs, &s->host[i + j]);
		if (ret < 0)
			return ret;
		i += k;
	}
	return 0;
}

/* Pass 3: write buf (NULL: zeros) to the planned places, one write per
 * run that is contiguous on both sides. New space needs no zeros: it lies
 * past everything ever written, so it reads as zeros already. */
static int write_runs(struct img *img, struct qcow_wstate *s, uint64_t off,
		      const uint8_t *buf, uint64_t n, uint64_t first_new)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t h = s->host[i], j = i + 1, len;
		int is_new = h >= first_new, ret;

		while (j < n && s->host[j] == h + (j - i) * s->cs &&
		       (s->host[j] >= first_new) == is_new)
			j++;
		len = (j - i) * s->cs;
		if (buf)
			ret = img_write_data(img, img->io, buf + i * s->cs, len, h);
		else
			ret = is_new ? 0 : img_write_zeros(img->io, h, len);
		if (ret < 0)
			return img_error(img, ret,
					 "cannot write guest offset 0x%llx at 0x%llx: %s",
					 (unsigned long long)(off + i * s->cs),
					 (unsigned long long)h, img_strerror(ret));
		i = j;
	}
	return 0;
}

/* Pass 4: enter the clusters in their tables, now that the data is in. */
static int set_hosts(struct img *img, struct qcow_wstate *s, uint64_t off,
		     uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t g = off + i * s->cs;
		uint64_t k = in_table(s, g, n - i);
		int ret = get_table(img, s, table_of(s, g));

		if (ret < 0)
			return ret;
		for (uint64_t j = 0; j < k; j++)
			set_entry(s, g + j * s->cs, s->host[i + j]);
		i += k;
	}
	return 0;
}

/* n (<= PIECE_CLUSTERS) clusters at off get buf's bytes (NULL: zeros):
 * in place where allocated, else in new space at the end, in one run. */
static int fill_piece(struct img *img, struct qcow_wstate *s, uint64_t off,
		      const uint8_t *buf, uint64_t n)
{
	uint64_t nnew = 0, first_new = UINT64_MAX, next;
	int ret;

	ret = find_hosts(img, s, off, n);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < n; i++)
		nnew += !s->host[i];
	if (nnew) {
		first_new = next = alloc_clusters(s, nnew * s->cs);
		for (uint64_t i = 0; i < n; i++)
			if (!s->host[i]) {
				s->host[i] = next;
				next += s->cs;
			}
	}
	ret = write_runs(img, s, off, buf, n, first_new);
	if (ret == 0)
		ret = set_hosts(img, s, off, n);
	return ret;
}

static int fill(struct img *img, uint64_t off, const uint8_t *buf,
		uint64_t len)
{
	struct qcow_wstate *s = img->wstate;
	uint64_t n = len >> s->cbits;

	for (uint64_t i = 0; i < n; i += PIECE_CLUSTERS) {
		uint64_t k = img_min_u64(PIECE_CLUSTERS, n - i);
		int ret = fill_piece(img, s, off + i * s->cs,
				     buf ? buf + i * s->cs : NULL, k);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static int qcow_w_data(struct img *img, uint64_t off, const uint8_t *buf,
		       uint64_t len)
{
	return fill(img, off, buf, len);
}

/* The entry of a compressed stream: flag, length above the offset. */
static uint64_t compressed_entry(unsigned cbits, uint64_t host, size_t zlen)
{
	return IMG_QCOW_COMPRESSED | (uint64_t)zlen << (63 - cbits) | host;
}

static int qcow_w_compressed(struct img *img, uint64_t off, const uint8_t *z,
			     size_t zlen)
{
	struct qcow_wstate *s = img->wstate;
	uint64_t host;
	int ret;

	if (!zlen || zlen >= s->cs)
		return img_error(img, -EINVAL,
				 "compressed cluster at guest offset 0x%llx: %zu bytes do not fit",
				 (unsigned long long)off, zlen);
	ret = get_table(img, s, table_of(s, off));
	if (ret < 0)
		return ret;
	/* Streams go at the very end, byte by byte, as QEMU puts them. */
	host = s->end;
	if (host >> (63 - s->cbits))
		return img_error(img, IMG_E_TOOBIG,
				 "compressed cluster at 0x%llx: offset too large for a qcow entry",
				 (unsigned long long)host);
	ret = img_write_data(img, img->io, z, zlen, host);
	if (ret < 0)
		return img_error(img, ret,
				 "cannot write compressed cluster at 0x%llx: %s",
				 (unsigned long long)host, img_strerror(ret));
	s->end = host + zlen;
	set_entry(s, off, compressed_entry(s->cbits, host, zlen));
	return 0;
}

/* Without a backing file an unallocated cluster reads as zeros. */
static int unallocate(struct img *img, struct qcow_wstate *s, uint64_t off,
		      uint64_t len)
{
	uint64_t n = len >> s->cbits;

	for (uint64_t i = 0; i < n;) {
		uint64_t g = off + i * s->cs, t = table_of(s, g);
		uint64_t k = in_table(s, g, n - i);
		int ret;

		i += k;
		if (t != s->cur && t < s->q->l1_size && !s->q->l1[t])
			continue;	/* no table: nothing allocated */
		ret = get_table(img, s, t);
		if (ret < 0)
			return ret;
		for (uint64_t j = 0; j < k; j++)
			set_entry(s, g + j * s->cs, 0);
	}
	return 0;
}

static int qcow_w_zero(struct img *img, uint64_t off, uint64_t len)
{
	struct qcow_wstate *s = img->wstate;

	/* qcow has no zero flag: over a backing file, store zeros. */
	if (s->has_backing)
		return fill(img, off, NULL, len);
	return unallocate(img, s, off, len);
}

/* Check the existing L2 tables lie inside the file: new space is taken
 * past its end. */
static int check_l1(struct img *img, struct qcow_wstate *s)
{
	const struct qcow *q = s->q;

	for (uint64_t t = 0; t < q->l1_size; t++) {
		uint64_t off = q->l1[t];

		if (!off)
			continue;
		if (off > s->start_size || s->start_size - off < q->l2_bytes)
			return img_error(img, IMG_E_CORRUPT,
					 "L1 entry for guest offset 0x%llx: L2 table at 0x%llx runs past end of file",
					 (unsigned long long)(t << s->shift),
					 (unsigned long long)off);
	}
	return 0;
}

static void qcow_w_end(struct img *img)
{
	struct qcow_wstate *s = img->wstate;

	if (!s)
		return;
	free(s->l2);
	free(s->host);
	free(s);
	img->wstate = NULL;
}

static int qcow_w_begin(struct img *img)
{
	struct qcow *q = img->priv;
	struct qcow_wstate *s;
	int ret;

	if (img->wstate)
		qcow_w_end(img);
	s = calloc(1, sizeof(*s));
	if (!s)
		return img_error(img, -ENOMEM, "cannot allocate qcow writer state");
	img->wstate = s;
	s->q = q;
	s->l2 = malloc(q->l2_bytes);
	s->host = malloc(PIECE_CLUSTERS * sizeof(*s->host));
	if (!s->l2 || !s->host)
		return img_error(img, -ENOMEM, "cannot allocate qcow writer state");
	s->cbits = q->h.cluster_bits;
	s->shift = q->h.cluster_bits + q->h.l2_bits;
	s->cs = 1ULL << s->cbits;
	s->cur = NO_TABLE;
	s->has_backing = img->backing_name != NULL;
	ret = img_io_size(img->io, &s->start_size);
	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	s->end = s->start_size;
	return check_l1(img, s);
}

/* The file must end on a 512-byte boundary past everything allocated
 * (new clusters that were never written included). */
static int set_length(struct img *img, struct qcow_wstate *s)
{
	uint64_t last = s->end > s->start_size ? s->end : s->start_size;
	uint64_t want = round_up(last, 512), size;
	int ret;

	ret = img_io_size(img->io, &size);
	if (ret == 0 && size < want)
		ret = img_io_truncate(img->io, want);
	if (ret < 0)
		return img_error(img, ret, "cannot extend the image to %llu bytes: %s",
				 (unsigned long long)want, img_strerror(ret));
	img->file_size = size < want ? want : size;
	return 0;
}

static int qcow_w_finish(struct img *img)
{
	struct qcow_wstate *s = img->wstate;
	int ret;

	if (!s)
		return img_error(img, -EINVAL, "qcow writer not started");
	ret = put_table(img, s);
	if (ret == 0)
		ret = set_length(img, s);
	/* No dirty bit in qcow: in place, flushing at the end is all. */
	if (ret == 0 && img->write_in_place) {
		ret = img_io_flush(img->io);
		if (ret < 0)
			return img_error(img, ret, "cannot flush: %s",
					 img_strerror(ret));
	}
	return ret;
}

const struct img_writer_ops img_qcow_writer = {
	.begin = qcow_w_begin,
	.data = qcow_w_data,
	.compressed = qcow_w_compressed,
	.zero = qcow_w_zero,
	.finish = qcow_w_finish,
	.end = qcow_w_end,
};
