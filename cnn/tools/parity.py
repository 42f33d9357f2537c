"""``python -m cnn.tools.parity --lr 2e-3 --steps 20``: torch and MLX side by side, step by step.

Both Classifiers start from the same seed, dropout 0, float32 on the CPU, and take Adam steps
on the same MNIST batches; prints each step's relative loss difference. torch is imported
first so it keeps its own BLAS (``cnn.mx`` may load a system OpenBLAS globally for MLX).
"""

from __future__ import annotations

import argparse

import cnn.mx  # noqa: F401,E402  - loads the optimised BLAS before mlx
from cnn.mx.module import AdamL2  # noqa: E402
from cnn.mx.module import Classifier as MxClassifier

import mlx.core as mx  # noqa: E402
import mlx.nn as mnn  # noqa: E402
import torch  # first: see the module docstring

from cnn.data import load_dataset  # noqa: E402
from cnn.pt.module import Classifier as PtClassifier  # noqa: E402


def relative_loss_differences(lr: float, steps: int, batch_size: int, seed: int) -> list[float]:
    """|loss_torch - loss_mlx| / loss_torch after each of ``steps`` Adam steps (constant lr)."""
    train = load_dataset("mnist").train
    pt, mx_model = PtClassifier(dropout=0.0, seed=seed), MxClassifier(dropout=0.0, seed=seed)
    pt.mean.fill_(0.1307), pt.std.fill_(0.3081)
    mx_model.mean, mx_model.std = mx.array([0.1307]), mx.array([0.3081])
    pt_opt, mx_opt = torch.optim.Adam(pt.parameters(), lr=lr), AdamL2(lr)
    loss_and_grad = mnn.value_and_grad(mx_model, lambda m, x, y: mnn.losses.nll_loss(
        m(x), y, reduction="mean"))
    differences = []
    for step in range(steps):
        x = train.images[step * batch_size:(step + 1) * batch_size]
        y = train.labels[step * batch_size:(step + 1) * batch_size]
        pt_opt.zero_grad()
        pt_loss = torch.nn.functional.nll_loss(
            pt(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())), torch.from_numpy(y))
        pt_loss.backward()
        pt_opt.step()
        mx_loss, grads = loss_and_grad(mx_model, mx.array(x), mx.array(y))
        mx_opt.update(mx_model, grads)
        mx.eval(mx_model.parameters(), mx_opt.state)
        differences.append(abs(pt_loss.item() - mx_loss.item()) / pt_loss.item())
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cnn.tools.parity")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    differences = relative_loss_differences(args.lr, args.steps, args.batch_size, args.seed)
    print(f"lr {args.lr:g}, batch {args.batch_size}: relative loss difference per step")
    print(" ".join(f"{d:.1e}" for d in differences))
    print(f"max {max(differences):.1e}; first step above 1e-4: "
          f"{next((i + 1 for i, d in enumerate(differences) if d > 1e-4), 'none')}")


if __name__ == "__main__":
    main()
