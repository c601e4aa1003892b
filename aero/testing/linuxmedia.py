"""Debian 12's i386 kernel and a busybox initramfs, for booting Linux to a shell (issue 11).

Nothing here is part of the repository: the packages are fetched with ``apt-get download``
into a cache outside the checkout, ``$AERO_DEBIAN_I386`` (default
``/var/cache/aero/debian-i386``, the directory tests/firmware/test_linuxboot.py fetches the
kernel into), and the initramfs is built there from them.

* The kernel: ``vmlinuz-6.1.0-*-686`` from Debian 12's ``linux-image-6.1.0-*-686`` (the newest
  the archive has, as tests/firmware/test_linuxboot.py fetches it), taken from the cache when
  present.  ``$AERO_DEBIAN_I386`` may also name the vmlinuz file itself.
* busybox: the static i386 binary of Debian 12's ``busybox-static:i386`` (``apt-get download``,
  which needs the i386 architecture enabled: ``dpkg --add-architecture i386 && apt-get
  update``), read out of the .deb here (an ``ar`` archive holding ``data.tar.xz``), no dpkg
  needed.
* The initramfs: a gzip'd cpio archive in the "newc" format (``cpio -H newc``, the format the
  kernel unpacks: ``Documentation/driver-api/early-userspace/buffer-format.rst``), written by
  ``cpio_newc`` below: ``/init`` (``INIT_SCRIPT``, a busybox ``sh`` script), ``/bin/busybox``
  with symlinks for the applets the script and the tests use (the script also runs
  ``busybox --install -s`` for the rest), the device nodes ``/dev/console`` (c 5,1),
  ``/dev/ttyS0`` (c 4,64), ``/dev/tty`` (c 5,0) and ``/dev/null`` (c 1,3), and empty ``/proc``,
  ``/sys``, ``/tmp``, ``/root``, ``/etc``.  Every entry has owner 0, mtime 0 and fixed inode
  numbers, and the gzip header no time stamp, so the same busybox gives the same bytes.

``/init`` mounts proc and sysfs, prints ``MARKER`` on the console, and starts an interactive
shell on the console with ``setsid cttyhack sh`` (cttyhack finds the console's real tty,
ttyS0 with ``console=ttyS0``, and makes it the shell's controlling terminal), prompt ``PROMPT``.

    python -m aero.testing.linuxmedia [DIR]     # fetch/build; print the kernel, the initrd
                                                # and an aero run command line
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile

DEBIAN_DIR = "/var/cache/aero/debian-i386"
KERNEL_GLOB = "vmlinuz-6.1.0-*-686"
BUSYBOX_PACKAGE = "busybox-static:i386"
BUSYBOX_DEB_GLOB = "busybox-static_*_i386.deb"

MARKER = "AERO-INITRAMFS: busybox init reached"
# The command line the tests boot with: the console at 115200 baud (console=ttyS0 alone runs it
# at 9600, and Aero's UART keeps the character timing: about 1 ms of virtual time per character,
# written with interrupts off), no crypto self-tests (about 2 G instructions of RSA and DH under
# Aero; the kernel is otherwise unchanged)
APPEND = "console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 cryptomgr.notests"
PROMPT = "aero-linux# "

INIT_SCRIPT = f"""#!/bin/busybox sh
# /init of Aero's busybox initramfs (aero/testing/linuxmedia.py)
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox --install -s 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='{PROMPT}'
export HOME=/root
echo
echo '{MARKER}'
exec setsid cttyhack sh
"""

# applets linked in the archive itself (the script's and the tests'); --install adds the rest
APPLETS = ("sh", "ash", "mount", "umount", "echo", "cat", "ls", "uname", "mkdir", "setsid",
           "cttyhack", "poweroff", "reboot", "halt", "dmesg", "ps", "sleep", "true", "false",
           "test", "[", "expr", "grep", "head", "tail", "wc", "free", "uptime", "date", "env")

DEVICES = (("dev/console", 5, 1), ("dev/ttyS0", 4, 64), ("dev/tty", 5, 0),
           ("dev/null", 1, 3))


class MediaUnavailable(Exception):
    """The kernel or busybox is not in the cache and could not be fetched (the reason)."""


# ---------------------------------------------------------------------------------------------
# cpio "newc"
# ---------------------------------------------------------------------------------------------
def cpio_newc(entries) -> bytes:
    """An uncompressed cpio archive in the "newc" (SVR4, no CRC) format.

    ``entries``: (name, mode, data, (rdevmajor, rdevminor)) tuples, ``mode`` with its file type
    bits (``stat.S_IFREG | 0o755``...), ``data`` the file's contents or a symlink's target
    (bytes or str), empty for directories and device nodes.  Each header is the magic
    ``070701`` and 13 eight-digit hexadecimal fields (ino, mode, uid, gid, nlink, mtime,
    filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check), then the name with its
    NUL, padded to a multiple of 4 bytes from the header's start, then the data, padded to 4;
    the archive ends with the entry ``TRAILER!!!``."""
    out = bytearray()

    def entry(ino, name: bytes, mode, data: bytes, rdev=(0, 0)):
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(name + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    ino = 0
    for name, mode, data, rdev in entries:
        ino += 1
        name = name.encode() if isinstance(name, str) else name
        data = data.encode() if isinstance(data, str) else bytes(data)
        if not name or name.startswith(b"/"):
            raise ValueError(f"cpio names are relative and not empty: {name!r}")
        entry(ino, name, mode, data, rdev)
    entry(0, b"TRAILER!!!", 0, b"")
    return bytes(out)


def parse_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """Read back a newc archive (the entries as ``cpio_newc`` takes them, trailer excluded)."""
    entries, off = [], 0
    while True:
        if data[off:off + 6] != b"070701":
            raise ValueError(f"no newc header at {off}")
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[off + 110: off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off: off + filesize]
        off += filesize
        off += -off % 4
        if name == "TRAILER!!!":
            return entries
        entries.append((name, f[1], bytes(body), (f[9], f[10])))


def initramfs_entries(busybox: bytes, init: str = INIT_SCRIPT):
    ents = [(n, stat.S_IFDIR | (0o1777 if n == "tmp" else 0o755), b"", (0, 0)) for n in
            (".", "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp",
             "root", "etc")]
    ents.append(("bin/busybox", stat.S_IFREG | 0o755, busybox, (0, 0)))
    ents += [(f"bin/{a}", stat.S_IFLNK | 0o777, "busybox", (0, 0)) for a in APPLETS]
    ents += [(n, stat.S_IFCHR | 0o600, b"", (ma, mi)) for n, ma, mi in DEVICES]
    ents.append(("init", stat.S_IFREG | 0o755, init, (0, 0)))
    return ents


def build_initramfs(busybox: bytes, init: str = INIT_SCRIPT) -> bytes:
    """The gzip'd newc initramfs (deterministic: no time stamps)."""
    raw = cpio_newc(initramfs_entries(busybox, init))
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(raw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------------------------
def deb_members(deb: bytes) -> dict[str, bytes]:
    """The members of a .deb's ``ar`` archive (debian-binary, control.tar.*, data.tar.*)."""
    if deb[:8] != b"!<arch>\n":
        raise ValueError("not an ar archive")
    out, off = {}, 8
    while off + 60 <= len(deb):
        hdr = deb[off: off + 60]
        name = hdr[:16].decode().strip().rstrip("/")
        size = int(hdr[48:58].decode().strip())
        out[name] = deb[off + 60: off + 60 + size]
        off += 60 + size + (size & 1)
    return out


def deb_file(deb_path: str, member: str) -> bytes:
    """One file of a .deb's data archive (``member`` as ``./bin/busybox``)."""
    with open(deb_path, "rb") as f:
        members = deb_members(f.read())
    data = next((v for k, v in members.items() if k.startswith("data.tar")), None)
    if data is None:
        raise ValueError(f"{deb_path}: no data.tar member")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
        for ti in t.getmembers():
            if ti.name.lstrip("./") == member.lstrip("./") and ti.isfile():
                return t.extractfile(ti).read()
    raise ValueError(f"{deb_path}: no {member}")


def cache_dir() -> str:
    where = os.environ.get("AERO_DEBIAN_I386", DEBIAN_DIR)
    return os.path.dirname(where) if os.path.isfile(where) else where


def _apt_download(where: str, package: str) -> str | None:
    """apt-get download PACKAGE into WHERE; None if done, else why not."""
    if not shutil.which("apt-get"):
        return "no apt-get"
    try:
        os.makedirs(where, exist_ok=True)
        arches = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                                text=True, timeout=30).stdout.split()
        if package.endswith(":i386") and "i386" not in arches:
            return ("the i386 architecture is not enabled (dpkg --add-architecture i386 && "
                    "apt-get update)")
        p = subprocess.run(["apt-get", "download", package], cwd=where, capture_output=True,
                           text=True, timeout=300)
        if p.returncode:
            return f"apt-get download {package} failed: {p.stderr.strip()[-200:]}"
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return f"apt-get download {package} failed: {e}"


def debian_kernel() -> str:
    """The path of Debian 12's i386 kernel (fetched into the cache when missing)."""
    where = os.environ.get("AERO_DEBIAN_I386", DEBIAN_DIR)
    if os.path.isfile(where):
        return where
    found = sorted(glob.glob(os.path.join(where, KERNEL_GLOB)))
    if found:
        return found[-1]
    why = _fetch_kernel(where)
    found = sorted(glob.glob(os.path.join(where, KERNEL_GLOB)))
    if not found:
        raise MediaUnavailable(f"Debian's i386 kernel is not in {where} and could not be "
                               f"fetched ({why})")
    return found[-1]


def _fetch_kernel(where: str) -> str:
    if not shutil.which("apt-cache"):
        return "no apt-cache"
    try:
        names = subprocess.run(["apt-cache", "search", "--names-only",
                                r"^linux-image-6\.1\.0-[0-9]+-686$"],
                               capture_output=True, text=True, timeout=60).stdout.split("\n")
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    pkgs = sorted((ln.split()[0] for ln in names if ln.strip()),
                  key=lambda n: int(n.split("-")[3]))
    if not pkgs:
        return "apt-cache knows no linux-image-6.1.0-*-686 (is i386 enabled?)"
    why = _apt_download(where, pkgs[-1])
    if why:
        return why
    debs = sorted(glob.glob(os.path.join(where, pkgs[-1] + "_*.deb")))
    if not debs:
        return f"apt-get download {pkgs[-1]} left no .deb"
    try:
        with open(debs[-1], "rb") as f:
            members = deb_members(f.read())
        data = next(v for k, v in members.items() if k.startswith("data.tar"))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
            for ti in t.getmembers():
                base = os.path.basename(ti.name)
                if ti.isfile() and ti.name.lstrip("./").startswith("boot/vmlinuz-"):
                    with open(os.path.join(where, base), "wb") as out:
                        out.write(t.extractfile(ti).read())
    except (OSError, ValueError, StopIteration, tarfile.TarError) as e:
        return f"{debs[-1]}: {e}"
    return "fetched"


def busybox_binary() -> bytes:
    """The static i386 busybox of Debian 12's busybox-static:i386 (fetched when missing)."""
    where = cache_dir()
    debs = sorted(glob.glob(os.path.join(where, BUSYBOX_DEB_GLOB)))
    if not debs:
        why = _apt_download(where, BUSYBOX_PACKAGE)
        debs = sorted(glob.glob(os.path.join(where, BUSYBOX_DEB_GLOB)))
        if not debs:
            raise MediaUnavailable(f"{BUSYBOX_PACKAGE} is not in {where} and could not be "
                                   f"fetched ({why or 'no .deb left'})")
    try:
        bb = deb_file(debs[-1], "bin/busybox")
    except (OSError, ValueError, tarfile.TarError) as e:
        raise MediaUnavailable(f"cannot read busybox from {debs[-1]}: {e}") from e
    if bb[:4] != b"\x7fELF" or bb[4] != 1 or bb[18] != 3:
        raise MediaUnavailable(f"{debs[-1]}: bin/busybox is not an i386 ELF")
    return bb


def linux_media(out_dir: str | None = None) -> tuple[str, str]:
    """(kernel path, initrd path): Debian's i386 kernel and the busybox initramfs, built into
    ``out_dir`` (default: the cache directory, when writable) and reused when it already holds
    the same bytes.  Raises ``MediaUnavailable`` with the reason when a package is out of
    reach."""
    kernel = debian_kernel()
    rd = build_initramfs(busybox_binary())
    tag = hashlib.sha256(rd).hexdigest()[:12]
    for d in ([out_dir] if out_dir else [cache_dir(), os.path.join(
            os.environ.get("TMPDIR", "/tmp"), "aero-linuxmedia")]):
        path = os.path.join(d, f"initramfs-busybox-{tag}.cpio.gz")
        try:
            os.makedirs(d, exist_ok=True)
            if not (os.path.isfile(path) and open(path, "rb").read() == rd):
                with open(path + ".tmp", "wb") as f:
                    f.write(rd)
                os.replace(path + ".tmp", path)
            return kernel, path
        except OSError as e:
            why = f"cannot write {path}: {e}"
    raise MediaUnavailable(why)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        kernel, initrd = linux_media(argv[0] if argv else None)
    except MediaUnavailable as e:
        print(f"linuxmedia: {e}", file=sys.stderr)
        return 2
    print(f"kernel {kernel}\ninitrd {initrd}")
    print(f"python -m aero run --kernel {kernel} --initrd {initrd} --memory 128 --headless "
          f"--append '{APPEND}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
