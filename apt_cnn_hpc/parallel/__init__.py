"""MPI helpers: one communicator for the whole run, rank-aware logging and progress."""
from .mpi import comm_world, is_root, progress

__all__ = ["comm_world", "is_root", "progress"]
