"""Packed recurrent layers: a sequence's prediction is the same alone and padded in a batch."""

from __future__ import annotations

import pytest
import torch

from deeppipe.models import build_model
from deeppipe.models.layers.packed import (
    PackedGRU,
    PackedLSTM,
    PackedRNN,
    StepDecoder,
    TokenEmbedding,
)


def _with_mask(x: torch.Tensor, length: int) -> torch.Tensor:
    mask = (torch.arange(x.shape[1]) < length).float()[None, :, None].expand(x.shape[0], -1, 1)
    return torch.cat([x * mask, mask], dim=-1)


@pytest.mark.parametrize("cls", [PackedLSTM, PackedGRU, PackedRNN])
@pytest.mark.parametrize("output", ["last", "mean", "max", "all"])
def test_same_prediction_alone_and_padded_in_a_batch(cls, output) -> None:
    torch.manual_seed(0)
    layer = cls(4, 6, num_layers=2, bidirectional=True, output=output).eval()
    seq = torch.randn(1, 3, 3)
    alone = layer(_with_mask(seq, 3))
    padded = torch.cat([seq, torch.full((1, 5, 3), 9.0)], dim=1)  # garbage after the end: never read
    batch = torch.cat([_with_mask(padded, 3), _with_mask(torch.randn(1, 8, 3), 8)])
    together = layer(batch)[:1]
    if output == "all":
        torch.testing.assert_close(together[:, :3], alone, atol=1e-6, rtol=1e-5)
        assert (together[:, 3:] == 0).all()
    else:
        torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-5)


def test_plain_lstm_is_changed_by_padding_the_packed_one_is_not() -> None:
    """What packing buys: deeppipe's plain LSTM reads the padding as steps."""
    torch.manual_seed(0)
    shapes = (8, 4)  # 8 steps of 3 features + the mask
    plain = build_model({"layers": [{"LSTM": {"hidden_size": 8}}, {"Linear": {"out_features": 2}}]}, shapes, 2)
    packed = build_model({"layers": [{"PackedLSTM": {"hidden_size": 8}}, {"Linear": {"out_features": 2}}]}, shapes, 2)
    seq = torch.randn(1, 3, 3)
    short = torch.cat([seq, torch.ones(1, 3, 1)], -1)
    long = _with_mask(torch.cat([seq, torch.zeros(1, 5, 3)], 1), 3)
    with torch.no_grad():
        assert (plain(short) - plain(long)).abs().max() > 1e-3
        torch.testing.assert_close(packed(short), packed(long), atol=1e-6, rtol=1e-5)


def test_token_embedding_marks_padding_and_decoder_unrolls() -> None:
    emb = TokenEmbedding(10, 4)
    out = emb(torch.tensor([[3.0, 5.0, 0.0, 0.0]]))
    assert out.shape == (1, 4, 5) and out[0, :, -1].tolist() == [1, 1, 0, 0] and (out[0, 2:, :4] == 0).all()
    dec = StepDecoder(6, steps=5, hidden_size=8, out_features=2)
    assert dec(torch.randn(3, 6)).shape == (3, 5, 2)
    net = build_model({"layers": [{"Linear": {"out_features": 8}}, {"StepDecoder": {"steps": 4, "hidden_size": 8,
                                  "out_features": 1}}, {"Flatten": {}}]}, (6,), 4)
    assert net(torch.randn(2, 6)).shape == (2, 4)


def test_packed_layer_without_a_mask_channel_is_refused() -> None:
    with pytest.raises(Exception, match="mask channel"):
        build_model({"layers": [{"PackedGRU": {"hidden_size": 4}}, {"Linear": {"out_features": 2}}]}, (5, 1), 2)
