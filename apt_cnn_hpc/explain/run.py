"""`apt-cnn explain`: feature maps and Grad-CAM of chosen maps (the paper's Figure 7)."""
import logging
import os

import numpy as np

from ..contracts.dictionary import open_maps, read_rows
from ..contracts.model_dir import load_card, load_model
from ..errors import InputError
from .gradcam import explain_maps

log = logging.getLogger(__name__)


def run(args):
    load_card(args.model)
    model = load_model(args.model)
    f, _, n = open_maps(args.maps)
    with f:
        if args.index:
            idx = np.asarray(args.index)
            if np.any((idx < 0) | (idx >= n)):
                raise InputError(args.maps, f"--index must be within 0..{n - 1}")
        else:   # the first FCC and the first L1_2 map
            labels = f["labels"][:]
            idx = np.asarray([int(np.argmax(labels == k)) for k in (0, 1) if np.any(labels == k)])
        maps, labels = read_rows(f, idx)
    os.makedirs(args.out, exist_ok=True)
    files = explain_maps(model, maps, labels, args.out)
    log.info("explain: %d figures in %s", len(files), args.out)
