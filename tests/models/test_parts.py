"""Joining split model files: real files on disk, each failure mode cleaned up."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sipdo.errors import ModelUnavailableError
from sipdo.plugins.models.parts import Part, is_verified, join_parts, record_hash_to_hex


def _make_parts(tmp_path: Path, sizes: tuple[int, ...] = (3000, 5000, 1234)) -> list[Part]:
    parts = []
    for i, size in enumerate(sizes):
        data = bytes((i * 7 + j) % 251 for j in range(size))
        path = tmp_path / "src" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        parts.append(Part(path, hashlib.sha256(data).hexdigest(), size, origin=f"pkg-part{i}"))
    return parts


def _expected(parts: list[Part]) -> tuple[str, int]:
    data = b"".join(p.path.read_bytes() for p in parts)
    return hashlib.sha256(data).hexdigest(), len(data)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


def test_join_writes_verified_file_once(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    target = tmp_path / "out" / "m.gguf"
    assert join_parts(parts, target, sha256=sha, size=size) == target
    assert target.read_bytes() == b"".join(p.path.read_bytes() for p in parts)
    first_mtime = target.stat().st_mtime_ns
    join_parts(parts, target, sha256=sha, size=size)
    assert target.stat().st_mtime_ns == first_mtime  # not joined again
    assert _leftovers(target.parent) == ["m.gguf", "m.gguf.verified.json"]


def test_progress_is_reported(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    seen: list[str] = []
    join_parts(parts, tmp_path / "m.gguf", sha256=sha, size=size, progress=seen.append)
    assert seen[-1].endswith("100%")


def test_truncated_part_is_named_and_nothing_left(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    with parts[1].path.open("r+b") as fh:
        fh.truncate(4000)
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelUnavailableError, match=r"pkg-part1 is 4000 bytes, expected 5000"):
        join_parts(parts, target, sha256=sha, size=size)
    assert _leftovers(target.parent) == []


def test_corrupted_byte_is_caught_by_part_hash(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    raw = bytearray(parts[2].path.read_bytes())
    raw[100] ^= 0xFF
    parts[2].path.write_bytes(bytes(raw))
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelUnavailableError, match=r"pkg-part2 is corrupt"):
        join_parts(parts, target, sha256=sha, size=size)
    assert _leftovers(target.parent) == []


def test_corruption_without_part_hashes_is_caught_by_whole_hash(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    raw = bytearray(parts[0].path.read_bytes())
    raw[0] ^= 1
    parts[0].path.write_bytes(bytes(raw))
    bare = [Part(p.path) for p in parts]
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelUnavailableError, match="does not match the expected"):
        join_parts(bare, target, sha256=sha, size=size)
    assert _leftovers(target.parent) == []


def test_missing_part(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    parts[1].path.unlink()
    target = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelUnavailableError, match="missing on disk: pkg-part1"):
        join_parts(parts, target, sha256=sha, size=size)
    assert _leftovers(target.parent) == []


def test_dropped_part_is_caught_by_size(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    with pytest.raises(ModelUnavailableError, match="a part is missing or short"):
        join_parts(parts[:2], tmp_path / "m.gguf", sha256=sha, size=size)
    assert not (tmp_path / "m.gguf").exists()


def test_corrupted_cached_file_is_rejoined(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    target = join_parts(parts, tmp_path / "m.gguf", sha256=sha, size=size)
    raw = bytearray(target.read_bytes())
    raw[10] ^= 0xFF
    target.write_bytes(bytes(raw))
    assert not is_verified(target, sha)
    seen: list[str] = []
    join_parts(parts, target, sha256=sha, size=size, progress=seen.append)
    assert "corrupt" in seen[0]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha


def test_failed_rejoin_leaves_no_corrupt_cache(tmp_path: Path) -> None:
    parts = _make_parts(tmp_path)
    sha, size = _expected(parts)
    target = join_parts(parts, tmp_path / "out" / "m.gguf", sha256=sha, size=size)
    target.write_bytes(b"garbage")
    parts[0].path.unlink()
    with pytest.raises(ModelUnavailableError):
        join_parts(parts, target, sha256=sha, size=size)
    assert _leftovers(target.parent) == []


def test_no_parts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="no parts"):
        join_parts([], tmp_path / "m.gguf", sha256=None)


def test_record_hash_to_hex() -> None:
    # Value as pip writes it into RECORD for the bytes b"hello".
    assert record_hash_to_hex("LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ") == (
        hashlib.sha256(b"hello").hexdigest()
    )
