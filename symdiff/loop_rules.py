"""JVP and VJP of a scan: each derivative is itself a scan (see loops.py for the math).

Forward mode: the loop over (carry, x) becomes a loop over (carry, dcarry, x, dx) whose step
is the step's JVP graph; a carry gets a tangent when its init has one or when the step gives
it one from another tangent (found by iterating to a fixed point).
Reverse mode: a loop in the opposite direction over the carry history, the xs and the
output cotangents; its carries are the carry cotangents and one accumulator per
loop-invariant input, its ys the cotangents of the xs.
Tangents and cotangents may carry ``nb`` leading batch axes (all directions of a Jacobian at
once); inside the loop those axes follow the scanned axis, so they are moved behind it.
Derived bodies are cached on the body, so that all outputs of one loop share one derivative
loop (hash-consed: the kernel runs it once).
"""
from . import frontend as F
from .dtypes import is_float
from .graph import Node, substitute, toposort
from .ops import Op
from .loops import ScanBody, _placeholder, make_scan


def _zeros(shape, dtype):
    return F.broadcast_to(F.const(0, dtype), shape)


def _lead_to_back(t, nb):
    """batch + (T,) + rest -> (T,) + batch + rest."""
    if nb == 0:
        return t
    return F.transpose(t, (nb,) + tuple(range(nb)) + tuple(range(nb + 1, t.ndim)))


def _back_to_lead(t, nb):
    """(T,) + batch + rest -> batch + (T,) + rest."""
    if nb == 0:
        return t
    return F.transpose(t, tuple(range(1, nb + 1)) + (0,) + tuple(range(nb + 1, t.ndim)))


def _tag(body, kind):
    """A name prefix unique to derivatives of ``body``: the placeholders of a second
    derivative must differ from the first derivative's (equal names, shapes and dtypes would
    be one hash-consed node)."""
    return f"{kind}{body.fingerprint()[:10]}"


# --- forward mode ------------------------------------------------------------------------
def scan_jvp(n, t, nb):
    body, k = n.arg
    batch = next(x for x in t if x is not None).shape[:nb]
    has = tuple(x is not None for x in t)
    nodes, where = _jvp_loop(n, t, batch, has)
    pos = where.get(k)
    if pos is None:
        return None
    out = nodes[pos]
    return out if body.kind(k)[0] == "carry" else _back_to_lead(out, nb)


def _jvp_loop(n, t, batch, has):
    """(output nodes of the tangent loop, primal output k -> index of its tangent)."""
    from .forward import jvp_graph
    body = n.arg[0]
    key = ("jvp", has, batch)
    if key not in body._derived:
        body._derived[key] = _jvp_body(body, has, batch, jvp_graph)
    carries, tplaces, outs, where = body._derived[key]
    nb = len(batch)
    nc, nx = body.n_carry, len(body.xs)
    src_c = [(p, v) for p, v in zip(body.carries, n.src[:nc])]
    src_x = [(p, v) for p, v in zip(body.xs, n.src[nc:nc + nx])]
    src_k = [(p, v) for p, v in zip(body.consts, n.src[nc + nx:])]
    for i in carries:                        # tangent carries: given, or zeros
        p = tplaces[i]
        src_c.append((p, t[i] if t[i] is not None else _zeros(p.shape, p.dtype)))
    for j in range(nx):
        if has[nc + j]:
            src_x.append((tplaces[nc + j], _lead_to_back(t[nc + j], nb)))
    for j in range(len(body.consts)):
        if has[nc + nx + j]:
            src_k.append((tplaces[nc + nx + j], t[nc + nx + j]))
    nodes = make_scan(src_c, src_x, src_k, outs, body.reverse, body.length, _tag(body, "jvp"))
    return nodes, where


def _jvp_body(body, has, batch, jvp_graph):
    nc, ny = body.n_carry, body.n_y
    places = body.placeholders
    tplaces = [_placeholder(f"{_tag(body, 'd')}({p.arg.name})", batch + p.shape, p.dtype)
               if is_float(p.dtype) else None for p in places]
    active = [has[i] and tplaces[i] is not None for i in range(nc)]
    while True:                               # carries that get a tangent: a fixed point
        seeds = {p: tp for i, (p, tp) in enumerate(zip(places, tplaces))
                 if tp is not None and (active[i] if i < nc else has[i])}
        touts = jvp_graph(list(body.outs), seeds, batch)
        grown = [a or (tplaces[i] is not None and touts[i] is not None)
                 for i, a in enumerate(active)]
        if grown == active:
            break
        active = grown
    carries = [i for i in range(nc) if active[i]]
    tcarry = [touts[i] if touts[i] is not None else
              _zeros(tplaces[i].shape, tplaces[i].dtype) for i in carries]
    ty = [j for j in range(ny) if touts[nc + j] is not None]
    outs = list(body.outs[:nc]) + tcarry + list(body.outs[nc:]) + [touts[nc + j] for j in ty]
    nc2, ny2 = nc + len(carries), ny + len(ty)
    where = {}
    for a, i in enumerate(carries):
        where[i] = nc + a                                 # final carry i
        where[nc + ny + i] = nc2 + ny2 + nc + a           # history of carry i
    for a, j in enumerate(ty):
        where[nc + j] = nc2 + ny + a                      # ys j
    return carries, tplaces, outs, where


# --- reverse mode ------------------------------------------------------------------------
def scan_vjp(n, g, nb):
    body, k = n.arg
    batch = g.shape[:nb]
    key = ("vjp", k, batch)
    from .reverse import vjp_graph
    if key not in body._derived:
        body._derived[key] = _vjp_body(body, k, batch, vjp_graph)
    spec = body._derived[key]
    nodes, scanned = _vjp_loop(n, g, nb, spec)
    nc, nx = body.n_carry, len(body.xs)
    out = [None] * len(n.src)
    for j, fa, fb in spec["mm"]:              # sum_t a_t^T b_t, one GEMM when lowered
        a, b = (scanned[f] if kind == "xs" else nodes[f] for kind, f in (fa, fb))
        term = F.sum(F.matmul(F.matrix_transpose(a), b), axis=0)
        out[nc + nx + j] = term if out[nc + nx + j] is None else out[nc + nx + j] + term
    for i, pos in spec["init"].items():
        out[i] = nodes[pos]
    for j, pos in spec["xs"].items():
        out[nc + j] = _back_to_lead(nodes[pos], nb)
    for j, pos in spec["consts"].items():
        out[nc + nx + j] = nodes[pos] if out[nc + nx + j] is None else \
            nodes[pos] + out[nc + nx + j]
    return tuple(out)


def _vjp_body(body, k, batch, vjp_graph):
    """The backward step for a cotangent on primal output k."""
    nc, ny, nx = body.n_carry, body.n_y, len(body.xs)
    kind, at = body.kind(k)
    fc = [i for i, c in enumerate(body.carries) if is_float(c.dtype)]
    tag = _tag(body, "ct")                    # placeholder names unique to this body
    ctc = {i: _placeholder(f"{tag}({body.carries[i].arg.name})", batch + body.carries[i].shape,
                           body.carries[i].dtype) for i in fc}
    cty = _placeholder(f"{tag}(y{at})", batch + body.outs[nc + at].shape,
                       body.outs[nc + at].dtype) if kind == "y" else None
    cth = None
    if kind == "hist":                        # its own placeholder: a scanned input
        c = body.carries[at]
        cth = _placeholder(f"{tag}(hist{at})", batch + c.shape, c.dtype)
    cts = [ctc.get(i) for i in range(nc)] + [cty if kind == "y" and j == at else None
                                              for j in range(ny)]
    wrt = list(body.placeholders)
    grads = vjp_graph(list(body.outs), cts, wrt, batch)
    grads, saved, res_ph = _residuals(body, grads, tag)
    new_c = []
    for i in fc:
        gi = grads[i] if grads[i] is not None else _zeros(ctc[i].shape, ctc[i].dtype)
        new_c.append(gi + cth if kind == "hist" and i == at else gi)
    scanned = [p for p in body.carries + body.xs + (cty, cth) if p is not None] + res_ph
    per_step = _dependents(grads, set(ctc.values()) | set(scanned))
    kept, products = {}, []
    for j in range(len(body.consts)):
        gj = grads[nc + nx + j]
        if gj is None:
            continue
        rest = []
        for term in _terms(gj):
            ab = None if batch else _outer_factors(term)
            if ab is not None and all(f in per_step for f in ab):
                products.append((j,) + ab)
            else:
                rest.append(term)
        if rest:
            kept[j] = _total(rest)
    accs = list(kept)
    acc_ph = [_placeholder(f"{tag}({body.consts[j].arg.name})", batch + body.consts[j].shape,
                           body.consts[j].dtype) for j in accs]
    new_acc = [a + kept[j] for a, j in zip(acc_ph, accs)]
    xg = [j for j in range(nx) if grads[nc + j] is not None]
    outs = new_c + new_acc + [grads[nc + j] for j in xg]
    mm = []              # const j += sum_t a_t^T b_t: the factors scanned in or stacked out
    for j, a, b in products:
        refs = []
        for f in (a, b):
            if f not in scanned and f not in outs[len(new_c) + len(new_acc):]:
                outs.append(f)
            refs.append(("xs", f) if f in scanned else ("ys", outs.index(f, len(new_c) +
                                                                       len(new_acc))))
        mm.append((j, refs[0], refs[1]))
    return {"fc": fc, "ctc": ctc, "acc": list(zip(accs, acc_ph)), "cty": cty, "cth": cth,
            "kind": kind, "at": at, "outs": outs, "mm": mm, "saved": saved, "res": res_ph,
            "init": {i: a for a, i in enumerate(fc)},
            "consts": {j: len(fc) + a for a, j in enumerate(accs)},
            "xs": {j: len(fc) + len(accs) + a for a, j in enumerate(xg)}}


def _residuals(body, grads, tag):
    """Matrix products of the forward step that the backward step reads are saved by the
    forward loop (extra ys of an extended body, one loop with the original in the kernel)
    and scanned by the backward loop, instead of computed again at every step; cheaper
    values are recomputed from them. Returns (grads reading placeholders for them, the
    extended forward body, the placeholders)."""
    forward = set(toposort(list(body.outs)))
    per_step = _dependents(body.outs, set(body.carries) | set(body.xs))
    found = [n for n in toposort([g for g in grads if g is not None])
             if n.op is Op.MATMUL and n in forward and n in per_step]
    if not found:
        return grads, body, []
    ph = [_placeholder(f"{tag}(r{i})", n.shape, n.dtype) for i, n in enumerate(found)]
    mapping = dict(zip(found, ph))
    live = [g for g in grads if g is not None]
    new = iter(substitute(live, mapping))
    grads = [None if g is None else next(new) for g in grads]
    saved = ScanBody(body.carries, body.xs, body.consts, body.outs + tuple(found),
                     body.reverse, body.length)
    return grads, saved, ph


def _dependents(outs, roots):
    """The nodes of the graph of ``outs`` that depend on a node of ``roots``."""
    dep = set(roots)
    for n in toposort([o for o in outs if o is not None]):
        if any(s in dep for s in n.src):
            dep.add(n)
    return dep


def _terms(g):
    """The summands of g (a tree of adds of g's own shape and dtype)."""
    if g.op is Op.ADD and all(s.shape == g.shape and s.dtype == g.dtype for s in g.src):
        return _terms(g.src[0]) + _terms(g.src[1])
    return [g]


def _total(terms):
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _outer_factors(term):
    """(a, b) when term = a^T b for matrices a, b: its sum over the steps is one GEMM of the
    stacked factors after the loop, not a GEMM and an accumulation at every step."""
    if term.op is not Op.MATMUL or term.ndim != 2:
        return None
    at, b = term.src
    if at.op is Op.TRANSPOSE and at.arg == (1, 0) and b.ndim == 2:
        return at.src[0], b
    return None


def _vjp_loop(n, g, nb, spec):
    body = n.arg[0]
    batch = g.shape[:nb]
    nc, ny, nx = body.n_carry, body.n_y, len(body.xs)
    kind, at = spec["kind"], spec["at"]
    carries = []
    for i in spec["fc"]:                      # the cotangent of the final carry, or zeros
        p = spec["ctc"][i]
        carries.append((p, g if kind == "carry" and i == at else _zeros(p.shape, p.dtype)))
    carries += [(p, _zeros(p.shape, p.dtype)) for _, p in spec["acc"]]
    saved = spec["saved"]                     # the forward loop, extended by its residuals
    hist = [Node.make(Op.SCAN, n.src, (saved, len(saved.outs) + i)) for i in range(nc)]
    xs = list(zip(body.carries, hist)) + list(zip(body.xs, n.src[nc:nc + nx]))
    xs += [(p, Node.make(Op.SCAN, n.src, (saved, len(body.outs) + r)))
           for r, p in enumerate(spec["res"])]
    if kind == "y":
        xs.append((spec["cty"], _lead_to_back(g, nb)))
    if kind == "hist":
        xs.append((spec["cth"], _lead_to_back(g, nb)))
    consts = list(zip(body.consts, n.src[nc + nx:]))
    return make_scan(carries, xs, consts, spec["outs"], not body.reverse, body.length,
                     _tag(body, "vjp")), dict(xs)
