"""What methods that label voxels share: components of a voxel mask, handed to ions by voxel."""
import numpy as np

from ..components import label_components
from ..voxels import voxel_values
from .base import MethodResult


def voxel_result(data, mask: np.ndarray, connectivity: int, min_voxels: int, **extra) -> MethodResult:
    """Precipitates = connected components of `mask`; every ion gets its voxel's component."""
    labels = label_components(mask, connectivity, min_voxels)
    return MethodResult(voxel_values(data.xyz, data.grid, labels), voxel_label=labels, **extra)
