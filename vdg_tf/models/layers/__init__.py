"""Every custom Keras layer the models use, one module per concept, each registered for
serialization under the package name `vdg_tf` (registered name `vdg_tf>ClassName`).

A saved `.keras` file names a layer by that registered name; Keras finds the class here as
soon as this package is imported (building or loading through vdg_tf does). The names
must not change, or models saved before stop loading.

- `frames`: `FoldFrames`, `UnfoldFrames` (clip frames into the batch axis and back),
  `CausalFrameStack` (each frame beside the ones before it, for a causal motion conv).
- `modality_dropout`: `ModalityDropout` (hide whole modalities while training).
- `modality_pooling`: `MaskedMean`, `MaskedWeightedSum` (fuse the modalities present).
- `position_embedding`: `PositionEmbedding` (a learned vector per position).
- `tokens`: `TokenMask`, `PaddingMask`, `AttentionMask`, `TokenMean` (padded token ids).
"""

from vdg_tf.models.layers.frames import CausalFrameStack, FoldFrames, UnfoldFrames
from vdg_tf.models.layers.modality_dropout import ModalityDropout
from vdg_tf.models.layers.modality_pooling import MaskedMean, MaskedWeightedSum
from vdg_tf.models.layers.position_embedding import PositionEmbedding
from vdg_tf.models.layers.tokens import AttentionMask, PaddingMask, TokenMask, TokenMean

LAYERS = (
    FoldFrames,
    UnfoldFrames,
    CausalFrameStack,
    ModalityDropout,
    MaskedMean,
    MaskedWeightedSum,
    PositionEmbedding,
    TokenMask,
    PaddingMask,
    AttentionMask,
    TokenMean,
)

__all__ = [
    "LAYERS",
    "AttentionMask",
    "CausalFrameStack",
    "FoldFrames",
    "MaskedMean",
    "MaskedWeightedSum",
    "ModalityDropout",
    "PaddingMask",
    "PositionEmbedding",
    "TokenMask",
    "TokenMean",
    "UnfoldFrames",
]
