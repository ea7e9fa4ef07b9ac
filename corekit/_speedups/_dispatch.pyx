# cython: language_level=3
"""Pool dispatch, compiled: ready FIFO, in-flight accounting, batched acks.

No lock: every method runs with the GIL held and calls nothing that could
release it between reading and writing the counters (``apply`` is called
after the slot is taken), so pool threads calling `done` cannot interleave
with `dispatch`.  The pure-Python twin needs a lock for the same guarantee.
"""
from collections import deque


cdef class Dispatcher:
    cdef public object apply
    cdef public Py_ssize_t capacity
    cdef object _ready
    cdef Py_ssize_t _inflight
    cdef list _acks

    def __init__(self, apply, Py_ssize_t capacity):
        self.apply = apply
        self.capacity = capacity
        self._ready = deque()
        self._inflight = 0
        self._acks = []

    cpdef add(self, list requests):
        self._ready.extend(requests)

    cpdef Py_ssize_t dispatch(self) except -1:
        cdef Py_ssize_t n = 0
        cdef object req
        cdef object ready = self._ready
        cdef object apply = self.apply
        while ready and self._inflight < self.capacity:
            self._inflight += 1
            req = ready.popleft()
            try:
                apply(req)
            except BaseException:
                self._inflight -= 1
                ready.appendleft(req)
                raise
            n += 1
        return n

    cpdef done(self, object request, object ack_message):
        self._inflight -= 1
        if ack_message is not None:
            self._acks.append(ack_message)

    cpdef list take_acks(self):
        cdef list acks = self._acks
        self._acks = []
        return acks

    @property
    def inflight(self):
        return self._inflight

    @property
    def ready_count(self):
        return len(self._ready)

    @property
    def reserved(self):
        return len(self._ready) + self._inflight

    cpdef Py_ssize_t wants(self, Py_ssize_t prefetch_limit):
        cdef Py_ssize_t n = prefetch_limit - len(self._ready) - self._inflight
        return n if n > 0 else 0

    cpdef list drain_ready(self):
        cdef list out = list(self._ready)
        self._ready.clear()
        return out

    cpdef set_capacity(self, Py_ssize_t n):
        self.capacity = n
