/* qcow2_write.c: filling a qcow2 image front to back: clusters appended (or overwritten in place), one L2 table at a time; refcounts are qcow2_wrefs.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "copy.h"
#include "imgint.h"
#include "qcow2.h"
#include "qcow2_write.h"
#include "writer.h"

#define INCOMPAT_OFFSET 72        /* of the incompatible features field */
#define EXT_ALLOC_ALL 0x00000000ffffffffull  /* extended L2: all allocated */
#define EXT_ZERO_ALL  0xffffffff00000000ull  /* extended L2: all read zeros */
#define ZERO_CHUNK (2u << 20)

int img_q2w_write_at(struct img *img, struct img_io *io, const char *what,
		     const void *buf, uint64_t len, uint64_t off)
{
	int ret = img_write_data(img, io, buf, len, off);

	if (ret < 0)
		return img_error(img, ret, "cannot write %s at 0x%llx: %s", what,
				 (unsigned long long)off, img_strerror(ret));
	return 0;
}

static int flush(struct img *img)
{
	int ret = img_io_flush(img->io);

	if (ret == 0 && img->data_io != img->io)
		ret = img_io_flush(img->data_io);
	if (ret < 0)
		return img_error(img, ret, "cannot flush '%s': %s", img->path,
				 img_strerror(ret));
	return 0;
}

/* ---- L2 entries ------------------------------------------------------ */

static uint64_t entry_at(const struct q2_writer *w, const uint8_t *t,
			 uint64_t i)
{
	return get_be64(t + i * w->q->entry_len);
}

/* Store entry (and, with extended L2, the subcluster bitmap) at slot i of
 * the current table. */
static void set_entry(struct q2_writer *w, uint64_t i, uint64_t e,
		      uint64_t bitmap)
{
	put_be64(w->l2 + i * w->q->entry_len, e);
	if (w->q->extended_l2)
		put_be64(w->l2 + i * 16 + 8, bitmap);
	w->l2_changed = 1;
}

static uint64_t slot_of(const struct q2_writer *w, uint64_t guest)
{
	return (guest >> w->cb) & ((1ull << w->q->l2_bits) - 1);
}

static int is_compressed(uint64_t e)
{
	return !!(e & QCOW2_OFLAG_COMPRESSED);
}

/* Host offset of a normal (possibly zero-flagged) cluster, 0 if none. */
static uint64_t normal_host(uint64_t e)
{
	return is_compressed(e) ? 0 : e & QCOW2_OFFSET_MASK;
}

/* ---- releasing old clusters ---------------------------------------- */

/* Host bytes [*start, *end) of a compressed entry, whole sectors. */
static void compressed_range(const struct q2_writer *w, uint64_t e,
			     uint64_t *start, uint64_t *end)
{
	unsigned x = 62 - (w->cb - 8);
	uint64_t off = e & ((1ull << x) - 1);
	uint64_t nsec = (e >> x) & ((1ull << (w->cb - 8)) - 1);

	*start = off & ~511ull;
	*end = *start + (nsec + 1) * 512;
}

/* Whether the normal cluster at host (an old one) may be used in place. */
static int check_old_host(struct img *img, struct q2_writer *w, uint64_t guest,
			  uint64_t host)
{
	if (host & (w->cs - 1) || host + w->cs > w->first_new)
		return img_error(img, IMG_E_CORRUPT,
				 "L2 entry for guest offset 0x%llx: cluster at 0x%llx %s",
				 (unsigned long long)guest,
				 (unsigned long long)host,
				 host & (w->cs - 1) ? "not cluster aligned" :
						      "beyond end of file");
	return 0;
}

/* The clusters an entry being replaced held lose their reference (data
 * clusters in an external data file have no refcounts). */
static int release_entry(struct img *img, struct q2_writer *w, uint64_t guest,
			 uint64_t e)
{
	uint64_t start, end;
	int ret = 0;

	if (is_compressed(e)) {
		compressed_range(w, e, &start, &end);
		if (end > w->first_new)
			return img_error(img, IMG_E_CORRUPT,
					 "L2 entry for guest offset 0x%llx: compressed data at 0x%llx beyond end of file",
					 (unsigned long long)guest,
					 (unsigned long long)start);
		for (uint64_t c = start >> w->cb;
		     ret == 0 && c <= (end - 1) >> w->cb; c++)
			ret = img_q2w_drop_ref(img, w, c);
		return ret;
	}
	if (w->q->has_data_file || !normal_host(e))
		return 0;
	ret = check_old_host(img, w, guest, normal_host(e));
	if (ret == 0)
		ret = img_q2w_drop_ref(img, w, normal_host(e) >> w->cb);
	return ret;
}

/* ---- the current L2 table -------------------------------------------- */

/* Write the current table back if it changed; the L1 entry gets COPIED. */
static int put_table(struct img *img, struct q2_writer *w)
{
	struct img_qcow2 *q = w->q;
	uint64_t host;
	int ret;

	if (w->l2_index == Q2W_NONE || !w->l2_changed)
		return 0;
	host = q->l1[w->l2_index] & QCOW2_OFFSET_MASK;
	ret = img_q2w_write_at(img, img->io, "L2 table", w->l2, w->cs, host);
	if (ret < 0)
		return ret;
	img_tcache_drop(q->l2_cache, host);
	q->l2 = NULL;
	q->l2_offset = 0;
	if (!(q->l1[w->l2_index] & QCOW2_OFLAG_COPIED)) {
		q->l1[w->l2_index] |= QCOW2_OFLAG_COPIED;
		w->l1_changed = 1;
	}
	w->l2_changed = 0;
	return 0;
}

/* Give L1 slot idx a new, empty table at the end of the file. */
static int new_table(struct img *img, struct q2_writer *w, uint64_t idx)
{
	uint64_t host;
	int ret = img_q2w_alloc(img, w, 1, &host);

	if (ret == 0) {
		w->q->l1[idx] = host | QCOW2_OFLAG_COPIED;
		w->l1_changed = 1;
	}
	return ret;
}

/* Make table idx the current one: tables we allocated start empty, old
 * ones are read (or taken over from peek). Tables are never revisited. */
static int load_table(struct img *img, struct q2_writer *w, uint64_t idx)
{
	uint64_t host;
	int ret;

	if (idx == w->l2_index)
		return 0;
	if (w->l2_index != Q2W_NONE && idx < w->l2_index)
		return img_error(img, -EINVAL,
				 "writer called out of order (L2 table %llu after %llu)",
				 (unsigned long long)idx,
				 (unsigned long long)w->l2_index);
	ret = put_table(img, w);
	if (ret == 0)
		ret = img_q2w_refs_checkpoint(img, w);
	if (ret < 0)
		return ret;
	w->l2_index = Q2W_NONE;
	if (!(w->q->l1[idx] & QCOW2_OFFSET_MASK) &&
	    (ret = new_table(img, w, idx)) < 0)
		return ret;
	host = w->q->l1[idx] & QCOW2_OFFSET_MASK;
	if (host >= w->first_new) {
		memset(w->l2, 0, w->cs);
		w->l2_changed = 1;
	} else if (idx == w->peek_index) {
		uint8_t *t = w->l2;

		w->l2 = w->peek;
		w->peek = t;
		w->peek_index = Q2W_NONE;
		w->l2_changed = 0;
	} else {
		ret = img_read_meta(img, "L2 table", w->l2, w->cs, host);
		if (ret < 0)
			return ret;
		w->l2_changed = 0;
	}
	w->l2_index = idx;
	return 0;
}

/* The entry for guest offset g as it stands, without moving off the
 * current table: other old tables are read into peek. */
static int peek_entry(struct img *img, struct q2_writer *w, uint64_t g,
		      uint64_t *e)
{
	uint64_t idx = g >> w->l1_shift, host;
	int ret;

	if (idx == w->l2_index) {
		*e = entry_at(w, w->l2, slot_of(w, g));
		return 0;
	}
	host = w->q->l1[idx] & QCOW2_OFFSET_MASK;
	if (!host || host >= w->first_new) {
		*e = 0;
		return 0;
	}
	if (idx != w->peek_index) {
		w->peek_index = Q2W_NONE;
		ret = img_read_meta(img, "L2 table", w->peek, w->cs, host);
		if (ret < 0)
			return ret;
		w->peek_index = idx;
	}
	*e = entry_at(w, w->peek, slot_of(w, g));
	return 0;
}

/* ---- begin ----------------------------------------------------------- */

static int set_dirty(struct img *img, struct q2_writer *w, int on)
{
	uint64_t f = w->q->h.incompat;
	uint8_t buf[8];
	int ret;

	f = on ? f | QCOW2_INCOMPAT_DIRTY : f & ~QCOW2_INCOMPAT_DIRTY;
	put_be64(buf, f);
	ret = flush(img);
	if (ret == 0)
		ret = img_q2w_write_at(img, img->io, "header", buf, 8,
				       INCOMPAT_OFFSET);
	if (ret == 0)
		ret = flush(img);
	if (ret == 0) {
		w->q->h.incompat = f;
		img->dirty = on;
	}
	return ret;
}

static int refuse_image(struct img *img, const struct img_qcow2 *q)
{
	if (q->h.nb_snapshots)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cannot write '%s': it has %u internal snapshot%s",
				 img->path, q->h.nb_snapshots,
				 q->h.nb_snapshots > 1 ? "s" : "");
	if (q->nb_bitmaps || (q->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cannot write '%s': it has persistent bitmaps",
				 img->path);
	if (q->h.incompat & QCOW2_INCOMPAT_CORRUPT)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cannot write '%s': it is marked corrupt",
				 img->path);
	if (q->h.incompat & QCOW2_INCOMPAT_DIRTY)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cannot write '%s': it is marked dirty (repair it with qemu-img check -r all)",
				 img->path);
	return 0;
}

/* Every L2 table the L1 names must lie in the old file: what lies beyond
 * is taken for our own allocations. */
static int check_l1(struct img *img, struct q2_writer *w)
{
	for (uint64_t i = 0; i < w->q->h.l1_size; i++) {
		uint64_t host = w->q->l1[i] & QCOW2_OFFSET_MASK;

		if (!host)
			continue;
		if (host & (w->cs - 1))
			return img_error(img, IMG_E_CORRUPT,
					 "L2 table at 0x%llx: offset not cluster aligned",
					 (unsigned long long)host);
		if (host + w->cs > w->first_new)
			return img_error(img, IMG_E_CORRUPT,
					 "L2 table at 0x%llx: offset beyond end of file",
					 (unsigned long long)host);
	}
	return 0;
}

static int q2w_begin(struct img *img)
{
	struct img_qcow2 *q = img->priv;
	struct q2_writer *w;
	uint64_t fsize;
	int ret;

	ret = refuse_image(img, q);
	if (ret < 0)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return img_error(img, -ENOMEM, "out of memory");
	img->wstate = w;
	w->q = q;
	w->cs = q->cluster_size;
	w->cb = q->h.cluster_bits;
	w->l1_shift = w->cb + q->l2_bits;
	w->l2_index = w->peek_index = Q2W_NONE;
	w->l2 = malloc(w->cs);
	w->peek = malloc(w->cs);
	if (!w->l2 || !w->peek)
		return img_error(img, -ENOMEM, "out of memory");
	ret = img_io_size(img->io, &fsize);
	if (ret < 0)
		return img_error(img, ret, "cannot get size of '%s': %s",
				 img->path, img_strerror(ret));
	w->first_new = w->next = q2w_round_up(fsize, w->cs);
	ret = check_l1(img, w);
	if (ret == 0)
		ret = img_q2w_refs_begin(img, w);
	if (ret == 0 && q->has_data_file && img->data_io == img->io)
		ret = img_qcow2_open_data_file(img);
	if (ret == 0 && img->write_in_place && q->h.version >= 3) {
		ret = set_dirty(img, w, 1);
		w->marked = ret == 0;
	}
	return ret;
}

/* ---- data ------------------------------------------------------------ */

static int check_range(struct img *img, struct q2_writer *w, uint64_t off,
		       uint64_t len)
{
	uint64_t end;

	if ((off | len) & (w->cs - 1) || img_add_overflows(off, len, &end) ||
	    end > q2w_round_up(img->size, w->cs))
		return img_error(img, -EINVAL,
				 "write of %llu bytes at 0x%llx: not whole clusters within the disk",
				 (unsigned long long)len,
				 (unsigned long long)off);
	return 0;
}

/* With an external data file, data sits at its guest offset there. */
static int data_in_data_file(struct img *img, struct q2_writer *w,
			     uint64_t off, const uint8_t *buf, uint64_t len)
{
	uint64_t n = img_min_u64(len, img->size - off);
	int ret;

	ret = img_q2w_write_at(img, img->data_io, "data", buf, n, off);
	for (uint64_t g = off; ret == 0 && g < off + len; g += w->cs) {
		ret = load_table(img, w, g >> w->l1_shift);
		if (ret == 0)
			set_entry(w, slot_of(w, g), g | QCOW2_OFLAG_COPIED,
				  EXT_ALLOC_ALL);
	}
	return ret;
}

static int reserve_hosts(struct img *img, struct q2_writer *w, uint64_t n)
{
	uint64_t *h;

	if (n <= w->hosts_cap)
		return 0;
	h = realloc(w->hosts, n * sizeof(*h));
	if (!h)
		return img_error(img, -ENOMEM, "out of memory");
	w->hosts = h;
	w->hosts_cap = n;
	return 0;
}

/*
 * Decide where each cluster of [off, off+len) goes: old normal clusters
 * in place, the others in one run at the end of the file. The tables the
 * range lacks are allocated first, so that nothing splits that run.
 */
static int place_clusters(struct img *img, struct q2_writer *w, uint64_t off,
			  uint64_t len)
{
	uint64_t n = len >> w->cb, nnew = 0, base = 0, e;
	int ret;

	for (uint64_t idx = off >> w->l1_shift;
	     idx <= (off + len - 1) >> w->l1_shift; idx++)
		if (!(w->q->l1[idx] & QCOW2_OFFSET_MASK) &&
		    (ret = new_table(img, w, idx)) < 0)
			return ret;
	ret = reserve_hosts(img, w, n);
	for (uint64_t i = 0; ret == 0 && i < n; i++) {
		uint64_t g = off + (i << w->cb);

		ret = peek_entry(img, w, g, &e);
		if (ret < 0)
			return ret;
		w->hosts[i] = normal_host(e);
		if (w->hosts[i])
			ret = check_old_host(img, w, g, w->hosts[i]);
		else
			nnew++;
	}
	if (ret == 0 && nnew)
		ret = img_q2w_alloc(img, w, nnew, &base);
	for (uint64_t i = 0; ret == 0 && i < n; i++)
		if (!w->hosts[i]) {
			w->hosts[i] = base;
			base += w->cs;
		}
	return ret;
}

static int q2w_data(struct img *img, uint64_t off, const uint8_t *buf,
		    uint64_t len)
{
	struct q2_writer *w = img->wstate;
	uint64_t n = len >> w->cb;
	int ret;

	ret = check_range(img, w, off, len);
	if (ret < 0 || !len)
		return ret;
	if (w->q->has_data_file)
		return data_in_data_file(img, w, off, buf, len);
	ret = place_clusters(img, w, off, len);
	/* Data first, in runs of consecutive host clusters. */
	for (uint64_t i = 0, j; ret == 0 && i < n; i = j) {
		j = i + 1;
		while (j < n && w->hosts[j] == w->hosts[j - 1] + w->cs)
			j++;
		ret = img_q2w_write_at(img, img->io, "data", buf + (i << w->cb),
			       (j - i) << w->cb, w->hosts[i]);
	}
	for (uint64_t i = 0; ret == 0 && i < n; i++) {
		uint64_t g = off + (i << w->cb), slot = slot_of(w, g), old;

		ret = load_table(img, w, g >> w->l1_shift);
		if (ret < 0)
			break;
		old = entry_at(w, w->l2, slot);
		if (is_compressed(old))
			ret = release_entry(img, w, g, old);
		set_entry(w, slot, w->hosts[i] | QCOW2_OFLAG_COPIED,
			  EXT_ALLOC_ALL);
	}
	return ret;
}

/* ---- compressed ------------------------------------------------------ */

static int q2w_compressed(struct img *img, uint64_t off, const uint8_t *z,
			  size_t zlen)
{
	struct q2_writer *w = img->wstate;
	unsigned x = 62 - (w->cb - 8);
	uint64_t slot = slot_of(w, off), host, end, nsec;
	int ret;

	if (w->q->has_data_file)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "cannot write compressed clusters to '%s': it has an external data file",
				 img->path);
	ret = check_range(img, w, off, w->cs);
	if (ret == 0 && (!zlen || zlen >= w->cs))
		ret = img_error(img, -EINVAL,
				 "compressed cluster at 0x%llx: %zu bytes",
				 (unsigned long long)off, zlen);
	if (ret == 0)
		ret = load_table(img, w, off >> w->l1_shift);
	if (ret == 0)
		ret = release_entry(img, w, off, entry_at(w, w->l2, slot));
	if (ret < 0)
		return ret;
	/* Streams share a host cluster while its refcount has room. */
	ret = img_q2w_stream_start(img, w, &host);
	if (ret < 0)
		return ret;
	end = host + zlen;
	if (end > (1ull << x))
		return img_error(img, IMG_E_TOOBIG,
				 "compressed cluster at 0x%llx: host offset 0x%llx too large",
				 (unsigned long long)off,
				 (unsigned long long)host);
	ret = img_q2w_write_at(img, img->io, "compressed cluster", z, zlen,
			       host);
	if (ret == 0)
		ret = img_q2w_add_stream(img, w, host, end);
	if (ret < 0)
		return ret;
	nsec = (end - 1) / 512 - host / 512;
	set_entry(w, slot, QCOW2_OFLAG_COMPRESSED | nsec << x | host, 0);
	return 0;
}

/* ---- zero ------------------------------------------------------------ */

/* v2 over a backing file: there is no zero flag, so write zeros. */
static int zero_by_writing(struct img *img, struct q2_writer *w, uint64_t off,
			   uint64_t len)
{
	uint64_t chunk = w->cs > ZERO_CHUNK ? w->cs : ZERO_CHUNK;
	int ret = 0;

	if (!w->zeros && !(w->zeros = calloc(1, chunk)))
		return img_error(img, -ENOMEM, "out of memory");
	while (ret == 0 && len) {
		uint64_t n = img_min_u64(len, chunk);

		ret = q2w_data(img, off, w->zeros, n);
		off += n;
		len -= n;
	}
	return ret;
}

/* An entry that reads through to the backing file. */
static int is_unallocated(const struct q2_writer *w, uint64_t e)
{
	if (is_compressed(e) || (e & QCOW2_OFFSET_MASK))
		return 0;
	/* in a data file, offset 0 with COPIED is guest cluster 0 */
	return !(w->q->has_data_file && (e & QCOW2_OFLAG_COPIED));
}

/* One cluster's entry made to read as zeros. */
static int zero_entry(struct img *img, struct q2_writer *w, uint64_t g,
		      int backing)
{
	uint64_t slot = slot_of(w, g), e = entry_at(w, w->l2, slot);
	int ext = w->q->extended_l2, ret = 0;

	if (w->q->h.version < 3) {
		/* no backing file: unallocated reads as zeros */
		if (e) {
			ret = release_entry(img, w, g, e);
			set_entry(w, slot, 0, 0);
		}
		return ret;
	}
	if (!backing && is_unallocated(w, e))
		return 0;
	if (!is_compressed(e) && !is_unallocated(w, e)) {
		/* keep the cluster: "zero, allocated" */
		uint64_t host = e & QCOW2_OFFSET_MASK;

		if (!w->q->has_data_file)
			ret = check_old_host(img, w, g, host);
		if (ret < 0)
			return ret;
		set_entry(w, slot, host | QCOW2_OFLAG_COPIED |
			  (ext ? 0 : QCOW2_OFLAG_ZERO), EXT_ZERO_ALL);
		return 0;
	}
	ret = release_entry(img, w, g, e);
	set_entry(w, slot, ext ? 0 : QCOW2_OFLAG_ZERO, EXT_ZERO_ALL);
	return ret;
}

static int q2w_zero(struct img *img, uint64_t off, uint64_t len)
{
	struct q2_writer *w = img->wstate;
	int backing = img->backing_name != NULL, ret;
	uint64_t end = off + len;

	ret = check_range(img, w, off, len);
	if (ret < 0 || !len)
		return ret;
	if (w->q->h.version < 3 && backing)
		return zero_by_writing(img, w, off, len);
	/* A raw data file must read as the disk does. */
	if (w->q->h.autoclear & QCOW2_AUTOCLEAR_DATA_RAW) {
		uint64_t n = img_min_u64(end, img->size) - off;

		ret = img_write_zeros(img->data_io, off, n);
		if (ret < 0)
			return img_error(img, ret, "cannot write zeros to '%s' at 0x%llx: %s",
					 img->data_path, (unsigned long long)off,
					 img_strerror(ret));
	}
	for (uint64_t g = off; ret == 0 && g < end;) {
		uint64_t idx = g >> w->l1_shift;

		/* without a backing file, a missing table reads as zeros */
		if (idx != w->l2_index && !backing &&
		    !(w->q->l1[idx] & QCOW2_OFFSET_MASK)) {
			g = (idx + 1) << w->l1_shift;
			continue;
		}
		ret = load_table(img, w, idx);
		if (ret == 0)
			ret = zero_entry(img, w, g, backing);
		g += w->cs;
	}
	return ret;
}

/* ---- finish: tables and refcounts ------------------------------------ */

static int put_l1(struct img *img, struct q2_writer *w)
{
	uint64_t n = w->q->h.l1_size;
	uint8_t *buf;
	int ret;

	if (!w->l1_changed || !n)
		return 0;
	buf = malloc(n * 8);
	if (!buf)
		return img_error(img, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		put_be64(buf + i * 8, w->q->l1[i]);
	ret = img_q2w_write_at(img, img->io, "L1 table", buf, n * 8,
			       w->q->h.l1_offset);
	free(buf);
	if (ret == 0)
		w->l1_changed = 0;
	return ret;
}

/* The disk shrinks to size: the header's size and L1 length, and the
 * clusters of the L1 table past the new length lose their reference
 * (free space in the file; nothing past size was ever mapped). */
static int q2w_set_size(struct img *img, uint64_t size)
{
	struct q2_writer *w = img->wstate;
	struct img_qcow2 *q = w->q;
	uint64_t n = (size + (1ull << w->l1_shift) - 1) >> w->l1_shift;
	uint64_t keep = q2w_round_up(n * 8, w->cs) >> w->cb;
	uint64_t had = q2w_round_up((uint64_t)q->h.l1_size * 8, w->cs) >> w->cb;
	uint8_t b[8];
	int ret;

	if (n > q->h.l1_size)
		return img_error(img, -EINVAL, "cannot grow to %llu bytes",
				 (unsigned long long)size);
	put_be64(b, size);
	ret = img_q2w_write_at(img, img->io, "header", b, 8, 24);
	put_be32(b, (uint32_t)n);
	if (ret == 0)
		ret = img_q2w_write_at(img, img->io, "header", b, 4, 36);
	for (uint64_t k = keep; ret == 0 && k < had; k++)
		ret = img_q2w_drop_ref(img, w, (q->h.l1_offset >> w->cb) + k);
	if (ret < 0)
		return ret;
	q->h.size = img->size = size;
	q->h.l1_size = (uint32_t)n;
	return 0;
}

/* The file ends at the last cluster in use. */
static int set_file_end(struct img *img, struct q2_writer *w)
{
	uint64_t end = q2w_round_up(w->next, w->cs), size;
	int ret = img_io_size(img->io, &size);

	if (ret == 0 && size != end)
		ret = img_io_truncate(img->io, end);
	if (ret < 0)
		return img_error(img, ret, "cannot set the size of '%s': %s",
				 img->path, img_strerror(ret));
	img->file_size = end;
	return 0;
}

static int q2w_finish(struct img *img)
{
	struct q2_writer *w = img->wstate;
	int ret;

	ret = put_table(img, w);
	if (ret == 0)
		ret = put_l1(img, w);
	if (ret == 0)
		ret = img_q2w_settle_refcounts(img, w);
	if (ret == 0)
		ret = set_file_end(img, w);
	if (ret == 0 && w->marked) {
		ret = set_dirty(img, w, 0);
		w->marked = ret < 0;
	} else if (ret == 0 && img->write_in_place) {
		ret = flush(img);
	}
	return ret;
}

static void q2w_end(struct img *img)
{
	struct q2_writer *w = img->wstate;

	if (!w)
		return;
	img_q2w_refs_end(w);
	free(w->l2);
	free(w->peek);
	free(w->hosts);
	free(w->zeros);
	free(w);
	img->wstate = NULL;
}

const struct img_writer_ops img_qcow2_writer = {
	.begin = q2w_begin,
	.data = q2w_data,
	.compressed = q2w_compressed,
	.zero = q2w_zero,
	.set_size = q2w_set_size,
	.finish = q2w_finish,
	.end = q2w_end,
};
