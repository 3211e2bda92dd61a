"""Range files (RRNG, RNG): m/n intervals -> ion species, and labelling of ions by them."""
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output
from .ifes import ifes_module, strict_call

UNRANGED = "unranged"
# ifes logs these for every well-formed file; they are not problems.
_HARMLESS = ("[Ions] section not found", "number_of_ranges=0")


@dataclass
class RangeTable:
    """Ranges sorted by lower bound. `ion_names[k]` is species k; `composition[k]` its atoms
    (element -> count; empty for custom names such as 'Cluster1')."""

    lo: np.ndarray
    hi: np.ndarray
    species: np.ndarray  # species index per range
    ion_names: list
    composition: list = field(default_factory=list)

    def index(self, name: str) -> int:
        """Species index of an ion name, with a clear error for names the file does not define."""
        return species_index(self.ion_names, name)

    def label(self, mq) -> np.ndarray:
        """Species index per ion (int16); -1 for ions outside every range."""
        mq = np.asarray(mq, dtype=np.float64)
        k = np.searchsorted(self.lo, mq, side="right") - 1
        inside = (k >= 0) & (mq < self.hi[np.clip(k, 0, None)])
        out = np.full(mq.shape, -1, dtype=np.int16)
        out[inside] = self.species[k[inside]]
        return out


def species_index(names: list, name: str) -> int:
    """Index of `name` in a range file's ion names; InputError listing the defined ones if absent."""
    if name not in names:
        raise InputError(None, f"species '{name}' is not in the range file (defined: {', '.join(names)})")
    return names.index(name)


def _ion_name(atoms_z, comment: str, symbols) -> tuple[str, dict]:
    """Name a (molecular) ion from its element list, keeping the order of the file: AlO, H2, Al."""
    comp: dict = {}
    for z in atoms_z:
        comp[symbols[z - 1]] = comp.get(symbols[z - 1], 0) + 1
    if not comp:
        if not comment:
            return "", {}
        return comment, {}
    return "".join(s if n == 1 else f"{s}{n}" for s, n in comp.items()), comp


def _build(path, entries) -> RangeTable:
    """entries: (lo, hi, name, composition). Checks order, emptiness and overlaps."""
    if not entries:
        raise InputError(path, "range file defines no ranges")
    entries.sort(key=lambda e: (e[0], e[1]))
    names, comps, idx = [], [], []
    for lo, hi, name, comp in entries:
        if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
            raise InputError(path, f"range {lo}-{hi} Da for {name} is empty or reversed")
        if not name:
            raise InputError(path, f"range {lo}-{hi} Da has no ion name or elements")
        if name not in names:
            names.append(name)
            comps.append(comp)
        idx.append(names.index(name))
    lo = np.array([e[0] for e in entries], dtype=np.float64)
    hi = np.array([e[1] for e in entries], dtype=np.float64)
    clash = np.flatnonzero(lo[1:] < hi[:-1])
    if clash.size:
        k = int(clash[0])
        raise InputError(path, f"overlapping ranges: {entries[k][2]} {lo[k]}-{hi[k]} Da and "
                               f"{entries[k + 1][2]} {lo[k + 1]}-{hi[k + 1]} Da")
    return RangeTable(lo, hi, np.array(idx, dtype=np.int16), names, comps)


def read_ranges(path) -> RangeTable:
    """Read an RRNG (AP Suite/IVAS) or RNG (Oak Ridge/3Depict) file."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in (".rrng", ".rng"):
        raise InputError(path, f"unknown range file extension '{ext or 'none'}' (supported: .rrng, .rng)")
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise InputError(path, "range file is empty")
    # The readers end by enumerating isotope combinations of every ion to guess its charge
    # state (up to a minute for a large file); labels need only elements and intervals.
    nx_ion = ifes_module("utils.nx_ion").NxIon
    combinatorics = nx_ion.apply_combinatorics
    nx_ion.apply_combinatorics = lambda self: None
    try:
        if ext == ".rrng":
            reader = strict_call(path, "RRNG", ifes_module("rrng.rrng_reader").ReadRrngFileFormat,
                                 str(path), ignore=_HARMLESS)
            mions = reader.rrng["molecular_ions"]
        else:
            reader = strict_call(path, "RNG", ifes_module("rng.rng_reader").ReadRngFileFormat,
                                 str(path), ignore=_HARMLESS)
            mions = reader.rng["molecular_ions"]
    finally:
        nx_ion.apply_combinatorics = combinatorics
    symbols = ifes_module("utils.molecular_ions").get_chemical_symbols()
    entries = []
    for m in mions:
        z = [int(h) & 0xFF for h in np.asarray(m.nuclide_hash) if int(h) != 0]
        name, comp = _ion_name(z, str(m.comment or "").strip(), symbols)
        for lo, hi in np.asarray(m.ranges.magnitude, dtype=np.float64).reshape(-1, 2):
            entries.append((float(lo), float(hi), name, comp))
    return _build(path, entries)


def write_rrng(path, table: RangeTable, overwrite: bool = True):
    """Write an RRNG file (AP Suite layout) atomically."""
    lines = ["[Ions]", f"Number={len(table.ion_names)}"]
    lines += [f"Ion{i + 1}={n}" for i, n in enumerate(table.ion_names)]
    lines += ["[Ranges]", f"Number={len(table.lo)}"]
    for r, (lo, hi, s) in enumerate(zip(table.lo, table.hi, table.species)):
        comp = table.composition[s] if table.composition else {}
        atoms = " ".join(f"{el}:{n}" for el, n in comp.items()) or f"Name:{table.ion_names[s]}"
        lines.append(f"Range{r + 1}={lo:.4f} {hi:.4f} Vol:0.01661 {atoms} Color:808080")
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
