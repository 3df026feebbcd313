"""In-graph preprocessing (`vdg export --preprocess`) gives the training pipeline's features,
in Keras and in LiteRT, and the same predictions as the plain export fed by the pipeline."""

import json
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from av.video.reformatter import VideoReformatter

from tests.helpers import tiny_config
from vdg_tf.bundle import Bundle
from vdg_tf.config import VideoSpec
from vdg_tf.data.sample import render_frames
from vdg_tf.data.sources import dataset_from
from vdg_tf.export.api import export_model
from vdg_tf.export.inspect import inspect_tflite
from vdg_tf.export.litert import LiteRTModel
from vdg_tf.export.preprocess import FramesToVideo, features_model, raw_inputs
from vdg_tf.manifest import read_manifest
from vdg_tf.media.convert import resize
from vdg_tf.media.decode import decode_clip
from vdg_tf.models.builder import inference_model

NATIVE = 96  # the sample clips' frame size (SampleSpec): decoded at it, frames are not resized


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("hw", [(96, 128), (128, 96), (20, 24)])
def test_resize_matches_the_decoder(mode, hw):
    """Geometry and filter of the decoder's resize (short/long side, centre crop or pad,
    area when shrinking, bilinear when enlarging), on RGB frames of several shapes."""
    img = render_frames(np.random.default_rng(0), "left", 1, hw[1], hw[0])[0]
    ref = resize(av.VideoFrame.from_ndarray(img, format="rgb24"), 32, mode, VideoReformatter())
    got = FramesToVideo(32, mode)(tf.constant(img[None, None])).numpy()[0, 0] * 255
    diff = np.abs(ref.astype(np.float32) - got)
    assert got.shape == ref.shape
    assert diff.mean() < 1.0  # uint8 levels: swscale's fixed-point filter vs float weights
    assert np.percentile(diff, 99) <= 8


def _one_row_manifest(sample_data, folder: Path) -> tuple[Path, dict]:
    """A manifest holding the first eval clip (absolute path), and that row."""
    root = Path(sample_data["manifest_eval"]).parent
    row = json.loads(Path(sample_data["manifest_eval"]).read_text().splitlines()[0])
    row["video"] = str(root / row["video"])
    path = folder / "one.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path, row


def _litert_features(data_cfg):
    """The preprocessing graph converted to a .tflite (float32) and loaded in LiteRT."""
    model = features_model(data_cfg)
    specs = {
        i.name.split(":")[0]: tf.TensorSpec([1, *i.shape[1:]], i.dtype, i.name.split(":")[0])
        for i in model.inputs
    }
    fn = tf.function(lambda x: model(x), input_signature=[specs]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(converter.convert())
    ops = {o["op_name"] for o in Interpreter(f.name)._get_ops_details()}
    return Interpreter(f.name).get_signature_runner(), ops


def test_in_graph_features_equal_the_pipeline(trained_run, sample_data, tmp_path):
    """On a real mp4: the pipeline's `video`/`audio` (dataset_from) against the graph fed
    the same clip's frames at native size and its raw waveform, in Keras and in LiteRT."""
    cfg = tiny_config().data
    manifest, row = _one_row_manifest(sample_data, tmp_path)
    x, _ = next(iter(dataset_from(manifest, cfg, trained_run.labels, trained_run.tokenizer)))
    native = decode_clip(row["video"], VideoSpec(frames=cfg.video.frames, size=NATIVE), cfg.audio)
    small = decode_clip(row["video"], cfg.video, cfg.audio)
    assert native.frames.shape[1:3] == (NATIVE, NATIVE) and native.has_audio
    mask = np.ones((1, 1), np.float32)
    keras_model = features_model(cfg)
    runner, ops = _litert_features(cfg)
    assert {"RFFT2D", "COMPLEX_ABS", "BATCH_MATMUL"} <= ops and not any("FLEX" in o for o in ops)
    for frames, exact in ((small.frames, True), (native.frames, False)):
        feed = {"video": frames[None], "audio": native.audio[None], "audio_mask": mask}
        k = {n: v.numpy() for n, v in keras_model(feed).items()}
        t = runner(**feed)  # LiteRT resizes the dynamic H, W to the frames fed
        np.testing.assert_allclose(k["audio"], x["audio"].numpy(), atol=1e-5)
        np.testing.assert_allclose(t["audio"], x["audio"].numpy(), atol=2e-3)
        np.testing.assert_allclose(t["video"], k["video"], atol=1e-6)
        diff = np.abs(k["video"] - x["video"].numpy())
        if exact:  # frames already at the model's size: resize is the identity, /255 exact
            assert diff.max() < 1e-6
        else:  # 96 -> 32 in RGB here, in YUV (chroma subsampled) by swscale in the decoder
            assert diff.mean() < 0.01 and np.percentile(diff, 99) < 0.05


def _raw_eval(sample_data, bundle, size=NATIVE):
    """Eval clips as a device app gives them to a --preprocess export: frames at `size`
    (the file's own for 96), waveform, token ids."""
    rows, _ = read_manifest(sample_data["manifest_eval"])
    cfg = bundle.config.data
    out = []
    for row in rows:
        clip = decode_clip(row.video, VideoSpec(frames=cfg.video.frames, size=size), cfg.audio)
        ids = bundle.tokenizer(tf.constant([row.text])).numpy()[0]
        out.append(raw_inputs(clip.frames, clip.audio, clip.has_audio, ids, row.text))
    return out


@pytest.fixture(scope="module")
def bundle(trained_run):
    return Bundle.load(trained_run.out)


@pytest.fixture(scope="module")
def keras_probs(bundle, sample_data):
    """The Keras model's probabilities on the eval clips, fed by the pipeline (what the
    plain float32 export gives within 1e-5: tests/export/test_tflite.py)."""
    ds = dataset_from(sample_data["manifest_eval"], bundle.config.data, bundle.labels,
                      bundle.tokenizer)  # fmt: skip
    model = inference_model(bundle.model)
    return np.concatenate([model(x, training=False).numpy() for x, _ in ds])


@pytest.fixture(scope="module")
def plain_probs(bundle, sample_data, tmp_path_factory):
    """The plain float32 export's probabilities on the eval clips, fed by the pipeline."""
    plain = export_model(bundle, "float32", tmp_path_factory.mktemp("plain") / "plain.tflite")
    ds = dataset_from(sample_data["manifest_eval"], bundle.config.data, bundle.labels,
                      bundle.tokenizer)  # fmt: skip
    model = LiteRTModel(plain.path)
    return np.concatenate(
        [model.predict_batch({k: v.numpy() for k, v in x.items()}) for x, _ in ds]
    )


@pytest.mark.slow  # 25-40 s on 2 shared cores: a conversion plus 48 LiteRT calls
def test_preprocess_export_predicts_as_the_model_fed_by_the_pipeline(
    bundle, keras_probs, sample_data, tmp_path
):
    pre = export_model(
        bundle, "float32", tmp_path / "pre.tflite", saved_model=tmp_path / "sm", batch=None,
        preprocess=True,
    )  # fmt: skip
    assert pre.preprocess and inspect_tflite(pre.path)["inputs"]["video"][1] == "uint8"
    model = LiteRTModel(pre.path)
    assert list(model.input_details["video"]["shape_signature"]) == [-1, 4, -1, -1, 3]
    got = np.stack([model.predict_one(x) for x in _raw_eval(sample_data, bundle)])
    diff = np.abs(keras_probs - got).max()
    assert diff < 0.2
    # every top-1 that a change of `diff` per probability cannot flip agrees (a near tie
    # of this small model may flip under the ~1.5/255 resize difference: 2 of 16 on CI)
    top2 = np.sort(keras_probs, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > 2 * diff
    assert decisive.sum() >= 8, (decisive.sum(), diff)
    assert (keras_probs.argmax(1) == got.argmax(1))[decisive].all()
    # frames already at the model's size: the pipeline's own inputs, the same outputs
    same = np.stack([model.predict_one(x) for x in _raw_eval(sample_data, bundle, 32)])
    np.testing.assert_allclose(same, keras_probs, atol=1e-4)
    # the SavedModel: the same graph at any batch (4 here), by input name
    raw = _raw_eval(sample_data, bundle)[:4]
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_token_ids"]
    batch = {k: tf.constant(np.stack([x[k] for x in raw])) for k in model.input_details}
    np.testing.assert_allclose(serve(**batch)["probs"].numpy(), got[:4], atol=1e-4)
    np.testing.assert_allclose(model.predict_batch(batch), got[:4], atol=1e-4)  # dynamic B
    features = {k: v[0] for k, v in next(iter(dataset_from(
        sample_data["manifest_eval"], bundle.config.data, bundle.labels, bundle.tokenizer
    )))[0].items()}  # fmt: skip
    with pytest.raises(ValueError, match="input '(audio|video)' takes .* --preprocess export"):
        model.predict_one(features)  # the pipeline's features: one line, no silent cast


@pytest.mark.slow
def test_preprocess_int8_export_keeps_the_features_float(
    bundle, plain_probs, sample_data, tmp_path
):
    r = export_model(
        bundle, "edge-int8", tmp_path / "pre8.tflite", data=sample_data["manifest_train"],
        calibration_samples=16, preprocess=True,
    )  # fmt: skip
    info = inspect_tflite(r.path)
    # the model int8 (its convolutions and dense layers), the features float: the one
    # float FULLY_CONNECTED is the mel filterbank
    assert not {"CONV_2D", "DEPTHWISE_CONV_2D"} & set(info["float_ops"])
    assert info["float_ops"]["FULLY_CONNECTED"] == 1
    assert {"RFFT2D", "COMPLEX_ABS", "LOG", "BATCH_MATMUL"} <= set(info["float_ops"])
    model = LiteRTModel(r.path)
    got = np.stack([model.predict_one(x) for x in _raw_eval(sample_data, bundle)])
    # against the plain float32 export fed by the pipeline: 0.94 measured; 0.62 with the
    # features quantized too (no denylist)
    assert np.mean(plain_probs.argmax(1) == got.argmax(1)) >= 0.8
