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
        (b'{"video": "a.mp4", "start": NaN}', "'start' must be a finite number, got NaN"),
        (b'{"video": "a.mp4", "end": Infinity}', "'end' must be a finite number, got Infinity"),
        (b'{"video": "a.mp4", "start": -5}', "'start' must be >= 0 seconds, got -5"),
        (b'{"video": "a.mp4", "start": true}', "'start' must be a number, got true (boolean)"),
        (b'{"video": "a.mp4", "target": false}', "'target' must be a number, got false"),
        (b'{"video": "a.mp4", "end": 0}', "'end' (0) must be after 'start' (0)"),
        (b'{"video": "a.mp4", "start": 2, "end": 2}', "'end' (2) must be after 'start' (2)"),
        (b'{"video": "a.mp4", "audio": 3}', "'audio' must be a string, got 3 (number)"),
        (b'{"video": ["a.mp4"]}', "'video' must be a string, got [\"a.mp4\"] (list)"),
        (b'{"video": "a.mp4", "label": true}', "'label' must be a string, got true"),
        (b'{"video": "a.mp4", "question": {"q": 1}}', "'question' must be a string"),
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


def test_rows_name_their_manifest_so_two_manifests_never_collide(tmp_path):
    a, b = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    a.write_text('{"video": "x.mp4"}\n')
    b.write_text('{"video": "x.mp4"}\n')
    (ra,), (rb,) = read_manifest(a)[0], read_manifest(b)[0]
    assert ra.line == rb.line == 1 and ra.key != rb.key
    assert ra.where == "train.jsonl line 1 (x.mp4)" and ra.place == f"{a} line 1"


def test_a_manifest_whose_every_row_is_bad_returns_only_problems(tmp_path):
    p = write(tmp_path, b'{"video": "a.mp4", "start": -1}\n{"video": 3}\n')
    rows, problems = read_manifest(p)
    assert rows == [] and len(problems) == 2
