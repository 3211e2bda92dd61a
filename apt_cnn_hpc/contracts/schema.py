"""Schema names "apt-cnn-hpc/<kind>/<version>" and the one check every reader makes."""
from ..errors import InputError

PREFIX = "apt-cnn-hpc"


def schema_name(kind: str, version: int) -> str:
    return f"{PREFIX}/{kind}/{version}"


def check_schema(value, path, kinds, versions) -> tuple[str, int]:
    """(kind, version) of a file's `schema` attribute; InputError when the file is not of one of
    `kinds` or was written by a version of the contract this software cannot read."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    text = value.decode() if isinstance(value, bytes) else str(value) if value is not None else ""
    parts = text.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in kinds or not parts[2].isdigit():
        raise InputError(path, f"not an apt-cnn {' or '.join(kinds)} file (schema {text or 'missing'!r})")
    version = int(parts[2])
    if version not in versions:
        raise InputError(path, f"{parts[1]} file version {version} is not readable by this apt-cnn-hpc "
                               f"(reads versions {', '.join(map(str, versions))}); upgrade or rerun the stage")
    return parts[1], version
