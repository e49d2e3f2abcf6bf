"""The one table from a setting's field to its command-line flag: the core names fields in its
messages (vaetool.errors.field), the CLI shows them as the flags that set them."""

from __future__ import annotations

from vaetool.errors import render

# Fields whose flag is not "--" + the name with "-" for "_".
FLAGS = {
    "categories": "--latent-categorical",  # ModelConfig.categories
    "spec": "--data",  # DataConfig.spec
}


def flag(name: str) -> str:
    """The flag that sets the field ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def shown(text: str) -> str:
    """A core message as the CLI prints it: each marked field as its flag."""
    return render(text, flag)
