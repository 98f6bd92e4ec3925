"""Build the sandbox image offline: a Debian rootfs from ``debootstrap``, ``docker import``-ed.

No registry is needed, only a Debian mirror (read from the apt sources, or
``SIPDO_DEBIAN_MIRROR``). The image is tagged ``sipdo-sandbox:<recipe hash>``
and ``sipdo-sandbox:latest``; building again is skipped while an image with
the current recipe hash exists. Users who can pull ``python:3.11-slim`` may
build ``sipdo/sandbox/Dockerfile`` instead. Needs root (debootstrap, chroot)::

    python -m sipdo.sandbox.image build [--force] [--image NAME]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from sipdo.errors import SandboxError, SandboxUnavailableError
from sipdo.sandbox.engine import DEFAULT_IMAGE, connect, mapped

SUITE = "bookworm"
PACKAGES = ("python3", "python3-pytest", "python3-hypothesis")
# Run in the chroot after debootstrap: a python alias, a workdir, and no caches.
POST_INSTALL = """
set -e
ln -sf /usr/bin/python3 /usr/bin/python
mkdir -p /sandbox && chown 65534:65534 /sandbox
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/* \
       /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /tmp/*
"""
CHANGES = (
    "USER 65534:65534",
    "WORKDIR /sandbox",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1",
    'CMD ["python3"]',
)
RECIPE_LABEL = "sipdo.recipe"


def recipe_hash() -> str:
    """Hash of everything that defines the image; a new hash means a rebuild."""
    text = "\n".join([SUITE, *PACKAGES, POST_INSTALL, *CHANGES])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def debian_mirror() -> str:
    """The Debian mirror to bootstrap from: env override, apt sources, or deb.debian.org."""
    if os.environ.get("SIPDO_DEBIAN_MIRROR"):
        return os.environ["SIPDO_DEBIAN_MIRROR"]
    sources = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    for path in [p for p in sources if p.endswith((".list", ".sources"))]:
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            match = re.search(r"(https?://\S+/debian)/?(\s|$)", line)
            if match:
                return match.group(1)
    return "http://deb.debian.org/debian"


def _say(message: str) -> None:
    print(f"[sipdo image] {message}", flush=True)


def _run(argv: list[str]) -> None:
    _say("$ " + " ".join(argv))
    try:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError as exc:
        raise SandboxUnavailableError(f"{argv[0]} is not installed: {exc}") from exc
    except subprocess.CalledProcessError as exc:
        tail = exc.stderr.decode(errors="replace")[-2000:]
        raise SandboxError(f"{' '.join(argv[:2])} failed ({exc.returncode}): {tail}") from exc


def build_image(image: str = DEFAULT_IMAGE, *, force: bool = False) -> str:
    """Build (or keep) the sandbox image; return the id of the image tagged ``image``."""
    repository, _, tag = image.rpartition(":") if ":" in image else (image, "", "latest")
    versioned = f"{repository}:{recipe_hash()}"
    client = connect()
    try:
        with mapped("looking up the sandbox image"):
            existing = client.images.list(name=versioned)
        if existing and not force:
            _say(f"{versioned} exists (recipe unchanged): nothing to build")
            existing[0].tag(repository, tag)
            return str(existing[0].id)
        if os.geteuid() != 0:
            raise SandboxUnavailableError("building the image needs root (debootstrap, chroot)")
        started = time.monotonic()
        workdir = tempfile.mkdtemp(prefix="sipdo-rootfs-")
        root = os.path.join(workdir, "root")
        try:
            _say(f"bootstrapping Debian {SUITE} with {', '.join(PACKAGES)} (about a minute)")
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    SUITE,
                    root,
                    debian_mirror(),
                ]
            )
            _run(["chroot", root, "/bin/sh", "-c", POST_INSTALL])
            _say(f"importing the rootfs as {versioned}")
            tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
            assert tar.stdout is not None
            with mapped("importing the sandbox image"):
                client.api.import_image(
                    src=tar.stdout,
                    repository=repository,
                    tag=recipe_hash(),
                    changes=[*CHANGES, f"LABEL {RECIPE_LABEL}={recipe_hash()}"],
                    stream_src=True,
                )
            if tar.wait() != 0:
                raise SandboxError("tar of the rootfs failed")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        with mapped("tagging the sandbox image"):
            built = client.images.get(versioned)
            built.tag(repository, tag)
        _say(f"built {versioned} and tagged {image} in {time.monotonic() - started:.0f} s")
        return str(built.id)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``python -m sipdo.sandbox.image build [--force] [--image NAME]``."""
    parser = argparse.ArgumentParser(prog="python -m sipdo.sandbox.image")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the sandbox image offline (idempotent)")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    build.add_argument("--image", default=DEFAULT_IMAGE, help=f"name (default {DEFAULT_IMAGE})")
    args = parser.parse_args(argv)
    try:
        build_image(args.image, force=args.force)
    except SandboxError as exc:
        print(f"[sipdo image] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
