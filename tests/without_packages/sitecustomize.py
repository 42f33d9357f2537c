"""Started with this folder on PYTHONPATH, python cannot import the packages named in
``CNN_TEST_WITHOUT`` (comma-separated), as if they were not installed: how the tests see the
one-line error a user without an optional extra gets, on a machine that has the extra."""

import os
import sys

_ABSENT = {name for name in os.environ.get("CNN_TEST_WITHOUT", "").split(",") if name}


class _NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in _ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
