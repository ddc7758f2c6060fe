"""Environment suites: each folder runs only when KCAPI_HASHLIB_SUITE selects it (conftest.py), in a kernel
started for it (tox.ini): refused/ (modules refused), no_af_alg/ (no AF_ALG at all), restricted/
(af_alg_restrict >= 1 on Linux 7.3+), fips/ (a kernel booted with fips=1). The default run ("kernel") skips them.
"""
