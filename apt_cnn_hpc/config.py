"""YAML configuration: where the shipped defaults live, loading, merging and validation helpers."""
import copy
import os
import sys
from dataclasses import dataclass
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


def assign(cfg: dict, assignments, where: str = "--set") -> dict:
    """A copy of `cfg` with KEY.SUBKEY=VALUE assignments applied (VALUE read as YAML)."""
    out = copy.deepcopy(cfg)
    for text in assignments or ():
        key, sep, value = str(text).partition("=")
        path = [k for k in key.strip().split(".") if k]
        if not sep or not path:
            raise InputError(where, f"expected KEY.SUBKEY=VALUE, got '{text}'")
        node = out
        for k in path[:-1]:
            if not isinstance(node.get(k), dict):
                raise InputError(where, f"'{key}' does not name a setting (no section '{k}')")
            node = node[k]
        try:
            node[path[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(where, f"cannot read the value of '{text}'") from None
    return out


@dataclass
class SegmentConfig:
    """configs/segment.yaml + a user YAML + --set assignments, checked: which methods run with which
    parameters (each method checks its own), which one is the default."""
    default: str
    methods: dict              # method name -> parameters
    uncertain_sigmas: float
    phase_sdm: dict
    where: str

    @classmethod
    def load(cls, path=None, assignments=()) -> "SegmentConfig":
        cfg = assign(load_config("segment", path), assignments)
        where = cfg.pop("_source", "configs/segment.yaml")
        if not isinstance(cfg.get("methods"), dict) or not cfg["methods"]:
            raise InputError(where, "'methods' must map method names to their parameters")
        default = str(cfg.get("default", ""))
        if default not in cfg["methods"]:
            raise InputError(where, f"default method '{default}' is not among the methods {list(cfg['methods'])}")
        ps = dict(cfg.get("phase_sdm") or {})
        positive(ps, "max_references", where)
        return cls(default, {k: dict(v or {}) for k, v in cfg["methods"].items()},
                   positive(cfg, "uncertain_sigmas", where), ps, where)

    def to_dict(self) -> dict:
        return {"default": self.default, "methods": self.methods, "uncertain_sigmas": self.uncertain_sigmas,
                "phase_sdm": self.phase_sdm}
