"""Index structures that keep lowering linear in the size of the graph (issue 13).

- ``ReadyQueue``: the items of a schedule whose dependencies have all been taken, in their
  list order, found without rescanning the pending list at every step.
- ``FreeOutputs``: which output buffers can lend their memory to a temporary that lives over
  steps [start, end], the largest first, found without rescanning every output per temporary.
"""
import bisect
import heapq


class ReadyQueue:
    """Items in list order, each waiting for its dependencies ``deps[item]`` (a set of
    items); ``take`` marks one done.

    >>> q = ReadyQueue(["a", "b", "c"], {"a": set(), "b": {"a"}, "c": set()},
    ...                space=lambda it: None)
    >>> q.first(); q.take("a"); q.first()
    'a'
    'b'
    """

    def __init__(self, items, deps, space, is_gemm=lambda it: False):
        """``space(it)``: the key under which ``spaced`` finds ``it`` (None: never);
        ``is_gemm(it)``: kept in a queue of its own (``first_gemm``)."""
        self.items, self.space, self.is_gemm = items, space, is_gemm
        self.pos = {it: k for k, it in enumerate(items)}
        self.unmet = {it: len(deps[it]) for it in items}
        self.users = {it: [] for it in items}
        for it in items:
            for d in deps[it]:
                self.users[d].append(it)
        self.left = set(items)
        self.ready, self.gemms, self.by_space = [], [], {}
        for it in items:
            if not self.unmet[it]:
                self._push(it)

    def __bool__(self):
        return bool(self.left)

    def _push(self, it):
        k = self.pos[it]
        heapq.heappush(self.ready, k)
        if self.is_gemm(it):
            heapq.heappush(self.gemms, k)
        key = self.space(it)
        if key is not None:
            bisect.insort(self.by_space.setdefault(key, []), k)

    def take(self, it):
        """``it`` is scheduled: items waiting only on it become ready."""
        self.left.remove(it)
        key = self.space(it)
        if key is not None:
            ks = self.by_space[key]
            del ks[bisect.bisect_left(ks, self.pos[it])]
        for u in self.users[it]:
            self.unmet[u] -= 1
            if not self.unmet[u]:
                self._push(u)

    def _top(self, heap):
        while heap and self.items[heap[0]] not in self.left:
            heapq.heappop(heap)
        return self.items[heap[0]] if heap else None

    def first(self):
        """The first ready item in list order."""
        return self._top(self.ready)

    def first_gemm(self):
        """The first ready gemm in list order, or None."""
        return self._top(self.gemms)

    def spaced(self, *keys):
        """Ready items under any of ``keys``, in list order (do not ``take`` while iterating)."""
        lists = [self.by_space.get(k, ()) for k in dict.fromkeys(keys)]
        for k in heapq.merge(*lists):
            yield self.items[k]


class FreeOutputs:
    """Output buffers in a fixed order (``first``: the step that first writes each): an
    output that holds nothing at step ``start`` and is first written after ``end`` can hold a
    temporary living over [start, end]. ``lend`` gives the first such output and marks it
    busy until ``end``; ``busy`` records a use found elsewhere. Starts never decrease from
    call to call (steps are allocated in order), so a use [s, e] overlaps [start, end]
    exactly when e >= start.

    A max segment tree over the outputs holds each one's first write while it is free (-1
    while busy): the first output in order with a first write > end is a leftmost search.

    >>> f = FreeOutputs(["o1", "o2"], {"o1": 3, "o2": 9})
    >>> f.lend(0, 4), f.lend(1, 2), f.lend(2, 5), f.lend(5, 6)
    ('o2', 'o1', None, 'o2')
    """

    def __init__(self, order, first):
        self.order, self.first = list(order), first
        n = 1
        while n < max(len(self.order), 1):
            n *= 2
        self.n, self.tree = n, [-1] * (2 * n)
        for k, o in enumerate(self.order):
            self.tree[n + k] = first[o]
        for k in range(n - 1, 0, -1):
            self.tree[k] = max(self.tree[2 * k], self.tree[2 * k + 1])
        self.index = {o: k for k, o in enumerate(self.order)}
        self.until = {}              # busy output -> last step of its latest use
        self.wake = []               # (step after that use, output)

    def _set(self, k, value):
        k += self.n
        self.tree[k] = value
        k //= 2
        while k:
            self.tree[k] = max(self.tree[2 * k], self.tree[2 * k + 1])
            k //= 2

    def _advance(self, start):
        """Outputs whose uses all end before ``start`` are free again."""
        while self.wake and self.wake[0][0] <= start:
            _, k = heapq.heappop(self.wake)
            o = self.order[k]
            if self.until.get(o, -1) < start:
                self.until.pop(o, None)
                self._set(k, self.first[o])

    def busy(self, o, start, end):
        """``o`` holds something over [start, end]."""
        self._advance(start)
        k = self.index[o]
        self.until[o] = max(end, self.until.get(o, end))
        heapq.heappush(self.wake, (self.until[o] + 1, k))
        self._set(k, -1)

    def lend(self, start, end):
        """The first output free at ``start`` and first written after ``end`` (now busy
        until ``end``), or None."""
        self._advance(start)
        if self.tree[1] <= end:
            return None
        k = 1
        while k < self.n:               # leftmost leaf holding a first write > end
            k = 2 * k if self.tree[2 * k] > end else 2 * k + 1
        o = self.order[k - self.n]
        self.busy(o, start, end)
        return o
