"""Lightning's own tests, ported: every test takes ``pl`` and runs once on the MLX mirror and once on Lightning.

The Lightning run of each case checks the port of the test (Lightning 2.6.6 is pinned, so it changes only
when the ported tests do): it is marked ``slow``, and the default run holds the mirror to them.

``@pytest.mark.mirror_differs("why")`` marks a case where the mirror is known to differ from Lightning: on the
mirror it is a strict xfail (it fails the suite the day the mirror passes, so the mark goes), on Lightning it runs
as usual. Every such reason is listed in docs/mlx-lightning.md ("Lightning's tests the mirror does not pass").
"""

from __future__ import annotations

import pytest

from tests.lightning.frameworks import FRAMEWORKS


def pytest_configure(config):
    config.addinivalue_line("markers", "mirror_differs(reason): the MLX mirror is known to fail this Lightning "
                                       "test, for the reason given (a strict xfail on the mirror)")


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.slow) if name == "lightning" else name
                        for name in sorted(FRAMEWORKS)])
def pl(request):
    """The framework this case runs on (tests.lightning.frameworks): ``pl.name`` is "mirror" or "lightning"."""
    return FRAMEWORKS[request.param]()


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Lightning's tests create Trainers without ``default_root_dir``: their logs and checkpoints go to a
    folder of the test's own, never to the project's."""
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker("mirror_differs")
        callspec = getattr(item, "callspec", None)
        if marker is not None and callspec is not None and callspec.params.get("pl") == "mirror":
            item.add_marker(pytest.mark.xfail(reason=marker.args[0], strict=True))
