/* img.h: public interface of libimg, the library behind the img-* commands. */
#ifndef IMG_H
#define IMG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Conventions: every function returning int gives 0 (or a count) on success
 * and a negative code on failure: -errno, or one of the IMG_E_* codes below.
 * After a failure, img_errmsg() on the handle says where and why, e.g.
 * "L2 table at 0x50000 past end of file". The library never prints or exits.
 */
enum img_errcode {
	IMG_E_BASE = -4096,
	IMG_E_CORRUPT,     /* the image breaks its format's rules */
	IMG_E_UNSUPPORTED, /* a valid image using something we do not handle */
	IMG_E_UNKNOWN_FMT, /* no format matched, or an unknown -f name */
	IMG_E_KEY,         /* encrypted image: key missing or wrong */
	IMG_E_CHAIN,       /* backing chain too deep or looping */
	IMG_E_TOOBIG,      /* a size or table exceeds our (QEMU's) limits */
	IMG_E_LOCKED,      /* another process holds the image (QEMU's locks) */
	IMG_E_LAST
};

/* Text for a code alone (errno codes use strerror). */
const char *img_strerror(int code);

struct img;

/* Options for opening an image; zero-initialise and fill what you need. */
struct img_open_opts {
	const char *format;      /* NULL: probe by magic */
	const uint8_t *key;      /* password for AES-encrypted qcow/qcow2 */
	size_t key_len;
	int no_backing;          /* do not open backing files */
	int metadata_only;       /* no data will be read: no key needed */
	int max_chain;           /* 0: default depth limit (IMG_MAX_CHAIN) */
	int writable;            /* open read-write for a format writer
				  * (the backing chain stays read-only) */
	int check;               /* for img_check: tables are not validated
				  * at open (the check reports them), no
				  * backing file is opened */
	int force_share;         /* -U: read even what another process may be
				  * writing; read-only opens only */
	int no_writers;          /* the guest data is copied (a conversion's
				  * source): no other process may write this
				  * image, its backing or its data file */
};
/*
 * Every file opened takes QEMU's image locks (OFD byte-range locks) for
 * its use, as qemu-img would, and holds them until img_free(). Writable
 * opens want consistent reads, writes and resizing, and share nothing.
 * Other opens want consistent reads (none with metadata_only without
 * check: that is qemu-img info) and, for qcow, qcow2 and QED files, let
 * nobody write or resize them; no_writers (and a writable open, for its
 * backing chain) lets nobody write any file whose data is read. Backing
 * files are locked as readers; an external data file as its image's
 * reader or writer. A conflict with
 * another process fails the open with IMG_E_LOCKED. force_share shares
 * everything: it is stopped only by writers that refuse readers.
 */
#define IMG_MAX_CHAIN 64

/* Handle life cycle: img_new() never fails short of memory (NULL). */
struct img *img_new(void);
int img_open(struct img *img, const char *path, const struct img_open_opts *o);
/* The format the first len bytes of a file named name say it is
 * ("qcow2"..., "raw" when none), as img_open probes; NULL for a format
 * we do not read (vmdk, vhdx...). */
const char *img_probe_format(const char *name, const uint8_t *head,
			     size_t len);
/* Like img_open on fd (a seekable file, which the image then owns: it is
 * closed with it, or on failure), named name in messages and for finding a
 * backing file beside it. origin, if not NULL, is the file the bytes came
 * from (unpacked from a pipe or archive: unpack.h): its identity is the
 * image's, for the checks that no output replaces a source. */
struct stat;
int img_open_fd(struct img *img, const char *name, int fd,
		const struct stat *origin, const struct img_open_opts *o);
void img_free(struct img *img);

/*
 * Open an image held in memory (len bytes at data; the library keeps its
 * own copy, so data may go away at once). name stands for the file in
 * messages. Options as for img_open, writable included: writes change the
 * copy only, and img_mem_data() gives its bytes back. No other file is
 * ever opened for it: an image naming a backing file opens as with
 * no_backing (unallocated ranges read as zeros, img_backing() is NULL),
 * and what needs that file or an external data file fails with
 * IMG_E_UNSUPPORTED. The copy is sparse as a file would be: 4 KiB blocks
 * of zeros are holes, and repairs and compaction punch holes in it.
 */
int img_open_mem(struct img *img, const char *name, const void *data,
		 size_t len, const struct img_open_opts *o);
/* The current bytes of an image opened with img_open_mem, valid until the
 * next write through it or img_free; -EINVAL for any other image. */
int img_mem_data(const struct img *img, const void **data, size_t *len);

/* Last error's detail ("" if none); the code of the last error. */
const char *img_errmsg(const struct img *img);
int img_errcode(const struct img *img);

/* Basic facts. */
const char *img_format(const struct img *img);
const char *img_path(const struct img *img);
uint64_t img_size(const struct img *img);
struct img *img_backing(const struct img *img);

/* Depth of the file with this device and inode number in img's backing
 * chain (0 = img itself), or -1 if it is not part of it. */
int img_chain_find(const struct img *img, uint64_t dev, uint64_t ino);

/*
 * Protected files: whether the file with this device and inode number is
 * one that img depends on: img itself, a file of its backing chain (as far
 * as it was opened) or an external data file of any of them. Returns the
 * depth of the layer concerned (0 = img) and sets *role to "the image
 * itself", "a backing file", "the external data file" or "the external
 * data file of a backing file"; -1 (and NULL) if it is none of them.
 * Writers ask before creating or writing any output.
 */
int img_depends_on(const struct img *img, uint64_t dev, uint64_t ino,
		   const char **role);

/* Read guest data [off, off+len) through the backing chain; past the
 * virtual size is an error. */
int img_read(struct img *img, uint64_t off, void *buf, size_t len);

/*
 * Guest address space as seen by `qemu-img map`: the status of the range
 * starting at off, walking down the backing chain while a layer neither
 * holds data nor reads as zero. Fills *m with the longest run from off
 * (at most len bytes) whose fields all agree.
 */
struct img_map {
	uint64_t start, length;
	int depth;               /* layer that answered, 0 = top */
	int present;             /* that layer allocates the range */
	int zero;                /* reads as zeros */
	int data;                /* data is stored */
	int has_offset;
	uint64_t offset;         /* host offset in `file` when has_offset */
	const char *file;        /* host file of that layer (data file for qcow2) */
	struct img *layer;       /* the layer that answered */
	int compressed, encrypted;
};
/* Returns 1 with *m filled, 0 when off is at the end, or a negative code. */
int img_map_next(struct img *img, uint64_t off, uint64_t len, struct img_map *m);

/* One typed format property, for info output (qemu-img field names). */
enum img_prop_type { IMG_PROP_STR, IMG_PROP_BOOL, IMG_PROP_INT };
struct img_prop {
	const char *key;         /* e.g. "refcount-bits" */
	enum img_prop_type type;
	const char *str;
	int64_t num;
};

struct img_snapshot {
	char *id, *name;
	uint64_t vm_state_size, disk_size, vm_clock_nsec, icount;
	uint32_t date_sec, date_nsec;
	int has_icount;
};

struct img_bitmap {
	char *name;
	uint32_t granularity;
	int in_use, autom;
};

/* What img-info shows; filled by the format driver at open. */
struct img_info {
	const char *format;
	uint64_t virtual_size;
	uint64_t file_size;      /* length of the image file */
	uint64_t actual_size;    /* allocated bytes (st_blocks * 512) */
	uint32_t cluster_size;   /* 0 where the format has none */
	const char *encryption;  /* NULL, "aes" or "luks" */
	int dirty;               /* qcow2 dirty bit, QED need-check */
	const char *backing_file;     /* as stored in the image */
	const char *backing_path;     /* resolved path, when opened */
	const char *backing_format;   /* as stored, NULL if none */
	const char *data_path;        /* where the data lives when not in
				       * the image file (a qcow2 external
				       * data file, add-cow's image file),
				       * resolved; else NULL */
	const struct img_prop *props; /* format-specific, nprops entries */
	int nprops;
	const struct img_snapshot *snapshots;
	int nsnapshots;
	const struct img_bitmap *bitmaps;
	int nbitmaps;
};
void img_get_info(const struct img *img, struct img_info *info);

/* How a conversion writes its target (img-convert's options). */
typedef void (*img_progress_fn)(uint64_t done, uint64_t total, void *arg);
/* Bytes this process has written through libimg so far (to images,
 * outputs, pipes; copies made in the kernel included), for progress
 * reports; any thread may call it. */
uint64_t img_bytes_written(void);

/*
 * How data that moves unchanged between files (a conversion's stored
 * clusters, a compaction's relocated ones) is copied. Whatever the mode,
 * compressed, encrypted and unaligned data, pipes and files on other file
 * systems take the read/write path.
 */
enum img_copy_mode {
	IMG_COPY_AUTO,       /* shared extents (reflink), else in-kernel copy,
			      * else read and write, falling back silently */
	IMG_COPY_KERNEL,     /* copy_file_range (which may share extents
			      * itself), else read and write */
	IMG_COPY_REFLINK,    /* shared extents; fail where the file system
			      * cannot share them */
	IMG_COPY_READ_WRITE, /* every byte read and written by us */
};
struct img_convert_opts {
	/* Zero runs of at least this many bytes in stored data become holes
	 * (raw) or stay unallocated (cluster formats: whole zero clusters);
	 * 0 writes everything, fully allocating the target (-S 0). */
	uint64_t zero_gran;
	int compress;              /* compressed clusters (-c) */
	/* Stored clusters that move unchanged (not compressed, encrypted,
	 * or compared with a -B backing file outside the chain) are copied
	 * file to file; with zero_gran set, each is first probed for zeros
	 * by reading its first 4 KiB, and read whole only when those are
	 * zero. */
	enum img_copy_mode copy_mode;
	int reserve;               /* raw: reserve the new file's blocks first
				    * (preallocation=falloc) */
	int in_place;              /* the target existed (-n): its old
				    * contents must not show through */
	int target_is_zero;        /* ...unless it is known to read as zeros */
	struct img *target_backing; /* the target's backing file (-B), opened:
				    * what reads the same there is not written */
	img_progress_fn progress;  /* called now and then with bytes done */
	void *progress_arg;
	/* Cancellation (see IMG_CANCEL below): polled between chunks; an
	 * in-place target (-n) is then finished as far as it was written
	 * (tables, dirty bit cleared) and -ECANCELED returned. */
	const volatile sig_atomic_t *cancel;
	/* Salvage (img-convert --salvage): where the source cannot be read
	 * (damaged metadata, a failed read, data that does not decompress),
	 * the range is converted as zeros instead of failing, and reported
	 * here: guest range, reason (a neighbour with the same reason is
	 * merged into one call). NULL: the first such error fails. A missing
	 * key, out of memory and interruptions stay fatal. */
	void (*salvaged)(uint64_t off, uint64_t len, const char *why,
			 void *arg);
	void *salvaged_arg;
};

/*
 * Cancellation of long in-place work: where an options struct has a
 * `cancel` pointer, the library polls *cancel at its safe points (between
 * ordered steps: convert and export chunks, compaction tables, relocation
 * batches) and when it is non-zero stops there, leaving the image
 * consistent (leaks at worst), and returns -ECANCELED. A signal handler
 * sets it; NULL never cancels.
 */

/*
 * Export the whole virtual disk as raw bytes to fd. A new regular file
 * gets holes where the guest reads zeros (known from metadata, or found by
 * scanning data in blocks of zero_gran bytes; zero_gran 0 writes every
 * byte, as `qemu-img convert -S 0` does). In place, the target keeps its
 * size, must be at least as big, and zero runs are punched (or written)
 * unless it reads as zeros already. A pipe gets every byte.
 */
int img_export_raw(struct img *img, int fd, const struct img_convert_opts *o);

/*
 * Copy src into dst, an image of a writable cluster format opened with
 * img_open_opts.writable and at least as big. On failure img_errmsg(dst)
 * says what went wrong, naming the file.
 */
int img_convert(struct img *src, struct img *dst,
		const struct img_convert_opts *o);

/*
 * Creating images (opts.h describes the options). img_create_options()
 * gives the options of a format that can be created, or NULL. The new
 * image appears at path atomically (a temporary file, renamed); a backing
 * file must be openable unless IMG_CREATE_UNSAFE, and gives the size when
 * none is set. The size is rounded up to whole 512-byte sectors.
 */
struct img_opts;
struct img_opt_desc;
#define IMG_CREATE_UNSAFE 0x1   /* do not open the backing file (-u) */
#define IMG_CREATE_SYNC   0x2   /* fsync before the image appears */
#define IMG_CREATE_NEW_FILES 0x4 /* a file the format keeps beside the
				  * image (add-cow's image file) must not
				  * exist yet: img-convert writes it whole */
const struct img_opt_desc *img_create_options(const char *fmt);
int img_create(struct img *img, const char *path, const char *fmt,
	       struct img_opts *o, unsigned flags);
/* The same into fd, an empty file opened for writing that path names
 * (relative backing and data file names are resolved beside path); the
 * caller makes it appear. For img-convert's temporary output. */
int img_create_fd(struct img *img, const char *path, int fd, const char *fmt,
		  struct img_opts *o, unsigned flags);
/* For a source whose length is known only at its end (a stream, see
 * stream.h's img_convert_stream): the size to create fmt with, shrunk
 * to the stream's length once it ends; 0 where fmt (or these options:
 * preallocation, a data file) needs the size from the start. */
uint64_t img_create_stream_size(const char *fmt, const struct img_opts *o);
/* "fmt=qcow2 cluster_size=65536 ... size=N", as qemu-img create says. */
int img_create_describe(const char *fmt, const struct img_opts *o, char *buf,
			size_t len);

/*
 * Checking an image's metadata, as `qemu-img check` does (field names are
 * its JSON names). One pass: with fix, repairs are made during it and the
 * counts say what was found and fixed; run a second pass without fix to
 * see what remains (img-check does). Open the image with
 * img_open_opts.check (and .writable to fix).
 */
enum img_check_fix {
	IMG_CHECK_NO_FIX = 0,
	IMG_CHECK_FIX_LEAKS = 1,   /* -r leaks */
	IMG_CHECK_FIX_ALL = 2,     /* -r all: leaks and what needs no guessing */
};
struct img_check {
	uint64_t check_errors;     /* the check itself could not read something */
	uint64_t corruptions, leaks;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t image_end_offset; /* 0: not reported for this format */
	uint64_t total_clusters, allocated_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	uint64_t bytes_reclaimed;  /* leaked space given back to the file system */
	int dirty;                 /* dirty / need-check bit set */
};
/* A line describing one problem or repair, without newline. */
typedef void (*img_check_msg_fn)(const char *line, void *arg);
struct img_check_opts {
	enum img_check_fix fix;
	img_check_msg_fn msg;      /* problem lines (NULL: dropped) */
	void *msg_arg;
	img_progress_fn progress;  /* NULL: none */
	void *progress_arg;
	const volatile sig_atomic_t *cancel;  /* repairs stop at a safe point */
};
int img_check(struct img *img, const struct img_check_opts *o,
	      struct img_check *res);
/* Whether img's format has anything to check: raw (with an empty file)
 * has no metadata, and img_check refuses it with IMG_E_UNSUPPORTED
 * ("the raw format does not support checks"; qemu-img exits 63). */
int img_can_check(const struct img *img);
/* Before a format writer opens path in place (o as it will open it): an
 * image that an interrupted writer left marked dirty or need-check gets
 * its metadata repaired (as -r all), as QEMU does when it opens one for
 * writing. *repaired says whether it was; errors are left on img. */
int img_repair_if_dirty(struct img *img, const char *path,
			const struct img_open_opts *o, int *repaired);

/*
 * Compacting an image in place (img-compact): every allocated data cluster
 * is read; one that holds only zeros stops being stored (unallocated where
 * that reads as zeros, else the format's zero-cluster entry), and the space
 * it held, with any leaked space, goes back: clusters from the end of the
 * file move down into the freed ones and the file is truncated. Each step
 * is ordered so that an interruption leaves an image that opens and reads
 * the same; running again finishes the job. Open the image with
 * img_open_opts.check and .no_backing (and .writable unless dry_run).
 */
struct img_compact_opts {
	int dry_run;               /* scan and report, write nothing */
	uint64_t zero_gran;        /* zero detection unit where a format has
				    * subclusters; 0: whole clusters */
	img_check_msg_fn msg;      /* lines saying what was done (NULL: dropped) */
	void *msg_arg;
	img_progress_fn progress;  /* NULL: none */
	void *progress_arg;
	const volatile sig_atomic_t *cancel;  /* stop at a safe point */
};
struct img_compact_result {
	uint64_t cluster_size;
	uint64_t clusters_scanned; /* allocated data clusters read */
	uint64_t zero_clusters;    /* of those, all zeros */
	uint64_t clusters_freed;   /* zero clusters no longer stored */
	uint64_t clusters_kept;    /* zero clusters that must stay stored */
	uint64_t leaks;            /* clusters nothing referenced before */
	uint64_t bytes_freed;      /* space given back (dry run: that would be) */
	uint64_t file_size_before, file_size_after; /* dry run: an estimate */
	uint64_t file_size_peak;   /* the largest the file was during the run
				    * (>= before; dry run: = before) */
	int dry_run;
};
int img_compact(struct img *img, const struct img_compact_opts *o,
		struct img_compact_result *r);

/*
 * Demoting an image in place (img-demote): the features an older reader
 * refuses or misreads are removed without changing a byte of guest data.
 * img_demote with o->list set (or dry_run) only reports; otherwise every
 * step is ordered so that an interruption leaves an image that opens and
 * reads the same, with leaked clusters at worst, and a rerun finishes.
 * Open with img_open_opts.check and .no_backing (and .writable to write).
 */
enum img_feature_class {
	IMG_FEATURE_INCOMPATIBLE, /* an older reader must refuse the image */
	IMG_FEATURE_COMPATIBLE,   /* an older reader may ignore it */
	IMG_FEATURE_AUTOCLEAR,    /* valid only while kept in sync */
};
#define IMG_DEMOTE_MAX_FEATURES 16
struct img_feature {
	const char *name;         /* as --feature takes it, e.g. "zero-clusters" */
	enum img_feature_class cls;
	int removable;            /* this version can remove it */
	const char *why_not;      /* when not removable: why (else NULL) */
	uint64_t entries;         /* table entries to rewrite */
	uint64_t bytes;           /* bytes to write */
	uint64_t growth;          /* bytes the file grows by */
	int removed;              /* img_demote removed it */
	char note[256];           /* e.g. the names of the bitmaps dropped */
};
struct img_demote_opts {
	int list;                  /* report the features only */
	int dry_run;               /* report what would be done, write nothing */
	const char *const *only;   /* NULL, or the names to remove (NULL-ended) */
	img_check_msg_fn msg;      /* lines saying what was done (may be NULL) */
	void *msg_arg;
	img_progress_fn progress;
	void *progress_arg;
	const volatile sig_atomic_t *cancel;  /* stop at a safe point */
};
struct img_demote_result {
	struct img_feature f[IMG_DEMOTE_MAX_FEATURES];
	int n;
	int oldest;                /* already the oldest form: nothing to do */
	const char *version_before, *version_after; /* e.g. "1.1", "0.10" */
	uint64_t file_size_before, file_size_after; /* dry run: an estimate */
	uint64_t free_space;       /* bytes the file system has for the growth */
	const char *standalone;    /* add-cow: the image file, which stands
				    * alone once no cluster reads from the
				    * backing file (NULL: not add-cow) */
	int dry_run;
};
/* Names of the features a format can have, for --feature checks; NULL-ended. */
const char *const *img_demote_feature_names(void);
int img_demote(struct img *img, const struct img_demote_opts *o,
	       struct img_demote_result *r);

/* A file name stored in an image (a backing file), resolved against the
 * image's directory as readers do; malloc'ed, NULL without memory. */
char *img_path_beside(const char *image_path, const char *name);

/* Names of the formats we know, for messages and -f checks. */
const char *const *img_format_names(void);

#endif
