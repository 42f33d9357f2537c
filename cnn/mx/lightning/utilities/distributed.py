"""Mirror of lightning.fabric.utilities.distributed: the few collectives the MLX trainer needs, over ``mx.distributed``.

MLX has no process launcher inside the trainer (Lightning's ``ddp`` strategy spawns its own
workers); one process per device is started from outside with ``mlx.launch``, which tells every
process its rank and its peers through environment variables, e.g. on one machine over loopback::

    mlx.launch -n 2 --backend ring --python "$(which python)" cli.py fit --framework mlx ...

``mlx.launch`` sets ``MLX_RANK`` and ``MLX_HOSTFILE`` (a JSON file ``[["127.0.0.1:32323"],
["127.0.0.1:32324"]]``: one list of ``ip:port`` per rank) for the ring backend; ``mx.distributed.init()``
reads them and connects the ring. Without them it returns a group of one, so every helper here is
then a no-op and a single process trains exactly as before.

Everything here is a collective: every rank must call it, in the same order, with arrays of the
same shape, or the ranks wait for each other forever.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import mlx.core as mx
import numpy as np

from cnn.errors import ConfigError

__all__ = ["world", "launched_size", "all_sum", "all_max", "all_min", "any_rank", "barrier", "broadcast_object",
           "broadcast_tree", "all_gather", "lost_peer"]

# How MLX's backends fail a collective whose peer process is gone (the ring backend's sockets
# closed: "[ring] connection to a peer was lost", "[ring] ... closed by the peer").
_LOST_PEER = ("connection to a peer was lost", "closed by the peer", "Too many send/recv errors")


def launched_size() -> int:
    """How many ranks ``mlx.launch`` started this process among (read from what it hands each rank: the
    nccl backend's ``MLX_WORLD_SIZE``, the ring backend's ``MLX_HOSTFILE`` or jaccl's ``MLX_IBV_DEVICES``, one
    entry per rank); 1 when it did not start this one."""
    if os.environ.get("MLX_RANK") is None:
        return 1
    if os.environ.get("MLX_WORLD_SIZE", "").isdigit():
        return int(os.environ["MLX_WORLD_SIZE"])
    for variable in ("MLX_HOSTFILE", "MLX_IBV_DEVICES"):
        try:
            with open(os.environ[variable]) as f:
                listed = json.load(f)
            return max(len(listed), 1) if isinstance(listed, list) else 1
        except (KeyError, OSError, ValueError):
            continue
    return 1


def world() -> mx.distributed.Group:
    """The global group: every process ``mlx.launch`` started, or a group of one. ``ConfigError`` (one line)
    for a rank of a launch whose backend did not start (MLX's ``init`` then hands each rank a group of one, and
    each would train on its own)."""
    group, expected = mx.distributed.init(), launched_size()
    if group.size() != expected:
        raise ConfigError(f"rank {os.environ.get('MLX_RANK')}: the distributed backend did not start ({expected} "
                          f"ranks launched, a group of {group.size()} formed); launch with a backend this "
                          "machine has (--backend ring)")
    return group


def _reduce(op, values: Sequence[float], group: mx.distributed.Group) -> list[float]:
    if group.size() == 1:
        return [float(v) for v in values]
    # float64 where the device has it (CPU) keeps counts and sums of a big epoch exact.
    dtype = mx.float64 if mx.default_device() == mx.cpu else mx.float32
    return [float(v) for v in np.array(op(mx.array(list(values), dtype=dtype), group=group))]


def all_sum(values: Sequence[float], group: mx.distributed.Group) -> list[float]:
    """Element-wise sum of the same-length float lists of all ranks."""
    return _reduce(mx.distributed.all_sum, values, group)


def all_max(values: Sequence[float], group: mx.distributed.Group) -> list[float]:
    return _reduce(mx.distributed.all_max, values, group)


def all_min(values: Sequence[float], group: mx.distributed.Group) -> list[float]:
    return _reduce(mx.distributed.all_min, values, group)


def any_rank(flag: bool, group: mx.distributed.Group) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    return all_max([float(bool(flag))], group)[0] > 0


def barrier(group: mx.distributed.Group) -> None:
    """Return once every rank has called it."""
    all_sum([0.0], group)


def _scalar_number(value: Any) -> Any:
    if isinstance(value, mx.array) and value.size == 1:
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def broadcast_object(obj: Any, group: mx.distributed.Group) -> Any:
    """Rank zero's ``obj`` (anything JSON can carry, infinities included) on every rank; a scalar ``mx.array`` in it
    (a callback's score) arrives as its number."""
    if group.size() == 1:
        return obj
    rank_zero = group.rank() == 0
    data = json.dumps(obj, default=_scalar_number).encode() if rank_zero else b""
    (length,) = all_sum([len(data)], group)
    buffer = np.zeros(int(length), np.int32)
    if rank_zero:
        buffer[:] = np.frombuffer(data, np.uint8)
    summed = np.array(mx.distributed.all_sum(mx.array(buffer), group=group))
    return json.loads(summed.astype(np.uint8).tobytes().decode())


def broadcast_tree(tree: Any, group: mx.distributed.Group) -> Any:
    """Rank zero's arrays in a tree of ``mx.array`` (e.g. parameters) on every rank, bit for bit."""
    from mlx.utils import tree_map

    if group.size() == 1:
        return tree
    keep = group.rank() == 0
    return tree_map(lambda a: mx.distributed.all_sum(a if keep else mx.zeros_like(a), group=group),
                    tree)


def all_gather(data: Any, group: mx.distributed.Group) -> Any:
    """Lightning's ``all_gather``: each array (mx or numpy) of a tree stacked over ranks,
    shape ``(world_size, *shape)``; unchanged in a group of one. Shapes must agree across ranks."""
    from mlx.utils import tree_map

    if group.size() == 1:
        return data

    def gather(x):
        if not isinstance(x, (mx.array, np.ndarray)):
            return x
        x = mx.array(x) if isinstance(x, np.ndarray) else x
        return mx.distributed.all_gather(x[None], group=group)

    return tree_map(gather, data, is_leaf=lambda x: isinstance(x, np.ndarray))


def lost_peer(error: BaseException, group: mx.distributed.Group) -> bool:
    """Whether ``error`` is a collective of ``group`` failing because another rank is gone."""
    return group.size() > 1 and isinstance(error, RuntimeError) and any(
        text in str(error) for text in _LOST_PEER)
