# cython: language_level=3, boundscheck=False, wraparound=False
"""The timer heap, compiled: a binary heap of (when, seq) in C arrays; items
live in a dict by seq; cancel is lazy."""
from libc.stdlib cimport malloc, realloc, free


cdef struct Entry:
    double when
    long long seq


cdef class EtaHeap:
    cdef Entry* heap
    cdef Py_ssize_t size
    cdef Py_ssize_t cap
    cdef long long next_seq
    cdef Py_ssize_t cancelled   # dead entries still in the heap
    cdef dict items

    def __cinit__(self):
        self.cap = 64
        self.heap = <Entry*>malloc(self.cap * sizeof(Entry))
        if self.heap == NULL:
            raise MemoryError()
        self.size = 0
        self.next_seq = 0
        self.cancelled = 0
        self.items = {}

    def __dealloc__(self):
        free(self.heap)

    cdef inline bint _less(self, Py_ssize_t a, Py_ssize_t b):
        cdef Entry* h = self.heap
        return h[a].when < h[b].when or (h[a].when == h[b].when and h[a].seq < h[b].seq)

    cdef void _swap(self, Py_ssize_t a, Py_ssize_t b):
        cdef Entry tmp = self.heap[a]
        self.heap[a] = self.heap[b]
        self.heap[b] = tmp

    cdef void _sift_up(self, Py_ssize_t i):
        cdef Py_ssize_t parent
        while i > 0:
            parent = (i - 1) >> 1
            if not self._less(i, parent):
                break
            self._swap(i, parent)
            i = parent

    cdef void _sift_down(self, Py_ssize_t i):
        cdef Py_ssize_t child, right
        while True:
            child = 2 * i + 1
            if child >= self.size:
                break
            right = child + 1
            if right < self.size and self._less(right, child):
                child = right
            if not self._less(child, i):
                break
            self._swap(i, child)
            i = child

    cdef void _pop_top(self):
        self.size -= 1
        if self.size > 0:
            self.heap[0] = self.heap[self.size]
            self._sift_down(0)

    cdef void _trim(self):
        while self.cancelled and self.size > 0 and self.heap[0].seq not in self.items:
            self._pop_top()
            self.cancelled -= 1

    cpdef long long push(self, double when, object item) except -1:
        cdef Entry* grown
        if self.size == self.cap:
            grown = <Entry*>realloc(self.heap, 2 * self.cap * sizeof(Entry))
            if grown == NULL:
                raise MemoryError()
            self.heap = grown
            self.cap *= 2
        cdef long long seq = self.next_seq
        self.next_seq += 1
        self.heap[self.size].when = when
        self.heap[self.size].seq = seq
        self.size += 1
        self._sift_up(self.size - 1)
        self.items[seq] = item
        return seq

    cpdef list pop_due(self, double now, Py_ssize_t limit=-1):
        cdef list out = []
        cdef long long seq
        while limit < 0 or len(out) < limit:
            self._trim()
            if self.size == 0 or self.heap[0].when > now:
                break
            seq = self.heap[0].seq
            self._pop_top()
            out.append(self.items.pop(seq))
        return out

    cpdef bint cancel(self, long long entry):
        if self.items.pop(entry, _MISSING) is _MISSING:
            return False
        self.cancelled += 1
        return True

    cpdef object next_due(self):
        self._trim()
        if self.size == 0:
            return None
        return self.heap[0].when

    def __len__(self):
        return len(self.items)

    def __bool__(self):
        return bool(self.items)


cdef object _MISSING = object()
