"""`apt-cnn orient`: find the pole in a reconstruction, turn it onto z and calibrate the depth
scale on the plane spacing, so that the later stages (which assume an aligned, calibrated
reconstruction) can run on real data.

A stage of its own, apart from `crystal/orientation.py` (which rotates synthetic crystals):
search.py (coarse search over directions), pole.py (refinement and the transform), figure.py.
"""
