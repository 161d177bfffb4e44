"""The model catalog: names, shapes, inline shapes and the unknown-name message."""

from __future__ import annotations

import pytest

from sim.catalog.models import ModelShape, get_model, model_catalog

REQUIRED = [
    "llama3.1-8b",
    "llama3.1-70b",
    "llama3.3-70b",
    "llama3.1-405b",
    "llama2-70b",
    "gpt3-175b",
    "deepseek-v3",
    "deepseek-r1",
    "gpt-oss-120b",
    "frontier-moe-2t",
]


def test_catalog_has_required_names_with_sources() -> None:
    cat = model_catalog()
    for name in REQUIRED:
        assert name in cat
        assert cat[name].source
    assert cat["frontier-moe-2t"].placeholder
    assert "PLACEHOLDER" in cat["frontier-moe-2t"].source


def test_moe_shapes() -> None:
    ds = get_model("deepseek-v3")
    assert ds.is_moe
    assert ds.total_params == pytest.approx(671e9)
    assert ds.active_params == pytest.approx(37e9)
    assert 600e9 < ds.expert_params_total < ds.total_params


def test_mlperf_flop_count_of_405b() -> None:
    """MLPerf's MODEL_TFLOP_PER_SAMPLE=21508 is 6 N + 12 L s d with N excluding the embedding."""
    m = get_model("llama3.1-405b")
    full_attention = 12 * m.layers * 8192 * m.attention_width
    per_sample = (6 * m.matmul_params_active + full_attention) * 8192
    assert per_sample / 1e12 == pytest.approx(21508, rel=0.005)


def test_unknown_name_suggests() -> None:
    with pytest.raises(KeyError, match=r"did you mean 'llama3\.1-405b'.*known: .*gpt3-175b"):
        get_model("llama3.1-406b")


def test_inline_shape_and_validation() -> None:
    shape = {
        "total_params": 1e9,
        "active_params": 1e9,
        "layers": 16,
        "hidden_size": 2048,
        "heads": 16,
        "kv_heads": 4,
        "ffn_hidden_size": 8192,
        "vocab_size": 32000,
    }
    assert isinstance(get_model(shape), ModelShape)
    with pytest.raises(ValueError, match="active_params"):
        get_model({**shape, "active_params": 2e9})
    with pytest.raises(ValueError, match="invalid inline model shape"):
        get_model({**shape, "hidden": 1})
