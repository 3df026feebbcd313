"""Per-modality encoders: each maps its model input to a feature vector [B, D]."""

from vdg_tf.models.encoders.audio import audio_encoder
from vdg_tf.models.encoders.text import text_encoder
from vdg_tf.models.encoders.video import video_encoder

ENCODERS = {"video": video_encoder, "audio": audio_encoder, "text": text_encoder}

__all__ = ["ENCODERS", "audio_encoder", "text_encoder", "video_encoder"]
