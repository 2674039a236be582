/* convert.c: copying any readable image into a format writer, cluster by cluster, on two threads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "imgint.h"
#include "pipeline.h"
#include "stream.h"
#include "writer.h"

#define CHUNK (2u << 20)
#define NSLOTS 4

/*
 * The main thread plans a chunk of target clusters (what each must
 * become, reading source data where some is stored) and compresses half of
 * them with -c; the writer thread compresses the other half and hands
 * everything to the format writer in guest order.
 *
 * Whole clusters stored plainly in a source file are not read: the plan
 * says where they lie, and the writer copies them file to file (copy.h),
 * sharing extents where the file system can. Only their first 4 KiB are
 * read, to find zero clusters (the rest when those are zero): data rarely
 * starts with 4 KiB of zeros, so this costs a small read per cluster, and
 * the output stays as sparse as when every byte is read.
 */
enum cl_kind {
	CL_KEEP,        /* leave as it is: unallocated, backing shows through */
	CL_ZERO,        /* must read as zeros whatever the backing holds */
	CL_DATA,        /* write the buffer's bytes */
	CL_COMP,        /* write compressed (or as data if it does not shrink) */
};

/* Where each part of a cluster's contents came from, as a bit mask. */
#define SRC_DATA 0x1    /* source stores data (read into the buffer) */
#define SRC_ZERO 0x2    /* source reads as zeros */
#define SRC_SAME 0x4    /* source shows the target's backing file here */

struct plan {
	uint64_t ncl;       /* clusters in this slot */
	struct img_io **from; /* where a cluster lies unchanged, not read into
			       * the buffer (NULL: it is in the buffer) */
	uint64_t *from_off; /* ...at this offset of that file */
	uint8_t *src;       /* SRC_* per cluster */
	uint8_t *kind;      /* enum cl_kind per cluster */
	int32_t *zlen;      /* CL_COMP: compressed length, -1 = store plain */
	uint8_t *zbuf;      /* cluster i's compressed bytes at i * cs */
};

struct conv {
	struct img *src, *dst;
	const struct img_convert_opts *o;
	const struct img_writer_ops *w;
	uint64_t cs, chunk, maxcl;
	struct img *tb;         /* the target's backing file, or NULL */
	int tb_depth;           /* its depth in the source chain, -1 if absent */
	uint8_t *tbuf;          /* a cluster of tb, for comparing */
	struct img_salvage salvage;
	int copy_ok;            /* clusters may be copied file to file */
	struct img_copier copier;
	/* A stream source (img_convert_stream): read in order through cur;
	 * src is then a stand-in holding its name and errors, and the
	 * length is known at the end (stream_size). */
	struct img_stream_cursor *cur;
	uint64_t stream_size;
	int too_long;           /* the stream outgrew the target */
};

static size_t aux_size(const struct conv *c)
{
	return sizeof(struct plan) +
	       c->maxcl * (sizeof(uint64_t) + sizeof(struct img_io *) +
			   sizeof(int32_t) + 2) +
	       (c->o->compress ? c->chunk : 0) + 64;
}

/* Lay the plan's arrays out in the slot's aux area. */
static struct plan *slot_plan(const struct conv *c, struct img_pipe_slot *s)
{
	struct plan *p = s->aux;

	p->from_off = (uint64_t *)(p + 1);
	p->from = (struct img_io **)(p->from_off + c->maxcl);
	p->zlen = (int32_t *)(p->from + c->maxcl);
	p->src = (uint8_t *)(p->zlen + c->maxcl);
	p->kind = p->src + c->maxcl;
	p->zbuf = c->o->compress ? p->kind + c->maxcl : NULL;
	return p;
}

/* Fill buf [a, b) (offsets relative to the slot at off) with the content
 * of extent e of layer l: read data, else zeros. */
static int fill(struct conv *c, struct img *l, const struct img_extent *e,
		uint64_t off, uint8_t *buf, uint64_t a, uint64_t b)
{
	if (a >= b)
		return 0;
	if (e->kind == IMG_EXT_DATA)
		return img_salvage_read(&c->salvage, c->src, l, e, off + a,
					buf + a, (size_t)(b - a));
	memset(buf + a, 0, (size_t)(b - a));
	return 0;
}

/* Like fill() for stored data, but the whole clusters of [a, b) are
 * only noted (where they lie in l's file), not read. */
static int defer(struct conv *c, struct img *l, const struct img_extent *e,
		 uint64_t off, uint8_t *buf, struct plan *p, uint64_t a,
		 uint64_t b)
{
	uint64_t cs = c->cs, ha = (a + cs - 1) / cs * cs, tb = b / cs * cs;

	if (ha >= tb)
		return fill(c, l, e, off, buf, a, b);
	for (uint64_t i = ha / cs; i < tb / cs; i++) {
		p->from[i] = l->data_io;
		p->from_off[i] = e->host + (i * cs - a);
	}
	int ret = fill(c, l, e, off, buf, a, ha);

	return ret < 0 ? ret : fill(c, l, e, off, buf, tb, b);
}

/*
 * Walk the source over the slot [off, off+len) and note, per cluster,
 * where its bytes come from. Stored data is read; the parts of partly
 * covered clusters are filled too, so that any cluster with more than one
 * source has its whole contents in the buffer.
 */
static int gather(struct conv *c, uint64_t off, uint64_t len, uint8_t *buf,
		  struct plan *p)
{
	uint64_t cs = c->cs, end = img_min_u64(off + len, c->src->size);
	uint64_t pos = off;

	memset(p->src, 0, p->ncl);
	memset(p->from, 0, p->ncl * sizeof(*p->from));
	while (pos < end) {
		struct img_extent e;
		struct img *l;
		uint64_t a, b, first, last;
		int depth, ret, what;

		ret = img_salvage_status(&c->salvage, c->src, pos, end - pos,
					 &e, &l, &depth);
		if (ret < 0)
			return ret;
		a = pos - off;
		b = a + e.length;
		if (c->tb_depth >= 0 && depth >= c->tb_depth)
			what = SRC_SAME;
		else
			what = e.kind == IMG_EXT_DATA ? SRC_DATA : SRC_ZERO;
		if (what == SRC_DATA && c->copy_ok && img_extent_copyable(l, &e)) {
			ret = defer(c, l, &e, off, buf, p, a, b);
		} else if (what == SRC_DATA) {
			ret = fill(c, l, &e, off, buf, a, b);
		} else {
			/* Only the partly covered end clusters need bytes. */
			uint64_t ha = img_min_u64(b, (a + cs - 1) / cs * cs);
			uint64_t tb = b / cs * cs;

			ret = fill(c, l, &e, off, buf, a, ha);
			if (ret == 0 && tb >= ha)
				ret = fill(c, l, &e, off, buf, tb, b);
		}
		if (ret < 0)
			return ret;
		first = a / cs;
		last = (b - 1) / cs;
		for (uint64_t i = first; i <= last; i++)
			p->src[i] |= (uint8_t)what;
		pos += e.length;
	}
	/* Past the end of the disk, the last cluster is padded with zeros. */
	if (end - off < p->ncl * cs)
		memset(buf + (end - off), 0, (size_t)(p->ncl * cs - (end - off)));
	return 0;
}

/* Whether the target's backing file reads as zeros over [off, off+len). */
static int backing_is_zero(struct conv *c, uint64_t off, uint64_t len, int *zero)
{
	uint64_t end = img_min_u64(off + len, c->tb->size);

	*zero = 1;
	while (off < end) {
		struct img_extent e;
		struct img *l;
		int depth;
		int ret = img_chain_status(c->tb, off, end - off, &e, &l, &depth);

		if (ret < 0)
			return img_error(c->src, ret, "backing file '%s': %s",
					 c->tb->path, img_errmsg(c->tb));
		if (e.kind == IMG_EXT_DATA) {
			*zero = 0;
			return 0;
		}
		off += e.length;
	}
	return 0;
}

/* Whether cluster i (guest offset g) holds what the target's backing
 * file holds there, when that file is not part of the source chain. */
static int same_as_backing(struct conv *c, uint64_t g, const uint8_t *data,
			   int *same)
{
	uint64_t n = 0;
	int ret;

	*same = 0;
	if (g < c->tb->size) {
		n = img_min_u64(c->cs, c->tb->size - g);
		ret = img_read(c->tb, g, c->tbuf, (size_t)n);
		if (ret < 0)
			return img_error(c->src, ret, "backing file '%s': %s",
					 c->tb->path, img_errmsg(c->tb));
	}
	memset(c->tbuf + n, 0, (size_t)(c->cs - n));
	*same = !memcmp(c->tbuf, data, (size_t)c->cs);
	return 0;
}

/* Cluster i, not read (p->from[i]), may be all zeros: read its first
 * 4 KiB into data; only if they are zero, the rest too, and it is then an
 * ordinary cluster in the buffer. */
static int probe(struct conv *c, struct plan *p, uint64_t i, uint64_t g,
		 uint8_t *data)
{
	uint64_t head = img_min_u64(4096, c->cs);
	int ret = img_io_read_exact(p->from[i], data, (size_t)head,
				    p->from_off[i]);

	if (ret == 0 && img_is_zero(data, (size_t)head)) {
		ret = img_io_read_exact(p->from[i], data + head,
					(size_t)(c->cs - head),
					p->from_off[i] + head);
		p->from[i] = NULL;
	}
	if (ret < 0)
		return img_error(c->src, ret, "cannot read guest offset 0x%llx: %s",
				 (unsigned long long)g, img_strerror(ret));
	return 0;
}

/* A stream's next chunk at off: as many bytes as it still has, up to
 * len (*len shrinks at its end), each cluster stored data. */
static int gather_stream(struct conv *c, uint64_t off, uint64_t *len,
			 uint8_t *buf, struct plan *p)
{
	size_t got;
	int ret = img_stream_read(c->cur, off, buf, (size_t)*len, &got);

	if (ret < 0)
		return img_error(c->src, ret, "%s", img_stream_error(c->cur->s));
	if (got < *len) {
		c->stream_size = off + got;
		*len = got;
	}
	if (off + got > c->dst->size) {
		c->too_long = 1;
		return img_error(c->dst, -EFBIG,
				 "the stream is longer than %llu bytes, the most a %s image with %llu-byte clusters takes from a stream (a larger cluster_size takes more)",
				 (unsigned long long)c->dst->size,
				 c->dst->drv->name, (unsigned long long)c->cs);
	}
	p->ncl = (got + c->cs - 1) / c->cs;
	memset(buf + got, 0, (size_t)(p->ncl * c->cs - got));
	memset(p->src, SRC_DATA, p->ncl);
	memset(p->from, 0, p->ncl * sizeof(*p->from));
	return 0;
}

/* Decide what each cluster of the slot becomes. */
static int decide(struct conv *c, uint64_t off, uint8_t *buf, struct plan *p)
{
	const struct img_convert_opts *o = c->o;
	uint64_t cs = c->cs;
	int write_zeros = o->in_place && !o->target_is_zero;

	for (uint64_t i = 0; i < p->ncl; i++) {
		uint8_t s = p->src[i];
		uint8_t *data = buf + i * cs;
		uint64_t g = off + i * cs;
		int ret, flag;

		if (s == SRC_SAME) {
			p->kind[i] = CL_KEEP;
			continue;
		}
		if (p->from[i] && o->zero_gran && (ret = probe(c, p, i, g, data)) < 0)
			return ret;
		if (p->from[i]) {
			p->kind[i] = CL_DATA;   /* copied file to file */
			continue;
		}
		if (s != SRC_ZERO && o->zero_gran && img_is_zero(data, cs))
			s = SRC_ZERO;   /* stored zeros, or zeros and backing zeros */
		if (s == SRC_ZERO) {
			if (!o->zero_gran) {
				memset(data, 0, cs);   /* -S 0: allocate all */
				p->kind[i] = o->compress ? CL_COMP : CL_DATA;
				continue;
			}
			flag = 0;
			if (!write_zeros && c->tb) {
				ret = backing_is_zero(c, g, cs, &flag);
				if (ret < 0)
					return ret;
				flag = !flag;
			}
			p->kind[i] = write_zeros || flag ? CL_ZERO : CL_KEEP;
			continue;
		}
		if (c->tb && c->tb_depth < 0) {
			ret = same_as_backing(c, g, data, &flag);
			if (ret < 0)
				return ret;
			if (flag) {
				p->kind[i] = CL_KEEP;
				continue;
			}
		}
		p->kind[i] = o->compress ? CL_COMP : CL_DATA;
	}
	return 0;
}

/* Compress the CL_COMP clusters i with i % 2 == half. */
static void compress_half(struct conv *c, const uint8_t *buf, struct plan *p,
			  int half)
{
	for (uint64_t i = (uint64_t)half; i < p->ncl; i += 2) {
		if (p->kind[i] != CL_COMP)
			continue;
		int n = img_compress(c->dst->compress, buf + i * c->cs,
				     (size_t)c->cs, p->zbuf + i * c->cs,
				     (size_t)c->cs);
		p->zlen[i] = n > 0 ? n : -1;
	}
}

/* Writer thread: one slot, runs of equal kind at a time. */
static int write_slot(struct img_pipe_slot *slot, void *arg)
{
	struct conv *c = arg;
	struct plan *p = slot_plan(c, slot);
	uint64_t cs = c->cs;
	struct img_copy_src from = {
		.base = slot->buf, .cs = cs, .ncl = p->ncl, .from = p->from,
		.from_off = p->from_off, .copier = &c->copier,
	};
	int ret = 0;

	/* always there: an emitter (emit.h) tells data writes by it */
	if (!c->copy_ok)
		from.from = NULL;
	if (c->o->compress) {
		from.zbase = p->zbuf;
		from.zlen = p->ncl * cs;
	}
	c->dst->copy_src = &from;
	if (c->o->compress)
		compress_half(c, slot->buf, p, 1);
	for (uint64_t i = 0; i < p->ncl && ret == 0;) {
		uint64_t j = i + 1, g = slot->off + i * cs;
		int k = p->kind[i];

		if (k == CL_COMP && p->zlen[i] > 0) {
			ret = c->w->compressed(c->dst, g, p->zbuf + i * cs,
					       (size_t)p->zlen[i]);
			i++;
			continue;
		}
		if (k == CL_COMP)
			k = CL_DATA;    /* did not shrink */
		while (j < p->ncl) {
			int kj = p->kind[j];
			if (kj == CL_COMP && p->zlen[j] < 0)
				kj = CL_DATA;
			if (kj != k)
				break;
			j++;
		}
		if (k == CL_DATA)
			ret = c->w->data(c->dst, g, slot->buf + i * cs, (j - i) * cs);
		else if (k == CL_ZERO)
			ret = c->w->zero(c->dst, g, (j - i) * cs);
		i = j;
	}
	c->dst->copy_src = NULL;
	if (ret < 0 && c->copier.clone_error)
		ret = img_copy_refused(c->dst, &c->copier, c->src->path, ret);
	return ret;
}

static int setup(struct conv *c)
{
	struct img *dst = c->dst;

	c->w = dst->drv->writer;
	c->cs = dst->cluster_size;
	if (!c->w || !c->cs)
		return img_error(dst, IMG_E_UNSUPPORTED,
				 "cannot write %s images cluster by cluster",
				 dst->drv->name);
	if (c->o->compress && !c->w->compressed)
		return img_error(dst, IMG_E_UNSUPPORTED,
				 "the %s format does not support compression",
				 dst->drv->name);
	if (!c->cur && dst->size < c->src->size)
		return img_error(dst, -EINVAL,
				 "target is smaller than the source (%llu < %llu bytes)",
				 (unsigned long long)dst->size,
				 (unsigned long long)c->src->size);
	c->chunk = c->cs > CHUNK ? c->cs : CHUNK;
	c->maxcl = c->chunk / c->cs;
	c->tb = c->o->target_backing;
	c->tb_depth = c->tb && !c->cur ?
		      img_chain_find(c->src, c->tb->dev, c->tb->ino) : -1;
	/* Compressing, comparing with a backing file outside the chain and
	 * salvaging all need the bytes in hand. */
	c->copy_ok = c->o->copy_mode != IMG_COPY_READ_WRITE &&
		     !c->o->compress && !(c->tb && c->tb_depth < 0) &&
		     !c->o->salvaged && !c->cur;
	c->copier.mode = c->o->copy_mode;
	if (c->tb) {
		c->tbuf = malloc(c->cs);
		if (!c->tbuf)
			return img_error(dst, -ENOMEM, "out of memory");
	}
	return 0;
}

/*
 * Where the source holds nothing from off on (no data in any layer, or
 * only what the target's backing file already shows), and nothing needs
 * writing there (a fresh target, zeros left as holes): *next is the
 * first chunk boundary after off that may hold something, else off.
 * Sparse images cost what they store, not what they address.
 */
static void skip_unwritten(struct conv *c, uint64_t off, uint64_t *next)
{
	const struct img_convert_opts *o = c->o;
	uint64_t size = c->src->size, pos = off;

	*next = off;
	if (!o->zero_gran || (o->in_place && !o->target_is_zero) ||
	    (c->tb && c->tb_depth < 0))
		return;
	if (c->cur) {
		/* a stream: over its holes (sparse tar members) */
		if (img_stream_data_after(c->cur, off, &pos) == 0 &&
		    pos / c->chunk * c->chunk > off)
			*next = pos / c->chunk * c->chunk;
		return;
	}
	while (pos < size) {
		struct img_extent e;
		struct img *l;
		int depth;

		/* A failure is gather()'s to report (or salvage) */
		if (img_chain_status(c->src, pos, size - pos, &e, &l,
				     &depth) < 0)
			break;
		if (e.kind == IMG_EXT_DATA &&
		    !(c->tb_depth >= 0 && depth >= c->tb_depth))
			break;
		if (c->tb && depth < c->tb_depth)
			break;  /* zeros over the target's backing: written */
		pos += e.length;
	}
	if (pos >= size)
		*next = size;
	else
		*next = pos / c->chunk * c->chunk;
}

/* Fill and hand over one slot per chunk of the source; 1 if cancelled. */
static int produce(struct conv *c, struct img_pipeline *pipe)
{
	uint64_t size = c->cur ? UINT64_MAX : c->src->size, off = 0;
	uint64_t total = c->cur ? 0 : size;     /* 0: not known */

	while (off < size) {
		struct img_pipe_slot *slot;
		struct plan *p;
		uint64_t len, next;
		int ret;

		/* A safe point: what is handed over gets written, then the
		 * target is finished as far as it goes. */
		if (img_cancel_point(c->dst, c->o->cancel) < 0)
			return 1;
		skip_unwritten(c, off, &next);
		if (next > off) {
			off = next;
			if (c->o->progress)
				c->o->progress(off, total, c->o->progress_arg);
			continue;
		}
		len = img_min_u64(c->chunk, size - off);
		ret = img_pipeline_get(pipe, &slot);
		if (ret < 0)
			return 0;       /* the writer failed: finish says why */
		p = slot_plan(c, slot);
		p->ncl = (len + c->cs - 1) / c->cs;
		slot->off = off;
		if (c->cur) {
			ret = gather_stream(c, off, &len, slot->buf, p);
			if (c->stream_size != UINT64_MAX)
				size = c->stream_size;
		} else {
			ret = gather(c, off, len, slot->buf, p);
		}
		slot->len = len;
		if (ret == 0)
			ret = decide(c, off, slot->buf, p);
		if (ret < 0)
			return ret;
		if (c->o->compress)
			compress_half(c, slot->buf, p, 0);
		img_pipeline_put(pipe);
		off += len;
		if (c->o->progress)
			c->o->progress(off, total, c->o->progress_arg);
	}
	return 0;
}

/* A stream has ended: the target's size becomes the stream's length
 * (in whole sectors, as for any image made), below the provisional size
 * it was created with. */
static int settle_size(struct conv *c)
{
	uint64_t size = (c->stream_size + 511) / 512 * 512;

	if (size == c->dst->size)
		return 0;
	if (!c->w->set_size)
		return img_error(c->dst, IMG_E_UNSUPPORTED,
				 "%s images cannot be written from a stream",
				 c->dst->drv->name);
	return c->w->set_size(c->dst, size);
}

/* The conversion c describes, from the writer's begin to its finish. */
static int run(struct conv *c)
{
	struct img *src = c->src, *dst = c->dst;
	const struct img_convert_opts *o = c->o;
	struct img_pipeline *pipe;
	int ret, werr, cancelled;

	img_salvage_init(&c->salvage, o);
	ret = setup(c);
	dst->write_in_place = o->in_place;
	if (ret == 0)
		ret = c->w->begin(dst);
	if (ret < 0) {
		free(c->tbuf);
		return ret;
	}
	ret = img_pipeline_start(&pipe, c->chunk > CHUNK ? 2 : NSLOTS, c->chunk,
				 aux_size(c), write_slot, c);
	if (ret < 0) {
		free(c->tbuf);
		return img_error(dst, ret, "cannot start writer: %s",
				 img_strerror(ret));
	}
	ret = produce(c, pipe);
	img_salvage_flush(&c->salvage);
	cancelled = ret == 1;
	if (cancelled)
		ret = 0;
	werr = img_pipeline_finish(pipe);
	if (ret < 0) {
		/* The source failed, not the target: what was written is
		 * settled (tables written, the in-place mark cleared), so
		 * that the target is left as usable as it was. */
		if (werr == 0)
			c->w->finish(dst);
		if (!c->too_long)
			img_error(dst, ret, "cannot read '%s': %s", src->path,
				  img_errmsg(src));
	}
	if (ret == 0 && werr < 0)
		ret = werr;
	if (ret == 0 && c->cur)
		ret = settle_size(c);
	if (ret == 0)
		ret = c->w->finish(dst);
	if (ret == 0 && cancelled)
		ret = img_cancel_point(dst, o->cancel);
	free(c->tbuf);
	return ret;
}

int img_convert(struct img *src, struct img *dst,
		const struct img_convert_opts *o)
{
	struct conv c = { .src = src, .dst = dst, .o = o };

	return run(&c);
}

int img_convert_stream(struct img_stream *s, const char *name,
		       struct img *dst, const struct img_convert_opts *o,
		       uint64_t *size)
{
	struct img_stream_cursor cur = { .s = s };
	struct conv c = { .dst = dst, .o = o, .cur = &cur,
			  .stream_size = UINT64_MAX };
	int ret;

	/* a stand-in source: the stream's name and its errors */
	c.src = img_new();
	if (!c.src || !(c.src->path = strdup(name))) {
		img_free(c.src);
		return img_error(dst, -ENOMEM, "out of memory");
	}
	ret = run(&c);
	*size = c.stream_size;
	img_free(c.src);
	return ret;
}
