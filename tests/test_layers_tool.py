"""``python -m cnn.tools.layers`` times every convolution part and pooling stage of the seed
network in both frameworks, for the dataset's own shapes."""

from __future__ import annotations

import subprocess
import sys

from cnn.tools.layers import conv_shapes
from tests.cli_runs import ROOT


def test_conv_shapes_follow_the_dataset():
    assert conv_shapes("mnist") == [("conv1", 28, 1, 20), ("conv2", 14, 20, 50), ("conv3", 7, 50, 100)]
    assert conv_shapes("cifar10") == [("conv1", 32, 3, 20), ("conv2", 16, 20, 50), ("conv3", 8, 50, 100)]


def test_the_table_has_a_row_per_part_with_positive_times():
    result = subprocess.run([sys.executable, "-m", "cnn.tools.layers", "--batch-size", "2",
                             "--repeats", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line[:22].strip(): line[22:].split() for line in result.stdout.splitlines()[2:]}
    expected = [f"conv{i} {c}->{o} {p}" for i, c, o in ((2, 20, 50), (3, 50, 100)) for p in ("fwd", "dW", "dX")]
    expected += [f"relu+pool{i} {p}" for i in (1, 2, 3) for p in ("fwd", "bwd")]
    for name in expected:  # a 2-image pooling stage can round to 0.00 ms
        assert float(rows[name][0]) >= 0 and float(rows[name][1]) >= 0, name
    torch_total, mlx_total = map(float, rows["sum (used in training)"][:2])
    assert torch_total > 0 and mlx_total > 0
