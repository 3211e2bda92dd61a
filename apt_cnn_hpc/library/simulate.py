"""Generate the dictionary: one simulated crystal block per map, histogrammed like a scan cube.

Map i draws its parameters from its own random stream (seed, i), so the file is the same for any
number of ranks; the file's layout is contracts/dictionary.py.

Kinds, in this order: fcc, l12, then mixed (an FCC cube cut by an L1_2 sphere). With
`mixed.target: share` (the default library) a mixed map's target is the share of its reference
atoms inside the sphere, so a model trained on it predicts that share: a calibrated probability
that a reference ion drawn from the cube is in L1_2. With `target: threshold` (the Table 1
config) it is labelled L1_2 when at least `mixed.l12_threshold` of its references lie in the
sphere, FCC when at most `mixed.fcc_below`; the sphere is redrawn for shares in between.
Acquisition parameters (efficiency, resolution, tilt, depth scale, background, interface
magnification) are drawn from ranges that may differ per class only when the config says so
(the paper's Table 1 does for sigma_z: a shortcut a model learns, see docs/accuracy.md).
"""
import logging

import numpy as np

from ..config import value_range
from ..crystal import load_structure
from ..crystal.block import BlockParams, Inclusion, simulate_block
from ..crystal.detector import Instrument
from ..errors import InputError
from ..contracts.dictionary import dictionary_writer
from ..parallel import is_root, progress
from ..parallel.mpi import collective
from ..provenance import provenance
from ..sdm import PartnerIndex, SDMSettings
from ..sdm.normalise import to_uint8

log = logging.getLogger(__name__)
LABELS = {"fcc": 0, "l12": 1}
KINDS = ("fcc", "l12", "mixed")
# instrument artefacts beyond the paper's: absent from a config = the value in brackets
EXTRA_ACQUISITION = {"pole_tilt_deg": 0.0, "pole_tilt_azimuth_deg": 0.0, "z_scale": 1.0,
                     "background_fraction": 0.0, "interface_magnification": 1.0}
PARAMS = ("sigma_xy_nm", "sigma_z_nm", "efficiency", "azimuth_deg", "rotation_deg",
          "solute_li", "solute_mg", "corner_al", "n_reference", "n_pairs", "l12_fraction", "spheres",
          *EXTRA_ACQUISITION)


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
            self.sigma_xy = _per_class(cfg, "sigma_xy_nm", where)
            self.sigma_z = _per_class(cfg, "sigma_z_nm", where)
            self.extra = {k: value_range(cfg, k, where) if k in cfg else (v, v)
                          for k, v in EXTRA_ACQUISITION.items()}
            self.solute = {el: value_range(cfg["fcc_solute_at_pct"], el, where, 0, 50)
                           for el in cfg["fcc_solute_at_pct"]}
            self.corner_al = value_range(cfg, "l12_corner_al", where, 0, 1)
            self.chunk = max(1, int(cfg.get("chunk", 64)))
            mixed = cfg.get("mixed", {})
            self.mixed_threshold = float(mixed.get("l12_threshold", 0.02))
            self.mixed_fcc_below = float(mixed.get("fcc_below", 0.0))
            self.mixed_radius = value_range(mixed, "radius_nm", where, 0.1) if mixed else (0.5, 4.0)
            self.mixed_target = str(mixed.get("target", "threshold"))
            self.mixed_spheres = tuple(int(v) for v in mixed.get("spheres", (1, 1)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(where, f"missing or malformed setting {exc}") from None
        if any(v < 0 for v in self.counts.values()) or sum(self.counts.values()) == 0:
            raise InputError(where, f"counts must be >= 0 and not all zero, got {self.counts}")
        if len(self.mixed_spheres) != 2 or not 1 <= self.mixed_spheres[0] <= self.mixed_spheres[1]:
            raise InputError(where, f"mixed.spheres must be [min, max] with 1 <= min <= max, got {self.mixed_spheres}")
        if self.mixed_target not in ("share", "threshold"):
            raise InputError(where, f"mixed.target must be 'share' or 'threshold', got '{self.mixed_target}'")
        Instrument(**{k: hi for k, (lo, hi) in self.extra.items()}).check(where)
        Instrument(**{k: lo for k, (lo, hi) in self.extra.items()}).check(where)

    @property
    def class_independent(self) -> bool:
        """Every acquisition range the same for FCC and L1_2 (no shortcut for a model to learn)."""
        return self.sigma_xy["fcc"] == self.sigma_xy["l12"] and self.sigma_z["fcc"] == self.sigma_z["l12"]

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


def _per_class(cfg: dict, key: str, where) -> dict:
    """A [min, max] range for both classes, or {fcc: [..], l12: [..]} (the paper's Table 1)."""
    v = cfg.get(key)
    if isinstance(v, dict):
        return {k: value_range(v, k, where, 0) for k in LABELS}
    r = value_range(cfg, key, where, 0)
    return {k: r for k in LABELS}


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
    """Map i of the dictionary: (uint8 map [bins, bins], label, target, params dict)."""
    rng = np.random.default_rng([spec.seed, i])
    # the artefacts beyond Table 1 come from a stream of their own, so a config without them
    # makes exactly the maps it made before they existed
    extra_rng = np.random.default_rng([spec.seed, i, 1])
    kind = spec.kind_of(i)
    u = lambda lohi: float(rng.uniform(*lohi))  # noqa: E731
    sz = spec.sigma_z[kind] if kind != "mixed" else (min(spec.sigma_z["fcc"][0], spec.sigma_z["l12"][0]),
                                                     max(spec.sigma_z["fcc"][1], spec.sigma_z["l12"][1]))
    sxy = spec.sigma_xy["fcc" if kind == "mixed" else kind]
    p = {"sigma_xy_nm": u(sxy), "sigma_z_nm": u(sz), "efficiency": u(spec.efficiency),
         "azimuth_deg": u(spec.azimuth), "rotation_deg": u(spec.rotation), "solute_li": 0.0,
         "solute_mg": 0.0, "corner_al": 0.0, "spheres": 0.0}
    p.update({k: float(extra_rng.uniform(lo, hi)) for k, (lo, hi) in spec.extra.items()})
    if kind != "mixed":
        p["interface_magnification"] = 1.0     # no interface in a pure map
    half_cube = settings.cube_nm / 2
    inst = Instrument(**{k: p[k] for k in ("efficiency", "sigma_xy_nm", "sigma_z_nm", *EXTRA_ACQUISITION)})
    bp = BlockParams(inst, p["azimuth_deg"], p["rotation_deg"], spec.pole, spec.x_direction)
    if kind == "fcc":
        zx, n_ref, _ = _block_map(_fcc_with_solute(spec, rng, p), bp, [], settings, rng)
        p["l12_fraction"], label = 0.0, LABELS["fcc"]
    elif kind == "l12":
        zx, n_ref, _ = _block_map(_partly_ordered_l12(spec, rng, p), bp, [], settings, rng)
        p["l12_fraction"], label = 1.0, LABELS["l12"]
    else:
        st = _fcc_with_solute(spec, rng, p)
        ordered = _partly_ordered_l12(spec, rng, p)
        n_spheres = int(extra_rng.integers(spec.mixed_spheres[0], spec.mixed_spheres[1] + 1))
        for _ in range(50):  # threshold target: redraw until the cube is clearly one class or the other
            spheres = [_sphere(spec, ordered, rng, half_cube)]
            for _ in range(n_spheres - 1):   # dense precipitation: neighbours in other variants
                spheres += _apart(_sphere(spec, ordered, rng, half_cube), spheres)
            zx, n_ref, frac = _block_map(st, bp, spheres, settings, rng)
            if spec.mixed_target == "share" or not spec.mixed_fcc_below < frac < spec.mixed_threshold:
                break
        p["spheres"] = float(len(spheres))
        p["l12_fraction"] = frac
        label = int(frac >= (0.5 if spec.mixed_target == "share" else spec.mixed_threshold))
    p["n_reference"] = float(n_ref)
    p["n_pairs"] = float(zx.sum())
    target = p["l12_fraction"] if kind == "mixed" and spec.mixed_target == "share" else float(label)
    return to_uint8(zx), label, target, p


def _sphere(spec: LibrarySpec, ordered, rng, half_cube: float) -> Inclusion:
    """An L1_2 sphere that may cut the cube: radius from the config, centre anywhere it still
    reaches into the cube, a random translational variant."""
    r = float(rng.uniform(*spec.mixed_radius))
    centre = rng.uniform(-half_cube - r * 0.8, half_cube + r * 0.8, 3)
    return Inclusion(ordered, centre, r, int(rng.integers(len(ordered.variants))))


def _apart(sphere: Inclusion, placed: list, gap_nm: float = 0.3) -> list:
    """[sphere] when it keeps `gap_nm` from every placed sphere's surface, else []."""
    far = all(np.linalg.norm(sphere.centre_nm - q.centre_nm) >= sphere.radius_nm + q.radius_nm + gap_nm
              for q in placed)
    return [sphere] if far else []


def _block_map(st, bp: BlockParams, inclusions: list, settings: SDMSettings, rng):
    """zx-SDM counts of the central cube of a simulated block, its reference count and the share
    of its references inside the inclusions."""
    half_cube = settings.cube_nm / 2
    pos, species, names, in_inc = simulate_block(st, bp, half_cube + settings.neighbour_radius_nm,
                                                 rng, inclusions)
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
    n = spec.total
    block = spec.chunk * size
    bar = progress(n, "simulate", comm, unit="map")

    def produce(write):
        for start in range(0, n, block):
            mine = range(start + rank, min(start + block, n), size)
            local = [(i,) + simulate_map(spec, settings, i) for i in mine]
            gathered = comm.gather(local, root=0) if comm is not None else [local]
            if write is not None:
                for row in (x for part in gathered for x in part):
                    write(*row)
            bar.update(min(block, n - start))

    if is_root(comm):
        record = provenance({"library": cfg, "sdm": settings.to_dict()}, n_ranks=size)
        with dictionary_writer(out, n, settings, PARAMS, cfg, record, overwrite) as write:
            produce(write)
    else:
        produce(None)
    bar.close()
    log.info("rank %d: simulated %d of %d maps", rank, len(range(rank, n, size)), n)
