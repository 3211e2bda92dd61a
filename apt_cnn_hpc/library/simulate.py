"""Generate the dictionary: one simulated crystal block per map, histogrammed like a scan cube.

Map i draws its parameters from its own random stream (seed, i), so the file is the same for any
number of ranks. Schema (DICTIONARY.h5):
  /maps            uint8 [N, bins, bins]   zx-SDM [dz, dx], scaled by sdm.normalise.to_uint8
  /labels          uint8 [N]               0 = FCC, 1 = L1_2
Kinds, in this order: fcc, l12, then mixed (an FCC cube cut by an L1_2 sphere, labelled L1_2
when at least `mixed.l12_threshold` of its reference atoms lie in the sphere, FCC when at most
`mixed.fcc_below`; the sphere is redrawn for shares in between). This shapes the response of the
CNN to partly covered cubes, which decides how well the scan sees boundaries.
  /params/<name>   float32 [N]             every generation parameter of each map
  attrs: schema, library_config (JSON), sdm_settings (JSON); /provenance
"""
import json
import logging

import h5py
import numpy as np

from ..config import value_range
from ..crystal import load_structure
from ..crystal.block import BlockParams, Inclusion, simulate_block
from ..errors import InputError
from ..fileutil import atomic_output
from ..parallel import is_root, progress
from ..parallel.mpi import collective
from ..provenance import provenance, write_h5_provenance
from ..sdm import PartnerIndex, SDMSettings
from ..sdm.normalise import to_uint8

log = logging.getLogger(__name__)
LABELS = {"fcc": 0, "l12": 1}
KINDS = ("fcc", "l12", "mixed")
PARAMS = ("sigma_xy_nm", "sigma_z_nm", "efficiency", "azimuth_deg", "rotation_deg",
          "solute_li", "solute_mg", "corner_al", "n_reference", "n_pairs", "l12_fraction")
SCHEMA = "apt-cnn-hpc/dictionary/1"


class LibrarySpec:
    """The validated library config: counts, structures and parameter ranges."""

    def __init__(self, cfg: dict, where="library config"):
        self.cfg = cfg
        try:
            self.seed = int(cfg["seed"])
            self.counts = {k: int(cfg["counts"].get(k, 0)) for k in KINDS}
            self.structures = {k: load_structure(cfg["structures"][k]) for k in LABELS}
            self.pole = tuple(cfg.get("pole", (0, 1, 1)))
            self.x_direction = tuple(cfg.get("x_direction", (1, 0, 0)))
            self.azimuth = value_range(cfg, "azimuth_deg", where)
            self.rotation = value_range(cfg, "rotation_deg", where, -45, 45)
            self.efficiency = value_range(cfg, "efficiency", where, 0.01, 1.0)
            self.sigma_xy = {k: value_range(cfg["sigma_xy_nm"], k, where, 0) for k in LABELS}
            self.sigma_z = {k: value_range(cfg["sigma_z_nm"], k, where, 0) for k in LABELS}
            self.solute = {el: value_range(cfg["fcc_solute_at_pct"], el, where, 0, 50)
                           for el in cfg["fcc_solute_at_pct"]}
            self.corner_al = value_range(cfg, "l12_corner_al", where, 0, 1)
            self.chunk = max(1, int(cfg.get("chunk", 64)))
            mixed = cfg.get("mixed", {})
            self.mixed_threshold = float(mixed.get("l12_threshold", 0.02))
            self.mixed_fcc_below = float(mixed.get("fcc_below", 0.0))
            self.mixed_radius = value_range(mixed, "radius_nm", where, 0.1) if mixed else (0.5, 4.0)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(where, f"missing or malformed setting {exc}") from None
        if any(v < 0 for v in self.counts.values()) or sum(self.counts.values()) == 0:
            raise InputError(where, f"counts must be >= 0 and not all zero, got {self.counts}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def kind_of(self, i: int) -> str:
        edge = 0
        for k in KINDS:
            edge += self.counts[k]
            if i < edge:
                return k
        raise IndexError(i)


def _fcc_with_solute(spec: LibrarySpec, rng, p: dict):
    """FCC with a random solid-solution composition (any composition reads as FCC)."""
    st = spec.structures["fcc"]
    base = next(iter(st.occupancy[-1]))
    occ = {el: float(rng.uniform(*r)) / 100 for el, r in spec.solute.items()}
    p["solute_li"], p["solute_mg"] = occ.get("Li", 0.0), occ.get("Mg", 0.0)
    occ[base] = 1 - sum(occ.values())
    return st.with_occupancy([occ] * len(st.occupancy))


def _partly_ordered_l12(spec: LibrarySpec, rng, p: dict):
    """L1_2 with a share of its ordered (minority) sublattice taken by the solvent."""
    st = spec.structures["l12"]
    base = next(iter(st.occupancy[-1]))
    p["corner_al"] = float(rng.uniform(*spec.corner_al))
    occ = []
    for o in st.occupancy:
        if o.get(base, 0) < 0.5:  # the ordered sublattice
            solute = {k: v for k, v in o.items() if k != base}
            tot = sum(solute.values())
            o = {k: v / tot * (1 - p["corner_al"]) for k, v in solute.items()}
            o[base] = p["corner_al"]
        occ.append(o)
    return st.with_occupancy(occ)


def simulate_map(spec: LibrarySpec, settings: SDMSettings, i: int):
    """Map i of the dictionary: (uint8 map [bins, bins], label, params dict)."""
    rng = np.random.default_rng([spec.seed, i])
    kind = spec.kind_of(i)
    u = lambda lohi: float(rng.uniform(*lohi))  # noqa: E731
    sz = spec.sigma_z[kind] if kind != "mixed" else (min(spec.sigma_z["fcc"][0], spec.sigma_z["l12"][0]),
                                                     max(spec.sigma_z["fcc"][1], spec.sigma_z["l12"][1]))
    sxy = spec.sigma_xy["fcc" if kind == "mixed" else kind]
    p = {"sigma_xy_nm": u(sxy), "sigma_z_nm": u(sz), "efficiency": u(spec.efficiency),
         "azimuth_deg": u(spec.azimuth), "rotation_deg": u(spec.rotation), "solute_li": 0.0,
         "solute_mg": 0.0, "corner_al": 0.0}
    half_cube = settings.cube_nm / 2
    bp = BlockParams(p["sigma_xy_nm"], p["sigma_z_nm"], p["efficiency"], p["azimuth_deg"],
                     p["rotation_deg"], spec.pole, spec.x_direction)
    if kind == "fcc":
        zx, n_ref, _ = _block_map(_fcc_with_solute(spec, rng, p), bp, None, settings, rng)
        p["l12_fraction"], label = 0.0, LABELS["fcc"]
    elif kind == "l12":
        zx, n_ref, _ = _block_map(_partly_ordered_l12(spec, rng, p), bp, None, settings, rng)
        p["l12_fraction"], label = 1.0, LABELS["l12"]
    else:
        st = _fcc_with_solute(spec, rng, p)
        ordered = _partly_ordered_l12(spec, rng, p)
        for _ in range(50):  # redraw the sphere until the cube is clearly one class or the other
            r = u(spec.mixed_radius)
            centre = rng.uniform(-half_cube - r * 0.8, half_cube + r * 0.8, 3)
            inc = Inclusion(ordered, centre, r, int(rng.integers(len(ordered.variants))))
            zx, n_ref, frac = _block_map(st, bp, inc, settings, rng)
            if not spec.mixed_fcc_below < frac < spec.mixed_threshold:
                break
        p["l12_fraction"] = frac
        label = int(frac >= spec.mixed_threshold)
    p["n_reference"] = float(n_ref)
    p["n_pairs"] = float(zx.sum())
    return to_uint8(zx), label, p


def _block_map(st, bp: BlockParams, inclusion, settings: SDMSettings, rng):
    """zx-SDM counts of the central cube of a simulated block, its reference count and the share
    of its references inside the inclusion."""
    half_cube = settings.cube_nm / 2
    pos, species, names, in_inc = simulate_block(st, bp, half_cube + settings.neighbour_radius_nm,
                                                 rng, inclusion)
    ref_name, part_name = settings.pair
    ids = np.arange(len(pos))
    is_part = species == names.index(part_name)
    is_ref = (species == names.index(ref_name)) & np.all(np.abs(pos) < half_cube, axis=1)
    index = PartnerIndex(pos[is_part], ids[is_part], settings)
    zx, _ = index.histograms(pos[is_ref], ids[is_ref], np.zeros(int(is_ref.sum()), np.int64), 1)
    frac = float(in_inc[is_ref].mean()) if is_ref.any() else 0.0
    return zx[0], int(is_ref.sum()), frac


def simulate_dictionary(cfg: dict, settings: SDMSettings, out, comm=None, overwrite=True):
    """Write the dictionary to `out`; every rank computes a share, rank 0 writes."""
    spec = collective(comm, LibrarySpec, cfg) if comm is not None else LibrarySpec(cfg)
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    n, b = spec.total, settings.map_bins
    block = spec.chunk * size
    bar = progress(n, "simulate", comm, unit="map")

    def produce(f):
        for start in range(0, n, block):
            mine = range(start + rank, min(start + block, n), size)
            local = [(i,) + simulate_map(spec, settings, i) for i in mine]
            gathered = comm.gather(local, root=0) if comm is not None else [local]
            if f is not None:
                for i, img, lab, p in (x for part in gathered for x in part):
                    f["maps"][i] = img
                    f["labels"][i] = lab
                    for k in PARAMS:
                        f["params"][k][i] = p[k]
            bar.update(min(block, n - start))

    if is_root(comm):
        with atomic_output(out, overwrite) as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("maps", (n, b, b), dtype=np.uint8, chunks=(min(32, n), b, b),
                                 compression="lzf")
                f.create_dataset("labels", (n,), dtype=np.uint8)
                g = f.create_group("params")
                for k in PARAMS:
                    g.create_dataset(k, (n,), dtype=np.float32)
                f.attrs["schema"] = SCHEMA
                f.attrs["library_config"] = json.dumps(cfg)
                f.attrs["sdm_settings"] = json.dumps(settings.to_dict())
                produce(f)
                write_h5_provenance(f, provenance({"library": cfg, "sdm": settings.to_dict()},
                                                  n_ranks=size))
    else:
        produce(None)
    bar.close()
    log.info("rank %d: simulated %d of %d maps", rank, len(range(rank, n, size)), n)
