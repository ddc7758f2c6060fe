"""The machines the qemu backend emulates, as small declarations: how qemu runs each architecture and what
its kernel needs to reach the root filesystem. amd64 guests use the host's ``/`` as their root; the others a
root of their own architecture (foreign.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    """One architecture as qemu emulates it and Debian names it (the kernel's arch/<dir>/crypto drivers)."""

    arch: str  # Debian's architecture name
    elf_machine: int  # e_machine of its ELF binaries (checked on the root's busybox)
    big_endian: bool
    qemu: str  # the emulator and the Debian package that has it
    qemu_package: str
    machine: tuple[str, ...]  # qemu's -M and -cpu
    console: str  # the kernel's console= for the serial line
    serial: tuple[str, ...]  # qemu arguments that put the "console" chardev on that line
    virtio_9p: str  # the 9p transport's device (PCI on arm64, channel I/O on s390x)
    root_modules: tuple[str, ...]  # what the initramfs loads to reach the root (built-in ones are skipped)
    crypto_dir: str  # the kernel's CPU crypto drivers (guest.cpu_crypto_modules)


MACHINES = {
    "amd64": Machine(
        arch="amd64",
        elf_machine=62,  # EM_X86_64
        big_endian=False,
        qemu="qemu-system-x86_64",
        qemu_package="qemu-system-x86",
        # qemu.accel_argv adds -cpu (max under TCG, host under KVM)
        machine=(),
        console="ttyS0",
        serial=("-serial", "chardev:console"),
        virtio_9p="virtio-9p-pci",
        root_modules=("virtio_pci", "9pnet_virtio", "9p"),
        crypto_dir="/arch/x86/crypto/",
    ),
    "arm64": Machine(
        arch="arm64",
        elf_machine=183,  # EM_AARCH64
        big_endian=False,
        qemu="qemu-system-aarch64",
        qemu_package="qemu-system-arm",
        # -cpu max: every ARMv8 extension TCG has (AES, PMULL, SHA1/2/3/512, SM3/4), so the kernel's arm64
        # Crypto Extensions drivers (aes-ce, sha2-ce, ghash-ce, ...) register as on real hardware.
        # pauth-impdef: pointer authentication with an implementation-defined hash, far cheaper under
        # TCG than the architected QARMA (which the kernel uses on every function return).
        machine=("-M", "virt", "-cpu", "max,pauth-impdef=on"),
        console="ttyAMA0",
        serial=("-serial", "chardev:console"),
        virtio_9p="virtio-9p-pci",
        root_modules=("virtio_pci", "9pnet_virtio", "9p"),
        crypto_dir="/arch/arm64/crypto/",
    ),
    "s390x": Machine(
        arch="s390x",
        elf_machine=22,  # EM_S390
        big_endian=True,
        qemu="qemu-system-s390x",
        qemu_package="qemu-system-misc",
        machine=("-M", "s390-ccw-virtio", "-cpu", "max"),
        console="ttysclp0",
        # s390x has no serial port: its console is the SCLP line (an ASCII console qemu emulates).
        serial=("-device", "sclpconsole,chardev=console"),
        virtio_9p="virtio-9p-ccw",
        # virtio_ccw is not a module there: CONFIG_S390_GUEST=y builds it in, and not as a tristate, so it is
        # missing from modules.builtin too (which module_load_order would otherwise consult).
        root_modules=("9pnet_virtio", "9p"),
        crypto_dir="/arch/s390/crypto/",
    ),
}
