"""Species-specific SDMs of the two phases: references inside L1_2 voxels vs inside FCC voxels,
partners from the whole reconstruction (the paper's Figure 6b/c, Supplementary Figure 5)."""
import dataclasses

import numpy as np

from ..io.ranges import species_index
from ..sdm import PartnerIndex, SDMSettings, parse_pair


def phase_sdms(xyz, species, ion_names, phase_of_ion: dict, pairs: list, settings: SDMSettings,
               max_references: int, seed: int) -> dict:
    """{phase: {pair: (zx [bins, bins], z [z_bins], n_references)}}; `phase_of_ion` maps a phase
    name to a boolean mask over the ions."""
    rng = np.random.default_rng(seed)
    xyz = np.asarray(xyz, np.float64)
    ids = np.arange(len(xyz))
    out: dict = {phase: {} for phase in phase_of_ion}
    for text in pairs:
        ref_sp, part_sp = parse_pair(text)
        is_ref = species == species_index(ion_names, ref_sp)
        part = np.flatnonzero(species == species_index(ion_names, part_sp))
        index = PartnerIndex(xyz[part], ids[part], dataclasses.replace(settings, pair=(ref_sp, part_sp)))
        for phase, mask in phase_of_ion.items():
            refs = np.flatnonzero(is_ref & mask)
            if len(refs) > max_references:
                refs = np.sort(rng.choice(refs, max_references, replace=False))
            zx, z = index.histograms(xyz[refs], ids[refs], np.zeros(len(refs), np.int64), 1,
                                     zx=True, z=True, dtype=np.int64)
            out[phase][text] = (zx[0], z[0], len(refs))
    return out
