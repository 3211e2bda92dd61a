"""The scan file (SCAN.h5, schema apt-cnn-hpc/scan/1) and its XDMF sidecar for ParaView.

  /voxels/probability_sum  float32 [nx, ny, nz]  sum of the L1_2 probabilities of the evaluated
                           cubes covering each voxel (0..64); attrs origin_nm (3), voxel_nm
  /voxels/probability_sum_sd float32             ensemble scans: sd of the members' sums
  /voxels/window_count     uint8   [nx, ny, nz]  evaluated cubes covering each voxel (0..64)
  /voxels/ion_count        uint32  [nx, ny, nz]  ions (all species) in each voxel
  /voxels/plane_visibility float32 [nx, ny, nz]  fundamental {022} plane power around each voxel
                           (sdm/visibility.py); planes resolved where >= attr plane_visibility_threshold
  /cubes/origin_nm         float32 [n, 3]        lower corner of every evaluated cube
  /cubes/probability       float32 [n]           its calibrated L1_2 probability (model card)
  /cubes/probability_members float32 [n, K]      ensemble scans: each member's
  /cubes/n_reference       uint32  [n]           its reference ions
  /ions/l12_probability    float32 [n_ions]      (scans with per_ion) the default method's calibrated
                           P(ion in L1_2), record order; attrs method, model_dir, model_sha256 (JSON)
  /provenance              attrs json: config, input/range SHA-256, model card and hash, versions,
                           ranks, per-rank timings and peak memory
  attrs: schema, n_ions, cubes_evaluated, cubes_skipped_few_references, n_ranks, min_reference,
         ensemble_members, plane_field (JSON of sdm.lattice.PlaneField: wavevector k 1/nm, curvature,
         centre_xy, tilt_deg, spacing_nm, significance, found), plane_visibility_threshold,
         plane_visibility_meaning (scans before these were added have none of the three)
Voxel (i, j, k) covers origin_nm + [i, i+1) x [j, j+1) x [k, k+1) * voxel_nm. The segmentation
(contracts/segmentation.py) adds its groups to the same file. Datasets are chunked (voxels 32^3,
2^18 ions, 2^16 cubes) and, but for the cube table, gzip-1 compressed; the serial writer and the
collective mpio writer (every rank its block's voxels, its rows of the cube table and its records)
make the same layout.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..fileutil import atomic_h5, atomic_output
from ..provenance import write_h5_provenance
from ..sdm import VoxelGrid
from .schema import check_schema, schema_name

KIND, VERSION = "scan", 1

XDMF = """<?xml version="1.0" ?>
<!-- ParaView reads the fastest-varying axis as X: here that is the reconstruction's z (depth),
     so ParaView's X, Y, Z are the data's z, y, x. Coordinates are in nm. -->
<Xdmf Version="3.0">
 <Domain>
  <Grid Name="voxels" GridType="Uniform">
   <Topology TopologyType="3DCoRectMesh" Dimensions="{n0} {n1} {n2}"/>
   <Geometry GeometryType="ORIGIN_DXDYDZ">
    <DataItem Dimensions="3" NumberType="Float" Format="XML">{o0} {o1} {o2}</DataItem>
    <DataItem Dimensions="3" NumberType="Float" Format="XML">{v} {v} {v}</DataItem>
   </Geometry>
{attributes}
  </Grid>
 </Domain>
</Xdmf>
"""
ATTR = """   <Attribute Name="{name}" AttributeType="Scalar" Center="Cell">
    <DataItem Dimensions="{d0} {d1} {d2}" NumberType="{nt}" Precision="{p}" Format="HDF">{file}:/voxels/{name}</DataItem>
   </Attribute>"""


def write_xdmf(path, h5_name: str, grid, datasets: dict):
    nx, ny, nz = grid.shape
    attrs = "\n".join(ATTR.format(name=k, d0=nx, d1=ny, d2=nz, file=h5_name,
                                  nt="Float" if v.dtype.kind == "f" else "UInt", p=v.dtype.itemsize)
                      for k, v in datasets.items())
    text = XDMF.format(n0=nx + 1, n1=ny + 1, n2=nz + 1, o0=grid.origin_nm[0], o1=grid.origin_nm[1],
                       o2=grid.origin_nm[2], v=grid.voxel_nm, attributes=attrs)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


@dataclass
class ScanShare:
    """One writer's share of a scan file (scan/shares.py): a box of voxels from index `voxel_lo`,
    cube-table rows from `cube_row` of `n_cubes`, per-ion values from record `record` of
    `n_ions`. The serial writer holds the whole file (every start 0)."""
    voxels: dict            # name -> [box]
    voxel_lo: tuple
    cubes: dict             # name -> [rows, ...]
    cube_row: int
    n_cubes: int
    ions: np.ndarray | None  # per-ion L1_2 probability of records [record, record + len)
    record: int
    n_ions: int


def _dataset(group, name, shape, dtype, compress: bool = True):
    """A dataset in the layout both writers use: chunks of at most 32 voxels a side (a ParaView
    sub-volume read touches few), 2^18 ions or 2^16 cubes; gzip 1 (parallel HDF5 compresses
    collectively)."""
    edge = {1: 1 << 18, 2: 1 << 16, 3: 32}[len(shape)]
    chunks = tuple(min(n, edge if i == 0 or len(shape) == 3 else n) for i, n in enumerate(shape))
    if 0 in shape:
        return group.create_dataset(name, shape=shape, dtype=dtype)
    return group.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks,
                                **({"compression": "gzip", "compression_opts": 1} if compress else {}))


def _write_at(d, start, a: np.ndarray, mpio: bool):
    """The block of dataset d from index `start` (an int or one per axis) that `a` fills. Under
    mpio every rank calls, collectively; one with nothing to write selects nothing."""
    import h5py
    a = np.ascontiguousarray(a, d.dtype)
    fspace = d.id.get_space()
    if a.size:
        start = tuple(int(v) for v in np.atleast_1d(start))
        fspace.select_hyperslab(start + (0,) * (d.ndim - len(start)), a.shape)
        mspace = h5py.h5s.create_simple(a.shape)
    else:
        fspace.select_none()
        a = np.zeros((1,) * d.ndim, d.dtype)
        mspace = h5py.h5s.create_simple(a.shape)
        mspace.select_none()
    dxpl = None
    if mpio:
        dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
        dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
    if d.shape and 0 not in d.shape:
        d.id.write(mspace, fspace, a, dxpl=dxpl)


def write_scan(out, grid, share: ScanShare, record: dict, extra_attrs: dict, ion_attrs: dict | None = None,
               overwrite=True, comm=None):
    """Write a scan file: serially by the one rank that holds all of it (comm None), or by every
    rank of `comm` collectively with the mpio driver, each its own share (record, attributes and
    ion_attrs the same on every rank)."""
    mpio = comm is not None
    with atomic_h5(out, overwrite, comm=comm) as f:
        if ion_attrs is not None:
            d = _dataset(f.create_group("ions"), "l12_probability", (share.n_ions,), np.float32)
            _write_at(d, share.record, share.ions, mpio)
            d.attrs.update(method=ion_attrs["method"], model_dir=ion_attrs["model_dir"],
                           model_sha256=json.dumps(ion_attrs["model_sha256"], sort_keys=True))
        g = f.create_group("voxels")
        for k, v in share.voxels.items():
            _write_at(_dataset(g, k, tuple(grid.shape), v.dtype), share.voxel_lo, v, mpio)
        g["probability_sum"].attrs["origin_nm"] = np.asarray(grid.origin_nm, np.float64)
        g["probability_sum"].attrs["voxel_nm"] = grid.voxel_nm
        g.attrs["origin_nm"] = np.asarray(grid.origin_nm, np.float64)
        g.attrs["voxel_nm"] = grid.voxel_nm
        g.attrs["index_order"] = "x, y, z"
        c = f.create_group("cubes")
        for k, v in share.cubes.items():
            d = _dataset(c, k, (share.n_cubes,) + v.shape[1:], v.dtype, compress=False)
            _write_at(d, share.cube_row, v, mpio)
        for k, v in extra_attrs.items():
            f.attrs[k] = v
        f.attrs["schema"] = schema_name(KIND, VERSION)
        write_h5_provenance(f, record)
    if not mpio or comm.Get_rank() == 0:
        write_xdmf(Path(str(out)).with_suffix(".xdmf"), Path(str(out)).name, grid, share.voxels)


@dataclass
class VoxelMap:
    grid: VoxelGrid
    probability_sum: np.ndarray
    window_count: np.ndarray
    ion_count: np.ndarray
    full_window: int           # cubes covering an interior voxel (64 for 4 nm / 1 nm)
    provenance: dict = field(default_factory=dict)
    probability_sum_sd: np.ndarray | None = None   # ensemble scans: sd of the members' sums
    plane_visibility: np.ndarray | None = None     # None in scans made before it existed
    plane_visibility_threshold: float | None = None
    plane_field: dict | None = None

    @property
    def resolved(self) -> np.ndarray | None:
        """Voxels whose lattice planes are resolved (None for a scan without the score)."""
        if self.plane_visibility is None:
            return None
        return self.plane_visibility >= self.plane_visibility_threshold

    @property
    def covered(self) -> np.ndarray:
        """Voxels under at least one evaluated cube."""
        return self.window_count > 0

    def _to_full_window(self, a: np.ndarray) -> np.ndarray:
        """Per-voxel sums scaled to a full window (NaN where no cube was evaluated)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.window_count > 0, a * self.full_window / self.window_count, np.nan)

    def scaled_sum(self) -> np.ndarray:
        """Sums scaled to a full window, so edge voxels covered by fewer evaluated cubes compare
        with the same threshold (NaN where no cube was evaluated)."""
        return self._to_full_window(self.probability_sum)

    def uncertain(self, threshold: float, sigmas: float) -> np.ndarray | None:
        """Voxels whose members disagree about the side of the threshold: |mean - threshold| <
        sigmas x sd, both scaled to a full window (None without an ensemble)."""
        if self.probability_sum_sd is None:
            return None
        with np.errstate(invalid="ignore"):   # NaN (uncovered) compares False
            return self.covered & (np.abs(self.scaled_sum() - threshold)
                                   < sigmas * self._to_full_window(self.probability_sum_sd))

    def mask(self, threshold: float) -> np.ndarray:
        s = self.scaled_sum()
        return np.nan_to_num(s, nan=-1.0) > threshold


def _open(path) -> h5py.File:
    try:
        f = h5py.File(path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(path, "not found or not an HDF5 file") from None
    if "voxels/probability_sum" not in f:
        f.close()
        raise InputError(path, "not a scan file (no /voxels/probability_sum)")
    try:
        check_schema(f.attrs.get("schema"), path, KIND, (VERSION,))
    except InputError:
        f.close()
        raise
    return f


def read_voxel_map(path) -> VoxelMap:
    with _open(path) as f:
        try:
            g = f["voxels"]
            ps = g["probability_sum"]
            grid = VoxelGrid(tuple(float(v) for v in ps.attrs["origin_nm"]), float(ps.attrs["voxel_nm"]),
                             tuple(int(n) for n in ps.shape))
            prov = json.loads(f["provenance"].attrs["json"])
            sdm = prov["config"]["sdm"]
            m = int(round(sdm["cube_nm"] / sdm["voxel_nm"]))
            sd = g["probability_sum_sd"][:] if "probability_sum_sd" in g else None
            vis = g["plane_visibility"][:] if "plane_visibility" in g else None
            return VoxelMap(grid, ps[:], g["window_count"][:], g["ion_count"][:], m ** 3, prov, sd, vis,
                            float(f.attrs["plane_visibility_threshold"]) if vis is not None else None,
                            json.loads(f.attrs["plane_field"]) if vis is not None else None)
        except (KeyError, ValueError, TypeError) as exc:   # a damaged or foreign file
            raise InputError(path, f"scan file is incomplete or damaged ({exc})") from None


def read_ion_probability(path) -> tuple[np.ndarray, dict] | None:
    """(per-ion probability, its attrs with model_sha256 as a dict) or None for a scan without."""
    with _open(path) as f:
        if "ions/l12_probability" not in f:
            return None
        d = f["ions/l12_probability"]
        attrs = dict(d.attrs)
        attrs["model_sha256"] = json.loads(attrs["model_sha256"])
        return d[:], attrs


@dataclass
class Cubes:
    origin_nm: np.ndarray       # [n, 3] lower corners
    probability: np.ndarray     # [n] calibrated L1_2 probability
    n_reference: np.ndarray     # [n]


def read_cubes(path) -> Cubes:
    """The evaluated cubes of a scan file."""
    with _open(path) as f:
        try:
            c = f["cubes"]
            return Cubes(c["origin_nm"][:].astype(np.float64), c["probability"][:].astype(np.float64),
                         c["n_reference"][:].astype(np.float64))
        except KeyError as exc:
            raise InputError(path, f"scan file is incomplete or damaged ({exc})") from None


def read_attrs(path) -> dict:
    """The scan file's top-level attributes (counts of ions and cubes, ranks)."""
    with _open(path) as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
