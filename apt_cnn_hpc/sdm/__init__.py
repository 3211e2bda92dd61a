"""Spatial distribution maps: numba pair kernels, region maps, per-voxel maps and box sums."""
from .settings import SDMSettings, parse_pair
from .maps import PartnerIndex, region_sdm, species_mask
from .voxel import VoxelGrid, cube_counts, cube_maps_by_layer, naive_cube_map, voxel_layer_maps

__all__ = ["SDMSettings", "parse_pair", "PartnerIndex", "region_sdm", "species_mask", "VoxelGrid",
           "voxel_layer_maps", "cube_maps_by_layer", "naive_cube_map", "cube_counts"]
