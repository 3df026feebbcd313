"""Video question answering: `question` + `answer`; the text is the question, then the caption."""

from __future__ import annotations

from vdg_tf.manifest import ClipRow
from vdg_tf.tasks.base import top_labels
from vdg_tf.tasks.classification import Classification
from vdg_tf.tasks.registry import register_task


@register_task
class VQA(Classification):
    """A softmax over the answers seen in training; reported like classification."""

    name = "vqa"
    key = "answer"

    def text(self, row: ClipRow) -> str:
        return f"{row.question or ''} {row.text}".strip()

    def names(self, row: ClipRow) -> list[str]:
        return [row.answer] if row.answer else []

    def problem(self, row, labels):
        if not row.question:
            return f"{row.where}: missing key 'question' for task vqa"
        return super().problem(row, labels)

    def predictions(self, outputs, labels, top=3):
        return [{"answer": t[0]["label"], "top": t} for t in top_labels(outputs, labels, top)]
