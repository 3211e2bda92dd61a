"""A model directory (schema apt-cnn-hpc/model/1): `model.keras` (Keras 3) and `model_card.json`.

The card holds what the model was trained on and how well it does: `sdm` (the map settings a
scan must share), `library_config`, `dictionary` (path, SHA-256), `training`, `history`,
`metrics` (test split, held-out specimens, calibration errors), `calibration` (the map from the
network's output to a calibrated probability; absent = identity, as for models trained before
it existed) and `software`. Cards written before the schema key existed read as version 1.
"""
import json
from pathlib import Path

from ..errors import InputError
from ..fileutil import sha256_file
from ..sdm import SDMSettings
from .schema import check_schema, schema_name

CARD = "model_card.json"
WEIGHTS = "model.keras"
KIND, VERSION = "model", 1


def load_card(model_dir) -> dict:
    d = Path(model_dir)
    if not (d / CARD).is_file() or not (d / WEIGHTS).is_file():
        raise InputError(d, f"not a model directory (needs {WEIGHTS} and {CARD})")
    try:
        card = json.loads((d / CARD).read_text())
    except json.JSONDecodeError:
        raise InputError(d / CARD, "model card is not valid JSON") from None
    if not isinstance(card, dict) or "sdm" not in card:
        raise InputError(d / CARD, "model card has no 'sdm' settings")
    check_schema(card.get("schema", schema_name(KIND, 1)), d / CARD, KIND, (VERSION,))
    card["model_sha256"] = sha256_file(d / WEIGHTS)
    return card


def write_card(model_dir, card: dict):
    """Write (or replace) the card atomically; the weights' hash is never stored in it."""
    d = Path(model_dir)
    card = {"schema": schema_name(KIND, VERSION), **{k: v for k, v in card.items() if k != "model_sha256"}}
    tmp = d / f".{CARD}.tmp"
    tmp.write_text(json.dumps(card, indent=2, default=float))
    tmp.replace(d / CARD)


def write_model(model_dir, model, card: dict):
    """Weights, then the card (each renamed into place when complete)."""
    d = Path(model_dir)
    tmp = d / f".{WEIGHTS}.tmp.keras"
    model.save(tmp)
    tmp.replace(d / WEIGHTS)
    write_card(d, card)


def check_settings(card: dict, settings: SDMSettings, where):
    """A model only understands maps made exactly as its training maps were."""
    trained = SDMSettings.from_dict(card["sdm"], where)
    if trained != settings:
        diff = {k: (v, getattr(settings, k)) for k, v in trained.to_dict().items()
                if (list(getattr(settings, k)) if k == "pair" else getattr(settings, k)) != v}
        raise InputError(where, f"model was trained with other SDM settings (model vs config: {diff})")


def load_model(model_dir):
    """The Keras model of a model directory (compile=False: inference only)."""
    import keras
    try:
        return keras.models.load_model(Path(model_dir) / WEIGHTS, compile=False)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise InputError(Path(model_dir) / WEIGHTS, f"cannot load model ({type(exc).__name__})") from None
