"""Labelled maps cut from a reconstruction (the paper's case 2: experimental FCC maps)."""
from .cubes import extract_maps, read_cube_list

__all__ = ["extract_maps", "read_cube_list"]
