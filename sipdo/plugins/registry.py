"""Plugin registry: entry-point groups resolved lazily from ``"module:attr"`` strings.

Built-ins register through the same entry points as third-party plugins (see
``pyproject.toml``). ``_FALLBACK`` only covers running from a source tree whose
distribution metadata is not installed.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from sipdo.errors import PluginError, UnknownPluginError

GROUPS = ("sipdo.optimizers", "sipdo.domains", "sipdo.sandboxes")
# The strategy a run uses unless told otherwise, in every entry point (the library's
# signature in ARCHITECTURE.md says "sipdo"; on the real-model table no strategy x gate
# moved held-out pass@1, README "Optimizer strategies"). Here, not in the optimizers
# package, so the CLI reads it without importing LangChain.
DEFAULT_STRATEGY = "sipdo"

_FALLBACK: dict[str, dict[str, str]] = {
    "sipdo.sandboxes": {
        "docker": "sipdo.sandbox.docker:DockerSandbox",
        "process": "sipdo.sandbox.process:ProcessSandbox",
    },
    "sipdo.optimizers": {
        "sipdo": "sipdo.plugins.optimizers.sipdo:SipdoStrategy",
        "protegi": "sipdo.plugins.optimizers.protegi:ProTeGiStrategy",
        "gepa": "sipdo.plugins.optimizers.gepa:GEPAStrategy",
        "espl": "sipdo.plugins.optimizers.espl:ESPLStrategy",
    },
    "sipdo.domains": {
        "code": "sipdo.plugins.domains.code:CodeDomain",
        "plan": "sipdo.plugins.domains.plan:PlanDomain",
        "qa": "sipdo.plugins.domains.qa:QADomain",
    },
}


@cache
def _targets(group: str) -> dict[str, str]:
    found = dict(_FALLBACK.get(group, {}))
    for ep in entry_points(group=group):
        found[ep.name] = ep.value
    return found


def available(group: str) -> list[str]:
    """Names registered in ``group``."""
    return sorted(_targets(group))


def load(group: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``."""
    targets = _targets(group)
    if name not in targets:
        raise UnknownPluginError(group.removeprefix("sipdo.").rstrip("s"), name, list(targets))
    return load_target(targets[name], what=f"{group}:{name}")


def load_target(target: str, *, what: str = "plugin") -> Any:
    """Import ``"package.module:attr"``."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load {what} from {target!r}: {exc}") from exc
    return obj


def clear_cache() -> None:
    """Forget discovered entry points (after installing a plugin at run time)."""
    _targets.cache_clear()
