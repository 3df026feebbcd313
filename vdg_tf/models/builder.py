"""Build a multimodal model from a `Config`: encoders -> masks -> fusion -> task heads.

The model has one input per modality plus its `*_mask`, a `fused` output (the task head
of `cfg.data.task`, see `vdg_tf/tasks/`), and one auxiliary `<modality>_head` per
modality for the fusion loss (dropped at export). `model.video_backbone` /
`model.audio_backbone` swap the default encoders for the networks of
`vdg_tf/models/backbones.py`; `model.weights` and `model.word_vectors` fill them.
"""

from __future__ import annotations

import logging

import tf_keras as keras

from vdg_tf.config import Config, ModelConfig
from vdg_tf.models.backbones import load_video_backbone_weights
from vdg_tf.models.encoders.blocks import regularizer
from vdg_tf.models.encoders.registry import get_encoder
from vdg_tf.models.fusion import get_fusion
from vdg_tf.models.layers import ModalityDropout
from vdg_tf.models.word_vectors import apply_word_vectors
from vdg_tf.tasks import Task, get_task

MODALITIES = ("video", "audio", "text")

logger = logging.getLogger(__name__)


def model_inputs(cfg: Config, spec_frames: int) -> dict:
    """Keras Inputs named by the data contract, for the configured modalities."""
    v, a, t = cfg.data.video, cfg.data.audio, cfg.data.text
    shapes = {
        "video": ((v.frames, v.size, v.size, 3), "float32"),
        "audio": ((spec_frames, a.mels, 1), "float32"),
        "text": ((t.max_tokens,), "int32"),
    }
    inputs = {}
    for m in cfg.model.modalities:
        if m not in shapes:
            raise ValueError(f"model.modalities: unknown '{m}' (known: {', '.join(MODALITIES)})")
        shape, dtype = shapes[m]
        inputs[m] = keras.Input(shape, dtype=dtype, name=m)
        inputs[f"{m}_mask"] = keras.Input((1,), dtype="float32", name=f"{m}_mask")
    return inputs


def encode(cfg: Config, inputs: dict, vocab_size: int) -> dict:
    """Per-modality feature vectors, each multiplied by its mask; each modality's encoder
    is its entry in `vdg_tf.models.encoders.registry.ENCODERS`."""
    feats = {}
    for m in cfg.model.modalities:
        f = get_encoder(m)(inputs[m], cfg, vocab_size)
        feats[m] = keras.layers.Multiply(name=f"{m}_masked")([f, inputs[f"{m}_mask"]])
    return feats


def build_classifier(
    cfg: Config,
    num_classes: int,
    vocab_size: int,
    spec_frames: int,
    vocabulary: list[str] | None = None,
    task: Task | None = None,
) -> keras.Model:
    """The training model: outputs `fused` plus one `<m>_head` per modality.

    `num_classes` is the size of the task's label vocabulary (ignored for regression and
    anomaly). `model.weights` fills the video backbone; `model.word_vectors` fills the
    text Embedding for the tokens of `vocabulary` (the tokenizer's, in id order) that the
    file has (logged; skipped without a `vocabulary`, as when a trained model is rebuilt
    to copy its weights). `task`: the run's task (default: made from `cfg.data`).

    Example:
      model = build_classifier(Config(), num_classes=8, vocab_size=400, spec_frames=200)
    """
    mc = cfg.model
    task = task or get_task(cfg.data)
    if task.per_frame:  # boxes per frame: the frame detector on every frame
        from vdg_tf.models.detector import build_detector

        return build_detector(cfg, num_classes)
    inputs = model_inputs(cfg, spec_frames)
    feats = encode(cfg, inputs, vocab_size)
    masks = {m: inputs[f"{m}_mask"] for m in mc.modalities}
    fusion_feats = feats
    if mc.modality_dropout > 0 and len(masks) > 1:
        # the fusion sees the dropped masks; auxiliary heads keep every modality they have
        kept = ModalityDropout(mc.modality_dropout, name="modality_dropout")(list(masks.values()))
        masks = dict(zip(masks, kept, strict=True))
        fusion_feats = {
            m: keras.layers.Multiply(name=f"{m}_dropped")([f, masks[m]]) for m, f in feats.items()
        }
    fused = get_fusion(mc.fusion)(
        fusion_feats,
        masks,
        mc.fused_dim,
        mc.weight_decay,
        weights=mc.fusion_weights,
        rank=mc.fusion_rank,
    )
    fused = keras.layers.Dropout(mc.dropout, name="fusion_dropout")(fused)
    reg = regularizer(mc.weight_decay)
    outputs = {"fused": task.head(fused, num_classes, "fused", reg)}
    for m, f in feats.items():
        outputs[f"{m}_head"] = task.head(f, num_classes, f"{m}_head", reg)
    model = keras.Model(inputs, outputs, name="vdg_classifier")
    load_pretrained(model, cfg, vocabulary)
    return model


def load_pretrained(model: keras.Model, cfg: Config, vocabulary: list[str] | None) -> None:
    """Fill `model` from `model.weights` (video backbone) and `model.word_vectors` (text)."""
    mc = cfg.model
    if mc.weights is not None:
        if mc.video_backbone == "none" or "video" not in mc.modalities:
            raise ValueError(
                f"model.weights: {mc.weights!r} needs a model.video_backbone (it is "
                f"'{mc.video_backbone}')"
            )
        load_video_backbone_weights(model, mc.video_backbone, cfg.data.video.size, mc.weights)
    if mc.word_vectors is not None and "text" in mc.modalities and vocabulary is not None:
        logger.info("%s", apply_word_vectors(model, mc.word_vectors, vocabulary))


def random_init_note(mc: ModelConfig) -> str | None:
    """A warning when a pretrainable video backbone (the `small` and `base` presets) starts
    from random weights, with what `model.weights` would give; None otherwise.

    Such a backbone learns slowly from a few hundred clips: started from ImageNet it
    begins with features that already tell objects and scenes apart.
    """
    if mc.weights is not None or mc.video_backbone == "none" or "video" not in mc.modalities:
        return None
    preset = f" (preset {mc.preset})" if mc.preset else ""
    return (
        f"model.video_backbone {mc.video_backbone}{preset} trains from random init: no "
        "model.weights; `model.weights: imagenet` starts it from ImageNet features, which "
        "learn far faster on a few hundred clips (see configs/small_pretrained.yaml)"
    )


def inference_model(model: keras.Model) -> keras.Model:
    """The deployable model: same inputs, only the `fused` output (auxiliary heads dropped).

    Works on QAT clones too, whose output layers are renamed `quant_<name>`. A model with
    no `fused` output (detection's per-frame boxes and scores) is deployed as it is.
    """
    out = model.output
    names = [n.removeprefix("quant_") for n in model.output_names]
    if "fused" not in names and not (isinstance(out, dict) and "fused" in out):
        return model
    if isinstance(out, dict):
        out = out["fused"]
    elif isinstance(out, list | tuple):
        out = model.outputs[names.index("fused")]
    return keras.Model(model.inputs, out, name="vdg_inference")
