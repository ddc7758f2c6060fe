/* The libkcapi anchor of benchmarks/anchors.py: the same operation through libkcapi's C API, in a loop.
 *
 *   anchor_kcapi md|cipher|aead NAME SIZE SECONDS handle|oneshot
 *
 * handle: one handle (tfm + op socket) made and keyed once, reused for every message (kcapi_md_digest,
 * kcapi_cipher_encrypt, kcapi_aead_encrypt). oneshot: libkcapi's convenience helpers, which make and destroy a
 * handle per message (kcapi_md_sha1/256/384/512, kcapi_cipher_enc_aes_cbc/ctr); libkcapi has no AEAD helper,
 * so there oneshot is init + setkey + settaglen + encrypt + destroy, what such a helper would do.
 * Data goes through sendmsg (KCAPI_ACCESS_SENDMSG), as kcapi_hashlib's does (it never vmsplices).
 * Prints "OPS SECONDS" on success; exit status 2 = this case is not supported here (a message on stderr).
 * Keys: bytes 0..31; IV: 16 zero bytes; AEAD: 16 bytes of AAD, 16-byte tag.
 */
#include <kcapi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t key[32], iv[16];

static int oneshot_md(const char *name, const uint8_t *in, size_t len, uint8_t *out)
{
	if (!strcmp(name, "sha1")) return kcapi_md_sha1(in, len, out, 64) < 0;
	if (!strcmp(name, "sha256")) return kcapi_md_sha256(in, len, out, 64) < 0;
	if (!strcmp(name, "sha384")) return kcapi_md_sha384(in, len, out, 64) < 0;
	if (!strcmp(name, "sha512")) return kcapi_md_sha512(in, len, out, 64) < 0;
	return 2;
}

static int oneshot_cipher(const char *name, const uint8_t *in, size_t len, uint8_t *out)
{
	if (!strcmp(name, "cbc(aes)")) return kcapi_cipher_enc_aes_cbc(key, 16, in, len, iv, out, len) < 0;
	if (!strcmp(name, "ctr(aes)")) return kcapi_cipher_enc_aes_ctr(key, 32, in, len, iv, out, len) < 0;
	return 2;
}

static int aead_once(struct kcapi_handle *h, const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
	return kcapi_aead_encrypt(h, in, len + 16, iv, out, outlen, KCAPI_ACCESS_SENDMSG) != (ssize_t)outlen;
}

static int aead_handle(struct kcapi_handle **h, const char *name, uint32_t keylen)
{
	if (kcapi_aead_init(h, name, 0)) return 1;
	if (kcapi_aead_setkey(*h, key, keylen) || kcapi_aead_settaglen(*h, 16)) return 1;
	kcapi_aead_setassoclen(*h, 16);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s md|cipher|aead NAME SIZE SECONDS handle|oneshot\n", argv[0]);
		return 1;
	}
	const char *kind = argv[1], *name = argv[2];
	size_t size = strtoul(argv[3], NULL, 10);
	double seconds = atof(argv[4]);
	int oneshot = !strcmp(argv[5], "oneshot");
	uint32_t keylen = !strcmp(name, "cbc(aes)") || !strcmp(name, "ccm(aes)") ? 16 : 32;
	for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
	uint8_t *in = calloc(size + 64, 1), *out = calloc(size + 64, 1);
	struct kcapi_handle *h = NULL;
	size_t outlen = size;
	int rc;
	if (!in || !out) return 1;
	alarm((unsigned)(seconds * 10 + 30)); /* a send beyond the socket buffer blocks forever: end, visibly */

	if (!strcmp(kind, "md") && !oneshot) {
		if (kcapi_md_init(&h, name, 0)) { fprintf(stderr, "kcapi_md_init(%s) failed\n", name); return 2; }
	} else if (!strcmp(kind, "cipher") && !oneshot) {
		if (kcapi_cipher_init(&h, name, 0) || kcapi_cipher_setkey(h, key, keylen)) {
			fprintf(stderr, "kcapi_cipher_init(%s) failed\n", name);
			return 2;
		}
	} else if (!strcmp(kind, "aead")) {
		if (aead_handle(&h, name, keylen)) { fprintf(stderr, "kcapi_aead_init(%s) failed\n", name); return 2; }
		outlen = kcapi_aead_outbuflen_enc(h, size, 16, 16);
		if (oneshot) { kcapi_aead_destroy(h); h = NULL; }
	}

	long ops = 0;
	double start = now(), elapsed;
	do {
		for (int i = 0; i < 16; i++) {
			if (!strcmp(kind, "md")) {
				rc = oneshot ? oneshot_md(name, in, size, out)
					     : kcapi_md_digest(h, in, size, out, 64) < 0;
			} else if (!strcmp(kind, "cipher")) {
				rc = oneshot ? oneshot_cipher(name, in, size, out)
					     : kcapi_cipher_encrypt(h, in, size, iv, out, size, KCAPI_ACCESS_SENDMSG) !=
						       (ssize_t)size;
			} else if (oneshot) {
				rc = aead_handle(&h, name, keylen) || aead_once(h, in, size, out, outlen);
				kcapi_aead_destroy(h);
				h = NULL;
			} else {
				rc = aead_once(h, in, size, out, outlen);
			}
			if (rc == 2) {
				fprintf(stderr, "libkcapi has no one-shot helper for %s\n", name);
				return 2;
			}
			if (rc) {
				fprintf(stderr, "%s %s %zu failed\n", kind, name, size);
				return 1;
			}
			ops++;
		}
		elapsed = now() - start;
	} while (elapsed < seconds);
	printf("%ld %.9f\n", ops, elapsed);
	return 0;
}
