"""The encoder of each modality, by name in one table: `ENCODERS[modality](input, cfg, vocab)`.

Each entry reads what it needs from the `Config` (the default encoder, or the pretrained
backbone `model.video_backbone`/`model.audio_backbone` names) and returns the modality's
feature vector [B, model.fused_dim]. The builder looks a modality up here, so adding a
modality is one function and one row. It lives beside, not in, the package's `__init__`:
the backbones import the encoders' blocks, and this table imports the backbones.

Example:

    f = get_encoder("audio")(keras.Input((201, 64, 1)), cfg, vocab_size=400)  # [B, 64]
"""

from __future__ import annotations

from collections.abc import Callable

from vdg_tf.config import Config
from vdg_tf.models.backbones import audio_backbone_width, backbone_video_features, yamnet_features
from vdg_tf.models.encoders.audio import audio_encoder
from vdg_tf.models.encoders.text import text_encoder
from vdg_tf.models.encoders.video import temporal_features, video_encoder


def video_features(inp, cfg: Config, vocab_size: int):
    """[B, T, S, S, 3] -> [B, fused_dim]: the backbone `model.video_backbone` on every frame
    and the temporal model, or the default encoder when it is `none`."""
    mc, spec = cfg.model, cfg.data.video
    if mc.video_backbone != "none":
        x = backbone_video_features(inp, spec.frames, spec.size, mc.video_backbone)
        return temporal_features(
            x, spec.frames, int(x.shape[-1]), mc.fused_dim, mc.weight_decay, mc.temporal,
            mc.heads,
        )  # fmt: skip
    return video_encoder(
        inp,
        spec.frames,
        spec.size,
        mc.width,
        mc.fused_dim,
        mc.weight_decay,
        temporal=mc.temporal,
        heads=mc.heads,
        frames_mode=mc.video_frames,
    )


def audio_features(inp, cfg: Config, vocab_size: int):
    """[B, F, M, 1] log-mel -> [B, fused_dim]: the `model.audio_backbone` network, or the
    default encoder when it is `none`."""
    mc = cfg.model
    if mc.audio_backbone != "none":
        alpha = audio_backbone_width(mc.audio_backbone)
        return yamnet_features(inp, alpha, mc.fused_dim, mc.weight_decay)
    shape = inp.shape
    return audio_encoder(inp, int(shape[1]), int(shape[2]), mc.width, mc.fused_dim, mc.weight_decay)


def text_features(inp, cfg: Config, vocab_size: int):
    """[B, L] token ids -> [B, fused_dim]: the `model.text_encoder` kind."""
    mc = cfg.model
    return text_encoder(
        inp,
        cfg.data.text.max_tokens,
        vocab_size,
        mc.embed_dim,
        mc.fused_dim,
        mc.weight_decay,
        kind=mc.text_encoder,
        layers=mc.text_layers,
        heads=mc.heads,
    )


ENCODERS: dict[str, Callable] = {
    "video": video_features,
    "audio": audio_features,
    "text": text_features,
}


def get_encoder(modality: str) -> Callable:
    """The encoder of `modality`; an unknown name lists the known ones."""
    if modality not in ENCODERS:
        raise ValueError(f"model.modalities: unknown '{modality}' (known: {', '.join(ENCODERS)})")
    return ENCODERS[modality]
