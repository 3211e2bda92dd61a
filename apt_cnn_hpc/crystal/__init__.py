"""Crystal structures from YAML, pole rotations, detector effects and synthetic specimens."""
from .structure import Structure, load_structure
from .orientation import orientation_matrix
from .lattice import lattice_sites
from .detector import Instrument, apply_efficiency, apply_noise

__all__ = ["Structure", "load_structure", "orientation_matrix", "lattice_sites",
           "Instrument", "apply_noise", "apply_efficiency"]
