"""The synthetic dictionary of labelled zx-SDMs (HDF5), generated in parallel over MPI ranks."""
from .simulate import simulate_map, simulate_dictionary, LABELS

__all__ = ["simulate_map", "simulate_dictionary", "LABELS"]
