"""The training service: trainers in worker processes, the page a thin client (service.py)."""

from marginlab.training.service.handle import RunView, TrainerHandle
from marginlab.training.service.pipe_worker import WorkerCrashed
from marginlab.training.service.service import TrainingService, worker_count

__all__ = ["RunView", "TrainerHandle", "TrainingService", "WorkerCrashed", "worker_count"]
