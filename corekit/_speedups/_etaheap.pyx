# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The worker's short-horizon timer, compiled: a binary heap of C structs
``(double when, long long seq)`` with the items in a list kept parallel to it
(``items[i]`` belongs to ``heap[i]``; sifting moves both, pointer for pointer,
so no reference counts change).  Behaves exactly as ``etaheap.py``.

Unlike the twin, `cancel` removes the entry at once: it finds it by a scan of
the C array (about a nanosecond per entry) and re-sifts, so push and pop need
no id-to-item dict at all and a cancelled item is released immediately."""
cimport cython
from cpython.object cimport PyObject
from libc.stdlib cimport free, malloc, realloc

cdef extern from "Python.h":
    PyObject** PySequence_Fast_ITEMS(object o)
    Py_ssize_t PyList_GET_SIZE(object o)

cdef struct Entry:
    double when
    long long seq

cdef Py_ssize_t _MIN_CAPACITY = 64


cdef inline bint _before(Entry a, Entry b) noexcept nogil:
    return a.when < b.when or (a.when == b.when and a.seq < b.seq)


@cython.no_gc_clear  # __dealloc__ and the methods rely on ``items``
@cython.final
cdef class EtaHeap:
    """Items due at an epoch time, popped earliest first (ties in push order)."""
    cdef Entry* heap
    cdef list items
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity
    cdef long long next_seq

    def __cinit__(self):
        self.heap = <Entry*>malloc(_MIN_CAPACITY * sizeof(Entry))
        if self.heap == NULL:
            raise MemoryError()
        self.capacity = _MIN_CAPACITY
        self.items = []

    def __dealloc__(self):
        free(self.heap)

    cdef int _check(self) except -1:
        if PyList_GET_SIZE(self.items) != self.size:  # cleared by the GC in a cycle
            raise RuntimeError("EtaHeap used after its items were garbage-collected")
        return 0

    cdef int _resize(self, Py_ssize_t capacity) except -1:
        cdef Entry* grown = <Entry*>realloc(self.heap, capacity * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        self.heap = grown
        self.capacity = capacity
        return 0

    cdef void _sift_up(self, Py_ssize_t i) noexcept:
        cdef PyObject** items = PySequence_Fast_ITEMS(self.items)
        cdef Entry entry = self.heap[i]
        cdef PyObject* item = items[i]
        cdef Py_ssize_t parent
        while i > 0:
            parent = (i - 1) >> 1
            if not _before(entry, self.heap[parent]):
                break
            self.heap[i] = self.heap[parent]
            items[i] = items[parent]
            i = parent
        self.heap[i] = entry
        items[i] = item

    cdef void _sift(self, Py_ssize_t i) noexcept:
        """Restore the order around *i*: walk the hole down to a leaf along
        the smaller children, then sift the entry up from there (fewer
        comparisons than a plain sift-down; it may rise above *i*)."""
        cdef PyObject** items = PySequence_Fast_ITEMS(self.items)
        cdef Entry entry = self.heap[i]
        cdef PyObject* item = items[i]
        cdef Py_ssize_t child, size = self.size
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and _before(self.heap[child + 1], self.heap[child]):
                child += 1
            self.heap[i] = self.heap[child]
            items[i] = items[child]
            i = child
        self.heap[i] = entry
        items[i] = item
        self._sift_up(i)

    cdef object _remove(self, Py_ssize_t i):
        """Take out the entry at *i* and return its item."""
        cdef Py_ssize_t last = self.size - 1
        cdef PyObject** items = PySequence_Fast_ITEMS(self.items)
        cdef PyObject* swap = items[i]
        items[i] = items[last]
        items[last] = swap
        self.heap[i] = self.heap[last]
        item = self.items.pop()
        self.size = last
        if i < last:
            self._sift(i)
        if self.capacity > _MIN_CAPACITY and last < self.capacity // 4:
            self._resize(self.capacity // 2)
        return item

    def push(self, double when, item):
        """Schedule *item* at *when*; return its entry id for `cancel`."""
        if when != when:
            raise ValueError("when is NaN")
        self._check()
        if self.size == self.capacity:
            self._resize(2 * self.capacity)
        self.items.append(item)
        cdef long long seq = self.next_seq
        self.next_seq = seq + 1
        self.heap[self.size].when = when
        self.heap[self.size].seq = seq
        self.size += 1
        self._sift_up(self.size - 1)
        return seq

    def pop_due(self, double now, Py_ssize_t limit=-1):
        """Remove and return the items due at *now* (``when <= now``),
        earliest first; at most *limit* of them when it is >= 0."""
        cdef list out = []
        self._check()
        while self.size > 0 and (limit < 0 or PyList_GET_SIZE(out) < limit):
            if not self.heap[0].when <= now:
                break
            out.append(self._remove(0))
        return out

    def cancel(self, entry_id):
        """Forget an entry; False if it was already popped or cancelled."""
        if type(entry_id) is not int or not 0 <= entry_id < self.next_seq:
            return False
        self._check()
        cdef long long seq = entry_id
        cdef Py_ssize_t i
        for i in range(self.size):
            if self.heap[i].seq == seq:
                self._remove(i)
                return True
        return False

    def next_due(self):
        """The earliest ``when``, or None when empty."""
        if self.size == 0:
            return None
        return self.heap[0].when

    def __len__(self):
        return self.size

    def __bool__(self):
        return self.size != 0

    def __repr__(self):
        return f"<EtaHeap {self.size} due, next at {self.next_due()!r}>"
