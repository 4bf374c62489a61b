"""Mini-batches: which examples each stochastic step of :func:`eoslab.run` uses."""
from __future__ import annotations

import torch

from ._validation import check_int, resolve_device

__all__ = ["BatchSampler"]


class BatchSampler:
    """Seeded mini-batch indices for :func:`eoslab.run`: reshuffled epochs (no replacement) or i.i.d. draws.

    Each call returns the indices of the next batch, on ``device``. Without
    replacement every example is drawn once per epoch, in a fresh random
    order; with it, each batch is ``batch_size`` independent uniform draws.
    The generator is its own, so a run's batches depend on ``seed`` only.

    Examples
    --------
    >>> sampler = BatchSampler(5, 2, replacement=False, seed=0, device="cpu")
    >>> sorted(torch.cat([sampler() for _ in range(5)])[:10].tolist())   # two epochs of five
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    """

    def __init__(self, num_examples, batch_size, replacement, seed, device):
        num_examples = check_int("num_examples", num_examples, low=1)
        batch_size = check_int("batch_size", batch_size, low=1, high=num_examples)
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be True or False, got {replacement!r}")
        seed = check_int("seed", seed)
        device = resolve_device(device)
        self.n, self.b, self.replacement = num_examples, batch_size, replacement
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.queue = torch.zeros(0, dtype=torch.int64)

    def __call__(self):
        if self.replacement:
            idx = torch.randint(self.n, (self.b,), generator=self.gen)
        else:
            while self.queue.numel() < self.b:
                self.queue = torch.cat([self.queue, torch.randperm(self.n, generator=self.gen)])
            idx, self.queue = self.queue[: self.b], self.queue[self.b:]
        return idx.to(self.device)

    def state_dict(self):
        """The generator's state and the rest of the current epoch, for a checkpoint."""
        return {"generator": self.gen.get_state(), "queue": self.queue.clone()}

    def load_state_dict(self, state):
        self.gen.set_state(state["generator"])
        self.queue = state["queue"].clone()
