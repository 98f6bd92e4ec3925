"""Plugins: optimizer strategies, task domains, model backends, sandboxes."""

from sipdo.plugins.registry import available, load, load_target

__all__ = ["available", "load", "load_target"]
