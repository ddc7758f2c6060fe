"""PyCryptodome's Crypto.Util helpers that kcapi_hashlib's ciphers need (Counter)."""
