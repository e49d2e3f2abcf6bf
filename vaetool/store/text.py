"""Reading the small text files vaetool is given or keeps (study plans, configs, JSON specs and
summaries) with a bound: a path to /dev/zero or a huge file is refused before it fills memory."""

from __future__ import annotations

from pathlib import Path

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
