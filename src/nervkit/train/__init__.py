"""Training engine: losses, schedules, checkpoints, distributed, progress and training logs."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistContext, init_distributed, resolve_device, shutdown_distributed
from .engine import Trainer
from .evaluate import evaluate_model
from .losses import ReconstructionLoss
from .schedule import lr_factor
from .state import TrainState

__all__ = [
    "DistContext",
    "ReconstructionLoss",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "evaluate_model",
    "init_distributed",
    "load_checkpoint",
    "lr_factor",
    "resolve_device",
    "save_checkpoint",
    "shutdown_distributed",
]
