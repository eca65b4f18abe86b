"""The training service: trainers in worker processes, the page a thin client (service.py)."""

from marginlab.training.service.handle import RunView, TrainerHandle
from marginlab.training.service.service import TrainingService, WorkerCrashed, worker_count

__all__ = ["RunView", "TrainerHandle", "TrainingService", "WorkerCrashed", "worker_count"]
