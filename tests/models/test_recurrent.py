"""Recurrent models on sd.scan: an LSTM language model learns a periodic string (every
symbol after the first few is determined by the ones before it), trained in compiled
kernels an epoch at a time; the Elman model's loss and gradient agree with the interpreter."""
import numpy as np

import symdiff as sd
from symdiff.models import recurrent
from symdiff.models.train import Trainer

TEXT = "hello world, "          # period 13; after "l" the next symbol needs context


def windows(text, length, repeats=30):
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text * repeats])
    starts = np.arange(len(ids) - length - 1)
    X = np.stack([ids[s:s + length] for s in starts])
    Y = np.stack([ids[s + 1:s + length + 1] for s in starts])
    return X, Y, len(chars)


def test_lstm_learns_the_next_symbol_of_a_periodic_string():
    X, Y, vocab = windows(TEXT, 20)
    model = recurrent.char_lm(vocab, hidden=32, dtype="float32", seed=0)
    trainer = Trainer(model, lr=1.0, momentum=0.9, outputs=())
    rng = np.random.default_rng(0)
    first = trainer.run_epoch(X, Y, 32, rng)[:, 0].mean()
    for _ in range(15):
        last = trainer.run_epoch(X, Y, 32, rng)[:, 0].mean()
    assert first > 1.0 and last < 0.05, (first, last)
    pred = np.argmax(trainer.predict("logits", X), axis=-1)
    # from the 4th symbol on the context determines the next one: all must be right
    assert np.array_equal(pred[:, 3:], Y[:, 3:])


def test_elman_model_kernel_matches_interpreter():
    X, Y, vocab = windows(TEXT, 12, repeats=3)
    model = recurrent.char_lm(vocab, hidden=8, cell="elman", dtype="float64", layers=2)
    outs = sd.value_and_grad(model.loss, model.params)
    f = sd.compile(model.inputs + model.params, outs)
    args = [X[:5], Y[:5]] + [model.init[p] for p in model.params]
    want = sd.evaluate(outs, dict(zip(model.inputs + model.params, args)))
    for g, w in zip(f(*args), want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-13)
