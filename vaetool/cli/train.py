"""`vaetool train` and `vaetool quickstart`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import DeviceOpt, ForceOpt

if TYPE_CHECKING:
    from vaetool.training.session import EpochRecord

DATA_HELP = "[data] Data set: NAME or NAME:PATH (`vaetool components dataset` lists them)."
OBJECTIVE_HELP = "[objective] Training objective (`vaetool components objective` lists them)."
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="CPU threads for torch (fewer can be faster on a busy machine).",
                 show_default="torch's default"),
]  # fmt: skip
QUICKSTART_DIR = Path("vaetool-quickstart")


def _opt(help_text: str, **kwargs: object) -> object:
    """An option that defaults to None ("not given"), so --config values can fill it."""
    return typer.Option(help=help_text, **kwargs)


def train(
    # data
    data: Annotated[str | None, _opt(DATA_HELP, show_default="mnist5k")] = None,
    subset: Annotated[int | None, _opt("[data] Train on a seeded sample of N images.")] = None,
    split_seed: Annotated[int | None, _opt("[data] Seed of the 0.6/0.2/0.2 split.")] = None,
    # model
    latents: Annotated[int | None, _opt("[model] H, latent factors.", show_default="128")] = None,
    likelihood: Annotated[
        str | None,
        _opt(
            "[model] Decoder likelihood (`vaetool components likelihood` lists them).",
            show_default="bernoulli",
        ),
    ] = None,
    sigma2: Annotated[
        float | None, _opt("[model] σ² of gaussian; the start of gaussian_learned's and mog2's.")
    ] = None,
    noise_fit: Annotated[
        str | None,
        _opt("[model] gaussian_learned: closed (batch optimum σ̂²) or gradient (Adam on log σ²)."),
    ] = None,
    noise_per_pixel: Annotated[
        bool | None,
        typer.Option("--noise-per-pixel", help="[model] gaussian_learned: one σ² per pixel."),
    ] = None,
    noise_warmup: Annotated[
        int | None,
        _opt(
            "[model] gaussian_learned (closed): steps at the start σ² before fitting it.",
            show_default="50",
        ),
    ] = None,
    components: Annotated[int | None, _opt("[model] mog2: K mixture components.")] = None,
    encoder: Annotated[
        str | None,
        _opt(
            "[model] Encoder (`vaetool components encoder`; split: paper 003 §4.2).",
            show_default="paper",
        ),
    ] = None,
    split_width: Annotated[int | None, _opt("[model] Split encoder: per-factor width.")] = None,
    split_depth: Annotated[int | None, _opt("[model] Split encoder: per-factor layers.")] = None,
    noise_corr: Annotated[
        float | None, _opt("[model] ρ of correlated reparameterisation noise (paper 003 eq. 13).")
    ] = None,
    latent_categorical: Annotated[
        int | None,
        typer.Option(
            "--latent-categorical",
            help="[model] K: add a K-way categorical code beside the Gaussian factors (paper 001).",
            show_default="none",
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        _opt("[model] Gumbel-softmax τ of the code (τ₀ when annealed).", show_default="0.67"),
    ] = None,
    temperature_rate: Annotated[
        float | None, _opt("[model] r > 0 anneals τ_t = max(0.5, τ₀·exp(−r·t)) over steps t.")
    ] = None,
    # objective
    objective: Annotated[str | None, _opt(OBJECTIVE_HELP, show_default="beta_vae")] = None,
    beta: Annotated[
        float | None, _opt("[objective] β: KL weight (beta_vae), TC weight (beta_tcvae).")
    ] = None,
    gamma: Annotated[
        float | None, _opt("[objective] γ (annealed_vae, factor_vae, beta_tcvae).")
    ] = None,
    alpha: Annotated[float | None, _opt("[objective] α: MI weight (beta_tcvae).")] = None,
    capacity: Annotated[float | None, _opt("[objective] C_max nats (annealed_vae).")] = None,
    capacity_steps: Annotated[
        int | None, _opt("[objective] Steps to reach C_max (annealed_vae).")
    ] = None,
    tc_estimator: Annotated[str | None, _opt("[objective] mws or mss (beta_tcvae).")] = None,
    lambda_od: Annotated[float | None, _opt("[objective] λ_od (dip_vae_i, dip_vae_ii).")] = None,
    lambda_d: Annotated[float | None, _opt("[objective] λ_d (dip_vae_i, dip_vae_ii).")] = None,
    vmi_lambda: Annotated[float | None, _opt("[objective] λ of the VMI term (vmi).")] = None,
    vmi_factors: Annotated[
        str | None,
        _opt(
            "[objective] vmi: c (the categorical code) or factors 0,1.",
            show_default="c if the model has a code, else 0,1",
        ),
    ] = None,
    vmi_q_lr: Annotated[float | None, _opt("[objective] vmi: Adam rate of Q.")] = None,
    vmi_entropy: Annotated[
        str | None,
        _opt(
            "[objective] vmi on the code: H = prior (log K, paper 001) or batch (H of the "
            "batch's mean code).",
            show_default="prior",
        ),
    ] = None,
    code_capacity: Annotated[
        float | None,
        _opt(
            "[objective] vmi: hold the code's KL near a capacity growing to C nats "
            "(Dupont 2018; beyond paper 001).",
            show_default="0, off",
        ),
    ] = None,
    code_gamma: Annotated[float | None, _opt("[objective] vmi: γ of the code capacity.")] = None,
    code_capacity_steps: Annotated[
        int | None, _opt("[objective] vmi: steps for the code capacity to reach C.")
    ] = None,
    # optimisation
    epochs: Annotated[
        int | None, _opt("[optimisation] Passes over the training split.", show_default="20")
    ] = None,
    batch_size: Annotated[
        int | None, _opt("[optimisation] Minibatch size.", show_default="100 (paper)")
    ] = None,
    lr: Annotated[
        float | None, _opt("[optimisation] Adam rate.", show_default="the paper's")
    ] = None,
    seed: Annotated[
        int | None, _opt("[optimisation] Seed of weights, shuffling and noise.")
    ] = None,
    seeds: Annotated[
        str | None,
        _opt(
            "[optimisation] Seeds 0,1,2: train them at once as one batched model into "
            "OUT/seed-S (each equal to its --seed run)."
        ),
    ] = None,
    keep: Annotated[
        str | None, _opt("[optimisation] Save the last or the best (val ELBO) epoch.")
    ] = None,
    precision: Annotated[
        str | None,
        _opt(
            "[optimisation] fp32, or bf16 (autocast forward; sums stay float64).",
            show_default="fp32",
        ),
    ] = None,
    graph: Annotated[
        bool | None,
        typer.Option(
            "--graph/--no-graph",
            help="[optimisation] On CUDA, replay the step as a CUDA graph.",
            show_default="--graph",
        ),
    ] = None,
    # any component's option by name
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="[component] KEY=VALUE: an option of the chosen objective, likelihood or any "
            "registered component by its name, e.g. -o beta=4 (repeatable; `vaetool components "
            "--options` lists them).",
            show_default=False,
        ),
    ] = None,
    # run
    config: Annotated[Path | None, _opt("[run] TOML or JSON file of any of these options.")] = None,
    resume: Annotated[
        Path | None, _opt("[run] Continue the unfinished run in this folder.")
    ] = None,
    out: Annotated[Path | None, _opt("[run] Run folder.", show_default="vaetool-run")] = None,
    force: Annotated[bool, typer.Option("--force", help="[run] Overwrite a finished run.")] = False,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Train a VAE with the papers' architecture for the data's image shape.

    Options by part: [data], [model], [objective] (each objective takes its own: one that
    does not apply is refused), [optimisation], [run]. --config FILE holds any of them; flags
    override it; the resolved settings are stored in the checkpoint (docs/training.md).

    Example: vaetool train --data mnist5k --epochs 20 --batch-size 25 --out runs/mnist
    """
    settings = {  # by part, as `vaetool train --help` lists them; None = not given
        **{"data": data, "subset": subset, "split_seed": split_seed},
        **{"latents": latents, "likelihood": likelihood, "sigma2": sigma2, "noise_fit": noise_fit,
           "noise_per_pixel": noise_per_pixel, "noise_warmup": noise_warmup,
           "components": components, "encoder": encoder, "split_width": split_width,
           "split_depth": split_depth, "noise_corr": noise_corr,
           "latent_categorical": latent_categorical, "temperature": temperature,
           "temperature_rate": temperature_rate},
        **{"objective": objective, "beta": beta, "gamma": gamma, "alpha": alpha,
           "capacity": capacity, "capacity_steps": capacity_steps, "tc_estimator": tc_estimator,
           "lambda_od": lambda_od, "lambda_d": lambda_d, "vmi_lambda": vmi_lambda,
           "vmi_factors": vmi_factors, "vmi_q_lr": vmi_q_lr, "vmi_entropy": vmi_entropy,
           "code_capacity": code_capacity, "code_gamma": code_gamma,
           "code_capacity_steps": code_capacity_steps},
        **{"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "seeds": seeds,
           "keep": keep, "precision": precision, "graph": graph},
    }  # fmt: skip
    from vaetool.workflows import resume_run, resume_seeds, train_request, train_run, train_seeds

    for key, value in parse_options(option or []).items():
        if settings.get(key) is not None:
            raise typer.BadParameter(f"{key} is given twice (by its flag and by --option)",
                                     param_hint="--option")  # fmt: skip
        settings[key] = value

    if resume is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in settings.items() if v is not None]
        if given or config is not None or force:
            raise typer.BadParameter(
                f"{', '.join(given) or '--config/--force'}: --resume continues the run with "
                "its own settings (only --device and --threads may be given)",
                param_hint="--resume",
            )
        if _finished(resume):
            return
        with training_display() as (on_batch, on_epoch, _):
            if _is_seed_group(resume):
                show = _labelled(on_epoch)
                outcomes = resume_seeds(resume, device=device, threads=threads,
                                        on_batch=on_batch, on_epoch=show)  # fmt: skip
            else:
                outcomes = [resume_run(resume, device=device, threads=threads,
                                       on_batch=on_batch, on_epoch=on_epoch)]  # fmt: skip
    else:
        run = {"out": out, "force": force or None, "device": device, "threads": threads,
               "seeds": settings.pop("seeds")}  # fmt: skip
        request = train_request({**settings, **run}, config)
        with training_display() as (on_batch, on_epoch, _):
            if request.seeds:
                outcomes = train_seeds(request, on_batch, _labelled(on_epoch))
            else:
                outcomes = [train_run(request, on_batch, on_epoch)]
    for outcome in outcomes:
        _console.result_line(f"checkpoint  {outcome.checkpoint}\nhistory     {outcome.history}")
        if outcome.result.info.train.keep == "best":
            _console.note(f"kept the weights of epoch {outcome.result.kept_epoch} (best val ELBO)")


def parse_options(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs: the key with - or _, the value read as a TOML value (4, 0.5, true,
    "text") or, when it is not one, as text."""
    import tomllib

    parsed: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE, e.g. beta=4",
                                     param_hint="--option")  # fmt: skip
        try:
            parsed[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed[key] = text.strip()
    return parsed


def _finished(folder: Path) -> bool:
    """A run that already finished: its checkpoints and a note, nothing to resume (exit 0)."""
    from vaetool.workflows.train import finished_run

    done = finished_run(folder)
    for checkpoint, _ in done:
        _console.result_line(f"checkpoint  {checkpoint}")
    if done:
        epochs = ", ".join(sorted({str(e) for _, e in done}))
        _console.note(
            f"{folder}: the run already finished (epochs: {epochs}); nothing to "
            "resume (to train longer, start a new run with a larger --epochs)"
        )
    return bool(done)


def _is_seed_group(folder: Path) -> bool:
    """A ``--seeds`` run folder: no state of its own, seed-*/ folders with one."""
    return not (folder / "resume.safetensors").exists() and any(folder.glob("seed-*/resume.*"))


def _labelled(on_epoch: Callable[..., None]) -> Callable[[int, EpochRecord], None]:
    """The per-epoch line for model k of a stack (only the first model's line is printed)."""

    def show(k: int, record: EpochRecord) -> None:
        if k == 0:
            on_epoch(record)

    return show


def quickstart(
    out: Annotated[Path, typer.Option(help="Run folder.")] = QUICKSTART_DIR,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 30,
    beta: Annotated[float, typer.Option(help="KL weight; 1 is the plain VAE.")] = 1.0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Train on the embedded MNIST digits; rank the factors, prune, traverse, write a report.

    Example: vaetool quickstart --out my-first-run
    """
    from vaetool.cli.mi import emit_ranking
    from vaetool.cli.prune import emit_prune
    from vaetool.workflows import QuickstartRequest, quickstart

    request = QuickstartRequest(out, epochs, beta, threads, force, device)
    with training_display() as (on_batch, on_epoch, progress):
        result = quickstart(request, on_batch, on_epoch, progress)
    _console.result_line(f"checkpoint       {result.trained.checkpoint}")
    emit_ranking(result.ranked, "table", None, rows=10)
    emit_prune(result.pruned, "table", None)
    sheet = result.report.parent / "traversals.png"
    _console.result_line(f"traversal sheet  {sheet}\nreport           {result.report}")
    _console.note(f"next: vaetool traverse {result.trained.checkpoint} --factor N")


@contextmanager
def training_display() -> Iterator[
    tuple[Callable[..., None], Callable[[EpochRecord], None], Callable[..., None]]
]:
    """A progress bar over each epoch's batches, one printed line per epoch (stderr), and a
    stage callback on the same display for the analyses that follow (quickstart)."""
    from rich.progress import TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.fields[stats]}"), TimeRemainingColumn())
    with _console.progress_bar(*columns) as progress:
        task = progress.add_task("epoch 1", total=None, stats="")

        def on_batch(epoch: int, batch: int, total: int, means: dict[str, float] | None) -> None:
            stats = {} if means is None else {"stats": _stats_text(means)}
            progress.update(task, description=f"epoch {epoch}", completed=batch,
                            total=total, **stats)  # fmt: skip

        def on_epoch(record: EpochRecord) -> None:
            v = record.val
            progress.console.print(
                f"epoch {record.epoch:>3}  train ELBO {record.train['elbo']:9.2f}  "
                f"val ELBO {v['elbo']:9.2f}  recon {v['recon']:8.2f}  "
                f"KL {v['kl']:7.2f}  {record.images_per_s:8.0f} img/s"
            )

        def on_stage(stage: str, done: int, total: int | None) -> None:
            progress.update(task, visible=False)
            stages(stage, done, total)

        stages = _console.stage_callback(progress)
        yield on_batch, on_epoch, on_stage


def _stats_text(means: dict[str, float]) -> str:
    return f"loss {means['loss']:.2f}  recon {means['recon']:.2f}  KL {means['kl']:.2f}"
