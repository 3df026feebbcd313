"""Per-modality encoders: each maps its model input to a feature vector [B, D].

`registry.ENCODERS` is the table the builder looks a modality up in (imported from its
module, not here: it imports the backbones, which import `blocks` from this package).
"""

from vdg_tf.models.encoders.audio import audio_encoder
from vdg_tf.models.encoders.text import text_encoder
from vdg_tf.models.encoders.video import video_encoder

__all__ = ["audio_encoder", "text_encoder", "video_encoder"]
