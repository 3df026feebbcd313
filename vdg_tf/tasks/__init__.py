"""Tasks: what a manifest row teaches and how a model output reads, one module per task.

`get_task(cfg.data)` gives the run's `Task`; `TASKS` holds every registered one by name.
Adding a task is one module with a `@register_task` class, imported below.
"""

from vdg_tf.tasks import (  # noqa: F401  each module registers its task
    anomaly,
    classification,
    detection,
    localisation,
    multilabel,
    ordinal,
    regression,
    vqa,
)
from vdg_tf.tasks.base import Task
from vdg_tf.tasks.registry import TASKS, get_task, register_task

__all__ = ["TASKS", "Task", "get_task", "register_task"]
