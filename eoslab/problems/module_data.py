"""The data of a :class:`~eoslab.problems.ModuleProblem`: tensors, a map-style dataset or an ordered DataLoader,
read by index, a chunk or a mini-batch at a time, and moved to the problem's device as it is used."""
from __future__ import annotations

import torch

__all__ = []


def length(data):
    return data.shape[0] if isinstance(data, torch.Tensor) else len(data)


def take(data, index):
    """Examples ``index`` of a tensor, or collated from a map-style dataset of tensors."""
    if isinstance(data, torch.Tensor):
        return data[index.to(data.device) if isinstance(index, torch.Tensor) else index]
    return torch.stack([torch.as_tensor(data[i]) for i in indices(index, len(data))])


def indices(index, length):
    return range(*index.indices(length)) if isinstance(index, slice) else index.tolist()


def to_device(x, device, dtype):
    return x.to(device=device, dtype=dtype if dtype is not None and x.is_floating_point() else x.dtype,
                non_blocking=torch.device(device).type == "cuda")


class Column:
    """One field of a map-style dataset of ``(input, target)`` pairs, indexable on its own."""

    def __init__(self, dataset, field):
        self.dataset, self.field = dataset, field

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][self.field]


def read_data(data):
    """``(inputs, targets, loader_batch)`` from a pair of tensors, a map-style dataset or a DataLoader."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset, SequentialSampler, default_collate

    batch = None
    if isinstance(data, DataLoader):
        if isinstance(data.dataset, IterableDataset):
            raise ValueError("data: a DataLoader over an IterableDataset cannot be indexed; eoslab needs a "
                             "map-style dataset (or tensors) to sample mini-batches and chunks by index")
        if not isinstance(data.sampler, SequentialSampler):
            raise ValueError("data: a DataLoader must read its dataset in a fixed order (shuffle=False), so that "
                             "the full-batch loss is one fixed function; eoslab samples mini-batches itself")
        if data.drop_last or data.collate_fn is not default_collate:
            raise ValueError("data: eoslab reads a DataLoader's dataset and batch size only; a drop_last or a "
                             "collate_fn of its own would be ignored. Pass a Dataset of (input, target) tensors")
        batch, data = data.batch_size, data.dataset
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, torch.Tensor) for d in data):
        inputs, targets = data
        if inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
            raise ValueError(f"data: inputs and targets must hold the same number (> 0) of examples, got "
                             f"{inputs.shape[0]} and {targets.shape[0]}")
        return inputs, targets, batch
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError("data: the dataset is empty")
        return Column(data, 0), Column(data, 1), batch
    raise TypeError("data must be a pair of tensors (inputs, targets), a map-style Dataset of (input, target) "
                    f"pairs, or a DataLoader over one, got {type(data).__name__}")
