"""The sections of ``fit --help`` (and the other trainer commands), the same on both frameworks.

jsonargparse titles each section with the first line of a class's docstring, which differ
between Lightning's ``Trainer`` and its MLX mirror; here both CLIs give their sections one set of
titles, in one order: options, trainer, model, data, linked arguments, optimizer, lr_scheduler,
run.
"""

from __future__ import annotations

SECTION_TITLES = {
    "trainer": "Trainer: how long to train, what to log and checkpoint, on which device (Lightning's Trainer)",
    "model": "Model: the network, its optimiser and learning-rate schedule",
    "data": "Data: the dataset, its split and its batches",
    "optimizer": "Optimizer: replaces the model's own (model.lr, model.lr_schedule) when given",
    "lr_scheduler": "LR scheduler: stepped after each epoch; needs an optimizer",
}
RUN_TITLE = "Run: the checkpoint to start from"


def title_sections(parser, subcommand: str) -> None:
    """Retitle a trainer subcommand's jsonargparse parser: its class sections and the section of
    the subcommand's own arguments (``--ckpt_path``, a group named after the subcommand)."""
    for key, title in {**SECTION_TITLES, subcommand: RUN_TITLE}.items():
        if key in parser.groups:
            parser.groups[key].title = title
