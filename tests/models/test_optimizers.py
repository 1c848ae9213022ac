"""Every optimizer's compiled update equals torch.optim's over 10 steps (float32, 1e-6), with
weight decay, gradient clipping and learning-rate schedules; the estimators take optimizer=."""
import numpy as np
import pytest

import symdiff as sd
from symdiff.models import optimizers as opt

import torch                                 # the test extra installs it

R = np.random.default_rng(2)
X = R.standard_normal((16, 5)).astype(np.float32)
Y = R.standard_normal(16).astype(np.float32)
W0, B0 = R.standard_normal(5).astype(np.float32), np.array(0.5, np.float32)

TORCH = {"sgd": lambda ps, lr, h: torch.optim.SGD(ps, lr, weight_decay=h.get("weight_decay", 0)),
         "momentum": lambda ps, lr, h: torch.optim.SGD(ps, lr, momentum=h.get("momentum", 0.9),
                                                       weight_decay=h.get("weight_decay", 0)),
         "nesterov": lambda ps, lr, h: torch.optim.SGD(ps, lr, momentum=h.get("momentum", 0.9),
                                                       nesterov=True),
         "adam": lambda ps, lr, h: torch.optim.Adam(ps, lr, weight_decay=h.get("weight_decay", 0)),
         "adamw": lambda ps, lr, h: torch.optim.AdamW(ps, lr, weight_decay=h.get("weight_decay", 0.01)),
         "rmsprop": lambda ps, lr, h: torch.optim.RMSprop(ps, lr),
         "adagrad": lambda ps, lr, h: torch.optim.Adagrad(ps, lr)}


def symdiff_run(name, lr, steps=10, backend="numpy", schedule=None, clip=None, **hyper):
    x, y = sd.var("x", (16, 5), "float32"), sd.var("y", (16,), "float32")
    w, b = sd.param("w", (5,), "float32"), sd.param("b", (), "float32")
    loss = sd.mean((x @ w + b - y) ** 2)
    upd, state, _ = opt.optimizer_updates(name, [w, b], sd.grad(loss, [w, b]), lr,
                                          schedule=schedule, clip_norm=clip, **hyper)
    state.update({w: W0.copy(), b: B0.copy()})
    f = sd.compile([x, y], loss, updates=upd, state=state, backend=backend)
    for _ in range(steps):
        f(X, Y)
    return f.state[w], f.state[b]


def torch_run(make, lr, steps=10, scheduler=None, clip=None):
    w = torch.tensor(W0.copy(), requires_grad=True)
    b = torch.tensor(B0.copy(), requires_grad=True)
    o = make([w, b])
    sch = scheduler(o) if scheduler else None
    for _ in range(steps):
        o.zero_grad()
        loss = ((torch.tensor(X) @ w + b - torch.tensor(Y)) ** 2).mean()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_([w, b], clip)
        o.step()
        if sch:
            sch.step()
    return w.detach().numpy(), b.detach().numpy()


@pytest.mark.parametrize("name", opt.OPTIMIZERS)
def test_matches_torch_optim(name):
    hyper = {"weight_decay": 0.01} if name == "adamw" else {}
    got = symdiff_run(name, 0.05, **hyper)
    want = torch_run(lambda ps: TORCH[name](ps, 0.05, hyper), 0.05)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_weight_decay_clipping_and_schedules_match_torch():
    got = symdiff_run("sgd", 0.1, weight_decay=0.1, clip=0.5,
                      schedule=opt.step_decay(3, 0.5))
    want = torch_run(lambda ps: torch.optim.SGD(ps, 0.1, weight_decay=0.1), 0.1, clip=0.5,
                     scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    got = symdiff_run("adam", 0.1, schedule=opt.cosine(10))
    want = torch_run(lambda ps: torch.optim.Adam(ps, 0.1), 0.1,
                     scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_numba_backend_gives_the_same_adam_steps():
    for g, w in zip(symdiff_run("adam", 0.05, backend="numba"), symdiff_run("adam", 0.05)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


def test_errors():
    w = sd.param("w", (2,))
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        opt.optimizer_updates("adamax", [w], [w], 0.1)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        opt.optimizer_updates("adam", [w], [w], 0.1, beta3=0.5)


def test_estimator_trains_with_adam():
    from symdiff.models import MLPClassifier, data
    X_tr, X_te, y_tr, y_te = data.load_breast_cancer()
    clf = MLPClassifier(hidden=(16,), lr=0.01, epochs=10, optimizer="adam", seed=0,
                        verbose=0).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.93
    assert clf.get_params()["optimizer"] == "adam"
