"""Mirror of lightning.pytorch.utilities.parsing: ``save_hyperparameters``' collection of ``__init__`` arguments
along the class chain, and ``AttributeDict``."""

from __future__ import annotations

import inspect
import types
from dataclasses import fields, is_dataclass
from typing import Any, Optional, Sequence, Union


class AttributeDict(dict):
    """``dict`` with attribute access, used for ``hparams`` (Lightning's ``AttributeDict``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(f"Missing attribute {key!r}") from e

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError as e:
            raise AttributeError(f"Missing attribute {key!r}") from e


def parse_class_init_keys(cls: type) -> tuple[str, Optional[str], Optional[str]]:
    """The names ``cls.__init__`` gives ``self``, ``*args`` and ``**kwargs`` (``None`` for those it lacks)."""
    params = list(inspect.signature(cls.__init__).parameters.values())

    def first(kind: Any) -> Optional[str]:
        return next((p.name for p in params if p.kind == kind), None)

    return params[0].name, first(inspect.Parameter.VAR_POSITIONAL), first(inspect.Parameter.VAR_KEYWORD)


def _get_init_args(frame: types.FrameType) -> tuple[Optional[Any], dict[str, Any]]:
    """The object an ``__init__`` frame builds and the arguments of its signature (``**kwargs`` spread out)."""
    local_vars = frame.f_locals
    if "__class__" not in local_vars or frame.f_code.co_name != "__init__":
        return None, {}
    cls = local_vars["__class__"]
    init_parameters = inspect.signature(cls.__init__).parameters
    self_var, args_var, kwargs_var = parse_class_init_keys(cls)
    exclude = (*(n for n in (self_var, args_var, kwargs_var) if n), "__class__", "frame", "frame_args")
    local_args = {k: local_vars[k] for k in init_parameters if k in local_vars}
    if kwargs_var:
        local_args.update(local_args.get(kwargs_var, {}))
    local_args = {k: v for k, v in local_args.items() if k not in exclude}
    return local_vars.get(self_var), local_args


def collect_init_args(frame: types.FrameType, path_args: list[dict[str, Any]], inside: bool = False,
                      classes: tuple[type, ...] = ()) -> list[dict[str, Any]]:
    """The arguments of each ``__init__`` of the class chain on the stack from ``frame`` up (of objects of
    ``classes``), the most specific class's last; a constructor of another object (composition) ends it."""
    while isinstance(frame.f_back, types.FrameType):
        local_self, local_args = _get_init_args(frame)
        if "__class__" in frame.f_locals and (not classes or isinstance(local_self, classes)):
            path_args.append(local_args)
            frame, inside = frame.f_back, True
        elif not inside:
            frame = frame.f_back
        else:
            break
    return path_args


def save_hyperparameters(obj: Any, *args: Any, ignore: Optional[Union[Sequence[str], str]] = None,
                         frame: Optional[types.FrameType] = None, mixin: type = object) -> Optional[tuple]:
    """Lightning's ``save_hyperparameters``: see :meth:`HyperparametersMixin.save_hyperparameters`, which records
    what this returns: ``(hyper-parameters, the argument name they came in, the names to ignore)``, or ``None`` for
    an empty container. ``mixin`` is that class, whose subclasses' ``__init__`` frames hold the arguments (passed
    in: it imports this module)."""
    if len(args) == 1 and not isinstance(args, str) and not args[0]:
        return None  # an empty container
    if not frame:
        current = inspect.currentframe()
        frame = current.f_back if current else None
    if not isinstance(frame, types.FrameType):
        raise AttributeError("There is no `frame` available while being required.")

    if is_dataclass(obj):
        init_args = {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}
    else:
        init_args = {}
        for local_args in collect_init_args(frame, [], classes=(mixin,)):
            init_args.update(local_args)

    if ignore is None:
        ignore = []
    elif isinstance(ignore, str):
        ignore = [ignore]
    elif isinstance(ignore, (list, tuple)):
        ignore = [arg for arg in ignore if isinstance(arg, str)]
    ignore = list(set(ignore))
    init_args = {k: v for k, v in init_args.items() if k not in ignore}

    if not args:  # every argument
        hp: Any = init_args
        name = "kwargs" if hp else None
    else:
        non_str = [i for i, arg in enumerate(args) if not isinstance(arg, str)]
        if len(non_str) == 1:  # one container: its name is the argument that passed it
            hp = args[non_str[0]]
            candidates = [k for k, v in init_args.items() if v is hp or _equal(v, hp)]
            name = candidates[0] if candidates else None
        else:
            hp = {arg: init_args[arg] for arg in args if isinstance(arg, str)}
            name = "kwargs"
    return hp, name, ignore


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and other values without a truth value
        return False

