"""The model card: what a model was trained on and how well it does; checked before a scan."""
import json
from pathlib import Path

from ..errors import InputError
from ..fileutil import sha256_file
from ..sdm import SDMSettings

CARD = "model_card.json"
WEIGHTS = "model.keras"


def load_card(model_dir) -> dict:
    d = Path(model_dir)
    if not (d / CARD).is_file() or not (d / WEIGHTS).is_file():
        raise InputError(d, f"not a model directory (needs {WEIGHTS} and {CARD})")
    try:
        card = json.loads((d / CARD).read_text())
    except json.JSONDecodeError:
        raise InputError(d / CARD, "model card is not valid JSON") from None
    if "sdm" not in card:
        raise InputError(d / CARD, "model card has no 'sdm' settings")
    card["model_sha256"] = sha256_file(d / WEIGHTS)
    return card


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
