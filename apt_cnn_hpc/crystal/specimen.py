"""Synthetic reconstructions with known precipitates: for demos, tests, held-out evaluation and
the accuracy benchmark.

A coherent FCC matrix with spherical ordered precipitates (L1_2 by default) in random
translational variants, seen along a pole through the instrument model of `detector.Instrument`
(efficiency, resolution, tilted pole, curved planes, depth-scale error, interface magnification,
background ions); written as POS + RRNG + a ground-truth HDF5 file. The truth of an ion is where
its atom sat, whatever the reconstruction did to its position.
"""
import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from ..config import positive, value_range
from ..errors import InputError
from ..contracts.truth import truth_writer, write_truth
from ..io import RangeTable, pos_writer, write_pos, write_rrng
from ..provenance import provenance
from .detector import Instrument, draw_species
from .lattice import lattice_sites
from .orientation import orientation_matrix
from .structure import Structure, load_structure

log = logging.getLogger(__name__)
SLAB_NM = 4.0


@dataclass
class Shape:
    kind: str
    size: np.ndarray          # box extents, or (2R, 2R, H) bounding box of a cone
    top_radius: float = 0.0
    tan_half_angle: float = 0.0

    def lo(self):
        return np.array([-self.size[0] / 2, -self.size[1] / 2, 0.0])

    def hi(self):
        return np.array([self.size[0] / 2, self.size[1] / 2, self.size[2]])

    def inside(self, p: np.ndarray) -> np.ndarray:
        ok = np.all((p >= self.lo()) & (p < self.hi()), axis=1)
        if self.kind == "cone":
            r = self.top_radius + p[:, 2] * self.tan_half_angle
            ok &= p[:, 0] ** 2 + p[:, 1] ** 2 < r ** 2
        return ok

    def volume(self) -> float:
        if self.kind == "box":
            return float(np.prod(self.size))
        h, r0, t = self.size[2], self.top_radius, self.tan_half_angle
        return float(np.pi * (r0 ** 2 * h + r0 * t * h ** 2 + t ** 2 * h ** 3 / 3))


def _shape(cfg) -> Shape:
    kind = cfg.get("shape", "box")
    if kind == "box":
        size = np.array([float(v) for v in cfg["size_nm"]])
        if size.shape != (3,) or np.any(size <= 0):
            raise InputError("specimen config", f"size_nm must be three sizes > 0, got {cfg['size_nm']}")
        return Shape("box", size)
    if kind == "cone":
        c = cfg["cone"]
        r0 = positive(c, "top_radius_nm", "specimen config")
        h = positive(c, "height_nm", "specimen config")
        t = np.tan(np.radians(positive(c, "half_angle_deg", "specimen config", allow_zero=True)))
        rmax = r0 + h * t
        return Shape("cone", np.array([2 * rmax, 2 * rmax, h]), r0, t)
    raise InputError("specimen config", f"shape must be 'box' or 'cone', got '{kind}'")


def _place_precipitates(shape: Shape, pc: dict, rng):
    """Random sequential addition of non-overlapping spheres until the volume fraction is met."""
    vf = positive(pc, "volume_fraction", "specimen config", allow_zero=True)
    if vf >= 0.5:
        raise InputError("specimen config", f"volume_fraction {vf} too high for random packing")
    mean, sd = positive(pc, "radius_mean_nm", "specimen config"), float(pc["radius_sd_nm"])
    rmin, rmax = positive(pc, "radius_min_nm", "specimen config"), positive(pc, "radius_max_nm", "specimen config")
    gap = float(pc.get("min_gap_nm", 0.0))
    target = vf * shape.volume()
    # draw the radii first, then place the largest first: the placed sizes follow the
    # requested distribution instead of favouring the small spheres that fit late
    want, vol = [], 0.0
    while vol < target:
        r = rng.normal(mean, sd)
        if rmin <= r <= rmax:   # truncated normal: redraw rather than pile up at the bounds
            want.append(r)
            vol += 4 / 3 * np.pi * r ** 3
    centres, radii = [], []
    for r in sorted(want, reverse=True):
        for _ in range(2000):
            c = shape.lo() + rng.random(3) * shape.size
            if not shape.inside(c[None])[0]:
                continue
            if centres and np.any(np.linalg.norm(np.asarray(centres) - c, axis=1)
                                  < np.asarray(radii) + r + gap):
                continue
            centres.append(c)
            radii.append(r)
            break
    return np.asarray(centres).reshape(-1, 3), np.asarray(radii)


def _phases(cfg, matrix: Structure, prec: Structure):
    """Occupancies of matrix and precipitate for the requested overall composition."""
    overall = {k: float(v) / 100 for k, v in cfg["overall_composition_at_pct"].items()}
    base = next(iter(matrix.occupancy[0]))          # the solvent (Al)
    if sum(overall.values()) >= 1 or any(v < 0 for v in overall.values()):
        raise InputError("specimen config", f"overall_composition_at_pct {cfg['overall_composition_at_pct']} is not a valid composition")
    if cfg.get("same_composition", False):
        # All solute on the smallest sublattice; the others pure solvent: ordered, same composition.
        counts = np.bincount(prec.sublattice)
        small = int(np.argmin(counts))
        scale = len(prec.sites) / counts[small]
        occ_small = {k: v * scale for k, v in overall.items()}
        if sum(occ_small.values()) > 1:
            raise InputError("specimen config", "solute too high to order on one sublattice")
        occ_small[base] = 1 - sum(occ_small.values())
        occ = [occ_small if k == small else {base: 1.0} for k in range(len(counts))]
        prec = prec.with_occupancy(occ, prec.name + " (matrix composition)")
        matrix_comp = overall
    else:
        vf = float(cfg["precipitates"]["volume_fraction"])
        pcomp = prec.composition()
        matrix_comp = {k: (v - vf * pcomp.get(k, 0)) / (1 - vf) for k, v in overall.items()}
        if any(v < 0 for v in matrix_comp.values()):
            raise InputError("specimen config", f"precipitates alone exceed the overall composition ({pcomp})")
    mocc = dict(matrix_comp)
    mocc[base] = 1 - sum(matrix_comp.values())
    matrix = matrix.with_occupancy([mocc] * len(matrix.occupancy), matrix.name + " (solid solution)")
    return matrix, prec


def _mass_model(cfg, species: list):
    ms = cfg["mass_spectrum"]
    peaks = ms["peaks"]
    missing = [s for s in species if s not in peaks]
    if missing:
        raise InputError("specimen config", f"mass_spectrum.peaks has no entry for {missing}")
    return ms, peaks


def _range_table(ms, peaks) -> RangeTable:
    hw = positive(ms, "range_half_width_da", "specimen config")
    entries = sorted((float(m) - hw, float(m) + hw, el) for el, lst in peaks.items() for m, _ in lst)
    names = list(peaks)
    lo = np.array([e[0] for e in entries])
    hi = np.array([e[1] for e in entries])
    if np.any(lo[1:] < hi[:-1]):
        raise InputError("specimen config", "mass_spectrum peaks are closer than two range half widths")
    return RangeTable(lo, hi, np.array([names.index(e[2]) for e in entries], np.int16), names,
                      [{n: 1} for n in names])


def _draw_mq(spec_names: list, species: np.ndarray, ms, peaks, rng) -> np.ndarray:
    mq = np.empty(len(species), np.float32)
    for k, name in enumerate(spec_names):
        sel = np.flatnonzero(species == k)
        m = np.array([p[0] for p in peaks[name]], float)
        w = np.array([p[1] for p in peaks[name]], float)
        pick = rng.choice(len(m), size=len(sel), p=w / w.sum())
        mq[sel] = m[pick] + rng.normal(0, float(ms["peak_sd_da"]), len(sel))
    return mq


@dataclass
class _Setup:
    """Everything drawn or derived before the ions: the same for the in-memory and the streamed
    specimen of a config."""
    rng: np.random.Generator
    shape: Shape
    matrix: Structure
    prec: Structure
    inst: Instrument
    rot: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    variants: np.ndarray
    names: list
    ms: dict
    peaks: dict
    lo: np.ndarray              # the true positions that may reconstruct inside the shape
    hi: np.ndarray

    @classmethod
    def of(cls, cfg: dict) -> "_Setup":
        rng = np.random.default_rng(int(cfg.get("seed", 0)))
        shape = _shape(cfg)
        matrix, prec = _phases(cfg, load_structure(cfg["matrix"]), load_structure(cfg["precipitate"]))
        inst = Instrument.from_dict(cfg.get("detector", {}), "specimen config detector")
        rot = orientation_matrix(cfg.get("pole", (0, 1, 1)), cfg.get("x_direction", (1, 0, 0)),
                                 float(cfg.get("azimuth_deg", 0.0)), inst.pole_tilt_deg, inst.pole_tilt_azimuth_deg)
        centres, radii = _place_precipitates(shape, cfg["precipitates"], rng)
        variants = rng.integers(0, len(prec.variants), len(radii))
        names = matrix.species + [s for s in prec.species if s not in matrix.species]
        ms, peaks = _mass_model(cfg, names)
        # true positions that noise, magnification, curved planes or the depth scale may bring inside
        reach = 4 * max(inst.sigma_xy_nm, inst.sigma_z_nm) + abs(inst.interface_magnification - 1) * radii.max(initial=0)
        sag = (shape.size[0] ** 2 + shape.size[1] ** 2) / (8 * inst.curvature_radius_nm) if inst.curvature_radius_nm else 0
        lo, hi = shape.lo() - reach, shape.hi() + reach
        lo[2], hi[2] = shape.lo()[2] / inst.z_scale - sag - reach, shape.hi()[2] / inst.z_scale + reach
        return cls(rng, shape, matrix, prec, inst, rot, centres, radii, variants, names, ms, peaks, lo, hi)

    def slab_starts(self) -> np.ndarray:
        return np.arange(self.lo[2], self.hi[2], SLAB_NM)

    def slab(self, z0: float):
        """(reconstructed positions inside the shape, true species, precipitate id) of the atoms
        whose true z is in [z0, z0 + SLAB_NM)."""
        slo, shi = self.lo.copy(), self.hi.copy()
        slo[2], shi[2] = z0, min(z0 + SLAB_NM, self.hi[2])
        centres, radii, rng = self.centres, self.radii, self.rng
        pos, basis, frac = lattice_sites(self.matrix.sites, self.matrix.a_nm, self.rot, slo, shi)
        s = draw_species(self.matrix.sublattice[basis], self.matrix.occupancy, self.names, rng)
        p = np.zeros(len(pos), np.int32)
        near = np.flatnonzero((centres[:, 2] + radii > slo[2]) & (centres[:, 2] - radii < shi[2]))
        for k in near:
            inside = np.flatnonzero(np.sum((pos - centres[k]) ** 2, axis=1) < radii[k] ** 2)
            p[inside] = k + 1
            subl = self.prec.site_sublattice(frac[inside], int(self.variants[k]))
            s[inside] = draw_species(subl, self.prec.occupancy, self.names, rng)
        nearby = np.flatnonzero((centres[:, 2] + 4 * radii > slo[2]) & (centres[:, 2] - 4 * radii < shi[2]))
        keep, pos = self.inst.detect(pos, rng, centres[nearby], radii[nearby])
        s, p = s[keep], p[keep]
        ok = self.shape.inside(pos)
        return pos[ok], s[ok], p[ok]

    def background(self, n: int, lo_z: float, hi_z: float):
        """(positions, m/n, precipitate id) of n noise ions uniform in the shape between lo_z and hi_z."""
        lo, size = self.shape.lo().copy(), self.shape.size.copy()
        lo[2], size[2] = max(lo_z, lo[2]), max(min(hi_z, lo[2] + size[2]) - max(lo_z, lo[2]), 0.0)
        xyz = lo + self.rng.random((n * 3, 3)) * size
        xyz = xyz[self.shape.inside(xyz)][:n]
        lo_da, hi_da = value_range(self.ms, "background_da", "specimen config", lo=0)
        mq = self.rng.uniform(lo_da, hi_da, len(xyz)).astype(np.float32)
        pid = np.zeros(len(xyz), np.int32)
        for k in np.flatnonzero((self.centres[:, 2] + self.radii > lo[2]) & (self.centres[:, 2] - self.radii < lo[2] + size[2])):
            pid[np.sum((xyz - self.centres[k]) ** 2, axis=1) < self.radii[k] ** 2] = k + 1
        return xyz, mq, pid

    def summary(self) -> dict:
        """What the truth file records beside the ions."""
        return {"centres": self.centres, "radii": self.radii, "variants": self.variants,
                "species_names": self.names, "ranges": _range_table(self.ms, self.peaks),
                "matrix_composition": self.matrix.composition(),
                "precipitate_composition": self.prec.composition(),
                "precipitate_structure": self.prec.name,
                "instrument": dataclasses.asdict(self.inst)}


def _in_depth_order(xyz, mq, spec, pid, bg) -> dict:
    """The real ions (positions, m/n, true species, precipitate id) and the background ions
    bg = (positions, m/n, precipitate id) together, in evaporation order: roughly by depth."""
    bg_xyz, bg_mq, bg_pid = bg
    all_xyz = np.concatenate([xyz, bg_xyz]).astype(np.float32)
    order = np.argsort(all_xyz[:, 2], kind="stable")
    return {
        "xyz": all_xyz[order],
        "mq": np.concatenate([mq, bg_mq])[order],
        "precipitate_id": np.concatenate([pid, bg_pid])[order],
        "is_background": np.concatenate([np.zeros(len(xyz), bool), np.ones(len(bg_xyz), bool)])[order],
        "species_true": np.concatenate([spec, np.full(len(bg_xyz), -1, np.int16)])[order],
    }


def make_specimen(cfg: dict):
    """Build the specimen in memory. Returns dict with xyz, mq, precipitate_id, is_background,
    centres, radii, variants, range table and the phases' compositions."""
    st = _Setup.of(cfg)
    xyz, spec, pid = (np.concatenate(a) for a in zip(*(st.slab(z0) for z0 in st.slab_starts())))
    mq = _draw_mq(st.names, spec, st.ms, st.peaks, st.rng)
    bg = st.background(int(round(st.inst.background_fraction * len(xyz))), -np.inf, np.inf)
    return {**_in_depth_order(xyz, mq, spec, pid, bg), **st.summary()}


def stream_specimen(cfg: dict, prefix, overwrite: bool = True, bar=None) -> dict:
    """Write the specimen slab by slab (4 nm of true depth each) without holding it: each slab's
    ions, their m/n and the slab's share of background ions, in depth order within the slab. The
    same phases, precipitates and instrument as make_specimen, but another draw of the ions (m/n
    and background drawn per slab). Returns the summary with n_ions; `bar` (tqdm) counts slabs."""
    st = _Setup.of(cfg)
    pos_path, rng_path, truth_path = f"{prefix}.pos", f"{prefix}.rrng", f"{prefix}_truth.h5"
    summary = st.summary()
    starts = st.slab_starts()
    if bar is not None:
        bar.total = len(starts)
    with truth_writer(truth_path, st.names, overwrite) as truth, pos_writer(pos_path, overwrite) as pos:
        for z0 in starts:
            xyz, spec, pid = st.slab(z0)
            mq = _draw_mq(st.names, spec, st.ms, st.peaks, st.rng)
            # the background of this slab's depth in the reconstruction
            bg = st.background(int(round(st.inst.background_fraction * len(xyz))), z0 * st.inst.z_scale,
                               (z0 + SLAB_NM) * st.inst.z_scale)
            ions = _in_depth_order(xyz, mq, spec, pid, bg)
            pos.append(ions["xyz"], ions["mq"])
            truth.append(ions["precipitate_id"], ions["is_background"], ions["species_true"])
            if bar is not None:
                bar.update(1)
        truth.finish(summary, provenance(cfg, {"pos": pos_path}, hashes={"pos": pos.sha256}))
    write_rrng(rng_path, summary["ranges"], overwrite)
    return {**summary, "n_ions": pos.n}


def write_specimen(spec: dict, prefix, cfg: dict, overwrite: bool = True):
    """PREFIX.pos, PREFIX.rrng and PREFIX_truth.h5 (each written atomically)."""
    pos_path, rng_path, truth_path = f"{prefix}.pos", f"{prefix}.rrng", f"{prefix}_truth.h5"
    write_pos(pos_path, spec["xyz"], spec["mq"], overwrite)
    write_rrng(rng_path, spec["ranges"], overwrite)
    write_truth(truth_path, spec, provenance(cfg, {"pos": pos_path}), overwrite)
    return pos_path, rng_path, truth_path
