"""The architecture keys (GPTConfig's pos_embedding, norm, mlp, qk_norm, n_kv_head, tie_embeddings,
logit_softcap) and the presets config/arch_llama.py and config/arch_modern.py, against independent
references: HF's LlamaForCausalLM and Qwen3ForCausalLM (hf_parity), a plain formula of each piece, the model's
own uncached forward for the KV cache, eager for compiled, and torch's FlopCounterMode for FLOPs."""
import math
import tempfile

import pytest
import torch
from torch.nn import functional as F

import core
import model as model_py
from conftest import preset, small_model
from model import GPT, GPTConfig, KVCache

# every key alone on top of GPT-2, by name
ALONE = {"rope": dict(pos_embedding="rope", rope_theta=500.0), "rmsnorm": dict(norm="rmsnorm", norm_eps=1e-6),
         "swiglu": dict(mlp="swiglu"), "relu2": dict(mlp="relu2"), "mlp_hidden": dict(mlp_hidden=40),
         "qk_norm": dict(qk_norm=True), "gqa": dict(n_kv_head=1), "untied": dict(tie_embeddings=False),
         "softcap": dict(logit_softcap=3.0)}
VARIANTS = {**ALONE, "llama": preset("llama"), "modern": preset("modern"),
            "llama_gqa": {**preset("llama"), "n_kv_head": 2}}


def variant(name: str, **kw) -> GPT:
    """A small random model of the variant (4 heads, so that grouped-query attention has groups), weights
    drawn wider than GPT-2's init so that the pieces matter to the logits."""
    model = small_model(n_head=4, **{**VARIANTS[name], **kw}).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.05)
    return model


def test_presets_are_what_they_say():
    assert preset("llama") == dict(pos_embedding="rope", rope_theta=10000.0, norm="rmsnorm", norm_eps=1e-5,
                                   mlp="swiglu", bias=False, tie_embeddings=False)
    assert preset("modern") == dict(pos_embedding="rope", rope_theta=10000.0, norm="rmsnorm", norm_eps=1e-5,
                                    mlp="relu2", qk_norm=True, bias=False, tie_embeddings=False,
                                    logit_softcap=15.0)


def test_the_default_is_gpt2_bit_for_bit():
    """Seeded, the default config draws the same weights under the same names as GPT-2's layout (wte, wpe, one
    c_attn of 3 x n_embd rows, c_fc 4x), and an old checkpoint's model_args (no new keys) is GPT-2."""
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    assert names[:3] == ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight"]
    assert model.transformer.h[0].attn.c_attn.weight.shape == (96, 32)
    assert model.transformer.h[0].mlp.c_fc.weight.shape == (128, 32)
    assert model.lm_head.weight is model.transformer.wte.weight and model.rotary is None
    old_args = dict(block_size=32, vocab_size=80, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=True,
                    tokenizer_vocab_size=None)
    assert GPTConfig(**old_args) == model.config
    torch.manual_seed(0)
    again = GPT(GPTConfig(**old_args)).eval()
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def rotate_complex(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as complex multiplication: channel pair (i, i + hs/2) is the number x_i + j x_{i+hs/2}, times
    e^(j pos theta^(-2i/hs))."""
    hs = x.size(-1)
    z = torch.complex(*x.double().chunk(2, dim=-1))
    freq = theta ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    z = z * torch.polar(torch.ones(len(pos), hs // 2, dtype=torch.float64), pos[:, None].double() * freq)
    return torch.cat((z.real, z.imag), dim=-1)


def rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def reference_attention(attn, x: torch.Tensor, config: GPTConfig) -> torch.Tensor:
    """Attention from the config's formulas: separate q, k, v heads, QK-norm as an RMS formula, RoPE as a
    complex rotation, each query head reading key/value head h // (n_head / n_kv_head), a masked softmax."""
    B, T, C = x.shape
    nh, nkv, hs = config.n_head, config.kv_heads, C // config.n_head
    qkv = F.linear(x, attn.c_attn.weight, attn.c_attn.bias)
    q, k, v = qkv.split([C, nkv * hs, nkv * hs], dim=-1)
    q, k, v = q.view(B, T, nh, hs), k.view(B, T, nkv, hs), v.view(B, T, nkv, hs)
    if config.qk_norm:
        q, k = rms(q, attn.q_norm.weight, config.norm_eps), rms(k, attn.k_norm.weight, config.norm_eps)
    if config.pos_embedding == "rope":
        pos = torch.arange(T)
        q, k = (rotate_complex(t.transpose(1, 2), pos, config.rope_theta).transpose(1, 2) for t in (q, k))
    out = torch.empty(B, T, nh, hs, dtype=x.dtype)
    for h in range(nh):
        g = h // (nh // nkv)
        scores = torch.einsum("bid,bjd->bij", q[:, :, h], k[:, :, g]) / math.sqrt(hs)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        out[:, :, h] = scores.softmax(-1) @ v[:, :, g]
    return F.linear(out.reshape(B, T, C), attn.c_proj.weight, attn.c_proj.bias)


def reference_mlp(mlp, x: torch.Tensor, config: GPTConfig) -> torch.Tensor:
    h = F.linear(x, mlp.c_fc.weight, mlp.c_fc.bias)
    if config.mlp == "swiglu":
        gate, up = h.split(config.mlp_width, dim=-1)
        h = gate * torch.sigmoid(gate) * up
    elif config.mlp == "relu2":
        h = torch.clamp(h, min=0) ** 2
    else:  # GPT-2's GELU, whose reference is HF's GPT-2 (test_model.py, hf_parity): a fork's edit of it
        h = model_py.ACTIVATIONS["gelu"](h)  # fails HF parity only
    return F.linear(h, mlp.c_proj.weight, mlp.c_proj.bias)


def reference_forward(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """The whole model from the formulas above: embeddings, pre-norm blocks, final norm, head, softcap."""
    c, t = model.config, model.transformer

    def norm(module, x):
        if c.norm == "rmsnorm":
            return rms(x, module.weight, c.norm_eps)
        mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + c.norm_eps) * module.weight + (module.bias if c.bias else 0)
    x = t.wte.weight[idx]
    if c.pos_embedding == "learned":
        x = x + t.wpe.weight[: idx.size(1)]
    for block in t.h:
        x = x + reference_attention(block.attn, norm(block.ln_1, x), c)
        x = x + reference_mlp(block.mlp, norm(block.ln_2, x), c)
    logits = norm(t.ln_f, x) @ model.lm_head.weight.T
    return logits if c.logit_softcap is None else c.logit_softcap * torch.tanh(logits / c.logit_softcap)


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_equals_the_formulas(name):
    model = variant(name)
    idx = torch.randint(0, 80, (2, 19))
    logits, loss = model(idx, idx)
    ref = reference_forward(model, idx)
    # fp64 throughout, but for RoPE's angles, which are fp32 as in HF's Llama (1e-9 here)
    torch.testing.assert_close(logits, ref, atol=1e-7, rtol=0)
    torch.testing.assert_close(loss, F.cross_entropy(ref.flatten(0, 1), idx.flatten()), atol=1e-7, rtol=0)


def test_each_key_builds_what_it_says():
    """The shapes and parameters each key makes (the formulas above read them)."""
    c = variant("gqa").transformer.h[0].attn.c_attn
    assert c.weight.shape == ((4 + 2 * 1) * 8, 32)  # 4 query heads, 1 key and 1 value head, of 8 channels
    assert variant("swiglu").config.mlp_width == 128 and variant("swiglu", n_embd=96).config.mlp_width == 256
    assert variant("swiglu").transformer.h[0].mlp.c_fc.weight.shape == (256, 32)
    assert variant("mlp_hidden").transformer.h[0].mlp.c_proj.weight.shape == (32, 40)
    untied = variant("untied")
    assert untied.lm_head.weight.data_ptr() != untied.transformer.wte.weight.data_ptr()
    assert untied.get_num_params() == untied.get_num_params(False) - 80 * 32 - 32 * 32  # less wte and wpe
    rope = variant("rope")
    assert "wpe" not in rope.transformer and rope.get_num_params() == rope.get_num_params(False)
    assert isinstance(variant("rmsnorm").transformer.ln_f, torch.nn.RMSNorm)
    assert isinstance(variant("qk_norm").transformer.h[0].attn.q_norm, torch.nn.RMSNorm)
    softcap = variant("softcap")
    assert softcap(torch.randint(0, 80, (1, 30)), all_logits=True)[0].abs().max() < 3.0


@pytest.mark.parametrize("bad, message", [
    (dict(n_kv_head=3), "n_kv_head=3 must divide n_head=4"),
    (dict(pos_embedding="rope", n_embd=36, n_head=4), "rope needs an even head size, not 9"),
    (dict(mlp="geglu"), "mlp='geglu' must be one of"), (dict(norm="batchnorm"), "norm='batchnorm'"),
    (dict(pos_embedding="alibi"), "pos_embedding='alibi'")])
def test_config_refuses_what_it_cannot_build(bad, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{"n_head": 4, "n_embd": 32, **bad})


@pytest.mark.parametrize("name", VARIANTS)
def test_cached_generation_equals_uncached(name):
    """The KV cache (RoPE's positions from the cache's, grouped key/value heads in it), through block_size."""
    model = variant(name).eval()
    idx = torch.randint(0, 80, (2, 7))
    greedy = model.generate(idx, 40, temperature=0)
    assert torch.equal(greedy, model.generate(idx, 40, temperature=0, use_cache=False))
    full = model(greedy[:, :32], all_logits=True)[0]
    cache = KVCache(model.config.n_layer, 32)
    steps = [model(greedy[:, :9], all_logits=True, cache=cache)[0]]
    cache.pos = torch.tensor(cache.pos)  # the fixed-shape decode path
    steps += [model(greedy[:, t:t + 1], cache=cache)[0] for t in range(9, 32)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-10, rtol=0)


@pytest.mark.slow  # inductor compiles: 10-40 s each on 2 CPU cores
@pytest.mark.parametrize("name", ["llama_gqa", "modern"])
def test_compiled_decoding_equals_uncached(name):
    model = variant(name).eval()
    idx = torch.randint(0, 80, (2, 6))
    uncached = model.generate(idx, 30, temperature=0, use_cache=False)
    model.compile_decoding()
    assert torch.equal(model.generate(idx, 30, temperature=0), uncached)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama_gqa", "modern"])
def test_compiled_training_equals_eager(name):
    """torch.compile (inductor) of a training step: the loss and every gradient as eager's, in fp32."""
    eager = variant(name).float().train()
    compiled = variant(name).float().train()
    idx = torch.randint(0, 80, (4, 32))
    losses = []
    for model in (eager, torch.compile(compiled)):
        loss = model(idx, idx.roll(-1, 1))[1]
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    for (name_, a), b in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name_)
    torch._dynamo.reset()


@pytest.mark.parametrize("name", VARIANTS)
def test_flops_per_token_is_what_torch_counts(name, monkeypatch):
    """FlopCounterMode's count of a forward and backward, attention as plain matmuls over the full square."""
    from torch.utils.flop_counter import FlopCounterMode

    def plain_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, enable_gqa=False):
        k, v = (t.repeat_interleave(q.size(1) // k.size(1), dim=1) for t in (k, v))
        return (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1) @ v
    monkeypatch.setattr(F, "scaled_dot_product_attention", plain_sdpa)
    model = variant(name).float()
    idx = torch.randint(0, 80, (3, 24))
    with FlopCounterMode(display=False) as counter:
        model(idx, idx)[1].backward()
    assert counter.get_total_flops() == model.flops_per_token(24) * 3 * 24


@pytest.mark.parametrize("name", VARIANTS)
def test_attention_maps_are_the_layers_own(name):
    """keep_weights: the written-out softmax beside SDPA; its weights times the values give SDPA's output."""
    model = variant(name).eval()
    idx = torch.randint(0, 80, (1, 12))
    plain = model(idx, all_logits=True)[0]
    for block in model.transformer.h:
        block.attn.keep_weights = True
    torch.testing.assert_close(model(idx, all_logits=True)[0], plain, atol=1e-10, rtol=0)
    weights = model.transformer.h[0].attn.weights
    assert weights.shape == (1, 4, 12, 12) and torch.equal(weights.triu(1), torch.zeros_like(weights))
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 4, 12, dtype=weights.dtype))


def test_muon_takes_the_blocks_matrices_whole():
    """With SwiGLU and grouped-query attention Muon takes each block's c_attn (q, k, v of 8 heads' rows) and
    c_fc (gate and up) as one matrix each, and the projections; AdamW the embeddings, the head, the gains."""
    model = variant("llama_gqa", n_layer=1)
    opt = model.float().configure_optimizers(0.1, 1e-3, (0.9, 0.95), "muon")
    muon = {tuple(p.shape) for p in opt.optimizers["muon"].param_groups[0]["params"]}
    assert muon == {((4 + 2 * 2) * 8, 32), (32, 32), (2 * 128, 32), (32, 128)}
    adamw = [tuple(p.shape) for g in opt.optimizers["adamw"].param_groups for p in g["params"]]
    assert sorted(adamw) == sorted([(80, 32), (80, 32), (32,), (32,), (32,)])  # wte, lm_head, 3 norms


def make_hf(kind: str, seed: int = 0, **kw):
    """A random HF LlamaForCausalLM or Qwen3ForCausalLM, in fp32, weights wide enough that greedy decoding
    wanders."""
    import transformers
    args = dict(vocab_size=97, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, head_dim=16, max_position_embeddings=128,
                rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.15,
                bos_token_id=None, eos_token_id=None, pad_token_id=None)
    args.update(kw)
    torch.manual_seed(seed)
    config = getattr(transformers, {"llama": "LlamaConfig", "qwen3": "Qwen3Config"}[kind])(**args)
    cls = getattr(transformers, {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}[kind])
    hf = cls(config).eval()
    with torch.no_grad():  # norm gains away from 1, so that a misplaced one shows
        for name, p in hf.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return hf


@pytest.mark.hf_parity
@pytest.mark.parametrize("kind", ["llama", "qwen3"])
@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize("tied", [False, True])
def test_logits_loss_and_greedy_tokens_equal_hf(kind, kv_heads, tied, tmp_path):
    """GPT.from_pretrained of a HF Llama (or Qwen3, with QK-norm) directory: the keys of arch_llama.py, logits
    and loss within 1e-5 in fp32 and 60 greedy tokens token for token; core.hf_model exports it back."""
    hf = make_hf(kind, num_key_value_heads=kv_heads, tie_word_embeddings=tied)
    hf.save_pretrained(tmp_path)
    ours = GPT.from_pretrained(str(tmp_path)).eval()
    llama = preset("llama")
    assert {k: getattr(ours.config, k) for k in llama} == {**llama, "tie_embeddings": tied}
    assert (ours.config.qk_norm, ours.config.kv_heads) == (kind == "qwen3", kv_heads)
    idx = torch.randint(0, 97, (3, 40))
    targets = torch.randint(0, 97, (3, 40))
    with torch.no_grad():
        ref = hf(idx).logits
        logits, loss = ours(idx, targets)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, F.cross_entropy(ref.flatten(0, 1), targets.flatten()), atol=1e-5, rtol=0)
    prompt = idx[:1, :5]
    theirs = hf.generate(prompt, max_new_tokens=60, do_sample=False, min_new_tokens=60)
    mine = ours.generate(prompt, 60, temperature=0)
    assert len(set(mine[0, 5:].tolist())) > 5  # the text wanders: a comparison worth making
    assert torch.equal(mine, theirs)
    back = core.hf_model(ours)
    assert type(back) is type(hf)
    with torch.no_grad():
        torch.testing.assert_close(back(idx).logits, ref, atol=1e-5, rtol=0)


@pytest.mark.hf_parity
@pytest.mark.parametrize("name, kw, cls", [
    ("llama", dict(bias=True, rope_theta=500.0), "LlamaForCausalLM"), ("llama_gqa", {}, "LlamaForCausalLM"),
    ("llama", dict(qk_norm=True, tie_embeddings=True), "Qwen3ForCausalLM"),
    ("untied", dict(bias=False, norm_eps=1e-3), "GPT2LMHeadModel")])
def test_export_writes_the_hf_class_that_computes_the_same(name, kw, cls):
    """core.hf_model's export computes our logits (biases, rope_theta, norm_eps and tying other than HF's
    defaults among the cases), carries our dropout, and GPT.from_pretrained reads it back as the same
    architecture and logits."""
    model = variant(name, dropout=0.1, **kw).float().eval()
    hf = core.hf_model(model)
    assert type(hf).__name__ == cls
    assert getattr(hf.config, "attention_dropout", getattr(hf.config, "attn_pdrop", None)) == 0.1
    idx = torch.randint(0, 80, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(hf(idx).logits, model(idx, all_logits=True)[0], atol=1e-5, rtol=0)
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        back = GPT.from_pretrained(d).eval()
    keys = [k for k in core.ARCH_KEYS if k not in ("n_kv_head", "mlp_hidden")] + ["kv_heads", "mlp_width"]
    gpt2 = cls == "GPT2LMHeadModel"
    expect = {**{k: getattr(model.config, k) for k in keys}, "bias": model.config.bias or gpt2}
    assert {k: getattr(back.config, k) for k in keys} == expect  # GPT-2's bias=False is exported as zeros
    with torch.no_grad():
        torch.testing.assert_close(back(idx, all_logits=True)[0], model(idx, all_logits=True)[0], atol=1e-5,
                                   rtol=0)


@pytest.mark.parametrize("name, keys", [
    ("modern", "mlp='relu2', logit_softcap=15.0"), ("relu2", "mlp='relu2'"), ("softcap", "logit_softcap=3.0"),
    ("rope", "norm='layernorm', mlp='gelu'"), ("swiglu", "mlp='swiglu'"), ("gqa", "n_kv_head=1"),
    ("mlp_hidden", "mlp_hidden=40")])
def test_export_refuses_what_no_hf_class_computes(name, keys):
    with pytest.raises(core.UsageError, match=f"^cannot export {keys}: no HF class computes it the same way"):
        core.hf_model(variant(name))


def test_hf_configs_of_other_variants_are_refused():
    import transformers
    bad = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=32, hidden_act="gelu",
                                   rope_scaling={"rope_type": "linear", "factor": 2.0}, attention_bias=True)
    with pytest.raises(ValueError) as e:
        model_py.config_from_hf(bad, "x")
    assert str(e.value) == ("x: this Llama variant cannot be reproduced exactly: hidden_act is 'gelu', not "
                            "'silu'; head_dim is 32, not 16; rope_type is 'linear', not 'default'; "
                            "mlp_bias is False, not True")


def test_a_transformers_4_llama_config_gives_its_rope_theta_and_scaling():
    """config_from_hf on a Llama config as transformers < 5 has it (rope_theta and rope_scaling attributes, no
    rope_parameters, and before 4.45 no head_dim): its rope_theta in our config, and a scaled RoPE (the old
    "type" key) refused."""
    import types

    import transformers
    d = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4).to_dict()
    d.pop("rope_parameters", None), d.pop("head_dim", None)
    old = types.SimpleNamespace(**{**d, "rope_theta": 500.0, "rope_scaling": None})
    assert model_py.config_from_hf(old, "x").rope_theta == 500.0
    old.rope_scaling = {"type": "linear", "factor": 2.0}
    with pytest.raises(ValueError, match="rope_type is 'linear', not 'default'"):
        model_py.config_from_hf(old, "x")
