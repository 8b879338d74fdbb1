"""ARMIN (Li et al., IJCAI 2019): the auto-addressing recurrent memory network, its baselines, tasks and efficiency
measurements (see README.md)."""

from importlib.metadata import PackageNotFoundError, version

from .addressing import read_memory, st_gumbel_softmax, write_memory, write_weights
from .cells import ArminCell, PaperLSTMCell, TardisCell
from .models import KINDS, ModelConfig, SequenceModel, build_model, count_parameters, detach_state
from .tasks import TaskConfig, algorithmic_batch

try:
    __version__ = version("armin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["KINDS", "ArminCell", "ModelConfig", "PaperLSTMCell", "SequenceModel", "TardisCell", "TaskConfig",
           "__version__", "algorithmic_batch", "build_model", "count_parameters", "detach_state", "read_memory",
           "st_gumbel_softmax", "write_memory", "write_weights"]
