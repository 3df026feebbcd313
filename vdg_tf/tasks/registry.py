"""Tasks by name: one table, filled by `register_task` in each task's module."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdg_tf.config import DataConfig
    from vdg_tf.tasks.base import Task

TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make `cls` available as `data.task: <cls.name>`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: a task needs a `name`")
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"task '{cls.name}' is registered twice ({TASKS[cls.name].__name__})")
    TASKS[cls.name] = cls
    return cls


def get_task(data: DataConfig | str) -> Task:
    """The task a data config (or a task name) asks for; unknown names list the known ones."""
    name = data if isinstance(data, str) else data.task
    if name not in TASKS:
        raise ValueError(f"data.task: unknown '{name}' (known: {', '.join(sorted(TASKS))})")
    if isinstance(data, str):
        return TASKS[name]()
    return TASKS[name].from_config(data)
