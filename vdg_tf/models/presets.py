"""Model presets: one name for input size, frames, widths and backbones (keras-hub style).

`model.preset: small` in a config stands for the settings in its row of `PRESETS`; any
key given beside it wins (`model: {preset: small, fused_dim: 64}` keeps `fused_dim: 64`,
`data: {video: {size: 160}}` runs `small` at 160 px). `Config.load` / `from_dict` /
`with_overrides` resolve it (through `vdg_tf.config.PRESET_HOOK`), so a loaded config and
the `config.yaml` a run saves hold the resolved values, and a run is redone from that file
alone.

| preset | video | frames x px | audio | embed / fused |
| --- | --- | --- | --- | --- |
| `tiny` | the default CNN (`encoders/video.py`), width 32 | 8 x 64 | default CNN | 32 / 64 |
| `small` | MobileNetV2 1.0 per frame | 8 x 112 | YAMNet-style, width 0.25 | 64 / 128 |
| `base` | MobileNetV2 1.0 per frame | 16 x 224 | YAMNet-style, width 0.5 | 128 / 256 |

`tiny` is the default model (what a config without a preset builds). Figures per preset
(weights, MACs, TFLite bytes, LiteRT latency): BENCHMARKS.md, from
`python tools/bench_presets.py`.

Example:

    cfg = Config.from_dict({"model": {"preset": "small", "weights": "imagenet"}})
    cfg.data.video.size, cfg.model.video_backbone   # 112, 'mobilenet_v2_1.0'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vdg_tf.config import ConfigError, deep_merge

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "data": {"video": {"frames": 8, "size": 64}},
        "model": {
            "video_backbone": "none", "audio_backbone": "none",
            "width": 32, "embed_dim": 32, "fused_dim": 64,
        },
    },
    "small": {
        "data": {"video": {"frames": 8, "size": 112}},
        "model": {
            "video_backbone": "mobilenet_v2_1.0", "audio_backbone": "yamnet_0.25",
            "width": 32, "embed_dim": 64, "fused_dim": 128,
        },
    },
    "base": {
        "data": {"video": {"frames": 16, "size": 224}},
        "model": {
            "video_backbone": "mobilenet_v2_1.0", "audio_backbone": "yamnet_0.5",
            "width": 64, "embed_dim": 128, "fused_dim": 256,
        },
    },
}  # fmt: skip


def apply_preset(d: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Config mapping `d` with its `model.preset`'s values filled in where `d` has none.

    Raises:
        ConfigError: `config.model.preset: unknown 'huge' (known: base, small, tiny)`.
    """
    name = d["model"]["preset"]
    if not isinstance(name, str) or name not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"{where}.model.preset: unknown {name!r} (known: {known})")
    return deep_merge(PRESETS[name], d)
