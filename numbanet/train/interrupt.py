"""Ctrl-C as a request to stop after the current training step."""

import signal
import threading


class StopRequest:
    """While active, SIGINT sets :attr:`requested` instead of raising KeyboardInterrupt.

    The training loop reads the flag after each step, so the step in progress completes,
    the checkpoint is written and ``fit`` returns normally. A second Ctrl-C raises
    KeyboardInterrupt at once. Outside the main thread no handler can be installed and
    Ctrl-C keeps its default behaviour.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def request(self):
        self.requested = True

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
