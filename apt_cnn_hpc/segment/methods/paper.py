"""The paper's rule (Li et al. 2021), exactly as published: a 1 nm voxel is L1_2 when the sum of
the L1_2 probabilities of the cubes covering it exceeds 62 of 64 (edge voxels scaled to a full
window); precipitates are its face-connected components."""
from ...errors import InputError
from .base import Method, number, register
from .voxel_rule import voxel_result


@register
class PaperRule(Method):
    name = "paper"
    title = "paper's rule: voxel sum of 64 cube probabilities > 62"
    colour = "tab:red"

    def __init__(self, threshold: float = 62, connectivity: int = 1, min_voxels: int = 1):
        super().__init__(threshold=threshold, connectivity=connectivity, min_voxels=min_voxels)
        self.threshold = number(threshold, "threshold", 0)
        self.connectivity = number(connectivity, "connectivity", 1, 3, integer=True)
        self.min_voxels = number(min_voxels, "min_voxels", 1, integer=True)

    def run(self, data):
        vm = data.voxels
        if not 0 < self.threshold < vm.full_window:
            raise InputError(None, f"threshold must lie between 0 and {vm.full_window} (the full window), "
                                   f"got {self.threshold:g}")
        return voxel_result(data, vm.mask(self.threshold), self.connectivity, self.min_voxels)
