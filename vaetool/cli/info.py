"""`vaetool info CKPT`: what a checkpoint says about itself."""

from __future__ import annotations

from vaetool.cli._options import CheckpointArg, FormatOpt, OutputOpt
from vaetool.cli._render import check_format, emit_frame, emit_text


def info(checkpoint: CheckpointArg, fmt: FormatOpt = "table", output: OutputOpt = None) -> None:
    """Print a checkpoint's config: model, data, training and summary, after checking that its
    weights load (a checkpoint whose metadata reads but whose weights do not is shown, then
    refused with exit 1).

    Example: vaetool info runs/mnist/model.safetensors --format json
    """
    import json

    from vaetool.errors import CheckpointError, marked
    from vaetool.report.info import info_frame
    from vaetool.workflows.source import inspect_checkpoint

    check_format(fmt)
    # metadata that does not read: one line, nothing to show; weights that do not load (the
    # validation every other command runs): shown, then refused
    details, problem = inspect_checkpoint(checkpoint)
    if fmt == "json":
        emit_text(json.dumps(details.to_document(), indent=2) + "\n", output)
    else:
        emit_frame(info_frame(details), fmt, output, title=str(checkpoint))
    if problem is not None:
        raise CheckpointError(f"{marked(problem)}; it cannot be loaded (its metadata is shown)")
