"""Segmentation of the scan's voxel map and scoring against ground truth."""
from .score import oracle_labels, prf
from .voxels import VoxelMap, ion_labels, read_voxel_map

__all__ = ["VoxelMap", "read_voxel_map", "ion_labels", "oracle_labels", "prf"]
