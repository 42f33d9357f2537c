"""Mirror of lightning.pytorch.utilities.signature_utils: whether a hook's signature takes an argument."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional


def is_param_in_hook_signature(hook_fx: Callable[..., Any], param: str, explicit: bool = False,
                               min_args: Optional[int] = None) -> bool:
    """Lightning's ``is_param_in_hook_signature``: ``hook_fx`` takes ``param`` by name, or ``*args`` (unless
    ``explicit``), or at least ``min_args`` positional arguments (``self`` not counted for a bound method)."""
    hook_fx = getattr(hook_fx, "__wrapped__", hook_fx)
    try:
        parameters = inspect.getfullargspec(hook_fx)
    except TypeError:  # a builtin or a callable without a signature: assume it takes everything
        return True
    args = parameters.args[1:] if inspect.ismethod(hook_fx) else parameters.args
    return (param in args or (not explicit and parameters.varargs is not None)
            or (min_args is not None and len(args) >= min_args))
