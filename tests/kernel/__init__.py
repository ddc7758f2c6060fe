"""Kernel behaviour: what kcapi_hashlib does with AF_ALG and how it holds up.

Published vectors, syscall and instruction budgets, threads, fork, signals and interleavings, the keyring,
io_uring, af_alg_restrict explanations, resource exhaustion, drivers, the ABI structures. A test that asks "is the
kernel used right, and cheaply?" belongs here.
"""
