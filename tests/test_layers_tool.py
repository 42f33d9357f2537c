"""``python -m cnn.tools.layers`` times every convolution part and pooling stage of the seed
network in both frameworks, for the dataset's own shapes."""

from __future__ import annotations

import pytest

from cnn.tools import layers
from cnn.tools.layers import conv_shapes


def test_conv_shapes_follow_the_dataset():
    assert conv_shapes("mnist") == [("conv1", 28, 1, 20), ("conv2", 14, 20, 50), ("conv3", 7, 50, 100)]
    assert conv_shapes("cifar10") == [("conv1", 32, 3, 20), ("conv2", 16, 20, 50), ("conv3", 8, 50, 100)]


def test_the_table_has_a_row_per_part_with_both_frameworks_times(capsys):
    layers.main(["--batch-size", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    rows = {line[:22].strip(): line[22:].split() for line in out.splitlines()[2:]}
    expected = [f"conv{i} {c}->{o} {p}" for i, c, o in ((2, 20, 50), (3, 50, 100)) for p in ("fwd", "dW", "dX")]
    expected += [f"relu+pool{i} {p}" for i in (1, 2, 3) for p in ("fwd", "bwd")]
    for name in expected:  # torch ms, mlx ms, their ratio (a 2-image pooling stage prints as 0.00 ms)
        assert name in rows and len(rows[name]) >= 3, name
        torch_ms, mlx_ms, ratio = map(float, rows[name][:3])  # a number in each column, or ValueError
    torch_total, mlx_total = map(float, rows["sum (used in training)"][:2])
    assert torch_total > 0 and mlx_total > 0


@pytest.mark.parametrize("measure", [layers.torch_conv, layers.mlx_conv])
def test_every_convolution_part_takes_a_positive_time(measure):
    times = measure(2, 7, 50, 100, 1)  # batch, size, in and out channels, repeats: conv3 of mnist
    assert set(times) == {"fwd", "dW", "dX"} and all(ms > 0 for ms in times.values()), times


@pytest.mark.parametrize("measure", [layers.torch_pool, layers.mlx_pool])
def test_every_pooling_part_takes_a_positive_time(measure):
    times = measure(2, 7, 100, 1)  # batch, size, channels, repeats: relu+pool3 of mnist
    assert set(times) == {"fwd", "bwd"} and all(ms > 0 for ms in times.values()), times
