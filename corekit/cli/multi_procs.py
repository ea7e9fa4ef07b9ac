"""The processes of ``corekit multi``'s nodes: what each pid file says,
signalling them, and waiting for them to exit."""
from __future__ import annotations

import os
import select
import signal
import time
from typing import Any, Callable, Iterator

from corekit.cli.multi_nodes import Node
from corekit.cli.pidfile import process_alive

#: A pid file is a few bytes; more is not a pid file (as the worker reads it).
MAX_PIDFILE = 64
#: Seconds between two looks at a process that has no pidfd to wait on.
POLL = 0.05
#: Seconds to wait for a SIGKILLed process to be gone.
KILL_WAIT = 10.0


class NodeState:
    DOWN = "down"          # no pid file
    RUNNING = "running"    # its pid is a live process
    STALE = "stale"        # the pid file names no live worker
    BAD = "bad"            # a pid file we must not act on (pid 1, a directory...)

    def __init__(self, kind: str, pid: int | None = None, reason: str = "") -> None:
        self.kind, self.pid, self.reason = kind, pid, reason


def node_state(node: Node) -> NodeState:
    try:
        with open(node.pidfile, "rb") as f:
            data = f.read(MAX_PIDFILE + 1)
    except FileNotFoundError:
        return NodeState(NodeState.DOWN)
    except OSError as exc:
        return NodeState(NodeState.BAD, reason=f"cannot read pid file {node.pidfile}: "
                                               f"{exc.strerror or exc}")
    try:
        pid = int(data.decode("ascii").strip()) if len(data) <= MAX_PIDFILE else 0
    except (UnicodeDecodeError, ValueError):
        pid = 0
    if pid <= 0:
        return NodeState(NodeState.STALE, None, f"{node.pidfile} holds no pid")
    if pid == 1 or pid == os.getpid():
        return NodeState(NodeState.BAD, pid, f"pid file {node.pidfile} names pid {pid}, "
                                             "which is not a worker: not touched")
    why = not_our_worker(pid, node)
    if why:
        return NodeState(NodeState.STALE, pid, why)
    return NodeState(NodeState.RUNNING, pid)


def not_our_worker(pid: int, node: Node) -> str | None:
    """Why *pid* is not the node's worker (gone, a zombie, or a recycled pid
    now running another program); None when it may well be."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} is not running"
    except PermissionError:
        return None  # another user's: not ours to judge; signalling it will say
    proc = f"/proc/{pid}"
    try:
        with open(f"{proc}/stat", "rb") as f:
            if f.read().rpartition(b")")[2].split()[0] == b"Z":
                return f"process {pid} has exited"
        with open(f"{proc}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, IndexError):
        return None  # no /proc (not Linux), or it just exited: the next look says
    if cmdline and "corekit" not in cmdline and node.name not in cmdline:
        return f"pid {pid} is now another program ({cmdline.strip()[:60]})"
    return None


def remove_pidfile(node: Node, pid: int | None) -> None:
    """Remove the node's pid file if it still names *pid* (or no pid)."""
    state = node_state(node)
    if state.kind in (NodeState.STALE, NodeState.RUNNING) and state.pid in (pid, None):
        try:
            os.unlink(node.pidfile)
        except FileNotFoundError:
            pass


def ensure_dirs(node: Node) -> str | None:
    """Create the missing directories of the node's pid and log files;
    a message when one cannot be made."""
    for path in (node.pidfile, node.logfile):
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            return f"cannot create directory {directory}: {exc.strerror or exc}"
    return None


alive = process_alive  # a zombie counts as gone: stop waits for an exit, not a reaping


def wait_for_exit(pids: dict[Any, int], timeout: float | None = None) -> Iterator[Any]:
    """Yield each key of *pids* once its process has exited, in the order
    they exit; stop at *timeout* seconds.  A pidfd (Linux) wakes us when a
    process exits; elsewhere we look every `POLL` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    fds: dict[int, Any] = {}
    left = dict(pids)
    for key, pid in pids.items():
        try:
            fds[os.pidfd_open(pid)] = key  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            pass
    try:
        while left:
            for key in [k for k, pid in left.items() if not alive(pid)]:
                del left[key]
                yield key
            if not left:
                break
            wait = POLL if len(fds) < len(left) else 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            watched = [fd for fd, key in fds.items() if key in left]
            if watched:
                select.select(watched, [], [], wait)
            else:
                time.sleep(wait)
    finally:
        for fd in fds:
            os.close(fd)


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name.removeprefix("SIG")
    except ValueError:
        return str(sig)


def stop_nodes(multi: Any, nodes: list[Node], sig: int,
               on_down: Callable[[Node], None] | None = None) -> None:
    """Send *sig* to every running node, then wait for each to exit (a warm
    shutdown finishes its running tasks first).  *on_down* is called for
    each node once it is down (restart starts it again)."""
    def down(node: Node, how: str = "DOWN") -> None:
        multi.note(f"\t> {node.name}: {how}")
        if on_down is not None:
            on_down(node)

    multi.note("> Stopping nodes...")
    waiting: dict[Node, int] = {}
    for node in nodes:
        state = node_state(node)
        if state.kind == NodeState.BAD:
            multi.failed(f"\t> {node.name}: FAILED ({state.reason})")
        elif state.kind == NodeState.DOWN:
            down(node, "DOWN (not running: no pid file)")
        elif state.kind == NodeState.STALE:
            if "dry_run" not in multi.flags:
                remove_pidfile(node, state.pid)
            down(node, f"DOWN (stale pid file removed: {state.reason})")
        elif "dry_run" in multi.flags:
            multi.note(f"\t> {node.name}: would send {signal_name(sig)} -> {state.pid}")
        elif send(multi, node, state.pid, sig):
            waiting[node] = state.pid  # type: ignore[assignment]
    if not waiting:
        return
    multi.note(f"> Waiting for {len(waiting)} node{'s' if len(waiting) > 1 else ''} -> "
               f"{', '.join(str(p) for p in waiting.values())}...")
    for node in wait_for_exit(waiting):
        remove_pidfile(node, waiting[node])
        down(node)


def send(multi: Any, node: Node, pid: int, sig: int) -> bool:
    """Send *sig*; whether the process got it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        multi.note(f"\t> {node.name}: DOWN (process {pid} exited)")
        remove_pidfile(node, pid)
        return False
    except PermissionError:
        multi.failed(f"\t> {node.name}: FAILED (not permitted to signal process {pid}: "
                     "another user's)")
        return False
    multi.note(f"\t> {node.name}: {signal_name(sig)} -> {pid}")
    return True


def kill_nodes(multi: Any, nodes: list[Node]) -> None:
    """SIGKILL each running node (its whole process group when it leads one
    of its own: the pool's processes too), wait until it is gone, remove
    its pid file."""
    waiting: dict[Node, int] = {}
    for node in nodes:
        state = node_state(node)
        if state.kind == NodeState.BAD:
            multi.failed(f"> {node.name}: FAILED ({state.reason})")
        elif state.kind == NodeState.DOWN:
            multi.note(f"> {node.name}: DOWN (not running: no pid file)")
        elif state.kind == NodeState.STALE:
            if "dry_run" not in multi.flags:
                remove_pidfile(node, state.pid)
            multi.note(f"> {node.name}: DOWN (stale pid file removed: {state.reason})")
        elif "dry_run" in multi.flags:
            multi.note(f"Would send KILL to node {node.name} ({state.pid})")
        else:
            multi.note(f"Sending KILL to node {node.name} ({state.pid})")
            if kill_group(multi, node, state.pid):  # type: ignore[arg-type]
                waiting[node] = state.pid  # type: ignore[assignment]
    for node in wait_for_exit(waiting, timeout=KILL_WAIT):
        remove_pidfile(node, waiting.pop(node))
        multi.note(f"> {node.name}: DOWN")
    for node, pid in waiting.items():
        multi.failed(f"> {node.name}: FAILED (process {pid} still there {KILL_WAIT:g} s "
                     "after SIGKILL)")


def kill_group(multi: Any, node: Node, pid: int) -> bool:
    try:
        group = os.getpgid(pid)
        if own_group(pid, group):
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        remove_pidfile(node, pid)
        multi.note(f"> {node.name}: DOWN (process {pid} exited)")
        return False
    except PermissionError:
        multi.failed(f"> {node.name}: FAILED (not permitted to kill process {pid})")
        return False
    return True


def own_group(pid: int, group: int) -> bool:
    """Whether *pid*'s process group is a detached daemon's own: a session
    of its own (not ours) whose leader, the first fork, has exited; or the
    process leads it.  Killing that group kills nothing else."""
    if group == os.getpgrp() or os.getsid(pid) != group or group == os.getsid(0):
        return False
    return group == pid or not alive(group)
