/* read.c: reading guest data: the chain walk shared by map and export, and compressed and encrypted clusters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"

int img_chain_status(struct img *img, uint64_t off, uint64_t len,
		     struct img_extent *ext, struct img **layer, int *depth)
{
	struct img *l = img;
	int d = 0;

	for (;;) {
		int ret = l->drv->block_status(l, off, len, ext);
		if (ret < 0) {
			if (l != img)
				img_error(img, ret, "backing file '%s': %s",
					  l->path, img_errmsg(l));
			return ret;
		}
		if (ext->length == 0 || ext->start != off)
			return img_error(img, IMG_E_CORRUPT,
					 "internal error: %s driver made no progress at 0x%llx",
					 l->drv->name, (unsigned long long)off);
		if (ext->length > len)
			ext->length = len;
		len = ext->length;
		if (ext->kind != IMG_EXT_UNALLOC || !l->backing ||
		    off >= l->backing->size)
			break;
		if (len > l->backing->size - off)
			len = l->backing->size - off;
		l = l->backing;
		d++;
	}
	*layer = l;
	*depth = d;
	return 0;
}

static int read_compressed(struct img *l, const struct img_extent *e,
			   uint64_t off, uint8_t *buf, size_t n)
{
	uint32_t cs = l->cluster_size;
	int ret;

	if (l->zbuf_host != e->host) {
		/* A stream longer than two clusters cannot come from a
		 * cluster: refuse rather than allocate what a header says. */
		if (!e->clen || e->clen > 2 * (uint64_t)cs + 1024)
			return img_error(l, IMG_E_CORRUPT,
					 "compressed cluster at 0x%llx: length %llu too large",
					 (unsigned long long)e->host,
					 (unsigned long long)e->clen);
		if (!l->zbuf)
			l->zbuf = malloc(cs);
		if (l->zin_cap < e->clen) {
			free(l->zin);
			l->zin = malloc(e->clen);
			l->zin_cap = l->zin ? e->clen : 0;
		}
		if (!l->zbuf || !l->zin)
			return img_error(l, -ENOMEM, "out of memory");
		ret = img_io_read_zfill(l->io, l->zin, e->clen, e->host);
		if (ret < 0)
			return img_error(l, ret,
					 "cannot read compressed cluster at 0x%llx: %s",
					 (unsigned long long)e->host,
					 img_strerror(ret));
		l->zbuf_host = UINT64_MAX;
		ret = img_decompress(l->compress, l->zin, e->clen, l->zbuf, cs);
		if (ret < 0)
			return img_error(l, ret,
					 "compressed cluster at 0x%llx (guest 0x%llx) does not decompress",
					 (unsigned long long)e->host,
					 (unsigned long long)(off - off % cs));
		l->zbuf_host = e->host;
	}
	memcpy(buf, l->zbuf + off % cs, n);
	return 0;
}

static int read_encrypted(struct img *l, const struct img_extent *e,
			  uint64_t off, uint8_t *buf, size_t n)
{
	uint64_t start = off & ~511ULL;
	uint64_t end = (off + n + 511) & ~511ULL;
	size_t span = (size_t)(end - start);
	uint8_t *tmp = buf;
	int ret;

	if (!l->aes)
		return img_error(l, IMG_E_KEY,
				 "image is encrypted: a key is needed (--key-file)");
	if (start != off || span != n) {
		tmp = malloc(span);
		if (!tmp)
			return img_error(l, -ENOMEM, "out of memory");
	}
	ret = img_io_read_zfill(l->data_io, tmp, span, e->host - (off - start));
	if (ret < 0) {
		img_error(l, ret, "cannot read data at 0x%llx: %s",
			  (unsigned long long)e->host, img_strerror(ret));
	} else {
		img_aes_decrypt(l, tmp, span, start / 512);
		if (tmp != buf)
			memcpy(buf, tmp + (off - start), n);
	}
	if (tmp != buf)
		free(tmp);
	return ret;
}

int img_read_extent(struct img *l, const struct img_extent *e, uint64_t off,
		    uint8_t *buf, size_t n)
{
	int ret;

	if (e->kind != IMG_EXT_DATA) {
		memset(buf, 0, n);
		return 0;
	}
	if (e->flags & IMG_EXT_F_COMPRESSED)
		return read_compressed(l, e, off, buf, n);
	if (e->flags & IMG_EXT_F_ENCRYPTED)
		return read_encrypted(l, e, off, buf, n);
	ret = img_io_read_zfill(l->data_io, buf, n, e->host + (off - e->start));
	if (ret < 0)
		return img_error(l, ret, "cannot read data at 0x%llx: %s",
				 (unsigned long long)(e->host + (off - e->start)),
				 img_strerror(ret));
	return 0;
}

int img_read(struct img *img, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (off > img->size || len > img->size - off)
		return img_error(img, -EINVAL,
				 "read at 0x%llx past the virtual size",
				 (unsigned long long)off);
	while (len) {
		struct img_extent e;
		struct img *l;
		int depth, ret;

		ret = img_chain_status(img, off, len, &e, &l, &depth);
		if (ret < 0)
			return ret;
		ret = img_read_extent(l, &e, off, p, (size_t)e.length);
		if (ret < 0) {
			if (l != img)
				img_error(img, ret, "backing file '%s': %s",
					  l->path, img_errmsg(l));
			else
				img->err = ret;
			return ret;
		}
		off += e.length;
		p += e.length;
		len -= (size_t)e.length;
	}
	return 0;
}
