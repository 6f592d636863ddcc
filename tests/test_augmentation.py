"""The augmentation experiment: honest splits, working augmentations, every arm end to end."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from genedu import data, metrics, train
from genedu.apps import augmentation as aug
from genedu.diffusion import FlowMatching

TINY = aug.AugmentationConfig(
    labels=20,
    validation=20,
    classifier_steps=3,
    batch_size=16,
    classifier_hidden=4,
    generator_steps=3,
    semi_steps=3,
    generator_hidden=16,
    latent_dim=2,
    min_confidence=0.0,
    multiples=(1, 2),
    cas_samples=20,
)


@pytest.fixture(scope="module")
def small_sets():
    """400 training and 60 test images of the bundled MNIST sample: seconds, offline."""
    full = data.load("mnist5k", "train")
    test = data.load("mnist5k", "test")
    pick = lambda s, n: data.ImageSet(s.name, s.split, s.images[:n], s.labels[:n])  # noqa: E731
    return pick(full, 400), pick(test, 60)


def test_split_is_balanced_seeded_and_disjoint():
    labels = torch.arange(1000) % 10
    a = aug.split_train(labels, 50, 100, seed=3)
    assert torch.bincount(labels[a.labelled], minlength=10).tolist() == [5] * 10
    assert len(a.validation) == 100 and len(a.unlabelled) == 1000 - 150
    parts = torch.cat([a.labelled, a.validation, a.unlabelled])
    assert len(parts.unique()) == 1000  # disjoint, and together the whole training set
    again, other = (
        aug.split_train(labels, 50, 100, seed=3),
        aug.split_train(labels, 50, 100, seed=4),
    )
    assert all(torch.equal(x, y) for x, y in zip(a, again, strict=True))
    assert not torch.equal(a.labelled, other.labelled)


def test_split_rejects_what_it_cannot_honour():
    labels = torch.arange(100) % 10
    with pytest.raises(ValueError, match="multiple of 10"):
        aug.split_train(labels, 15, 10, seed=0)
    with pytest.raises(ValueError, match="class 9 has 0 images"):
        aug.split_train(torch.arange(100) % 9, 20, 10, seed=0)
    with pytest.raises(ValueError, match="too few"):
        aug.split_train(labels, 50, 60, seed=0)
    with pytest.raises(ValueError, match="int64"):
        aug.split_train(labels.float(), 10, 10, seed=0)
    with pytest.raises(ValueError, match="labels must be a positive multiple"):
        aug.AugmentationConfig(labels=15)
    with pytest.raises(ValueError, match="min_confidence"):
        aug.AugmentationConfig(min_confidence=1.0)


def test_gaussian_blur_matches_scipy():
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    ours = aug.gaussian_blur(x, 1.0)
    theirs = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 1.0, 1.0), mode="nearest", truncate=3)
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-12)


def test_elastic_is_the_identity_without_displacement_and_seeded_otherwise():
    x = data.to_unit(data.load("mnist5k", "train").images[:4])
    assert torch.allclose(aug.elastic(x, alpha=0.0), x, atol=1e-5)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    warped = aug.elastic(x, generator=g())
    assert torch.equal(warped, aug.elastic(x, generator=g()))
    assert (warped - x).abs().mean() > 0.01  # it moved the strokes
    assert warped.min() >= 0 and warped.max() <= 1
    with pytest.raises(ValueError):
        aug.elastic(x * 2)


def test_corruption_is_seeded_and_each_part_can_be_switched_off():
    images = data.load("mnist5k", "test").images[:8]
    x = data.to_unit(images)
    none = aug.corrupt(images, degrees=0, blur=0, noise=0)
    assert torch.allclose(none, x, atol=1e-5)
    assert torch.equal(aug.corrupt(x, seed=1), aug.corrupt(x, seed=1))
    assert not torch.equal(aug.corrupt(x, seed=1), aug.corrupt(x, seed=2))
    noisy = aug.corrupt(x, degrees=0, blur=0, noise=0.3)
    assert 0.1 < (noisy - x).abs().mean() < 0.3
    blurred = aug.corrupt(x, degrees=0, blur=1.0, noise=0)
    assert blurred.max() < x.max() and torch.allclose(blurred.mean(), x.mean(), atol=0.01)


def test_interval_is_the_student_t_interval():
    mean, half = aug.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and math.isclose(half, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert math.isnan(aug.interval([0.5])[1])


def test_pseudo_labels_keep_only_confident_guesses():
    images = data.load("mnist5k", "train").images[:50]
    clf = metrics.Classifier(metrics.ClassifierConfig(hidden=4, features=8)).eval()
    labels, keep = aug.pseudo_label(clf, images, 0.0)
    assert keep.all() and labels.shape == (50,)
    _, none = aug.pseudo_label(clf, images, 0.999999)
    assert not none.any()  # an untrained classifier is never that sure


def test_every_arm_runs_and_the_test_set_never_enters_training_or_selection(
    small_sets, monkeypatch
):
    train_set, test_set = small_sets
    test_x = data.to_unit(test_set.images).flatten(1)
    seen: list[tuple[str, torch.Tensor]] = []  # every image tensor trained or selected on
    measuring = []

    def holds_test_images(x: torch.Tensor) -> bool:
        x = (data.to_unit(x) if x.dtype == torch.uint8 else x).flatten(1)
        return bool((x[:, None] == test_x[None]).all(-1).any())

    real_fit, real_accuracy, real_measure = train.fit, metrics.accuracy, aug._measure

    def spy_fit(model, batches, **kwargs):
        seen.append(("fit", batches[0] if isinstance(batches, tuple) else batches))
        return real_fit(model, batches, **kwargs)

    def spy_accuracy(model, images, labels):
        if not measuring:  # before the final measure, only validation may be scored
            seen.append(("selection", images))
        return real_accuracy(model, images, labels)

    def spy_measure(*args, **kwargs):
        measuring.append(True)
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy_fit)
    monkeypatch.setattr(metrics, "accuracy", spy_accuracy)
    monkeypatch.setattr(aug, "_measure", spy_measure)
    result = aug.run(train_set, test_set, TINY, seed=0)

    assert measuring, "the final numbers come from _measure"
    assert {"fit", "selection"} <= {what for what, _ in seen}
    leaks = [what for what, x in seen if holds_test_images(x)]
    assert not leaks, f"test images reached {leaks}"
    # the check can fail: a test image among training images is found
    assert holds_test_images(torch.cat([train_set.images[:5], test_set.images[7:8]]))

    assert set(result["arms"]) == set(aug.ARMS)
    for arm in result["arms"].values():
        for key in ("validation", "test", "corrupted"):
            assert 0.0 <= arm[key] <= 1.0
    assert [e["synthetic"] for e in result["curves"]["cvae"]] == [20, 40]
    assert result["arms"]["real"]["synthetic"] == 0
    assert result["arms"]["classic+synthetic"]["generator"] in aug.SYNTHETIC
    assert set(result["cas"]) == set(aug.SYNTHETIC)
    assert result["split"] == {"labelled": 20, "validation": 20, "unlabelled": 360}
    assert result["pseudo_labels"]["kept"] == 360  # min_confidence 0 keeps every guess
    capped = aug.AugmentationConfig(**{**TINY.__dict__, "unlabelled": 50})
    assert aug.run(train_set, test_set, capped)["pseudo_labels"]["unlabelled"] == 50


def test_a_seeded_run_repeats_exactly(small_sets):
    train_set, test_set = small_sets
    config = aug.AugmentationConfig(**{**TINY.__dict__, "multiples": (1,)})
    first = aug.run(train_set, test_set, config, seed=1)
    second = aug.run(train_set, test_set, config, seed=1)

    def strip(r):
        return {a: {k: v for k, v in e.items() if k != "seconds"} for a, e in r["arms"].items()}

    assert strip(first) == strip(second)
    assert first["cas"] == second["cas"]


def test_the_flow_arm_is_added_without_moving_any_other_arm(small_sets):
    """The flow-matching arm runs from its own seed with the global random state put
    back, so every other arm's numbers, and their CAS, are those of a run without it."""
    train_set, test_set = small_sets
    config = aug.AugmentationConfig(**{**TINY.__dict__, "multiples": (1, 2)})
    without = aug.run(train_set, test_set, config, seed=1)
    flowing = replace(config, flow_steps=3, flow_hidden=4, flow_sample_steps=2)
    with_flow = aug.run(train_set, test_set, flowing, seed=1, keep_models=True)

    def strip(r):
        return {a: {k: v for k, v in e.items() if k != "seconds"} for a, e in r["arms"].items()}

    assert set(with_flow["arms"]) == {*aug.ARMS, aug.FLOW} and aug.FLOW not in without["arms"]
    assert {a: e for a, e in strip(with_flow).items() if a != aug.FLOW} == strip(without)
    assert {g: with_flow["cas"][g] for g in aug.SYNTHETIC} == without["cas"]
    assert 0.0 <= with_flow["cas"][aug.FLOW] <= 1.0
    assert set(aug.summarise([with_flow])) == set(with_flow["arms"])
    assert set(aug.summarise([with_flow, without])) == set(aug.ARMS)  # not every run has it
    assert [e["synthetic"] for e in with_flow["curves"][aug.FLOW]] == [20, 40]
    flow = with_flow["models"][aug.FLOW]
    assert isinstance(flow, FlowMatching) and flow.config.num_classes == 10
    images, labels = aug.synthesize(flow, 20, seed=0, steps=2)  # balanced, in [0, 1]
    assert torch.bincount(labels).tolist() == [2] * 10 and 0 <= images.min() <= images.max() <= 1
    with pytest.raises(ValueError, match="flow_steps must be >= 0"):
        replace(config, flow_steps=-1)


def test_run_refuses_unlabelled_data(small_sets):
    train_set, test_set = small_sets
    bare = data.ImageSet("bare", "test", test_set.images)
    with pytest.raises(ValueError, match="has no labels"):
        aug.run(train_set, bare, TINY)


@pytest.mark.parametrize("semi", [False, True], ids=["cvae", "semi-cvae"])
def test_the_reference_generator_is_run_s_recipe_and_seeded(small_sets, semi):
    train_set, test_set = small_sets
    name = "semi-cvae" if semi else "cvae"
    ran = aug.run(train_set, test_set, TINY, seed=2, keep_models=True)
    model, found = aug.reference_generator(train_set, test_set, TINY, semi=semi, seed=2)
    again, _ = aug.reference_generator(train_set, test_set, TINY, semi=semi, seed=2)
    theirs = ran["models"][name]
    assert model.config == theirs.config  # the same network as run's generator
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    assert 0 <= found["cas"] <= 1 and found["steps"] == 3
    if semi:  # min_confidence 0 keeps every guess, as in run
        assert found["pseudo_labels_kept"] == ran["pseudo_labels"]["kept"] == 360
        assert found["train_images"] == 20 + 360
    else:
        assert found["train_images"] == 20 and "pseudo_labels_kept" not in found


def test_train_cvae_saves_a_conditional_vae_with_its_cas(tmp_path, monkeypatch, capsys):
    from genedu import cli, hub

    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    out = tmp_path / "cvae"
    argv = "train cvae --data mnist5k --labels 20 --steps 2 --hidden 8 --latent 2 --out"
    assert cli.main([*argv.split(), str(out)]) == 0
    assert "cas" in capsys.readouterr().out
    model = hub.load(out)
    assert model.config.num_classes == 10 and model.config.architecture == "mlp"
    images, labels = aug.synthesize(model, 20, seed=0)
    assert images.shape == (20, 1, 28, 28) and labels.tolist() == [k % 10 for k in range(20)]
    meta = hub.read_tensors(out)[1]
    assert meta["command"].startswith("genedu train cvae --data mnist5k --labels 20")
    assert meta["metrics"]["labels"] == 20 and 0 <= meta["metrics"]["cas"] <= 1
    # genedu eval judges it as training did, on the data its checkpoint records: by CAS
    assert cli.main(["eval", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{out} on mnist5k test: CAS ") and "200 classifier steps" in line
    cas = float(line.split("CAS ")[1].split()[0])
    assert cas == pytest.approx(meta["metrics"]["cas"], abs=0.05)
