"""The strategy behind ``trainer=ddp_cpu``: Lightning's ``ddp_spawn`` whose worker processes
close their process group when a run ends."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy


class SpawnDDPStrategy(DDPStrategy):
    """``DDPStrategy(start_method="spawn")`` (Lightning's ``"ddp_spawn"``) that, when each
    ``fit``/``validate``/``test`` ends, waits for every worker and destroys the process group.

    Lightning leaves a gloo process group to be torn down at interpreter exit. A worker that
    exits while its peer is still finishing the last collective can then make the peer's gloo
    thread abort (``process 1 terminated with signal SIGABRT`` in the parent, after a run whose
    results were all computed). Ending the group at teardown, after a barrier, makes each
    worker's exit independent of the other's. The next phase spawns new workers, which make a
    new group.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("start_method", "spawn")
        super().__init__(**kwargs)

    def teardown(self) -> None:
        super().teardown()
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
