/* crypt.c: the legacy qcow/qcow2 AES scheme: AES-128-CBC per 512-byte sector, IV = LE64 guest sector. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nettle/aes.h>
#include <nettle/cbc.h>

#include "endian.h"
#include "imgint.h"

/* The key is the password's bytes, truncated or zero-padded to 16: no KDF. */
int img_aes_setkey(struct img *img)
{
	uint8_t key[AES128_KEY_SIZE] = { 0 };
	struct aes128_ctx *ctx;

	if (!img->key)
		return img_error(img, IMG_E_KEY,
				 "image is encrypted: a key is needed (--key-file)");
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	memcpy(key, img->key, img->key_len < sizeof(key) ? img->key_len
							   : sizeof(key));
	aes128_set_decrypt_key(ctx, key);
	free(img->aes);
	img->aes = ctx;
	return 0;
}

void img_aes_decrypt(struct img *img, uint8_t *buf, size_t len,
		     uint64_t guest_sector)
{
	for (size_t done = 0; done + 512 <= len; done += 512) {
		uint8_t iv[AES_BLOCK_SIZE] = { 0 };
		put_le64(iv, guest_sector++);
		cbc_decrypt(img->aes, (nettle_cipher_func *)aes128_decrypt,
			    AES_BLOCK_SIZE, iv, 512, buf + done, buf + done);
	}
}

/*
 * Whether a decrypted sector looks like plaintext. The scheme has no key
 * check, so a wrong key shows only as noise: 512 random bytes hold about
 * 221 distinct values (never near 160), while real sectors (zeros, text,
 * code, file system structures) hold far fewer.
 */
int img_aes_plausible(const uint8_t *sector)
{
	uint8_t seen[256] = { 0 };
	int distinct = 0;

	for (int i = 0; i < 512; i++)
		if (!seen[sector[i]]++)
			distinct++;
	return distinct <= 160;
}
