# cython: language_level=3, boundscheck=False, wraparound=False
"""Message decode, compiled: timestamps are parsed in C from the string's
ASCII buffer and the header checks run on typed locals.  Behaves exactly as
the pure-Python twin ``decode.py``: same fields, same reasons."""

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    const char* PyUnicode_AsUTF8AndSize(object o, Py_ssize_t* size) except NULL

MAX_RETRIES = 2**63 - 1
#: The longest names and ids (task, id, root_id, parent_id, group, origin,
#: compression, content type, reply_to) and argsrepr/kwargsrepr a worker
#: takes; Celery writes ids of 36 characters and reprs of at most 1024.
MAX_NAME = 1024
MAX_REPR = 65536
#: The longest time limit, in seconds (68 years): the pools' timers and waits
#: overflow far beyond it.
MAX_TIME_LIMIT = 2.0**31
cdef Py_ssize_t _MAX_NAME = MAX_NAME, _MAX_REPR = MAX_REPR
cdef double _MAX_TIME_LIMIT = MAX_TIME_LIMIT
FIELDS = ("message", "task", "id", "root_id", "parent_id", "group", "retries", "eta",
          "expires", "time_limit", "soft_time_limit", "ignore_result", "compression",
          "content_type", "redelivered")

cdef int[13] _DAYS_BEFORE_MONTH
_DAYS_BEFORE_MONTH[:] = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
cdef int[13] _DAYS_IN_MONTH
_DAYS_IN_MONTH[:] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
cdef long long _EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
cdef long long _EXACT = 9007199254740992  # 2**53: below it a double holds every integer
cdef object _BAD = object()


cdef inline int _num(const char* p, int n) noexcept nogil:
    """The value of *n* ASCII digits at *p*, or -1."""
    cdef int value = 0, i
    for i in range(n):
        if p[i] < c'0' or p[i] > c'9':
            return -1
        value = value * 10 + (p[i] - c'0')
    return value


cdef inline bint _leap(int year) noexcept nogil:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


cdef inline long long _days_since_epoch(int year, int month, int day) noexcept nogil:
    cdef long long y = year - 1
    cdef long long ordinal = (y * 365 + y // 4 - y // 100 + y // 400
                              + _DAYS_BEFORE_MONTH[month] + (month > 2 and _leap(year)) + day)
    return ordinal - _EPOCH_ORDINAL


cdef bint _parse(object s, double* out) except -1:
    """Set *out* to the epoch seconds of *s*; 0 if *s* is not a timestamp."""
    if not isinstance(s, str) or not PyUnicode_IS_ASCII(s):
        return 0
    cdef Py_ssize_t n = 0, pos = 19, digits = 0
    cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)
    cdef int year, month, day, hour, minute, second, frac = 0, sign = 0, oh = 0, om = 0
    if (n < 19 or p[4] != c'-' or p[7] != c'-' or (p[10] != c'T' and p[10] != c' ')
            or p[13] != c':' or p[16] != c':'):
        return 0
    year, month, day = _num(p, 4), _num(p + 5, 2), _num(p + 8, 2)
    hour, minute, second = _num(p + 11, 2), _num(p + 14, 2), _num(p + 17, 2)
    if year < 1 or month < 1 or month > 12 or day < 1 or hour < 0 or hour > 23:
        return 0
    if minute < 0 or minute > 59 or second < 0 or second > 59:
        return 0
    if day > _DAYS_IN_MONTH[month] + (month == 2 and _leap(year)):
        return 0
    if pos < n and p[pos] == c'.':
        pos += 1
        while pos + digits < n and digits <= 6 and c'0' <= p[pos + digits] <= c'9':
            digits += 1
        if digits == 0 or digits > 6:
            return 0
        frac = _num(p + pos, <int>digits)
        pos += digits
        while digits < 6:
            frac *= 10
            digits += 1
    if pos < n:
        if p[pos] == c'Z' and pos + 1 == n:
            pass
        elif (p[pos] == c'+' or p[pos] == c'-') and pos + 6 == n and p[pos + 3] == c':':
            sign = 1 if p[pos] == c'+' else -1
            oh, om = _num(p + pos + 1, 2), _num(p + pos + 4, 2)
            if oh < 0 or om < 0 or oh > 23 or om > 59:
                return 0
        else:
            return 0
    cdef long long seconds = (_days_since_epoch(year, month, day) * 86400 + hour * 3600
                              + minute * 60 + second - sign * (oh * 3600 + om * 60))
    cdef long long micros = seconds * 1000000 + frac
    if -_EXACT <= micros <= _EXACT:
        out[0] = <double>micros / 1e6  # one correctly rounded division, like timedelta
    else:
        out[0] = int(micros) / 1000000
    return 1


def parse_iso8601(s):
    """Epoch seconds for ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]``;
    naive means UTC.  Anything else raises ValueError."""
    cdef double out = 0.0
    if not _parse(s, &out):
        raise ValueError(f"not an ISO-8601 timestamp: {_show(s)}")
    return out


cdef class TaskHeaders:
    """A task message's routing headers, decoded; the body is not.

    ``eta`` and ``expires`` are epoch seconds; ``time_limit`` and
    ``soft_time_limit`` come from the ``timelimit`` header ``[hard, soft]``."""
    cdef public object message
    cdef public str task
    cdef public str id
    cdef public object root_id
    cdef public object parent_id
    cdef public object group
    cdef public long long retries
    cdef public object eta
    cdef public object expires
    cdef public object time_limit
    cdef public object soft_time_limit
    cdef public bint ignore_result
    cdef public object compression
    cdef public str content_type
    cdef public bint redelivered

    def __init__(self, message, str task, str id, *, root_id=None, parent_id=None, group=None,
                 long long retries=0, eta=None, expires=None, time_limit=None,
                 soft_time_limit=None, ignore_result=False, compression=None,
                 content_type=None, redelivered=None):
        self.message, self.task, self.id = message, task, id
        self.root_id, self.parent_id, self.group = root_id, parent_id, group
        self.retries, self.eta, self.expires = retries, eta, expires
        self.time_limit, self.soft_time_limit = time_limit, soft_time_limit
        self.ignore_result, self.compression = ignore_result, compression
        self.content_type = message.content_type if content_type is None else content_type
        self.redelivered = message.redelivered if redelivered is None else redelivered

    def __repr__(self):
        return (f"<TaskHeaders {self.task}[{self.id}] retries={self.retries} "
                f"eta={self.eta!r} expires={self.expires!r}>")


def _show(value):
    """A short repr for a reason string; never raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= 100 else text[:97] + "..."


cdef str _bad(str key, object value):
    return f"bad {key!r} header: {_show(value)}"


cdef str _too_long(str text, Py_ssize_t limit):
    return f"a string of {len(text)} characters (at most {limit})"


cdef inline bint _text_ok(object value, Py_ssize_t limit):
    """Whether a header is None or a string of at most *limit* characters."""
    return value is None or (isinstance(value, str) and len(<str>value) <= limit)


cdef str _text_reason(str key, object value, Py_ssize_t limit):
    """Why header *key* is not `_text_ok`."""
    if not isinstance(value, str):
        return _bad(key, value)
    return f"bad {key!r} header: {_too_long(value, limit)}"


cdef object _limit(object value):
    """A time limit as a float, None, or _BAD."""
    cdef double seconds
    if value is None:
        return None
    if type(value) is float:
        seconds = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            return _BAD
    else:
        return _BAD
    if not 0.0 <= seconds <= _MAX_TIME_LIMIT:
        return _BAD
    return seconds


cdef object _when(dict h, str key, double* out):
    """None for a missing timestamp, _BAD for a bad one, else True and *out*."""
    value = h.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _parse(value, out):
        return _BAD
    return True


cdef object _decode_one(object message):
    """`TaskHeaders` for a good message, else the reason it is bad."""
    try:
        headers, properties, content_type, redelivered = (
            message.headers, message.properties, message.content_type, message.redelivered)
    except AttributeError:
        return f"not a message object: {type(message).__name__}"
    if not isinstance(headers, dict):
        return f"headers are not a dict: {type(headers).__name__}"
    if not isinstance(properties, dict):
        return f"properties are not a dict: {type(properties).__name__}"
    cdef dict h = headers if type(headers) is dict else dict(headers)
    task, task_id = h.get("task"), h.get("id")
    if task is None:
        return "missing 'task' header"
    if not isinstance(task, str) or not task:
        return _bad("task", task)
    if len(<str>task) > _MAX_NAME:
        return f"bad 'task' header: {_too_long(task, _MAX_NAME)}"
    if task_id is None:
        return "missing 'id' header"
    if not isinstance(task_id, str) or not task_id:
        return _bad("id", task_id)
    if len(<str>task_id) > _MAX_NAME:
        return f"bad 'id' header: {_too_long(task_id, _MAX_NAME)}"
    if not isinstance(content_type, str):
        return f"bad content type: {_show(content_type)}"
    if len(<str>content_type) > _MAX_NAME:
        return f"bad content type: {_too_long(content_type, _MAX_NAME)}"
    retries = h.get("retries")
    if retries is None:
        retries = 0
    elif (not isinstance(retries, int) or isinstance(retries, bool)
          or not 0 <= retries <= MAX_RETRIES):
        return _bad("retries", retries)
    limits = h.get("timelimit")
    hard = soft = None
    if limits is not None:
        if not isinstance(limits, (list, tuple)) or len(limits) != 2:
            return _bad("timelimit", limits)
        hard, soft = _limit(limits[0]), _limit(limits[1])
        if hard is _BAD or soft is _BAD:
            return _bad("timelimit", limits)
    cdef double eta_at = 0.0, expires_at = 0.0
    has_eta = _when(h, "eta", &eta_at)
    if has_eta is _BAD:
        return _bad("eta", h.get("eta"))
    has_expires = _when(h, "expires", &expires_at)
    if has_expires is _BAD:
        return _bad("expires", h.get("expires"))
    root_id, parent_id, group = h.get("root_id"), h.get("parent_id"), h.get("group")
    if not _text_ok(root_id, _MAX_NAME):
        return _text_reason("root_id", root_id, _MAX_NAME)
    if not _text_ok(parent_id, _MAX_NAME):
        return _text_reason("parent_id", parent_id, _MAX_NAME)
    if not _text_ok(group, _MAX_NAME):
        return _text_reason("group", group, _MAX_NAME)
    compression = h.get("compression")
    if not _text_ok(compression, _MAX_NAME):
        return _text_reason("compression", compression, _MAX_NAME)
    ignore_result = h.get("ignore_result")
    if ignore_result is not None and type(ignore_result) is not bool:
        return _bad("ignore_result", ignore_result)
    group_index = h.get("group_index")
    if group_index is not None and (not isinstance(group_index, int)
                                    or isinstance(group_index, bool)
                                    or not 0 <= group_index <= MAX_RETRIES):
        return _bad("group_index", group_index)
    value = h.get("origin")
    if not _text_ok(value, _MAX_NAME):
        return _text_reason("origin", value, _MAX_NAME)
    value = h.get("argsrepr")
    if not _text_ok(value, _MAX_REPR):
        return _text_reason("argsrepr", value, _MAX_REPR)
    value = h.get("kwargsrepr")
    if not _text_ok(value, _MAX_REPR):
        return _text_reason("kwargsrepr", value, _MAX_REPR)
    reply_to = (<dict>properties).get("reply_to")
    if reply_to is not None:
        if not isinstance(reply_to, str):
            return f"bad 'reply_to' property: {_show(reply_to)}"
        if len(<str>reply_to) > _MAX_NAME:
            return f"bad 'reply_to' property: {_too_long(reply_to, _MAX_NAME)}"
    cdef TaskHeaders out = TaskHeaders.__new__(TaskHeaders)
    out.message, out.task, out.id = message, task, task_id
    out.root_id, out.parent_id, out.group = root_id, parent_id, group
    out.retries = retries
    out.eta = None if has_eta is None else eta_at
    out.expires = None if has_expires is None else expires_at
    out.time_limit, out.soft_time_limit = hard, soft
    out.ignore_result = ignore_result is True
    out.compression = compression
    out.content_type = content_type
    out.redelivered = redelivered
    return out


def decode_batch(messages):
    """``(good TaskHeaders in order, [(message, reason), ...])``; never raises
    for a bad message."""
    cdef list good = [], bad = []
    for message in messages:
        out = _decode_one(message)
        if type(out) is TaskHeaders:
            good.append(out)
        else:
            bad.append((message, out))
    return good, bad
