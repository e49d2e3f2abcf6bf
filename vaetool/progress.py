"""The two progress-callback shapes, named once.

``Progress`` reports the work inside one step (encoding images, fitting an estimator, VMI
steps): ``(done, total)``. ``StageProgress`` is what a workflow hands its caller: the stage's
name, then done and total (None while the total is unknown); the CLI renders it as bars.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
StageProgress = Callable[[str, int, "int | None"], None]
