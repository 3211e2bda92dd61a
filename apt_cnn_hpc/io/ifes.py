"""Calls into ifes-apt-tc-data-modeling, made strict.

The library logs a warning and returns None (or skips a line) where we need an error, and on
import it points the root logger at a file in the working directory unless logging is already
configured. Here every warning and exception it produces becomes an `InputError` naming the file.
"""
import importlib
import logging

from ..errors import InputError


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def ifes_module(name: str):
    """Import an ifes submodule without letting it configure the root logger."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    return importlib.import_module(f"ifes_apt_tc_data_modeling.{name}")


def strict_call(path, what: str, fn, *args, ignore=()):
    """Run fn(*args); a raised exception, a None result or a logged warning becomes InputError.

    `ignore` lists substrings of warnings that are harmless (informational) for this call.
    """
    logger = logging.getLogger("ifes-apt-tc-data-modeling")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        result = fn(*args)
    except InputError:
        raise
    except Exception as exc:  # the library raises bare ValueError/IndexError/ImportError...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"cannot read {what}: {text}") from None
    finally:
        logger.removeHandler(collect)
    bad = [m for m in collect.messages if not any(s in m for s in ignore)]
    if bad:
        raise InputError(path, f"cannot read {what}: {bad[0].strip()}")
    if result is None:
        raise InputError(path, f"cannot read {what}")
    return result
