#!/usr/bin/env bash
# The parallel-HDF5 venv (.venv-mpio) for `make test-mpio`: Debian's Open MPI and parallel HDF5
# (installed with apt-get when missing; needs root or sudo), then scripts/install.sh with mpi4py and
# h5py built against them (pip keeps the built wheels in its cache) and no Horovod (it only scans).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="libopenmpi-dev openmpi-bin libhdf5-openmpi-dev pkg-config"
if ! { [ -x /usr/bin/mpicc ] && pkg-config --exists hdf5-openmpi 2>/dev/null; }; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install_mpio: installing $PKGS needs root" >&2; exit 2; }
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null; }
fi
VENV="$PWD/.venv-mpio" MPICC=/usr/bin/mpicc APT_CNN_MPI=site APT_CNN_H5_MPI=on APT_CNN_HOROVOD=off \
  bash scripts/install.sh
