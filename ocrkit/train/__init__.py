"""Training: one generic trainer, checkpoints, optimizers/schedules, EMA and the TASKS registry."""

from ocrkit.train.checkpoint import save_model_folder
from ocrkit.train.settings import TrainConfig
from ocrkit.train.trainer import NonFiniteLossError, Trainer, TrainerState

__all__ = ["NonFiniteLossError", "TrainConfig", "Trainer", "TrainerState", "save_model_folder"]
