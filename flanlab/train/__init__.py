"""Fine-tuning: `train(config) -> run folder`, configs from YAML (`load_train_config`). See flanlab/train/sft.py."""

from flanlab.train.config import LoraSettings, TrainConfig, load_train_config
from flanlab.train.sft import TrainingDiverged, train

__all__ = ["LoraSettings", "TrainConfig", "TrainingDiverged", "load_train_config", "train"]
