"""Reading the small text files vaetool is given or keeps (study plans, configs, JSON specs and
summaries) with a bound: a path to /dev/zero or a huge file is refused before it fills memory."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from vaetool.errors import ConfigError

MAX_TEXT_BYTES = 16 * 2**20  # no plan, config or JSON document comes near 16 MiB


def read_text(path: Path, what: str = "text file") -> str:
    """The UTF-8 text of ``path``, read at most 16 MiB + 1 byte; larger is a ConfigError naming
    the file and ``what`` was expected. OSError and UnicodeDecodeError propagate."""
    with Path(path).open("rb") as handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise ConfigError(f"{path}: larger than 16 MiB; expected a {what}")
    return data.decode("utf-8")


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML (.toml) or JSON (.json) file: a flat table, names with - or _."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"‹config› {path}: expected a .toml or .json file")
    try:
        text = read_text(path, f"{suffix[1:]} config")
        raw = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"‹config› {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ConfigError(f"‹config› {path}: not readable as {suffix[1:]} ({err})") from None
    if not isinstance(raw, dict) or any(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"‹config› {path}: expected a flat table of option = value")
    return {key.replace("-", "_"): value for key, value in raw.items()}
