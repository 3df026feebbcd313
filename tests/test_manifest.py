"""Manifest parsing: valid rows, and one-line problems naming the line for bad ones."""

import pytest

from vdg_tf.manifest import ManifestError, label_vocabulary, read_manifest


def write(tmp_path, raw: bytes):
    p = tmp_path / "m.jsonl"
    p.write_bytes(raw)
    return p


def test_rows_resolve_paths_and_optional_keys(tmp_path):
    p = write(
        tmp_path,
        b'{"video": "a.mp4", "text": "hi", "label": "x", "audio": "a.wav", "start": 1, "end": 2}\n\n',
    )
    rows, problems = read_manifest(p)
    assert not problems
    (r,) = rows
    assert r.video == str(tmp_path / "a.mp4") and r.audio == str(tmp_path / "a.wav")
    assert (r.start, r.end, r.line) == (1.0, 2.0, 1)


@pytest.mark.parametrize(
    "line, problem",
    [
        (b'{"text": "no video"}', "missing key 'video'"),
        (b"not json", "invalid JSON"),
        (b'{"video": "a.mp4", "text": "\xff\xfe"}', "not valid UTF-8"),
        (b'{"video": "a.mp4", "start": 3, "end": 1}', "'end' (1) must be after 'start' (3)"),
        (b'{"video": "a.mp4", "text": 5}', "'text' must be a string"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_rows_are_reported_by_line(tmp_path, line, problem):
    p = write(tmp_path, b'{"video": "ok.mp4", "label": "a"}\n' + line + b"\n")
    rows, problems = read_manifest(p)
    assert len(rows) == 1
    assert problems == [problems[0]] and "m.jsonl line 2" in problems[0] and problem in problems[0]
    with pytest.raises(ManifestError, match="line 2"):
        read_manifest(p, strict=True)


def test_missing_manifest_names_the_file(tmp_path):
    with pytest.raises(ManifestError, match="nope.jsonl: cannot read manifest"):
        read_manifest(tmp_path / "nope.jsonl")


def test_label_vocabulary_includes_multi_label(tmp_path):
    p = write(tmp_path, b'{"video": "a", "label": "b"}\n{"video": "c", "labels": ["a", "d"]}\n')
    assert label_vocabulary(read_manifest(p)[0]) == ["a", "b", "d"]
