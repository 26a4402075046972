"""What ``Run.env`` records about the installed software, captured once per process.

Kept apart from ``_lifecycle`` (which records where a run runs) because it is the one costly
part of the environment: reading every package's metadata takes tens of milliseconds, so it
is done on the first ``start_run`` of a process and cached (``_lifecycle.environment``).
"""

from __future__ import annotations

__all__ = ["installed_packages"]


def installed_packages() -> dict[str, str]:
    """Every installed distribution as ``{name: version}``, as ``pip freeze`` lists them.

    Read from ``importlib.metadata`` (no ``pip`` subprocess: spawning pip costs ~0.5 s and
    pip may not be installed). A name found twice on ``sys.path`` keeps its first entry, the
    one an import would load; names are sorted case-insensitively, as pip sorts them.
    """
    import importlib.metadata  # here, not at module level: it costs ~20 ms to import

    found: dict[str, str] = {}
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:  # a broken install without metadata: nothing to record
            continue
        key = name.lower().replace("_", "-").replace(".", "-")  # PEP 503 normalised name
        if key in seen:
            continue
        seen.add(key)
        found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))
