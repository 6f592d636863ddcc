"""genedu.hub: safetensors + JSON checkpoints, their errors, and the shipped list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from genedu import hub, train
from genedu.baselines import BernoulliMixture, IndependentBernoulli, MixtureConfig
from genedu.hub import CheckpointError
from genedu.pixelcnn import GatedPixelCNN, PixelCNNConfig
from genedu.stylegan import StyleGAN, StyleGANConfig
from genedu.text import CharTransformer, TransformerConfig

CONFIG = MixtureConfig(components=3, shape=(1, 4, 4))


def trained_looking_mixture(seed: int = 0, config: MixtureConfig = CONFIG) -> BernoulliMixture:
    g = torch.Generator().manual_seed(seed)
    model = BernoulliMixture(config)
    with torch.no_grad():
        model.logits.copy_(3 * torch.randn(model.logits.shape, generator=g))
        model.weight_logits.copy_(torch.randn(config.components, generator=g))
    return model


def binary_batch(n: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 2, (n, *CONFIG.shape), generator=g).float()


def edit_json(stem: Path, change) -> None:
    path = stem.with_suffix(".json")
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.fixture
def saved(tmp_path) -> tuple[BernoulliMixture, Path]:
    model = trained_looking_mixture()
    stem = hub.save(model, tmp_path / "runs" / "mix", metrics={"nll": 12.5}, command="genedu x")
    return model, stem


# ---------------------------------------------------------------------------- round trip


def test_round_trip_gives_the_same_model_in_eval_mode(saved, tmp_path):
    model, stem = saved
    assert stem == tmp_path / "runs" / "mix"
    assert stem.with_suffix(".safetensors").is_file() and stem.with_suffix(".json").is_file()
    model.train()

    loaded = hub.load(stem)
    assert type(loaded) is BernoulliMixture
    assert not loaded.training
    assert loaded.config == model.config  # shape comes back as a tuple
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = binary_batch()
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
    g0, g1 = (torch.Generator().manual_seed(3) for _ in range(2))
    assert torch.equal(loaded.sample(5, generator=g0), model.sample(5, generator=g1))


def test_load_accepts_either_file_name(saved):
    _, stem = saved
    for path in (stem.with_suffix(".json"), stem.with_suffix(".safetensors"), str(stem)):
        assert type(hub.load(path)) is BernoulliMixture


def test_json_keeps_class_config_metrics_and_command(saved):
    _, stem = saved
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["class"] == "genedu.baselines.BernoulliMixture"
    assert meta["config"] == {"components": 3, "shape": [1, 4, 4]}
    assert meta["metrics"] == {"nll": 12.5} and meta["command"] == "genedu x"
    assert meta["name"] == "mix"


def test_half_precision_round_trip(tmp_path):
    model = trained_looking_mixture()
    stem = hub.save(model, tmp_path / "half", half=True)
    stored = load_file(stem.with_suffix(".safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}

    loaded = hub.load(stem)
    assert loaded.logits.dtype == torch.float32
    assert not torch.equal(loaded.logits, model.logits)  # it really went through float16
    torch.testing.assert_close(loaded.logits, model.logits, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(
        loaded.log_prob(binary_batch()), model.log_prob(binary_batch()), rtol=1e-2, atol=0.05
    )


# --------------------------------------------------------------------------------- errors


def test_architecture_mismatch_names_tensor_and_shapes(saved):
    _, stem = saved
    edit_json(stem, lambda meta: meta["config"].update(components=5))
    with pytest.raises(CheckpointError) as info:
        hub.load(stem)
    message = str(info.value)
    assert "weight_logits: checkpoint mix has shape (3,), the model (5,)" in message
    assert "logits: checkpoint mix has shape (3, 1, 4, 4), the model (5, 1, 4, 4)" in message


def test_unknown_config_field(saved):
    _, stem = saved
    edit_json(stem, lambda meta: meta["config"].update(depth=4))
    with pytest.raises(CheckpointError, match=r"config fields \['depth'\]"):
        hub.load(stem)


@pytest.mark.parametrize(
    "model",
    [
        lambda: GatedPixelCNN(PixelCNNConfig(shape=(1, 4, 4), hidden=6, layers=1)),
        lambda: CharTransformer(
            TransformerConfig(vocab="ab\n", block_size=4, layers=1, heads=2, hidden=8)
        ),
        lambda: StyleGAN(
            StyleGANConfig(
                shape=(1, 8, 8), latent_dim=4, w_dim=4, hidden=4, mapping_layers=1, d_hidden=4
            )
        ),
    ],
    ids=["pixelcnn", "transformer", "stylegan"],
)
def test_checkpoints_saved_under_the_old_width_names_still_load(model, tmp_path):
    torch.manual_seed(0)
    model = model()
    stem = hub.save(model, tmp_path / "old")
    renamed = hub.RENAMED[type(model.config).__name__]
    edit_json(stem, lambda meta: meta.update(config={
        {new: old for old, new in renamed.items()}.get(k, k): v
        for k, v in meta["config"].items()}))  # fmt: skip
    assert set(renamed) <= set(json.loads(stem.with_suffix(".json").read_text())["config"])
    back = hub.load(stem)
    assert back.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_missing_and_extra_tensors_are_listed():
    model = IndependentBernoulli()
    with pytest.raises(CheckpointError) as info:
        hub.load_state(model, {"bias": torch.zeros(1)}, source="test file")
    assert "missing in test file: logits" in str(info.value)
    assert "not in the model: bias" in str(info.value)


@pytest.mark.parametrize("garbage", [b"\x00garbage", b"\xff" * 64, b""])
def test_corrupt_safetensors_names_the_file(saved, garbage):
    _, stem = saved
    stem.with_suffix(".safetensors").write_bytes(garbage)
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        hub.load(stem)
    assert str(stem.with_suffix(".safetensors")) in str(info.value)


def test_corrupt_json_names_the_file(saved):
    _, stem = saved
    stem.with_suffix(".json").write_text('{"format": ')
    with pytest.raises(CheckpointError, match="not valid JSON") as info:
        hub.load(stem)
    assert str(stem.with_suffix(".json")) in str(info.value)


def test_missing_safetensors_file(saved):
    _, stem = saved
    stem.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        hub.load(stem)


def test_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint 'no-such-model'"):
        hub.load("no-such-model")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        hub.load(tmp_path / "absent")


@pytest.mark.parametrize("field", ["class", "config_class"])
def test_classes_outside_genedu_are_refused(saved, field):
    _, stem = saved
    edit_json(stem, lambda meta: meta.update({field: "os.system"}))
    with pytest.raises(CheckpointError, match="refusing to build 'os.system'"):
        hub.load(stem)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("class"), "field 'class' must be str, got nothing"),
        (lambda m: m.update({"class": ["genedu.vae.VAE"]}), "'class' must be str, got list"),
        (lambda m: m.update(config="components=3"), "field 'config' must be dict, got str"),
        (lambda m: m.update(metrics=[1, 2]), "field 'metrics' must be dict, got list"),
        (lambda m: m.update(command=3), "field 'command' must be a string or null"),
        (lambda m: m.update({"class": "genedu.hub.load"}), "refusing to build 'genedu.hub.load'"),
        (lambda m: m.update(config_class="genedu.vae.VAEConfig"),
         "BernoulliMixture takes a genedu.baselines.MixtureConfig"),
        (lambda m: m["config"].update(components="3"), "config field 'components' must be int"),
        (lambda m: m["config"].update(components=True), "config field 'components' must be int"),
        (lambda m: m["config"].update(shape=16), "config field 'shape' must be tuple"),
        (lambda m: m["config"].update(components=0), "does not make a BernoulliMixture"),
    ],
)  # fmt: skip
def test_each_corrupt_field_is_named(saved, change, message):
    _, stem = saved
    edit_json(stem, change)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        hub.load(stem)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_tensors_with_nan_or_inf_are_refused_by_name(saved, bad):
    _, stem = saved
    tensors = load_file(stem.with_suffix(".safetensors"))
    tensors["logits"][0, 0] = bad
    save_file(tensors, stem.with_suffix(".safetensors"))
    with pytest.raises(CheckpointError, match="tensor\\(s\\) logits hold NaN or inf"):
        hub.load(stem)


def test_only_registered_families_can_be_saved(tmp_path):
    class Homemade(torch.nn.Module):
        config = CONFIG

    with pytest.raises(CheckpointError, match="not one of genedu's model families"):
        hub.save(Homemade(), tmp_path / "homemade")


def test_not_a_model_checkpoint(saved, tmp_path):
    _, stem = saved
    edit_json(stem, lambda meta: meta.update(format="something-else/1"))
    with pytest.raises(CheckpointError, match="not a genedu model checkpoint"):
        hub.load(stem)
    other = hub.save(trained_looking_mixture(), tmp_path / "model")
    with pytest.raises(CheckpointError, match="not a genedu training checkpoint"):
        model = trained_looking_mixture()
        train.load_training_state(other, model, torch.optim.Adam(model.parameters()))


def test_write_leaves_no_temporary_files(saved):
    _, stem = saved
    assert sorted(p.name for p in stem.parent.iterdir()) == ["mix.json", "mix.safetensors"]


def test_names_with_a_dot_are_kept_apart(tmp_path):
    first, second = trained_looking_mixture(seed=1), trained_looking_mixture(seed=2)
    hub.save(first, tmp_path / "beta0.5")
    hub.save(second, tmp_path / "beta0.7")
    assert torch.equal(hub.load(tmp_path / "beta0.5").logits, first.logits)
    assert torch.equal(hub.load(tmp_path / "beta0.7").logits, second.logits)


# --------------------------------------------------------------------------- shipped list


def test_list_describes_every_shipped_checkpoint():
    rows = hub.list()
    assert isinstance(rows, list)
    assert len(rows) == len(list(hub.WEIGHTS_DIR.glob("*.json")))
    for row in rows:
        assert isinstance(row, dict)
        assert {"name", "metrics", "command"} <= row.keys()


def test_shipped_names_are_listed_and_loadable(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    model = trained_looking_mixture()
    hub.save(model, weights / "mixture-ref", metrics={"test_nll_nats": 9.0}, command="make ref")
    monkeypatch.setattr(hub, "WEIGHTS_DIR", weights)

    assert hub.list() == [
        {
            "name": "mixture-ref",
            "class": "genedu.baselines.BernoulliMixture",
            "metrics": {"test_nll_nats": 9.0},
            "command": "make ref",
        }
    ]
    assert torch.equal(hub.load("mixture-ref").logits, model.logits)
    with pytest.raises(CheckpointError, match="mixture-ref"):  # the error lists what exists
        hub.load("mixture-typo")
