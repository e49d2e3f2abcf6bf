"""K models of one shape trained at once, as one batched model (``vaetool train --seeds``).

Each model keeps its own :class:`~vaetool.training.session.Session` (its seed's weights,
shuffling and noise generators, history, run folder); the training truth is one set of stacked
parameters (K, ...) that every step evaluates with ``torch.func.vmap`` over
``functional_call``. The K losses are summed, and as the models share no parameter each slice
gets exactly its own gradient; Adam is elementwise, so one Adam over the stack is K Adams. Each
model's noise is drawn outside vmap from its own generator in its separate run's order
(vaetool.models.noise), so on a CPU model k ends equal, to float tolerance, to ``vaetool train
--seed k``. On CUDA the
noise is one draw for all K from the global generator (same distribution, no per-model loop).

At every epoch's end the stack is written back into the K sessions (weights and optimiser
states), so each saves the ordinary resumable state, history row and checkpoint of a single run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vaetool.device import autocast
from vaetool.errors import ConfigError
from vaetool.models import noise
from vaetool.objectives.base import apply_step
from vaetool.training.fit import ModelEpochCallback, fit_models
from vaetool.training.session import BatchCallback, Session

StackEpochCallback = ModelEpochCallback  # (model index k, its record)


class _Bundle(nn.Module):
    """A session's VAE and objective as one module whose forward is the objective's terms:
    the template ``functional_call`` fills with one model's slice of the stack."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.model = session.model
        self.objective = session.objective

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.objective.all_terms(x)


@dataclass(eq=False)
class Stack:
    """K sessions of one configuration (but the seed) and their stacked training state."""

    sessions: list[Session]
    bundle: _Bundle
    params: dict[str, Tensor]  # (K, ...) leaves, the training truth
    optimizers: dict[str, torch.optim.Optimizer]
    per_model_noise: bool  # True: model k's draws from sessions[k].noise (CPU, exact)
    plans: dict[int, list[noise.Draw]] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.sessions)

    @property
    def lead(self) -> Session:
        return self.sessions[0]


def stack_sessions(sessions: list[Session]) -> Stack:
    """One stack from sessions that differ only in their seed (and have done the same epochs).

    Each session's training noise moves to its own generator, in the state the global one has
    when its run starts training (so call this right after opening each session, in order).
    """
    lead = sessions[0]
    for other in sessions[1:]:
        if (other.model_config, other.data_config) != (lead.model_config, lead.data_config):
            raise ConfigError("‹seeds›: every model must share the configuration but the seed")
        if len(other.history) != len(lead.history):
            raise ConfigError("‹seeds›: the runs have done different numbers of epochs")
    bundles = [_Bundle(s) for s in sessions]
    names = [n for n, _ in bundles[0].named_parameters()]
    with torch.no_grad():
        params = {n: torch.stack([dict(b.named_parameters())[n] for b in bundles]) for n in names}
    params = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    return Stack(sessions, bundles[0], params, _stacked_optimizers(bundles, params),
                 lead.device.type == "cpu")  # fmt: skip


def _stacked_optimizers(
    bundles: list[_Bundle], params: dict[str, Tensor]
) -> dict[str, torch.optim.Optimizer]:
    """The lead objective's optimisers (same class and hyperparameters) over the stack, with
    every model's optimiser state (Adam's moments) stacked in."""
    lead = bundles[0]
    name_of = {id(p): n for n, p in lead.named_parameters()}
    out = {}
    for key, optimizer in lead.objective.optimizers().items():
        groups = []
        for group in optimizer.param_groups:
            hyper = {k: v for k, v in group.items() if k != "params"}
            groups.append({**hyper, "params": [params[name_of[id(p)]] for p in group["params"]]})
        stacked = type(optimizer)(groups)
        members = [b.objective.optimizers()[key] for b in bundles]
        for i, group in enumerate(stacked.param_groups):
            for j, p in enumerate(group["params"]):
                states = [m.state.get(m.param_groups[i]["params"][j]) for m in members]
                if all(states):
                    stacked.state[p] = _stack_state(states)
        out[key] = stacked
    return out


def _stack_state(states: list[dict]) -> dict:
    """Adam-like per-parameter states of K models as one: tensors of a parameter's shape are
    stacked; shared scalars (the step count) are taken from the first."""
    first = states[0]
    return {
        key: torch.stack([s[key] for s in states]) if _per_element(value) else value.clone()
        if isinstance(value, Tensor) else value
        for key, value in first.items()
    }  # fmt: skip


def _per_element(value: object) -> bool:
    return isinstance(value, Tensor) and value.dim() > 0


def write_back(stack: Stack) -> None:
    """Each model's slice of the stack (weights, optimiser states) into its own session."""
    with torch.no_grad():
        for k, session in enumerate(stack.sessions):
            own = dict(_Bundle(session).named_parameters())
            for name, value in stack.params.items():
                own[name].copy_(value[k])
            for key, stacked in stack.optimizers.items():
                member = session.objective.optimizers()[key]
                for i, group in enumerate(stacked.param_groups):
                    for j, p in enumerate(group["params"]):
                        if p in stacked.state:
                            target = member.param_groups[i]["params"][j]
                            member.state[target] = _slice_state(stacked.state[p], k)
        for session in stack.sessions[1:]:  # the shared step counter lives in the lead's
            session.objective.step.copy_(stack.lead.objective.step)


def _slice_state(state: dict, k: int) -> dict:
    return {key: (value[k].clone() if _per_element(value) else
                  value.clone() if isinstance(value, Tensor) else value)
            for key, value in state.items()}  # fmt: skip


def _plan(stack: Stack, batch: int) -> list[noise.Draw]:
    """The draws one model's step makes at this batch size (a dry run, once per size)."""
    if batch not in stack.plans:
        feed = stack.lead.val_feed if len(stack.lead.val_feed) else stack.lead.train_feed
        x = next(feed.batches(1))
        x = x.expand(batch, *x.shape[1:])
        with torch.no_grad(), noise.recording() as plan:
            stack.bundle(x)
        stack.plans[batch] = list(plan)
    return stack.plans[batch]


def _terms(stack: Stack, x: Tensor, draws: list[Tensor], x_dim: int | None) -> dict[str, Tensor]:
    """Every model's terms at once: {name: (K,)}; ``x`` is (K, B, ...) or shared (B, ...)."""

    def one(params: dict[str, Tensor], x: Tensor, *draws: Tensor) -> dict[str, Tensor]:
        with noise.replaying(draws):
            return torch.func.functional_call(stack.bundle, params, (x,))

    dims = (0, x_dim, *([0] * len(draws)))
    with autocast(stack.lead.device, stack.lead.train_config.precision):
        return torch.func.vmap(one, in_dims=dims)(stack.params, x, *draws)


def _draws(stack: Stack, batch: int, generators: list[torch.Generator] | None) -> list[Tensor]:
    plan = _plan(stack, batch)
    source = generators if stack.per_model_noise and generators is not None else stack.k
    return noise.draw_plan(plan, source, stack.lead.device)


def step(stack: Stack, x: Tensor) -> dict[str, Tensor]:
    """One step of all K models on their batches ``x`` (K, B, ...): terms {name: (K,)}."""
    generators = [s.noise for s in stack.sessions] if stack.per_model_noise else None
    terms = _terms(stack, x, _draws(stack, x.shape[1], generators), 0)  # type: ignore[arg-type]
    losses = stack.lead.objective.step_losses(terms)
    apply_step(stack.optimizers, {name: loss.sum() for name, loss in losses.items()})
    stack.lead.objective.step += 1
    return {k: v.detach() for k, v in terms.items()}


class StackStepper:
    """The K models of a :class:`Stack` as one execution mode of the training loop
    (vaetool.training.fit): stacked batches (each model its own shuffling), one vmapped step,
    per-model validation, and the stack written back into the sessions before their records."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sessions = stack.sessions
        self.names = stack.lead.objective.terms()

    def batches(self) -> Iterator[Tensor]:
        lead = self.stack.lead
        self.stack.bundle.train()
        shuffles = [s.shuffle for s in self.sessions]
        return lead.train_feed.stacked_batches(lead.train_config.batch_size, shuffles)

    def step(self, x: Tensor) -> Tensor:
        terms = step(self.stack, x)
        return torch.stack([terms[n] for n in self.names], 1).to(torch.float64)

    def batch_size(self, x: Tensor) -> int:
        return int(x.shape[1])

    def reduce(self, sums: Tensor) -> Tensor:
        return sums  # a stack trains in one process

    @torch.no_grad()
    def validate(self) -> Tensor:
        """Every model's mean terms on the validation split, its noise seeded ``seed + 1`` as
        a separate run's :func:`vaetool.training.fit.evaluate` (the training generators
        untouched)."""
        stack, lead = self.stack, self.stack.lead
        stack.bundle.eval()
        feed = lead.val_feed
        generators = [torch.Generator().manual_seed(s.train_config.seed + 1)
                      for s in self.sessions]  # fmt: skip
        sums = torch.zeros(stack.k, len(self.names), dtype=torch.float64, device=feed.device)
        for x in feed.batches(lead.train_config.batch_size):
            terms = _terms(stack, x, _draws(stack, x.shape[0], generators), None)
            sums += torch.stack([terms[n] for n in self.names], 1).to(torch.float64) * x.shape[0]
        return sums / max(len(feed), 1)

    def sync(self) -> None:
        write_back(self.stack)


def fit_stack(
    stack: Stack,
    on_batch: BatchCallback | None = None,
    on_epoch: StackEpochCallback | None = None,
) -> None:
    """The remaining epochs of all K models (the one loop, vaetool.training.fit); after each,
    every session records its epoch and ``on_epoch(k, record)`` saves it."""
    fit_models(StackStepper(stack), on_batch, on_epoch)
