"""The default recognition method's per-ion L1_2 probability (segment/methods/ion_mlp.py) computed
inside the distributed scan, so it scales with the ranks like the cube maps.

Each rank classifies the ions of its own voxels (its block). Their stage-2 features read the stage-1
logits of every ion within 1.5 nm, whose stage-1 features read ranged neighbours within 2 nm: the
scan's halo reaches HALO_NM (3.5 nm) beyond a rank's voxels. What the features normalise by is the
data set's, made the same on every rank: the plane field (scan/planes.py), the partner-type counts
(an integer allreduce), the local plane offset from the scan's voxel phasor sums (smoothed on root,
each rank sent its tiles), and the stage-2 levels (medians of samples gathered from every rank: a
median does not depend on their order). Neighbour sums run over cell lists anchored on multiples of
the cell and in record order, and the network's rows do not depend on their batch, so 1, 2 and 3
ranks give the same labels."""
import logging

import numpy as np
from mpi4py import MPI

from ..contracts.ion_model import load_ion_card, load_ion_models
from ..model.calibration import apply_calibration
from ..model.ion_mlp import logits, raw_probability
from ..parallel.mpi import allreduce_array
from ..sdm.ion_features import (EDGES_NM, EDGES_S2_NM, LEVEL_COLUMNS, Stage2, context_of_counts, level_samples, levels_of,
                                partner_types, stage1_chunks)
from ..sdm.lattice import OffsetField, tile_origin, tile_shape, tile_sums

log = logging.getLogger(__name__)
CHUNK = 50_000             # ions per stage-1 / stage-2 batch: bounds the sums' and moments' memory


def slab_edges(u: np.ndarray, slab_ions: int) -> np.ndarray:
    """Edges along one axis cutting the coordinates `u` into slabs of at most about slab_ions each
    (one slab, open at both ends, when they fit)."""
    n = max(1, -(-len(u) // max(slab_ions, 1)))
    inner = np.quantile(u, np.arange(1, n) / n) if n > 1 else np.zeros(0)
    return np.concatenate([[-np.inf], np.unique(inner), [np.inf]])


def missing_solutes(model_dir, ranges) -> list:
    """The model's solutes the range file does not define."""
    return [s for s in load_ion_card(model_dir)["solutes"] if s not in ranges.ion_names]


FIXED = 2.0 ** 36          # phasor sums as integers in units of 2^-36: tile sums exact in any order


def global_offset(comm, part, first_voxel, grid, ranged_xyz, field, boxes: list) -> OffsetField:
    """This rank's part (its box of `boxes`) of the local plane offset of the whole data set (the
    Gaussian smoothing reaches further than any halo). Each rank sums its own voxels' phasor sums
    (part: [3, box] from grid index first_voxel) into the 2 nm tiles of lattice.local_offset, as
    integers, so root adds the ranks' tiles exactly in any order; root smooths and sends each rank
    the tiles its ions need. Root holds the tile grid, 1/8 of the voxel grid."""
    lo = allreduce_array(comm, ranged_xyz.min(0) if len(ranged_xyz) else np.full(3, np.inf), MPI.MIN)
    hi = allreduce_array(comm, ranged_xyz.max(0) if len(ranged_xyz) else np.full(3, -np.inf), MPI.MAX)
    origin = tile_origin(lo)
    shape = tile_shape(origin, hi)
    axes = [grid.origin_nm[a] + (first_voxel[a] + np.arange(part.shape[1 + a]) + 0.5) * grid.voxel_nm
            for a in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    re, im = (np.rint(p.ravel() * FIXED) for p in part[1:])
    mine = tile_sums(centres, re, im, origin, shape).ravel()
    nz = np.flatnonzero(mine)
    parts = comm.gather((nz, mine.real[nz].astype(np.int64), mine.imag[nz].astype(np.int64), int(part[0].sum())))
    crops = None
    if comm.Get_rank() == 0:
        re, im = np.zeros(int(np.prod(shape)), np.int64), np.zeros(int(np.prod(shape)), np.int64)
        for idx, r, i, _ in parts:
            re[idx] += r
            im[idx] += i
        sums = (re / FIXED + 1j * (im / FIXED)).reshape(shape)
        whole = OffsetField.from_sums(sums, origin, sum(p[3] for p in parts), hi - lo, field.coherence)
        crops = [whole.crop(b_lo, b_hi) for b_lo, b_hi in boxes]
    return comm.scatter(crops)


def ion_probability(comm, model_dir, local_xyz, record_index, species, ranges, own, grid, field, phasors,
                    boxes: list, slab_ions: int):
    """(record indices, calibrated P(L1_2)) of the ions of this rank's own voxels (every ion of the
    file is one rank's). phasors: (this rank's own voxels' phasor sums, their first voxel); boxes:
    each rank's (lo_nm, hi_nm) of ions; slab_ions: query ions per slab of the pass (bounds its memory)."""
    card, stage1_models, stage2_model = load_ion_models(model_dir)
    types = partner_types(species, [ranges.index(s) for s in card["solutes"]])
    ranged = types >= 0
    counts = allreduce_array(comm, np.bincount(types[own & ranged], minlength=3)[:3].astype(np.int64))
    ctx = context_of_counts(counts, field.coherence)
    offset = global_offset(comm, *phasors, grid, local_xyz[own & ranged], field, boxes)

    # the ions whose stage-1 logits the own ions' stage-2 features read: the own voxels' box + 1.5 nm
    query = np.zeros(0, np.int64)
    if own.any():
        vox = grid.index(local_xyz[own])
        lo = np.asarray(grid.origin_nm) + vox.min(0) * grid.voxel_nm - EDGES_S2_NM[-1]
        hi = np.asarray(grid.origin_nm) + (vox.max(0) + 1) * grid.voxel_nm + EDGES_S2_NM[-1]
        query = np.flatnonzero(np.all((local_xyz >= lo) & (local_xyz < hi), axis=1))
    # streamed through slabs of at most slab_ions query ions along the box's longest axis, each
    # with the neighbours it reads (2 nm in stage 1, 1.5 nm in stage 2): the partners' sorted copies
    # go with the slab, not the rank; per query ion the logit and the 12 columns stage 2 reads stay
    axis = int(np.argmax(np.ptp(local_xyz[query], 0))) if len(query) else 2
    u = local_xyz[:, axis]
    uq = u[query]
    edges = slab_edges(uq, slab_ions)
    z1 = np.empty(len(query))
    L = np.empty((len(query), len(LEVEL_COLUMNS)), np.float32)
    for a, b in zip(edges[:-1], edges[1:]):
        rows = np.flatnonzero((uq >= a) & (uq < b))
        near = np.flatnonzero((u >= a - EDGES_NM[-1]) & (u < b + EDGES_NM[-1]))
        for part, X1 in stage1_chunks(local_xyz[near], types[near], field, query=np.searchsorted(near, query[rows]),
                                      chunk=CHUNK, ctx=ctx, offset=offset):
            z1[rows[part]], L[rows[part]] = logits(stage1_models, X1), X1[:, LEVEL_COLUMNS]
    mine = np.flatnonzero(own[query])
    samples = comm.gather(level_samples(L[mine], z1[mine]))
    lev = levels_of(*(np.concatenate(s) for s in zip(*samples))) if comm.Get_rank() == 0 else None
    lev = comm.bcast(lev)
    p = np.empty(len(mine), np.float32)
    for a, b in zip(edges[:-1], edges[1:]):
        sel = np.flatnonzero((uq[mine] >= a) & (uq[mine] < b))
        near = np.flatnonzero((uq >= a - EDGES_S2_NM[-1]) & (uq < b + EDGES_S2_NM[-1]))
        stage2 = Stage2(local_xyz[query[near]], z1[near], lev)
        for i in range(0, len(sel), CHUNK):
            rows = mine[sel[i:i + CHUNK]]
            X2 = stage2(L[rows], np.searchsorted(near, rows))
            p[sel[i:i + CHUNK]] = apply_calibration(raw_probability(logits([stage2_model], X2)), card["calibration"])
    if comm.Get_rank() == 0:
        log.info("scan: per-ion L1_2 probability (levels %s)", ", ".join(f"{v:.3f}" for v in lev))
    return record_index[query[mine]], p
