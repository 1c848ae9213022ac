"""Scheduling (pass 3 of lowering): work items -> steps in execution order.

List scheduling in item order that fuses ready tasks over the same space (or over the rows
of the open nest's space) into one ``Nest``, as long as a stage reads what earlier stages of
the nest wrote only in its own row; a ready GEMM goes first. Updates are a parallel
assignment: an update task writes straight into its parameter when every other reader of
the parameter can run before it, else into a temporary copied into place at the end.
Every function here returns new values; the items are not changed.
"""
from dataclasses import dataclass, replace
from itertools import pairwise

from symdiff.ops import LEAVES

from .items import buffer_test, is_reshape_view, new_task
from .program import Buffer, Copy, Gemm, Loop, Nest, Task, relocate
from .queues import ReadyQueue
from .views import blas_operand, is_matrix_transpose, loop_vars, outer_vars


@dataclass(frozen=True)
class Updates:
    """How the parameter updates are carried out (``in_place_updates``)."""

    deps: dict                 # item -> the items that must run before it
    param_reads: dict          # item -> {updated var: [indices it reads it at] or None: any}
    writes: dict               # task writing its parameter in place -> that parameter
    buffers: dict              # node -> Buffer, the in-place updates' values in the params
    tail: list                 # Copy steps of the updates computed into temporaries


def schedule(g, items, buffers, mat, names):
    """(steps in execution order, node -> Buffer with the update tasks' buffers)."""
    copies, buffers = update_copies(g, items, buffers, mat, names)
    items = items + copies
    producer = {it.node: it for it in items}
    producer.update((n, it) for it in items if isinstance(it, Loop) for n in it.nodes)
    deps = {}
    for it in items:
        nodes = (_producer_node(d, buffers) for d in item_deps(it))
        deps[it] = {producer[n] for n in nodes if n in producer} | \
            (set(it.after) if isinstance(it, Task) else set())
    up = in_place_updates(g, items, deps, buffers)
    return _list_schedule(items, up) + up.tail, up.buffers


def item_deps(it):
    """What ``it`` depends on: the materialized nodes (and argmax masks) it reads."""
    if isinstance(it, Loop):
        return {s for s in it.src if s.op not in LEAVES}
    if isinstance(it, Gemm):
        return {b for b in map(blas_operand, it.operands) if b.op not in LEAVES}
    return it.deps


def _producer_node(n, buffers):
    """The node whose item writes what ``n`` reads (a reshape view reads its source)."""
    while is_reshape_view(n, buffers):
        n = n.src[0]
    return n


def update_copies(g, items, buffers, mat, names):
    """A map task for every update whose value no item computes (a var, a reshaped view of
    one, a constant): a copy like any other update task, so it is ordered like one.
    Returns (the tasks, buffers with theirs keyed ("update", var))."""
    computed = {it.node for it in items} | {n for it in items if isinstance(it, Loop)
                                            for n in it.nodes}
    is_buffer = buffer_test(mat, buffers)
    buffers, copies = dict(buffers), []
    for var, new in g.updates:
        if new is not var and new not in computed:
            out = buffers[("update", var)] = names.temp(new.shape, new.dtype)
            copies.append(new_task("map", ("update", var), new, out, new.shape, is_buffer))
    return copies, buffers


def _param_reads(it, params, buffers):
    """The updated parameters ``it`` reads -> the indices it reads each at (None: any
    element, through BLAS or a reshaped view)."""
    if isinstance(it, Loop):
        return {v: None for v in (_producer_node(s, buffers) for s in it.src) if v in params}
    if isinstance(it, Gemm):
        ops = map(blas_operand, it.operands)
        return {v: None for v in (_producer_node(s, buffers) for s in ops) if v in params}
    reads = {v: None for v in (_producer_node(n, buffers) for n in it.reads) if v in params}
    reads.update((v, [tuple(i) for i in at]) for v, at in it.leaf_reads.items()
                 if v in params and v not in reads)
    return reads


def in_place_updates(g, items, deps, buffers):
    """Updates are a parallel assignment: every update and output reads the parameters as
    they were before the call. An update task writes straight into its parameter when it
    reads that parameter only at the element it writes and every other reader of the
    parameter can run before it (a dependency, and a stage of the same nest only when it
    reads the same element, see ``_joins``). Where readers and writers form a cycle (a
    swap; an output reading a parameter's old and new value) one writer computes into a
    temporary instead, copied into place at the end."""
    if not g.updates:
        return Updates(deps, {}, {}, buffers, [])
    params = {v for v, _ in g.updates}
    param_reads = {it: _param_reads(it, params, buffers) for it in items}
    item = {it.node: it for it in items}
    writers = {}                          # var -> the task writing it in place
    writing, outputs = set(), set(g.outputs)
    for var, new in g.updates:
        task = item.get(("update", var), item.get(new))
        own = param_reads[task].get(var, []) if isinstance(task, Task) else None
        if own is not None and task.kind == "map" and task.out.kind == "temp" and \
                new not in outputs and task not in writing and \
                all(i == loop_vars(task.space) for i in own):
            writers[var] = task
            writing.add(task)
    readers = {}                          # var -> the items reading it
    for r in items:
        for var in param_reads[r]:
            readers.setdefault(var, []).append(r)
    while True:
        war = {w: {r for r in readers.get(var, ()) if r is not w} for var, w in writers.items()}
        cycle = _find_cycle(items, deps, war) if writers else None   # items form a DAG
        if cycle is None:
            break
        on_cycle = [w for w, r in pairwise(cycle) if w in war and r in war[w] and
                    r not in deps[w]]
        victim = next((w for w in on_cycle if isinstance(w.node, tuple)), on_cycle[0])
        del writers[next(v for v, w in writers.items() if w is victim)]
    deps = dict(deps)
    for var, task in writers.items():
        deps[task] = deps[task] | war[task]
    # a value computed in place lives in its parameter, and so do the views of it (a
    # reshape of the new value reads the parameter's memory)
    _, buffers, _ = relocate([], buffers, {}, {id(task.out): buffers[var]
                                               for var, task in writers.items()})
    tail = [Copy(buffers[var], buffers.get(("update", var), buffers.get(new)))
            for var, new in g.updates if new is not var and var not in writers]
    return Updates(deps, param_reads, {t: v for v, t in writers.items()}, buffers, tail)


def _list_schedule(items, up):
    """Steps: ready items in list order, a ready GEMM first (the weight gradients then
    release activations before the next nest, which can overwrite them in place); a ready
    task joins the open nest when ``_joins`` allows."""
    # ready items by list order (a queue, not a rescan of the pending list per step);
    # only tasks can join a nest, and only over its space or its rows
    queue = ReadyQueue(items, up.deps, lambda it: it.space if isinstance(it, Task) else None,
                       lambda it: isinstance(it, Gemm))
    buffers = up.buffers

    def final(it):               # the item as it runs: an in-place update writes its param
        if isinstance(it, Gemm):
            a, b = it.operands
            return Gemm(it.out, _operand(a, buffers), _operand(b, buffers), it.node, it.contract)
        if isinstance(it, Loop):
            return replace(it, ins=[buffers.get(s) for s in it.src])
        return it.into(buffers[up.writes[it]]) if it in up.writes else it

    steps, stages, members = [], [], set()
    while queue:
        if stages:
            space = stages[0].space
            keys = (space, space[:-1]) if len(space) >= 2 else (space,)
            cand = next((it for it in queue.spaced(*keys)
                         if _joins(it, stages, members, up)), None)
            if cand is not None:
                stages.append(cand)
                members.add(cand)
                queue.take(cand)
                continue
            steps.append(Nest(space, [final(t) for t in stages]))
            stages, members = [], set()
        it = queue.first_gemm() or queue.first()
        queue.take(it)
        if isinstance(it, Task):
            stages, members = [it], {it}
        else:
            steps.append(final(it))
    if stages:
        steps.append(Nest(stages[0].space, [final(t) for t in stages]))
    return steps


def _joins(it, stages, members, up):
    """Can ``it``, a ready item, be a further stage of the open nest (whose stages are
    ``stages``, the set ``members``)? Same space (or the nest's rows), and what it reads
    from the nest's stages lies in its own row."""
    space = stages[0].space
    row_level = len(space) >= 2 and it.space == space[:-1] if isinstance(it, Task) else False
    if not isinstance(it, Task) or (it.space != space and not row_level):
        return False
    if it.kind == "scatter" or stages[0].kind == "scatter":
        return False    # writes anywhere in its output: alone in its nest
    if row_level and (it.row_reduction or it.kind == "argmax"):
        return False    # its reduced last axis is an outer loop of the nest: no row of it
    var = up.writes.get(it)
    if var is not None:                   # an update over what stages before it read
        at = loop_vars(it.space)
        if any(up.param_reads[m].get(var, ()) is None or
               any(i != at for i in up.param_reads[m].get(var, ())) for m in members):
            return False
    outer = outer_vars(space)
    for dep in up.deps[it] & members:
        if dep.outer_reduction:
            return False
        for idx in it.reads.get(dep.node, []):
            if tuple(idx[:len(outer)]) != outer:
                return False
        if dep.kind == "argmax" and dep.node in it.argmax_reads and len(outer) == 0:
            return False
    return True


def _operand(s, buffers):
    """A GEMM operand's buffer; a transposed matrix is an F-contiguous .T view of its
    source's (no copy)."""
    if is_matrix_transpose(s):
        base = buffers[s.src[0]]
        return Buffer(f"{base.name}.T", s.shape, s.dtype, "view", base=base, view="T")
    return buffers[s]


def _find_cycle(items, deps, extra):
    """A dependency cycle [x0, x1, ..., x0] (x1 a dependency of x0) through ``deps`` plus
    the ``extra`` dependencies of some items, or None. Edges are followed in item order, so
    the cycle found, and the program, do not depend on where objects lie in memory."""
    state, path = {}, []
    position = {it: k for k, it in enumerate(items)}

    def edges(it):
        return sorted(deps[it] | extra.get(it, set()), key=position.__getitem__)
    for root in items:
        if root in state:
            continue
        stack = [(root, iter(edges(root)))]
        state[root], path = 1, [root]
        while stack:
            it, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[it] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(edges(nxt))))
    return None
