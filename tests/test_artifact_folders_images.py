"""Issue 7 first-hour gaps: log_artifacts (a whole folder) and log_image (PNG, no Pillow needed)."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import chachaml
from chachaml.errors import InvalidValueError, NoActiveRunError
from chachaml.images import encode_png
from chachaml.store.base import Store


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "plots/loss.png": b"\x89PNG fake",
        "plots/deep/er/c.bin": bytes(range(256)) * 5000,  # > 1 MiB: streamed in chunks
        "empty.txt": b"",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "nothing-here").mkdir()
    return files


# -- log_artifacts --------------------------------------------------------------------------------
def test_log_artifacts_logs_every_file_by_its_relative_path(chachaml_store: Store, tmp_path: Path) -> None:
    files = _tree(tmp_path / "out")
    with chachaml.with_run() as run:
        logged = chachaml.log_artifacts(tmp_path / "out")
    assert [a.name for a in logged] == sorted(files)
    assert [a.name for a in chachaml.list_artifacts(run.id)] == sorted(files)
    for art in logged:
        assert art.size == len(files[art.name])
        assert art.sha256 == hashlib.sha256(files[art.name]).hexdigest()
        assert chachaml.load_artifact(run.id, art.name) == files[art.name]


def test_log_artifacts_puts_files_under_a_prefix(chachaml_store: Store, tmp_path: Path) -> None:
    files = _tree(tmp_path / "out")
    with chachaml.with_run() as run:
        chachaml.log_artifacts(str(tmp_path / "out"), prefix="epoch-1/")
        chachaml.log_artifacts(tmp_path / "out", "epoch-2")
    names = [a.name for a in chachaml.list_artifacts(run.id)]
    assert names == sorted(f"epoch-{e}/{rel}" for e in (1, 2) for rel in files)


def test_log_artifacts_again_is_a_no_op_and_a_changed_file_conflicts(
    chachaml_store: Store, tmp_path: Path
) -> None:
    _tree(tmp_path / "out")
    with chachaml.with_run() as run:
        first = chachaml.log_artifacts(tmp_path / "out")
        assert chachaml.log_artifacts(tmp_path / "out") == first
        (tmp_path / "out" / "a.txt").write_bytes(b"changed")
        with pytest.raises(chachaml.ConflictError, match=r"a\.txt"):
            chachaml.log_artifacts(tmp_path / "out")
        chachaml.log_artifacts(tmp_path / "out", overwrite=True)
    assert chachaml.load_artifact(run.id, "a.txt") == b"changed"


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symlinks")
def test_a_symlink_leaving_the_folder_is_refused_before_anything_is_written(
    chachaml_store: Store, tmp_path: Path
) -> None:
    _tree(tmp_path / "out")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    os.symlink(secret, tmp_path / "out" / "zz-link.txt")
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match=r"zz-link\.txt.*symbolic link.*outside the folder"):
            chachaml.log_artifacts(tmp_path / "out")
        os.symlink(tmp_path, tmp_path / "out" / "up")  # a folder link leaving it: refused too
        os.remove(tmp_path / "out" / "zz-link.txt")
        with pytest.raises(InvalidValueError, match=r"'.*up' is a symbolic link"):
            chachaml.log_artifacts(tmp_path / "out")
    assert chachaml.list_artifacts(run.id) == []


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symlinks")
def test_a_symlink_inside_the_folder_is_logged_and_a_folder_link_not_walked_twice(
    chachaml_store: Store, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "out")
    os.symlink(tmp_path / "out" / "a.txt", tmp_path / "out" / "b.txt")
    os.symlink(tmp_path / "out" / "plots", tmp_path / "out" / "plots-again")
    with chachaml.with_run() as run:
        chachaml.log_artifacts(tmp_path / "out")
    assert [a.name for a in chachaml.list_artifacts(run.id)] == sorted([*files, "b.txt"])
    assert chachaml.load_artifact(run.id, "b.txt") == b"alpha"


def test_log_artifacts_refuses_a_file_a_missing_folder_and_no_run(
    chachaml_store: Store, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NoActiveRunError):
        chachaml.log_artifacts(tmp_path)
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match=r"'.*f\.txt' is a file; log it with chachaml\.log_file"):
            chachaml.log_artifacts(tmp_path / "f.txt")
        with pytest.raises(InvalidValueError, match="is not a folder"):
            chachaml.log_artifacts(tmp_path / "missing")
        with pytest.raises(InvalidValueError, match="prefix"):
            chachaml.log_artifacts(tmp_path, prefix="../up")
        (tmp_path / "empty").mkdir()
        assert chachaml.log_artifacts(tmp_path / "empty") == []
    assert [a.name for a in chachaml.list_artifacts(run.id)] == []


def test_log_file_on_a_folder_points_to_log_artifacts(chachaml_store: Store, tmp_path: Path) -> None:
    with chachaml.with_run(), pytest.raises(InvalidValueError, match=r"log_artifacts\("):
        chachaml.log_file(tmp_path)


_PROGRESS = """
import os, sys, chachaml
chachaml.use_store("p.db")
os.makedirs("many")
for i in range(250):
    open(f"many/f{i:03}.txt", "w").write(str(i))
with chachaml.with_run():
    print(len(chachaml.log_artifacts("many")))
"""


def test_progress_never_goes_to_stdout_nor_to_a_redirected_stderr(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRESS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout == "250\n"
    assert out.stderr == ""  # not a terminal: no progress


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_progress_goes_to_stderr_when_it_is_a_terminal_and_the_folder_is_big(tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROGRESS], cwd=tmp_path, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    shown = b""
    while True:  # drain the terminal until the child closes it (EIO on Linux, b"" elsewhere)
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.read() == b"250\n"  # stdout holds the result only
    assert proc.wait(timeout=120) == 0
    assert b"log_artifacts: 1/250 files" in shown and b"250/250 files" in shown


# -- log_image --------------------------------------------------------------------------------------
def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, colour type, unfiltered pixels) of a PNG written with filter 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", header)
    assert depth == 8
    channels = {0: 1, 2: 3, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    assert all(raw[i * stride] == 0 for i in range(height))
    pixels = b"".join(raw[i * stride + 1 : (i + 1) * stride] for i in range(height))
    return width, height, colour, pixels


@pytest.mark.parametrize(("shape", "colour"), [((5, 7), 0), ((5, 7, 1), 0), ((5, 7, 3), 2), ((5, 7, 4), 6)])
def test_a_uint8_array_is_stored_as_an_exact_png(
    chachaml_store: Store, shape: tuple[int, ...], colour: int
) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    with chachaml.with_run() as run:
        art = chachaml.log_image("samples/img.png", image)
    assert art.content_type == "image/png"
    data = chachaml.load_artifact(run.id, "samples/img.png")
    assert _decode_png(data) == (7, 5, colour, image.tobytes())
    from PIL import Image  # an independent decoder agrees

    with Image.open(chachaml.artifact_path(run.id, "samples/img.png")) as im:
        assert im.size == (7, 5)
        assert np.array_equal(np.asarray(im).reshape(shape), image)


def test_float_and_bool_arrays_are_scaled_to_8_bits(chachaml_store: Store) -> None:
    floats = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    with chachaml.with_run() as run:
        chachaml.log_image("f.png", floats)
        chachaml.log_image("b.png", np.array([[True, False]]))
    assert _decode_png(chachaml.load_artifact(run.id, "f.png"))[3] == bytes([0, 128, 255, 64])
    assert _decode_png(chachaml.load_artifact(run.id, "b.png"))[3] == bytes([255, 0])


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((2, 3, 5)), r"shape \(H, W\), \(H, W, 3\) or \(H, W, 4\), got \(2, 3, 5\)"),
        (np.zeros((3,)), r"got \(3,\)"),
        (np.zeros((0, 4)), "at least one pixel"),
        (np.array([[0.0, 2.0]]), r"values in \[0, 1\], got min 0.0 and max 2.0; scale it"),
        (np.array([[np.nan]]), r"values in \[0, 1\]"),
        (np.array([[300]]), r"values in 0..255, got min 300 and max 300"),
        (np.array([["a"]]), "dtype <U1"),
        ([[0, 1]], "takes a numpy array or a PIL image, got list"),
    ],
)
def test_images_that_are_not_pictures_are_refused_and_nothing_is_written(
    chachaml_store: Store, image: object, message: str
) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError, match=message):
        chachaml.log_image("bad.png", image)
    assert chachaml.list_artifacts(run.id) == []


def test_a_pil_image_is_stored_as_png(chachaml_store: Store) -> None:
    from PIL import Image

    im = Image.new("RGB", (3, 2), (10, 20, 30))
    with chachaml.with_run() as run:
        art = chachaml.log_image("pil.png", im)
    assert art.content_type == "image/png"
    width, height, mode, pixels = _decode_png_any(chachaml.artifact_path(run.id, "pil.png"))
    assert (width, height, mode) == (3, 2, "RGB") and pixels == bytes([10, 20, 30]) * 6


def _decode_png_any(path: str) -> tuple[int, int, str, bytes]:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size[0], im.size[1], im.mode, im.tobytes()


_NO_PIL = """
import sys
sys.modules["PIL"] = None  # Pillow absent: importing it raises ImportError
import numpy as np, chachaml
chachaml.use_store("n.db")
with chachaml.with_run() as run:
    print(chachaml.log_image("x.png", np.zeros((2, 2, 3), dtype=np.uint8)).content_type)
print("PIL" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None])
"""


def test_log_image_of_an_array_needs_no_pillow(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_PIL], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["image/png", "True"]


def test_encode_png_checks_its_arguments() -> None:
    assert _decode_png(encode_png(b"\x01\x02", 2, 1, 1)) == (2, 1, 0, b"\x01\x02")
    with pytest.raises(InvalidValueError, match="1, 3 or 4 channels"):
        encode_png(b"", 1, 1, 2)
    with pytest.raises(InvalidValueError, match="3 bytes do not make a 2x1 image"):
        encode_png(b"abc", 2, 1, 1)
