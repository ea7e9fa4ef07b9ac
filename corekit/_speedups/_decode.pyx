# cython: language_level=3, boundscheck=False, wraparound=False
"""Message decode, compiled: the common ISO-8601 form is parsed in C and the
header checks run on typed locals.  Anything unusual is handed to the
pure-Python twin, so both always agree."""
from corekit._speedups import decode as _twin


cdef inline int _digits(str s, Py_ssize_t start, Py_ssize_t n) except -2:
    cdef int value = 0
    cdef Py_ssize_t i
    cdef Py_UCS4 c
    for i in range(start, start + n):
        c = s[i]
        if c < 48 or c > 57:  # '0'..'9'
            return -1
        value = value * 10 + (<int>c - 48)
    return value


cdef inline long long _days_from_civil(long long y, int m, int d):
    y -= m <= 2
    cdef long long era = (y if y >= 0 else y - 399) // 400
    cdef long long yoe = y - era * 400
    cdef long long doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int[13] _MONTH_DAYS
_MONTH_DAYS[:] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


cpdef double parse_iso8601(object value) except? -1.0:
    """Epoch seconds for an ISO-8601 timestamp; naive means UTC."""
    if type(value) is not str:
        return _twin.parse_iso8601(value)
    cdef str s = <str>value
    cdef Py_ssize_t n = len(s), pos = 19, digits = 0
    cdef int year, month, day, hour, minute, second, frac = 0, sign = 0, oh = 0, om = 0
    if n < 19 or s[4] != u'-' or s[7] != u'-' or (s[10] != u'T' and s[10] != u' ') \
            or s[13] != u':' or s[16] != u':':
        return _twin.parse_iso8601(value)
    year = _digits(s, 0, 4)
    month = _digits(s, 5, 2)
    day = _digits(s, 8, 2)
    hour = _digits(s, 11, 2)
    minute = _digits(s, 14, 2)
    second = _digits(s, 17, 2)
    if (year < 1 or month < 1 or month > 12 or day < 1 or day > _MONTH_DAYS[month]
            or hour < 0 or hour > 23 or minute < 0 or minute > 59 or second < 0 or second > 59):
        return _twin.parse_iso8601(value)
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return _twin.parse_iso8601(value)
    if pos < n and s[pos] == u'.':
        pos += 1
        while pos + digits < n and 48 <= <int>(<Py_UCS4>s[pos + digits]) <= 57:
            digits += 1
        if digits != 3 and digits != 6:
            return _twin.parse_iso8601(value)
        frac = _digits(s, pos, digits)
        if digits == 3:
            frac *= 1000
        pos += digits
    if pos < n:
        if s[pos] == u'Z' and pos + 1 == n:
            pos += 1
        elif (s[pos] == u'+' or s[pos] == u'-') and pos + 6 == n and s[pos + 3] == u':':
            sign = 1 if s[pos] == u'+' else -1
            oh = _digits(s, pos + 1, 2)
            om = _digits(s, pos + 4, 2)
            if oh < 0 or om < 0 or oh > 23 or om > 59:
                return _twin.parse_iso8601(value)
            pos += 6
        else:
            return _twin.parse_iso8601(value)
    cdef long long seconds = (_days_from_civil(year, month, day) * 86400 + hour * 3600
                              + minute * 60 + second - sign * (oh * 3600 + om * 60))
    cdef long long micros = seconds * 1000000 + frac
    if -9007199254740992 < micros < 9007199254740992:  # exact as a double: one rounding
        return <double>micros / 1e6
    return int(micros) / 1000000  # Python's correctly rounded int division, like datetime


cdef class TaskHeaders:
    """A task message's routing headers, decoded; the body is not."""
    cdef public object message
    cdef public str task
    cdef public str id
    cdef public object root_id
    cdef public object parent_id
    cdef public object group
    cdef public long retries
    cdef public object eta
    cdef public object expires
    cdef public object time_limit
    cdef public object soft_time_limit
    cdef public bint ignore_result
    cdef public object compression
    cdef public str content_type
    cdef public bint redelivered

    def __repr__(self):
        return f"<TaskHeaders {self.task}[{self.id}]>"


cdef object _when(dict headers, str key):
    value = headers.get(key)
    if value is None:
        return None
    try:
        return parse_iso8601(value)
    except (ValueError, TypeError):
        raise ValueError(f"bad {key!r} header: {value!r}") from None


cdef inline bint _is_number(object x):
    return x is None or ((type(x) is int or type(x) is float
                          or isinstance(x, (int, float))) and not isinstance(x, bool))


cdef TaskHeaders _decode_one(object message):
    h = message.headers
    if not isinstance(h, dict):
        raise ValueError("headers are not a mapping")
    cdef dict headers = <dict>h
    task = headers.get("task")
    tid = headers.get("id")
    if not isinstance(task, str) or not task:
        raise ValueError(f"bad 'task' header: {task!r}")
    if not isinstance(tid, str) or not tid:
        raise ValueError(f"bad 'id' header: {tid!r}")
    retries = headers.get("retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise ValueError(f"bad 'retries' header: {retries!r}")
    limits = headers.get("timelimit") or [None, None]
    if (not isinstance(limits, (list, tuple)) or len(limits) != 2
            or not _is_number(limits[0]) or not _is_number(limits[1])):
        raise ValueError(f"bad 'timelimit' header: {limits!r}")
    ctype = message.content_type
    if not isinstance(ctype, str):
        raise ValueError(f"bad content type: {ctype!r}")
    cdef TaskHeaders out = TaskHeaders.__new__(TaskHeaders)
    out.message = message
    out.task = task
    out.id = tid
    out.root_id = headers.get("root_id")
    out.parent_id = headers.get("parent_id")
    out.group = headers.get("group")
    out.retries = retries
    out.eta = _when(headers, "eta")
    out.expires = _when(headers, "expires")
    out.time_limit = limits[0]
    out.soft_time_limit = limits[1]
    out.ignore_result = bool(headers.get("ignore_result"))
    out.compression = headers.get("compression")
    out.content_type = ctype
    out.redelivered = bool(message.redelivered)
    return out


cpdef tuple decode_batch(list messages):
    """``(good TaskHeaders, [(message, reason), ...])`` for a batch."""
    cdef list good = []
    cdef list bad = []
    for m in messages:
        try:
            good.append(_decode_one(m))
        except ValueError as exc:
            bad.append((m, str(exc)))
    return good, bad
