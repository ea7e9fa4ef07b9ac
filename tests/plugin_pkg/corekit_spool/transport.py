"""The spool transport (``spool://path/to/dir``): one file per message, a
claim is an atomic rename; and the reversed-JSON serializer.  Nothing but
corekit's public contracts."""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any, Sequence

from corekit.messages import Message
from corekit.serialization import Serializer
from corekit.transport import DeadLetter, Transport


class ReversedJSON(Serializer):
    name = "reversejson"
    content_type = "application/x-reversed-json"
    content_encoding = "utf-8"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj).encode()[::-1]

    def loads(self, data: bytes) -> Any:
        return json.loads(bytes(data)[::-1])


FIELDS = ("headers", "properties", "content_type", "content_encoding", "queue", "exchange",
          "routing_key", "eta", "priority")


class SpoolTransport(Transport):
    """One file per message; claiming is an atomic rename, so two workers
    never take the same file."""

    scheme = "spool"
    capabilities = frozenset({"delayed_delivery", "dead_letter", "multiprocess"})

    def __init__(self, url: str, options: Any = None) -> None:
        super().__init__(url, options)
        self.root = url.split("://", 1)[1] or "spool"

    def _dir(self, *parts: str) -> str:
        path = os.path.join(self.root, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def _write(self, path: str, message: Message, **extra: Any) -> None:
        record = {f: getattr(message, f) for f in FIELDS}
        record["body"] = base64.b64encode(message.body).decode()
        record.update(extra)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, path)

    def _read(self, path: str) -> tuple[Message, dict[str, Any]]:
        with open(path) as f:
            record = json.load(f)
        message = Message(body=base64.b64decode(record["body"]),
                          **{f: record[f] for f in FIELDS})
        return message, record

    def publish(self, messages: Sequence[Message]) -> None:
        for m in messages:
            name = f"{time.time():020.6f}-{uuid.uuid4().hex}.msg"
            self._write(os.path.join(self._dir(m.queue), name), m)

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            got = self._claim(queues, limit)
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def _claim(self, queues: Sequence[str], limit: int) -> list[Message]:
        got: list[Message] = []
        claimed = self._dir(".claimed")
        for queue in queues:
            for name in sorted(n for n in os.listdir(self._dir(queue)) if n.endswith(".msg")):
                if len(got) >= limit:
                    return got
                src = os.path.join(self.root, queue, name)
                try:
                    message, _ = self._read(src)
                except (FileNotFoundError, ValueError):
                    continue
                if message.eta and message.eta > time.time():
                    continue
                dst = os.path.join(claimed, name)
                try:
                    os.rename(src, dst)
                except FileNotFoundError:  # another worker took it first
                    continue
                message.delivery_tag = dst
                got.append(message)
        return got

    def ack(self, messages: Sequence[Message]) -> None:
        for m in messages:
            os.unlink(m.delivery_tag)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        for m in messages:
            if requeue:
                os.rename(m.delivery_tag, os.path.join(self._dir(m.queue),
                                                       os.path.basename(m.delivery_tag)))
            else:
                os.unlink(m.delivery_tag)

    def dead_letter(self, message: Message, reason: str) -> None:
        name = os.path.basename(message.delivery_tag)
        self._write(os.path.join(self._dir(".dlq"), name), message, reason=reason,
                    failed_at=time.time())
        os.unlink(message.delivery_tag)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        out = []
        for name in sorted(os.listdir(self._dir(".dlq")))[:limit]:
            message, record = self._read(os.path.join(self.root, ".dlq", name))
            out.append(DeadLetter(name, message, record["reason"], record["failed_at"]))
        return out

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        letters = [d for d in self.dead_letters(10**9) if ids is None or d.id in ids]
        for d in letters:
            self.publish([d.message])
            os.unlink(os.path.join(self.root, ".dlq", d.id))
        return len(letters)

    def purge(self, queues: Sequence[str]) -> int:
        count = 0
        for q in queues:
            for name in os.listdir(self._dir(q)):
                os.unlink(os.path.join(self.root, q, name))
                count += 1
        return count

    def queue_size(self, queue: str) -> int:
        return sum(n.endswith(".msg") for n in os.listdir(self._dir(queue)))
