"""What ``Run.env`` records about the installed software, captured once per process.

Kept apart from ``_lifecycle`` (which records where a run runs) because it used to be the one
costly part of the environment: ``importlib.metadata`` parses every package's whole metadata
file with the ``email`` parser (about 4 ms per 100 packages, plus ~20 ms of imports). The first
``start_run`` of a process pays for it, so this module reads only what it needs: the folders on
``sys.path`` and the first header lines of each ``.dist-info/METADATA`` (or ``.egg-info``)
file. docs/adr/0024-lazy-reads-and-first-use.md.
"""

from __future__ import annotations

import os
import sys

__all__ = ["git_state", "installed_packages", "platform_text", "python_version"]

_HEAD_BYTES = 2048  # Name and Version are among the first headers of a metadata file


def _name_version(path: str) -> tuple[str, str] | None:
    """(Name, Version) from the headers of a core-metadata file, or None if it has no Name."""
    try:  # os.open/os.read: no buffered file object per package (a fifth of this function)
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.read(fd, _HEAD_BYTES)
        finally:
            os.close(fd)
    except OSError:  # gone, unreadable, or a folder
        return None
    name = version = None
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            break  # the end of the headers
        if name is None and line[:5].lower() == b"name:":
            name = line[5:].strip().decode("utf-8", "replace")
        elif version is None and line[:8].lower() == b"version:":
            version = line[8:].strip().decode("utf-8", "replace")
        if name is not None and version is not None:
            break
    if not name:
        return None
    return name, version or ""


def _metadata_file(folder: str, entry: str) -> str | None:
    if entry.endswith(".dist-info"):
        return os.path.join(folder, entry, "METADATA")
    if entry.endswith(".egg-info"):
        path = os.path.join(folder, entry)
        return os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    return None


def installed_packages() -> dict[str, str]:
    """Every installed distribution as ``{name: version}``, as ``pip freeze`` lists them.

    What ``importlib.metadata.distributions()`` finds on ``sys.path`` (``.dist-info`` and
    ``.egg-info`` in its folders; no ``pip`` subprocess: spawning pip costs ~0.5 s and pip may
    not be installed), read from the first lines of each metadata file. A name found twice on
    ``sys.path`` keeps its first entry, the one an import would load; names are sorted
    case-insensitively, as pip sorts them.
    """
    found: dict[str, str] = {}
    seen: set[str] = set()
    for folder in sys.path:
        try:
            entries = sorted(os.listdir(folder or "."))
        except OSError:  # not a folder (a zip file), or gone
            continue
        for entry in entries:
            meta = _metadata_file(folder or ".", entry)
            if meta is None:
                continue
            got = _name_version(meta)
            if got is None:  # a broken install without metadata: nothing to record
                continue
            name, version = got
            key = name.lower().replace("_", "-").replace(".", "-")  # PEP 503 normalised name
            if key in seen:
                continue
            seen.add(key)
            found[name] = version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


_CLEAN = str.maketrans({" ": "_", "/": "-", "\\": "-", ":": "-", ";": "-", '"': "-", "(": "-", ")": "-"})


def platform_text() -> str:
    """``platform.platform()``'s text, on Linux without the ``uname -p`` process it starts.

    ``platform.platform()`` reads ``uname().processor``, which on Linux runs ``uname -p``
    (~5-30 ms) only to drop it again when it is ``unknown`` or the machine name, as GNU
    ``uname`` gives. So on Linux the text is built from ``os.uname()`` and the C library's
    version, cleaned the way ``platform`` cleans it; elsewhere ``platform.platform()`` is used.
    """
    if not sys.platform.startswith("linux"):
        import platform

        return platform.platform()
    u = os.uname()
    libc, version = _libc_ver()
    text = "-".join(p.strip() for p in (u.sysname, u.release, u.machine, "with", libc + version) if p)
    text = text.translate(_CLEAN).replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


def _libc_ver() -> tuple[str, str]:
    """``platform.libc_ver()``: its first answer, ``confstr``, without importing ``platform``."""
    try:
        parts = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        parts = None
    found = (parts or "").split(maxsplit=1)
    if len(found) == 2:
        return found[0], found[1]
    import platform  # not glibc: platform reads the interpreter's binary

    return platform.libc_ver()


def python_version() -> tuple[str, str]:
    """``(platform.python_version(), platform.python_implementation())``.

    ``import platform`` costs ~3 ms at the first ``start_run`` of a process; on CPython both
    answers come from ``sys.version`` the way ``platform`` reads them (the leading
    ``[\\w.+]+`` of it, with ``.0`` added to a two-part version). Other interpreters ask
    ``platform``.
    """
    import re

    found = re.match(r"[\w.+]+", sys.version)
    if (
        sys.implementation.name != "cpython"
        or found is None
        or sys.version.startswith(("IronPython", "Brython"))
    ):
        import platform

        return platform.python_version(), platform.python_implementation()
    parts = found.group(0).split(".")
    if len(parts) == 2:
        parts.append("0")
    return ".".join(parts), "CPython"


def _in_repository(cwd: str) -> bool:
    """True if ``cwd`` or a folder above it holds ``.git`` (or ``$GIT_DIR`` is set)."""
    if os.environ.get("GIT_DIR"):
        return True
    folder = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def git_state(cwd: str) -> dict[str, object]:
    """``{"git_commit": ..., "git_dirty": ...}`` for a working copy with a commit, else ``{}``.

    Outside a repository no process is started (looking for ``.git`` costs microseconds);
    inside, one ``git status`` gives both the commit and whether tracked files changed.
    """
    if not _in_repository(cwd):
        return {}
    import subprocess

    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
            cwd=cwd,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    commit = None
    dirty = False
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line[len("# branch.oid ") :].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None or commit == "(initial)":
        return {}
    return {"git_commit": commit, "git_dirty": dirty}
