"""Model features from decoded media: log-mel spectrograms (tfio DSP) and token ids (keras-nlp).

tensorflow-io's C++ kernels do not load on TF 2.21, but its pure-TF audio functions do;
this is the one module that imports it, with its load warnings silenced.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import tensorflow as tf

from vdg_tf._quiet import silenced_stderr
from vdg_tf.config import AudioSpec, TextSpec

with silenced_stderr(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow_io as tfio

RESERVED_TOKENS = ["[PAD]", "[UNK]"]


def log_mel(samples: tf.Tensor, spec: AudioSpec) -> tf.Tensor:
    """Mono float samples [N] (or a batch [B, N]) -> log-mel [(B,) frames, mels, 1] in about
    [-1, 1], each clip relative to its own peak. A batch costs a third of its clips one by one.
    """
    samples = tf.convert_to_tensor(samples)
    batch = samples if samples.shape.rank == 2 else samples[tf.newaxis]
    stft = tfio.audio.spectrogram(batch, nfft=spec.nfft, window=spec.window, stride=spec.stride)
    mel = tfio.audio.melscale(
        stft, rate=spec.sample_rate, mels=spec.mels, fmin=spec.fmin, fmax=spec.fmax
    )
    # tfio's dbscale floors at the peak of its whole input (the batch): floor per clip here
    # instead (vectorized_map of dbscale gave the same values for ~0.05 ms a clip more)
    db = tfio.audio.dbscale(mel, top_db=float("inf"))
    peak = tf.reduce_max(db, axis=[1, 2], keepdims=True)
    # relative to the clip's peak, so loudness does not shift features: [-top_db, 0] -> [-1, 1]
    rel = tf.maximum(db, peak - spec.top_db) - peak
    # expand_dims, not [..., tf.newaxis]: in an exported graph with a dynamic batch that
    # slice is a Flex op, this one a TFLite builtin (vdg export --preprocess --batch dynamic)
    out = tf.expand_dims(rel / (spec.top_db / 2) + 1.0, -1)
    return out if samples.shape.rank == 2 else out[0]


def log_mel_frames(spec: AudioSpec) -> int:
    """Number of spectrogram frames `log_mel` gives for `spec.samples` samples."""
    return int(log_mel(tf.zeros([spec.samples]), spec).shape[0])


class TextTokenizer:
    """Caption -> int32 ids [max_tokens], 0-padded: WordPiece learned from training text, or bytes.

    Tokenizing stays outside the model (and the TFLite graph) as on-device toolkits do;
    the vocabulary file ships beside the model.
    """

    def __init__(self, spec: TextSpec, vocabulary: list[str] | None = None):
        import keras_nlp  # Keras 3 package: only ever used inside the data pipeline

        self.spec = spec
        if spec.tokenizer == "byte":
            self.vocabulary = None
            self._tok = keras_nlp.tokenizers.ByteTokenizer(sequence_length=spec.max_tokens)
            self.vocab_size = 256
            return
        if spec.tokenizer != "wordpiece":
            raise ValueError(f"text.tokenizer: unknown '{spec.tokenizer}' (known: wordpiece, byte)")
        if not vocabulary:
            raise ValueError("text.tokenizer wordpiece needs a vocabulary: use TextTokenizer.fit")
        self.vocabulary = list(vocabulary)
        self._tok = keras_nlp.tokenizers.WordPieceTokenizer(
            vocabulary=self.vocabulary,
            sequence_length=spec.max_tokens,
            lowercase=True,
            oov_token="[UNK]",
        )
        self.vocab_size = len(self.vocabulary)

    @classmethod
    def fit(cls, texts: list[str], spec: TextSpec) -> TextTokenizer:
        """Learn a WordPiece vocabulary from training texts (or build the byte fallback)."""
        if spec.tokenizer == "byte":
            return cls(spec)
        import keras_nlp

        corpus = [t for t in texts if t.strip()] or ["[UNK]"]
        vocab = keras_nlp.tokenizers.compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(corpus).batch(256),
            vocabulary_size=spec.vocab_size,
            lowercase=True,
            reserved_tokens=RESERVED_TOKENS,
        )
        return cls(spec, vocab)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary, one token a line (nothing for the byte tokenizer)."""
        if self.vocabulary is not None:
            Path(path).write_text("\n".join(self.vocabulary) + "\n")

    @classmethod
    def load(cls, path: str | Path, spec: TextSpec) -> TextTokenizer:
        if spec.tokenizer == "byte":
            return cls(spec)
        return cls(spec, Path(path).read_text().splitlines())

    def __call__(self, text: tf.Tensor) -> tf.Tensor:
        ids = self._tok(text)
        return tf.cast(ids, tf.int32)
