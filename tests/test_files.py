"""Atomic writes: a folder where a file should go is refused in one line, nothing left behind."""

import pytest

from vdg_tf.files import ForeignPathError, atomic_path, atomic_write_bytes, atomic_write_text


def test_a_folder_target_is_refused_and_leaves_no_temp_file(tmp_path):
    folder = tmp_path / "out"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(ForeignPathError, match=r"out: is a folder; give a file path inside it"):
        atomic_write_text(folder, "a,b\n")  # `--csv DIR`, `--out DIR`
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in folder.iterdir()] == ["inside"]


def test_a_failed_rename_removes_the_temp_file(tmp_path):
    target = tmp_path / "model.tflite"
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
        target.mkdir()  # appears while the file is written: the rename cannot replace it
        (target / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    atomic_write_bytes(tmp_path / "ok.bin", b"1")
    assert (tmp_path / "ok.bin").read_bytes() == b"1"
