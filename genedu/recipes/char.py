"""`genedu train char`: a character model (genedu.text) on names (one per line) or on
prose, measured by its held-out nats per character.

    genedu train char --data names --minutes 5 --out runs/char-names
    genedu train char --data tinyshakespeare --minutes 8 --out runs/char-shakespeare
    genedu train char --data names --architecture ngram --order 5 --out runs/5gram

The defaults follow the text. Names: batches of 64 whole names at a learning rate of
2e-3. Prose: nanoGPT's shakespeare_char recipe, 12 windows of 64 characters at 1e-3.
Either way the rate warms up, then decays on a cosine to a tenth, over --steps or, with
--minutes alone, over the training time.
"""

from __future__ import annotations

import time

import torch

from .. import data, text, train
from . import common

MODELS = (text.NGram, text.CharRNN, text.CharTransformer)


def arguments(p) -> None:
    common.data_arguments(p, "names")
    p.add_argument("--architecture", choices=["transformer", *text.CELLS, "ngram"],
                   default="transformer", help="the model")  # fmt: skip
    common.option(p, "--hidden", text.TransformerConfig, "hidden",
                  "width: the transformer's embedding, the RNN's hidden units")  # fmt: skip
    common.option(p, "--layers", text.TransformerConfig, "layers", "transformer blocks, RNN layers")
    common.option(p, "--heads", text.TransformerConfig, "heads", "transformer: attention heads")
    common.option(p, "--dropout", text.TransformerConfig, "dropout", "transformer: dropout")
    p.add_argument("--block-size", type=int, default=None,
                   help="context length (default: names, the longest name; prose, 64)")  # fmt: skip
    common.option(p, "--order", text.NGramConfig, "order", "ngram: n, the context plus one")
    common.run_arguments(p, steps=5_000, lr="names 2e-3, prose 1e-3", batch="names 64, prose 12")


def build(args, corpus: text.Corpus) -> text.CharModel:
    """The model --architecture names: transformer, gru, lstm or ngram."""
    common_fields = {"vocab": corpus.vocab.chars, "boundary": corpus.boundary}
    block = max(args.block_size or 0, corpus.longest) or 64  # prose: nanoGPT's 64
    if args.architecture == "ngram":
        return text.NGram(text.NGramConfig(**common_fields, order=args.order))
    if args.architecture in text.CELLS:
        config = text.RNNConfig(
            **common_fields,
            cell=args.architecture,
            hidden=args.hidden,
            layers=args.layers,
            block_size=block,
        )
        return text.CharRNN(config)
    config = text.TransformerConfig(
        **common_fields,
        block_size=block,
        layers=args.layers,
        heads=args.heads,
        hidden=args.hidden,
        dropout=args.dropout,
    )
    return text.CharTransformer(config)


def corpus_of(args) -> text.Corpus:
    split = (data.load(args.data, s, fallback=args.fallback) for s in ("train", "test"))
    return text.Corpus(*split)


def run(args):
    train.seed_everything(args.seed)
    corpus = corpus_of(args)
    model = build(args, corpus)
    block = getattr(model.config, "block_size", 128)
    rows, transform = corpus.train_data(block)
    test = corpus.test_rows(block)
    history, started = None, time.perf_counter()
    if isinstance(model, text.NGram):
        model.count(rows if transform is None else transform.ids[None])
    else:
        # names: 64 whole names a batch at 2e-3; prose: nanoGPT's shakespeare_char recipe,
        # 12 windows of 64 characters at 1e-3 decaying to 1e-4 (many small updates win)
        lr = args.lr or (2e-3 if corpus.boundary else 1e-3)
        history = train.fit(
            model.to(common.device(args)),
            rows,
            batch_size=args.batch_size or (64 if corpus.boundary else 12),
            transform=transform,
            optimizer=torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99)),
            lr_schedule=train.warmup_cosine(),
            grad_clip=1.0,
            eval_fn=lambda m: {"test_nats_per_char": round(text.nats_per_char(m, test), 4)},
            **common.budget(args, checkpoint_every=500),
        )
        common.stop_if_interrupted(history)
        model = model.cpu().eval()
    found = {
        "test_nats_per_char": round(text.nats_per_char(model, test), 4),
        "test_chars": int((test[:, 1:] >= 0).sum()),
        "train_seconds": round(
            history.seconds[-1] if history else time.perf_counter() - started, 1
        ),
        "steps": common.trained(history)["steps"] if history else 0,
        "data": corpus.name,
        "threads": torch.get_num_threads(),
    }
    if history and history.evals[:-1]:
        found["curve"] = common.curve(history, drop_last=True)
    if corpus.boundary:  # names: how many of 200 samples are new (and not empty)
        names = text.generate(
            model, "", 40, num_samples=200, generator=torch.Generator().manual_seed(args.seed)
        )
        known = set(corpus.train.lines)
        found["new_names_of_200"] = sum(bool(n) and n not in known for n in names)
    print(", ".join(f"{k} {v}" for k, v in found.items() if k != "curve"))
    return common.finish(model, args, found)


def evaluate(model: text.CharModel, args) -> str:
    """Held-out nats per character on the text the checkpoint was trained on."""
    corpus = corpus_of(args)
    missing = set(corpus.vocab.chars) - set(model.vocab.chars)
    if missing:
        raise ValueError(f"{args.name} does not know {sorted(missing)} of {corpus.name}")
    corpus.vocab = model.vocab
    rows = corpus.test_rows(getattr(model.config, "block_size", 128))
    nats = text.nats_per_char(model, rows)
    return f"{nats:.4f} nats/char ({int((rows[:, 1:] >= 0).sum())} characters)"
