"""The paper's rule with sharper boundaries (segment/refine.py): cube probabilities turned into
L1_2 shares through the model card's response curve and deconvolved into the voxels of a band
around the rule's boundary."""
from ...errors import InputError
from ..refine import refine_mask
from .base import Method, number, register
from .paper import needs_paper_model
from .voxel_rule import voxel_result


@register
class RefinedRule(Method):
    """The paper's rule with its boundary band re-decided from the cubes' L1_2 shares."""
    name = "cnn_refined"
    title = "paper's rule, boundary band deconvolved through the model's response"
    colour = "tab:purple"

    def __init__(self, threshold: float = 62, band_voxels: int = 3, connectivity: int = 1, min_voxels: int = 1):
        super().__init__(threshold=threshold, band_voxels=band_voxels, connectivity=connectivity,
                         min_voxels=min_voxels)
        self.threshold = number(threshold, "threshold", 0)
        self.band = number(band_voxels, "band_voxels", 1, integer=True)
        self.connectivity = number(connectivity, "connectivity", 1, 3, integer=True)
        self.min_voxels = number(min_voxels, "min_voxels", 1, integer=True)

    def unavailable(self, data):
        if not data.voxels.provenance.get("model_card", {}).get("metrics", {}).get("response"):
            return "needs the model card's response curve (metrics.response): run `apt-cnn evaluate` on the model"
        return needs_paper_model(data)

    def run(self, data):
        vm = data.voxels
        cubes = data.cubes
        cube_vox = vm.grid.index(cubes.origin_nm + 0.5 * vm.grid.voxel_nm)
        response = vm.provenance.get("model_card", {}).get("metrics", {}).get("response", {})
        try:
            mask = refine_mask(vm.mask(self.threshold), vm.covered, cube_vox, cubes.probability,
                               round(vm.full_window ** (1 / 3)), response, self.band)
        except InputError as exc:
            raise InputError(data.path, exc.problem) from None
        return voxel_result(data, mask, self.connectivity, self.min_voxels)
