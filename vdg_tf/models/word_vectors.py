"""Pretrained word vectors (GloVe / word2vec text format) into the text Embedding.

The text input is token ids of the run's vocabulary (`vocab.txt`, WordPiece or bytes).
Rows of the `text_embed` Embedding whose token the vectors file has are set to its
vector; the others keep their random start (WordPiece pieces such as `##ing` and
`[UNK]` are in no word-vector file). The file is read line by line, so a 1 GB GloVe file
costs its vocabulary's rows in memory, not the file's.

Formats: GloVe (`word v1 v2 ... vD` per line) and word2vec text (the same, after a first
line `count D`). Words are matched as the tokenizer writes them (lower case).

Example:

    cfg.model.word_vectors, cfg.model.embed_dim = "glove.6B.50d.txt", 50
    report = apply_word_vectors(model, cfg.model.word_vectors, tokenizer.vocabulary)
    str(report)  # "word vectors: 312 of 400 vocabulary tokens found in glove.6B.50d.txt"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tf_keras as keras


@dataclass(frozen=True)
class WordVectorReport:
    """How many vocabulary tokens the vectors file had."""

    path: str
    found: int
    vocabulary: int

    def __str__(self) -> str:
        return (
            f"word vectors: {self.found} of {self.vocabulary} vocabulary tokens found in "
            f"{Path(self.path).name}"
        )


def read_word_vectors(
    path: str | Path, vocabulary: list[str], dim: int
) -> tuple[dict[int, np.ndarray], int]:
    """Vectors of the `vocabulary` tokens that the file at `path` has: {token index: [dim]}.

    Returns (vectors, the file's dimension). Every line is checked, not only the used ones,
    so a damaged file is found the first time it is used.

    Raises:
        ValueError: one line naming the file and line: unreadable, a line that is not a
            word and `dim` numbers, or vectors of another dimension than `dim`.
    """
    path = Path(path)
    index = {}
    for i, token in enumerate(vocabulary):
        index.setdefault(token.lower(), i)
    vectors: dict[int, np.ndarray] = {}
    try:
        f = path.open(encoding="utf-8", errors="strict")
    except OSError as e:
        raise ValueError(f"model.word_vectors: {path}: {e.strerror or e}") from None
    with f:
        try:
            for number, line in enumerate(f, 1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if not line.strip():
                    continue
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: count and dimension
                if len(parts) != dim + 1:
                    raise ValueError(
                        f"{path} line {number}: expected a word and {dim} numbers "
                        f"(model.embed_dim), got {len(parts) - 1} value(s)"
                    )
                try:
                    vec = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    bad = next(p for p in parts[1:] if not _is_number(p))
                    raise ValueError(
                        f"{path} line {number}: {bad[:40]!r} is not a number"
                    ) from None
                if not np.all(np.isfinite(vec)):
                    raise ValueError(f"{path} line {number}: a value is not finite")
                i = index.get(parts[0].lower())
                if i is not None and i not in vectors:
                    vectors[i] = vec
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} line {number}: not UTF-8 text ({e.reason})") from None
    return vectors, dim


def apply_word_vectors(
    model: keras.Model, path: str | Path, vocabulary: list[str], layer: str = "text_embed"
) -> WordVectorReport:
    """Set the rows of Embedding `layer` for the tokens the vectors file has.

    The file's dimension must be the Embedding's (`model.embed_dim`).
    """
    embed = model.get_layer(layer)
    (table,) = embed.get_weights()
    if len(vocabulary) > table.shape[0]:
        raise ValueError(
            f"model.word_vectors: {len(vocabulary)} vocabulary tokens, but {layer} has "
            f"{table.shape[0]} rows"
        )
    vectors, _ = read_word_vectors(path, vocabulary, table.shape[1])
    for i, vec in vectors.items():
        table[i] = vec
    embed.set_weights([table])
    return WordVectorReport(str(path), len(vectors), len(vocabulary))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
