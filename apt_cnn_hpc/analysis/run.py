"""Every analysis of every recognition method of a segmentation, from its per-ion result and
precipitate table (called by `apt-cnn segment`, stored by contracts/analyses.py)."""
import numpy as np

from ..segment.components import element_table
from .compositions import phase_compositions
from .number_density import convex_hull_volume, number_density, occupied_voxel_volume, volume_fraction
from .proxigram import proxigram
from .size_distribution import at_edge, size_distribution


def analyse(data, segmentation, resamples: int = 200, seed: int = 0) -> dict:
    """{method: results} for every method of `segmentation` (contracts.segmentation.Segmentation)
    on `data` (anything with xyz [n,3] nm, species [n] (-1 unranged), ranges.ion_names and
    ranges.composition, as segment.inputs.ScanData)."""
    elements, atoms = element_table(data.ranges.ion_names, data.ranges.composition)
    xyz, species = np.asarray(data.xyz, float), np.asarray(data.species)
    hull = convex_hull_volume(xyz)
    voxels = occupied_voxel_volume(xyz)
    ranged = species >= 0
    resolved = getattr(data, "ion_resolved", None)
    resolved = np.ones(len(xyz), bool) if resolved is None else np.asarray(resolved, bool)
    out = {}
    for name, rec in segmentation.methods.items():
        ids = np.asarray(rec.ion_precipitate_id)
        if len(ids) != len(xyz):
            raise ValueError(f"{name}: {len(ids)} per-ion ids for {len(xyz)} ions")
        sample = (ids >= 0) & resolved
        determined = float(np.mean(sample)) if len(ids) else 0.0
        volume = hull * determined
        res = {"elements": list(elements), "analysed_volume_nm3": volume, "convex_hull_volume_nm3": hull,
               "occupied_voxel_volume_nm3": voxels * determined, "determined_ion_share": determined,
               "volume_method": "convex hull of the ions x share of ions determined and where planes are resolved"}
        res.update(proxigram(xyz, species, ids, atoms))
        size = size_distribution(rec.table, xyz)
        res.update(size)
        k = len(rec.table["radius_nm"])
        counted = (np.bincount(ids[sample & (ids > 0)], minlength=k + 1)[1:k + 1]
                   >= 0.5 * np.bincount(ids[ids > 0], minlength=k + 1)[1:k + 1])   # mostly in the sample
        edge = at_edge(rec.table, xyz)
        res.update(number_density(int(np.count_nonzero(counted & ~edge)), int(np.count_nonzero(counted & edge)),
                                  volume))
        per = np.bincount(ids[ranged & sample & (ids > 0)], minlength=k + 1)[1:k + 1]
        res.update(volume_fraction(per, int(np.count_nonzero(ranged & sample)), resamples, seed))
        res.update(phase_compositions(species, ids, atoms))
        out[name] = res
    return out
