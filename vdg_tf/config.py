"""Run settings as dataclasses with defaults, loaded from and saved to YAML, checked at load.

A run folder holds the exact `config.yaml` that made it, so any run can be redone
from that file alone (Model Garden style: nested data / model / train sections).

`load_dataclass` builds any settings dataclass from a mapping (YAML, a pipeline stage's
options) and checks every value against the field's type annotation and its rules, so a
typo or a wrong type fails at load with one line naming the field, instead of deep in a
run: `config.data.batch_size: expected an integer, got '16' (str)`.

Rules live in each field's metadata:

    frames: int = field(default=8, metadata={"min": 1})
    dropout: float = field(default=0.2, metadata={"min": 0.0, "below": 1.0})
    resize: str = field(default="crop", metadata={"choices": ("crop", "pad")})
    fusion: str = field(default="serial", metadata={"registry": "vdg_tf.models.fusion:FUSIONS"})

`min`/`max` are inclusive bounds, `above`/`below` exclusive ones; `choices` is a fixed set;
`registry` is `module:NAME`, a table (dict keys or a tuple of names) in a later stage,
imported only when a value is checked: this module is the base every stage imports, so it
imports no other vdg_tf module itself (a registry whose module does not import is a bug,
raised as one). On a list, tuple or dict field these rules apply to each item; `nonempty`
and `unique` apply to the list itself, and `check` (a function of the whole value that
returns why it does not fit, or None) to the value as a whole:

    m_by_n: tuple[int, int] | None = field(default=None, metadata={"min": 1, "check": m_below_n})

These rules are the only check a settings value gets: classes do not check themselves again
in `__post_init__`, so what loads is exactly what the rules allow.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")

RULES = frozenset(
    {"min", "max", "above", "below", "choices", "registry", "nonempty", "unique", "check"}
)
_IGNORED_METADATA = frozenset({"help"})  # documentation only


class ConfigError(ValueError):
    """A settings value that does not fit its field: one line, naming the field path."""


@dataclass
class VideoSpec:
    """How frames are sampled and sized: `frames` per clip, square `size` pixels."""

    frames: int = field(default=8, metadata={"min": 1})
    size: int = field(default=64, metadata={"min": 8})
    # None: spread `frames` uniformly over the clip
    fps: float | None = field(default=None, metadata={"above": 0.0})
    # "crop": short side + centre crop; "pad": letterbox; "stretch": the whole frame,
    # aspect not kept (detection: a relative box stays the same box)
    resize: str = field(default="crop", metadata={"choices": ("crop", "pad", "stretch")})


@dataclass
class AudioSpec:
    """Audio track resampling and log-mel settings (input `audio` is [frames, mels, 1])."""

    sample_rate: int = field(default=16000, metadata={"min": 1000})
    seconds: float = field(default=2.0, metadata={"above": 0.0})
    mels: int = field(default=40, metadata={"min": 1})
    nfft: int = field(default=512, metadata={"min": 1})
    window: int = field(default=400, metadata={"min": 1})
    stride: int = field(default=160, metadata={"min": 1})
    fmin: float = field(default=40.0, metadata={"min": 0.0})
    fmax: float = field(default=7600.0, metadata={"above": 0.0})
    top_db: float = field(default=80.0, metadata={"above": 0.0})

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.seconds))


@dataclass
class TextSpec:
    """Tokenizer settings: `max_tokens` ids per text, WordPiece vocabulary size."""

    max_tokens: int = field(default=16, metadata={"min": 1})
    vocab_size: int = field(default=400, metadata={"min": 2})
    tokenizer: str = field(default="wordpiece", metadata={"choices": ("wordpiece", "byte")})


_FRACTION = {"min": 0.0, "below": 1.0}  # a chance or a strength in [0, 1)


@dataclass
class AugmentConfig:
    """Training-time augmentation strengths (see `vdg_tf.data.augment`); 0 turns one off.

    `flip` is off by default: it swaps left and right, which changes the label of
    direction-sensitive classes ("swiping left", the sample data's motion cue).
    """

    # smallest crop area, as a fraction of the frame (1: no crop)
    crop_scale: float = field(default=0.8, metadata={"above": 0.0, "max": 1.0})
    flip: bool = False
    brightness: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    # contrast and saturation scale by a factor in [1 - s, 1 + s]
    contrast: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    saturation: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    temporal_jitter: bool = True
    # Off by default: log-mel is peak-relative, so gain alone changes nothing, and noise on
    # training clips only lifts their noise floor away from clean evaluation clips (seen:
    # audio-head validation loss above chance with 20 dB noise on the sample data).
    gain_db: float = field(default=0.0, metadata={"min": 0.0})
    noise_snr_db: float = field(default=0.0, metadata={"min": 0.0})
    freq_mask: int = field(default=4, metadata={"min": 0})
    time_mask: int = field(default=10, metadata={"min": 0})
    token_dropout: float = field(default=0.1, metadata=_FRACTION)


def _service_address(value: str) -> str | None:
    """Why `value` is not a tf.data service dispatcher address (`grpc://HOST:PORT`)."""
    m = re.fullmatch(r"grpc://([^:/\s]+):(\d+)", value)
    if not m or not 0 < int(m.group(2)) < 65536:
        return "expected grpc://HOST:PORT (the dispatcher of `vdg data-service`)"
    return None


@dataclass
class DataConfig:
    """Input pipeline settings shared by training, evaluation and export.

    `task` says what a manifest row teaches (see `vdg_tf.tasks`): classification,
    multilabel, regression, ordinal, vqa or anomaly (`normal_labels` name the normal rows).
    """

    task: str = field(default="classification", metadata={"registry": "vdg_tf.tasks:TASKS"})
    normal_labels: tuple[str, ...] = field(
        default=("normal",), metadata={"nonempty": True, "unique": True}
    )
    video: VideoSpec = field(default_factory=VideoSpec)
    audio: AudioSpec = field(default_factory=AudioSpec)
    text: TextSpec = field(default_factory=TextSpec)
    batch_size: int = field(default=16, metadata={"min": 1})
    shuffle_buffer: int = field(default=512, metadata={"min": 1})
    cache: bool = True  # keep decoded clips in memory after the first epoch
    seed: int = field(default=0, metadata={"min": 0})
    strict: bool = False
    deterministic: bool = False  # True: training order fixed for a seed (evaluation always is)
    # where clips decode: "processes" (a GIL each) or "threads"
    decoder: str = field(default="processes", metadata={"choices": ("processes", "threads")})
    decode_workers: int = field(default=0, metadata={"min": 0})  # 0: one per core
    # seconds one clip may take in a decode worker before it is killed and the clip skipped
    decode_timeout: float = field(default=300.0, metadata={"above": 0.0})
    # share of a clip's packets that may fail to decode (skipped, as players do) before the
    # clip counts as too damaged; 0 refuses any damage
    max_bad_packet_fraction: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # grpc://HOST:PORT of a tf.data service dispatcher (`vdg data-service`): training reads
    # `vdg preprocess` shards through its workers (parse, features, augmentation there)
    service: str | None = field(default=None, metadata={"check": _service_address})


@dataclass
class ModelConfig:
    """What to build: modalities, encoder widths, fusion and head."""

    modalities: tuple[str, ...] = field(
        default=("video", "audio", "text"),
        metadata={"choices": ("video", "audio", "text"), "nonempty": True, "unique": True},
    )
    # tiny | small | base: input size, frames, widths and backbones in one name (keras-hub
    # style, vdg_tf/models/presets.py); keys given beside it override the preset's values
    preset: str | None = field(default=None, metadata={"registry": "vdg_tf.models.presets:PRESETS"})
    # none (the encoder below) | a per-frame image network (vdg_tf/models/backbones.py)
    video_backbone: str = field(
        default="none", metadata={"registry": "vdg_tf.models.backbones:VIDEO_BACKBONES"}
    )
    # none | yamnet | yamnet_0.5 | yamnet_0.25 (YAMNet-style MobileNet on the log-mel)
    audio_backbone: str = field(
        default="none", metadata={"registry": "vdg_tf.models.backbones:AUDIO_BACKBONES"}
    )
    # folded (frames stacked on the height axis, a space-time motion conv) | independent
    # (each frame encoded alone: streamable with incremental inference, vdg_tf/export/
    # incremental.py) | causal (a motion conv over each frame and the two before it:
    # streamable with its state); backbones always encode frames independently
    video_frames: str = field(
        default="folded", metadata={"registry": "vdg_tf.models.encoders.video:FRAMES"}
    )
    # the video backbone's start: null (random), imagenet, or a path to its weights file
    weights: str | None = None
    # a GloVe / word2vec text file loaded into the text Embedding (dimension: embed_dim)
    word_vectors: str | None = None
    width: int = field(default=32, metadata={"min": 1})
    embed_dim: int = field(default=32, metadata={"min": 1})
    fused_dim: int = field(default=64, metadata={"min": 1})
    # video over time: conv | pool | gru | attention (last two float)
    temporal: str = field(
        default="conv", metadata={"registry": "vdg_tf.models.encoders.video:TEMPORAL"}
    )
    # conv | transformer (float attention) | gru | lstm (float recurrent)
    text_encoder: str = field(
        default="conv", metadata={"registry": "vdg_tf.models.encoders.text:TEXT_ENCODERS"}
    )
    text_layers: int = field(default=2, metadata={"min": 1})  # transformer blocks
    # attention heads (temporal attention, transformer text)
    heads: int = field(default=2, metadata={"min": 1})
    # serial | parallel | hybrid | gated | attention | lowrank
    fusion: str = field(default="serial", metadata={"registry": "vdg_tf.models.fusion:FUSIONS"})
    # hybrid: fixed weights, one per modality; None learns them
    fusion_weights: tuple[float, ...] | None = field(
        default=None, metadata={"min": 0.0, "nonempty": True}
    )
    fusion_rank: int = field(default=4, metadata={"min": 1})  # lowrank: rank of the factors
    # training: drop each modality with this chance
    modality_dropout: float = field(default=0.0, metadata=_FRACTION)
    dropout: float = field(default=0.2, metadata=_FRACTION)
    l2: float = field(default=1e-4, metadata={"min": 0.0})
    # adds an L1 term to every kernel regularizer (sparser weights)
    l1: float = field(default=0.0, metadata={"min": 0.0})

    @property
    def weight_decay(self) -> float | tuple[float, float]:
        """What encoders and heads take as `l2`: the L2 factor, or (l1, l2) with L1 on."""
        return (self.l1, self.l2) if self.l1 else self.l2


@dataclass
class TrainConfig:
    """Optimisation settings; `aux_weight` weighs each per-modality head in the fusion loss.

    `epochs` is a cap: training stops earlier once early stopping's loss (validation loss
    when there is validation data) has not improved for `patience` epochs, and the run
    says which of the two ended it.
    """

    epochs: int = field(default=60, metadata={"min": 1})
    learning_rate: float = field(default=3e-3, metadata={"above": 0.0})
    schedule: str = field(
        default="cosine", metadata={"registry": "vdg_tf.training.schedules:SCHEDULES"}
    )
    warmup_epochs: int = field(default=1, metadata={"min": 0})
    aux_weight: float = field(default=0.3, metadata={"min": 0.0})
    label_smoothing: float = field(default=0.0, metadata=_FRACTION)
    patience: int = field(default=8, metadata={"min": 0})
    # auto: mixed_float16 on a GPU | on | off
    mixed_precision: str = field(
        default="auto", metadata={"registry": "vdg_tf.training.devices:PRECISIONS"}
    )
    # auto | default | mirrored | multi_worker (tf.distribute; multi_worker reads TF_CONFIG);
    # data.batch_size is per replica: a step trains on batch_size x replicas clips
    strategy: str = field(
        default="auto", metadata={"registry": "vdg_tf.training.devices:STRATEGIES"}
    )
    # compile the training step with XLA (for GPUs; it also runs on CPU)
    jit_compile: bool = False
    # epochs with the pretrained video backbone frozen, then fine-tuned at a lower rate
    freeze_backbone_epochs: int = field(default=0, metadata={"min": 0})
    # the fine-tuning rate after the frozen epochs: learning_rate x this
    finetune_lr_scale: float = field(default=0.1, metadata={"above": 0.0, "max": 1.0})


@dataclass
class Config:
    """A whole run: data, model and training sections.

    Example:

        cfg = Config.load("configs/vqa.yaml")
        cfg = cfg.with_overrides({"train": {"epochs": 30}})
        cfg.save("runs/vqa/config.yaml")
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-safe values (tuples as lists); `Config.from_dict` reads it back."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "config") -> Config:
        """A checked config from a (partial) mapping; missing keys keep their defaults.

        A `model.preset` is expanded first: its values fill the keys `d` leaves out.
        """
        return load_dataclass(cls, _with_preset({} if d is None else d, where), where)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """A checked config from a YAML file; any error is one line naming the file."""
        raw = load_yaml(path, "config")
        if raw is not None and not isinstance(raw, Mapping):
            raise ConfigError(
                f"{path}: expected a mapping of sections (data, model, train), "
                f"got {type(raw).__name__}"
            )
        try:
            return cls.from_dict(raw)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def with_overrides(self, d: Mapping[str, Any] | None, where: str = "config") -> Config:
        """This config with a partial mapping deep-merged over it, checked again.

        Example: `cfg.with_overrides({"model": {"fused_dim": 128}})` (a pipeline's `config:`).
        """
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: expected a mapping of overrides, got {_given(d)}")
        # a preset named here replaces this config's values, except those `d` gives
        return load_dataclass(type(self), deep_merge(self.to_dict(), _with_preset(d, where)), where)


# resolves `model.preset` (a later stage's table, imported only when a preset is named)
PRESET_HOOK = "vdg_tf.models.presets:apply_preset"


def _with_preset(d: Any, where: str) -> Any:
    """`d` with its `model.preset` expanded (see PRESET_HOOK), or `d` unchanged."""
    model = d.get("model") if isinstance(d, Mapping) else None
    if not isinstance(model, Mapping) or model.get("preset") is None:
        return d
    module, _, attr = PRESET_HOOK.partition(":")
    return getattr(importlib.import_module(module), attr)(d, where)


def load_dataclass(cls: type[T], d: Mapping[str, Any], where: str) -> T:
    """Build dataclass `cls` from mapping `d`, checking each value against its field.

    Values are checked against the field's type annotation (int, float, bool, str, lists
    and tuples of them, dict, `X | None`, `Literal[...]`, nested dataclasses) and the rules
    in its metadata (see the module docstring); lists become the annotated tuple or list.
    Keys left out keep their defaults (which are not checked: they are code, not input).

    Args:
        cls: a dataclass type.
        d: its settings, e.g. parsed YAML.
        where: the dotted path of `d` for errors, e.g. `"config"` or `"stages[2].qat"`;
            "" for a file's top level (its keys are then named bare: `stages`).

    Returns:
        An instance of `cls`.

    Raises:
        ConfigError: (a ValueError) one line naming the field, what it expects and what
            it got, e.g. `stages[2].qat.epochs: must be >= 1, got -3`.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{where}: {cls!r} is not a dataclass type")
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {_given(d)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    kwargs = {}
    for key, value in d.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: keys must be names, got {_given(key)}")
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise ConfigError(f"{path}: unknown key (known: {', '.join(sorted(fields))})")
        f = fields[key]
        checked = _check(value, hints[key], path)
        _apply_rules(checked, _rules(f, cls), path)
        kwargs[key] = checked
    return cls(**kwargs)


def load_yaml(path: str | Path, what: str = "config") -> Any:
    """The parsed YAML file at `path`; a missing file or bad YAML is one line naming it.

    Numbers follow YAML 1.2, as users write them: `learning_rate: 3e-3` is a float (plain
    `yaml.safe_load` follows YAML 1.1 and returns the string '3e-3').

    Args:
        path: the file.
        what: what the file holds, for the error (`config`, `pipeline`).
    """
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    return parse_yaml(text, str(path))


MAX_YAML_NODES = (
    100_000  # a config or pipeline is hundreds of values; aliases may not expand past this
)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML `text` (read from `where`) with the rules of `load_yaml`.

    Anchors and aliases are allowed, but the document they expand to is counted before
    anything is built: an alias chain (a "billion laughs" file of a few hundred bytes that
    expands to 10^9 values) or a recursive alias is refused in one line, at once.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set(), where)
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"{where}: YAML aliases expand to over {MAX_YAML_NODES:,} values "
                "(an alias chain); write the values out"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or getattr(e, "context", None)
        if mark is not None and problem:
            at = f"line {mark.line + 1}, column {mark.column + 1}"
            raise ConfigError(f"{where}: invalid YAML at {at}: {problem}") from None
        raise ConfigError(f"{where}: invalid YAML: {' '.join(str(e).split())[:200]}") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int], where: str) -> int:
    """How many values `node` becomes once every alias is expanded (each node counted
    once per place it appears); an alias to an enclosing node is refused."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ConfigError(f"{where}: line {node.start_mark.line + 1}: a recursive YAML alias")
    if isinstance(node, yaml.ScalarNode):
        return 1
    open_.add(key)
    children = (
        node.value if isinstance(node, yaml.SequenceNode) else [x for kv in node.value for x in kv]
    )
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_, where)
        if total > MAX_YAML_NODES:
            break  # large enough to refuse: stop counting
    open_.discard(key)
    sizes[key] = total
    return total


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` and `5E3` (no dot) as floats, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# --- checking -----------------------------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Field annotations resolved in the module of `cls` (strings under `from __future__`)."""
    return typing.get_type_hints(cls)


def _rules(f: dataclasses.Field, cls: type) -> Mapping[str, Any]:
    """A field's rules; an unknown rule name is a bug in `cls`, raised as such."""
    bad = set(f.metadata) - RULES - _IGNORED_METADATA
    if bad:
        raise TypeError(
            f"{cls.__name__}.{f.name}: unknown metadata rule(s) {sorted(bad)} "
            f"(known: {', '.join(sorted(RULES))})"
        )
    return f.metadata


def _check(value: Any, tp: Any, where: str, shown: Any = None) -> Any:
    """`value` as type `tp` (lists converted to the annotated tuple or list), or raise.

    `shown`: the type to name when `value` does not fit (the whole `X | None`, not `X`).
    """
    shown = shown or tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None) and not _wrong_shape(value, a)]
        if not arms:
            raise _mismatch(where, shown, value)
        for arm in arms[:-1]:
            try:
                return _check(value, arm, where, shown)
            except ConfigError:
                continue
        return _check(value, arms[-1], where, shown)
    if origin is Literal:
        for choice in args:
            if type(value) is type(choice) and value == choice:
                return value
        known = ", ".join(str(a) for a in args)
        raise ConfigError(f"{where}: unknown {_short(value)} (known: {known})")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise _mismatch(where, shown, value)
        return load_dataclass(tp, value, where)
    if _wrong_shape(value, tp):
        raise _mismatch(where, shown, value)
    if tp is float:
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {_short(value)}")
        return float(value)
    if tp in (int, bool, str):
        return value
    if origin in (tuple, list) or tp in (tuple, list):
        container = origin or tp
        if container is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _mismatch(where, shown, value)
            items = args
        else:
            items = [args[0] if args else Any] * len(value)
        return container(
            _check(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, items, strict=True))
        )
    if origin is dict or tp is dict:
        kt, vt = args or (Any, Any)
        out = {}
        for k, v in value.items():
            key = _check(k, kt, f"{where} key {_short(k)}")
            out[key] = _check(v, vt, f"{where}.{k}")
        return out
    raise TypeError(f"{where}: unsupported annotation {tp!r} (see vdg_tf.config.load_dataclass)")


def _wrong_shape(value: Any, tp: Any) -> bool:
    """Whether `value` is not even the kind of thing `tp` is (contents not checked)."""
    origin = typing.get_origin(tp) or tp
    if tp is Any or tp is object:
        return False
    if origin in (Union, types.UnionType):
        return all(_wrong_shape(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is not None
    if origin is Literal:
        return False  # the check names the known values instead
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return not isinstance(value, Mapping)
    if tp is bool:
        return not isinstance(value, bool)
    if tp is int:
        return isinstance(value, bool) or not isinstance(value, int)
    if tp is float:
        return isinstance(value, bool) or not isinstance(value, int | float)
    if tp is str:
        return not isinstance(value, str)
    if origin in (tuple, list):
        return not isinstance(value, list | tuple)  # a string is not a list of letters
    if origin is dict:
        return not isinstance(value, Mapping)
    return False


def _mismatch(where: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {_expected(tp)}, got {_given(value)}")


def _expected(tp: Any) -> str:
    """What type `tp` asks for, in a user's words (YAML's: null, true/false, list)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in simple:
        return simple[tp]
    if origin in (tuple, list) or tp in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"a list of {len(args)} {_noun(args[0])}s"
            return f"a list of {len(args)} items ({', '.join(_noun(a) for a in args)})"
        return f"a list of {_noun(args[0])}s" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return repr(tp)


def _noun(tp: Any) -> str:
    nouns = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return nouns.get(tp, "item")


def _given(value: Any) -> str:
    return "null" if value is None else f"{_short(value)} ({type(value).__name__})"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 50, 50


def _short(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters, never formatting more of it than that needs."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _apply_rules(value: Any, rules: Mapping[str, Any], where: str) -> None:
    """Check a converted value against its field's rules (per item on lists and dicts)."""
    if value is None or not rules:
        return
    if "check" in rules:
        why = rules["check"](value)
        if why:
            raise ConfigError(f"{where}: {why}, got {_short(value)}")
    if isinstance(value, list | tuple):
        if rules.get("nonempty") and not value:
            raise ConfigError(f"{where}: must not be empty, got []")
        if rules.get("unique"):
            seen = set()
            for item in value:
                if item in seen:
                    raise ConfigError(f"{where}: {_short(item)} is given twice")
                seen.add(item)
        for i, item in enumerate(value):
            _apply_item_rules(item, rules, f"{where}[{i}]")
    elif isinstance(value, dict):
        if rules.get("nonempty") and not value:
            raise ConfigError(f"{where}: must not be empty, got {{}}")
        for k, item in value.items():
            _apply_item_rules(item, rules, f"{where}.{k}")
    else:
        _apply_item_rules(value, rules, where)


def _apply_item_rules(value: Any, rules: Mapping[str, Any], where: str) -> None:
    if "choices" in rules and value not in rules["choices"]:
        known = ", ".join(sorted(str(c) for c in rules["choices"]))
        raise ConfigError(f"{where}: unknown {_short(value)} (known: {known})")
    if "registry" in rules:
        names = _registry_names(rules["registry"])
        if value not in names:
            raise ConfigError(f"{where}: unknown {_short(value)} (known: {', '.join(names)})")
    lo = rules.get("min", rules.get("above"))
    hi = rules.get("max", rules.get("below"))
    if lo is None and hi is None:
        return
    ok = (
        ("min" not in rules or value >= rules["min"])
        and ("above" not in rules or value > rules["above"])
        and ("max" not in rules or value <= rules["max"])
        and ("below" not in rules or value < rules["below"])
    )
    if ok:
        return
    if lo is not None and hi is not None:
        left = "[" if "min" in rules else "("
        right = "]" if "max" in rules else ")"
        need = f"in {left}{lo:g}, {hi:g}{right}"
    elif lo is not None:
        need = f"{'>=' if 'min' in rules else '>'} {lo:g}"
    else:
        need = f"{'<=' if 'max' in rules else '<'} {hi:g}"
    raise ConfigError(f"{where}: must be {need}, got {_short(value)}")


def _registry_names(spec: str) -> list[str]:
    """The sorted names in registry `module:NAME`, imported now (a later stage's table).

    A registry that does not import, or has no such table, is a bug in the dataclass that
    names it and is raised as one: a missing table must not let every name pass.
    """
    module, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise TypeError(f"registry {spec!r}: no module {module!r}") from None
        raise
    try:
        table = getattr(mod, attr)
    except AttributeError:
        raise TypeError(f"registry {spec!r}: {module} has no {attr!r}") from None
    return sorted(str(name) for name in table)


# --- plain values -------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: what `yaml.safe_dump` writes and a loader reads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` deep-merged onto `base`: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
