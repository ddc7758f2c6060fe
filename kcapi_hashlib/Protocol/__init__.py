"""PyCryptodome's ``Crypto.Protocol`` key derivation functions, computed with the kernel's HMAC."""
