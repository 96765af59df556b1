"""Where a job may read from: the output root, and the read-only input roots the operator
names in ``FARM_INPUT_ROOTS`` (absolute paths separated by ``os.pathsep``).

Every path a spec names for reading (data sets, audio, checkpoints) is confined to these
roots after symlinks and ``..`` are resolved, once at submission and again on the worker just
before it opens the path: the worker's roots may differ, and a link may have changed since.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from farm.outputs import resolve_ref, within

if TYPE_CHECKING:
    from farm.config import Settings


class OutsideInputRoots(ValueError):
    """Raised when a path a job would read resolves outside every root it may read from."""


def parse_roots(text: str) -> tuple[Path, ...]:
    """``FARM_INPUT_ROOTS`` as paths (``~`` expanded, empty entries skipped); a relative entry
    raises ValueError, since it would mean a different folder in every process."""
    roots: list[Path] = []
    for entry in text.split(os.pathsep):
        if not entry:
            continue
        path = Path(entry).expanduser()
        if not path.is_absolute():
            raise ValueError(
                f"input root {entry!r} is not an absolute path "
                f"(FARM_INPUT_ROOTS takes absolute paths separated by {os.pathsep!r})"
            )
        roots.append(path)
    return tuple(roots)


def input_roots(settings: Settings) -> tuple[Path, ...]:
    """The roots a job may read from, resolved: the output root first, then the input roots."""
    extra = (p.resolve() for p in parse_roots(settings.input_roots))
    return (settings.output_root_abs(), *extra)


def confine_input(roots: Settings | Sequence[Path], ref: str) -> Path:
    """The file or folder ``ref`` names for reading, resolved (symlinks and ``..`` followed).

    ``roots`` are settings or :func:`input_roots` (the output root first). A relative ``ref``
    is taken under the output root, an absolute one as it is; either way the resolved path
    must lie inside one of the roots (a root itself included), or :class:`OutsideInputRoots`.
    """
    allowed = [r.resolve() for r in (roots if isinstance(roots, Sequence) else input_roots(roots))]
    if not allowed:
        raise ValueError("confine_input needs at least the output root")
    target = resolve_ref(allowed[0], ref)
    if target is None:
        raise OutsideInputRoots(f"{ref!r} is not a usable path")
    if not any(within(target, root) for root in allowed):
        named = ", ".join([f"{allowed[0]} (the output root)", *map(str, allowed[1:])])
        raise OutsideInputRoots(f"{ref!r} is outside the folders a job may read from: {named}")
    return target


def dataset_input(roots: Settings | Sequence[Path], dataset: str) -> Path | None:
    """The confined file or folder behind ``images:<folder>`` / ``video:<file>``; None for a
    built-in data set (``digits``, ``moving-digits``)."""
    _, sep, rest = dataset.partition(":")
    return confine_input(roots, rest) if sep else None


def input_file(roots: Settings | Sequence[Path], ref: str) -> tuple[Path | None, str | None]:
    """``(path, None)`` for a file ``ref`` a job may read (:func:`confine_input`), else
    ``(None, why)``: outside the roots, missing, or a name the file system refuses (too
    long, say), which submission reports as the field's problem rather than failing on."""
    try:
        path = confine_input(roots, ref)
        if path.is_file():
            return path, None
        return None, f"{ref!r} does not exist"
    except OutsideInputRoots as e:
        return None, str(e)
    except OSError as e:
        return None, f"{ref!r} cannot be read: {e.strerror or e}"
