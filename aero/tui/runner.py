"""The worker thread that moves the machine, so the UI never waits for the guest.

Every operation that runs guest instructions (continue, the steps, run commands such as
``until`` or ``c 1000``) is a ``Job``; the ``Runner`` runs jobs one at a time, in order, in its
own thread, and hands each result to ``on_done(job, result)`` *from that thread* (the app posts a
message to itself; nothing else is touched there).  ``result`` is what the job returned, or the
exception it raised.

Pausing.  ``pause()`` asks the running job's machine to stop at the next instruction boundary
(``Debugger.pause``, thread-safe).  The machine's stop request also applies to the *next* run
when none is in progress, so a request that arrives just as a job ends for another reason
(a breakpoint) would stop the next step before its first instruction; the runner consumes such
a stale request when the job ends (``Machine.run_until(instructions=0)`` returns at once,
running nothing, and clears it).

Work while running.  A job marked ``resumable`` (a plain continue) can be interrupted to do
something that must not race with the CPU thread, such as adding a breakpoint:
``inject(fn)`` pauses it, runs ``fn`` in the worker thread, delivers its result, and continues
the run.  Other jobs refuse injections (the caller says "pause first").
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Job:
    """One piece of work for the worker thread."""
    kind: str                       # "cont", "step", "next", "finish", "until", "command", ...
    fn: Callable[[], object]
    label: str = ""                 # what the user asked for (a command line, a key)
    resumable: bool = False         # a continue that injections may interrupt and resume
    extra: dict = field(default_factory=dict)


class Runner:
    def __init__(self, debugger, on_done: Callable[[Job, object], None]):
        self.dbg = debugger
        self.on_done = on_done
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._queued = 0
        self._waiting: list[str] = []   # kinds of the queued jobs, in order
        self._pause_requested = False   # a stop request is (or may be) pending in the machine
        self._user_pause = False        # ... and the user asked for it (the run ends there)
        self._injected: list[Job] = []
        self._closed = False
        self.last: Job | None = None    # the job submitted or injected last
        self.submitted = 0              # jobs accepted in all (each gets one on_done)
        self._thread = threading.Thread(target=self._loop, name="aero-tui-runner", daemon=True)
        self._thread.start()

    # -- state ---------------------------------------------------------------------------------
    @property
    def current(self) -> Job | None:
        """The job running now (None when the worker is idle)."""
        return self._current

    @property
    def busy(self) -> bool:
        """Whether a job is running or waiting."""
        return self._current is not None or self._queued > 0

    def kinds(self) -> list[str]:
        """The kinds of the running job and of the queued ones, in order."""
        with self._lock:
            cur = [self._current.kind] if self._current is not None else []
            return cur + list(self._waiting)

    # -- requests (any thread) -----------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue a job (it runs after those already queued)."""
        if self._closed:
            raise RuntimeError("the runner is closed")
        with self._lock:
            self._queued += 1
            self._waiting.append(job.kind)
            self.last = job
            self.submitted += 1
            self._jobs.put(job)

    def pause(self) -> bool:
        """Pause the running job (at the next instruction boundary); False if none runs."""
        with self._lock:
            if self._current is None:
                return False
            self._pause_requested = True
            self._user_pause = True
            self.dbg.pause()
            return True

    def inject(self, job: Job) -> bool:
        """Run ``job`` while the machine is stopped: at once in the worker when idle (it is
        queued), or by pausing a resumable run, doing it and resuming the run.  False when a
        run that cannot be resumed is in progress."""
        with self._lock:
            cur = self._current
            if cur is None:
                self._queued += 1
                self._waiting.append(job.kind)
                self.last = job
                self.submitted += 1
                self._jobs.put(job)
                return True
            if not cur.resumable:
                return False
            self.last = job
            self.submitted += 1
            self._injected.append(job)
            self._pause_requested = True
            self.dbg.pause()
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Pause what runs, drop what waits, and end the thread."""
        self._closed = True
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        with self._lock:
            self._queued = 0
            self._waiting.clear()
        self.pause()
        self._jobs.put(None)
        self._thread.join(timeout)

    # -- the worker ----------------------------------------------------------------------------
    def continue_until_stopped(self, go: Callable[[], object]):
        """For a resumable job's ``fn``: call ``go()`` (a Debugger run returning a Stop) again
        after every pause that only served injections; return the first other stop."""
        while True:
            stop = go()
            with self._lock:
                requested, user = self._pause_requested, self._user_pause
                jobs, self._injected = self._injected, []
                self._pause_requested = self._user_pause = False
            paused = getattr(stop, "reason", None) == "pause"
            if requested and not paused:
                self._consume_stop()
            for job in jobs:
                self._run_one(job)
            if not paused or user or self._closed:
                return stop

    def _consume_stop(self) -> None:
        """Clear a stop request that arrived after the run it was meant for had ended."""
        self.dbg.m.run_until(instructions=0)

    def _run_one(self, job: Job) -> None:
        try:
            result = job.fn()
        except Exception as e:          # handed to on_done; the worker goes on
            result = e
        self.on_done(job, result)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._queued = max(0, self._queued - 1)
                if self._waiting:
                    self._waiting.pop(0)
                if self._closed:
                    continue
                self._current = job
            try:
                result = job.fn()
            except Exception as e:
                result = e
            with self._lock:
                self._current = None
                stale = self._pause_requested
                jobs, self._injected = self._injected, []
                self._pause_requested = self._user_pause = False
            if stale and getattr(result, "reason", None) != "pause":
                self._consume_stop()
            self.on_done(job, result)
            for j in jobs:
                self._run_one(j)
