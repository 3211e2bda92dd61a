"""The distributed scan (MPI): decomposition with halos, cube maps, inference, voxel sums."""
from .run import scan

__all__ = ["scan"]
