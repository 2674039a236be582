/* compress.c: compressed clusters both ways: raw deflate (qcow, qcow2 zlib) and zstd. */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include "imgint.h"

/*
 * Both formats store the compressed length only roughly (qcow2 to 512-byte
 * precision), so the input may have trailing garbage; what counts is that
 * exactly outlen bytes come out.
 */
/* Contexts are kept per thread and reset per cluster: setting one up
 * costs more than inflating a small cluster. */
static __thread z_stream *zs;
static __thread ZSTD_DCtx *zstd_ctx;

static int inflate_deflate(const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t outlen)
{
	int ret;

	if (!zs) {
		z_stream *z = calloc(1, sizeof(*z));
		if (!z || inflateInit2(z, -12) != Z_OK) {
			free(z);
			return -ENOMEM;
		}
		zs = z;
	} else if (inflateReset(zs) != Z_OK) {
		return -ENOMEM;
	}
	zs->next_in = (Bytef *)in;
	zs->avail_in = (uInt)inlen;
	zs->next_out = out;
	zs->avail_out = (uInt)outlen;
	ret = inflate(zs, Z_FINISH);
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && zs->avail_out == 0)
		return 0;
	return IMG_E_CORRUPT;
}

static int inflate_zstd(const uint8_t *in, size_t inlen, uint8_t *out,
			size_t outlen)
{
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	ZSTD_DCtx *dctx;
	size_t r = 1;

	if (!zstd_ctx)
		zstd_ctx = ZSTD_createDCtx();
	dctx = zstd_ctx;
	if (!dctx)
		return -ENOMEM;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	while (ob.pos < ob.size && ib.pos < ib.size) {
		size_t in0 = ib.pos, out0 = ob.pos;
		r = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(r) || r == 0)
			break;
		if (ib.pos == in0 && ob.pos == out0)
			break;  /* no progress: a hostile stream must not hang us */
	}
	if (ZSTD_isError(r) || ob.pos != ob.size)
		return IMG_E_CORRUPT;
	return 0;
}

int img_decompress(enum img_compress type, const uint8_t *in, size_t inlen,
		   uint8_t *out, size_t outlen)
{
	if (type == IMG_COMPRESS_ZSTD)
		return inflate_zstd(in, inlen, out, outlen);
	return inflate_deflate(in, inlen, out, outlen);
}

/* ---- compressing, for the writers ------------------------------------ */

static __thread z_stream *zs_out;
static __thread ZSTD_CCtx *zstd_cctx;

static int deflate_cluster(const uint8_t *in, size_t len, uint8_t *out,
			   size_t outcap)
{
	int ret;

	if (!zs_out) {
		z_stream *z = calloc(1, sizeof(*z));
		/* The window and memory level QEMU uses: a 4 KiB window is
		 * what every qcow reader expects. */
		if (!z || deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12,
				       9, Z_DEFAULT_STRATEGY) != Z_OK) {
			free(z);
			return -ENOMEM;
		}
		zs_out = z;
	} else if (deflateReset(zs_out) != Z_OK) {
		return -ENOMEM;
	}
	zs_out->next_in = (Bytef *)in;
	zs_out->avail_in = (uInt)len;
	zs_out->next_out = out;
	zs_out->avail_out = (uInt)outcap;
	ret = deflate(zs_out, Z_FINISH);
	if (ret != Z_STREAM_END)
		return -ENOSPC;   /* did not fit: not worth compressing */
	return (int)(outcap - zs_out->avail_out);
}

static int zstd_cluster(const uint8_t *in, size_t len, uint8_t *out,
			size_t outcap)
{
	size_t r;

	if (!zstd_cctx)
		zstd_cctx = ZSTD_createCCtx();
	if (!zstd_cctx)
		return -ENOMEM;
	r = ZSTD_compressCCtx(zstd_cctx, out, outcap, in, len,
			      ZSTD_CLEVEL_DEFAULT);
	if (ZSTD_isError(r))
		return -ENOSPC;
	return (int)r;
}

int img_compress(enum img_compress type, const uint8_t *in, size_t len,
		 uint8_t *out, size_t outcap)
{
	int n;

	if (type == IMG_COMPRESS_ZSTD)
		n = zstd_cluster(in, len, out, outcap);
	else
		n = deflate_cluster(in, len, out, outcap);
	if (n >= 0 && (size_t)n >= outcap)
		return -ENOSPC;
	return n;
}

void img_codec_thread_end(void)
{
	if (zs) {
		inflateEnd(zs);
		free(zs);
		zs = NULL;
	}
	if (zs_out) {
		deflateEnd(zs_out);
		free(zs_out);
		zs_out = NULL;
	}
	ZSTD_freeDCtx(zstd_ctx);
	zstd_ctx = NULL;
	ZSTD_freeCCtx(zstd_cctx);
	zstd_cctx = NULL;
}
