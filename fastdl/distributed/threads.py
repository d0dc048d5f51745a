"""How many threads each rank's kernels get by default: its share of the node's CPUs.

fastdl's default, alone on a machine, is every CPU the process may run on (its affinity
mask, or ``NUMBA_NUM_THREADS`` where that is smaller; see :mod:`fastdl.config`). With several
ranks on one node that would put ``local_size`` times too many threads on the CPUs, and the
ranks would slow each other down. So each rank takes its share: every CPU in its affinity mask
counts ``1 / k``, ``k`` being the number of the node's ranks whose masks contain it.

- ranks that may all run anywhere (``mpiexec`` without binding, the usual case): each gets
  ``cores // local_size`` threads — 2 ranks on 8 cores, 4 threads each;
- ranks the launcher bound to disjoint CPUs (``-bind-to``, ``srun --cpu-bind``): each gets
  the CPUs of its own mask — already its share;
- always at least 1, and at most fastdl's limit (``NUMBA_NUM_THREADS``).

``FASTDL_NUM_THREADS`` set in the environment wins over all of this.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from fastdl import config

__all__ = ["share_of_cpus", "apply_default"]


def share_of_cpus(node_cpus: Sequence[frozenset[int]], local_rank: int) -> tuple[int, str]:
    """Threads for local rank ``local_rank``, and a sentence saying how they were found.

    Parameters
    ----------
    node_cpus : sequence of frozenset of int, length local_size
        The CPUs each rank of the node may run on, by local rank.
    local_rank : int

    Returns
    -------
    (int, str)
        At least 1.
    """
    mine = node_cpus[local_rank]
    sharing = {cpu: sum(cpu in cpus for cpus in node_cpus) for cpu in mine}
    share = sum(1 / k for k in sharing.values())
    n = max(1, math.floor(share + 1e-9))
    ranks = len(node_cpus)
    if ranks == 1:
        why = f"the {len(mine)} CPUs this rank may run on (the only rank on its node)"
    elif all(cpus == mine for cpus in node_cpus):
        why = f"{len(mine)} CPUs shared by {ranks} ranks on this node"
    elif all(k == 1 for k in sharing.values()):
        why = f"the {len(mine)} CPUs the launcher bound this rank to"
    else:
        why = f"a {share:.3g}-CPU share of the {len(mine)} CPUs this rank may run on"
    return n, why


def apply_default(comm) -> None:
    """Give fastdl's kernels ``comm``'s share of the node's CPUs (unless
    ``FASTDL_NUM_THREADS`` is set); record the count and why in ``comm.threads(_why)``."""
    if os.environ.get("FASTDL_NUM_THREADS", "").strip():
        comm.threads, comm.threads_why = config.get_num_threads(), "FASTDL_NUM_THREADS"
        return
    n, why = share_of_cpus(comm.node_cpus(), comm.local_rank)
    limit, limit_why = config._thread_limit()
    if n > limit:
        n, why = limit, f"{why}, capped at {limit} ({limit_why})"
    config.set_num_threads(n)
    comm.threads, comm.threads_why = n, why
