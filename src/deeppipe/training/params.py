"""Which parameters are which: weights vs biases/norm/activation parameters, and name patterns.

Penalties and weight decay apply to *weights* only (CATALOGUE: a penalty never touches biases,
norm-layer parameters or activation parameters such as PReLU's slopes), so this one rule is
shared by the optimizer and the regulariser.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

from deeppipe.errors import SpecError, closest
from deeppipe.models.activations import activation_of

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
if hasattr(nn, "RMSNorm"):
    _NORMS = (*_NORMS, nn.RMSNorm)


def is_activation(module: nn.Module) -> bool:
    """An activation function (PReLU's learned slope, a registered activation with parameters):
    its parameters shape the non-linearity, they are not connection weights."""
    if isinstance(module, nn.MultiheadAttention):  # lives in torch.nn.modules.activation
        return False
    return (activation_of(module) is not None
            or type(module).__module__ == nn.modules.activation.__name__)


def is_weight(module: nn.Module, param_name: str) -> bool:
    """A weight is a ``weight*`` tensor of a layer that is neither a normalisation layer nor an
    activation (RNN ``weight_ih_l0`` too)."""
    return param_name.startswith("weight") and not isinstance(module, _NORMS) and not is_activation(module)


def penalised_params(model: nn.Module) -> list[nn.Parameter]:
    """The trainable weights a penalty or weight decay should see."""
    out = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad and is_weight(module, name):
                out.append(p)
    return out


def weight_names(model: nn.Module) -> set[str]:
    names = set()
    for mname, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            if is_weight(module, pname):
                names.add(f"{mname}.{pname}" if mname else pname)
    return names


def matches(name: str, pattern: str) -> bool:
    """Glob on the dotted parameter name or any tail of it starting at a dot.

    A module name also matches everything below it, so ``conv1`` matches ``body.conv1.weight``
    (the model may sit inside a wrapper such as the normalising front of deeppipe's Network).
    """
    parts = name.split(".")
    for i in range(len(parts)):
        tail = ".".join(parts[i:])
        if fnmatchcase(tail, pattern) or fnmatchcase(tail, pattern.rstrip(".") + ".*"):
            return True
    return False


def select(model: nn.Module, patterns: list[str], *, path: str) -> list[str]:
    """Names of the parameters matched by any pattern; a pattern matching nothing is a mistake."""
    names = [n for n, _ in model.named_parameters()]
    chosen: list[str] = []
    for i, pat in enumerate(patterns):
        hit = [n for n in names if matches(n, pat)]
        if not hit:
            modules = sorted({n.rsplit(".", 1)[0] for n in names if "." in n} | set(names))
            raise SpecError(
                "pattern matches no parameter of the model",
                path=f"{path}[{i}]" if len(patterns) > 1 or path.endswith("freeze") else path,
                expected="a glob over parameter names, e.g. "
                + ", ".join(modules[:4])
                + (", ..." if len(modules) > 4 else ""),
                found=pat,
                suggestion=closest(pat, modules),
            )
        chosen.extend(h for h in hit if h not in chosen)
    return chosen


def freeze(model: nn.Module, patterns: list[str], *, path: str = "train.freeze") -> list[str]:
    """Turn off gradients for the parameters the patterns name (transfer learning)."""
    names = select(model, patterns, path=path) if patterns else []
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(False)
    return names
