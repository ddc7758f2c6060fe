"""The one table of hash algorithm facts: every other table (hashlib's, hmac's digestmod maps, Crypto.Hash.new()'s
names, the kcapi_hashlib.Hash modules' sizes and OIDs) is derived from it. No code here, only data."""

from __future__ import annotations

from typing import NamedTuple, Optional


class Algorithm(NamedTuple):
    name: str  # hashlib's canonical name
    kernel: Optional[str]  # the kernel's cra_name; None: the kernel has no AF_ALG hash for it
    digest_size: int  # hashlib's digest_size (0: an XOF)
    block_size: int  # hashlib's block_size (what HMAC pads the key to)
    aliases: tuple[str, ...] = ()  # other names hashlib.new() accepts through OpenSSL (matched after lower())
    guaranteed: bool = False  # a named constructor on every hashlib build (hashlib.algorithms_guaranteed)
    kernel_sizes: tuple[int, ...] = ()  # BLAKE2: digest sizes the kernel has as f"{name}-{bits}"
    oid: str = ""  # ASN.1 OID of kcapi_hashlib.Hash's (and PyCryptodome's) objects: hmac identifies them by it
    hmac_oid: str = ""  # ASN.1 OID of HMAC over this hash (Crypto.Hash.HMAC's oid)
    crypto_new: tuple[str, ...] = ()  # the names Crypto.Hash.new() accepts for it (after upper(); the OID too)
    module: str = ""  # the Crypto.Hash module whose new(data) makes it (SHA512 with truncate= for SHA-512/t)
    module_aliases: tuple[str, ...] = ()  # other Crypto.Hash modules for the same hash
    truncate: str = ""  # Crypto.Hash.SHA512's truncate= value for this hash
    # The Crypto.Hash module kcapi_hashlib.Hash mirrors for this hash where that is not `module` (BLAKE2b: its
    # new() is keyword-only, so it is no `module`); install() replaces `module` or this (kcapi_hashlib._install).
    mirror_module: str = ""
    bsd_tag: str = ""  # the tag of BSD-style checksum lines (coreutils' --tag); "": the name in upper case
    sized: bool = False  # the digest size is a parameter (BLAKE2's digest_size=, coreutils' --length)


_A = Algorithm
_NIST = "2.16.840.1.101.3.4.2."  # NIST hash algorithms arc
_RSA = "1.2.840.113549.2."  # RSADSI digest algorithms arc

# Order: hashlib's, then the kernel's extras, then hashlib's that the kernel lacks (always the policy's call).
# BLAKE2b has no oid/module here on purpose: its Crypto.Hash new() is keyword-only, so it is no HMAC digestmod,
# and its OID depends on the digest size (kcapi_hashlib.Hash.BLAKE2b sets it).
ROWS: tuple[Algorithm, ...] = (
    _A("md5", "md5", 16, 64, guaranteed=True, oid=_RSA + "5", module="MD5"),
    _A("sha1", "sha1", 20, 64, ("sha-1",), True, oid="1.3.14.3.2.26", hmac_oid=_RSA + "7",
       crypto_new=("SHA1", "SHA-1"), module="SHA1", module_aliases=("SHA",)),
    _A("sha224", "sha224", 28, 64, ("sha-224",), True, oid=_NIST + "4", hmac_oid=_RSA + "8",
       crypto_new=("SHA224", "SHA-224"), module="SHA224"),
    _A("sha256", "sha256", 32, 64, ("sha-256",), True, oid=_NIST + "1", hmac_oid=_RSA + "9",
       crypto_new=("SHA256", "SHA-256"), module="SHA256"),
    _A("sha384", "sha384", 48, 128, ("sha-384",), True, oid=_NIST + "2", hmac_oid=_RSA + "10",
       crypto_new=("SHA384", "SHA-384"), module="SHA384"),
    _A("sha512", "sha512", 64, 128, ("sha-512",), True, oid=_NIST + "3", hmac_oid=_RSA + "11",
       crypto_new=("SHA512", "SHA-512"), module="SHA512"),
    _A("sha3_224", "sha3-224", 28, 144, ("sha3-224",), True, oid=_NIST + "7", hmac_oid=_NIST + "13",
       crypto_new=("SHA3-224", "SHA-3-224"), module="SHA3_224", bsd_tag="SHA3-224"),
    _A("sha3_256", "sha3-256", 32, 136, ("sha3-256",), True, oid=_NIST + "8", hmac_oid=_NIST + "14",
       crypto_new=("SHA3-256", "SHA-3-256"), module="SHA3_256", bsd_tag="SHA3-256"),
    _A("sha3_384", "sha3-384", 48, 104, ("sha3-384",), True, oid=_NIST + "9", hmac_oid=_NIST + "15",
       crypto_new=("SHA3-384", "SHA-3-384"), module="SHA3_384", bsd_tag="SHA3-384"),
    _A("sha3_512", "sha3-512", 64, 72, ("sha3-512",), True, oid=_NIST + "10", hmac_oid=_NIST + "16",
       crypto_new=("SHA3-512", "SHA-3-512"), module="SHA3_512", bsd_tag="SHA3-512"),
    _A("blake2b", "blake2b-512", 64, 128, ("blake2b512",), True, (20, 32, 48, 64), mirror_module="BLAKE2b",
       bsd_tag="BLAKE2b", sized=True),
    # the kernel dropped its blake2s shash in 5.19: probed
    _A("blake2s", "blake2s-256", 32, 64, ("blake2s256",), True, (16, 20, 28, 32), bsd_tag="BLAKE2s",
       sized=True),
    _A("ripemd160", "rmd160", 20, 64, ("ripemd-160", "rmd160"), oid="1.3.36.3.2.1", module="RIPEMD160",
       module_aliases=("RIPEMD",)),
    # No oid: hmac uses a Crypto.Hash.MD4 object as given (kcapi_hashlib.Hash has no MD4); the module counts.
    _A("md4", "md4", 16, 64, module="MD4"),
    _A("sm3", "sm3", 32, 64),
    _A("whirlpool", "wp512", 64, 64),
    _A("streebog256", "streebog256", 32, 64),
    _A("streebog512", "streebog512", 64, 64),
    _A("sha512_224", None, 28, 128, ("sha512-224",), oid=_NIST + "5", hmac_oid=_RSA + "12",
       crypto_new=("SHA512-224", "SHA-512-224"), module="SHA512", truncate="224"),
    _A("sha512_256", None, 32, 128, ("sha512-256",), oid=_NIST + "6", hmac_oid=_RSA + "13",
       crypto_new=("SHA512-256", "SHA-512-256"), module="SHA512", truncate="256"),
    _A("shake_128", None, 0, 168, ("shake128",), True),
    _A("shake_256", None, 0, 136, ("shake256",), True),
)  # fmt: skip

BY_NAME: dict[str, Algorithm] = {row.name: row for row in ROWS}
