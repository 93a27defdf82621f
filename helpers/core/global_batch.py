"""Batch statistics of the global batch under torchrun: what one process holding every process's
rows would compute. Batch norm (`sync_batchnorm`) and the moments of losses built on batch
statistics (`batch_mean`, `batch_var`: SMiLE's feature matching and prior penalty).

On CUDA the batch norms become torch.nn.SyncBatchNorm (NCCL). torch's refuses CPU tensors, so
elsewhere (gloo processes on a CPU: the tests, bench-ddp) they become this module's SyncBatchNorm,
which computes the same statistics with one all-gather forward and one all-reduce backward.
In one process every function here is the plain operation.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn

from .distributed import world_size


class _AllSum(torch.autograd.Function):
    """Sum over processes. Every process's loss depends on every process's input through the sum,
    so the gradient of an input is the sum of all processes' gradients of the output."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        return _AllSum.apply(grad)


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """Return x.mean(0) over the global batch (every process's rows); differentiable. x: (B, ...)."""
    if world_size() == 1:
        return x.mean(0)
    return _AllSum.apply(x.sum(0)) / (x.shape[0] * world_size())  # the loader gives every process the same share


def batch_var(x: torch.Tensor) -> torch.Tensor:
    """Return x.var(0) (unbiased) over the global batch; differentiable. x: (B, ...)."""
    if world_size() == 1:
        return x.var(0)
    n = x.shape[0] * world_size()
    return batch_mean((x - batch_mean(x)).pow(2)) * (n / (n - 1))


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch norm of x (B, C, ...) with the statistics of every process's rows, and its gradient
    (the batch-norm backward with the two per-channel sums taken over all processes). Returns
    (y, mean, biased var); the statistics carry no gradient (they feed the running averages)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        _, mean_r, invstd_r = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)  # fused stats
        count = torch.full_like(mean_r[:1], x.numel() / x.shape[1])
        stats = [torch.empty(2 * len(mean_r) + 1, device=x.device) for _ in range(world_size())]
        dist.all_gather(stats, torch.cat([mean_r, invstd_r.pow(-2) - eps, count]))
        means, variances, counts = torch.stack(stats).split([len(mean_r), len(mean_r), 1], dim=1)
        n = counts.sum()
        mean = (counts * means).sum(0) / n  # exact pairwise combination (Chan et al.)
        var = (counts * (variances + (means - mean).pow(2))).sum(0) / n
        invstd = torch.rsqrt(var + eps)
        scale = invstd * weight if weight is not None else invstd
        shift = (bias if bias is not None else 0) - mean * scale
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.n, ctx.dims, ctx.shape = float(n), dims, shape
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(shift.view(shape), x, scale.view(shape)), mean, var

    @staticmethod
    def backward(ctx, grad, _mean, _var):
        x, weight, mean, invstd = ctx.saved_tensors
        dims, shape, n = ctx.dims, ctx.shape, ctx.n
        sum_g = grad.sum(dims)
        sum_gxhat = ((grad * x).sum(dims) - mean * sum_g) * invstd  # sum of grad * normalised x
        both = torch.cat([sum_g, sum_gxhat])
        dist.all_reduce(both)  # every process's loss depends on this one's rows through the statistics
        g1, g2 = both.split(len(mean))
        a = invstd * weight if weight is not None else invstd
        b = -a * invstd * g2 / n
        c = -a * g1 / n - b * mean
        dx = torch.addcmul(torch.addcmul(c.view(shape), x, b.view(shape)), grad, a.view(shape))
        return dx, sum_gxhat if weight is not None else None, sum_g if weight is not None else None, None


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm that normalises with the global batch's statistics in training (one process, or
    eval mode: the ordinary batch norm). Any input (B, C, ...); parameters and buffers as BatchNorm.
    One all-gather forward and one all-reduce backward per layer; no double backward (critics
    with a gradient penalty use layer norm)."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        # fp32 statistics and arithmetic under bf16 autocast, as batch norm does
        y, mean, var = _GlobalBatchNorm.apply(x.float(), self.weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = x.numel() / x.shape[1] * world_size()
                self.running_mean.lerp_(mean, m)
                self.running_var.lerp_(var * n / (n - 1), m)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """Return module with every batch norm inside replaced by a synchronised one holding the very
    same parameters and buffers (optimisers built before keep working); same state_dict keys.
    On CUDA torch.nn.SyncBatchNorm, elsewhere this module's SyncBatchNorm (see the docstring)."""
    if any(t.is_cuda for t in module.parameters()):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            new = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.weight, new.bias = child.weight, child.bias
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(new, key, getattr(child, key))
            setattr(module, name, new.train(child.training))
        else:
            sync_batchnorm(child)
    return module
