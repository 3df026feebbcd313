"""vdg_tf: multimodal (vision, audio, text) video models in tf_keras, compressed to TFLite.

The flow is `data` -> `models` -> `training` -> `compression` -> `export` -> `runtime`;
each stage is a plain Python API and the `vdg` command line calls it.
"""

from vdg_tf._quiet import quiet_environment
from vdg_tf.data.heap import pool_tensorflow_memory

quiet_environment()
pool_tensorflow_memory()  # before TensorFlow makes its first tensor

__version__ = "0.1.0"

__all__ = ["__version__"]
