"""``sipdo sandbox build-image`` and ``sipdo sandbox check``."""

from __future__ import annotations

from typing import Annotated

import typer

from sipdo.cli.common import clean_errors, console, fail

app = typer.Typer(help="Build and check the code-execution sandbox.", no_args_is_help=True)

HELLO = "import sys; print('hello from the sandbox, python', sys.version.split()[0])"


@app.command("build-image")
@clean_errors
def build_image(
    force: Annotated[bool, typer.Option(help="Rebuild even if the image exists.")] = False,
    image: Annotated[str | None, typer.Option(help="Image name (default: the sandbox's)")] = None,
) -> None:
    """Build the Docker sandbox image offline (Debian rootfs via debootstrap; needs root)."""
    from sipdo.sandbox.engine import DEFAULT_IMAGE
    from sipdo.sandbox.image import build_image as build

    name = image or DEFAULT_IMAGE
    image_id = build(name, force=force)
    console.print(
        f"sandbox image ready: {name} ({image_id})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("check")
@clean_errors
def check(
    kind: Annotated[str, typer.Option(help="auto, docker or process")] = "auto",
) -> None:
    """Say which backend ``open_sandbox(KIND)`` picks and why, then run a hello world in it."""
    from sipdo.sandbox.factory import docker_unavailable_reason, open_sandbox

    reason = docker_unavailable_reason() if kind in ("auto", "docker") else None
    with open_sandbox(kind) as sandbox:
        backend = type(sandbox).__name__
        if kind == "process":
            why = "asked for explicitly"
        elif reason is None:
            why = "the Docker engine answers and the sandbox image exists"
        else:
            why = f"Docker cannot be used: {reason}"
        console.print(f"backend: {backend} ({why})", markup=False, soft_wrap=True)
        console.print("isolation: " + ", ".join(sorted(sandbox.isolation)), soft_wrap=True)
        result = sandbox.run({}, ["python", "-c", HELLO])
    console.print(
        f"hello world: exit {result.exit_code} in {result.duration_s:.2f}s: "
        f"{result.stdout.strip() or result.stderr.strip()}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if result.exit_code != 0:
        raise fail("the sandbox could not run a hello world")
