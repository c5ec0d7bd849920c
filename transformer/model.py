"""The 2-layer attention-only transformer, as pure functions over a flat dict of named arrays.

Tokens `x1 y1 x2 y2 xq`: exemplars are embedded linearly (with bias), labels by a learned table,
plus a learned absolute position embedding. Each block is pre-layer-norm causal multi-head attention
(no bias on Q, K, V, O) added to the residual stream; no MLP. A final layer norm, then logits over
the K labels at the query position.

Labels, two designs (`tie_labels`):
- tied (the CPU default): one table `unembed.W_U` (K, d_model) embeds label k and reads out label k.
- untied (the paper's): `labels.W_L` (K, d_model) and a separate `unembed.W_U` (lecun-normal init).
The label table is initialised from a truncated normal with std `label_init_std` (0.02, the paper's).
The position table (`pos_init`): "uniform" in ±1/sqrt(32), as the official code's positional
embedding (a linear map from one-hot positions of a 32-position table, PyTorch-style uniform init;
5 of its rows are used), or "normal" N(0, 0.02²).

`forward(..., cache=True)` also returns every activation by name (TransformerLens style):
`hook_embed`, `hook_pos_embed`, `blocks.{l}.hook_resid_pre`, `blocks.{l}.ln.hook_normalized`,
`blocks.{l}.attn.hook_{q,k,v}` (B, T, H, d_head), `blocks.{l}.attn.hook_attn_scores` and
`blocks.{l}.attn.hook_pattern` (B, H, T_query, T_key), `blocks.{l}.attn.hook_z` (B, T, H, d_head),
`blocks.{l}.attn.hook_result` (B, T, H, d_model: each head's output), `blocks.{l}.hook_attn_out`,
`blocks.{l}.hook_resid_post`, `ln_final.hook_normalized`. `hooks={name: fn}` replaces an
activation by fn(activation) (for ablation and patching).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from transformer.choices import POS_INITS  # noqa: F401 (re-exported)

SEQ_LEN = 5  # x1 y1 x2 y2 xq
POS_TABLE = 32  # positions in the official positional table (sets its init scale 1/sqrt(32))


@dataclass(frozen=True)
class ModelConfig:
    classes: int  # K, the number of labels
    dim: int  # D, exemplar dimension
    d_model: int = 64
    heads: int = 8
    layers: int = 2
    tie_labels: bool = True
    label_init_std: float = 0.02  # the label table's init (truncated normal, as in the paper's code)
    layer_norm: bool = True
    pos_init: str = "uniform"  # "uniform" in ±1/sqrt(POS_TABLE) (official) or "normal" N(0, 0.02²)

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads


def label_table_name(cfg: ModelConfig) -> str:
    """The parameter that embeds labels (its learning rate can be scaled separately)."""
    return "unembed.W_U" if cfg.tie_labels else "labels.W_L"


def init_params(key: jax.Array, cfg: ModelConfig) -> dict[str, jax.Array]:
    """Parameters as a flat dict {name: array}."""
    K, D, M, H, Dh = cfg.classes, cfg.dim, cfg.d_model, cfg.heads, cfg.d_head
    keys = iter(jax.random.split(key, 4 + 4 * cfg.layers))
    normal = lambda shape, std: std * jax.random.normal(next(keys), shape)  # noqa: E731
    p = {
        "embed.W_x": normal((D, M), 1 / np.sqrt(D)),
        "embed.b_x": jnp.zeros(M),
        "pos.W_pos": normal((SEQ_LEN, M), 0.02)
        if cfg.pos_init == "normal"
        else jax.random.uniform(next(keys), (SEQ_LEN, M), minval=-1 / np.sqrt(POS_TABLE), maxval=1 / np.sqrt(POS_TABLE)),
        "unembed.W_U": normal((K, M), 1 / np.sqrt(M)),  # replaced below when tied
        "unembed.b_U": jnp.zeros(K),
        "ln_final.w": jnp.ones(M),
        "ln_final.b": jnp.zeros(M),
    }
    table = cfg.label_init_std * jax.random.truncated_normal(next(keys), -2.0, 2.0, (K, M))
    p[label_table_name(cfg)] = table
    for l in range(cfg.layers):
        p[f"blocks.{l}.ln.w"] = jnp.ones(M)
        p[f"blocks.{l}.ln.b"] = jnp.zeros(M)
        for name in ("W_Q", "W_K", "W_V"):
            p[f"blocks.{l}.attn.{name}"] = normal((M, H, Dh), 1 / np.sqrt(M))
        p[f"blocks.{l}.attn.W_O"] = normal((H, Dh, M), 1 / np.sqrt(H * Dh))
    return p


def layer_norm(x: jax.Array, w: jax.Array, b: jax.Array, eps: float = 1e-5) -> jax.Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * w + b


def forward(
    params: dict[str, jax.Array],
    cfg: ModelConfig,
    x: jax.Array,
    y: jax.Array,
    *,
    cache: bool = False,
    hooks: dict[str, Callable[[jax.Array], jax.Array]] | None = None,
):
    """Logits at the query for a batch of sequences.

    x: (B, 3, D) exemplars x1, x2, xq; y: (B, 2) int labels y1, y2.
    Returns logits (B, K), or (logits, activations dict) when `cache`.
    """
    hooks = hooks or {}
    acts: dict[str, jax.Array] = {}

    def hook(name, value):
        if name in hooks:
            value = hooks[name](value)
        if cache:
            acts[name] = value
        return value

    B = x.shape[0]
    ex = x @ params["embed.W_x"] + params["embed.b_x"]  # (B, 3, M)
    lab = params[label_table_name(cfg)][y]  # (B, 2, M)
    tokens = jnp.stack([ex[:, 0], lab[:, 0], ex[:, 1], lab[:, 1], ex[:, 2]], axis=1)  # (B, 5, M)
    resid = hook("hook_embed", tokens) + hook("hook_pos_embed", jnp.broadcast_to(params["pos.W_pos"], tokens.shape))
    T = resid.shape[1]
    causal = jnp.tril(jnp.ones((T, T), bool))
    for l in range(cfg.layers):
        pre = f"blocks.{l}"
        resid = hook(f"{pre}.hook_resid_pre", resid)
        h = resid
        if cfg.layer_norm:
            h = layer_norm(resid, params[f"{pre}.ln.w"], params[f"{pre}.ln.b"])
        h = hook(f"{pre}.ln.hook_normalized", h)
        q = hook(f"{pre}.attn.hook_q", jnp.einsum("btm,mhd->bthd", h, params[f"{pre}.attn.W_Q"]))
        k = hook(f"{pre}.attn.hook_k", jnp.einsum("btm,mhd->bthd", h, params[f"{pre}.attn.W_K"]))
        v = hook(f"{pre}.attn.hook_v", jnp.einsum("btm,mhd->bthd", h, params[f"{pre}.attn.W_V"]))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(cfg.d_head)
        scores = hook(f"{pre}.attn.hook_attn_scores", jnp.where(causal, scores, -jnp.inf))
        pattern = hook(f"{pre}.attn.hook_pattern", jax.nn.softmax(scores, axis=-1))
        z = hook(f"{pre}.attn.hook_z", jnp.einsum("bhqk,bkhd->bqhd", pattern, v))
        if cache or f"{pre}.attn.hook_result" in hooks:
            result = hook(f"{pre}.attn.hook_result", jnp.einsum("bqhd,hdm->bqhm", z, params[f"{pre}.attn.W_O"]))
            attn_out = result.sum(axis=2)
        else:
            attn_out = jnp.einsum("bqhd,hdm->bqm", z, params[f"{pre}.attn.W_O"])
        attn_out = hook(f"{pre}.hook_attn_out", attn_out)
        resid = hook(f"{pre}.hook_resid_post", resid + attn_out)
    final = resid[:, -1]
    if cfg.layer_norm:
        final = layer_norm(final, params["ln_final.w"], params["ln_final.b"])
    final = hook("ln_final.hook_normalized", final)
    logits = final @ params["unembed.W_U"].T + params["unembed.b_U"]
    assert logits.shape == (B, cfg.classes)
    return (logits, acts) if cache else logits
