"""An output's digest is read once: a lone segment hard-linked into place keeps the digest
its chunk took, and any other file, or that one changed, is read again."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from workers.outputs import digest, digest_known, file_stamp

FAKE = "0" * 64  # not the file's digest: returned only if the file was not read


def segment(tmp_path: Path) -> tuple[Path, tuple[int, str, object]]:
    seg = tmp_path / "chunk-00000.mp4"
    seg.write_bytes(b"frames" * 1000)
    return seg, (seg.stat().st_size, FAKE, file_stamp(seg))


def test_a_hard_link_of_the_hashed_segment_keeps_its_digest(tmp_path: Path) -> None:
    seg, known = segment(tmp_path)
    out = tmp_path / "out.mp4"
    os.link(seg, out)
    assert digest_known(out, known) == (6000, FAKE)


def test_a_copy_is_read_again(tmp_path: Path) -> None:
    seg, known = segment(tmp_path)
    out = tmp_path / "out.mp4"
    shutil.copy2(seg, out)  # same size and modification time, another inode
    assert digest_known(out, known) == digest(out)
    assert digest(out)[1] == hashlib.sha256(b"frames" * 1000).hexdigest()


def test_the_segment_changed_after_hashing_is_read_again(tmp_path: Path) -> None:
    seg, known = segment(tmp_path)
    st = seg.stat()
    with seg.open("r+b") as f:
        f.write(b"FRAMES")  # same size
    os.utime(seg, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert digest_known(seg, known) == (
        6000,
        hashlib.sha256(b"FRAMES" + b"frames" * 999).hexdigest(),
    )


def test_nothing_known_or_no_stamp_reads_the_file(tmp_path: Path) -> None:
    seg, known = segment(tmp_path)
    assert digest_known(seg, None) == digest(seg)
    assert digest_known(seg, (known[0], FAKE, None)) == digest(seg)
