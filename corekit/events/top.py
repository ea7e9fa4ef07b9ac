"""``corekit events``: the live terminal view of the cluster.

`TopView` is the view without curses: what the screen shows (`render`,
plain text lines) and what each key does (`handle_key`), so both can be
tested on their own; `run` draws it with curses and feeds it keys.

Keys: up/down (or k/j) select a task, ``r`` revokes it, ``t`` terminates
it, ``l`` asks for a rate (``10/s``, ``100/m``; empty lifts the limit) and
sets it for the selected task's type on every worker, ``q`` quits.
"""
from __future__ import annotations

import curses
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from corekit.ratelimit import parse_rate

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.events.state import State, TaskState

#: Seconds of history the task rates are computed over.
RATE_WINDOW = 10.0
REFRESH = 0.5
ENTER = (10, 13, curses.KEY_ENTER)
ESCAPE = 27
BACKSPACE = (8, 127, curses.KEY_BACKSPACE)
HELP = "up/down select  r revoke  t terminate  l rate limit  q quit"


def short(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


class TopView:
    """What the live view shows and does, over a `State` fed elsewhere."""

    def __init__(self, app: Corekit, state: State,
                 listening: threading.Event | None = None) -> None:
        self.app = app
        self.state = state
        #: set once the receiver listens: until then the header says it is
        #: connecting (events sent before that are not seen), in words that
        #: start unlike the live header's, so curses redraws that line whole
        self.listening = listening
        #: the uuid of the selected task (None: the newest)
        self.selected: str | None = None
        self.status = ""
        #: the rate typed so far while asking for one, else None
        self.prompt: str | None = None
        self._samples: deque[tuple[float, int, int]] = deque()
        self._rows: list[TaskState] = []

    # -- what is shown --------------------------------------------------------------
    def rates(self, now: float | None = None) -> tuple[float, float]:
        """Tasks succeeded and failed per second over the last `RATE_WINDOW` s."""
        now = time.monotonic() if now is None else now
        counts = self.state.counts
        sample = (now, counts.get("task-succeeded", 0), counts.get("task-failed", 0))
        self._samples.append(sample)
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        first = self._samples[0]
        span = now - first[0]
        if span <= 0:
            return 0.0, 0.0
        return (sample[1] - first[1]) / span, (sample[2] - first[2]) / span

    def render(self, width: int, height: int) -> tuple[list[str], int | None]:
        """The screen as *height* lines at most, and which line is the
        selected task (to highlight)."""
        state = self.state
        with state.lock:
            workers = sorted(state.workers.values(), key=lambda w: w.hostname)
            events, online = state.event_count, sum(w.alive for w in workers)
        ok, failed = self.rates()
        if self.listening is not None and not self.listening.is_set():
            from corekit.transport import mask_url

            header = f"connecting to {mask_url(self.app.conf.broker)} for events..."
        else:
            header = (f"corekit events: {online} worker(s) online, {events} events, "
                      f"{len(state.tasks)} tasks   {ok:.1f} succeeded/s  {failed:.1f} failed/s")
        lines = [header, ""]
        lines.append(f"{'WORKER':<32} {'STATUS':<8} {'ACTIVE':>6} {'PROCESSED':>9}  LOAD")
        for w in workers[: max(1, height // 4)]:
            load = " ".join(f"{x:.2f}" for x in (w.loadavg or []))
            lines.append(f"{short(w.hostname, 32):<32} {w.status:<8} "
                         f"{short(w.active, 6):>6} {short(w.processed, 9):>9}  {load}")
        lines += ["", f"{'UUID':<36} {'TASK':<28} {'STATE':<9} {'RUNTIME':>9}  WORKER"]
        room = max(1, height - len(lines) - 4)
        self._rows = self.state.tasks_by_time(room)
        top = len(lines)
        chosen = None
        for i, task in enumerate(self._rows):
            if task.uuid == self.selected or (self.selected is None and i == 0):
                chosen = top + i
            runtime = f"{task.runtime:.3f}s" if task.runtime is not None else ""
            lines.append(f"{task.uuid:<36} {short(task.name, 28):<28} {task.state:<9} "
                         f"{runtime:>9}  {task.worker or ''}")
        lines += ["", self.detail(), self.footer()]
        return [short(line, width - 1) for line in lines[:height]], chosen

    def detail(self) -> str:
        task = self.selected_task()
        if task is None:
            return "no task selected"
        outcome = task.exception or task.result
        return (f"{task.name}({task.uuid}) args={task.args} kwargs={task.kwargs}"
                + (f" -> {outcome}" if outcome is not None else ""))

    def footer(self) -> str:
        if self.prompt is not None:
            task = self.selected_task()
            return f"rate limit for {task.name if task else '?'} (e.g. 10/s): {self.prompt}"
        return f"{self.status}  [{HELP}]" if self.status else HELP

    def selected_task(self) -> TaskState | None:
        rows = self._rows
        for task in rows:
            if task.uuid == self.selected:
                return task
        return rows[0] if rows else None

    # -- keys -------------------------------------------------------------------------
    def handle_key(self, key: int) -> bool:
        """Act on one key (a curses key code); False to quit."""
        if self.prompt is not None:
            self._prompt_key(key)
            return True
        if key in (ord("q"), ord("Q")):
            return False
        if key in (curses.KEY_UP, ord("k")):
            self.move(-1)
        elif key in (curses.KEY_DOWN, ord("j")):
            self.move(1)
        elif key == ord("r"):
            self.revoke(terminate=False)
        elif key == ord("t"):
            self.revoke(terminate=True)
        elif key == ord("l"):
            if self.selected_task() is None:
                self.status = "no task selected"
            else:
                self.prompt = ""
        return True

    def move(self, step: int) -> None:
        rows = self._rows
        if not rows:
            return
        current = self.selected_task()
        index = rows.index(current) if current in rows else 0
        self.selected = rows[max(0, min(len(rows) - 1, index + step))].uuid

    def _prompt_key(self, key: int) -> None:
        assert self.prompt is not None
        if key in ENTER:
            rate, self.prompt = self.prompt.strip(), None
            self.set_rate_limit(rate)
        elif key == ESCAPE:
            self.prompt = None
        elif key in BACKSPACE:
            self.prompt = self.prompt[:-1]
        elif 32 <= key < 127:
            self.prompt += chr(key)

    # -- actions (through app.control, in the background) ------------------------------
    def revoke(self, terminate: bool) -> None:
        task = self.selected_task()
        if task is None:
            self.status = "no task selected"
            return
        verb = "terminate" if terminate else "revoke"
        self._act(f"{verb} {task.uuid}",
                  lambda: self.app.control.revoke(task.uuid, terminate=terminate, reply=True))

    def set_rate_limit(self, rate: str) -> None:
        task = self.selected_task()
        if task is None or not task.name:
            self.status = "no task selected"
            return
        try:
            parse_rate(rate or None)
        except ValueError as exc:
            self.status = str(exc)
            return
        name = task.name
        self._act(f"rate limit {name} {rate or 'off'}",
                  lambda: self.app.control.rate_limit(name, rate or None, reply=True))

    def _act(self, what: str, call: Callable[[], Any]) -> None:
        """Run *call* on a thread (workers take up to a second to reply);
        the status line says how it went."""
        self.status = f"{what}..."

        def run() -> None:
            try:
                replies = call() or []
            except Exception as exc:  # shown to the operator, who may try again
                self.status = f"{what} failed: {exc}"
                return
            self.status = f"{what}: {len(replies)} worker(s) replied"

        threading.Thread(target=run, name="corekit-top-action", daemon=True).start()


def run(app: Corekit, state: State, listening: threading.Event | None = None) -> None:
    """Draw *state* with curses until ``q`` (the caller feeds the state and
    sets *listening* once its receiver listens)."""
    curses.wrapper(_loop, TopView(app, state, listening))


def _loop(screen: Any, view: TopView) -> None:
    curses.curs_set(0)
    screen.keypad(True)
    screen.timeout(int(REFRESH * 1000))
    while True:
        height, width = screen.getmaxyx()
        lines, chosen = view.render(width, height)
        screen.erase()
        for y, line in enumerate(lines):
            screen.addstr(y, 0, line, curses.A_REVERSE if y == chosen else curses.A_NORMAL)
        screen.refresh()
        key = screen.getch()
        if key != -1 and not view.handle_key(key):
            return
