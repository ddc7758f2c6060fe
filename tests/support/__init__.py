"""Support code and data for the tests, no tests of its own: requires.py (the kernel_alg marker), syscalls.py
(strace counts), vectors.py and vectors/ (published vectors), stress.py and interleave.py (child-process
harnesses), cpython_suite.py, restrict_matrix.py and data/, the PyCryptodome self-test plugin, real_packages.py and
build_kcapi_hasher.sh (the reference kcapi-hasher).
"""
