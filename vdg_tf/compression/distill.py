"""Knowledge distillation: a smaller student learns from a trained teacher's soft targets.

loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T), where
`_T` are the fused-head probabilities sharpened or softened at temperature T (Hinton et al.).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf
import tf_keras as keras

from vdg_tf.tasks import Task


@dataclass
class DistillConfig:
    """Soft-target weight (1 - alpha), temperature and epochs."""

    alpha: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})
    temperature: float = field(default=3.0, metadata={"above": 0.0})
    epochs: int = field(default=20, metadata={"min": 1})
    learning_rate: float = field(default=3e-3, metadata={"above": 0.0})


def _soften(probs: tf.Tensor, temperature: float) -> tf.Tensor:
    logits = tf.math.log(tf.clip_by_value(probs, 1e-7, 1.0)) / temperature
    return tf.nn.softmax(logits)


class Distiller(keras.Model):
    """Trains `student` on (inputs, labels) against `teacher`; both output `fused` probs.

    Only the student's variables get gradients, so the teacher stays as it is without
    flipping its `trainable` flag (which would leak into the caller's model).
    """

    def __init__(
        self, student: keras.Model, teacher: keras.Model, cfg: DistillConfig, hard_loss=None
    ):
        super().__init__()
        self.student, self.teacher, self.cfg = student, teacher, cfg
        self.ce = hard_loss or keras.losses.SparseCategoricalCrossentropy()
        self.kl = keras.losses.KLDivergence()
        self.acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @staticmethod
    def _fused(out):
        return out["fused"] if isinstance(out, dict) else out

    def train_step(self, data):
        x, y = data
        t = self.cfg.temperature
        teacher = self._fused(self.teacher(x, training=False))
        with tf.GradientTape() as tape:
            student = self._fused(self.student(x, training=True))
            hard = self.ce(y, student)
            soft = self.kl(_soften(teacher, t), _soften(student, t)) * t * t
            loss = (
                self.cfg.alpha * hard
                + (1 - self.cfg.alpha) * soft
                + tf.add_n(self.student.losses or [0.0])
            )
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables, strict=True))
        self.acc.update_state(y, student)
        return {"loss": loss, "hard": hard, "soft": soft, "accuracy": self.acc.result()}

    def test_step(self, data):
        x, y = data
        self.acc.update_state(y, self._fused(self.student(x, training=False)))
        return {"accuracy": self.acc.result()}

    @property
    def metrics(self):
        return [self.acc]

    def call(self, x, training=False):
        return self._fused(self.student(x, training=training))


def distill(
    student: keras.Model,
    teacher: keras.Model,
    train_ds: tf.data.Dataset,
    cfg: DistillConfig,
    task: Task | None = None,
    validation_ds: tf.data.Dataset | None = None,
    verbose: int = 0,
    steps_per_epoch: int | None = None,
    callbacks: list | None = None,
) -> keras.Model:
    """Fit `student` (built, uncompiled) to `teacher` on `train_ds` of (inputs, label); returns it.

    The hard-label loss is the task's (`task.distills` says whether its outputs are class
    probabilities, which the soft targets need); `steps_per_epoch` reads an endless stream.
    """
    if task is not None and not task.distills:
        raise ValueError(f"distill: task {task.name} has no class probabilities to distill")
    d = Distiller(student, teacher, cfg, task.loss() if task is not None else None)
    d.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    d.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=cfg.epochs,
        verbose=verbose,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
    )
    return student
