/* compress.c: inflating compressed clusters: raw deflate (qcow, qcow2 zlib) and zstd. */
#include <errno.h>
#include <zlib.h>
#include <zstd.h>

#include "imgint.h"

/*
 * Both formats store the compressed length only roughly (qcow2 to 512-byte
 * precision), so the input may have trailing garbage; what counts is that
 * exactly outlen bytes come out.
 */
static int inflate_deflate(const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t outlen)
{
	z_stream z = { 0 };
	int ret;

	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	ret = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0)
		return 0;
	return IMG_E_CORRUPT;
}

static int inflate_zstd(const uint8_t *in, size_t inlen, uint8_t *out,
			size_t outlen)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	size_t r = 1;

	if (!dctx)
		return -ENOMEM;
	while (ob.pos < ob.size && ib.pos < ib.size) {
		size_t in0 = ib.pos, out0 = ob.pos;
		r = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(r) || r == 0)
			break;
		if (ib.pos == in0 && ob.pos == out0)
			break;  /* no progress: a hostile stream must not hang us */
	}
	ZSTD_freeDCtx(dctx);
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
