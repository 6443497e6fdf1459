"""Running a Hydra main so that configuration errors name the valid keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib.resources import files

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from seqmodels.experiment.rundirs import register_resolvers
from seqmodels.experiment.schema import register_configs
from seqmodels.experiment.validate import ConfigKeyError, explain_config_error
from seqmodels.tasks.base import CheckpointLoadError

#: The package that ships the configs as package data (``seqmodels/conf``).
CONFIG_MODULE = "seqmodels.conf"
#: Hydra's name for it: what every entry point passes as ``config_path``. It resolves
#: through the import system, so a wheel or a non-editable install finds its configs too.
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
#: The same directory on disk, for code that lists the YAML files (tests, docs). Derived
#: from the installed package, never from the source tree's layout.
CONFIG_DIR = str(files(CONFIG_MODULE))


def run_main(hydra_main: Callable[[], object]) -> None:
    """Call a ``@hydra.main`` function; a config error is printed briefly with the valid keys.

    Hydra prints composition errors itself and exits; we let them through to us instead
    (``HYDRA_FULL_ERROR``) so the message can list the keys the node accepts. Errors from
    training itself keep their full traceback.
    """
    register_configs()
    register_resolvers()
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
    except CheckpointLoadError as err:
        if user_set:
            raise
        sys.stderr.write(f"seqmodels: {err}\n")
        raise SystemExit(1) from None
    finally:
        if not user_set:
            os.environ.pop("HYDRA_FULL_ERROR", None)
