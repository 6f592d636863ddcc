"""genedu.train: budgets, determinism, the NaN guard, resume, Ctrl-C and evaluations."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genedu import data, train
from genedu.baselines import BernoulliMixture, MixtureConfig
from genedu.train import History, TrainingDiverged, fit

# ------------------------------------------------------------------------------ models


class NoisyAutoencoder(nn.Module):
    """A tiny model whose loss draws from torch's global RNG (input noise and dropout)."""

    def __init__(self, dim: int = 16, interrupt_at: int | None = None):
        super().__init__()
        self.encode = nn.Linear(dim, 8)
        self.decode = nn.Linear(8, dim)
        self.dropout = nn.Dropout(0.3)
        self.interrupt_at = interrupt_at  # raise KeyboardInterrupt mid-step on this call
        self.calls = 0

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch.flatten(1)
        h = self.dropout(torch.tanh(self.encode(x + 0.1 * torch.randn_like(x))))
        nll = F.binary_cross_entropy_with_logits(self.decode(h), x, reduction="none").sum(1).mean()
        call, self.calls = self.calls, self.calls + 1
        if call == self.interrupt_at:
            raise KeyboardInterrupt  # after the step has drawn its random numbers
        return {"loss": nll, "nll": nll, "hidden_mean": h.mean()}


class ScriptedFailure(nn.Module):
    """A quadratic model whose loss goes wrong on one call: NaN, inf, or a Ctrl-C."""

    def __init__(self, fail_at: int, how: str):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.fail_at, self.how, self.calls = fail_at, how, 0

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        call, self.calls = self.calls, self.calls + 1
        if call == self.fail_at and self.how == "interrupt":
            raise KeyboardInterrupt  # before any randomness or computation
        loss = ((self.w - batch.float().mean()) ** 2).sum()
        if call == self.fail_at:
            loss = loss * {"nan": float("nan"), "inf": float("inf")}[self.how]
        return {"loss": loss}


def small_images(n: int = 64, side: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8)


def autoencoder(init_seed: int = 0, **kwargs) -> NoisyAutoencoder:
    torch.manual_seed(init_seed)
    return NoisyAutoencoder(**kwargs)


def mixture(init_seed: int = 0) -> BernoulliMixture:
    torch.manual_seed(init_seed)
    return BernoulliMixture(MixtureConfig(components=3, shape=(1, 28, 28)))


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_params(a: nn.Module, b: nn.Module) -> None:
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k


# ------------------------------------------------------------------------------ budget


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("true", 1), ("0", 2), (None, 2)])
def test_budget_follows_genedu_quick(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("GENEDU_QUICK", raising=False)
    else:
        monkeypatch.setenv("GENEDU_QUICK", value)
    assert train.budget(quick=1, full=2) == expected


# --------------------------------------------------------------------------- determinism


def mnist5k_subset() -> torch.Tensor:
    return data.load("mnist5k", "train").images[:200]


@pytest.mark.parametrize(
    ("make_model", "make_data"),
    [(autoencoder, small_images), (mixture, mnist5k_subset)],
    ids=["noisy-autoencoder", "bernoulli-mixture"],
)
def test_same_seed_repeats_bit_for_bit(make_model, make_data):
    images = make_data()
    kwargs = dict(steps=12, batch_size=16, lr=1e-2, transform=data.binarize, progress=False)
    first, second, other = make_model(), make_model(), make_model()
    h1 = fit(first, images, seed=3, **kwargs)
    h2 = fit(second, images, seed=3, **kwargs)
    h3 = fit(other, images, seed=4, **kwargs)

    assert_same_params(first, second)
    assert h1.logs == h2.logs and h1.steps == h2.steps == list(range(12))
    assert h1.logs["loss"] != h3.logs["loss"]
    pa, pc = params(first), params(other)
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)


def test_global_rng_matters_inside_the_loss():
    """Only the model's own draws differ here (same data order): the result must differ."""
    images = small_images()
    kwargs = dict(steps=5, batch_size=16, seed=0, progress=False)
    with_dropout, without_dropout = autoencoder(), autoencoder()
    without_dropout.dropout.p = 0.0
    fit(with_dropout, images, **kwargs)
    fit(without_dropout, images, **kwargs)
    assert not torch.equal(with_dropout.decode.weight, without_dropout.decode.weight)


def test_training_lowers_the_loss():
    images = small_images()
    model = autoencoder()
    history = fit(
        model, images, steps=60, batch_size=32, lr=3e-2, progress=False, transform=data.binarize
    )
    first, last = sum(history["loss"][:5]) / 5, sum(history["loss"][-5:]) / 5
    assert last < first - 1.0
    assert not model.training  # fit leaves the model in eval mode


# ------------------------------------------------------------------------------ NaN guard


@pytest.mark.parametrize("how", ["nan", "inf"])
def test_non_finite_loss_names_the_step(how):
    model = ScriptedFailure(fail_at=3, how=how)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, torch.ones(8, 3), steps=10, batch_size=4, progress=False)
    assert "step 3" in str(info.value)
    assert isinstance(info.value, FloatingPointError)
    history = info.value.history
    assert history.steps == [0, 1, 2]
    assert len(history["loss"]) == 3
    assert all(torch.isfinite(torch.tensor(history["loss"])))


# --------------------------------------------------------------------------------- resume


def test_resume_matches_an_uninterrupted_run(tmp_path):
    images = small_images()
    kwargs = dict(batch_size=16, lr=1e-2, transform=data.binarize, seed=7, progress=False)
    uninterrupted = autoencoder(init_seed=1)
    full = fit(uninterrupted, images, steps=20, **kwargs)

    ckpt = tmp_path / "ckpt"
    first_half = fit(
        autoencoder(init_seed=1), images, steps=10, checkpoint=ckpt, checkpoint_every=10, **kwargs
    )
    assert first_half.steps == list(range(10))
    assert json.loads(ckpt.with_suffix(".json").read_text())["step"] == 10

    resumed_model = autoencoder(init_seed=99)  # fresh and different: resume must overwrite it
    resumed = fit(
        resumed_model, images, steps=20, checkpoint=ckpt, checkpoint_every=10, resume=True, **kwargs
    )

    assert_same_params(resumed_model, uninterrupted)
    assert resumed.steps == full.steps == list(range(20))
    assert resumed.logs == full.logs
    assert json.loads(ckpt.with_suffix(".json").read_text())["step"] == 20


def test_resume_without_a_checkpoint_starts_from_zero(tmp_path):
    images = small_images()
    kwargs = dict(steps=6, batch_size=16, seed=2, progress=False)
    fresh = fit(autoencoder(), images, **kwargs)
    resumed = fit(
        autoencoder(),
        images,
        checkpoint=tmp_path / "none-yet",
        checkpoint_every=3,
        resume=True,
        **kwargs,
    )
    assert resumed.logs == fresh.logs


# -------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_returns_history_and_saves_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "interrupted"
    model = ScriptedFailure(fail_at=5, how="interrupt")
    history = fit(model, torch.ones(8, 3), steps=50, batch_size=4, checkpoint=ckpt, progress=False)
    assert isinstance(history, History)
    assert history.interrupted is True
    assert history.steps == [0, 1, 2, 3, 4]
    assert "interrupted after 5 steps" in capsys.readouterr().out
    assert ckpt.with_suffix(".safetensors").is_file()
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["step"] == 5 and meta["history"]["interrupted"] is True


def test_ctrl_c_at_a_step_boundary_resumes_exactly(tmp_path):
    images = small_images()
    kwargs = dict(batch_size=16, seed=1, transform=data.binarize, progress=False)
    reference = ScriptedFailure(fail_at=-1, how="interrupt")
    full = fit(reference, images, steps=12, **kwargs)

    ckpt = tmp_path / "ckpt"
    stopped = fit(
        ScriptedFailure(fail_at=5, how="interrupt"), images, steps=12, checkpoint=ckpt, **kwargs
    )
    assert stopped.interrupted and len(stopped.steps) == 5
    resumed_model = ScriptedFailure(fail_at=-1, how="interrupt")
    resumed = fit(resumed_model, images, steps=12, checkpoint=ckpt, resume=True, **kwargs)
    assert resumed.logs == full.logs
    assert torch.equal(resumed_model.w, reference.w)


def test_ctrl_c_mid_step_resumes_exactly(tmp_path):
    images = small_images()
    kwargs = dict(batch_size=16, seed=1, transform=data.binarize, progress=False)
    uninterrupted = autoencoder(init_seed=1)
    full = fit(uninterrupted, images, steps=12, **kwargs)

    ckpt = tmp_path / "ckpt"
    stopped = fit(
        autoencoder(init_seed=1, interrupt_at=5), images, steps=12, checkpoint=ckpt, **kwargs
    )
    assert stopped.interrupted and len(stopped.steps) == 5
    resumed_model = autoencoder(init_seed=1)
    resumed = fit(resumed_model, images, steps=12, checkpoint=ckpt, resume=True, **kwargs)
    assert resumed.logs == full.logs
    assert_same_params(resumed_model, uninterrupted)


# ----------------------------------------------------------------------------- bad input


class NotADict(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def loss(self, batch):
        return (self.w * batch.float().mean()).sum()


def test_loss_must_return_a_dict_with_loss():
    with pytest.raises(ValueError, match="dict with the key 'loss'"):
        fit(NotADict(), torch.ones(4, 2), steps=1, progress=False)


def test_data_tensors_must_share_their_length():
    with pytest.raises(ValueError, match="differ in length"):
        fit(NotADict(), (torch.ones(10, 2), torch.zeros(9)), steps=1, progress=False)


def test_checkpoint_every_needs_a_path():
    with pytest.raises(ValueError, match="checkpoint path"):
        fit(NotADict(), torch.ones(4, 2), steps=1, checkpoint_every=1, progress=False)


# ----------------------------------------------------------------------------- evaluation


def test_evals_are_recorded_with_step_and_seconds():
    seen_modes = []

    def eval_fn(model: nn.Module) -> dict[str, float]:
        seen_modes.append((model.training, torch.is_grad_enabled()))
        return {"w0": model.w[0].item()}

    model = ScriptedFailure(fail_at=-1, how="nan")
    history = fit(
        model,
        torch.ones(8, 3),
        steps=10,
        batch_size=4,
        lr=0.1,
        eval_fn=eval_fn,
        eval_every=4,
        progress=False,
    )

    assert [e["step"] for e in history.evals] == [4, 8, 10]  # every 4, and at the end
    seconds = [e["seconds"] for e in history.evals]
    assert all(s >= 0 for s in seconds) and seconds == sorted(seconds)
    assert seen_modes == [(False, False)] * 3  # eval mode, no grad
    w0 = [e["w0"] for e in history.evals]
    assert w0[0] < w0[1] < w0[2] <= 1.0  # w moves towards the data mean, 1
    assert w0[2] == pytest.approx(model.w[0].item())


class SlowQuadratic(ScriptedFailure):
    """Each loss takes a known time, so that the training clock can be checked."""

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        time.sleep(0.02)
        return super().loss(batch)


def test_max_seconds_stops_on_the_training_clock_and_evals_do_not_count():
    def slow_eval(model: nn.Module) -> dict[str, float]:
        time.sleep(0.2)  # ten steps' worth, never charged to training
        return {"w0": model.w[0].item()}

    model = SlowQuadratic(fail_at=-1, how="nan")
    history = fit(model, torch.ones(8, 3), steps=10_000, batch_size=4, lr=0.1,
                  max_seconds=0.3, eval_fn=slow_eval, eval_at_seconds=[0.1, 0.2],
                  progress=False)  # fmt: skip
    assert 0.3 <= history.seconds[-1] < 0.5  # stopped at the budget, not at 10,000 steps
    assert 10 <= len(history.steps) < 25  # about 15 steps of 0.02 s
    marks = [e["seconds"] for e in history.evals]
    assert len(marks) == 3 and marks[0] >= 0.1 and marks[1] >= 0.2  # two marks, then the end
    assert history.evals[-1]["step"] == len(history.steps)  # the final eval is where it stopped


def test_warmup_cosine_rises_then_falls_to_its_floor():
    f = train.warmup_cosine(warmup=0.1, floor=0.1)
    assert f(0.0) < f(0.05) < f(0.1) == pytest.approx(1.0)  # the linear warm-up
    assert f(0.55) == pytest.approx(0.55)  # half-way down the cosine: (1 + 0.1) / 2
    assert f(1.0) == pytest.approx(0.1) and f(0.9) > f(1.0)


def rates_seen(model, batch, optimizers, *, step, generator):
    """A step that records the learning rate it was given, then trains as usual."""
    model.rates.append(optimizers["model"].param_groups[0]["lr"])
    return train.loss_step(model, batch, optimizers, step=step, generator=generator)


@pytest.mark.parametrize("limit", ["steps", "minutes"])
def test_the_schedule_ends_its_decay_where_the_run_ends(limit):
    model = SlowQuadratic(fail_at=-1, how="nan")
    model.rates = []
    budget = {"steps": 12} if limit == "steps" else {"steps": None, "max_seconds": 0.3}
    history = fit(model, torch.ones(8, 3), step=rates_seen, batch_size=4, lr=0.1,
                  lr_schedule=train.warmup_cosine(warmup=0.1, floor=0.1), progress=False,
                  **budget)  # fmt: skip
    rates = model.rates
    assert len(rates) == len(history.steps) and (limit == "minutes" or len(rates) == 12)
    top = rates.index(max(rates))
    falling = zip(rates[top:-1], rates[top + 1 :], strict=True)
    assert rates[0] < max(rates) and all(a >= b for a, b in falling)
    # the last step is within a step of the end of the decay, by steps or by time
    assert rates[-1] <= 0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (1 - 2 / len(rates)))))


def test_a_run_needs_steps_or_a_time_limit():
    with pytest.raises(ValueError, match="give steps, max_seconds, or both"):
        fit(SlowQuadratic(fail_at=-1, how="nan"), torch.ones(8, 3), steps=None)
    with pytest.raises(ValueError, match="max_seconds must be >= 0"):
        fit(SlowQuadratic(fail_at=-1, how="nan"), torch.ones(8, 3), steps=None, max_seconds=-1)


def test_budget_note_says_what_ran_and_what_the_other_budget_trains(monkeypatch, capsys):
    monkeypatch.setenv("GENEDU_QUICK", "1")
    line = train.budget_note(3.14, quick="40 steps", full="3,000 steps (about 4 min)")
    assert line == (
        "quick build: 40 steps in 3.1 s; without GENEDU_QUICK this trains 3,000 steps (about 4 min)"
    )
    assert capsys.readouterr().out == line + "\n"
    monkeypatch.setenv("GENEDU_QUICK", "0")
    line = train.budget_note(241.4, quick="40 steps", full="3,000 steps")
    assert line.startswith("full build: 3,000 steps, done in 241 s") and "40 steps" in line
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="seconds"):
            train.budget_note(bad, quick="a", full="b")


def test_progress_false_draws_no_bar(capsys):
    """progress=False keeps tqdm quiet (a nested name once shadowed the flag)."""
    model = torch.nn.Linear(2, 1)
    model.loss = lambda batch: {"loss": model(batch).pow(2).mean()}
    train.fit(model, torch.randn(32, 2), steps=3, batch_size=8, progress=False)
    assert capsys.readouterr().err == ""
    train.fit(model, torch.randn(32, 2), steps=3, batch_size=8, progress=True)
    assert "/3 [" in capsys.readouterr().err
