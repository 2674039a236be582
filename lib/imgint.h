/* imgint.h: what format drivers and library modules share: the image handle and the driver table. */
#ifndef IMG_INT_H
#define IMG_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "img.h"
#include "io.h"

/*
 * One extent of a single layer, as the format driver sees it. A driver's
 * block_status fills it for the run starting exactly at the guest offset
 * asked for; the generic code (image.c, map.c) walks the chain and reads.
 */
enum img_ext_kind {
	IMG_EXT_UNALLOC,   /* not in this layer: backing file, else zeros */
	IMG_EXT_ZERO,      /* reads as zeros in this layer */
	IMG_EXT_DATA,      /* stored data at host */
};
#define IMG_EXT_F_OFFSET     0x1  /* host offset is meaningful to map */
#define IMG_EXT_F_COMPRESSED 0x2  /* host = byte offset, clen = stored bytes */
#define IMG_EXT_F_ENCRYPTED  0x4  /* AES-CBC sectors at host, IV = guest sector */
#define IMG_EXT_F_RECURSE    0x8  /* map: ask the host file where it has
				   * holes (QEMU does so for images that look
				   * metadata-preallocated) */

struct img_extent {
	uint64_t start;    /* guest offset, == the offset asked for */
	uint64_t length;   /* > 0 */
	enum img_ext_kind kind;
	unsigned flags;
	uint64_t host;     /* host offset of byte `start` (whole cluster start
			    * for compressed extents) */
	uint64_t clen;     /* compressed: bytes stored at host */
};

enum img_compress { IMG_COMPRESS_ZLIB, IMG_COMPRESS_ZSTD };

struct img_walk_layout;
struct img_writer_ops;
struct img_check_ctx;
struct img_opts;
struct img_opt_desc;

struct img_driver {
	const char *name;
	/* Score how well the first bytes (len may be short) match: 0 = not
	 * ours, 100 = our magic. A driver may claim an image it will then
	 * refuse (an unknown version), so that it is never taken for raw. */
	int (*probe)(const uint8_t *buf, size_t len);
	/* Parse and validate the header and tables at img->io; set
	 * img->size, cluster_size, backing_name/backing_fmt, info fields. */
	int (*open)(struct img *img);
	void (*close)(struct img *img);
	/* Describe the run at guest offset off, at most len bytes long
	 * (off < img->size, len > 0, off + len <= img->size). */
	int (*block_status)(struct img *img, uint64_t off, uint64_t len,
			    struct img_extent *ext);
	/* Describe the L1/L2 tables for img_walk() (walk.h); NULL for
	 * formats without them (raw). */
	int (*walk_layout)(struct img *img, struct img_walk_layout *lay);
	/* Options img-create takes for this format (opts.h; they include
	 * size, and backing_file/backing_fmt where the format has them). */
	const struct img_opt_desc *create_opts;
	/* Write a new, empty image to img->io (a fresh writable file that
	 * becomes img->path): options are checked, size is set and rounded
	 * to 512, the backing file (if any) was found. NULL: cannot create. */
	int (*create)(struct img *img, const struct img_opts *o);
	/* Filling an image opened writable (writer.h); NULL: read-only. */
	const struct img_writer_ops *writer;
	/* Check (and with c->fix repair) the image, opened with
	 * img_open_opts.check (check.h); NULL: nothing to check (raw). */
	int (*check)(struct img_check_ctx *c);
	/* Compact the image in place (img_compact, compact.c); NULL: not
	 * supported yet. */
	int (*compact)(struct img *img, const struct img_compact_opts *o,
		       struct img_compact_result *r);
	/* Demote in place or list the features (img_demote, demote.c):
	 * fill r->f; NULL: the format is already its oldest form. */
	int (*demote)(struct img *img, const struct img_demote_opts *o,
		      struct img_demote_result *r);
};

/* raw.c, for every format's create: zero bytes [off, off+n) of io; size
 * a new file to `to` bytes, from `from` on reserving blocks (mode
 * "falloc") or writing zeros ("full"), or neither ("off"). */
int img_write_zeros(struct img_io *io, uint64_t off, uint64_t n);
int img_preallocate(struct img *img, uint64_t from, uint64_t to,
		    const char *mode);

/* The driver of a format name, or NULL. */
const struct img_driver *img_driver_by_name(const char *name);

#define IMG_MAX_PROPS 24

struct img {
	const struct img_driver *drv;
	void *priv;              /* driver state */
	char *path;              /* as given by the caller */
	struct img_io *io;       /* the image file */
	struct img_io *data_io;  /* where data clusters live (== io unless an
				  * external data file) */
	char *data_path;         /* external data file's resolved path */
	uint64_t size;           /* virtual size in bytes */
	uint64_t file_size;
	uint32_t cluster_size;   /* 0 for raw */
	enum img_compress compress;

	/* Backing chain. */
	char *backing_name;      /* as stored */
	char *backing_fmt;       /* as stored, or NULL */
	char *backing_path;      /* resolved */
	struct img *backing;
	struct img *parent;      /* the image this one backs, or NULL */
	int depth;               /* 0 = top */
	int in_memory;           /* img_open_mem: no file behind it, and no
				  * other file is opened for it */
	dev_t dev;               /* identity of the file, for loop detection */
	ino_t ino;

	/* Encryption (qcow/qcow2 AES). */
	int encrypted;           /* 0, 1 = AES, 2 = LUKS */
	void *aes;               /* expanded key, crypt.c */
	uint8_t *key;
	size_t key_len;

	/* Info for img-info. */
	int dirty;
	struct img_prop props[IMG_MAX_PROPS];
	int nprops;
	struct img_snapshot *snapshots;
	int nsnapshots;
	struct img_bitmap *bitmaps;
	int nbitmaps;

	/* Decompressed-cluster cache (image.c). */
	uint8_t *zbuf, *zin;
	uint64_t zbuf_host;      /* host offset of the cached cluster, or ~0 */
	size_t zin_cap;

	/* Writing (writer.h). */
	int writable;            /* opened with img_open_opts.writable */
	int force_share;         /* img_open_opts.force_share, for the files
				  * opened later (backing, data file) */
	int no_writers;          /* img_open_opts.no_writers, or writable: the
				  * same for the files opened later */
	unsigned create_flags;   /* img_create's flags, for the driver */
	int lock_use;            /* enum img_lock_use the file was locked
				  * for (lock.h), for files opened later */
	int checking;            /* opened for img_check: drivers leave table
				  * problems to the check to report */
	int write_in_place;      /* the writer edits an existing image (not a
				  * new temporary one): it must order and
				  * flush its writes, and mark the image
				  * dirty while it works */
	void *wstate;            /* the format writer's state */
	struct img_emit *emit;   /* img-convert to a pipe (emit.h), or NULL */
	struct img_copy_src *copy_src; /* img-convert: where the data being
				  * written already lies (copy.h) */

	/* Last error. */
	int err;
	char errmsg[512];
	uint64_t actual_size;
};

/* Whether the caller asked to stop (img.h: cancellation); then record
 * -ECANCELED ("interrupted") on img and return it, else 0. */
int img_cancel_point(struct img *img, const volatile sig_atomic_t *cancel);

/* Record an error on img and return code; the message is a printf format. */
int img_error(struct img *img, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Add a typed property for info output; strings are copied. */
void img_prop_str(struct img *img, const char *key, const char *val);
void img_prop_bool(struct img *img, const char *key, int val);
void img_prop_int(struct img *img, const char *key, int64_t val);

/* Read exactly len bytes of img->io at off; on failure record an error
 * naming what (e.g. "L2 table") and return its code. Reads that run past
 * the end of the file fail with "... at 0x..: offset beyond end of file". */
int img_read_meta(struct img *img, const char *what, void *buf, size_t len,
		  uint64_t off);

/* Small arithmetic the drivers share. */
/* A check reads a table running past the end of the file as zeros there,
 * as QEMU does, but only that much of it past the end (QEMU's cap on a
 * qcow2 L1 table): a hostile header cannot make it allocate more than
 * the file's size plus this. */
#define IMG_MAX_TABLE_PAST_EOF (32u << 20)

static inline int img_table_past_eof_ok(uint64_t off, uint64_t bytes,
					uint64_t file_size)
{
	uint64_t end = off + bytes;

	return end >= off && end <= file_size + IMG_MAX_TABLE_PAST_EOF;
}

static inline uint64_t img_min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t img_max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline int img_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}
/* a / b, rounded up (b > 0). */
static inline uint64_t img_div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}
/* log2 of v > 0, rounded down. */
static inline unsigned img_log2(uint64_t v)
{
	return 63 - (unsigned)__builtin_clzll(v);
}

/* Overflow-checked helpers. */
static inline int img_add_overflows(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}
static inline int img_mul_overflows(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

/* Open img->data_path as img->data_io (read-write when img is), locked
 * as a file of role (enum img_lock_role) is for use (enum img_lock_use;
 * writing when img is writable); errors name it as what ("data file"). */
int img_open_data_io(struct img *img, const char *what, int use, int role);

/* Open the backing chain (read-only) of an image opened without it
 * (img_open_opts.check or .no_backing); nothing to do if it is open or
 * there is none. Errors name the backing file. */
int img_open_backing(struct img *img);

/* Whether guest range [off, off+len) of img's backing chain reads as zeros
 * (yes without a backing file, or past its end); buf holds len bytes of
 * scratch space. Opens the chain on first need. For img-compact: a zero
 * cluster over a backing file may only become unallocated where this
 * holds. */
int img_backing_reads_zero(struct img *img, uint64_t off, uint64_t len,
			   void *buf, int *zero);
/* What img's backing chain reads at [off, off+len) into buf: zeros where
 * it has none (no backing file, past its end). Opens the chain first. */
int img_backing_read(struct img *img, uint64_t off, void *buf, size_t len);
/* Read the data cluster at host (for guest offset guest, named in the
 * error) into buf, one cluster. */
int img_compact_read_cluster(struct img *img, void *buf, uint64_t host,
			     uint64_t guest);

/* demote.c: for the drivers' demote. A feature entry added to r (zeroed,
 * named, classed, removable); whether o asks to remove feature name. */
struct img_feature *img_demote_add(struct img_demote_result *r,
				   const char *name,
				   enum img_feature_class cls);
int img_demote_wanted(const struct img_demote_opts *o, const char *name);
/* Before the first write: the file system has room for growth bytes more
 * (statvfs), else an error naming the image and what is missing. */
int img_demote_room(struct img *img, struct img_demote_result *r,
		    uint64_t growth);
/* Run check (a driver's checker) on c, its counts zeroed first; an image
 * with errors is refused, with the advice to repair it. */
struct img_check_ctx;
int img_demote_check(struct img_check_ctx *c,
		     int (*check)(struct img_check_ctx *c));

/*
 * Status of the run at guest offset off through the backing chain, the way
 * `qemu-img map` walks it: down while a layer neither stores data nor reads
 * as zero. *layer is the layer that answered (its extent in *ext), *depth
 * its depth. An UNALLOC answer means zeros (no backing, or past its end).
 */
int img_chain_status(struct img *img, uint64_t off, uint64_t len,
		     struct img_extent *ext, struct img **layer, int *depth);
/* Read n bytes at guest off of the extent ext of layer l (DATA or ZERO). */
int img_read_extent(struct img *l, const struct img_extent *ext, uint64_t off,
		    uint8_t *buf, size_t n);

/*
 * salvage.c: the two calls above for a conversion with --salvage
 * (img_convert_opts.salvaged set): where a range cannot be read, it reads
 * as zeros (IMG_EXT_ZERO of the top layer, or zeroed bytes) and is
 * reported, merged with its neighbours, instead of failing. Without
 * salvaged, they fail as the plain calls do (a backing file's error is
 * named on img). img_salvage_flush reports what is still pending.
 */
struct img_salvage {
	void (*fn)(uint64_t off, uint64_t len, const char *why, void *arg);
	void *arg;
	uint64_t off, len;          /* the pending report */
	char why[512];
};
void img_salvage_init(struct img_salvage *s, const struct img_convert_opts *o);
int img_salvage_status(struct img_salvage *s, struct img *img, uint64_t off,
		       uint64_t len, struct img_extent *e, struct img **layer,
		       int *depth);
int img_salvage_read(struct img_salvage *s, struct img *img, struct img *l,
		     const struct img_extent *e, uint64_t off, uint8_t *buf,
		     size_t n);
void img_salvage_flush(struct img_salvage *s);

/* extent.c: building runs for block_status from per-table lookups. */
/* Whether run b, starting where a ends, continues a (never compressed). */
int img_extent_joins(const struct img_extent *a, const struct img_extent *b);
/* Bytes from pos (< end) over the empty L1 slot holding it and the empty
 * slots after it; each slot maps 2^shift guest bytes. */
uint64_t img_empty_l1_run(const uint64_t *l1, uint64_t l1_entries,
			  unsigned shift, uint64_t pos, uint64_t end);
/* A driver's lookup: the run at pos within one table, ending by end. */
typedef int (*img_lookup_fn)(struct img *img, uint64_t pos, uint64_t end,
			     struct img_extent *e);
/* block_status from lookups: join runs across tables while they agree. */
int img_status_by_lookup(struct img *img, img_lookup_fn lookup, uint64_t off,
			 uint64_t len, struct img_extent *ext);
/* Decode one stored L2 entry (host order) of a whole cluster into e;
 * returns 1 if it is usable. For qcow and QED, an entry of 0 is
 * unallocated. */
typedef int (*img_entry_fn)(struct img *img, uint64_t entry,
			    struct img_extent *e);
/*
 * Grow run e, which ends with the cluster of entry idx of a table of n
 * 8-byte entries, over the entries after it while they continue it, up to
 * limit bytes. An unusable entry ends the run quietly: the lookup that
 * starts there reports it.
 */
void img_extend_in_table(struct img *img, const uint8_t *table, uint64_t idx,
			 uint64_t n, int little_endian, uint64_t cs,
			 uint64_t limit, img_entry_fn usable,
			 struct img_extent *e);

/* Drivers. */
extern const struct img_driver img_raw_driver;
extern const struct img_driver img_qcow_driver;
extern const struct img_driver img_qcow2_driver;
extern const struct img_driver img_qed_driver;
extern const struct img_driver img_addcow_driver;

/* compress.c: inflate exactly outlen bytes of a compressed cluster. */
int img_decompress(enum img_compress type, const uint8_t *in, size_t inlen,
		   uint8_t *out, size_t outlen);

/* crypt.c: qcow/qcow2 AES-128-CBC, one IV per 512-byte guest sector. */
int img_aes_setkey(struct img *img);
void img_aes_decrypt(struct img *img, uint8_t *buf, size_t len,
		     uint64_t guest_sector);
/* 1 if a decrypted 512-byte sector looks like plaintext, not noise. */
int img_aes_plausible(const uint8_t *sector);

/*
 * compress.c: compress one cluster of len bytes into out (room for outcap
 * bytes) as the format stores it: raw deflate with a 4 KiB window (qcow,
 * qcow2 zlib) or a zstd frame. Returns the compressed length, or -ENOSPC
 * when it would not be smaller than outcap (store the cluster
 * uncompressed then). Safe to call from several threads at once.
 */
int img_compress(enum img_compress type, const uint8_t *in, size_t len,
		 uint8_t *out, size_t outcap);
/* Free the calling thread's (de)compression contexts (at thread exit). */
void img_codec_thread_end(void);

/* zero.c: 1 if all len bytes are zero (word-at-a-time). */
int img_is_zero(const void *buf, size_t len);
/* Length of the zero run at the start of buf (a multiple of gran, except
 * possibly at the end of buf). */
size_t img_zero_prefix(const void *buf, size_t len, size_t gran);

#endif
