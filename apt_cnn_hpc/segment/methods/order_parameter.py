"""The plain per-ion order parameter, a floor for learned methods (issues 13/14): an ion is L1_2
when the solute modulation of its neighbourhood at the superlattice period along z,
|sum_j (s_j - mean s) exp(2 pi i z_j / period)| / N over the ranged ions within `radius_nm`,
exceeds one fixed threshold; no learning, no smoothing. Precipitates are chains of such ions
closer than `link_nm`."""
import numpy as np

from ...sdm.order import order_parameter
from ..components import ion_components
from .base import Method, MethodResult, number, register


@register
class OrderParameter(Method):
    """Ions whose neighbourhood's solute modulation at the superlattice period exceeds a fixed threshold."""
    name = "order_parameter"
    title = "per-ion superlattice order parameter > fixed threshold"
    colour = "tab:green"

    def __init__(self, solutes=("Li", "Mg"), radius_nm: float = 1.0, period_nm: float = 0.2864,
                 threshold: float = 0.095, link_nm: float = 0.5, min_ions: int = 5):
        super().__init__(solutes=list(solutes), radius_nm=radius_nm, period_nm=period_nm, threshold=threshold,
                         link_nm=link_nm, min_ions=min_ions)
        self.solutes = [str(s) for s in solutes]
        self.radius = number(radius_nm, "radius_nm", 0.1, 5)
        self.period = number(period_nm, "period_nm", 0.05, 2)
        self.threshold = number(threshold, "threshold", 0, 1)
        self.link = number(link_nm, "link_nm", 0.05, 5)
        self.min_ions = number(min_ions, "min_ions", 1, integer=True)

    def run(self, data):
        ranged = np.flatnonzero(data.species >= 0)
        solute = data.species_mask(self.solutes)[ranged]
        op = np.zeros(len(data.xyz))
        op[ranged] = order_parameter(data.xyz[ranged], solute, self.radius, self.period)
        ids = ion_components(data.xyz, op > self.threshold, self.link, self.min_ions)
        return MethodResult(ids)
