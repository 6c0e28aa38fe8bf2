"""flanlab's Adafactor takes the same steps as transformers' Adafactor with the paper's settings (constant learning
rate, no parameter scaling, no relative step), and keeps the same state. Under FSDP2 it runs sharded:
tests/test_train_distributed.py trains with it on two processes and matches one."""

from __future__ import annotations

import pytest
import torch

from flanlab.train.adafactor import Adafactor


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(6, 5), (5,), (3, 4, 7), (1, 9)]  # matrix, vector, a stack of matrices, a single row
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_same_steps_and_state_as_transformers(weight_decay):
    from transformers.optimization import Adafactor as HFAdafactor

    ours_params, theirs_params = _params(0), _params(0)
    ours = Adafactor([{"params": ours_params[:2], "weight_decay": weight_decay}, {"params": ours_params[2:]}], lr=5e-2)
    theirs = HFAdafactor([{"params": theirs_params[:2], "weight_decay": weight_decay}, {"params": theirs_params[2:]}],
                         lr=5e-2, scale_parameter=False, relative_step=False, warmup_init=False)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        for a, b in zip(ours_params, theirs_params):
            grad = torch.randn(a.shape, generator=g) * (10.0 if step == 2 else 1.0)  # one step clipped hard
            a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        for a, b in zip(ours_params, theirs_params):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(ours_params, theirs_params):
        mine, hf = ours.state[a], theirs.state[b]
        assert mine["step"] == hf["step"] == 6
        for key in ("exp_avg_sq_row", "exp_avg_sq_col", "exp_avg_sq"):
            assert (key in mine) == (key in hf)
            if key in mine:
                torch.testing.assert_close(mine[key], hf[key], rtol=1e-6, atol=0)


def test_state_dict_round_trip_resumes_the_same_steps():
    first, second = _params(3), _params(3)
    a, b = Adafactor(first, lr=1e-2), Adafactor(second, lr=1e-2)
    g = torch.Generator().manual_seed(4)
    grads = [[torch.randn(p.shape, generator=g) for p in first] for _ in range(4)]
    for step_grads in grads[:2]:
        for p, q, grad in zip(first, second, step_grads):
            p.grad, q.grad = grad.clone(), grad.clone()
        a.step()
        b.step()
    b = Adafactor(second, lr=1e-2)
    b.load_state_dict(a.state_dict())  # a new optimizer from the saved state continues exactly
    for step_grads in grads[2:]:
        for p, q, grad in zip(first, second, step_grads):
            p.grad, q.grad = grad.clone(), grad.clone()
        a.step()
        b.step()
    for p, q in zip(first, second):
        assert torch.equal(p, q)


def test_rejects_a_zero_learning_rate():
    with pytest.raises(ValueError, match="lr must be > 0"):
        Adafactor(_params(0), lr=0.0)
