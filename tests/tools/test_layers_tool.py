"""``python -m cnn.tools.layers`` times every convolution part and pooling stage of the seed
network in both frameworks, for the dataset's own shapes."""

from __future__ import annotations

import pytest

from cnn.tools import layers
from cnn.tools.layers import conv_shapes


def test_conv_shapes_follow_the_dataset():
    assert conv_shapes("mnist") == [("conv1", 28, 1, 20), ("conv2", 14, 20, 50), ("conv3", 7, 50, 100)]
    assert conv_shapes("cifar10") == [("conv1", 32, 3, 20), ("conv2", 16, 20, 50), ("conv3", 8, 50, 100)]


def split_row(line: str) -> tuple[str, list[float]]:
    """A table row's label and its figures (the trailing words that are numbers)."""
    words = line.split()
    figures = []
    while words:
        try:
            figures.insert(0, float(words[-1]))
        except ValueError:
            break
        words.pop()
    return " ".join(words), figures


def test_the_table_has_a_row_per_part_in_network_order_and_a_sum_of_the_parts_training_uses(capsys):
    layers.main(["--batch-size", "2", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mnist, batch 2, ms per batch (median of 1); torch ")
    assert lines[1].split() == ["op", "torch", "mlx", "mlx/torch", "torch", "GF/s", "mlx", "GF/s"]
    rows = [split_row(line) for line in lines[2:]]
    expected = []
    for i, c, o in ((1, 1, 20), (2, 20, 50), (3, 50, 100)):
        unused = {(1, "dX"): " (unused)"}
        expected += [f"conv{i} {c}->{o} {p}" + unused.get((i, p), "") for p in ("fwd", "dW", "dX")]
        expected += [f"relu+pool{i} {p}" for p in ("fwd", "bwd")]
    assert [name for name, _ in rows] == [*expected, "sum (used in training)"]
    for name, values in rows[:-1]:
        assert len(values) == (5 if name.startswith("conv") else 3), name  # GF/s for convolutions only
        torch_ms, mlx_ms, ratio = values[:3]
        if min(torch_ms, mlx_ms) >= 0.5:  # the ratio of the printed figures (a 2-image pool prints 0.00 ms)
            assert ratio == pytest.approx(mlx_ms / torch_ms, rel=0.05, abs=0.06), name
    # the sum: every part but conv1's input gradient, which training never computes (each figure
    # is printed to 0.01 ms, so the printed parts may miss the printed sum by 0.005 ms each)
    used = [values for name, values in rows[:-1] if not name.endswith("(unused)")]
    torch_sum, mlx_sum, _ = rows[-1][1]
    assert torch_sum == pytest.approx(sum(v[0] for v in used), abs=0.005 * (len(used) + 1))
    assert mlx_sum == pytest.approx(sum(v[1] for v in used), abs=0.005 * (len(used) + 1))


@pytest.fixture
def timed(monkeypatch):
    """``layers.median_ms`` replaced: each timed call is run once and kept with its ``repeats``; it
    "takes" its index in ms, so a result names the call each of its parts timed."""
    calls = []

    def median_ms(call, repeats):
        calls.append((call(), repeats))
        return float(len(calls) - 1)

    monkeypatch.setattr(layers, "median_ms", median_ms)
    return calls


def test_each_convolution_part_times_its_own_operation_in_torch(timed):
    times = layers.torch_conv(2, 7, 50, 100, 3)  # batch, size, in and out channels, repeats: conv3 of mnist
    assert times == {"fwd": 0.0, "dW": 1.0, "dX": 2.0}  # three timings, one a part
    (forward, _), ((weight_grad,), _), ((input_grad,), _) = timed
    assert (tuple(forward.shape), tuple(weight_grad.shape), tuple(input_grad.shape)) == (
        (2, 100, 7, 7), (100, 50, 5, 5), (2, 50, 7, 7))
    assert {repeats for _, repeats in timed} == {3}


@pytest.mark.parametrize("measure, parts", [(layers.mlx_conv, ("fwd", "dW", "dX")),
                                            (layers.torch_pool, ("fwd", "bwd")), (layers.mlx_pool, ("fwd", "bwd"))])
def test_each_part_is_one_timing_of_its_own(timed, measure, parts):
    args = (2, 7, 50, 100, 3) if measure is layers.mlx_conv else (2, 7, 100, 3)
    assert measure(*args) == {part: float(i) for i, part in enumerate(parts)}
    assert [repeats for _, repeats in timed] == [3] * len(parts)


@pytest.mark.parametrize("measure", [layers.torch_conv, layers.mlx_conv])
def test_every_convolution_part_takes_a_positive_time(measure):
    times = measure(2, 7, 50, 100, 1)
    assert set(times) == {"fwd", "dW", "dX"} and all(ms > 0 for ms in times.values()), times


def test_a_figure_is_the_median_of_the_timed_calls_after_two_untimed_ones(monkeypatch):
    ticks = iter([0.0, 0.004, 1.0, 1.001, 2.0, 2.009])  # three timed calls: 4, 1 and 9 ms
    monkeypatch.setattr(layers.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert layers.median_ms(lambda: calls.append(1), 3) == pytest.approx(4.0)
    assert len(calls) == 5
