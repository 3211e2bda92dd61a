"""The classical baseline: voxels whose delocalised composition of one element exceeds a
threshold (an isocomposition surface; the paper's Figure 6d at 8 at.% Li)."""
from ...errors import InputError
from ..components import element_table
from ..isocomposition import iso_mask
from .base import Method, number, register
from .voxel_rule import voxel_result


@register
class Isocomposition(Method):
    """Voxels whose delocalized concentration of one element exceeds a threshold (the classical way)."""
    name = "isocomposition"
    title = "isocomposition surface"
    colour = "tab:blue"

    def __init__(self, element: str = "Li", at_pct: float = 8.0, delocalization_nm: float = 1.0,
                 connectivity: int = 1, min_voxels: int = 1):
        super().__init__(element=element, at_pct=at_pct, delocalization_nm=delocalization_nm,
                         connectivity=connectivity, min_voxels=min_voxels)
        self.element = str(element)
        self.at_pct = number(at_pct, "at_pct", 0, 100)
        self.delocalization = number(delocalization_nm, "delocalization_nm", 0)
        self.connectivity = number(connectivity, "connectivity", 1, 3, integer=True)
        self.min_voxels = number(min_voxels, "min_voxels", 1, integer=True)

    def run(self, data):
        elements, atoms = element_table(data.ranges.ion_names, data.ranges.composition)
        try:
            mask, _ = iso_mask(data.grid, data.xyz, data.species, elements, atoms, self.element, self.at_pct,
                               self.delocalization)
        except InputError as exc:
            raise InputError(data.range_path, exc.problem) from None
        return voxel_result(data, mask & (data.voxels.ion_count > 0), self.connectivity, self.min_voxels)
