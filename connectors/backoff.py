"""Exponential backoff with full jitter, shared by every reconnecting link."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays of initial_s * 2**n, capped at max_s, each drawn uniformly from [d/2, d].

    Jitter keeps a plant full of gateways from reconnecting to a restarted
    broker or PLC in lock-step.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    attempt: int = 0

    def next_delay_s(self) -> float:
        ceiling = min(self.max_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
