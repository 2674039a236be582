/* image.c: opening images: probe, driver, backing chain, key; and what they tell about themselves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "endian.h"
#include "imgint.h"
#include "lock.h"
#include "writer.h"

/* Probe order matters only for ties; raw is the fallback, never probed. */
static const struct img_driver *const drivers[] = {
	&img_qcow2_driver, &img_qcow_driver, &img_qed_driver,
	&img_addcow_driver, &img_raw_driver,
};
#define NDRIVERS (sizeof(drivers) / sizeof(drivers[0]))

const char *const *img_format_names(void)
{
	static const char *names[NDRIVERS + 1];

	size_t n = 0;

	for (size_t i = 0; i < NDRIVERS; i++)
		if (drivers[i])
			names[n++] = drivers[i]->name;
	return names;
}

const struct img_driver *img_driver_by_name(const char *name)
{
	for (size_t i = 0; i < NDRIVERS; i++)
		if (drivers[i] && !strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

/* A VMDK text descriptor, by QEMU's evidence: past comment lines and
 * lines of nothing but spaces, the first line is "version=1", 2 or 3 (ended by LF or
 * CR LF). */
static int vmdk_descriptor(const uint8_t *b, size_t len)
{
	const char *p = (const char *)b, *end = p + len;

	while (p < end && (*p == '#' || *p == ' ')) {
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			p++;
			continue;
		}
		while (p < end && *p == ' ')
			p++;
		if (p >= end || *p != '\n')
			return 0;
		p++;
	}
	if (p >= end || end - p < 10 || strncmp(p, "version=", 8) ||
	    p[8] < '1' || p[8] > '3')
		return 0;
	return p[9] == '\n' || (end - p >= 11 && !strncmp(p + 9, "\r\n", 2));
}

/* Whether name ends with suffix. */
static int ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	return n > k && !strcmp(name + n - k, suffix);
}

#define CLOOP_MAGIC "#!/bin/sh\n#V2.0 Format\n" \
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"

/* A growing Bochs redolog, version 1 or 2 (QEMU's bochs probe). */
static int bochs_header(const uint8_t *b, size_t len)
{
	uint32_t v;

	if (len < 512)
		return 0;
	v = get_le32(b + 64);
	return !memcmp(b, "Bochs Virtual HD Image", 23) &&
	       !memcmp(b + 32, "Redolog", 8) && !memcmp(b + 48, "Growing", 8) &&
	       (v == 0x00010000 || v == 0x00020000);
}

/* A Parallels header, version 2. */
static int parallels_header(const uint8_t *b, size_t len)
{
	return len >= 64 &&
	       (!memcmp(b, "WithoutFreeSpace", 16) ||
		!memcmp(b, "WithouFreSpacExt", 16)) &&
	       get_le32(b + 16) == 2;
}

/* Formats we do not read but must not mistake for raw disks, by the
 * evidence QEMU's probes use: a magic number (LUKS of any version, where
 * QEMU knows only version 1); for dmg, the name alone. */
static const char *foreign_format(const char *name, const uint8_t *b,
				  size_t len)
{
	static const struct {
		const char *name;
		size_t off, len;
		const char *magic;
	} foreign[] = {
		{ "vmdk", 0, 4, "KDMV" },
		{ "vmdk", 0, 4, "COWD" },
		{ "vhdx", 0, 8, "vhdxfile" },
		{ "vpc", 0, 8, "conectix" },
		{ "vdi", 64, 4, "\x7f\x10\xda\xbe" },
		{ "luks", 0, 6, "LUKS\xba\xbe" },
		{ "cloop", 0, sizeof(CLOOP_MAGIC) - 1, CLOOP_MAGIC },
	};

	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		if (len >= foreign[i].off + foreign[i].len &&
		    !memcmp(b + foreign[i].off, foreign[i].magic, foreign[i].len))
			return foreign[i].name;
	if (vmdk_descriptor(b, len))
		return "vmdk";
	if (bochs_header(b, len))
		return "bochs";
	if (parallels_header(b, len))
		return "parallels";
	if (ends_with(name, ".dmg"))
		return "dmg";
	return NULL;
}

/* The driver whose probe scores highest on head, else raw. */
static const struct img_driver *best_driver(const uint8_t *head, size_t n,
					    int *score)
{
	const struct img_driver *drv = &img_raw_driver;

	*score = 0;
	for (size_t i = 0; i < NDRIVERS; i++) {
		int sc = drivers[i] && drivers[i]->probe
				 ? drivers[i]->probe(head, n) : 0;
		if (sc > *score) {
			*score = sc;
			drv = drivers[i];
		}
	}
	return drv;
}

const char *img_probe_format(const char *name, const uint8_t *head,
			     size_t len)
{
	int score;
	const struct img_driver *drv = best_driver(head, len, &score);

	if (score <= 1 && foreign_format(name, head, len))
		return NULL;
	return drv->name;
}

static int pick_driver(struct img *img, const char *format)
{
	uint8_t head[512];
	const char *other;
	ssize_t n;
	int best;

	if (format) {
		img->drv = img_driver_by_name(format);
		if (!img->drv)
			return img_error(img, IMG_E_UNKNOWN_FMT,
					 "unknown format '%s'", format);
		return 0;
	}
	n = img_io_pread(img->io, head, sizeof(head), 0);
	if (n < 0)
		return img_error(img, (int)n, "cannot read header: %s",
				 img_strerror((int)n));
	img->drv = best_driver(head, (size_t)n, &best);
	other = best > 1 ? NULL : foreign_format(img->path, head, (size_t)n);
	if (other)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "unsupported format '%s' (use -f raw to read it as raw bytes)",
				 other);
	return 0;
}

struct img *img_new(void)
{
	struct img *img = calloc(1, sizeof(*img));

	if (img)
		img->zbuf_host = UINT64_MAX;
	return img;
}

char *img_path_beside(const char *image_path, const char *name)
{
	const char *slash = strrchr(image_path, '/');
	size_t dirlen;
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	dirlen = (size_t)(slash - image_path) + 1;
	p = malloc(dirlen + strlen(name) + 1);
	if (p) {
		memcpy(p, image_path, dirlen);
		strcpy(p + dirlen, name);
	}
	return p;
}

/* Names QEMU treats as protocols or JSON descriptions, not files. */
static int is_protocol_name(const char *name)
{
	const char *colon = strchr(name, ':');
	const char *slash = strchr(name, '/');

	if (!strncmp(name, "json:", 5) || strstr(name, "://"))
		return 1;
	/* "nbd:host:port", "fat:dir": a known prefix before any slash */
	if (colon && (!slash || colon < slash)) {
		static const char *proto[] = { "nbd", "fat", "vvfat", "ssh",
					       "http", "https", "iscsi",
					       "rbd", "gluster", "nfs" };
		for (size_t i = 0; i < sizeof(proto) / sizeof(proto[0]); i++)
			if ((size_t)(colon - name) == strlen(proto[i]) &&
			    !strncmp(name, proto[i], strlen(proto[i])))
				return 1;
	}
	return 0;
}

static int open_backing(struct img *img, const struct img_open_opts *o)
{
	struct img_open_opts bo = *o;
	struct img *b;
	int max = o->max_chain > 0 ? o->max_chain : IMG_MAX_CHAIN;
	int ret;

	if (is_protocol_name(img->backing_name))
		return img_error(img, IMG_E_UNSUPPORTED,
				 "backing file '%s': protocol names are not supported",
				 img->backing_name);
	if (img->depth + 1 > max)
		return img_error(img, IMG_E_CHAIN,
				 "backing chain deeper than %d images", max);
	bo.format = img->backing_fmt;
	if (bo.format && !img_driver_by_name(bo.format))
		return img_error(img, IMG_E_UNSUPPORTED,
				 "backing file '%s': unsupported backing format '%s'",
				 img->backing_name, bo.format);
	b = img_new();
	if (!img->backing_path || !b) {
		free(b);
		return img_error(img, -ENOMEM, "out of memory");
	}
	b->depth = img->depth + 1;
	b->parent = img;
	img->backing = b;
	/* Backing files are only read; under a writer or a copy, as QEMU
	 * does, nobody else may write them. */
	bo.no_writers = o->no_writers || o->writable;
	bo.writable = 0;
	ret = img_open(b, img->backing_path, &bo);
	if (ret < 0) {
		/* Nested failures read "backing file 'b': backing file 'c': ..." */
		char msg[sizeof(img->errmsg)];
		snprintf(msg, sizeof(msg), "%s", img_errmsg(b));
		if (!strncmp(msg, "backing file '", 14) || ret == IMG_E_CHAIN)
			return img_error(img, ret, "%s", msg);
		return img_error(img, ret, "backing file '%s': %s",
				 img->backing_path, msg);
	}
	return 0;
}

int img_open_backing(struct img *img)
{
	struct img_open_opts bo = { .force_share = img->force_share,
				    .no_writers = img->no_writers };

	if (img->backing || !img->backing_name)
		return 0;
	if (img->in_memory)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "backing file '%s': an image in memory opens no files",
				 img->backing_name);
	return open_backing(img, &bo);
}

/* A wrong AES key shows only as noise: decrypt a few data sectors and see. */
static int check_key(struct img *img)
{
	uint8_t sector[512];
	int tried = 0;
	uint64_t off = 0;

	for (int calls = 0; off < img->size && calls < 4096 && tried < 64;
	     calls++) {
		struct img_extent e;
		int ret = img->drv->block_status(img, off, img->size - off, &e);
		if (ret < 0)
			return ret;
		if (e.kind == IMG_EXT_DATA && (e.flags & IMG_EXT_F_ENCRYPTED)) {
			for (uint64_t s = 0; s < e.length && tried < 64;
			     s += 512, tried++) {
				uint64_t g = (e.start + s) & ~511ULL;
				ret = img_io_read_zfill(img->data_io, sector, 512,
							e.host + (g - e.start));
				if (ret < 0)
					return img_error(img, ret,
							 "cannot read encrypted data: %s",
							 img_strerror(ret));
				img_aes_decrypt(img, sector, 512, g / 512);
				if (img_aes_plausible(sector))
					return 0;
			}
		}
		off = e.start + e.length;
	}
	if (tried)
		return img_error(img, IMG_E_KEY,
				 "wrong key: %d sectors decrypt to noise", tried);
	return 0;
}

/* What an opened image must allow for the use asked for: writing, its
 * encryption key. */
static int open_rules(struct img *img, const struct img_open_opts *o)
{
	int ret;

	if (o->writable && !img->drv->writer)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "writing %s images is not supported",
				 img->drv->name);
	if (o->writable && img->encrypted)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "writing encrypted images is not supported");
	if (img->encrypted == 2 && !o->metadata_only)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "LUKS encryption is not supported (only img-info reads such images)");
	if (img->encrypted == 1 && !o->metadata_only) {
		if (o->key) {
			img->key = malloc(o->key_len ? o->key_len : 1);
			if (!img->key)
				return img_error(img, -ENOMEM, "out of memory");
			memcpy(img->key, o->key, o->key_len);
			img->key_len = o->key_len;
		}
		ret = img_aes_setkey(img);
		if (ret == 0)
			ret = check_key(img);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int check_loop(struct img *img)
{
	for (struct img *p = img->parent; p; p = p->parent)
		if (p->dev == img->dev && p->ino == img->ino)
			return img_error(img, IMG_E_CHAIN,
					 "backing chain loops back to '%s'",
					 p->path);
	return 0;
}

int img_chain_find(const struct img *img, uint64_t dev, uint64_t ino)
{
	int d = 0;

	for (const struct img *l = img; l; l = l->backing, d++)
		if ((uint64_t)l->dev == dev && (uint64_t)l->ino == ino)
			return d;
	return -1;
}

/* QEMU's locks on the image file, for what it is opened for: after the
 * driver is known (raw shares what a format's file cannot), before any
 * metadata is read. */
static int lock_image(struct img *img, const struct img_open_opts *o)
{
	enum img_lock_use use = o->writable ? IMG_LOCK_WRITE :
				o->metadata_only && !o->check ? IMG_LOCK_INFO :
				o->no_writers ? IMG_LOCK_COPY : IMG_LOCK_READ;
	enum img_lock_role role = img->drv == &img_raw_driver ? IMG_LOCK_RAW :
				  IMG_LOCK_IMAGE;
	int ret;

	img->lock_use = use;
	if (img->io->fd < 0)
		return 0;       /* an image in memory: no file, no locks */
	ret = img_lock_fd(img->io->fd, use, role, o->force_share);
	if (ret < 0)
		return img_error(img, ret, "%s", img_strerror(ret));
	return 0;
}

int img_open_data_io(struct img *img, const char *what, int use, int role)
{
	struct img_io *io;
	int ret;

	if (img->in_memory)
		return img_error(img, IMG_E_UNSUPPORTED,
				 "%s '%s': an image in memory opens no files",
				 what, img->data_path);
	ret = img_io_open_file(&io, img->data_path,
			       img->writable ? 0 : IMG_IO_RDONLY);
	if (ret < 0)
		return img_error(img, ret, "cannot open %s '%s': %s", what,
				 img->data_path, img_strerror(ret));
	ret = img_lock_fd(io->fd, img->writable ? IMG_LOCK_WRITE : use, role,
			  img->force_share);
	if (ret < 0) {
		img_io_close(io);
		return img_error(img, ret, "%s '%s': %s", what, img->data_path,
				 img_strerror(ret));
	}
	img->data_io = io;
	return 0;
}

/* What img_open and img_open_mem share: the handle takes its name and
 * what it is opened for. */
static int open_begin(struct img *img, const char *name,
		      const struct img_open_opts *o)
{
	img->path = strdup(name);
	if (!img->path)
		return img_error(img, -ENOMEM, "out of memory");
	img->writable = o->writable;
	img->checking = o->check;
	img->force_share = o->force_share;
	img->no_writers = o->no_writers || o->writable;
	if (o->writable && o->force_share)
		return img_error(img, -EINVAL,
				 "force-share can only be used with read-only opens");
	return 0;
}

/* The driver reads its metadata; every failure has a message. */
static int open_driver(struct img *img)
{
	int ret = img->drv->open(img);

	if (ret < 0 && !img->errmsg[0])
		img_error(img, ret, "%s", img_strerror(ret));
	return ret;
}

static int open_rest(struct img *img, const struct img_open_opts *o,
		     const struct stat *origin);

int img_open(struct img *img, const char *path, const struct img_open_opts *o)
{
	static const struct img_open_opts none;
	int ret;

	if (!o)
		o = &none;
	ret = open_begin(img, path, o);
	if (ret < 0)
		return ret;
	ret = img_io_open_file(&img->io, path, o->writable ? 0 : IMG_IO_RDONLY);
	if (ret == -ESPIPE)
		return img_error(img, ret, "not seekable (a pipe, FIFO, socket or terminal)");
	if (ret < 0)
		return img_error(img, ret, "%s", img_strerror(ret));
	return open_rest(img, o, NULL);
}

int img_open_fd(struct img *img, const char *name, int fd,
		const struct stat *origin, const struct img_open_opts *o)
{
	static const struct img_open_opts none;
	int ret;

	if (!o)
		o = &none;
	ret = open_begin(img, name, o);
	if (ret == 0)
		ret = img_io_from_fd(&img->io, fd, o->writable ? 0 : IMG_IO_RDONLY);
	if (ret < 0) {
		close(fd);
		return ret == -ENOMEM ? img_error(img, ret, "out of memory") : ret;
	}
	return open_rest(img, o, origin);
}

/* img_open once img->io is there: identity, driver, locks, chain. */
static int open_rest(struct img *img, const struct img_open_opts *o,
		     const struct stat *origin)
{
	struct stat st;
	int ret;

	img->data_io = img->io;
	if (fstat(img->io->fd, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return img_error(img, -EISDIR, "%s", img_strerror(-EISDIR));
		img->dev = st.st_dev;
		img->ino = st.st_ino;
		img->actual_size = (uint64_t)st.st_blocks * 512;
	}
	if (origin) {
		img->dev = origin->st_dev;
		img->ino = origin->st_ino;
	}
	ret = check_loop(img);
	if (ret < 0)
		return ret;
	ret = img_io_size(img->io, &img->file_size);
	if (ret < 0)
		return img_error(img, ret, "cannot get size: %s",
				 img_strerror(ret));
	ret = pick_driver(img, o->format);
	if (ret == 0)
		ret = lock_image(img, o);
	if (ret == 0)
		ret = open_driver(img);
	if (ret < 0)
		return ret;
	if (img->backing_name && !is_protocol_name(img->backing_name)) {
		img->backing_path = img_path_beside(img->path, img->backing_name);
		if (!img->backing_path)
			return img_error(img, -ENOMEM, "out of memory");
	}
	if (o->check)
		return 0;   /* metadata only, no backing chain */
	ret = open_rules(img, o);
	if (ret < 0)
		return ret;
	if (img->backing_name && !o->no_backing) {
		ret = open_backing(img, o);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Like img_open on a private copy of data; a file name read from the image
 * (backing or data file) is never opened: see img.h. */
int img_open_mem(struct img *img, const char *name, const void *data,
		 size_t len, const struct img_open_opts *o)
{
	static const struct img_open_opts none;
	int ret;

	if (!o)
		o = &none;
	img->in_memory = 1;
	ret = open_begin(img, name, o);
	if (ret < 0)
		return ret;
	ret = img_io_open_mem(&img->io, data, len);
	if (ret < 0)
		return img_error(img, ret, "%s", img_strerror(ret));
	img->data_io = img->io;
	img->file_size = img->actual_size = len;
	ret = pick_driver(img, o->format);
	if (ret == 0)
		ret = open_driver(img);
	if (ret < 0)
		return ret;
	return o->check ? 0 : open_rules(img, o);
}

int img_mem_data(const struct img *img, const void **data, size_t *len)
{
	if (!img->in_memory || !img->io)
		return -EINVAL;
	return img_io_mem_data(img->io, data, len);
}

void img_free(struct img *img)
{
	if (!img)
		return;
	img_free(img->backing);
	if (img->wstate && img->drv->writer)
		img->drv->writer->end(img);
	if (img->drv && img->drv->close)
		img->drv->close(img);
	if (img->data_io != img->io)
		img_io_close(img->data_io);
	img_io_close(img->io);
	for (int i = 0; i < img->nprops; i++)
		free((char *)img->props[i].str);
	for (int i = 0; i < img->nsnapshots; i++) {
		free(img->snapshots[i].id);
		free(img->snapshots[i].name);
	}
	free(img->snapshots);
	for (int i = 0; i < img->nbitmaps; i++)
		free(img->bitmaps[i].name);
	free(img->bitmaps);
	free(img->path);
	free(img->data_path);
	free(img->backing_name);
	free(img->backing_fmt);
	free(img->backing_path);
	free(img->aes);
	free(img->key);
	free(img->zbuf);
	free(img->zin);
	free(img);
}

const char *img_format(const struct img *img)
{
	return img->drv ? img->drv->name : NULL;
}

const char *img_path(const struct img *img)
{
	return img->path;
}

uint64_t img_size(const struct img *img)
{
	return img->size;
}

struct img *img_backing(const struct img *img)
{
	return img->backing;
}

void img_get_info(const struct img *img, struct img_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format = img_format(img);
	info->virtual_size = img->size;
	info->file_size = img->file_size;
	info->actual_size = img->actual_size;
	info->cluster_size = img->cluster_size;
	info->encryption = img->encrypted == 1 ? "aes" :
			   img->encrypted == 2 ? "luks" : NULL;
	info->dirty = img->dirty;
	info->backing_file = img->backing_name;
	info->backing_path = img->backing_path;
	info->backing_format = img->backing_fmt;
	info->data_path = img->data_path;
	info->props = img->props;
	info->nprops = img->nprops;
	info->snapshots = img->snapshots;
	info->nsnapshots = img->nsnapshots;
	info->bitmaps = img->bitmaps;
	info->nbitmaps = img->nbitmaps;
}
