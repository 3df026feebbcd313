"""Run settings as dataclasses with defaults, loaded from and saved to YAML.

A run folder holds the exact `config.yaml` that made it, so any run can be redone
from that file alone (Model Garden style: nested data / model / train sections).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class VideoSpec:
    """How frames are sampled and sized: `frames` per clip, square `size` pixels."""

    frames: int = 8
    size: int = 64
    fps: float | None = None  # None: spread `frames` uniformly over the clip
    resize: str = "crop"  # "crop": short side + centre crop; "pad": letterbox


@dataclass
class AudioSpec:
    """Audio track resampling and log-mel settings (input `audio` is [frames, mels, 1])."""

    sample_rate: int = 16000
    seconds: float = 2.0
    mels: int = 40
    nfft: int = 512
    window: int = 400
    stride: int = 160
    fmin: float = 40.0
    fmax: float = 7600.0
    top_db: float = 80.0

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.seconds))


@dataclass
class TextSpec:
    """Tokenizer settings: `max_tokens` ids per text, WordPiece vocabulary size."""

    max_tokens: int = 16
    vocab_size: int = 400
    tokenizer: str = "wordpiece"  # or "byte"


@dataclass
class AugmentConfig:
    """Training-time augmentation strengths (see `vdg_tf.data.augment`); 0 turns one off.

    `flip` is off by default: it swaps left and right, which changes the label of
    direction-sensitive classes ("swiping left", the sample data's motion cue).
    """

    crop_scale: float = 0.8  # smallest crop area, as a fraction of the frame
    flip: bool = False
    brightness: float = 0.1
    contrast: float = 0.2
    saturation: float = 0.2
    temporal_jitter: bool = True
    # Off by default: log-mel is peak-relative, so gain alone changes nothing, and noise on
    # training clips only lifts their noise floor away from clean evaluation clips (seen:
    # audio-head validation loss above chance with 20 dB noise on the sample data).
    gain_db: float = 0.0
    noise_snr_db: float = 0.0
    freq_mask: int = 4
    time_mask: int = 10
    token_dropout: float = 0.1


@dataclass
class DataConfig:
    """Input pipeline settings shared by training, evaluation and export.

    `task` says what a manifest row teaches (see `vdg_tf.data.targets`): classification,
    multilabel, regression, ordinal, vqa or anomaly (`normal_labels` name the normal rows).
    """

    task: str = "classification"
    normal_labels: tuple[str, ...] = ("normal",)
    video: VideoSpec = field(default_factory=VideoSpec)
    audio: AudioSpec = field(default_factory=AudioSpec)
    text: TextSpec = field(default_factory=TextSpec)
    batch_size: int = 16
    shuffle_buffer: int = 512
    cache: bool = True  # keep decoded clips in memory after the first epoch
    seed: int = 0
    strict: bool = False
    deterministic: bool = False  # True: training order fixed for a seed (evaluation always is)
    decoder: str = "processes"  # where clips decode: "processes" (a GIL each) or "threads"
    decode_workers: int = 0  # 0: one per core
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """What to build: modalities, encoder widths, fusion and head."""

    modalities: tuple[str, ...] = ("video", "audio", "text")
    width: int = 32
    embed_dim: int = 32
    fused_dim: int = 64
    temporal: str = "conv"  # video over time: conv | pool | gru | attention (last two float)
    text_encoder: str = "conv"  # conv | transformer (float attention)
    text_layers: int = 2  # transformer blocks
    heads: int = 2  # attention heads (temporal attention, transformer text)
    fusion: str = "serial"  # serial | parallel | hybrid | gated | attention | lowrank
    fusion_weights: tuple[float, ...] | None = None  # hybrid: fixed weights; None learns them
    fusion_rank: int = 4  # lowrank: rank of the factors
    modality_dropout: float = 0.0  # training: drop each modality with this chance
    dropout: float = 0.2
    l2: float = 1e-4
    l1: float = 0.0  # adds an L1 term to every kernel regularizer (sparser weights)

    @property
    def weight_decay(self) -> float | tuple[float, float]:
        """What encoders and heads take as `l2`: the L2 factor, or (l1, l2) with L1 on."""
        return (self.l1, self.l2) if self.l1 else self.l2


@dataclass
class TrainConfig:
    """Optimisation settings; `aux_weight` weighs each per-modality head in the fusion loss."""

    epochs: int = 24
    learning_rate: float = 3e-3
    schedule: str = "cosine"
    warmup_epochs: int = 1
    aux_weight: float = 0.3
    label_smoothing: float = 0.0
    patience: int = 8
    mixed_precision: str = "auto"  # auto: mixed_float16 on a GPU | on | off
    strategy: str = "auto"  # auto | default | mirrored | multi_worker (tf.distribute)


@dataclass
class Config:
    """A whole run: data, model and training sections."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"]["modalities"] = list(self.model.modalities)
        d["data"]["normal_labels"] = list(self.data.normal_labels)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Config:
        return _build(cls, d or {}, "config")

    @classmethod
    def load(cls, path: str | Path) -> Config:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: cannot read config: {e}") from None
        return cls.from_dict(raw)


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a dict, refusing unknown keys by their dotted name."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} (known: {sorted(fields)})")
    kwargs = {}
    for name, value in d.items():
        ftype = fields[name].type
        ftype = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", "")
        sub = _DATACLASSES.get(ftype.split(" | ")[0])
        if sub is not None and value is None and "None" in ftype:
            kwargs[name] = None
        elif sub is not None:
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        elif name in ("modalities", "fusion_weights", "normal_labels") and value is not None:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_DATACLASSES = {
    c.__name__: c
    for c in (
        VideoSpec,
        AudioSpec,
        TextSpec,
        AugmentConfig,
        DataConfig,
        ModelConfig,
        TrainConfig,
        Config,
    )
}
