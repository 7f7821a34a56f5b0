"""Training: the autoencoder's run (:mod:`.trainer`), the loop every run shares (:mod:`.loop`: devices,
torchrun, progress, checkpoints, Ctrl-C and resume), the data (:mod:`.data`, :mod:`.loader`), fine-tuning
and chains of recipes (:mod:`.finetune`, :mod:`.chain`), the adversarial loss (:mod:`.adversarial`), speed
settings (:mod:`.speed`) and the lock a run holds (:mod:`.runlock`)."""

from .trainer import Trainer

__all__ = ["Trainer"]
