"""Unit tests for confining output paths to the output root (farm.outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.outputs import (
    OutsideOutputRoot,
    confine,
    default_output,
    relative_to_root,
    segment_path,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "out"
    r.mkdir()
    return r.resolve()


def test_confine_accepts_a_relative_path(root: Path) -> None:
    assert confine(root, "a/b.mp4") == root / "a" / "b.mp4"


def test_confine_accepts_an_absolute_path_inside_root(root: Path) -> None:
    assert confine(root, str(root / "renders" / "x.mp4")) == root / "renders" / "x.mp4"


def test_confine_normalizes_harmless_dot_dot(root: Path) -> None:
    assert confine(root, "a/../b/c.mp4") == root / "b" / "c.mp4"


@pytest.mark.parametrize("bad", ["../x.mp4", "a/../../x", "/etc/passwd", "../out2/x.mp4"])
def test_confine_refuses_paths_outside_root(root: Path, bad: str) -> None:
    with pytest.raises(OutsideOutputRoot, match="is outside the output root"):
        confine(root, bad)


def test_confine_refuses_a_sibling_with_the_root_as_prefix(root: Path) -> None:
    with pytest.raises(OutsideOutputRoot):
        confine(root, str(root) + "-evil/x.mp4")


@pytest.mark.parametrize("same", ["", ".", "a/.."])
def test_confine_refuses_the_root_itself(root: Path, same: str) -> None:
    with pytest.raises(OutsideOutputRoot, match="names the output root itself"):
        confine(root, same)


def test_confine_refuses_the_absolute_root(root: Path) -> None:
    with pytest.raises(OutsideOutputRoot, match="names the output root itself"):
        confine(root, str(root))


def test_confine_refuses_a_symlink_leading_out(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(OutsideOutputRoot):
        confine(root, "link/x.mp4")


def test_outside_output_root_is_a_value_error() -> None:
    assert issubclass(OutsideOutputRoot, ValueError)


def test_segment_path_layout(root: Path) -> None:
    assert segment_path(root, 7, 3) == root / ".segments" / "job-7" / "chunk-00003.mp4"
    assert segment_path(root, 12, 123456).name == "chunk-123456.mp4"


def test_segment_path_stays_under_root(root: Path) -> None:
    p = segment_path(root, 1, 0)
    assert root in p.parents
    assert relative_to_root(root, p) == ".segments/job-1/chunk-00000.mp4"


def test_default_output_per_kind() -> None:
    assert default_output("train", "vae-1") == "checkpoints/vae-1.safetensors"
    assert default_output("render", "sh010") == "renders/sh010.mp4"


def test_relative_to_root_uses_forward_slashes(root: Path) -> None:
    assert relative_to_root(root, root / "renders" / "a.mp4") == "renders/a.mp4"
