"""The shape every recognition method has (after MDAnalysis's AnalysisBase): parameters in
`__init__`, checked there; one `run(data)` on a scan (segment.inputs.ScanData) returning a
`MethodResult`; documented results. The segmentation stage turns any result into the same
per-ion contract and precipitate table (contracts/segmentation.py)."""
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...errors import InputError

REGISTRY: dict = {}


@dataclass
class MethodResult:
    ion_precipitate_id: np.ndarray                 # int32 [n_ions]: 0 matrix, k >= 1, -1 undetermined
    voxel_label: np.ndarray | None = None          # int32 grid, for methods that label voxels
    ion_probability: np.ndarray | None = None      # float32 [n_ions] calibrated P(L1_2)
    voxel_probability: np.ndarray | None = None    # float32 grid, L1_2 fraction of each voxel
    details: dict = field(default_factory=dict)    # what the run chose from the data (e.g. a threshold),
                                                   # recorded beside the parameters

    def __post_init__(self):
        self.ion_precipitate_id = np.asarray(self.ion_precipitate_id, np.int32)


class Method:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""          # one line for logs, legends and the report
    colour: ClassVar[str] = "tab:grey"

    def __init__(self, **params):
        self.params = params

    @classmethod
    def from_config(cls, params: dict, where="segment config") -> "Method":
        """The method with `params` from configs/segment.yaml (+ overrides); one-line errors."""
        try:
            return cls(**(params or {}))
        except TypeError as exc:
            raise InputError(where, f"method '{cls.name}': {exc}") from None
        except (ValueError, InputError) as exc:
            problem = exc.problem if isinstance(exc, InputError) else str(exc)
            raise InputError(where, f"method '{cls.name}': {problem}") from None

    def unavailable(self, data) -> str | None:
        """Why this method cannot run on `data` (None: it can); a segmentation of every method
        skips it with this reason, one asked for by name fails with it."""
        return None

    def run(self, data) -> MethodResult:
        raise NotImplementedError


def register(cls):
    """Class decorator: add a method to the registry under its `name`."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"recognition method name {cls.name!r} missing or taken")
    REGISTRY[cls.name] = cls
    return cls


def number(value, name: str, lo=None, hi=None, integer=False) -> float:
    """A parameter that must be a number within [lo, hi] (ValueError naming it otherwise)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi) or (integer and v != int(v)):
        raise ValueError(f"{name} must be {'a whole number ' if integer else ''}in [{lo}, {hi}], got {value!r}")
    return int(v) if integer else v
