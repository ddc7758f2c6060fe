"""Tests of the tooling around the library: the VM runner (dev/vm/kcapi_vm), the command line and its layout, the
launcher and start-up hook, packaging, the import graph and import cost, the kcapi-hasher clone against the real
tool. Some run on the host only (tox.ini runs test_vm_uml_host.py with --noconftest).
"""
