"""
GPT-2 in one file, and the modern variants of it: the model, OpenAI's weights, and fast cached generation.

By default this *is* GPT-2 (tests/test_model.py checks logits and greedy decoding against HF transformers):
pre-LayerNorm blocks, fused qkv projection, causal attention through F.scaled_dot_product_attention,
GELU(tanh) MLP 4x wide, learned absolute positions, final LayerNorm, lm_head tied to the token embedding.
GPTConfig's other values give the pieces today's small models use instead (rotary positions, RMSNorm, SwiGLU
or ReLU^2, QK-norm, grouped-query attention, an untied head, a logit softcap): Llama's and Qwen3's shapes
exactly (tests/test_arch.py). Each choice is made once, when the model is built, so forward reads the same
for all of them. Imports torch and the standard library only; transformers is imported inside
from_pretrained.
"""
import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64: faster matmuls
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers, as in GPT-2; False is a little faster
    # ids >= tokenizer_vocab_size are padding rows the tokenizer cannot decode: generate() never produces
    # them. None means every id is a real token.
    tokenizer_vocab_size: int | None = None
    pos_embedding: str = "learned"  # 'learned' (GPT-2: a vector per position) or 'rope' (rotary, as Llama)
    rope_theta: float = 10000.0  # RoPE's base: channel pair i turns by pos * rope_theta^(-2i/head_size)
    norm: str = "layernorm"  # 'layernorm' (GPT-2) or 'rmsnorm' (no mean, no bias: Llama)
    norm_eps: float = 1e-5
    mlp: str = "gelu"  # 'gelu' (GPT-2), 'swiglu' (silu(gate) * up, as Llama) or 'relu2' (relu(x)^2)
    mlp_hidden: int | None = None  # None: 4 * n_embd; for swiglu 8/3 * n_embd up to a multiple of 64
    qk_norm: bool = False  # RMSNorm over each head's queries and keys before the rotation, as Qwen3
    n_kv_head: int | None = None  # grouped-query attention: heads of keys and values; None: n_head
    tie_embeddings: bool = True  # lm_head shares the token embedding's weights, as in GPT-2
    logit_softcap: float | None = None  # logits = c * tanh(logits / c), which keeps them in (-c, c)

    def __post_init__(self):
        problems = []
        if self.n_embd % self.n_head != 0:
            problems.append(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.tokenizer_vocab_size is not None and not 0 < self.tokenizer_vocab_size <= self.vocab_size:
            problems.append(f"tokenizer_vocab_size={self.tokenizer_vocab_size} must be in "
                            f"1..{self.vocab_size}")
        if self.n_head % self.kv_heads != 0:
            problems.append(f"n_kv_head={self.n_kv_head} must divide n_head={self.n_head}")
        if self.pos_embedding == "rope" and self.n_embd // self.n_head % 2:
            problems.append(f"rope needs an even head size, not {self.n_embd // self.n_head}")
        for name, allowed in (("pos_embedding", ("learned", "rope")), ("norm", ("layernorm", "rmsnorm")),
                              ("mlp", ("gelu", "swiglu", "relu2"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} must be one of {allowed}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def real_vocab_size(self) -> int:
        """The ids a tokenizer can produce; the rows after them, up to vocab_size, are padding."""
        return self.tokenizer_vocab_size or self.vocab_size

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def mlp_width(self) -> int:
        """The MLP's hidden width. SwiGLU has two input matrices where GELU has one: Llama keeps its
        parameters at GELU's 4x by 2/3 of the width (rounded up here to a multiple of 64, which matmuls
        like)."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        return (8 * self.n_embd // 3 + 63) // 64 * 64 if self.mlp == "swiglu" else 4 * self.n_embd


def padded_vocab(vocab_size: int) -> int:
    """Round up to a multiple of 64, which matmuls like; the extra ids are never targets and never sampled."""
    return (vocab_size + 63) // 64 * 64


class KVCache:
    """Keys and values of every token seen so far, so generation feeds only the newest token through the
    model. The buffers have a fixed length, max_len. While pos is an int, attention reads the pos tokens
    cached so far. Once pos is a 0-d tensor (generate does that after the prompt), every step reads the whole
    buffer with the slots past pos masked: one shape at every position, so one compiled decode graph serves
    them all (a Python int would be baked into the graph and recompile it each step)."""

    def __init__(self, n_layer: int, max_len: int):
        # each (2, B, nh, max_len, hs), made on first use
        self.layers: list[torch.Tensor | None] = [None] * n_layer
        self.max_len = max_len
        self.pos: int | torch.Tensor = 0  # number of tokens cached; GPT.forward advances it

    def update(self, layer: int, k: torch.Tensor,
               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Store the new tokens' k, v (B, nh, T, hs); return the keys and values to attend to and the mask
        that says which of them query i may see (None: the plain causal mask, or all of them for T = 1)."""
        # allocated here so it takes k's dtype: attention's, under autocast too. Zeros, not garbage: masked
        # slots still meet their zero weights in attention, and 0 x NaN would be NaN
        if self.layers[layer] is None:
            B, nh, _, hs = k.shape
            self.layers[layer] = k.new_zeros(2, B, nh, self.max_len, hs)
        buf, pos, T = self.layers[layer], self.pos, k.size(2)
        if isinstance(pos, int):
            buf[0, :, :, pos:pos + T] = k
            buf[1, :, :, pos:pos + T] = v
            mask = None  # the causal mask, or none for one token after the cache: it sees every key
            if pos > 0 and T > 1:  # a chunk after cached tokens: query i sees keys 0..pos+i
                mask = torch.ones(T, pos + T, dtype=torch.bool, device=k.device).tril(pos)
            return buf[0, :, :, :pos + T], buf[1, :, :, :pos + T], mask  # (B, nh, pos+T, hs)
        slots = pos + torch.arange(T, device=k.device)  # (T,)
        buf.index_copy_(3, slots, torch.stack((k, v)))
        mask = torch.arange(self.max_len, device=k.device) <= slots[:, None]  # (T, max_len)
        return buf[0], buf[1], mask  # (B, nh, max_len, hs)


def make_norm(config: GPTConfig, dim: int) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.bias)


class Rotary(nn.Module):
    """RoPE (Su et al., 2021) in HF's half-split form: channel i of each query and key head is paired with
    channel i + hs/2, and the pair is turned by the angle pos * theta^(-2i/hs). Attention scores then depend
    on how far apart two tokens are, not on where they are. No parameters, and no buffers that a dtype cast
    could round: the angles are computed in fp32 each call."""

    def __init__(self, head_size: int, theta: float):
        super().__init__()
        self.head_size, self.theta = head_size, theta

    def forward(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pos (T,) -> cos, sin (T, hs/2) of each position's angles."""
        hs = self.head_size
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, hs, 2, dtype=torch.float, device=pos.device) / hs))
        angles = pos.float()[:, None] * inv_freq[None, :]
        return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """x (B, nh, T, hs) with each channel pair (i, i + hs/2) turned by its angle; unchanged without rope."""
    if rope is None:
        return x
    cos, sin = (t.to(x.dtype) for t in rope)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def attention_weights(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out, (output, weights (B, nh, Tq, Tk)), for when the weights are wanted: eval.py's
    attention maps. mask None is the causal mask aligned to the last keys, as scaled_dot_product_attention."""
    rep = q.size(1) // k.size(1)  # grouped-query attention: each key/value head serves rep query heads
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    if mask is None:
        Tq, Tk = q.size(2), k.size(2)
        mask = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(Tk - Tq)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, nh, Tq, Tk)
    # the softmax in fp32 at least, as SDPA's kernels do
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1, torch.promote_types(q.dtype, torch.float))
    weights = weights.to(q.dtype)
    return weights @ v, weights


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.kv_heads
        self.head_size = config.n_embd // config.n_head
        # q for all heads, then k and v for the key/value heads (all heads, unless grouped-query attention)
        self.c_attn = nn.Linear(config.n_embd, (self.n_head + 2 * self.n_kv_head) * self.head_size,
                                bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.q_norm = nn.RMSNorm(self.head_size, eps=config.norm_eps) if config.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_size, eps=config.norm_eps) if config.qk_norm else nn.Identity()
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout, self.layer_idx = config.dropout, layer_idx
        self.keep_weights = False  # set by eval.py's attention maps: then forward also leaves self.weights

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, C = x.size()
        hs, kv = self.head_size, self.n_kv_head * self.head_size
        q, k, v = self.c_attn(x).split([C, kv, kv], dim=2)
        # Under CPU autocast attention runs in fp32: PyTorch's CPU flash attention is 2x (forward) to 3x
        # (backward) slower in bf16 than in fp32 (docs/performance.md), and it is a small share of the FLOPs.
        fp32_attn = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        dtype = torch.float32 if fp32_attn else q.dtype
        # (B, nh, T, hs) for q; k and v have n_kv_head heads
        q, k, v = (t.view(B, T, -1, hs).transpose(1, 2).to(dtype) for t in (q, k, v))
        q, k = rotate(self.q_norm(q), rope), rotate(self.k_norm(k), rope)
        mask = None
        if cache is not None:
            k, v, mask = cache.update(self.layer_idx, k, v)
        with torch.autocast("cpu", enabled=False) if fp32_attn else contextlib.nullcontext():
            if self.keep_weights:
                y, self.weights = attention_weights(q, k, v, mask)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and T > 1,
                                                   dropout_p=self.dropout if self.training else 0.0,
                                                   enable_gqa=self.n_kv_head != self.n_head)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU ("gelu_new"): 0.5x(1 + tanh(u)) with u = sqrt(2/pi)(x + 0.044715x^3), which is x *
    sigmoid(2u). Compiled code gets the sigmoid form: inductor's CPU tanh made the MLP's GELU 3x slower
    (docs/performance.md)."""
    if torch.compiler.is_compiling():
        return x * torch.sigmoid(math.sqrt(8 / math.pi) * (x + 0.044715 * x * x * x))
    return F.gelu(x, approximate="tanh")


def relu2(x: torch.Tensor) -> torch.Tensor:
    """ReLU squared (So et al., 2021, "Primer"), as nanochat and the modded-nanogpt speedrun use."""
    return F.relu(x).square()


def swiglu(x: torch.Tensor) -> torch.Tensor:
    """SwiGLU (Shazeer, 2020), as Llama: c_fc's output holds the gate and the up projection side by side."""
    gate, up = x.chunk(2, dim=-1)
    return F.silu(gate) * up


ACTIVATIONS = {"gelu": gelu, "relu2": relu2, "swiglu": swiglu}


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        width = config.mlp_width
        self.c_fc = nn.Linear(config.n_embd, 2 * width if config.mlp == "swiglu" else width, bias=config.bias)
        self.act = ACTIVATIONS[config.mlp]
        self.c_proj = nn.Linear(width, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = make_norm(config, config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, rope)
        return x + self.mlp(self.ln_2(x))


# HF's GPT-2 stores these as Conv1D, i.e. (in, out): transpose them against nn.Linear's (out, in)
HF_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
PRETRAINED = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # positions: a learned vector added to each token's (GPT-2), or rotations of queries and keys (RoPE)
        learned = config.pos_embedding == "learned"
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            **({"wpe": nn.Embedding(config.block_size, config.n_embd)} if learned else {}),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=make_norm(config, config.n_embd),
        ))
        self.rotary = None if learned else Rotary(config.n_embd // config.n_head, config.rope_theta)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.transformer.wte.weight = self.lm_head.weight  # weight tying, as GPT-2 does
        # GPT-2 init: N(0, 0.02) everywhere, zero biases, and the projections that write into the residual
        # stream scaled by 1/sqrt(2 * n_layer) so the stream's variance does not grow with depth (two per
        # block).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=0.02)
            # norm gains keep their default of 1

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameter count. non_embedding leaves out the lookup tables: the position embeddings, and the token
        embeddings where they are not also the output layer's weights (untied)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        if non_embedding and not self.config.tie_embeddings:
            n -= self.transformer.wte.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, all_logits: bool = False,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits, loss).
        With targets (B, T): logits for every position and the mean cross-entropy (targets of -1 are ignored).
        Without: logits (B, 1, V) of the last position only, which is all sampling needs, or (B, T, V) with
        all_logits=True, e.g. for per-token log-probs. With a cache, idx holds only the tokens after those
        cached."""
        B, T = idx.size()
        start = cache.pos if cache is not None else 0
        limit = min(cache.max_len, self.config.block_size) if cache is not None else self.config.block_size
        if isinstance(start, int) and start + T > limit:  # a tensor start is a decode step's: generate's care
            raise ValueError(f"sequence of {start + T} tokens is longer than "
                             f"{'block_size' if limit == self.config.block_size else 'the cache'}={limit}: "
                             f"crop it to the last {limit} tokens")
        pos = start + torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx)  # (B, T, C)
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe(pos)
        x = self.transformer.drop(x)
        rope = self.rotary(pos) if self.rotary is not None else None  # cos, sin (T, hs/2)
        for block in self.transformer.h:
            x = block(x, cache, rope)
        x = self.transformer.ln_f(x)
        if cache is not None:
            cache.pos += T
        if targets is not None:
            logits = self.head(x)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.reshape(-1), ignore_index=-1)
            return logits, loss
        return self.head(x if all_logits else x[:, [-1], :]), None

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of the final hidden states x (B, T, C) -> (B, T, V), softcapped where asked."""
        logits = self.lm_head(x)
        c = self.config.logit_softcap
        return logits if c is None else c * torch.tanh(logits / c)

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context, e.g. to finetune GPT-2 (1024) with a shorter block."""
        if block_size > self.config.block_size:
            raise ValueError(f"cannot grow block_size from {self.config.block_size} to {block_size}")
        self.config.block_size = block_size
        if "wpe" in self.transformer:  # RoPE has no table to crop
            self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])

    @classmethod
    def from_pretrained(cls, name_or_dir: str, override_args: dict | None = None) -> "GPT":
        """OpenAI's GPT-2 (gpt2, gpt2-medium, gpt2-large, gpt2-xl) through HF transformers, or a local HF
        directory of a GPT-2, Llama or Qwen3 model (eval.py's exports among them) that this model computes
        exactly (config_from_hf). Only dropout may be overridden."""
        override_args = override_args or {}
        if set(override_args) - {"dropout"}:
            raise ValueError(f"from_pretrained can only override dropout, not {sorted(override_args)}")
        if name_or_dir not in PRETRAINED and not os.path.isdir(name_or_dir):
            raise ValueError(f"unknown model '{name_or_dir}': use one of {', '.join(PRETRAINED)} "
                             f"or a directory written by save_pretrained")
        if os.path.isdir(name_or_dir) and not os.path.isfile(os.path.join(name_or_dir, "config.json")):
            raise ValueError(f"{name_or_dir} has no config.json: it is not a HF model directory")
        # lazily: only loading weights needs transformers
        from transformers import AutoConfig, AutoModelForCausalLM
        try:
            hf_config = AutoConfig.from_pretrained(name_or_dir)
            config = config_from_hf(hf_config, name_or_dir)
            hf = AutoModelForCausalLM.from_pretrained(name_or_dir)
        except OSError as e:  # no network and not in the HF cache, usually
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise RuntimeError(f"could not load '{name_or_dir}' ({reason}). Download it once with network "
                               f"access (it is cached under ~/.cache/huggingface) or pass a local "
                               f"directory") from None
        config.dropout = override_args.get("dropout", 0.0)
        model = cls(config)
        sd, sd_hf, names = model.state_dict(), hf.state_dict(), hf_names(config, hf_config.model_type)
        with torch.no_grad():
            for k, p in sd.items():  # the shapes agree: our config is HF's (config_from_hf)
                w = torch.cat([sd_hf[n] for n in names.get(k, [k])])
                p.copy_(w.t() if hf_config.model_type == "gpt2" and k.endswith(HF_TRANSPOSED) else w)
        return model

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas: tuple[float, float],
                             optimizer: str = "adamw") -> torch.optim.Optimizer:
        """AdamW with weight decay on matrices and embeddings (>= 2-D) only, never on biases or norm gains.
        optimizer='muon': torch.optim.Muon for the 2-D matrices inside the blocks (c_attn and c_fc whole, as
        one matrix each), AdamW for the rest (embeddings and the head, gains, biases), both stepped together.
        Muon's learning rate is scaled to match AdamW's update size (adjust_lr_fn='match_rms_adamw'), so one
        learning_rate and schedule serve both."""
        params = {n: p for n, p in self.named_parameters() if p.requires_grad}
        if optimizer not in ("adamw", "muon"):
            raise ValueError(f"optimizer '{optimizer}' is not 'adamw' or 'muon'")
        hidden = {n for n, p in params.items()
                  if optimizer == "muon" and p.dim() == 2 and n.startswith("transformer.h.")}
        groups = [{"params": [p for n, p in params.items() if p.dim() >= 2 and n not in hidden],
                   "weight_decay": weight_decay},
                  {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}]
        try:  # the fused kernel is one launch per step instead of one per tensor; CUDA, CPU and MPS have it
            adamw = torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            adamw = torch.optim.AdamW(groups, lr=learning_rate, betas=betas)
        if not hidden:
            return adamw
        muon = torch.optim.Muon([params[n] for n in sorted(hidden)], lr=learning_rate,
                                weight_decay=weight_decay,
                                adjust_lr_fn="match_rms_adamw")
        return Optimizers(muon=muon, adamw=adamw)

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs (forward + backward) per token: 6 per matmul weight (2 forward, 4 backward) plus the
        attention scores and weighted sum, 2 * 2 * seq_len * n_embd per layer forward, counted without causal
        savings as the PaLM paper (appendix B) does."""
        c, hs = self.config, self.config.n_embd // self.config.n_head
        attn = c.n_embd * (c.n_head + 2 * c.kv_heads) * hs + c.n_embd ** 2  # qkv and the projection
        mlp = (3 if c.mlp == "swiglu" else 2) * c.n_embd * c.mlp_width  # GPT-2: 8 d^2
        n_matmul = c.n_layer * (attn + mlp) + c.vocab_size * c.n_embd  # and the lm_head
        return 6 * n_matmul + 12 * c.n_layer * c.n_embd * seq_len

    def estimate_mfu(self, tokens_per_sec: float, seq_len: int,
                     peak_flops: float | None) -> tuple[float, float | None]:
        """(achieved FLOP/s, model FLOPs utilization as a fraction of peak_flops or None without a peak)."""
        achieved = self.flops_per_token(seq_len) * tokens_per_sec
        return achieved, (achieved / peak_flops if peak_flops else None)

    def decode(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One generation step: the logits (B, 1, V) of the tokens idx (B, 1) that follow those cached."""
        return self(idx, cache=cache)[0]

    def compile_decoding(self, **compile_args) -> None:
        """Make generate's one-token steps run as one compiled graph. The cache's fixed shapes and tensor
        position give every step the same graph, so it compiles once per batch size and cache length (prompt
        + new tokens, rounded up to 64). The prompt runs eagerly. compile_args go to torch.compile, e.g.
        mode='reduce-overhead' for CUDA graphs. It pays only over enough tokens: docs/performance.md. Where
        compiling fails (no C++ compiler, say), it warns once and decodes eagerly."""
        compiled = torch.compile(GPT.decode.__get__(self), fullgraph=True, dynamic=False, **compile_args)

        def decode(idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
            try:
                return compiled(idx, cache)
            except Exception as e:  # compiling fails before the step runs: the cache is as it was
                warnings.warn(f"compiling the decode step failed, decoding eagerly ({type(e).__name__}: {e})")
                del self.decode  # back to the method
                return self.decode(idx, cache)
        self.decode = decode

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None,
                 top_p: float | None = None, stop_token: int | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue each row of idx (B, T) by max_new_tokens tokens and return (B, T + new).
        temperature=0 is greedy; top_k and top_p (nucleus) filter before sampling. Once a row produces
        stop_token it keeps producing it, and generation ends when every row has. With use_cache the prompt is
        run once and then one token per step; past block_size, where every position shifts by one each step,
        the last block_size tokens are recomputed instead (exactly what use_cache=False does throughout). Call
        model.eval() first: dropout stays as the model's mode has it."""
        steps = self.generate_iter(idx, max_new_tokens, temperature, top_k, top_p, stop_token, use_cache,
                                   generator)
        return torch.cat([idx, *steps], dim=1)

    @torch.no_grad()
    def generate_iter(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, stop_token: int | None = None,
                      use_cache: bool = True,
                      generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """generate() one step at a time: yields each new (B, 1) column as soon as it exists, for
        streaming."""
        bs, cache = self.config.block_size, None
        # as long as this call needs, up to block_size; rounded up, so that compiled decoding sees few lengths
        cache_len = min(bs, (idx.size(1) + max_new_tokens + 63) // 64 * 64)
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        nxt = idx[:, -1:]  # the token a decode step feeds: from the second step on, the last one sampled
        for _ in range(max_new_tokens):
            if not use_cache or idx.size(1) > bs:
                logits, _ = self(idx[:, -bs:])
            elif cache is None:
                cache = KVCache(self.config.n_layer, cache_len)
                logits, _ = self(idx, cache=cache)
                cache.pos = torch.tensor(cache.pos, device=idx.device)  # from here on: one shape per step
            else:
                logits = self.decode(nxt, cache)  # the last step's token (B, 1), always of one stride
            # padding rows are never sampled; cut off, so that a padded model samples as its unpadded export
            logits = logits[:, -1, :self.config.real_vocab_size].float()
            nxt = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
            if stop_token is not None:
                nxt = nxt.masked_fill(done[:, None], stop_token)
                done |= nxt[:, 0] == stop_token
            idx = torch.cat((idx, nxt), dim=1)
            yield nxt
            if stop_token is not None and done.all():
                return


class Optimizers:
    """Several optimizers stepped as one: what the training loop, GradScaler and checkpoints need of an
    optimizer."""

    def __init__(self, **optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:  # looked up each time: load_state_dict replaces the group dicts
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick one token per row of logits (B, V) -> (B, 1): the argmax if temperature is 0, else a sample of
    softmax(filter_logits(...))."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(logits, temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1, generator=generator)


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None,
                  top_p: float | None) -> torch.Tensor:
    """logits (B, V) divided by temperature (> 0), then -inf outside the top_k most likely tokens and outside
    the nucleus: the most likely tokens whose probabilities, after top_k, first reach top_p (always at least
    one)."""
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= top_p  # the tokens before this one already hold top_p
        drop[:, 0] = False
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, -float("inf")))
    return logits


def config_from_hf(cfg, name: str) -> GPTConfig:
    """Our GPTConfig for a HF config of model_type gpt2, llama or qwen3; a ValueError naming every setting
    this model would compute differently."""
    problems = []

    def want(setting: str, value, *allowed) -> None:
        if value not in allowed:
            problems.append(f"{setting} is {value!r}, not {' or '.join(map(repr, allowed))}")
    if cfg.model_type == "gpt2":
        want("activation_function", cfg.activation_function, "gelu_new", "gelu_pytorch_tanh")
        want("n_inner", cfg.n_inner, None, 4 * cfg.n_embd)
        for flag, value in (("scale_attn_by_inverse_layer_idx", False), ("reorder_and_upcast_attn", False),
                            ("scale_attn_weights", True), ("add_cross_attention", False)):
            want(flag, getattr(cfg, flag, value), value)
        config = GPTConfig(block_size=cfg.n_positions, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                           n_head=cfg.n_head, n_embd=cfg.n_embd, bias=True, norm_eps=cfg.layer_norm_epsilon,
                           tie_embeddings=cfg.tie_word_embeddings)
    elif cfg.model_type in ("llama", "qwen3"):
        rope = getattr(cfg, "rope_parameters", None) or {"rope_theta": cfg.rope_theta,  # transformers < 5
                                                         **(getattr(cfg, "rope_scaling", None) or {})}
        want("hidden_act", cfg.hidden_act, "silu")
        want("head_dim", getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
             cfg.hidden_size // cfg.num_attention_heads)
        want("rope_type", rope.get("rope_type", rope.get("type", "default")), "default")
        want("mlp_bias", getattr(cfg, "mlp_bias", False), cfg.model_type == "llama" and cfg.attention_bias)
        want("pretraining_tp", getattr(cfg, "pretraining_tp", 1), 1)
        want("use_sliding_window", getattr(cfg, "use_sliding_window", False), False)
        config = GPTConfig(block_size=cfg.max_position_embeddings, vocab_size=cfg.vocab_size,
                           n_layer=cfg.num_hidden_layers, n_head=cfg.num_attention_heads,
                           n_embd=cfg.hidden_size, bias=cfg.attention_bias, pos_embedding="rope",
                           rope_theta=float(rope["rope_theta"]), norm="rmsnorm", norm_eps=cfg.rms_norm_eps,
                           mlp="swiglu", mlp_hidden=cfg.intermediate_size, qk_norm=cfg.model_type == "qwen3",
                           n_kv_head=cfg.num_key_value_heads, tie_embeddings=cfg.tie_word_embeddings)
    else:
        problems.append(f"model_type is {cfg.model_type!r}, not 'gpt2', 'llama' or 'qwen3'")
    if problems:
        kind = {"gpt2": "GPT-2", "llama": "Llama", "qwen3": "Qwen3"}.get(cfg.model_type, cfg.model_type)
        raise ValueError(f"{name}: this {kind} variant cannot be reproduced exactly: "
                         f"{'; '.join(problems)}")
    return config


def hf_names(config: GPTConfig, model_type: str) -> dict[str, list[str]]:
    """Our parameter name -> the HF parameters it is made of, stacked along dim 0, for a Llama or Qwen3 model
    (q, k, v in c_attn; gate, up in c_fc). GPT-2's names are ours: empty (its four Conv1D weights are
    transposed, HF_TRANSPOSED)."""
    if model_type == "gpt2":
        return {}
    names = {"transformer.wte.weight": ["model.embed_tokens.weight"],
             "transformer.ln_f.weight": ["model.norm.weight"], "lm_head.weight": ["lm_head.weight"]}
    pieces = {"ln_1": ["input_layernorm"], "attn.c_attn": [f"self_attn.{x}_proj" for x in "qkv"],
              "attn.c_proj": ["self_attn.o_proj"], "attn.q_norm": ["self_attn.q_norm"],
              "attn.k_norm": ["self_attn.k_norm"], "ln_2": ["post_attention_layernorm"],
              "mlp.c_fc": ["mlp.gate_proj", "mlp.up_proj"], "mlp.c_proj": ["mlp.down_proj"]}
    for i in range(config.n_layer):
        for ours, theirs in pieces.items():
            for kind in ("weight", "bias"):
                names[f"transformer.h.{i}.{ours}.{kind}"] = [f"model.layers.{i}.{t}.{kind}" for t in theirs]
    return names
