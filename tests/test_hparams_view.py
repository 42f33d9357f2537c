"""TensorBoard's HPARAMS tab compares the torch and the MLX run of one config: a real
``tensorboard`` server's hparams routes (what the web page reads) list both runs (conftest's
``short_fits``) with their settings, framework among them, and their final metrics."""

from __future__ import annotations

import pytest

from cnn import schema
from cnn.hparams import HPARAMS_METRICS
from cnn.tools.events import read_scalars
from tests.servers import poll, post_json, tensorboard_server

SESSION_GROUPS_REQUEST = {
    "experimentName": "", "startIndex": 0, "sliceSize": 100,
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [{"hparam": "framework"}, *({"metric": {"tag": tag}} for tag in HPARAMS_METRICS)]}


def test_tensorboards_hparams_routes_list_both_frameworks_with_settings_and_final_metrics(short_fits):
    logs, runs = short_fits
    with tensorboard_server(logs) as server:
        base = f"{server}/data/plugin/hparams"
        groups = poll(lambda: post_json(f"{base}/session_groups", SESSION_GROUPS_REQUEST).get("sessionGroups", []),
                      lambda got: len(got) >= 2, seconds=60, empty=[])
        experiment = post_json(f"{base}/experiment", {"experimentName": ""})
    assert {info["name"] for info in experiment["hparamInfos"]} >= {"framework", "lr", "dropout", "num_classes",
                                                                     "seed"}
    assert [info["name"]["tag"] for info in experiment["metricInfos"]] == list(HPARAMS_METRICS)
    by_framework = {group["hparams"]["framework"]: group for group in groups}
    assert set(by_framework) == set(runs)
    for framework, run in runs.items():
        group = by_framework[framework]
        assert group["hparams"]["lr"] == pytest.approx(1e-4) and group["hparams"]["dropout"] == 0
        (session,) = group["sessions"]
        assert session["name"] == run.relative_to(logs).as_posix()
        assert session["status"] == "STATUS_SUCCESS"
        logged = read_scalars(run)
        values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        assert set(values) == {schema.VAL_ACC, schema.TEST_ACC, schema.TEST_LOSS}
        for tag, value in values.items():
            assert value == pytest.approx(logged[tag][-1].value), (framework, tag)
