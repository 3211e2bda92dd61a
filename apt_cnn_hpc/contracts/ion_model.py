"""A per-ion model directory (schema apt-cnn-hpc/ion-model/1): the two cross-fitted stage-1
networks `stage1_0.keras`, `stage1_1.keras` (their mean logit is used), the stage-2 network
`stage2.keras` and `model_card.json`: `solutes` (the two species whose order it reads),
`features` (stage-1 and stage-2 widths), `training` (conditions, seeds, rows), `calibration`
(Platt map of the stage-2 output, fitted on validation specimens), `metrics` and `software`."""
import json
from pathlib import Path

from ..errors import InputError
from ..fileutil import sha256_file
from .schema import check_schema, schema_name

CARD = "model_card.json"
FILES = ("stage1_0.keras", "stage1_1.keras", "stage2.keras")
KIND, VERSION = "ion-model", 1
DEFAULT_ION_MODEL = Path(__file__).resolve().parents[2] / "models" / "ion"


def load_ion_card(model_dir) -> dict:
    d = Path(model_dir)
    if not (d / CARD).is_file() or not all((d / f).is_file() for f in FILES):
        raise InputError(d, f"not a per-ion model directory (needs {', '.join(FILES)} and {CARD})")
    try:
        card = json.loads((d / CARD).read_text())
    except json.JSONDecodeError:
        raise InputError(d / CARD, "model card is not valid JSON") from None
    check_schema(card.get("schema"), d / CARD, KIND, (VERSION,))
    card["model_sha256"] = {f: sha256_file(d / f) for f in FILES}
    return card


def load_ion_models(model_dir) -> tuple:
    """(card, [stage-1 models], stage-2 model)."""
    import keras
    d = Path(model_dir)
    card = load_ion_card(d)
    models = []
    for f in FILES:
        try:
            models.append(keras.models.load_model(d / f, compile=False))
        except Exception as exc:  # Keras raises many types for a bad archive
            raise InputError(d / f, f"cannot load model ({type(exc).__name__})") from None
    return card, models[:2], models[2]


def write_ion_model(model_dir, stage1: list, stage2, card: dict):
    """The three networks and the card into a temporary sibling directory, renamed into place
    when complete (a replaced model is moved aside first and removed after), so a reader never
    sees networks of one training with the card of another."""
    import shutil
    d = Path(model_dir)
    tmp, old = d.with_name(f".{d.name}.tmp"), d.with_name(f".{d.name}.old")
    for p in (tmp, old):
        shutil.rmtree(p, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f, m in zip(FILES, [*stage1, stage2]):
        m.save(tmp / f)
    card = {"schema": schema_name(KIND, VERSION), **{k: v for k, v in card.items() if k != "model_sha256"}}
    (tmp / CARD).write_text(json.dumps(card, indent=2, default=float))
    if d.exists():
        d.replace(old)
    tmp.replace(d)
    shutil.rmtree(old, ignore_errors=True)
