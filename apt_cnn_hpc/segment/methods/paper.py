"""The paper's rule (Li et al. 2021), exactly as published: a 1 nm voxel is L1_2 when the sum of
the L1_2 probabilities of the cubes covering it exceeds 62 of 64 (edge voxels scaled to a full
window); precipitates are its face-connected components. The rule needs the paper's kind of cube
probabilities (uncalibrated, L1_2 pushed towards 1: models/table1); on a calibrated model's scan,
whose matrix cubes sit near their true L1_2 share, it would find nothing, so it is skipped there
with the reason."""
from ...errors import InputError
from .base import Method, number, register
from .voxel_rule import voxel_result


def needs_paper_model(data) -> str | None:
    """Why the paper's voxel rule cannot be read on this scan (None: it can)."""
    if data.voxels.provenance.get("model_card", {}).get("calibration"):
        return ("the paper's rule (sum of 64 cube probabilities > 62) needs the paper's uncalibrated cube "
                "probabilities; this scan's model is calibrated: scan with --model models/table1")
    return None


@register
class PaperRule(Method):
    """Li et al. 2021: voxels whose covering cubes' L1_2 probabilities sum above 62 of 64."""
    name = "paper"
    title = "paper's rule: voxel sum of 64 cube probabilities > 62"
    colour = "tab:red"

    def __init__(self, threshold: float = 62, connectivity: int = 1, min_voxels: int = 1):
        super().__init__(threshold=threshold, connectivity=connectivity, min_voxels=min_voxels)
        self.threshold = number(threshold, "threshold", 0)
        self.connectivity = number(connectivity, "connectivity", 1, 3, integer=True)
        self.min_voxels = number(min_voxels, "min_voxels", 1, integer=True)

    def unavailable(self, data):
        return needs_paper_model(data)

    def run(self, data):
        vm = data.voxels
        if not 0 < self.threshold < vm.full_window:
            raise InputError(None, f"threshold must lie between 0 and {vm.full_window} (the full window), "
                                   f"got {self.threshold:g}")
        return voxel_result(data, vm.mask(self.threshold), self.connectivity, self.min_voxels)
