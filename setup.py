from setuptools import find_packages, setup

setup(
    name="apt-cnn-hpc",
    version="0.1.0",
    description="CNN detection of L1_2-ordered domains in atom probe tomography data, on MPI clusters",
    packages=find_packages(include=["apt_cnn_hpc", "apt_cnn_hpc.*"]),
    package_data={"apt_cnn_hpc": ["configs/*.yaml", "structures/*.yaml"]},
    python_requires=">=3.11",
    install_requires=[
        "numpy", "scipy", "h5py", "numba", "mpi4py>=4", "tensorflow-cpu>=2.16", "matplotlib",
        "tqdm", "PyYAML", "threadpoolctl", "ifes-apt-tc-data-modeling>=0.5",
    ],
    # `apt-cnn export --nexus`: pynxtools validates and writes NeXus (NXapm); scripts/install.sh
    # installs it constrained to the stack already in .venv
    extras_require={"nexus": ["pynxtools>=0.16,<0.17"]},
    entry_points={"console_scripts": ["apt-cnn=apt_cnn_hpc.cli:main"]},
)
