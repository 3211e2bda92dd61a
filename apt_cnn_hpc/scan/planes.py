"""The scan's view of the lattice planes: one plane field fitted to a bounded central block (the
same ions in the same order for any number of ranks), the tilt warning, and the per-voxel plane
visibility (sdm/visibility.py) summed by the rank that owns each voxel."""
import logging

import numpy as np

from ..sdm.lattice import PlaneField, fit_plane_field
from ..sdm.visibility import REACH, phasor_sums, plane_visibility
from .shares import to_boxes

log = logging.getLogger(__name__)
BLOCK_NM = 16.0          # side of the central block the plane field is fitted to (bounds its cost)
N_QUERY = 800            # sampled neighbourhoods of the fit (1500 in ion_mlp's own fit): 3-4 s
TILT_WARN_DEG = 1.0      # the cube maps assume the pole along z; beyond this they lose the planes


def fit_field(comm, local_xyz, index, ranged, mine, grid) -> PlaneField:
    """Fit on root to the ranged ions within BLOCK_NM of the grid's centre, gathered in record
    order; broadcast."""
    centre = np.asarray(grid.origin_nm) + np.asarray(grid.shape) * grid.voxel_nm / 2
    sel = mine & ranged & np.all(np.abs(local_xyz - centre) <= BLOCK_NM / 2, axis=1)
    parts = comm.gather((index[sel], local_xyz[sel]))
    field = None
    if comm.Get_rank() == 0:
        ids = np.concatenate([p[0] for p in parts])
        xyz = np.concatenate([p[1] for p in parts])[np.argsort(ids, kind="stable")]
        field = fit_plane_field(xyz, np.ones(len(xyz), bool), n_query=N_QUERY)
        if not field.found:
            log.warning("scan: no {022} planes resolved within ~3.5 deg of z in the central %.0f nm block "
                        "(plane signal %.1f): every voxel will read as not resolved; if the pole is off "
                        "axis, run `apt-cnn orient` first", BLOCK_NM, field.significance)
        elif field.tilt_deg > TILT_WARN_DEG:
            log.warning("scan: the {022} planes are %.2f deg off z (spacing %.4f nm): the cube maps assume "
                        "the pole along z and lose the planes with tilt; run `apt-cnn orient` first",
                        field.tilt_deg, field.spacing_nm)
        else:
            log.info("scan: {022} planes %.2f deg off z, spacing %.4f nm, plane signal %.1f", field.tilt_deg,
                     field.spacing_nm, field.significance)
    return comm.bcast(field)


def phasor_part(local_xyz, ranged, mine, grid, box, field: PlaneField) -> np.ndarray:
    """[3, box] voxel phasor sums (ions, sum cos psi, sum sin psi) of the ranged ions of this rank's
    own voxels, box = (first, one past the last) voxel index per axis; summed in record order."""
    pos = local_xyz[mine & ranged]
    shape = tuple(int(v) for v in np.maximum(np.asarray(box[1]) - box[0], 0))
    vox = grid.index(pos) - box[0]
    return phasor_sums(shape, np.ravel_multi_index(tuple(vox.T), shape), field.phase(pos))


def visibility_box(comm, part, first_voxel, grid, shares) -> np.ndarray:
    """The plane visibility of this rank's voxel box (scan/shares.py): each box receives the phasor
    sums of its voxels and of REACH voxels around them (the windows reach no further), which give
    the same bits as the whole grid."""
    grown = shares.grown(REACH, REACH, grid.shape)
    sums = to_boxes(comm, part, first_voxel, grown)
    rank = comm.Get_rank()
    (lo, hi), (g_lo, _), box = shares.voxel_boxes[rank], grown[rank], shares.box_shape(rank)
    if 0 in box:
        return np.zeros(box, np.float32)
    return plane_visibility(sums)[tuple(slice(l - g, h - g) for l, h, g in zip(lo, hi, g_lo))]
