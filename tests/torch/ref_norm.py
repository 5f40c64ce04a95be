"""Reference cases for the normalisation family (see gen_reference.py):
BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, GroupNorm and LayerNorm, in
training mode (batch statistics, running statistics updated and recorded as
want.state.*) and eval mode (running statistics), with every option.

LayerNorm(bias=False) does not exist in torch 1.13; it is covered by the
gradient check and the live test instead."""
import torch

_gen = torch.Generator().manual_seed(7031)


def _randomise(model, tracked):
    """Random weights and running statistics, and num_batches_tracked set
    (momentum=None then averages over tracked + 1 batches)."""
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                p.fill_(tracked)
            elif name.endswith("running_var"):
                p.copy_(torch.rand(p.shape, generator=_gen).double() + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=_gen).double() * 0.5)


def tracked(n):
    return lambda model: _randomise(model, n)


T = {"train": True}

CASES = [
    # BatchNorm: training (batch statistics, running update), eval (running).
    ("norm_bn1d_train", "BatchNorm1d(4)", (5, 4), T),
    ("norm_bn1d_eval", "BatchNorm1d(4)", (5, 4)),
    ("norm_bn1d_3d_train_mom", "BatchNorm1d(3, eps=1e-3, momentum=0.3)", (3, 3, 4), T),
    ("norm_bn1d_3d_eval", "BatchNorm1d(3, eps=1e-3)", (2, 3, 6)),
    ("norm_bn1d_two_values", "BatchNorm1d(2)", (2, 2), T),
    ("norm_bn1d_bare_train", "BatchNorm1d(3, affine=False, track_running_stats=False)", (4, 3), T),
    ("norm_bn1d_bare_channels", "BatchNorm1d(5, affine=False, track_running_stats=False)", (3, 2, 4)),
    ("norm_bn2d_train", "BatchNorm2d(3)", (2, 3, 4, 5), T),
    ("norm_bn2d_eval", "BatchNorm2d(3, eps=0.01)", (2, 3, 4, 5)),
    ("norm_bn2d_cma_train", "BatchNorm2d(2, momentum=None)", (2, 2, 3, 3), dict(train=True, init=tracked(4))),
    ("norm_bn2d_cma_first", "BatchNorm2d(2, momentum=None)", (3, 2, 2, 3), T),
    ("norm_bn2d_tracked_train", "BatchNorm2d(2)", (2, 2, 3, 2), dict(train=True, init=tracked(7))),
    ("norm_bn2d_noaffine_train", "BatchNorm2d(3, affine=False)", (2, 3, 3, 3), T),
    ("norm_bn2d_noaffine_eval", "BatchNorm2d(3, affine=False)", (2, 3, 3, 3)),
    ("norm_bn2d_notrack_train", "BatchNorm2d(3, track_running_stats=False)", (2, 3, 3, 4), T),
    ("norm_bn2d_notrack_eval", "BatchNorm2d(3, track_running_stats=False, momentum=None)", (2, 3, 3, 4)),
    ("norm_bn2d_momentum_one", "BatchNorm2d(2, momentum=1.0, eps=0)", (2, 2, 3, 3), T),
    ("norm_bn3d_train", "BatchNorm3d(2)", (2, 2, 3, 2, 3), T),
    ("norm_bn3d_eval", "BatchNorm3d(2, affine=False, eps=1e-4)", (2, 2, 2, 3, 3)),
    # InstanceNorm: no statistics by default; tracking blends per-sample
    # statistics averaged over the batch.
    ("norm_in1d_train", "InstanceNorm1d(3)", (2, 3, 6), T),
    ("norm_in1d_unbatched", "InstanceNorm1d(3, affine=True)", (3, 7)),
    ("norm_in1d_channels_differ", "InstanceNorm1d(5)", (2, 3, 4)),
    ("norm_in1d_track_unbatched_train", "InstanceNorm1d(2, track_running_stats=True)", (2, 5), T),
    ("norm_in2d_affine_eval", "InstanceNorm2d(4, affine=True)", (2, 4, 3, 5)),
    ("norm_in2d_track_train", "InstanceNorm2d(3, track_running_stats=True, momentum=0.2)", (3, 3, 4, 4), T),
    ("norm_in2d_track_eval", "InstanceNorm2d(3, affine=True, track_running_stats=True)", (2, 3, 4, 4)),
    ("norm_in2d_track_affine_train", "InstanceNorm2d(2, 1e-3, 0.5, True, True)", (2, 2, 3, 3), T),
    ("norm_in3d_train", "InstanceNorm3d(2, affine=True, track_running_stats=True)", (2, 2, 3, 2, 3), T),
    ("norm_in3d_eval", "InstanceNorm3d(2)", (1, 2, 2, 2, 3)),
    # GroupNorm: per (sample, group), in both modes.
    ("norm_gn_train", "GroupNorm(2, 6)", (2, 6, 5), T),
    ("norm_gn_2d_eval", "GroupNorm(3, 6, eps=1e-3)", (2, 6, 3, 4)),
    ("norm_gn_flat", "GroupNorm(4, 4, affine=False)", (3, 4)),
    ("norm_gn_3d_one_group", "GroupNorm(1, 3)", (2, 3, 2, 3, 2)),
    ("norm_gn_instance_like", "GroupNorm(4, 4)", (2, 4, 5), T),
    ("norm_gn_channels_differ", "GroupNorm(2, 4, affine=False)", (2, 6, 3)),
    # LayerNorm: over the trailing dims, per-element affine.
    ("norm_ln_last", "LayerNorm(6)", (4, 6)),
    ("norm_ln_2d", "LayerNorm([3, 4])", (2, 5, 3, 4), T),
    ("norm_ln_noaffine", "LayerNorm((4, 5), eps=1e-3, elementwise_affine=False)", (3, 4, 5)),
    ("norm_ln_3d", "LayerNorm([2, 3, 4])", (2, 2, 3, 4), T),
    ("norm_ln_whole", "LayerNorm([3, 5], 1e-4)", (3, 5)),
    # Stacks: gradients through normalisation into a convolution.
    ("norm_seq_conv_bn_train", "Conv2d(2, 4, 3, padding=1)\nBatchNorm2d(4)\n", (2, 2, 4, 4), T),
    ("norm_seq_conv_gn_ln", "Conv1d(3, 4, 3)\nGroupNorm(2, 4)\nLayerNorm(4)\n", (2, 3, 6)),
]
