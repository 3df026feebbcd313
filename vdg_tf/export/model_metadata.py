"""Standard TFLite Model Metadata for every export, from the run it comes from.

Beside our own sidecars and `vdg_tf.*` entries, each `.tflite` carries the metadata any
TFLite tool reads (`export/tflite_metadata`): the model's name and task, each input's kind
(a `video` of frames in [0, 1] is described with normalisation mean 0 / std 255 from 0-255
pixels; a `--preprocess` export takes raw uint8 pixels, so none), and the labels attached
to the output when it scores one value per label. An `--incremental` export has one
subgraph per signature, which Model Metadata (one description per model) cannot describe
truthfully: it keeps our own metadata only.
"""

from __future__ import annotations

from vdg_tf.export.tflite_metadata import write_metadata

PIXEL_NORM = (0.0, 255.0)


def standard_metadata(data: bytes, bundle, *, preprocess: bool, output_width: int) -> bytes:
    """`data` with Model Metadata for the run `bundle` (task name, labels, video input).

    `output_width`: the last dimension of the model's output; labels attach to it only
    when there is one score per label.
    """
    labels = list(bundle.labels or [])
    video = any(i.name.split(":")[0] == "video" for i in bundle.model.inputs)
    per_label = bool(labels) and output_width == len(labels)
    return write_metadata(
        data,
        name=f"vdg_tf {bundle.task.name}",
        description=f"A multimodal video model ({bundle.task.name}); inputs by name: "
        "video, audio, text and their masks.",
        input_norm=PIXEL_NORM if video and not preprocess else None,
        labels=labels if per_label else None,
        output_kinds=["probabilities" if per_label else "tensor"],
    )
