"""genedu.text: the vocabulary, causality by gradients, exact normalisation of the
n-gram, the decoding rules, seeded generation and bad input. Each test can fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genedu import data, hub, text, train
from genedu.text import (
    CharRNN,
    CharTransformer,
    CharVocab,
    Corpus,
    NGram,
    NGramConfig,
    RandomWindows,
    RNNConfig,
    TransformerConfig,
    causal_attention,
    filter_logits,
    generate,
    name_rows,
    nats_per_char,
    windows,
)

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "anna", "ella", "liam"]
VOCAB = "".join(sorted(set("".join(NAMES)) | {"\n"}))


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def transformer(block=16, boundary="\n", seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    c = TransformerConfig(vocab=vocab, boundary=boundary, block_size=block, layers=2,
                          heads=2, hidden=16)  # fmt: skip
    return CharTransformer(c)


def rnn(cell="gru", seed=0):
    torch.manual_seed(seed)
    return CharRNN(RNNConfig(vocab=VOCAB, boundary="\n", cell=cell, embed=8, hidden=16, layers=2))


def rows() -> torch.Tensor:
    return name_rows(NAMES, CharVocab(VOCAB))


# ------------------------------------------------------------------------- vocabulary


def test_vocab_round_trips_and_names_an_unknown_character():
    v = CharVocab("hello world\n")
    text = "low hole\nwell"
    assert v.decode(v.encode(text)) == text
    assert v.encode("d").dtype == torch.long and len(v) == len(set("hello world\n"))
    with pytest.raises(ValueError, match=r"'Z' \(position 3\).*vocabulary"):
        v.encode("helZo")
    with pytest.raises(ValueError, match="ids must lie"):
        v.decode([0, len(v)])


def test_name_rows_and_windows_cover_every_character_once():
    v = CharVocab(VOCAB)
    r = name_rows(["ab"[:1] + "m", "emma"], v)  # "am", "emma"
    assert r.shape == (2, 6) and v.decode(r[0]) == "\nam\n" and (r[0, 4:] == -1).all()
    ids = torch.arange(23) % len(v)
    w = windows(ids, 5)  # rows overlap by one: every id but the first is a target once
    targets = w[:, 1:][w[:, 1:] >= 0]
    assert torch.equal(targets, ids[1:]) and w.shape == (5, 6)
    assert torch.equal(w[1, 0], w[0, -1])
    rw = RandomWindows(ids, 4)
    batch = rw(torch.tensor([0, 7]))
    assert torch.equal(batch[1], ids[7:12])
    assert len(rw.starts) == len(ids) - 4  # the last start still has 5 ids after it


# ------------------------------------------------------------------------- causality


@pytest.mark.parametrize("make", [transformer, rnn], ids=["transformer", "gru"])
def test_output_at_t_does_not_depend_on_inputs_after_t(make):
    model = make().eval()
    t = 9
    x = torch.randint(0, len(VOCAB), (2, t))  # two rows: neither may read the other
    is_transformer = isinstance(model, CharTransformer)
    e = (model.embeddings(x) if is_transformer else model.embed(x)).detach().requires_grad_()
    # logits at position s of row 0, differentiated w.r.t. every input embedding
    for s in range(t):
        out = model.logits_from_embeddings(e) if is_transformer else model.head(model.rnn(e)[0])
        (grad,) = torch.autograd.grad(out[0, s].sum(), e)
        per_position = grad[0].abs().sum(1)
        assert (per_position[s + 1 :] == 0).all(), f"position {s} reads the future"
        assert (per_position[: s + 1] > 0).all(), f"position {s} ignores some of its past"
        assert (grad[1] == 0).all(), "row 0 reads row 1"


def test_attention_is_the_masked_softmax_and_matches_torch():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 2, 7, 4).unbind(0)
    ours = causal_attention(q, k, v)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert torch.allclose(ours[..., 0, :], v[..., 0, :])  # the first position sees only itself


def test_transformer_attention_weights_are_causal_and_logits_from_embeddings_is_forward():
    model = transformer().eval()
    x = torch.randint(0, len(VOCAB), (3, 11), generator=g(0))
    with torch.no_grad():
        assert torch.equal(model.logits_from_embeddings(model.embeddings(x)), model(x))
        for layer in range(len(model.blocks)):
            w = model.attention_weights(x, layer)
            assert w.shape == (3, model.config.heads, 11, 11)
            assert torch.allclose(w.sum(-1), torch.ones(3, model.config.heads, 11))
            past = torch.ones(11, 11, dtype=torch.bool).tril()  # s <= t
            assert (w[..., ~past] == 0).all() and (w[..., past] > 0).all()
        # the first block's weights are those its attention module mixes the values with
        block = model.blocks[0]
        q, k, v = block.attn.split_heads(block.ln1(model.embeddings(x)))
        assert torch.allclose(model.attention_weights(x, 0) @ v, causal_attention(q, k, v))
    for bad in (-1, len(model.blocks)):
        with pytest.raises(ValueError, match=r"layer must lie in 0\.\.1 \(0-based"):
            model.attention_weights(x, bad)


def test_transformer_refuses_more_positions_than_its_block():
    with pytest.raises(ValueError, match="exceed block_size 8"):
        transformer(block=8)(torch.zeros(1, 9, dtype=torch.long))


# -------------------------------------------------------------- the n-gram, normalised


@pytest.mark.parametrize("smoothing", ["interpolated", "add-k"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_ngram_conditionals_sum_to_one_even_for_unseen_contexts(smoothing, order):
    c = NGramConfig(vocab=VOCAB, boundary="\n", order=order, smoothing=smoothing, k=0.5)
    model = NGram(c).count(rows())
    v = CharVocab(VOCAB)
    unseen = v.encode("\npvvbhp")[None]  # no name has these contexts
    seen = v.encode("\nemma")[None]
    for x in (unseen, seen):
        p = model(x).exp()
        assert torch.allclose(p.sum(-1), torch.ones(x.shape), atol=1e-6)
        assert (p > 0).all()


def test_ngram_counts_give_the_closed_form():
    v = CharVocab(VOCAB)
    c = NGramConfig(vocab=VOCAB, boundary="\n", order=2, smoothing="add-k", k=1.0)
    model = NGram(c).count(rows())
    # after "m": in the rows, "m" is followed by m (emma), a (emma, mia), e (amelia)...
    text = "".join("\n" + n + "\n" for n in NAMES)
    after_m = [text[i + 1] for i in range(len(text) - 1) if text[i] == "m"]
    p = model(v.encode("m")[None]).exp()[0, 0]
    for ch in set(VOCAB):
        want = (after_m.count(ch) + 1) / (len(after_m) + len(VOCAB))
        assert p[v.index[ch]].item() == pytest.approx(want)


def test_interpolated_ngram_beats_the_uniform_and_a_bigger_order_fits_train_better():
    data = rows()
    nll = [
        nats_per_char(NGram(NGramConfig(vocab=VOCAB, boundary="\n", order=n)).count(data), data)
        for n in (1, 2, 3)
    ]
    assert nll[0] < math.log(len(VOCAB)) and nll[2] < nll[1] < nll[0]


# ----------------------------------------------------------------------------- decoding


def test_temperature_to_zero_and_top_k_one_are_greedy():
    torch.manual_seed(0)
    logits = torch.randn(50, 12)
    greedy = logits.argmax(-1)
    for kw in ({"temperature": 0.0}, {"temperature": 1e-3}, {"top_k": 1}):
        logp = filter_logits(logits, **kw)
        draws = torch.multinomial(logp.exp(), 1, generator=g(1))[:, 0]
        assert torch.equal(draws, greedy), kw


def test_top_k_keeps_exactly_k_even_among_ties_and_top_k_one_is_argmax():
    tied = torch.tensor([[0.0, 2.0, 2.0, 2.0, -1.0]])
    assert torch.isfinite(filter_logits(tied, top_k=2)).sum() == 2
    keep_one = filter_logits(tied, top_k=1)
    assert torch.isfinite(keep_one).sum() == 1 and keep_one.argmax() == tied.argmax() == 1
    huge = torch.tensor([[1e30, -1e30, 0.0]])  # no overflow at a tiny temperature
    assert torch.equal(filter_logits(huge, temperature=1e-30).exp(), torch.tensor([[1.0, 0, 0]]))


def test_top_k_restricts_the_support_to_the_k_likeliest():
    torch.manual_seed(1)
    logits = torch.randn(20, 30)
    logp = filter_logits(logits, top_k=5)
    kept = torch.isfinite(logp)
    assert (kept.sum(-1) == 5).all()
    assert torch.equal(kept, torch.zeros_like(kept).scatter(-1, logits.topk(5).indices, True))
    assert torch.allclose(logp.exp().sum(-1), torch.ones(20))


def test_top_p_keeps_the_smallest_set_whose_probability_reaches_p():
    probs = torch.tensor([[0.5, 0.05, 0.3, 0.15]])
    logits = probs.log()
    for p, want in (
        (0.5, {0}),
        (0.6, {0, 2}),
        (0.8, {0, 2}),
        (0.81, {0, 2, 3}),
        (1.0, {0, 1, 2, 3}),
    ):
        kept = set(torch.isfinite(filter_logits(logits, top_p=p))[0].nonzero()[:, 0].tolist())
        assert kept == want, (p, kept)
    renorm = filter_logits(logits, top_p=0.8).exp()[0]
    assert renorm[0].item() == pytest.approx(0.5 / 0.8)


def test_bad_decoding_settings_are_refused():
    for kw in ({"temperature": -1}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            filter_logits(torch.zeros(1, 3), **kw)


# ---------------------------------------------------------------------------- sampling


def test_seeded_generation_repeats_exactly_and_stops_at_the_boundary():
    model = transformer()
    a = generate(model, "", 12, num_samples=6, generator=g(3))
    b = generate(model, "", 12, num_samples=6, generator=g(3))
    c = generate(model, "", 12, num_samples=6, generator=g(4))
    assert a == b and a != c
    assert all("\n" not in s and len(s) <= 12 for s in a)
    prompted = generate(model, "em", 5, generator=g(0))
    assert isinstance(prompted, str) and prompted.startswith("em")
    ids = model.sample(4, generator=g(5), length=10)
    assert ids.shape == (4, 10) and torch.equal(ids, model.sample(4, generator=g(5), length=10))


def test_generation_refuses_an_unknown_character_and_an_empty_prompt_where_one_is_needed():
    with pytest.raises(ValueError, match=r"'Q' \(position 2\)"):
        generate(transformer(), "emQ", 5)
    with pytest.raises(ValueError, match="one character"):
        generate(transformer(), "em", 5, stop="ab")
    stream = transformer(boundary="")
    with pytest.raises(ValueError, match="non-empty prompt"):
        generate(stream, "", 5)
    assert len(generate(stream, "em", 5, generator=g(0))) == 7  # no stop: all 5 drawn


# -------------------------------------------------------------------- the contract


@pytest.mark.parametrize("make", [transformer, rnn, lambda: rnn("lstm")],
                         ids=["transformer", "gru", "lstm"])  # fmt: skip
def test_log_prob_is_the_sum_of_the_loss_and_training_lowers_it(make):
    model = make()
    r = rows()
    n_chars = (r[:, 1:] >= 0).sum()
    assert model.loss(r)["loss"].item() == pytest.approx(
        -model.log_prob(r).sum().item() / n_chars.item(), rel=1e-5
    )
    before = nats_per_char(model, r)
    assert before == pytest.approx(math.log(len(VOCAB)), abs=0.3)  # near uniform at the start
    train.fit(model, r, steps=60, lr=1e-2, batch_size=10, progress=False)
    assert nats_per_char(model, r) < before - 0.5  # overfits ten names


def test_padding_is_not_scored():
    model = transformer()
    r = rows()
    padded = F.pad(r, (0, 3), value=-1)
    assert torch.allclose(model.log_prob(r), model.log_prob(padded), atol=1e-5)


def test_bad_rows_and_configs_are_refused():
    model = transformer()
    with pytest.raises(TypeError, match="int64"):
        model.loss(rows().float())
    with pytest.raises(ValueError, match="ids in 0"):
        model.log_prob(torch.tensor([[0, len(VOCAB)]]))
    with pytest.raises(ValueError, match="multiple of heads"):
        TransformerConfig(vocab=VOCAB, hidden=10, heads=3)
    with pytest.raises(ValueError, match="boundary"):
        TransformerConfig(vocab="ab", boundary="\n")
    with pytest.raises(ValueError, match="smoothing"):
        NGramConfig(vocab=VOCAB, smoothing="kneser")
    with pytest.raises(ValueError, match="count"):
        NGram(NGramConfig(vocab=VOCAB))(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="64-bit"):
        NGramConfig(vocab=VOCAB, order=40)
    with pytest.raises(ValueError, match="text sets"):
        Corpus(data.load("digits", "train"), data.load("digits", "test"))


@pytest.mark.parametrize("kind", ["transformer", "ngram"])
def test_a_saved_model_loads_with_its_vocabulary(tmp_path, kind):
    if kind == "ngram":
        model = NGram(NGramConfig(vocab=VOCAB, boundary="\n", order=3)).count(rows())
    else:
        model = transformer(seed=7)
    hub.save(model, tmp_path / "m")
    back = hub.load(tmp_path / "m")
    assert back.vocab.chars == VOCAB
    assert torch.allclose(back.log_prob(rows()), model.log_prob(rows()))


def test_shipped_char_names_meets_its_goal(shared_data):
    """The issue's bar: at most 2.00 nats/char on the held-out makemore names, and over
    half of 200 sampled names not in the training split."""
    model = hub.load("char-names")
    c = Corpus(data.load("names", "train"), data.load("names", "test"))
    assert nats_per_char(model, c.test_rows(model.config.block_size)) <= 2.00
    drawn = generate(model, "", 30, num_samples=200, generator=g(0))
    known = set(c.train.lines)
    assert sum(bool(n) and n not in known for n in drawn) > 100


def test_the_decoding_explorer_redraws_when_a_slider_moves():
    explorer = text.decoding_explorer(transformer(), "em", n=12, samples=2, seed=3)
    sliders, shown = explorer.children
    temperature, top_k, _ = sliders.children
    first = shown.value
    assert first.count("<pre") == 2 and "em" in first
    temperature.value = 0.0  # greedy: the two samples agree
    greedy = shown.value
    assert greedy != first
    blocks = greedy.split("</pre>")[:2]
    assert blocks[0].split(">", 1)[1] == blocks[1].split(">", 1)[1]
    top_k.value = 1  # top-1 is greedy too, at any temperature
    temperature.value = 1.5
    assert shown.value == greedy
