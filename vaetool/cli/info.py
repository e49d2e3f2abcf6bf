"""`vaetool info CKPT`: what a checkpoint says about itself."""

from __future__ import annotations

from vaetool.cli._options import CheckpointArg, FormatOpt, OutputOpt
from vaetool.cli._render import check_format, emit_frame, emit_text


def info(checkpoint: CheckpointArg, fmt: FormatOpt = "table", output: OutputOpt = None) -> None:
    """Print a checkpoint's config: model, data, training and summary (no weights are loaded).

    Example: vaetool info runs/mnist/model.safetensors --format json
    """
    import json

    from vaetool.report.info import info_frame
    from vaetool.workflows import read_info

    check_format(fmt)
    details = read_info(checkpoint)
    if fmt == "json":
        emit_text(json.dumps(details.to_document(), indent=2) + "\n", output)
        return
    emit_frame(info_frame(details), fmt, output, title=str(checkpoint))
