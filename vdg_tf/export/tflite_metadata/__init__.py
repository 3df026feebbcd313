"""Standard TFLite Model Metadata: the writer and reader, over bindings flatc generated
from the official `metadata_schema.fbs` (`metadata_schema_py_generated.py`, regenerated
by tools/tflite_metadata/generate.sh).

MediaPipe's ObjectDetector and the TFLite Task library read a model's labels, input
normalisation and output roles only from this metadata; our own sidecars stay beside it.
"""

from vdg_tf.export.tflite_metadata.reader import metadata_buffer, packed_files, read_metadata
from vdg_tf.export.tflite_metadata.writer import (
    INPUT_KINDS,
    OUTPUT_KINDS,
    detection_output_kinds,
    min_parser_version,
    write_metadata,
)

__all__ = [
    "INPUT_KINDS",
    "OUTPUT_KINDS",
    "detection_output_kinds",
    "metadata_buffer",
    "min_parser_version",
    "packed_files",
    "read_metadata",
    "write_metadata",
]
