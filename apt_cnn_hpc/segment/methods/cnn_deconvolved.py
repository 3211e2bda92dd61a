"""The 4 nm cube map unmixed: each cube's calibrated L1_2 probability is its share of L1_2
reference ions; the voxel fractions that reproduce all shares at once (segment/unmix.py) are
interpolated to a finer grid and cut (configs/segment.yaml: 0.4 of a voxel's reference ions).
Same cubes, same model as the paper's rule, but a boundary where the L1_2 fraction crosses the
cut instead of where nearly all 64 covering cubes are confident, so sizes do not shrink with the
window."""
import numpy as np

from ..components import label_components
from ..unmix import refine_grid, unmix
from .base import Method, MethodResult, number, register


@register
class DeconvolvedCNN(Method):
    """Voxel L1_2 fractions that reproduce every calibrated cube share, cut at a fraction."""
    name = "cnn_deconvolved"
    title = "calibrated cube L1_2 shares unmixed into voxel fractions"
    colour = "tab:orange"

    def __init__(self, fraction_threshold: float = 0.4, smoothing: float = 0.01, subvoxels: int = 2,
                 connectivity: int = 1, min_voxels: int = 1, max_iterations: int = 500):
        super().__init__(fraction_threshold=fraction_threshold, smoothing=smoothing, subvoxels=subvoxels,
                         connectivity=connectivity, min_voxels=min_voxels, max_iterations=max_iterations)
        self.cut = number(fraction_threshold, "fraction_threshold", 0, 1)
        self.smoothing = number(smoothing, "smoothing", 0)
        self.factor = number(subvoxels, "subvoxels", 1, 4, integer=True)
        self.connectivity = number(connectivity, "connectivity", 1, 3, integer=True)
        self.min_voxels = number(min_voxels, "min_voxels", 1, integer=True)
        self.max_iterations = number(max_iterations, "max_iterations", 1, integer=True)

    def unavailable(self, data):
        if not data.voxels.provenance.get("model_card", {}).get("calibration"):
            return "needs calibrated cube probabilities (the scan's model card has no calibration)"
        return None

    def run(self, data):
        grid, m = data.grid, data.settings.cube_voxels
        cubes = data.cubes
        full = tuple(n + m - 1 for n in grid.shape)
        idx = np.rint((cubes.origin_nm - np.asarray(grid.origin_nm)) / grid.voxel_nm).astype(np.int64) + (m - 1)
        share, weight = np.zeros(full), np.zeros(full)
        share[tuple(idx.T)] = cubes.probability
        weight[tuple(idx.T)] = 1.0
        n_ref = data.voxel_counts(data.species_mask(data.settings.pair[0]))
        fraction = unmix(share, weight, n_ref, m, self.smoothing, data.voxels.covered, self.max_iterations)
        fine = refine_grid(fraction, self.factor)
        labels = label_components(fine > self.cut, self.connectivity, self.min_voxels * self.factor ** 3)
        v = np.floor((data.xyz - np.asarray(grid.origin_nm)) / (grid.voxel_nm / self.factor)).astype(np.int64)
        v = np.clip(v, 0, np.asarray(labels.shape) - 1)
        return MethodResult(labels[tuple(v.T)], voxel_probability=fraction.astype(np.float32))
