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
from .graph import Node, toposort
from .ops import Op
from .loops import _placeholder, make_scan


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
    nodes = _vjp_loop(n, g, nb, spec)
    nc, nx = body.n_carry, len(body.xs)
    out = [None] * len(n.src)
    for i, pos in spec["init"].items():
        out[i] = nodes[pos]
    for j, pos in spec["xs"].items():
        out[nc + j] = _back_to_lead(nodes[pos], nb)
    for j, pos in spec["consts"].items():
        out[nc + nx + j] = nodes[pos]
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
    new_c = []
    for i in fc:
        gi = grads[i] if grads[i] is not None else _zeros(ctc[i].shape, ctc[i].dtype)
        new_c.append(gi + cth if kind == "hist" and i == at else gi)
    accs = [j for j in range(len(body.consts)) if grads[nc + nx + j] is not None]
    acc_ph = [_placeholder(f"{tag}({body.consts[j].arg.name})", batch + body.consts[j].shape,
                           body.consts[j].dtype) for j in accs]
    new_acc = [a + grads[nc + nx + j] for a, j in zip(acc_ph, accs)]
    xg = [j for j in range(nx) if grads[nc + j] is not None]
    outs = new_c + new_acc + [grads[nc + j] for j in xg]
    return {"fc": fc, "ctc": ctc, "acc": list(zip(accs, acc_ph)), "cty": cty, "cth": cth,
            "kind": kind, "at": at, "outs": outs,
            "init": {i: a for a, i in enumerate(fc)},
            "consts": {j: len(fc) + a for a, j in enumerate(accs)},
            "xs": {j: len(fc) + len(accs) + a for a, j in enumerate(xg)}}


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
    hist = [Node.make(Op.SCAN, n.src, (body, nc + ny + i)) for i in range(nc)]
    xs = list(zip(body.carries, hist)) + list(zip(body.xs, n.src[nc:nc + nx]))
    if kind == "y":
        xs.append((spec["cty"], _lead_to_back(g, nb)))
    if kind == "hist":
        xs.append((spec["cth"], _lead_to_back(g, nb)))
    consts = list(zip(body.consts, n.src[nc + nx:]))
    return make_scan(carries, xs, consts, spec["outs"], not body.reverse, body.length,
                     _tag(body, "vjp"))


def loop_nodes(outputs):
    """Every SCAN node reachable from ``outputs``, including those inside loop bodies."""
    seen, stack, found = set(), list(outputs), []
    while stack:
        for m in toposort(stack):
            if m.op is Op.SCAN and m not in seen:
                seen.add(m)
                found.append(m)
        stack = [o for m in found if m.arg[0] not in seen for o in m.arg[0].outs]
        seen.update(m.arg[0] for m in found)
    return found
