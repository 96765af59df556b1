"""Device choice and loaded models, per worker child process.

Nothing here runs at import: CUDA is first touched inside a task, in the forked child, so the
parent never holds a CUDA context that a fork would break.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import Any

import torch

from workers.checkpoint import checkpoint_sha256, load_checkpoint
from workers.models import get_family

MODEL_CACHE_SIZE = 4


@cache
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_models: OrderedDict[str, tuple[torch.nn.Module, dict[str, Any]]] = OrderedDict()


def load_model(path: Path) -> tuple[torch.nn.Module, dict[str, Any], str]:
    """Load a checkpoint, keeping the few most recent ones (keyed by sha256) in memory so
    consecutive chunks of one job do not reload it."""
    digest = checkpoint_sha256(path)
    hit = _models.get(digest)
    if hit is None:
        weights, meta = load_checkpoint(path)
        family = get_family(str(meta.get("family", "")))
        model = family.build(meta["config"])
        model.load_state_dict(weights)
        model.to(device()).eval()
        hit = (model, meta)
        _models[digest] = hit
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
    _models.move_to_end(digest)
    return hit[0], hit[1], digest
