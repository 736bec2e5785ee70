"""Per-segment quiz losses: one batched forward pass over K salted samples.

Sample j is the token sequence salt_j ‖ data_j (S salt tokens, then L = sample_len data tokens).
Its data tokens are cut into G equal segments of L/G tokens; the committed value v_{j,g} is the
mean next-token cross-entropy over segment g's tokens (the positions whose logits predict them).
Values are returned sample-major: v_{0,0} … v_{0,G−1}, v_{1,0}, …  With G = 1 this is the mean
over all L data tokens (positions t = S−1 … S+L−2 predicting tokens S … S+L−1).  Segments cost
nothing extra (same pass, same logits) and multiply the values a forger must guess
(params.py).

The first data token counts: it is predicted from the last salt token, so it is the data token
most directly shaped by the salt, and counting it means every data token of the record is scored.
No salt token is ever a prediction target (salts are random; scoring them would only add noise
that a miner can compute without knowing the data).

Consensus compute settings (poai.model.config.consensus_mode): float32, eager attention and
expert kernels, eval mode, no autograd, one thread per process, all K samples in ONE batch of
shape (K, S+L) with no padding and no attention mask (all rows have the same length, so the
model's own causal mask is the whole mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def build_batch(salts: Sequence[Sequence[int]], records: Sequence[Sequence[int]]) -> torch.Tensor:
    """The (K, S+L) int64 input batch: row j is salts[j] ‖ records[j]."""
    if len(salts) != len(records) or not salts:
        raise ValueError("need one salt per record and at least one sample")
    rows = [list(s) + list(r) for s, r in zip(salts, records, strict=True)]
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise ValueError("all samples must have the same salt and data length")
    return torch.tensor(rows, dtype=torch.int64)


def sample_losses_from_logits(
    logits: torch.Tensor, batch: torch.Tensor, salt_len: int, segments: int = 1
) -> torch.Tensor:
    """float32 (K·G,) mean cross-entropy over each segment of each row's data tokens (see module
    docstring), sample-major."""
    if logits.dim() != 3 or batch.dim() != 2 or logits.shape[:2] != batch.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match batch {tuple(batch.shape)}")
    if not 1 <= salt_len < batch.shape[1]:
        raise ValueError(f"salt_len {salt_len} must be in [1, {batch.shape[1]})")
    pred = logits[:, salt_len - 1 : -1, :].float()  # positions S-1 .. S+L-2
    tgt = batch[:, salt_len:]  # tokens S .. S+L-1
    ce = F.cross_entropy(pred.transpose(1, 2), tgt, reduction="none")  # (K, L)
    k, length = ce.shape
    if segments < 1 or length % segments:
        raise ValueError(f"{length} data tokens do not split into {segments} segments")
    if segments == 1:
        return ce.mean(dim=1)
    return ce.reshape(k, segments, length // segments).mean(dim=2).reshape(-1)


def sample_losses(
    model: torch.nn.Module, batch: torch.Tensor, salt_len: int, segments: int = 1
) -> list[float]:
    """Run the batch through the model (one forward pass) and return its K·G committed losses."""
    with torch.inference_mode():
        logits = model(input_ids=batch, use_cache=False).logits
        losses = sample_losses_from_logits(logits, batch, salt_len, segments)
    return [float(v) for v in losses.tolist()]
