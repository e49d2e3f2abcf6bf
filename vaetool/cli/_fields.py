"""The one table from a setting's field to its command-line flag: the core names fields in its
messages (vaetool.errors.field), the CLI shows them as the flags that set them."""

from __future__ import annotations

from typing import Any

from vaetool.errors import render

# Fields whose flag is not "--" + the name with "-" for "_".
FLAGS = {
    "categories": "--latent-categorical",  # ModelConfig.categories
    "spec": "--data",  # DataConfig.spec
}


def flag(name: str, declared: frozenset[str] | None = None) -> str:
    """The flag that sets the field ``name``; ``-o name`` (``--option name=VALUE``) for a
    component's option that the command being run (``declared``: its long options) has no
    flag for (a plugin's)."""
    if name in FLAGS:
        return FLAGS[name]
    dashed = "--" + name.replace("_", "-")
    if declared is None or dashed in declared or "--option" not in declared:
        return dashed
    return f"-o {name}" if name in _component_options() else dashed


def _component_options() -> set[str]:
    from vaetool.workflows.components import components

    return {o.name for c in components() for o in c.options}


def command_flags(root: Any, argv: tuple[str, ...]) -> frozenset[str] | None:
    """The long options of the (click) command that ``argv`` runs under ``root``; None when
    ``argv`` names no command."""
    command, found = root, None
    for word in argv:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command = found = sub
    if found is None:
        return None
    return frozenset(o for p in found.params for o in p.opts if o.startswith("--"))


def shown(text: str, declared: frozenset[str] | None = None) -> str:
    """A core message as the CLI prints it: each marked field as its flag."""
    return render(text, lambda name: flag(name, declared))
