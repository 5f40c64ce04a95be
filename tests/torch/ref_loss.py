"""Reference cases for the losses (see gen_reference.py): every loss, every
reduction (and the legacy size_average/reduce), class weights, ignore_index,
label smoothing, index and probability targets, broadcast BCE weights and
pos_weight.

The model is the graph form "loss = Loss(...)(input, target)" with the target
a further model input; gen_reference draws it with the case's "inputs"
function. Every case passes init=float64_inputs, so that gen_reference keeps
the weights written in the model text instead of drawing random ones (and
the twin sees its float inputs in float64, which gen_reference now also
does itself).

BCELoss needs probabilities while gen_reference's `input` is drawn from a
normal distribution: its cases feed the probabilities as the extra input
`p` and use `input` as the target (PyTorch 1.13 does not check the target's
range), so want.grad.input is the target's gradient; the input gradient is
covered by the case through Sigmoid and by the live test."""
import torch


def float64_inputs(model):
    forward = model.forward

    def fwd(**inputs):
        return forward(**{k: v.double() if v.is_floating_point() else v for k, v in inputs.items()})

    model.forward = fwd


def loss(ctor, input_name="input", target_name="target"):
    return "target = Input()\nloss = %s(%s, %s)\n" % (ctor, input_name, target_name)


def classes(shape, n, ignore=None, share=0.25):
    """int64 class indices in [0, n), a share of them replaced by `ignore`."""
    def draw(gen):
        t = torch.randint(0, n, shape, generator=gen)
        if ignore is not None:
            t = torch.where(torch.rand(shape, generator=gen) < share, torch.full(shape, ignore), t)
        return t
    return draw


def normal(shape):
    return lambda gen: torch.randn(shape, generator=gen).float()


def uniform(shape, lo=0.0, hi=1.0):
    return lambda gen: (lo + (hi - lo) * torch.rand(shape, generator=gen)).float()


def probabilities(shape, dim):
    return lambda gen: torch.softmax(torch.randn(shape, generator=gen), dim).float()


def case(name, text, shape, target=None, **extra):
    inputs = {"target": target} if target is not None else {}
    inputs.update(extra)
    return (name, text, shape, {"inputs": inputs, "init": float64_inputs})


BCE_P = "p = Input()\nloss = %s(p, input)\n"

CASES = [
    # MSELoss, L1Loss, SmoothL1Loss: every reduction, legacy arguments
    case("loss_mse_mean", loss("MSELoss()"), (3, 4), normal((3, 4))),
    case("loss_mse_sum", loss("MSELoss(reduction='sum')"), (2, 3, 2), normal((2, 3, 2))),
    case("loss_mse_none", loss("MSELoss(reduction='none')"), (3, 5), normal((3, 5))),
    case("loss_mse_legacy_reduce", loss("MSELoss(reduce=False)"), (4, 2), normal((4, 2))),
    case("loss_mse_scalar", loss("MSELoss()"), (), normal(())),
    case("loss_l1_mean", loss("L1Loss()"), (2, 2, 3, 2), normal((2, 2, 3, 2))),
    case("loss_l1_sum", loss("L1Loss(None, None, 'sum')"), (5,), normal((5,))),
    case("loss_l1_none", loss("L1Loss(reduction='none')"), (3, 3), normal((3, 3))),
    case("loss_l1_legacy_size_average", loss("L1Loss(size_average=False)"), (3, 4), normal((3, 4))),
    case("loss_l1_int_target", loss("L1Loss()"), (4, 3), classes((4, 3), 3)),
    case("loss_smoothl1_mean", loss("SmoothL1Loss()"), (4, 5), normal((4, 5))),
    case("loss_smoothl1_beta_sum", loss("SmoothL1Loss(reduction='sum', beta=0.5)"), (3, 6),
         normal((3, 6))),
    case("loss_smoothl1_beta_none", loss("SmoothL1Loss(reduction='none', beta=2.0)"), (2, 3, 2),
         normal((2, 3, 2))),
    case("loss_smoothl1_beta0", loss("SmoothL1Loss(beta=0.0)"), (3, 4), normal((3, 4))),
    case("loss_smoothl1_int_target", loss("SmoothL1Loss(reduction='none', beta=0.7)"), (6,),
         classes((6,), 2)),
    # CrossEntropyLoss with class indices
    case("loss_ce_mean", loss("CrossEntropyLoss()"), (4, 5), classes((4,), 5)),
    case("loss_ce_sum", loss("CrossEntropyLoss(reduction='sum')"), (3, 4), classes((3,), 4)),
    case("loss_ce_none", loss("CrossEntropyLoss(reduction='none')"), (5, 3), classes((5,), 3)),
    case("loss_ce_weight", loss("CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 1.5]))"),
         (6, 4), classes((6,), 4)),
    case("loss_ce_ignore_index", loss("CrossEntropyLoss(ignore_index=1)"), (8, 3),
         classes((8,), 3)),
    case("loss_ce_ignore_default", loss("CrossEntropyLoss(reduction='none')"), (6, 4),
         classes((6,), 4, ignore=-100)),
    case("loss_ce_smoothing", loss("CrossEntropyLoss(label_smoothing=0.2)"), (5, 4),
         classes((5,), 4)),
    case("loss_ce_smoothing_weight_ignore",
         loss("CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.0]), ignore_index=-1, "
              "label_smoothing=0.3)"),
         (2, 3, 4), classes((2, 4), 3, ignore=-1, share=0.3)),
    case("loss_ce_smoothing_weight_none",
         loss("CrossEntropyLoss(weight=torch.tensor([1.5, 0.25, 1.0, 2.0, 0.75]), "
              "reduction='none', label_smoothing=0.15, ignore_index=2)"),
         (3, 5, 2, 2), classes((3, 2, 2), 5)),
    case("loss_ce_smoothing_weight_sum",
         loss("CrossEntropyLoss(torch.tensor([1.5, 0.5, 1.0]), None, -100, None, 'sum', 0.4)"),
         (4, 3, 3), classes((4, 3), 3, ignore=-100)),
    case("loss_ce_2d_weight_mean",
         loss("CrossEntropyLoss(weight=torch.tensor([0.2, 1.0, 3.0]), ignore_index=0)"),
         (2, 3, 3, 4), classes((2, 3, 4), 3)),
    case("loss_ce_3d", loss("CrossEntropyLoss()"), (2, 4, 2, 3, 2), classes((2, 2, 3, 2), 4)),
    case("loss_ce_unbatched", loss("CrossEntropyLoss(label_smoothing=0.1)"), (6,), classes((), 6)),
    case("loss_ce_unbatched_none", loss("CrossEntropyLoss(reduction='none')"), (4,),
         classes((), 4)),
    case("loss_ce_legacy", loss("CrossEntropyLoss(size_average=False, reduce=True)"), (4, 3),
         classes((4,), 3)),
    # weights drawn at random by gen_reference (no "init") and loaded as the
    # buffer loss.weight, replacing the model text's
    ("loss_ce_weight_loaded", loss("CrossEntropyLoss(weight=torch.tensor([1.0, 1.0, 1.0, 1.0]), "
                                   "reduction='sum', label_smoothing=0.2)"), (5, 4),
     {"inputs": {"target": classes((5,), 4)}}),
    ("loss_nll_weight_loaded",
     loss("NLLLoss(weight=torch.tensor([1.0, 1.0, 1.0]), reduction='none')"), (2, 3, 2),
     {"inputs": {"target": classes((2, 2), 3)}}),
    # CrossEntropyLoss with class probabilities
    case("loss_ce_probs_mean", loss("CrossEntropyLoss()"), (4, 5), probabilities((4, 5), 1)),
    case("loss_ce_probs_sum_weight",
         loss("CrossEntropyLoss(weight=torch.tensor([1.0, 0.5, 2.0]), reduction='sum')"),
         (3, 3, 2), probabilities((3, 3, 2), 1)),
    case("loss_ce_probs_none_smoothing",
         loss("CrossEntropyLoss(reduction='none', label_smoothing=0.25)"), (2, 4, 3),
         probabilities((2, 4, 3), 1)),
    case("loss_ce_probs_weight_smoothing_mean",
         loss("CrossEntropyLoss(weight=torch.tensor([2.0, 1.0, 0.5, 1.0]), label_smoothing=0.6)"),
         (2, 4, 2, 2), uniform((2, 4, 2, 2))),
    case("loss_ce_probs_unbatched", loss("CrossEntropyLoss(label_smoothing=0.05)"), (5,),
         probabilities((5,), 0)),
    # NLLLoss
    case("loss_nll_mean", loss("NLLLoss()"), (4, 3), classes((4,), 3)),
    case("loss_nll_sum", loss("NLLLoss(reduction='sum')"), (5, 4), classes((5,), 4, ignore=-100)),
    case("loss_nll_none_weight", loss("NLLLoss(weight=torch.tensor([1.0, 0.3, 2.0]), "
                                      "reduction='none')"), (6, 3), classes((6,), 3)),
    case("loss_nll_weight_ignore_mean",
         loss("NLLLoss(weight=torch.tensor([0.7, 1.2, 2.0, 0.1]), ignore_index=3)"), (7, 4),
         classes((7,), 4)),
    case("loss_nll_2d", loss("NLLLoss(ignore_index=-1)"), (2, 3, 2, 3),
         classes((2, 2, 3), 3, ignore=-1)),
    case("loss_nll_unbatched", loss("NLLLoss()"), (4,), classes((), 4)),
    case("loss_nll_legacy", loss("NLLLoss(None, None, -100, False)"), (3, 2), classes((3,), 2)),
    # BCELoss (input: the target; p: the probabilities)
    case("loss_bce_mean", BCE_P % "BCELoss()", (3, 4), p=uniform((3, 4), 0.02, 0.98)),
    case("loss_bce_sum", BCE_P % "BCELoss(reduction='sum')", (2, 5), p=uniform((2, 5), 0.02, 0.98)),
    case("loss_bce_none", BCE_P % "BCELoss(reduction='none')", (4, 2, 2),
         p=uniform((4, 2, 2), 0.02, 0.98)),
    case("loss_bce_weight_last_dim", BCE_P % "BCELoss(weight=torch.tensor([1.0, 0.5, 2.0, 0.25]))",
         (3, 4), p=uniform((3, 4), 0.02, 0.98)),
    case("loss_bce_weight_2d", BCE_P % "BCELoss(weight=torch.tensor([[1.0], [0.5], [2.0]]), "
         "reduction='none')", (2, 3, 2), p=uniform((2, 3, 2), 0.02, 0.98)),
    case("loss_bce_legacy", BCE_P % "BCELoss(size_average=False)", (5,), p=uniform((5,), 0.02, 0.98)),
    case("loss_bce_sigmoid", "target = Input()\ns = Sigmoid()(input)\n"
         "loss = BCELoss(weight=torch.tensor([2.0, 1.0, 0.5]))(s, target)\n",
         (4, 3), uniform((4, 3))),
    case("loss_bce_sigmoid_none", "target = Input()\ns = Sigmoid()(input)\n"
         "loss = BCELoss(reduction='none')(s, target)\n", (2, 3, 2), uniform((2, 3, 2))),
    # BCEWithLogitsLoss
    case("loss_bcelogits_mean", loss("BCEWithLogitsLoss()"), (4, 3), uniform((4, 3))),
    case("loss_bcelogits_sum", loss("BCEWithLogitsLoss(reduction='sum')"), (2, 3, 2),
         uniform((2, 3, 2))),
    case("loss_bcelogits_none", loss("BCEWithLogitsLoss(reduction='none')"), (5, 2), uniform((5, 2))),
    case("loss_bcelogits_weight", loss("BCEWithLogitsLoss(weight=torch.tensor([0.5, 2.0, 1.0]))"),
         (4, 3), uniform((4, 3))),
    case("loss_bcelogits_pos_weight",
         loss("BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 0.5, 1.0, 2.0]))"), (3, 4),
         uniform((3, 4))),
    case("loss_bcelogits_both_none",
         loss("BCEWithLogitsLoss(weight=torch.tensor([[2.0], [0.5]]), reduction='none', "
              "pos_weight=torch.tensor([1.5, 0.25, 4.0]))"), (3, 2, 3), uniform((3, 2, 3))),
    case("loss_bcelogits_pos_weight_sum",
         loss("BCEWithLogitsLoss(None, None, None, 'sum', torch.tensor([2.0, 3.0]))"), (4, 2),
         uniform((4, 2))),
    case("loss_bcelogits_legacy", loss("BCEWithLogitsLoss(reduce=False, size_average=True)"),
         (3, 3), uniform((3, 3))),
]
