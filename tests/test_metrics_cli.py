"""genedu.metrics and the `genedu` command line (called in-process through cli.main)."""

from __future__ import annotations

import argparse
import json
import math
import re

import pytest
import torch

from genedu import cli, data, metrics, recipes
from genedu.baselines import BernoulliConfig, IndependentBernoulli
from genedu.recipes import common

# -------------------------------------------------------------------------------- metrics


def test_bits_per_dim_closed_form():
    assert metrics.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert metrics.bits_per_dim(3 * 2 * math.log(2), 3) == pytest.approx(2.0)
    as_tensor = metrics.bits_per_dim(torch.tensor([784 * math.log(2), 0.0]), 784)
    torch.testing.assert_close(as_tensor, torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("dims", [0, -3])
def test_bits_per_dim_needs_positive_dims(dims):
    with pytest.raises(ValueError, match="dims must be a positive"):
        metrics.bits_per_dim(1.0, dims)


def test_mean_nll_batched_equals_unbatched():
    g = torch.Generator().manual_seed(0)
    model = IndependentBernoulli(BernoulliConfig(shape=(1, 3, 3)))
    with torch.no_grad():
        model.logits.copy_(torch.randn(1, 3, 3, generator=g))
    x = torch.randint(0, 2, (25, 1, 3, 3), generator=g).float()
    whole = metrics.mean_nll(model.log_prob, x)
    assert whole == pytest.approx(-model.log_prob(x).mean().item(), rel=1e-6)
    for batch_size in (1, 7, 25):  # 7 leaves a short last batch
        assert metrics.mean_nll(model.log_prob, x, batch_size=batch_size) == pytest.approx(
            whole, rel=1e-6
        )


# ------------------------------------------------------------------------------------ CLI


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_list_offline_shows_every_dataset(monkeypatch, capsys):
    monkeypatch.setenv("GENEDU_OFFLINE", "1")
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0
    status_lines = {line.split()[0]: line for line in out.splitlines() if not line[:1].isspace()}
    assert set(status_lines) == set(data.REGISTRY)
    for name, entry in data.REGISTRY.items():
        expected = "bundled" if entry.embedded or entry.bundled else "missing"
        assert expected in status_lines[name], name
    terms = [line for line in out.splitlines() if line.strip().startswith("terms: ")]
    assert len(terms) == len(data.REGISTRY) and all(len(t.split(": ", 1)[1]) > 5 for t in terms)


def test_data_fetch_of_a_bundled_set(capsys):
    code, out, _ = run_cli(capsys, "data", "fetch", "mnist5k")
    assert code == 0
    assert "mnist5k: bundled with an installed package, nothing to fetch" in out


def test_data_verify_shared_data(shared_data, capsys):
    code, out, err = run_cli(capsys, "data", "verify")
    assert code == 0, err
    assert "mnist: ok (4 files verified)" in out
    assert "tinyshakespeare: ok (1 files verified)" in out


def test_data_verify_reports_a_corrupt_file(tmp_path, capsys):
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    for spec in data.REGISTRY["mnist"].files:
        (root / "mnist" / spec.filename).write_bytes(b"not mnist")
    code, out, err = run_cli(capsys, "data", "verify", "mnist", "frey", "--root", str(root))
    assert code == 1
    assert "frey: not present" in out
    assert str(root / "mnist") in err and "corrupt" in err


def test_data_verify_with_nothing_present(capsys):
    code, out, _ = run_cli(capsys, "data", "verify", "mnist")
    assert (code, out.strip()) == (0, "mnist: not present")


def test_train_sample_eval(tmp_path, capsys):
    ckpt = tmp_path / "m"
    argv = "train mixture --data mnist5k --steps 3 --components 4 --out".split()
    code, out, err = run_cli(capsys, *argv, str(ckpt))
    assert code == 0, err
    assert f"saved {ckpt}.safetensors" in out
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["config"]["components"] == 4
    assert 50 < meta["metrics"]["test_nll_nats"] < 400

    png = tmp_path / "s.png"
    code, out, err = run_cli(capsys, "sample", str(ckpt), "--n", "8", "--out", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = run_cli(capsys, "eval", str(ckpt), "--data", "mnist5k")
    assert code == 0, err
    assert "nats" in out and "bits/dim" in out
    # eval sees the same test split, binarised the same way, as train's metric did
    nll = float(re.search(r"NLL ([\d.]+) nats", out).group(1))
    assert nll == pytest.approx(meta["metrics"]["test_nll_nats"], abs=2e-3)


def test_train_vae_then_sample(tmp_path, capsys):
    ckpt = tmp_path / "v"
    argv = "train vae --data mnist5k --steps 20 --hidden 4 --latent 2 --batch-size 32 --out"
    code, out, err = run_cli(capsys, *argv.split(), str(ckpt))
    assert code == 0, err
    assert "test -ELBO" in out and f"saved {ckpt}.safetensors" in out
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["config"]["likelihood"] == "bernoulli" and meta["config"]["latent_dim"] == 2
    m = meta["metrics"]
    # the IWAE bound is tighter than the ELBO, and both are real numbers of nats
    assert 50 < m["test_nll_iwae100_first1000_nats"] <= m["test_neg_elbo_nats"] + 1 < 700
    assert meta["command"].startswith("genedu train vae --data mnist5k")
    assert not (tmp_path / "v-training.json").exists()  # the resumable state is cleaned up

    png = tmp_path / "s.png"
    code, _, err = run_cli(capsys, "sample", str(ckpt), "--n", "8", "--out", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # eval measures as train did (same seed, same binarisation): the same numbers,
    # up to the float16 the checkpoint is stored in
    code, out, err = run_cli(capsys, "eval", str(ckpt), "--data", "mnist5k")
    assert code == 0, err
    neg_elbo = float(re.search(r"-ELBO ([\d.]+) nats", out).group(1))
    assert neg_elbo == pytest.approx(m["test_neg_elbo_nats"], abs=0.5)


def test_unknown_dataset_exits_2_with_a_message(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "train", "mixture", "--data", "no-such-set", "--out", str(tmp_path / "m")
    )
    assert code == 2
    assert "unknown dataset 'no-such-set'" in err
    assert not (tmp_path / "m.json").exists()
    code, _, err = run_cli(capsys, "data", "fetch", "no-such-set")
    assert code == 2 and "unknown dataset" in err


def test_unknown_checkpoint_exits_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "eval", str(tmp_path / "absent"), "--data", "mnist5k")
    assert code == 2 and "no checkpoint" in err


def test_sample_a_shipped_vae_writes_a_png_grid(tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "digits.png"
    code, out, err = run_cli(capsys, "sample", "vae-mnist", "--n", "16", "--nrow", "4",
                             "--out", str(png))  # fmt: skip
    assert code == 0, err
    assert f"wrote {png}" in out
    picture = Image.open(png)
    assert picture.format == "PNG" and picture.width > 100 and picture.height > 100


# ------------------------------------------------------------- GANs and the classifier


def test_a_ctrl_c_in_genedu_train_saves_nothing_as_finished_and_the_rerun_resumes(
    tmp_path, capsys, monkeypatch
):
    from genedu.vae import VAE

    ckpt = tmp_path / "v"
    argv = "train vae --data mnist5k --steps 30 --hidden 4 --latent 2 --batch-size 32 --out"
    calls, real_loss = [], VAE.loss

    def interrupted_loss(self, *a, **k):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return real_loss(self, *a, **k)

    monkeypatch.setattr(VAE, "loss", interrupted_loss)
    code, _, err = run_cli(capsys, *argv.split(), str(ckpt))
    assert code == 130 and "interrupted after 11 steps" in err and "run the same command" in err
    assert not ckpt.with_suffix(".safetensors").exists()  # no half-trained "finished" model
    assert json.loads((tmp_path / "v-training.json").read_text())["step"] == 11

    monkeypatch.setattr(VAE, "loss", real_loss)
    code, out, err = run_cli(capsys, *argv.split(), str(ckpt))
    assert code == 0, err
    assert json.loads(ckpt.with_suffix(".json").read_text())["metrics"]["steps"] == 30
    assert not (tmp_path / "v-training.json").exists()


def test_train_classifier_then_eval(tmp_path, capsys):
    out = tmp_path / "clf"
    code, stdout, _ = run_cli(capsys, "train", "classifier", "--data", "mnist5k", "--steps", "3",
                              "--hidden", "4", "--out", str(out))  # fmt: skip
    assert code == 0 and "test accuracy" in stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["command"].startswith("genedu train classifier --data mnist5k")
    assert {"test_accuracy", "train_seconds", "device", "threads"} <= set(meta["metrics"])
    code, stdout, _ = run_cli(capsys, "eval", str(out), "--data", "mnist5k")
    assert code == 0 and re.search(r"accuracy 0\.\d{4}", stdout)


@pytest.mark.parametrize("model", ["dcgan", "cdcgan", "stylegan"])
def test_train_gan_sample_and_eval(model, tmp_path, capsys):
    out = tmp_path / model
    code, stdout, err = run_cli(capsys, "train", model, "--data", "mnist5k", "--steps", "3",
                                "--hidden", "4", "--latent", "4", "--size", "32",
                                "--out", str(out))  # fmt: skip
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["shape"] == [1, 32, 32]
    assert meta["config"].get("num_classes", 0) == (10 if model == "cdcgan" else 0)
    assert meta["metrics"]["steps"] == 3
    assert not (tmp_path / f"{model}-training.json").exists()  # the resumable state is spent
    code, _, _ = run_cli(capsys, "sample", str(out), "--n", "8", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.parametrize("objective", ["flow", "ddpm"])
def test_train_diffusion_sample_and_eval(objective, tmp_path, capsys):
    out = tmp_path / objective
    code, stdout, err = run_cli(capsys, "train", "diffusion", "--objective", objective,
                                "--data", "mnist5k", "--conditional", "--steps", "3",
                                "--hidden", "4", "--timesteps", "10", "--sample-steps", "2",
                                "--guidance", "2", "--quality-samples", "200",
                                "--out", str(out))  # fmt: skip
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["class"] == f"genedu.diffusion.{'FlowMatching' if objective == 'flow' else 'DDPM'}"
    assert meta["config"]["num_classes"] == 10 and meta["metrics"]["steps"] == 3
    sampler = "heun" if objective == "flow" else "ddim"
    assert meta["metrics"]["sampling"] == {"sampler": sampler, "steps": 2, "guidance": 2.0}
    assert {"fid_test", "precision", "recall", "class_agreement"} <= set(meta["metrics"])
    code, stdout, _ = run_cli(capsys, "eval", str(out), "--data", "mnist5k", "--n", "1000")
    assert code == 0 and f"'sampler': '{sampler}', 'steps': 2" in stdout and "fid_test" in stdout
    code, _, _ = run_cli(capsys, "sample", str(out), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


def test_train_latent_diffusion_is_judged_beside_its_vaes_prior(tmp_path, capsys):
    out = tmp_path / "latent"
    code, _, err = run_cli(capsys, "train", "latent-diffusion", "--data", "mnist5k",
                           "--steps", "30", "--hidden", "8", "--layers", "1",
                           "--sample-steps", "2", "--quality-samples", "200",
                           "--eval-minutes", "0.0002",
                           "--out", str(out))  # fmt: skip
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["class"] == "genedu.latent_diffusion.LatentDiffusion"
    assert meta["config"]["vae"] == "vae-mnist"
    assert {"fid_test", "vae_prior_fid_test", "vae_prior_precision"} <= set(meta["metrics"])
    assert meta["metrics"]["curve"][0]["fid_test"] > 0  # measured at the --eval-minutes mark
    code, stdout, _ = run_cli(capsys, "eval", str(out), "--data", "mnist5k", "--n", "1000")
    assert code == 0 and "fid_test" in stdout


def test_a_diffusion_sampler_of_the_other_objective_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "diffusion", "--objective", "flow", "--sampler",
                           "ddim", "--data", "mnist5k", "--steps", "1", "--hidden", "4",
                           "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "--sampler ddim: flow samples with one of ('euler', 'heun')" in err


def test_eval_of_a_shipped_gan_reports_sample_quality(capsys):
    code, stdout, _ = run_cli(capsys, "eval", "dcgan-mnist", "--data", "mnist5k", "--n", "500")
    assert code == 0
    assert "no likelihood" in stdout and "fid_test" in stdout and "recall" in stdout


def test_gan_size_that_padding_cannot_reach_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "dcgan", "--data", "mnist5k", "--size", "31",
                           "--steps", "1", "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "S a multiple of 4" in err
    code, _, err = run_cli(capsys, "train", "stylegan", "--data", "mnist5k", "--size", "48",
                           "--steps", "1", "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "power of two" in err
    code, _, err = run_cli(capsys, "train", "stylegan", "--data", "mnist5k", "--size", "16",
                           "--steps", "1", "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "pad up to 16×16" in err


def test_train_stylegan_on_faces_pads_them_by_their_border(tmp_path, capsys):
    out = tmp_path / "faces"
    args = ["--steps", "2", "--hidden", "4", "--augment", "translation", "--out", str(out)]
    code, _, err = run_cli(capsys, "train", "stylegan", "--data", "lfw-faces", *args)
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["shape"] == [1, 32, 32] and meta["config"]["augment"] == "translation"


def test_train_pixelcnn_then_eval_and_sample(tmp_path, capsys):
    ckpt = tmp_path / "p"
    argv = "train pixelcnn --data mnist5k --steps 3 --hidden 4 --layers 2 --conditional"
    argv += " --n-test 20 --eval-minutes 0.0001 --out"  # a mark after the first step
    code, out, err = run_cli(capsys, *argv.split(), str(ckpt))
    assert code == 0, err
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["class"] == "genedu.pixelcnn.GatedPixelCNN"
    assert meta["config"]["num_classes"] == 10 and meta["config"]["likelihood"] == "bernoulli"
    m = meta["metrics"]
    assert m["train_steps"] == 3 and m["test_images"] == 20 and len(m["curve"]) == 2
    # untrained: about 784 ln 2 = 543 nats; the class never costs more than log 10
    assert 300 < m["test_nll_given_class_nats"] < 800
    assert m["test_nll_nats"] <= m["test_nll_given_class_nats"] + 2.31
    assert not (tmp_path / "p-training.json").exists()

    code, out, err = run_cli(capsys, "eval", str(ckpt), "--data", "mnist5k", "--n", "20")
    assert code == 0, err
    nll = float(re.search(r"NLL ([\d.]+) nats", out).group(1))
    assert nll == pytest.approx(m["test_nll_nats"], abs=2e-3)  # the same images, binarised alike

    png = tmp_path / "s.png"
    code, out, err = run_cli(capsys, "sample", str(ckpt), "--n", "4", "--out", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("architecture", ["transformer", "gru", "ngram"])
def test_train_char_then_sample_and_eval(architecture, tmp_path, capsys):
    out = tmp_path / architecture
    argv = "train char --data census-names --steps 5 --hidden 16 --layers 1 --order 3"
    code, stdout, err = run_cli(capsys, *argv.split(), "--architecture", architecture,
                                "--out", str(out))  # fmt: skip
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    m = meta["metrics"]
    assert meta["config"]["boundary"] == "\n" and 0 <= m["new_names_of_200"] <= 200
    assert 0 < m["test_nats_per_char"] < 3.5  # below ln 27 = 3.30 or near it
    assert not (tmp_path / f"{architecture}-training.json").exists()
    code, stdout, _ = run_cli(capsys, "sample", str(out), "--prompt", "ma", "--n", "4")
    assert (
        code == 0 and len(stdout.split()) == 4 and all(s.startswith("ma") for s in stdout.split())
    )
    code, stdout, _ = run_cli(capsys, "eval", str(out), "--data", "census-names")
    assert code == 0 and f"{m['test_nats_per_char']:.4f} nats/char" in stdout


def test_train_char_on_prose_and_bad_prompts(tmp_path, capsys):
    out = tmp_path / "prose"
    code, _, err = run_cli(capsys, "train", "char", "--data", "python-docs", "--steps", "2",
                           "--hidden", "16", "--layers", "1", "--block-size", "32",
                           "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert json.loads(out.with_suffix(".json").read_text())["config"]["block_size"] == 32
    code, _, err = run_cli(capsys, "sample", str(out))
    assert code == 2 and "non-empty prompt" in err
    code, _, err = run_cli(capsys, "sample", str(out), "--prompt", "caf\u00e9")
    assert code == 2 and "'\u00e9'" in err
    with pytest.raises(SystemExit):  # argparse: the architectures are a fixed choice
        cli.main(["train", "char", "--architecture", "conv", "--out", str(tmp_path / "x")])
    assert "'transformer', 'gru', 'lstm', 'ngram'" in capsys.readouterr().err


def test_eval_augmentation_prints_every_arm(capsys):
    assert cli.main(["eval", "augmentation", "--quick", "--labels", "20", "--data", "mnist5k"]) == 0
    out = capsys.readouterr().out
    for arm in ("real", "classic", "cvae", "semi-cvae", "classic+synthetic"):
        assert re.search(rf"^{re.escape(arm)}\s+\d+\s+0\.\d{{4}}\s+0\.\d{{4}}", out, re.M), out
    assert "CAS: cvae 0." in out and "pseudo-labels:" in out
    assert cli.main(["eval", "augmentation", "--quick", "--labels", "15"]) == 2
    assert "multiple of 10" in capsys.readouterr().err


def test_eval_anomaly_one_class_and_ood(capsys):
    assert cli.main(["eval", "anomaly", "--quick", "--method", "pca", "--digit", "3"]) == 0
    assert re.search(r"digit 3: pca AUROC 0\.\d{4}", capsys.readouterr().out)
    args = ["eval", "anomaly", "--quick", "--method", "vae", "--digit", "7", "--steps", "2"]
    assert cli.main(args) == 0
    assert re.search(r"digit 7: vae AUROC [01]\.\d{4}, PNG-corrected [01]\.\d{4}",
                     capsys.readouterr().out)  # fmt: skip
    assert cli.main(["eval", "anomaly", "--quick", "--method", "ood", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    for score in ("likelihood", "complexity", "corrected"):
        assert re.search(rf"AUROC of {score}\s+0\.\d{{4}}|AUROC of {score}\s+1\.0000", out), out
    with pytest.raises(SystemExit):  # argparse: digits are 0..9
        cli.main(["eval", "anomaly", "--digit", "11"])


@pytest.mark.parametrize(
    ("family", "flag", "config", "field"),
    [
        ("vae", "latent", "genedu.vae.VAEConfig", "latent_dim"),
        ("vae", "hidden", "genedu.vae.VAEConfig", "hidden"),
        ("pixelcnn", "hidden", "genedu.pixelcnn.PixelCNNConfig", "hidden"),
        ("pixelcnn", "layers", "genedu.pixelcnn.PixelCNNConfig", "layers"),
        ("dcgan", "hidden", "genedu.gan.GANConfig", "hidden"),
        ("stylegan", "hidden", "genedu.stylegan.StyleGANConfig", "hidden"),
        ("stylegan", "r1", "genedu.stylegan.StyleGANConfig", "r1_gamma"),
        ("char", "hidden", "genedu.text.TransformerConfig", "hidden"),
        ("mixture", "components", "genedu.baselines.MixtureConfig", "components"),
        ("classifier", "hidden", "genedu.metrics.ClassifierConfig", "hidden"),
        ("diffusion", "hidden", "genedu.diffusion.DiffusionConfig", "hidden"),
        ("diffusion", "timesteps", "genedu.diffusion.DiffusionConfig", "timesteps"),
    ],
)
def test_a_familys_flags_default_to_its_config(family, flag, config, field):
    import importlib

    module, name = config.rsplit(".", 1)
    expected = getattr(importlib.import_module(module), name).__dataclass_fields__[field].default
    args = cli.parser().parse_args(["train", family, "--out", "x"])
    assert getattr(args, flag) == expected


@pytest.mark.parametrize("family", sorted(recipes.RECIPES))
def test_every_family_has_its_own_help(family, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", family, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and f"usage: genedu train {family}" in out
    assert "--out" in out and "--seed" in out
    assert ("--minutes MINUTES" in out) == (family not in ("mixture", "classifier", "cvae"))
    if family == "pixelcnn":  # only its own flags, each with its default
        assert "--conditional" in out and "--augment" not in out and "(default: 64)" in out


@pytest.mark.parametrize("family", ["mixture", "classifier", "cvae"])
def test_minutes_is_refused_where_the_trainer_has_no_clock(family, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", family, "--minutes", "1", "--out", str(tmp_path / "x")])
    assert "unrecognized arguments: --minutes 1" in capsys.readouterr().err


def test_minutes_is_honoured_by_the_vae(tmp_path, capsys):
    ckpt = tmp_path / "v"
    argv = "train vae --data mnist5k --hidden 4 --latent 2 --batch-size 32 --minutes 0.02"
    code, _, err = run_cli(capsys, *argv.split(), "--eval-minutes", "0.01", "--out", str(ckpt))
    assert code == 0, err
    m = json.loads(ckpt.with_suffix(".json").read_text())["metrics"]
    assert 1.2 <= m["train_seconds"] < 3 and 0 < m["steps"] < 10_000  # the time, not the steps
    assert len(m["curve"]) == 1 and m["curve"][0]["minutes"] >= 0.01  # the --eval-minutes mark
    assert m["dataset"] == "mnist5k"
    code, out, err = run_cli(capsys, "eval", str(ckpt))  # no --data: the recorded one
    assert code == 0, err
    assert "on mnist5k test: -ELBO" in out


def test_eval_reads_the_dataset_a_checkpoint_records():
    assert common.recorded_dataset("pixelcnn-fashion-mnist") == "fashion-mnist"
    assert common.recorded_dataset("vae-frey") == "frey"
    assert common.recorded_dataset("char-shakespeare") == "tinyshakespeare"
    assert common.recorded_dataset("cvae-mnist") == "mnist"


def test_only_the_digit_sets_default_to_a_bernoulli_likelihood():
    assert common.binarised_digits("mnist") and common.binarised_digits("mnist5k")
    assert not common.binarised_digits("fashion-mnist")  # grey levels, not ink
    assert not common.binarised_digits("frey")


def test_a_recorded_command_holds_no_path_of_this_machine(tmp_path):
    argv = ["train", "vae", "--out", str(tmp_path / "runs" / "vae"), f"--data-dir={tmp_path}",
            "--steps", "3"]  # fmt: skip
    line = common.command_line(argparse.Namespace(argv=argv))
    assert str(tmp_path) not in line
    assert line == f"genedu train vae --out vae --data-dir={tmp_path.name} --steps 3"
