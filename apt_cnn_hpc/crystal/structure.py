"""A crystal structure: cubic cell, basis sites grouped into sublattices, species occupancies.

Adding an ordered structure (L1_0, B2, D0_22, ...) is a YAML file in configs/structures/.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import config_dir, load_yaml
from ..errors import InputError


@dataclass
class Structure:
    name: str
    a_nm: float
    sites: np.ndarray          # [n_sites, 3] fractional coordinates in the cubic cell
    sublattice: np.ndarray     # [n_sites] sublattice index of each site
    occupancy: list            # per sublattice: dict species -> probability (sums to 1)
    variants: np.ndarray = field(default_factory=lambda: np.zeros((1, 3)))

    @property
    def species(self) -> list:
        """Every species that can occur, in a stable order."""
        out = []
        for occ in self.occupancy:
            out += [s for s in occ if s not in out]
        return out

    def composition(self) -> dict:
        """Expected atomic fractions."""
        comp = {s: 0.0 for s in self.species}
        for k, occ in enumerate(self.occupancy):
            w = np.count_nonzero(self.sublattice == k) / len(self.sites)
            for s, p in occ.items():
                comp[s] += w * p
        return comp

    def with_occupancy(self, occupancy: list, name: str | None = None) -> "Structure":
        """The same lattice with other occupancies (random solute, same-composition order)."""
        return Structure(name or self.name, self.a_nm, self.sites, self.sublattice,
                         [_check_occ(dict(o), self.name) for o in occupancy], self.variants)

    def site_sublattice(self, frac: np.ndarray, variant: int = 0) -> np.ndarray:
        """Sublattice index of parent-lattice sites given by fractional coordinates, after shifting
        by a translational variant; -1 where a site is not a site of this structure."""
        rel = np.mod(frac - self.variants[variant] + 1e-6, 1.0) - 1e-6
        out = np.full(len(frac), -1, dtype=np.int16)
        for s, pos in enumerate(self.sites):
            hit = np.all(np.abs(rel - pos) < 1e-4, axis=1)
            out[hit] = self.sublattice[s]
        return out


def _check_occ(occ: dict, where) -> dict:
    if not occ or any((not isinstance(p, (int, float))) or p < 0 for p in occ.values()):
        raise InputError(where, f"occupancy {occ} must map species to probabilities >= 0")
    total = sum(occ.values())
    if abs(total - 1.0) > 1e-6:
        raise InputError(where, f"occupancy {occ} sums to {total:.4f}, not 1")
    return {str(k): float(v) for k, v in occ.items()}


def structure_from_dict(d: dict, where) -> Structure:
    try:
        a = float(d["lattice_constant_nm"])
        subl = d["sublattices"]
        sites, idx, occ = [], [], []
        for k, sl in enumerate(subl):
            for s in sl["sites"]:
                sites.append([float(x) for x in s])
                idx.append(k)
            occ.append(_check_occ(dict(sl["occupancy"]), where))
        variants = np.array(d.get("variants", [[0, 0, 0]]), dtype=float).reshape(-1, 3)
        name = str(d.get("name", Path(str(where)).stem))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(where, f"structure definition incomplete or malformed ({exc})") from None
    if a <= 0:
        raise InputError(where, f"lattice_constant_nm must be > 0, got {a}")
    sites = np.array(sites, dtype=float)
    if sites.ndim != 2 or sites.shape[1] != 3 or np.any((sites < 0) | (sites >= 1)):
        raise InputError(where, "sites must be fractional [x, y, z] triples in [0, 1)")
    return Structure(name, a, sites, np.array(idx, dtype=np.int16), occ, variants)


def load_structure(name_or_path) -> Structure:
    """A structure by file path or by the stem of a shipped file (e.g. 'l12_al3limg')."""
    p = Path(str(name_or_path))
    if not p.suffix:
        p = config_dir() / "structures" / f"{name_or_path}.yaml"
        if not p.is_file():
            known = sorted(q.stem for q in (config_dir() / "structures").glob("*.yaml"))
            raise InputError(None, f"unknown structure '{name_or_path}' (shipped: {', '.join(known)})")
    return structure_from_dict(load_yaml(p), p)
