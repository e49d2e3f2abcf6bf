"""Reading the small text files vaetool is given or keeps (study plans, configs, JSON specs and
summaries) with a bound: only a regular file is opened for reading (a FIFO would block for ever,
/dev/zero never ends), and a huge file is refused before it fills memory."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from vaetool.errors import ConfigError, marked

MAX_TEXT_BYTES = 16 * 2**20  # no plan, config or JSON document comes near 16 MiB


def read_text(path: Path, what: str = "text file") -> str:
    """The UTF-8 text of the regular file ``path``, read at most 16 MiB + 1 byte. Anything else
    (a FIFO, a device, a folder, a socket) or a larger file is a ConfigError naming the file and
    saying that ``what`` was expected. OSError (a missing file) and UnicodeDecodeError
    propagate."""
    # O_NONBLOCK: opening a FIFO that no process writes returns at once instead of waiting for
    # a writer; fstat then says what was opened (no race between a check and the open)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: not a regular file ({_kind(mode)}); expected a {what}")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise ConfigError(f"{path}: larger than 16 MiB; expected a {what}")
    return data.decode("utf-8")


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a file")


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
    except ConfigError as err:
        raise ConfigError(f"‹config› {marked(err)}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ConfigError(f"‹config› {path}: not readable as {suffix[1:]} ({err})") from None
    if not isinstance(raw, dict) or any(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"‹config› {path}: expected a flat table of option = value")
    return {key.replace("-", "_"): value for key, value in raw.items()}
