"""User code registers layers with a decorator; the spec uses them like built-in ones."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from deeppipe.errors import SpecError
from deeppipe.models import LAYERS, build_model, register_layer


@register_layer("UserScale", aliases=("user_scale",))
class UserScale(nn.Module):
    """Multiplies each feature by a learned factor; in_features comes from the shape."""

    def __init__(self, in_features: int, init: float = 1.0) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.full((in_features,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@register_layer("UserGatedSum", multi_input=True)
class UserGatedSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.w.fill_(0.5)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.w * a + (1 - self.w) * b


@register_layer("UserLookup")
class UserLookup(nn.Module):
    """Keeps a tensor in a plain attribute and has no reset_parameters: built again for real."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.table = torch.arange(in_features, dtype=torch.float32)
        self.bias = nn.Parameter(torch.ones(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table.to(x.device) + self.bias


@register_layer("UserWideLinear")
def wide_linear(in_features: int, out_features: int, factor: int = 2) -> nn.Module:
    """A factory function works too."""
    return nn.Linear(in_features, out_features * factor)


def test_registered_class_gets_its_input_size_inferred():
    net = build_model(
        {"layers": [{"Linear": {"out_features": 6}}, {"user_scale": {"init": 2.0}}]}, (4,), None
    )
    layer = net.get_submodule("1")
    assert isinstance(layer, UserScale) and layer.factor.shape == (6,)
    assert torch.all(layer.factor == 2.0)
    with pytest.raises(SpecError, match="did you mean 'init'"):
        build_model({"layers": [{"UserScale": {"inti": 2.0}}]}, (4,), None)


def test_multi_input_user_layer():
    spec = {
        "layers": [
            {"Linear": {"out_features": 3}, "name": "a"},
            {"Linear": {"out_features": 3}, "from": "input", "name": "b"},
            {"UserGatedSum": {}, "from": ["a", "b"]},
        ]
    }
    net = build_model(spec, (5,), None)
    x = torch.rand(2, 5)
    torch.testing.assert_close(net(x), 0.5 * net.a(x) + 0.5 * net.b(x))


def test_layer_with_plain_tensor_attribute_is_constructed_for_real():
    net = build_model({"layers": [{"UserLookup": {}}]}, (4,), None)
    layer = net.get_submodule("0")
    assert layer.table.device.type == "cpu" and torch.equal(layer.table, torch.arange(4.0))
    assert torch.all(layer.bias == 1)
    torch.testing.assert_close(net(torch.zeros(1, 4)), torch.tensor([[1.0, 2.0, 3.0, 4.0]]))


def test_factory_function_layers():
    net = build_model(
        {"layers": [{"UserWideLinear": {"out_features": 3, "factor": 3}}]}, (4,), None
    )
    assert net.output_shape == (9,)
    assert "UserWideLinear" in LAYERS


def test_a_module_listed_under_imports_registers_its_layers(tmp_path, monkeypatch):
    pkg = tmp_path / "my_layers_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text(
        textwrap.dedent(
            """
            import torch.nn as nn
            from deeppipe.models import register_layer

            @register_layer("UserSquare")
            class Square(nn.Module):
                def forward(self, x):
                    return x * x
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SpecError, match="unknown layer 'UserSquare'"):
        build_model({"layers": [{"UserSquare": {}}]}, (3,), None)
    importlib.import_module("my_layers_pkg.layers")  # what the spec's `imports:` does
    try:
        net = build_model({"layers": [{"UserSquare": {}}]}, (3,), None)
        torch.testing.assert_close(net(torch.full((1, 3), 3.0)), torch.full((1, 3), 9.0))
    finally:
        sys.modules.pop("my_layers_pkg.layers", None)
        sys.modules.pop("my_layers_pkg", None)


def test_user_layer_errors_are_spec_errors():
    @register_layer("UserBroken")
    class Broken(nn.Module):
        def __init__(self, in_features: int) -> None:
            super().__init__()
            self.fc = nn.Linear(in_features, 2)

        def forward(self, x):
            return self.fc(x.reshape(x.shape[0], 7))  # fails for most inputs

    with pytest.raises(SpecError) as e:
        build_model({"layers": [{"UserBroken": {}}]}, (4,), None)
    assert e.value.path == "model.layers[0].UserBroken" and "(4,)" in str(e.value)


@register_layer("UserDataDependent")
class UserDataDependent(nn.Module):
    """Uses a value of its input to decide a shape: cannot run on the meta device."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = int((x > -1e9).all(dim=0).sum().item())
        return self.fc(x[:, :keep])


def test_layers_that_cannot_run_on_meta_are_probed_for_real():
    net = build_model({"layers": [{"UserDataDependent": {}, "repeat": 2}]}, (3,), 3)
    assert net.output_shape == (3,)
    assert net(torch.rand(2, 3)).shape == (2, 3)
