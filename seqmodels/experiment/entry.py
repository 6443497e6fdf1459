"""Running a Hydra main so that configuration errors name the valid keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from seqmodels.experiment.schema import register_configs
from seqmodels.experiment.validate import ConfigKeyError, explain_config_error

#: The config directory of the repository (configs are read from the source tree).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def run_main(hydra_main: Callable[[], object]) -> None:
    """Call a ``@hydra.main`` function; a config error is printed briefly with the valid keys.

    Hydra prints composition errors itself and exits; we let them through to us instead
    (``HYDRA_FULL_ERROR``) so the message can list the keys the node accepts. Errors from
    training itself keep their full traceback.
    """
    register_configs()
    user_set = "HYDRA_FULL_ERROR" in os.environ
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        hydra_main()
    except (
        ConfigCompositionException,
        MissingConfigException,
        OmegaConfBaseException,
        ConfigKeyError,
    ) as err:
        if user_set:
            raise
        sys.stderr.write(f"seqmodels: configuration error:\n{explain_config_error(err)}\n")
        raise SystemExit(1) from None
    finally:
        if not user_set:
            os.environ.pop("HYDRA_FULL_ERROR", None)
