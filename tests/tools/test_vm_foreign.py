"""The VM runner's other architectures (dev/vm/kcapi_vm/foreign.py, machines.py, qemu.py): the root built from
Debian's packages, the qemu command line and initramfs for arm64 and s390x, the environment a foreign guest
gets. Booting them is tox's arm64 env (its suites run there under the arm64 kernel); these check the pieces
on any host, without a download."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from kcapi_vm import foreign, initramfs, qemu
from kcapi_vm.backend import Job
from kcapi_vm.exits import VMError
from kcapi_vm.guest import Guest, Kernel
from kcapi_vm.machines import MACHINES
from kcapi_vm.packages import SBIN_PATH


def _elf(path: Path, machine: int, big: bool, interp: bool = False) -> Path:
    """A minimal 64-bit ELF header and one program header (PT_INTERP or PT_LOAD)."""
    o = ">" if big else "<"
    head = b"\x7fELF" + bytes([2, 2 if big else 1, 1]) + bytes(9)
    head += struct.pack(o + "HHIQQQIHHHHHH", 2, machine, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack(o + "IIQQQQQQ", 3 if interp else 1, 0, 0, 0, 0, 0, 0, 0)
    path.write_bytes(head + phdr)
    return path


def test_elf_machine_and_static_check_read_big_endian_binaries(tmp_path: Path) -> None:
    s390 = _elf(tmp_path / "s390x", 22, big=True)
    assert foreign.elf_machine(s390) == (22, True)
    assert initramfs.is_static_elf(s390)
    assert not initramfs.is_static_elf(_elf(tmp_path / "dyn", 22, big=True, interp=True))
    arm = _elf(tmp_path / "arm64", 183, big=False)
    assert foreign.elf_machine(arm) == (183, False) == (MACHINES["arm64"].elf_machine, MACHINES["arm64"].big_endian)
    # Read big-endian as if little, s390x's e_machine 22 would be 0x1600 and its phoff nonsense.
    assert foreign.elf_machine(s390) != (0x1600, False)


def test_the_root_is_merged_usr_with_sh_applets_and_crypto_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "lib/aarch64-linux-gnu/libc.so.6").write_bytes(b"libc")
    (root / "usr/lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/aarch64-linux-gnu/libm.so.6").write_bytes(b"libm")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/dash").write_bytes(b"dash")
    _elf(root / "usr/bin/busybox", 183, big=False)
    (root / "usr/lib/python3/dist-packages/Cryptodome").mkdir(parents=True)
    foreign._finish(root, MACHINES["arm64"])
    assert os.readlink(root / "lib") == "usr/lib" and os.readlink(root / "bin") == "usr/bin"
    assert (root / "lib/aarch64-linux-gnu/libc.so.6").read_bytes() == b"libc"  # moved into /usr, kept
    assert (root / "lib/aarch64-linux-gnu/libm.so.6").read_bytes() == b"libm"
    assert os.readlink(root / "usr/bin/sh") == "dash"
    assert os.readlink(root / "usr/local/bin/mount") == "/usr/bin/busybox"
    assert os.readlink(root / "usr/lib/python3/dist-packages/Crypto") == "Cryptodome"
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert (root / "tmp").stat().st_mode & 0o1777 == 0o1777


def test_a_root_whose_busybox_is_another_architectures_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    _elf(root / "usr/bin/busybox", 62, big=False)  # amd64's, in what should be the s390x root
    with pytest.raises(VMError, match="not s390x's"):
        foreign._finish(root, MACHINES["s390x"])


def test_a_foreign_guest_gets_its_roots_path_not_the_hosts_interpreter() -> None:
    env = {"PATH": "/tmp/ci/.tox/arm64/bin:/usr/bin", "VIRTUAL_ENV": "/tmp/ci/.tox/arm64", "PYTHONPATH": "/w", "A": "b"}
    assert foreign.guest_env(env) == {"PYTHONPATH": "/w", "A": "b", "PATH": SBIN_PATH}


def test_initramfs_mounts_root_tmpfs_binds_then_the_run_directory(tmp_path: Path) -> None:
    text = initramfs.init_script(
        ["9p.ko"],
        "/tmp/kcapi-vm-x/init",
        "/tmp/kcapi-vm-x",
        [("bind0", "/tmp/ci"), ("bind1", "/root/.cache/k")],
        ["/tmp"],
    )
    assert subprocess.run(["sh", "-n"], input=text, text=True, timeout=60).returncode == 0
    order = [
        text.index(s)
        for s in ("hostroot /newroot ", "tmpfs /newroot/tmp", "bind0 /newroot/tmp/ci", "bind1", "kcapirun")
    ]
    assert order == sorted(order), text


@pytest.mark.parametrize(
    ("kernel", "binary", "console", "device"),
    [
        ("6.12-arm64", "qemu-system-aarch64", "console=ttyAMA0", "virtio-9p-pci"),
        ("6.12-s390x", "qemu-system-s390x", "console=ttysclp0", "virtio-9p-ccw"),
    ],
)
def test_qemu_command_line_per_architecture(
    tmp_path: Path, kernel: str, binary: str, console: str, device: str
) -> None:
    kern = Kernel(tmp_path / "vmlinuz", tmp_path / "lib/modules/6.12", "6.12", cache=tmp_path)
    job = Job(("true",), kernel, (), 0, False, "1G", 1 << 30, "/tmp/ci", {})
    guest = Guest(tmp_path / "run", [])
    argv = qemu.qemu_argv(kern, job, guest, tmp_path / "initrd", binary, "tcg", "/cache/root", (("bind0", "/tmp/ci"),))
    machine = MACHINES[qemu.SOURCES[kernel].arch]
    assert argv[0] == binary == machine.qemu
    assert argv[1:3] == ["-accel", "tcg"] and list(machine.machine) == argv[3 : 3 + len(machine.machine)]
    assert console in argv[argv.index("-append") + 1] and "8250" not in argv[argv.index("-append") + 1]
    assert "local,id=hostroot,path=/cache/root,security_model=" in " ".join(argv)
    assert f"{device},fsdev=bind0,mount_tag=bind0" in argv and f"{device},fsdev=run,mount_tag=kcapirun" in argv
    if kernel.endswith("s390x"):
        assert "sclpconsole,chardev=console" in argv  # no serial port on s390x


def test_amd64_keeps_the_hosts_root_and_its_serial_port(tmp_path: Path) -> None:
    kern = Kernel(tmp_path / "vmlinuz", tmp_path / "lib/modules/6.12", "6.12", cache=tmp_path)
    job = Job(("true",), "6.12-amd64", (), 0, False, "1G", 1 << 30, "/", {})
    argv = qemu.qemu_argv(kern, job, Guest(tmp_path / "run", []), tmp_path / "initrd", "qemu-system-x86_64")
    assert "local,id=hostroot,path=/,security_model=" in " ".join(argv)
    assert "console=ttyS0" in argv[argv.index("-append") + 1] and "8250.nr_uarts=1" in " ".join(argv)
    assert argv[argv.index("-serial") + 1] == "chardev:console" and "virtio-9p-ccw" not in " ".join(argv)


def test_an_older_kernel_of_the_series_is_ordered_by_its_numbers() -> None:
    names = ["linux-image-6.12.9+deb13-s390x", "linux-image-6.12.107+deb13-s390x", "linux-image-6.12.48+deb13u1-s390x"]
    assert sorted(names, key=qemu._version_key, reverse=True)[0] == "linux-image-6.12.107+deb13-s390x"
