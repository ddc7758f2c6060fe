"""API parity: kcapi_hashlib gives what hashlib, hmac and PyCryptodome give.

Same results, exception types and messages, bad-input behaviour, builtin-likeness and drop-in install; the
differential (*_diff) and state-machine (*_state*) tests against the stdlib and PyCryptodome on random inputs; the
CPython test.test_hashlib/test_hmac suites and PyCryptodome's own SelfTest runs with kcapi_hashlib installed.
A test that asks "does it behave like the original?" belongs here.
"""
