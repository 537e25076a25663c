"""Where independent tasks run: in this process, or in a pool of worker processes on this machine."""

from nascli.executors.base import EXECUTORS, Executor, executor_class, make_executor, register_executor

__all__ = ["EXECUTORS", "Executor", "executor_class", "make_executor", "register_executor"]
