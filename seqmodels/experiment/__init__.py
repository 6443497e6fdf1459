"""Glue between Hydra configs and the library: schemas, instantiation, checkpoints, summaries.

Nothing here trains anything by itself; :mod:`seqmodels.cli.train`,
:mod:`seqmodels.cli.evaluate` and :mod:`seqmodels.cli.sample` are thin Hydra mains around plain
functions built from these parts.
"""

from seqmodels.experiment.checkpoints import (
    ResumeState,
    SafeModelCheckpoint,
    find_last_checkpoint,
    resolve_ckpt_path,
)
from seqmodels.experiment.encoders import generic_encoder, resolve_cell
from seqmodels.experiment.instantiate import (
    config_info,
    data_info,
    instantiate_callbacks,
    instantiate_loggers,
    instantiate_model,
)
from seqmodels.experiment.rundirs import register_resolvers
from seqmodels.experiment.schema import register_configs
from seqmodels.experiment.validate import ConfigKeyError, check_targets, explain_config_error

register_resolvers()  # ${seqmodels.run_dir:...} in the hydra configs, wherever they are composed

__all__ = [
    "ConfigKeyError",
    "ResumeState",
    "SafeModelCheckpoint",
    "check_targets",
    "config_info",
    "data_info",
    "explain_config_error",
    "find_last_checkpoint",
    "generic_encoder",
    "instantiate_callbacks",
    "instantiate_loggers",
    "instantiate_model",
    "register_configs",
    "register_resolvers",
    "resolve_cell",
    "resolve_ckpt_path",
]
