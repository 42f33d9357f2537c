"""The jsonargparse internals ``cnn.config`` relies on (``cnn.jsonargparse_internals``) exist in the
installed jsonargparse, and that jsonargparse is one of the versions they were read from."""

from __future__ import annotations

import re
import typing
from importlib.metadata import version
from pathlib import Path

from jsonargparse import ArgumentParser

from cnn import jsonargparse_internals

ROOT = Path(__file__).resolve().parents[2]


def parser_with_a_count_or_fraction() -> ArgumentParser:
    parser = ArgumentParser()
    parser.add_argument("--limit", type=typing.Union[int, float], default=1.0)
    return parser


def the_option(parser: ArgumentParser, dest: str):
    (action,) = [a for a in jsonargparse_internals.parser_actions(parser) if a.dest == dest]
    return action


def test_a_jsonargparse_parser_lists_every_option_as_an_action():
    dests = {action.dest for action in jsonargparse_internals.parser_actions(parser_with_a_count_or_fraction())}
    assert {"help", "limit"} <= dests


def test_an_option_with_a_type_names_it_and_one_without_none():
    parser = parser_with_a_count_or_fraction()
    assert jsonargparse_internals.option_type(the_option(parser, "limit")) == typing.Union[int, float]
    assert jsonargparse_internals.option_type(the_option(parser, "help")) is None


def test_a_union_built_in_order_keeps_it_and_an_option_given_it_parses_by_it():
    assert jsonargparse_internals.ordered_union((int, float)).__args__ == (int, float)
    float_first = jsonargparse_internals.ordered_union((float, int))
    assert typing.get_origin(float_first) is typing.Union and float_first.__args__ == (float, int)
    parser = parser_with_a_count_or_fraction()
    assert type(parser.parse_args(["--limit", "3"]).limit) is int
    jsonargparse_internals.set_option_type(the_option(parser, "limit"), float_first)
    assert jsonargparse_internals.option_type(the_option(parser, "limit")) is float_first
    assert type(parser.parse_args(["--limit", "3"]).limit) is float


def test_the_pinned_jsonargparse_range_holds_the_versions_the_internals_were_read_from():
    pin = re.search(r'"jsonargparse\[signatures\]>=([\d.]+),<([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml pins jsonargparse with a lower and an upper bound"
    low, high = (tuple(int(part) for part in bound.split(".")) for bound in pin.groups())
    as_tuple = lambda text: tuple(int(part) for part in text.split(".")[:3])  # noqa: E731
    for read in (*jsonargparse_internals.READ_FROM, version("jsonargparse")):
        assert low <= as_tuple(read) < high, f"{read} outside jsonargparse>={pin[1]},<{pin[2]}"
