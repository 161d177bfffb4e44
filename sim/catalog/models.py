"""The model catalog: transformer shapes that scenarios and ``aifactory estimate`` name.

Data, not code: the shapes live in ``models.yaml`` next to this module, each citing the paper or
model card it comes from. A scenario may also give a shape inline (a mapping with the same
fields), which :func:`get_model` validates the same way.

Counts are plain numbers of parameters (not billions). ``total_params`` and ``active_params``
include the embedding matrices; a dense model has ``experts == 1`` and equal total and active
counts. A mixture of experts (MoE) routes each token to ``experts_per_token`` of ``experts``
routed experts (plus ``shared_experts`` always-on ones) in every layer after the first
``dense_layers``.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["ModelShape", "get_model", "model_catalog"]


class ModelShape(BaseModel):
    """One transformer's shape: what the performance model needs, no more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str = ""
    source: str = ""
    placeholder: bool = False
    total_params: float = Field(gt=0, description="all parameters, embeddings included")
    active_params: float = Field(gt=0, description="parameters used per token (MoE: routed subset)")
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    heads: int = Field(gt=0, description="query heads")
    kv_heads: int = Field(gt=0, description="key/value heads (GQA); equals heads for MHA")
    head_dim: int | None = Field(default=None, gt=0, description="default hidden_size / heads")
    kv_cache_elements_per_token_per_layer: int | None = Field(
        default=None,
        gt=0,
        description="override for latent attention (MLA); default 2 x kv_heads x head_dim",
    )
    ffn_hidden_size: int = Field(gt=0, description="dense FFN width (dense layers)")
    expert_ffn_hidden_size: int | None = Field(default=None, gt=0)
    experts: int = Field(default=1, gt=0, description="routed experts per MoE layer")
    shared_experts: int = Field(default=0, ge=0)
    experts_per_token: int = Field(default=1, gt=0)
    dense_layers: int = Field(default=0, ge=0, description="leading layers with a dense FFN")
    vocab_size: int = Field(gt=0)
    max_seq_len: int = Field(default=131072, gt=0)
    tied_embeddings: bool = False
    gated_mlp: bool = Field(
        default=True, description="SwiGLU-style FFN (gate and up projections); False for GELU"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelShape:
        if self.active_params > self.total_params:
            raise ValueError(
                f"active_params ({self.active_params:.3g}) exceeds total_params"
                f" ({self.total_params:.3g})"
            )
        if self.heads % self.kv_heads:
            raise ValueError(
                f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})"
            )
        if self.experts_per_token > self.experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds experts ({self.experts})"
            )
        if self.dense_layers > self.layers:
            raise ValueError(f"dense_layers ({self.dense_layers}) exceeds layers ({self.layers})")
        return self

    # --- derived quantities (documented here so every user reads the same definition) -------
    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def head_dim_eff(self) -> int:
        return self.head_dim or self.hidden_size // self.heads

    @property
    def attention_width(self) -> int:
        """Width of the attention score/value products: heads x head_dim."""
        return self.heads * self.head_dim_eff

    @property
    def embedding_params(self) -> float:
        """Input embedding (a table lookup, no matmul FLOPs)."""
        return float(self.vocab_size * self.hidden_size)

    @property
    def matmul_params_active(self) -> float:
        """Active parameters that take part in a matmul per token.

        The input embedding is a lookup, so it is excluded; with tied embeddings the same matrix is
        the output head, which is a matmul, so nothing is subtracted. This is the ``N`` of
        ``6 N`` in the MLPerf Llama 3.1 405B FLOP count (403.7e9 -> 21,508 TFLOP per sample).
        """
        if self.tied_embeddings:
            return self.active_params
        return self.active_params - self.embedding_params

    @property
    def expert_params_total(self) -> float:
        """Parameters in routed experts (0 for a dense model); these shard over expert parallel."""
        if not self.is_moe:
            return 0.0
        routed = self.total_params - self.active_params
        # active includes experts_per_token routed experts per layer; total includes all
        per_expert_all_layers = routed / max(self.experts - self.experts_per_token, 1)
        return per_expert_all_layers * self.experts

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements stored per token over all layers."""
        per_layer = (
            self.kv_cache_elements_per_token_per_layer or 2 * self.kv_heads * self.head_dim_eff
        )
        return per_layer * self.layers


@lru_cache(maxsize=1)
def _load_packaged() -> dict[str, ModelShape]:
    text = resources.files("sim.catalog").joinpath("models.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    return {str(k): ModelShape.model_validate(v) for k, v in (doc.get("models") or {}).items()}


def model_catalog() -> dict[str, ModelShape]:
    """The packaged model shapes keyed by name (``llama3.1-405b``)."""
    return dict(_load_packaged())


def get_model(name_or_inline: str | dict[str, Any] | ModelShape) -> ModelShape:
    """A catalog shape by name, or an inline shape (a mapping) validated against the schema.

    An unknown name raises :class:`KeyError` listing the known names and the closest match.
    """
    if isinstance(name_or_inline, ModelShape):
        return name_or_inline
    if isinstance(name_or_inline, dict):
        try:
            return ModelShape.model_validate(name_or_inline)
        except ValidationError as exc:
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'model'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            ]
            raise ValueError("invalid inline model shape (" + "; ".join(parts) + ")") from None
    known = _load_packaged()
    key = str(name_or_inline).strip().lower()
    if key in known:
        return known[key]
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise KeyError(f"unknown model {name_or_inline!r}{hint} (known: {', '.join(sorted(known))})")
