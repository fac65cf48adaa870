"""model.py against independent references: HF transformers' GPT-2, plain masked-softmax attention, uncached
decoding."""
import copy
import math

import pytest
import torch
from torch.nn import functional as F
from transformers import GPT2LMHeadModel

import model as model_py
from conftest import small_model
from model import GPT, GPTConfig, KVCache, sample_next


def load_pair(hf_dir: str, dtype=torch.float32):
    hf = GPT2LMHeadModel.from_pretrained(hf_dir).eval().to(dtype)
    ours = GPT.from_pretrained(hf_dir).eval().to(dtype)
    return hf, ours


@pytest.mark.parametrize("shape", [dict(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=100),
                                   dict(n_embd=96, n_layer=3, n_head=3, n_positions=40, vocab_size=257),
                                   dict(n_embd=48, n_layer=1, n_head=8, n_positions=16, vocab_size=50)])
@pytest.mark.hf_parity
@pytest.mark.parametrize("bias", [True, False])
def test_logits_and_loss_match_hf(make_hf_dir, shape, bias):
    hf, ours = load_pair(make_hf_dir(seed=1, **shape))
    if not bias:  # HF always has biases: zero them there and leave them out of ours
        with torch.no_grad():
            for name, p in hf.named_parameters():
                if name.endswith(".bias"):
                    p.zero_()
        cfg = GPTConfig(**{**ours.config.__dict__, "bias": False})
        no_bias = GPT(cfg).eval()
        missing = no_bias.load_state_dict(ours.state_dict(), strict=False)
        assert not missing.missing_keys and all(k.endswith(".bias") for k in missing.unexpected_keys)
        ours = no_bias
    torch.manual_seed(0)
    for B, T in [(1, 1), (2, 7), (3, shape["n_positions"])]:
        idx = torch.randint(0, shape["vocab_size"], (B, T))
        targets = torch.randint(0, shape["vocab_size"], (B, T))
        if B * T > 1:
            targets[-1, 0] = -1  # an ignored position
        out = hf(idx, labels=None)
        ref_loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        logits, loss = ours(idx, targets)
        torch.testing.assert_close(logits, out.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=0)
        # without targets: last position only, or all of them on request
        torch.testing.assert_close(ours(idx)[0], out.logits[:, [-1]], atol=1e-5, rtol=0)
        torch.testing.assert_close(ours(idx, all_logits=True)[0], out.logits, atol=1e-5, rtol=0)
        with torch.no_grad():  # inference takes another matmul path on CPU (model.Linear): the same numbers
            torch.testing.assert_close(ours(idx, all_logits=True)[0], out.logits, atol=1e-5, rtol=0)


@pytest.mark.hf_parity
def test_hf_loss_with_shifted_labels(make_hf_dir):
    # HF shifts labels internally; our targets are the already-shifted next tokens
    hf, ours = load_pair(make_hf_dir())
    idx = torch.randint(0, 100, (2, 20))
    ref = hf(idx, labels=idx).loss
    _, loss = ours(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=0)


@pytest.mark.hf_parity
def test_greedy_generation_matches_hf(make_hf_dir):
    # float64 on both sides, so a near-tie between two logits cannot flip a token
    hf, ours = load_pair(make_hf_dir(seed=2, n_positions=128), torch.float64)
    idx = torch.randint(0, 100, (3, 9))
    ref = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=60, do_sample=False,
                      pad_token_id=0)
    assert ref.shape == (3, 69)
    assert torch.equal(ours.generate(idx, 60, temperature=0.0), ref)



# inside, across and beyond block_size 32
@pytest.mark.parametrize("prompt_len,new", [(5, 20), (10, 60), (40, 10)])
def test_cached_generation_equals_uncached(prompt_len, new):
    model = small_model().double()
    idx = torch.randint(0, 80, (4, prompt_len))
    greedy = model.generate(idx, new, temperature=0)
    assert greedy.shape == (4, prompt_len + new)
    assert torch.equal(greedy, model.generate(idx, new, temperature=0, use_cache=False))
    for kw in [dict(temperature=1.0), dict(temperature=0.8, top_k=10), dict(temperature=1.3, top_p=0.9)]:
        a = model.generate(idx, new, generator=torch.Generator().manual_seed(7), **kw)
        b = model.generate(idx, new, use_cache=False, generator=torch.Generator().manual_seed(7), **kw)
        assert torch.equal(a, b), kw
    # and the samples really are samples: another seed gives another continuation
    c = model.generate(idx, new, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(c, model.generate(idx, new, generator=torch.Generator().manual_seed(7)))


def test_a_fixed_shape_cache_gives_the_full_forwards_logits():
    """The decode path: after the prompt the cache position is a tensor and every step attends over the whole
    buffer, later slots masked; one token at a time and a chunk alike give the plain forward's logits."""
    model = small_model().double()
    idx = torch.randint(0, 80, (2, 20))
    full = model(idx, all_logits=True)[0]
    cache = KVCache(model.config.n_layer, 24)
    chunks = [model(idx[:, :5], all_logits=True, cache=cache)[0]]
    cache.pos = torch.tensor(cache.pos)
    for t in range(5, 17):
        chunks.append(model(idx[:, t:t + 1], all_logits=True, cache=cache)[0])
    chunks.append(model(idx[:, 17:20], all_logits=True, cache=cache)[0])
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=1e-10, rtol=0)
    assert cache.pos.item() == 20 and cache.layers[0].shape == (2, 2, 2, 24, 16)  # (2, B, nh, max_len, hs)
    with pytest.raises(ValueError, match="sequence of 25 tokens is longer than the cache=24"):
        model(torch.zeros(2, 25, dtype=torch.long), cache=KVCache(model.config.n_layer, 24))


class CountingBackend:
    """A torch.compile backend that runs the captured graph as it is and counts the graphs: every compile
    and recompile of the decode step makes one."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


def test_compiled_decoding_compiles_once_per_shape():
    model = small_model(block_size=128).eval()
    backend = CountingBackend()
    model.compile_decoding(backend=backend)
    idx = torch.randint(0, 80, (2, 5))
    eager = small_model(block_size=128).eval().generate(idx, 40, temperature=0)  # same weights (seeded)
    assert torch.equal(model.generate(idx, 40, temperature=0), eager)
    assert backend.graphs == 1  # not one per position
    model.generate(idx, 40, generator=torch.Generator().manual_seed(1))  # sampling: the same step
    model.generate(idx[:, :3], 30, temperature=0)  # 33 tokens: a cache of the same length (64, rounded up)
    assert backend.graphs == 1
    model.generate(idx[:1], 10, temperature=0)  # another batch size: a second graph
    assert backend.graphs == 2


def test_compiled_decoding_equals_uncached():
    """inductor's compiled decode step, greedy and seeded sampling, for a batch, across block_size."""
    model = small_model().double().eval()
    idx = torch.randint(0, 80, (3, 6))
    uncached = [model.generate(idx, 40, temperature=0, use_cache=False),
                model.generate(idx, 40, temperature=0.9, top_k=20, use_cache=False,
                               generator=torch.Generator().manual_seed(3))]
    model.compile_decoding()
    seeded = torch.Generator().manual_seed(3)
    compiled = [model.generate(idx, 40, temperature=0),
                model.generate(idx, 40, temperature=0.9, top_k=20, generator=seeded)]
    assert torch.equal(compiled[0], uncached[0]) and torch.equal(compiled[1], uncached[1])


def test_bf16_weights_generate_within_bf16_tolerance():
    """model.to(bfloat16) runs in bf16 (half the bytes a token) and its logits, cached decode steps included,
    stay within bf16's precision of fp32's."""
    model = small_model().eval()
    idx = torch.randint(0, 80, (2, 12))
    ref = model(idx, all_logits=True)[0]
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    cache = KVCache(model.config.n_layer, 16)
    logits = [bf16(idx[:, :6], all_logits=True, cache=cache)[0]]
    cache.pos = torch.tensor(cache.pos)
    logits += [bf16(idx[:, t:t + 1], cache=cache)[0] for t in range(6, 12)]
    logits = torch.cat(logits, dim=1)
    assert logits.dtype == torch.bfloat16 and cache.layers[0].dtype == torch.bfloat16
    scale = ref.abs().max().item()
    assert (logits.float() - ref).abs().max().item() < 0.05 * scale
    assert (logits.float() - ref).abs().max().item() > 1e-4 * scale  # really computed in bf16
    out = bf16.generate(idx, 30, temperature=0)
    assert out.shape == (2, 42) and torch.equal(out, bf16.generate(idx, 30, temperature=0, use_cache=False))


def test_cache_logits_equal_full_forward():
    model = small_model().double()
    idx = torch.randint(0, 80, (2, 20))
    full = model(idx, all_logits=True)[0]
    cache = KVCache(model.config.n_layer, model.config.block_size)
    chunks = [model(idx[:, :8], all_logits=True, cache=cache)[0],  # prefill
              model(idx[:, 8:9], all_logits=True, cache=cache)[0],  # one token
              # a chunk after cached tokens (masked path)
              model(idx[:, 9:20], all_logits=True, cache=cache)[0]]
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=1e-10, rtol=0)
    assert cache.pos == 20
    # every chunk size at every position: 1 token, then 2, 1, 3, 2, 4 (masks at pos 1, 2, 3, 6, 8)
    cache, start, chunks = KVCache(model.config.n_layer, model.config.block_size), 0, []
    for size in (1, 2, 1, 3, 2, 4):
        chunks.append(model(idx[:, start:start + size], all_logits=True, cache=cache)[0])
        start += size
    torch.testing.assert_close(torch.cat(chunks, dim=1), full[:, :start], atol=1e-10, rtol=0)


def reference_attention(attn, x):
    """Plain masked-softmax causal attention with the layer's own weights."""
    B, T, C = x.shape
    nh, hs = attn.n_head, C // attn.n_head
    q, k, v = (x @ attn.c_attn.weight.T + attn.c_attn.bias).split(C, dim=2)
    q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
    att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
    y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
    return y @ attn.c_proj.weight.T + attn.c_proj.bias


def test_sdpa_attention_equals_masked_softmax():
    model = small_model()
    attn = model.transformer.h[0].attn
    x = torch.randn(3, 17, 32)
    torch.testing.assert_close(attn(x), reference_attention(attn, x), atol=1e-6, rtol=1e-5)


def test_attention_runs_in_fp32_under_cpu_autocast():
    m = small_model()
    idx = torch.randint(0, 80, (2, 20))
    cache = KVCache(m.config.n_layer, m.config.block_size)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = m(idx, all_logits=True, cache=cache)[0]
    assert cache.layers[0].dtype == torch.float32  # what attention consumed; the matmuls around it are bf16
    assert logits.dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(logits.float(), m(idx, all_logits=True)[0], atol=0.05, rtol=0.05)


def test_written_out_attention_keeps_a_bf16_models_dtype():
    """attention_weights (eval.py's maps) on bf16 q, k, v, as a bf16 model without autocast gives them: bf16
    output and weights, each within bf16's rounding of a plain fp32 masked softmax of the same inputs."""
    q, k, v = (torch.randn(2, 4, 6, 8).bfloat16() for _ in range(3))
    y, w = model_py.attention_weights(q, k, v, None)
    scores = q.float() @ k.float().transpose(-2, -1) / math.sqrt(8)
    ref_w = scores.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
    assert (y.dtype, w.dtype) == (torch.bfloat16, torch.bfloat16)
    torch.testing.assert_close(w.float(), ref_w, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(y.float(), ref_w @ v.float(), atol=3e-2, rtol=3e-2)


def test_sdpa_arguments_follow_mode_and_autocast(monkeypatch):
    """What each attention call gets: dropout only in training (config.dropout), never in eval mode; under
    CPU autocast fp32 inputs with autocast off inside; without autocast, the model's own dtype."""
    calls, sdpa = [], F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        calls.append((q.dtype, torch.is_autocast_enabled("cpu"), kwargs["dropout_p"]))
        return sdpa(q, k, v, **kwargs)
    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    m, idx = small_model(dropout=0.3), torch.randint(0, 80, (2, 10))
    m.train()
    m(idx)
    assert calls == [(torch.float32, False, 0.3)] * 2
    calls.clear()
    m.eval()
    with torch.no_grad():
        first = m(idx, all_logits=True)[0]
        assert torch.equal(m(idx, all_logits=True)[0], first)  # eval mode: no dropout anywhere
        with torch.autocast("cpu", dtype=torch.bfloat16):
            m(idx)
    assert calls == [(torch.float32, False, 0.0)] * 6


def test_bias_false_has_no_biases_and_init_is_gpt2s():
    model = GPT(GPTConfig(block_size=64, vocab_size=100, n_layer=2, n_head=2, n_embd=64, bias=False))
    assert not [n for n, _ in model.named_parameters() if n.endswith(".bias")]
    big = GPT(GPTConfig(block_size=64, vocab_size=1000, n_layer=2, n_head=2, n_embd=256))
    for w in (big.transformer.wte.weight, big.transformer.h[0].attn.c_attn.weight):
        assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    assert abs(big.transformer.h[1].mlp.c_proj.weight.mean().item()) < 1e-3


def test_greedy_equivalents_and_filters():
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    greedy = sample_next(logits, 0, None, None)
    assert torch.equal(greedy, logits.argmax(-1, keepdim=True))
    for _ in range(5):
        assert torch.equal(sample_next(logits, 1.0, 1, None), greedy)
        assert torch.equal(sample_next(logits, 1.0, None, 1e-6), greedy)
        assert torch.equal(sample_next(logits, 2.0, None, 0.0), greedy)
    # top_k=5 only ever picks among the 5 largest; top_p only within the nucleus
    top5 = logits.topk(5).indices
    g = torch.Generator().manual_seed(0)
    picks = torch.cat([sample_next(logits, 1.0, 5, None, generator=g) for _ in range(200)], dim=1)
    assert all(set(picks[r].tolist()) <= set(top5[r].tolist()) for r in range(6))
    assert len(set(picks[0].tolist())) > 1
    probs, order = logits.softmax(-1).sort(descending=True)
    nucleus = [set(order[r, : int((probs[r].cumsum(0) < 0.7).sum()) + 1].tolist()) for r in range(6)]
    picks = torch.cat([sample_next(logits, 1.0, None, 0.7, generator=g) for _ in range(200)], dim=1)
    assert all(set(picks[r].tolist()) <= nucleus[r] for r in range(6))


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.5, None, None), (1.7, None, None), (1.0, 7, None),
                                                     (0.8, None, 0.6), (1.3, 12, 0.9), (2.0, 3, 0.05)])
def test_filter_logits_equals_hf_warpers(temperature, top_k, top_p):
    """Temperature, top-k and top-p against HF transformers' own logits warpers, applied in generate's
    order."""
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)
    torch.manual_seed(1)
    logits = torch.randn(5, 64, dtype=torch.float64) * 2
    expected = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k is not None:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p is not None:
        expected = TopPLogitsWarper(top_p)(None, expected)
    got = model_py.filter_logits(logits, temperature, top_k, top_p)
    kept = torch.isfinite(expected)
    assert torch.equal(torch.isfinite(got), kept)
    assert (kept.sum(-1) < 64).all() or top_k is None and top_p is None  # the filters really remove tokens
    torch.testing.assert_close(got[kept], expected[kept])
    # and sampling draws from exactly that distribution: the same generator state picks the same tokens
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(20):
        ours = sample_next(logits, temperature, top_k, top_p, generator=g1)
        assert torch.equal(ours, torch.multinomial(expected.softmax(-1), 1, generator=g2))


def test_top_p_boundary_and_ties():
    """Equal probabilities: top_p=0.5 of four tokens at 0.25 keeps exactly two (the tokens before the third
    already hold 0.5), as HF's TopPLogitsWarper does; 0.51 keeps three."""
    from transformers.generation.logits_process import TopPLogitsWarper
    logits = torch.zeros(1, 4, dtype=torch.float64)
    for top_p, kept in ((0.5, 2), (0.51, 3)):
        assert torch.isfinite(model_py.filter_logits(logits, 1.0, None, top_p)).sum() == kept
        assert torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone())).sum() == kept


def test_model_generate_greedy_equivalents():
    model = small_model().double()
    idx = torch.randint(0, 80, (2, 4))
    greedy = model.generate(idx, 30, temperature=0)
    assert torch.equal(model.generate(idx, 30, top_k=1), greedy)
    assert torch.equal(model.generate(idx, 30, top_p=1e-9), greedy)


def test_padded_ids_never_generated():
    model = small_model(vocab_size=64, tokenizer_vocab_size=50)
    with torch.no_grad():  # every final hidden state becomes b, and the padding rows point along b
        b = torch.randn(32)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(b)
        model.lm_head.weight[50:] = b * 10
    idx = torch.randint(0, 50, (8, 3))
    assert model(idx)[0][:, -1].argmax(-1).ge(50).all()  # unmasked, padding would win
    for kw in [dict(temperature=0), dict(temperature=1.0), dict(top_k=20), dict(top_p=0.99)]:
        assert model.generate(idx, 25, **kw)[:, 3:].max() < 50, kw


def test_stop_token_and_batch():
    """Sampled rows (the model would go on past the stop token with other tokens) are identical to free
    generation up to their first stop token and repeat it after; a batch of one ends right there."""
    model = small_model()
    idx = torch.randint(0, 80, (3, 4), generator=torch.Generator().manual_seed(1))
    rng = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    free = model.generate(idx, 40, generator=rng())[:, 4:].tolist()
    stop = free[0][5]
    after = free[0][free[0].index(stop) + 1:]
    assert after and any(t != stop for t in after)  # without stopping, row 0 goes on with other tokens
    out = model.generate(idx, 40, stop_token=stop, generator=rng())[:, 4:].tolist()
    for row, ref in zip(out, free):
        cut = ref.index(stop) + 1 if stop in ref else len(ref)
        assert row[:cut] == ref[:cut] and set(row[cut:]) <= {stop}
    # a batch of one ends at its stop token: nothing is generated after it
    alone = model.generate(idx[:1], 40, generator=rng())[0, 4:].tolist()
    assert stop in alone and alone.index(stop) < 39
    one = model.generate(idx[:1], 40, stop_token=stop, generator=rng())[0, 4:].tolist()
    assert one == alone[:alone.index(stop) + 1]


def test_too_long_sequence_is_a_clear_error():
    model = small_model(block_size=16)
    with pytest.raises(ValueError, match="sequence of 17 tokens is longer than block_size=16: crop it"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = KVCache(model.config.n_layer, 16)
    model(torch.zeros(1, 10, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="sequence of 17 tokens"):  # 10 cached + 7 new
        model(torch.zeros(1, 7, dtype=torch.long), cache=cache)
    model(torch.zeros(1, 16, dtype=torch.long))


def test_crop_block_size():
    model = small_model(block_size=32)
    idx = torch.randint(0, 80, (2, 10))
    before = model(idx, all_logits=True)[0]
    model.crop_block_size(32)  # to its own size: nothing changes
    model.crop_block_size(16)
    assert model.transformer.wpe.weight.shape == (16, 32) and model.config.block_size == 16
    torch.testing.assert_close(model(idx, all_logits=True)[0], before)
    with pytest.raises(ValueError, match="cannot grow block_size from 16 to 64"):
        model.crop_block_size(64)


@pytest.mark.parametrize("bad", [dict(activation_function="relu"), dict(n_inner=100),
                                 dict(scale_attn_by_inverse_layer_idx=True),
                                 dict(reorder_and_upcast_attn=True),
                                 dict(scale_attn_weights=False),
                                 dict(add_cross_attention=True)])
def test_bad_hf_configs_rejected(make_hf_dir, bad):
    path = make_hf_dir(**bad)
    with pytest.raises(ValueError, match=next(iter(bad))) as e:
        GPT.from_pretrained(path)
    assert str(e.value).startswith(f"{path}: this GPT-2 variant cannot be reproduced exactly: ")


def test_hf_config_checks_name_every_problem():
    from transformers import GPT2Config
    model_py.config_from_hf(GPT2Config(n_embd=64, n_head=4, n_inner=256), "ok")  # n_inner as 4 * n_embd
    bad = GPT2Config(n_embd=64, n_head=4, n_inner=100, activation_function="relu")
    with pytest.raises(ValueError) as e:
        model_py.config_from_hf(bad, "x")
    assert str(e.value) == ("x: this GPT-2 variant cannot be reproduced exactly: activation_function is "
                            "'relu', not 'gelu_new' or 'gelu_pytorch_tanh'; n_inner is 100, not None or 256")
    bad.model_type = "gpt_neo"
    with pytest.raises(ValueError, match="model_type is 'gpt_neo', not 'gpt2', 'llama' or 'qwen3'"):
        model_py.config_from_hf(bad, "x")


def test_unreachable_hub_name_is_one_clear_error(monkeypatch, tmp_path):
    """Offline and not in the HF cache: the error names the model and the first line of HF's reason."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(RuntimeError) as e:
        GPT.from_pretrained("gpt2-medium")
    message = str(e.value)
    assert message.startswith("could not load 'gpt2-medium' (") and "\n" not in message
    assert "Download it once with network access" in message and "(None)" not in message
    from transformers import AutoConfig
    for error, reason in ((OSError("first line\nsecond line"), "first line"), (OSError(), "OSError")):
        def fails(*args, **kwargs):
            raise error
        monkeypatch.setattr(AutoConfig, "from_pretrained", fails)
        with pytest.raises(RuntimeError) as e:
            GPT.from_pretrained("gpt2")
        assert str(e.value).startswith(f"could not load 'gpt2' ({reason}). Download it once")


def test_bad_names_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'gpt3': use one of gpt2, gpt2-medium, gpt2-large, "
                                         "gpt2-xl or a directory"):
        GPT.from_pretrained("gpt3")
    with pytest.raises(ValueError, match="no config.json"):
        GPT.from_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="only override dropout"):
        GPT.from_pretrained("gpt2", {"n_layer": 3})


def test_from_pretrained_dropout_override_and_gelu_alias(make_hf_dir):
    model = GPT.from_pretrained(make_hf_dir(activation_function="gelu_pytorch_tanh"), {"dropout": 0.1})
    assert model.config.dropout == 0.1 and model.config.vocab_size == 100 and model.config.block_size == 64
    assert GPT.from_pretrained(make_hf_dir()).config.dropout == 0.0  # no override: GPT-2's inference setting


def test_init_and_param_count():
    model = GPT(GPTConfig(block_size=64, vocab_size=100, n_layer=4, n_head=4, n_embd=256))
    assert model.lm_head.weight is model.transformer.wte.weight
    d, L = 256, 4
    per_layer = 12 * d * d + 9 * d + 4 * d  # weights, biases (qkv 3d, proj d, fc 4d, fc-proj d), 2 LayerNorms
    assert model.get_num_params() == 100 * d + L * per_layer + 2 * d
    assert model.get_num_params(non_embedding=False) == model.get_num_params() + 64 * d
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 1e-3
    assert abs(model.transformer.h[0].attn.c_proj.weight.std().item() - 0.02 / math.sqrt(2 * L)) < 1e-3
    assert model.transformer.h[0].mlp.c_fc.bias.abs().max() == 0


def test_configure_optimizers_decays_only_matrices():
    model = small_model()
    opt = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95))  # neither is AdamW's default
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["fused"]  # CPU has fused AdamW in the torch versions we support
    assert all(g["lr"] == 3e-4 and g["betas"] == (0.9, 0.95) for g in opt.param_groups)


def test_configure_optimizers_without_fused_kernel(monkeypatch):
    """Where the fused kernel is missing, the plain AdamW gets the same groups, lr and betas."""
    real = torch.optim.AdamW

    def no_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported "
                               "devices")
        return real(params, **kwargs)
    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    opt = small_model().configure_optimizers(0.1, 2e-3, (0.8, 0.9))
    assert not opt.defaults["fused"] and [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["lr"] == 2e-3 and g["betas"] == (0.8, 0.9) for g in opt.param_groups)


def test_padded_vocab():
    assert [model_py.padded_vocab(v) for v in (1, 64, 65, 127, 50257)] == [64, 64, 128, 128, 50304]


def test_flops_per_token_matches_counted_matmuls(monkeypatch):
    """Count the FLOPs of one forward+backward with torch's FlopCounterMode, attention done by plain matmuls
    (CPU SDPA kernels are not counted) over the full T x T square, as the formula assumes."""
    from torch.utils.flop_counter import FlopCounterMode

    def plain_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, enable_gqa=False):
        k, v = (t.repeat_interleave(q.size(1) // k.size(1), dim=1) for t in (k, v))
        att = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if is_causal:
            att = att.masked_fill(torch.ones(q.size(2), k.size(2), dtype=torch.bool).triu(1), float("-inf"))
        return att.softmax(-1) @ v
    monkeypatch.setattr(F, "scaled_dot_product_attention", plain_sdpa)
    model = small_model(block_size=24, vocab_size=72)
    B, T = 3, 24
    idx = torch.randint(0, 72, (B, T))
    with FlopCounterMode(display=False) as counter:
        model(idx, idx)[1].backward()
    assert counter.get_total_flops() == model.flops_per_token(T) * B * T
    achieved, mfu = model.estimate_mfu(1000.0, T, peak_flops=2 * model.flops_per_token(T) * 1000.0)
    assert achieved == model.flops_per_token(T) * 1000.0 and mfu == 0.5
    assert model.estimate_mfu(1000.0, T, peak_flops=None)[1] is None


def test_gelu_forms_agree():
    """gelu() is F.gelu(tanh) eagerly and x*sigmoid(2u) in compiled code: the same function."""
    x = torch.linspace(-12, 12, 10001, dtype=torch.float64)
    ref = F.gelu(x, approximate="tanh")
    assert torch.equal(model_py.gelu(x), ref)
    traced = torch.compile(model_py.gelu, backend="eager", fullgraph=True)  # runs the form compiled code gets
    torch.testing.assert_close(traced(x), ref, atol=1e-12, rtol=0)
    torch._dynamo.reset()


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="n_embd=64 must be divisible by n_head=3"):
        GPTConfig(n_embd=64, n_head=3)
    for bad in (0, 101):
        with pytest.raises(ValueError, match=f"tokenizer_vocab_size={bad} must be in 1..100"):
            GPTConfig(vocab_size=100, tokenizer_vocab_size=bad)
    assert GPTConfig(vocab_size=100, tokenizer_vocab_size=1).real_vocab_size == 1
    assert GPTConfig(vocab_size=100, tokenizer_vocab_size=100).real_vocab_size == 100
    assert GPTConfig(vocab_size=100).real_vocab_size == 100


def test_causal_no_position_sees_a_later_token():
    """For every length (2 included: the smallest causal one), changing the last token leaves the logits of
    every earlier position unchanged."""
    model = small_model().double()
    for T in (2, 3, 5):
        idx = torch.randint(0, 80, (1, T), generator=torch.Generator().manual_seed(T))
        changed = idx.clone()
        changed[0, -1] = (idx[0, -1] + 1) % 80
        a, b = model(idx, all_logits=True)[0], model(changed, all_logits=True)[0]
        torch.testing.assert_close(a[:, :-1], b[:, :-1], atol=0, rtol=0)
        assert not torch.equal(a[:, -1], b[:, -1])


def test_compiled_decoding_falls_back_to_eager_where_compiling_fails(no_compiler):
    model = small_model().eval()
    idx = torch.randint(0, 80, (2, 5))
    eager = model.generate(idx, 20, temperature=0)
    model.compile_decoding()
    with pytest.warns(UserWarning, match="compiling the decode step failed, decoding eagerly "
                                         r"\(RuntimeError: no compiler here\)"):
        assert torch.equal(model.generate(idx, 20, temperature=0), eager)
    assert "decode" not in vars(model)  # warned once: the method is back
