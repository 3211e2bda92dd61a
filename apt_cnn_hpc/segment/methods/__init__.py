"""Recognition methods: one class per method in one registry (methods.base.REGISTRY).

Every module of this package is imported here, so a new method is one new file: a subclass of
`Method` decorated with `@register`, with its parameters in `__init__` and one `run(data)`
returning a `MethodResult`; its defaults go under `methods:` in configs/segment.yaml.
"""
import importlib
import pkgutil

from .base import REGISTRY, Method, MethodResult, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY", "Method", "MethodResult", "register"]
