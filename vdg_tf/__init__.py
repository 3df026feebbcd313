"""vdg_tf: multimodal (vision, audio, text) video models in tf_keras, compressed to TFLite.

The flow is `media` -> `data` -> `models` -> `training` -> `compression` -> `export` ->
`runtime`, with `tasks` and `config` as the base every stage uses and `pipeline` on top;
each stage is a plain Python API and the `vdg` command line calls it. Importing the
package changes no process settings: the entry points (`vdg`, the tests) do that.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
