"""Adafactor, the paper's optimizer, written so that it also updates parameters sharded by FSDP2 (DTensors).

The algorithm and the state are transformers' `Adafactor` with the settings Flan-T5's fine-tuning uses: a
constant learning rate (relative_step=False, scale_parameter=False, warmup_init=False), no first moment,
decay_rate -0.8, eps (1e-30, 1e-3), update clipping at RMS 1.0, optional weight decay. The second moment of a
matrix is kept factored, as a row and a column average of the squared gradient; of a vector, whole.
tests/test_adafactor.py checks that it takes the same steps as transformers' class.

Why not transformers' class (or torch.optim.Adafactor): both update their state in place. Under FSDP2 a
weight is sharded by rows, so its column average is a partial sum on each process; DTensor refuses to add such
a partial result in place into a state of another layout, and the first step fails. Here every average over a
sharded dimension is settled (all-reduced) before it is used, and each state is replaced, not mutated. On
plain tensors the same code is ordinary single-process Adafactor.

State per parameter: "step", and "exp_avg_sq_row" + "exp_avg_sq_col" (matrices) or "exp_avg_sq" (vectors).
"""

from __future__ import annotations

import math

import torch


def _settled(x: torch.Tensor) -> torch.Tensor:
    """x, with any partial (not yet reduced across processes) placement of a DTensor reduced: replicated."""
    placements = getattr(x, "placements", None)
    if placements is None or not any(p.is_partial() for p in placements):
        return x
    from torch.distributed.tensor import Replicate

    return x.redistribute(x.device_mesh, [Replicate() if p.is_partial() else p for p in placements])


def _rms(x: torch.Tensor) -> float:
    """Root mean square of all of x's elements (every shard of a DTensor)."""
    norm = x.norm()
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return norm.item() / math.sqrt(x.numel())


class Adafactor(torch.optim.Optimizer):
    def __init__(self, params, lr: float, eps: tuple[float, float] = (1e-30, 1e-3), clip_threshold: float = 1.0,
                 decay_rate: float = -0.8, weight_decay: float = 0.0):
        if lr <= 0:
            raise ValueError(f"Adafactor: lr must be > 0 (a constant learning rate), got {lr}")
        super().__init__(params, dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"][0]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float() if p.grad.dtype in (torch.float16, torch.bfloat16) else p.grad
                if grad.is_sparse:
                    raise RuntimeError("Adafactor does not support sparse gradients")
                state = self.state[p]
                step = state.get("step", 0) + 1
                beta2t = 1.0 - math.pow(step, group["decay_rate"])  # 0 at the first step: the averages start there
                squared = grad * grad + eps
                if grad.dim() >= 2:  # factored: row and column averages of the squared gradient
                    row = _settled(squared.mean(dim=-1)) * (1.0 - beta2t)  # (..., rows)
                    col = _settled(squared.mean(dim=-2)) * (1.0 - beta2t)  # (..., cols)
                    if "exp_avg_sq_row" in state:
                        row = state["exp_avg_sq_row"] * beta2t + row
                        col = state["exp_avg_sq_col"] * beta2t + col
                    state["exp_avg_sq_row"], state["exp_avg_sq_col"] = row, col
                    # the squared gradient, approximated by the outer product of the two, normalised by the row mean
                    row_factor = (row / _settled(row.mean(dim=-1, keepdim=True))).rsqrt().unsqueeze(-1)  # (..., rows, 1)
                    col_factor = col.unsqueeze(-2).rsqrt()  # (..., 1, cols)
                    update = row_factor * col_factor * grad  # (..., rows, cols)
                else:
                    avg = squared * (1.0 - beta2t)
                    if "exp_avg_sq" in state:
                        avg = state["exp_avg_sq"] * beta2t + avg
                    state["exp_avg_sq"] = avg
                    update = avg.rsqrt() * grad
                state["step"] = step
                update = update * (lr / max(1.0, _rms(update) / group["clip_threshold"]))  # clipped at RMS 1
                if group["weight_decay"]:
                    p.add_(p, alpha=-group["weight_decay"] * lr)
                p.sub_(update.to(p.dtype))
        return loss
