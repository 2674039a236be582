/* compress.c: inflating compressed clusters: raw deflate (qcow, qcow2 zlib) and zstd. */
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
