"""YAML configuration: where the shipped defaults live, loading, merging and validation helpers."""
import copy
import os
import sys
from pathlib import Path

import yaml

from .errors import InputError


def config_dir() -> Path:
    """The shipped `configs/` folder: $APT_CNN_CONFIG_DIR, the source tree, or the install prefix."""
    candidates = [os.environ.get("APT_CNN_CONFIG_DIR"),
                  Path(__file__).resolve().parent.parent / "configs",
                  Path(sys.prefix) / "share" / "apt-cnn-hpc" / "configs"]
    for c in candidates:
        if c and (Path(c) / "specimen.yaml").is_file():
            return Path(c)
    raise InputError(None, "cannot find the shipped configs/ folder; set APT_CNN_CONFIG_DIR")


def load_yaml(path) -> dict:
    """Read a YAML mapping with a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(path, f"invalid YAML{where}") from None
    if not isinstance(data, dict):
        raise InputError(path, "YAML file must hold a mapping of settings")
    return data


def merge(base: dict, override: dict | None) -> dict:
    """Deep-merge `override` into a copy of `base` (user configs only name what they change)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(stage: str, user_path=None) -> dict:
    """The shipped defaults for a stage, overridden by a user YAML file if given."""
    cfg = load_yaml(config_dir() / f"{stage}.yaml")
    if user_path:
        cfg = merge(cfg, load_yaml(user_path))
        cfg["_source"] = str(user_path)
    return cfg


def positive(cfg: dict, key: str, where: str = "config", allow_zero: bool = False) -> float:
    """A number that must be > 0 (or >= 0), with an error naming the setting."""
    try:
        v = float(cfg[key])
    except (KeyError, TypeError, ValueError):
        raise InputError(where, f"setting '{key}' must be a number") from None
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(where, f"setting '{key}' must be {'>= 0' if allow_zero else '> 0'}, got {v}")
    return v


def value_range(cfg: dict, key: str, where: str = "config", lo=None, hi=None) -> tuple:
    """A [min, max] pair within optional bounds."""
    try:
        a, b = (float(x) for x in cfg[key])
    except (KeyError, TypeError, ValueError):
        raise InputError(where, f"setting '{key}' must be a [min, max] pair") from None
    if a > b or (lo is not None and a < lo) or (hi is not None and b > hi):
        raise InputError(where, f"setting '{key}' = [{a}, {b}] must be ordered and within "
                                f"[{lo}, {hi}]")
    return a, b
