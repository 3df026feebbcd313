"""Dataset import on real generated files: UCF101- and HMDB51-style class folders with
their official split lists, a Kinetics-style CSV, and subtitle sidecars."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import vdg
from vdg_tf.data.importers import caption, from_csv, from_folders
from vdg_tf.manifest import read_manifest

SRT = """1
00:00:00,000 --> 00:00:00,800
a dog <i>runs</i>

2
00:00:01,000 --> 00:00:02,000
across the yard
"""


def _sample_rows(sample_data) -> list[dict]:
    path = Path(sample_data["manifest_train"])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r["path"] = path.parent / r["video"]
    return rows


@pytest.fixture
def ucf_tree(sample_data, tmp_path):
    """`UCF-101/<Class>/v_<Class>_gNN_c01.avi`-style tree of 3 classes x 4 real clips, an
    empty class folder, and trainlist01/testlist01 (one listed file is missing)."""
    root = tmp_path / "UCF-101"
    rows = _sample_rows(sample_data)
    by_label: dict[str, list[dict]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    classes = sorted(by_label)[:3]
    train, test = [], []
    for c in classes:
        name = c.replace("-", "").title()
        (root / name).mkdir(parents=True)
        for g, r in enumerate(by_label[c][:4]):
            rel = f"{name}/v_{name}_g{g:02d}_c01.mp4"
            shutil.copy(r["path"], root / rel)
            (train if g < 3 else test).append(rel)
    first = train[0]
    (root / first).with_suffix(".srt").write_text(SRT)
    (root / "Empty").mkdir()
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "trainlist01.txt").write_text(
        "".join(f"{r} {i}\n" for i, r in enumerate(train, 1)) + "Gone/v_Gone_g01_c01.avi 9\n"
    )
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))
    return root, lists, first


def test_from_folders_without_splits(ucf_tree, tmp_path):
    root, _, first = ucf_tree
    info = from_folders(root, tmp_path / "out" / "ucf.jsonl")
    rows, problems = read_manifest(info["manifest"])
    assert not problems and info["rows"] == len(rows) == 12
    assert len(info["labels"]) == 3 and "Empty" not in info["labels"]
    assert (
        info["skipped"] == 1 and "Empty: class folder has no video file" in info["skipped_files"][0]
    )
    assert all(Path(r.video).is_file() for r in rows)  # paths relative to the manifest resolve
    captioned = [r for r in rows if r.text]
    assert [Path(r.video).name for r in captioned] == [Path(first).name]
    assert captioned[0].text == "a dog runs across the yard"
    assert not (tmp_path / "out" / "ucf_train.jsonl").exists()


def test_from_folders_with_ucf_split_lists(ucf_tree, tmp_path):
    root, lists, _ = ucf_tree
    out = tmp_path / "ucf.jsonl"
    info = from_folders(root, out, splits=lists)
    assert info["splits"]["train"]["rows"] == 9 and info["splits"]["test"]["rows"] == 3
    train, _ = read_manifest(tmp_path / "ucf_train.jsonl")
    test, _ = read_manifest(tmp_path / "ucf_test.jsonl")
    assert not {r.video for r in train} & {r.video for r in test}
    assert {r.label for r in test} == set(info["labels"])
    # the missing listed file is counted and named, not fatal (plus the empty class)
    assert info["skipped"] == 2
    assert any("trainlist01.txt line 10" in s and "gone/v_gone" in s for s in info["skipped_files"])


def test_from_folders_with_hmdb_split_files(ucf_tree, tmp_path):
    root, _, _ = ucf_tree
    lists = tmp_path / "hmdb_splits"
    lists.mkdir()
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "Empty"):
        names = sorted(p.name for p in folder.glob("*.mp4"))
        # 1 train, 2 test, 0 unused
        marks = ["1", "1", "2", "0"]
        (lists / f"{folder.name}_test_split1.txt").write_text(
            "".join(f"{n} {m} \n" for n, m in zip(names, marks, strict=True))
        )
    info = from_folders(root, tmp_path / "hmdb.jsonl", splits=lists)
    assert info["splits"]["train"]["rows"] == 6 and info["splits"]["test"]["rows"] == 3
    assert info["rows"] == 12  # the unused third still goes into the whole manifest


def test_from_folders_bad_input(tmp_path, sample_data):
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        from_folders(tmp_path / "nowhere", tmp_path / "m.jsonl")
    root = tmp_path / "root"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "broken.mp4").write_bytes(b"not a video at all")
    shutil.copy(_sample_rows(sample_data)[0]["path"], root / "cat" / "good.mp4")
    info = from_folders(root, tmp_path / "m.jsonl")
    assert info["rows"] == 1 and info["skipped"] == 1
    assert info["skipped_files"][0].startswith(str(root / "cat" / "broken.mp4"))
    with pytest.raises(FileNotFoundError, match="no split lists for split 1"):
        from_folders(root, tmp_path / "m.jsonl", splits=tmp_path)


def test_from_csv_kinetics(sample_data, tmp_path):
    rows = _sample_rows(sample_data)
    videos = tmp_path / "kinetics" / "train"
    (videos / "abseiling").mkdir(parents=True)
    # a clip already cut to its window, and a full video the row windows into
    shutil.copy(rows[0]["path"], videos / "abseiling" / "aaaaaaaaaaa_000010_000020.mp4")
    shutil.copy(rows[1]["path"], videos / "bbbbbbbbbbb.mp4")
    (videos / "bbbbbbbbbbb.srt").write_text(SRT)
    table = tmp_path / "train.csv"
    table.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,aaaaaaaaaaa,10,20,train\n"
        "archery,bbbbbbbbbbb,0.9,1.5,val\n"
        "archery,ccccccccccc,0,10,train\n"
    )
    info = from_csv(table, tmp_path / "kinetics", tmp_path / "k.jsonl")
    assert (info["rows"], info["skipped"], info["labels"]) == (2, 1, ["abseiling", "archery"])
    assert "train.csv line 4: no video for ccccccccccc" in info["skipped_files"][0]
    got, problems = read_manifest(tmp_path / "k.jsonl")
    assert not problems
    assert (got[0].start, got[0].end) == (None, None)  # the cut file is the window
    assert (got[1].start, got[1].end) == (0.9, 1.5)
    assert got[1].text == "across the yard"  # only the subtitle line overlapping 0.9-1.5 s
    assert info["splits"]["train"]["rows"] == 1 and info["splits"]["val"]["rows"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("youtube_id,label\nx,y\n")
    with pytest.raises(ValueError, match="bad.csv: missing column 'time_start'"):
        from_csv(bad, tmp_path / "kinetics", tmp_path / "k2.jsonl")


def _kinetics_folder(sample_data, tmp_path) -> Path:
    """Two downloaded videos: a clip cut to 10-20 s of `aaaaaaaaaaa`, and all of `bbbbbbbbbbb`."""
    rows = _sample_rows(sample_data)
    videos = tmp_path / "kinetics"
    videos.mkdir()
    shutil.copy(rows[0]["path"], videos / "aaaaaaaaaaa_000010_000020.mp4")
    shutil.copy(rows[1]["path"], videos / "bbbbbbbbbbb.mp4")
    return videos


def test_from_csv_reads_a_csv_that_starts_with_a_bom(sample_data, tmp_path):
    videos = _kinetics_folder(sample_data, tmp_path)
    table = tmp_path / "excel.csv"  # Excel's "CSV UTF-8" starts the file with U+FEFF
    table.write_text(
        "\ufeffyoutube_id,time_start,time_end,label\naaaaaaaaaaa,10,20,abseiling\n",
        encoding="utf-8",
    )
    info = from_csv(table, videos, tmp_path / "k.jsonl")
    assert (info["rows"], info["skipped"], info["labels"]) == (1, 0, ["abseiling"])


def test_from_csv_skips_rows_without_a_label_or_a_split(sample_data, tmp_path):
    videos = _kinetics_folder(sample_data, tmp_path)
    table = tmp_path / "train.csv"
    table.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,aaaaaaaaaaa,10,20,train\n"
        ",bbbbbbbbbbb,0,1,train\n"
        "archery,bbbbbbbbbbb,0,1,\n"
        "archery,bbbbbbbbbbb,1,2,val\n"
    )
    info = from_csv(table, videos, tmp_path / "k.jsonl")
    assert (info["rows"], info["skipped"]) == (2, 2)
    assert info["skipped_files"] == [
        "train.csv line 3: empty label (the CSV has a label column)",
        "train.csv line 4: empty split (the CSV has a split column)",
    ]
    got, _ = read_manifest(tmp_path / "k.jsonl")
    assert [r.label for r in got] == ["abseiling", "archery"]
    assert sorted(info["splits"]) == ["train", "val"]
    assert not (tmp_path / "k_none.jsonl").exists()


def test_caption_skips_and_counts_an_srt_cue_with_a_malformed_timestamp(tmp_path):
    video = tmp_path / "v.mp4"
    (tmp_path / "v.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nhello there\n\n"
        "2\n00:00:0x,000 --> 00:00:04,000\nbroken cue\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\nlast one\n"
    )
    errors: list[str] = []
    assert caption(video, errors=errors) == "hello there last one"
    assert errors == [
        f"{tmp_path / 'v.srt'} line 6: malformed cue timing '00:00:0x,000 --> 00:00:04,000' "
        "(cue skipped)"
    ]


def test_caption_sidecars(tmp_path):
    video = tmp_path / "v.mp4"
    (tmp_path / "v.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhello there\n")
    assert caption(video) == "hello there"
    (tmp_path / "v.vtt").unlink()
    (tmp_path / "v.txt").write_text("  a plain\ncaption ")
    assert caption(video) == "a plain caption"
    assert caption(tmp_path / "none.mp4") == ""


def test_cli_manifest_from_folders(ucf_tree, tmp_path, capfd):
    root, lists, _ = ucf_tree
    out = tmp_path / "cli.jsonl"
    args = ["from-folders", root, "--out", out, "--splits", lists, "--json"]
    rc, stdout, _ = vdg(capfd, "manifest", *args)
    got = json.loads(stdout)  # the JSON object is all of stdout
    assert rc == 0 and (got["rows"], got["skipped"], len(got["labels"])) == (12, 2, 3)
    rc, _, err = vdg(capfd, "manifest", "from-folders", tmp_path / "nowhere", "--out", out)
    assert rc == 2 and "nowhere: no such folder" in err
    assert len(err.strip().splitlines()) == 1


def test_an_imported_tree_trains_and_reports_on_its_test_list(ucf_tree, tmp_path):
    """The whole path: class folders + split lists + SRT captions -> manifests -> a run."""
    from tests.helpers import tiny_config
    from vdg_tf.training import train

    root, lists, _ = ucf_tree
    info = from_folders(root, tmp_path / "ucf.jsonl", splits=lists)
    result = train(
        tiny_config(epochs=1),
        info["splits"]["train"]["manifest"],
        tmp_path / "run",
        eval_data=info["splits"]["test"]["manifest"],
        progress=False,
    )
    assert result.labels == info["labels"] and not result.skipped
    assert result.metrics["eval"]["n"] == 3
    vocab = set(result.tokenizer.vocabulary)
    assert {"yard", "y"} & vocab  # the SRT caption ("... across the yard") is training text
