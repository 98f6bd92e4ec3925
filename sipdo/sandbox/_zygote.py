"""What a fork-server child runs: ``python FILE`` / ``-m MOD`` / ``-c CODE``, no new interpreter.

Standard library only: the Docker backend sends this module's source into
its containers, where sipdo is not installed.

A fork server imports what runs need (pytest, Hypothesis) once, then forks
one child per run. The child is a copy-on-write copy of the server: whatever
a run changes (``sys.modules``, builtins, pytest or Hypothesis internals,
globals) changes only its own copy and dies with it, and nothing flows back
to the server (no shared writable memory, no pipe the child can write to the
server through). ``run_python`` makes the copy look like a fresh interpreter
started as ``python ARGS``: a new ``__main__``, ``sys.argv`` and
``sys.path[0]`` as the interpreter would set them, reseeded ``random``, the
default signal handlers, and at the end the interpreter's own shutdown
(non-daemon threads joined, ``atexit`` handlers, streams flushed).
What differs, documented: modules the server preloaded are already in
``sys.modules``, and the hash seed is the server's for every run: every
fork server of both backends is started with ``PYTHONHASHSEED=HASH_SEED``
(and its runs' environment says so), so set and dict orders agree between
runs whichever server forked them, after a restart, and with a fresh run of
the verifier harness, which fixes the same seed (``harness.codec.boot``) and
so never has to start an interpreter of its own.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

PRELOAD = (
    "pytest",
    "_pytest.python",
    "_pytest.main",
    "_pytest.terminal",
    "_pytest.fixtures",
    "ctypes",  # the verifier's live driver makes itself non-dumpable through it
)
REWRITTEN = ("hypothesis", "hypothesis.strategies")
PLUGIN_DISTRIBUTIONS = ("hypothesis",)  # the pytest plugins a server preloads (see preload)
HASH_SEED = "0"  # every fork server's PYTHONHASHSEED (see above)
SETUP_FAILED = 125
SETUP_MARK = "sipdo fork-server set-up failed: "

# Python's own options that the emulation supports; any other option runs fresh.
Entry = tuple[str, str, list[str]]


def python_entry(args: Sequence[str]) -> Entry | None:
    """``(kind, target, argv)`` for ``python ARGS`` if a fork child can emulate it, else None.

    Supported: ``FILE args…``, ``-m MODULE args…``, ``-c CODE args…``. Anything
    else (other interpreter options, a program read from stdin) needs a real
    interpreter start and is run fresh.
    """
    if not args:
        return None
    first = args[0]
    if first in ("-m", "-c"):
        if len(args) < 2:
            return None
        kind = "module" if first == "-m" else "code"
        return kind, args[1], [first, *args[2:]]
    if first.startswith("-"):
        return None
    return "file", first, list(args)


def preload(names: Sequence[str] = PRELOAD) -> list[str]:
    """Import what runs will need; return the names that failed (they are imported per run).

    Of the installed pytest plugins (``pytest11`` entry points) only those of
    ``PLUGIN_DISTRIBUTIONS`` (Hypothesis's) are preloaded, through pytest's
    own assertion-rewriting import hook, as a fresh pytest run would import
    them (pytest warns about a plugin module another loader imported first).
    Others stay out: a run that loads them imports them as a fresh one does,
    and every run would otherwise pay for them, since each fork copies the
    server's page tables (a server with a venv's LangSmith, AnyIO, ... plugins
    has twice the memory mapped: measured, a fork and exit cost 6.9 ms of CPU
    against 4.1 ms).
    """
    missing = []
    for name in [*names, *_pytest_builtin_plugins()]:
        try:
            importlib.import_module(name)
        except Exception:
            missing.append(name)
    try:
        plugins, marked = _pytest_plugins()
        hook = _rewriting_hook(marked)
    except Exception:
        return [*missing, *REWRITTEN]
    sys.meta_path.insert(0, hook)
    try:
        for name in (*REWRITTEN, *plugins):
            try:
                importlib.import_module(name)
            except Exception:
                missing.append(name)
    finally:
        sys.meta_path.remove(hook)
    _scan_modules_for_hypothesis()
    build_unicode_tables()
    freeze()
    return missing


def _scan_modules_for_hypothesis() -> None:
    """Let Hypothesis look at the preloaded modules once, here, instead of in every run.

    At its first draw Hypothesis walks ``sys.modules`` for "local" modules to
    take constants from (about a tenth of a small run's time with everything
    the server holds). The walk remembers the modules it has seen; with the
    server's own modules hidden as in a run (``_fresh_main``), a run walks
    only what it imports itself and finds the same constants a fresh run
    finds: preloaded modules are libraries, never local. Hypothesis internals:
    skipped if they are not there.
    """
    hidden = {
        n: sys.modules.pop(n)
        for n in list(sys.modules)
        if _is_server_module(n) or n == "__main__"  # a run has a __main__ of its own
    }
    try:
        from hypothesis.internal.conjecture import providers

        providers._get_local_constants()
    except Exception:
        pass
    finally:
        sys.modules.update(hidden)


def build_unicode_tables() -> bool:
    """Build Hypothesis's Unicode tables here, once, so no forked run builds them again.

    Hypothesis walks every code point the first time a process draws text
    (the general categories, and what UTF-8 encodes): about a second in every
    run. Built in the server, the tables are in every child's memory from its
    start. Hypothesis would also write them to its storage directory; that is
    pointed at a temporary one for the build and then set back (runs look in
    their own working directory, see ``_fresh_main``). Hypothesis internals:
    skipped, returning False, if they are not there or the build fails.
    """
    try:
        import tempfile
        import warnings

        from hypothesis import configuration
        from hypothesis.internal import charmap
    except Exception:
        return False
    categories = getattr(charmap, "charmap", None)
    codec = getattr(charmap, "intervals_from_codec", None)
    if categories is None:
        return False
    home = "__hypothesis_home_directory"  # the storage directory once resolved
    names = (home, "_first_postinit_what")
    saved = {n: vars(configuration)[n] for n in names if n in vars(configuration)}
    if home not in saved:  # it would write where it should not: leave the tables to runs
        return False
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "slow code in plugin" is about plugins, not this
            setattr(configuration, home, Path(tmp))
            categories()
            if codec is not None:
                codec("utf-8")
        return True
    except Exception:
        return False
    finally:
        for name, value in saved.items():
            setattr(configuration, name, value)


def freeze() -> None:
    """Move everything imported so far out of the collector's reach (``gc.freeze``).

    A forked run's collections then never walk the preloaded objects: they
    are not slower than a fresh interpreter's (pytest collects garbage five
    times at exit), and they do not write to, and so copy, the pages the
    server shares with every run. Objects are only made immortal for the
    collector, in the server and in each run's own copy.
    """
    import gc

    gc.collect()
    gc.freeze()


def _pytest_builtin_plugins() -> list[str]:
    """The modules of pytest's own plugins, which every pytest run imports (not registers)."""
    try:
        from _pytest.config import default_plugins, essential_plugins
    except Exception:
        return []
    return [f"_pytest.{name}" for name in (*essential_plugins, *default_plugins)]


def _pytest_plugins() -> tuple[list[str], set[str]]:
    """Modules of the installed pytest plugins, and the names pytest marks for rewriting."""
    import importlib.metadata

    from _pytest.config import _iter_rewritable_modules

    plugins: list[str] = []
    marked: set[str] = set()
    for dist in importlib.metadata.distributions():
        points = [ep for ep in dist.entry_points if ep.group == "pytest11"]
        if points and (dist.metadata["Name"] or "").lower() in PLUGIN_DISTRIBUTIONS:
            marked |= set(_iter_rewritable_modules(str(f) for f in dist.files or []))
            plugins += [ep.value.split(":")[0] for ep in points]
    return plugins, marked


def _rewriting_hook(marked: set[str]) -> Any:
    """pytest's ``AssertionRewritingHook`` with the little of a ``Config`` it reads."""
    from _pytest.assertion import assertstate_key  # type: ignore[attr-defined]
    from _pytest.assertion.rewrite import AssertionRewritingHook
    from _pytest.stash import Stash

    class State:
        mode = "rewrite"
        hook = None

        def trace(self, *args: object) -> None:
            return None

    class Config:
        def __init__(self) -> None:
            self.stash = Stash()
            self.stash[assertstate_key] = State()  # type: ignore[misc]

        def getini(self, name: str) -> object:
            return ["test_*.py", "*_test.py"] if name == "python_files" else False

    hook = AssertionRewritingHook(Config())  # type: ignore[arg-type]
    hook.mark_rewrite(*marked)
    return hook


def reset_signals() -> None:
    """The signal dispositions of a fresh interpreter (a server may have changed some)."""
    with _suppress():
        signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def run_python(entry: Entry) -> NoReturn:
    """Run ``entry`` in this (forked, already jailed) process as ``python`` would; never returns."""
    kind, target, argv = entry
    code = 0
    try:
        _fresh_main()
        sys.argv = list(argv)
        # What a re-exec of "the same command" reads (the server's own is its boot line).
        given = [target, *argv[1:]] if kind == "file" else [argv[0], target, *argv[1:]]
        sys.orig_argv = [sys.executable, *given]
        if kind == "file":
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            _run_file(target)
        elif kind == "module":
            sys.path.insert(0, os.getcwd())
            import runpy

            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]
        else:
            sys.path.insert(0, "")
            exec(compile(target, "<string>", "exec"), sys.modules["__main__"].__dict__)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        _print_exception(exc)
        code = 1
    os._exit(_shutdown(code))


SERVER_MODULES = ("sipdo", "_sipdo_zygote", "_sipdo_server")


def _is_server_module(name: str) -> bool:
    return name.split(".")[0] in SERVER_MODULES


def _fresh_main() -> None:
    """A new, empty ``__main__`` and the per-process state a fresh start would compute here.

    The server's own modules leave ``sys.modules`` (this code keeps running on
    its references): a fresh interpreter has none of them, and tools that look
    at every loaded module (Hypothesis collects constants from "local" ones,
    which sipdo is when installed editable) must see what a fresh run sees.
    """
    for name in [n for n in sys.modules if _is_server_module(n)]:
        del sys.modules[name]
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    if "random" in sys.modules:  # a forked copy would repeat the server's sequence
        sys.modules["random"].seed()
    config = sys.modules.get("hypothesis.configuration")
    if config is not None:  # Hypothesis keeps its database under the cwd at import
        setattr(config, "__hypothesis_home_directory_default", Path.cwd() / ".hypothesis")


def _run_file(path: str) -> None:
    if not os.path.isfile(path):
        import runpy  # a directory or zip with __main__.py, or the interpreter's own error

        if not os.path.exists(path):
            sys.stderr.write(
                f"{sys.executable}: can't open file {os.path.abspath(path)!r}: "
                f"[Errno 2] No such file or directory\n"
            )
            raise SystemExit(2)
        runpy.run_path(path, run_name="__main__")
        return
    path = os.path.abspath(path)  # as the interpreter sets __main__.__file__ since 3.9
    with open(path, "rb") as handle:
        source = handle.read()
    main = sys.modules["__main__"]
    main.__file__ = path
    main.__dict__["__cached__"] = None
    exec(compile(source, path, "exec"), main.__dict__)


def _exit_code(exc: SystemExit) -> int:
    value = exc.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    with _suppress():
        sys.stderr.write(f"{value}\n")
    return 1


def _print_exception(exc: BaseException) -> None:
    """The traceback the interpreter would print, without this module's and runpy's frames."""
    tb = exc.__traceback__
    skip = {__file__, getattr(sys.modules.get("runpy"), "__file__", None)}
    while tb is not None and tb.tb_frame.f_code.co_filename in skip:
        tb = tb.tb_next
    with _suppress():
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
    if isinstance(exc, KeyboardInterrupt):
        os._exit(130)


def _shutdown(code: int) -> int:
    """The interpreter's exit: join non-daemon threads, run ``atexit``, flush the streams."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        _print_exception(exc)
    try:
        atexit._run_exitfuncs()
    except BaseException as exc:
        _print_exception(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            code = code or 120  # as the interpreter does when flushing fails
    return code


def setup_failed(exc: BaseException) -> NoReturn:
    """Report a failure of the run's set-up (ours, not the program's) and exit."""
    with _suppress():
        os.write(2, f"{SETUP_MARK}{exc!r}\n".encode())
    os._exit(SETUP_FAILED)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True
