"""
Benchmarks, separate from training so that speed claims have one place to come from.

    python bench.py                                   # train steps of GPT-2 124M on synthetic data
    python bench.py --dataset=shakespeare_char --n_layer=6 --n_embd=384 --n_head=6 --block_size=256 --batch_size=64
    python bench.py --profile=True                    # also writes a torch.profiler trace to bench_trace.json
    python bench.py --mode=generate --device=cpu      # tokens/s: cached vs uncached generate vs HF generate

Train mode prints ms/iter, tokens/s, achieved TFLOP/s, MFU against the device's peak (model.PEAK_FLOPS, or
--peak_tflops on CPUs) and peak memory.
"""
import contextlib
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

from configurator import UsageError, cli, configure
from model import GPT, GPTConfig, device_peak_flops
from train import get_batch, maybe_compile, open_data, resolve_device, resolve_dtype


@dataclass
class BenchConfig:
    mode: str = "train"  # 'train' or 'generate'
    # model shape (scratch); defaults are GPT-2 124M
    n_layer: int = GPTConfig.n_layer
    n_head: int = GPTConfig.n_head
    n_embd: int = GPTConfig.n_embd
    block_size: int = GPTConfig.block_size
    vocab_size: int = GPTConfig.vocab_size
    bias: bool = GPTConfig.bias
    # train mode
    dataset: str = ""  # '' for random tokens, else data/<dataset>/train.bin
    batch_size: int = 12
    warmup_iters: int = 5  # untimed: compilation and allocator warm-up
    iters: int = 20
    learning_rate: float = 6e-4
    profile: bool = False
    # generate mode
    prompt_len: int = 32
    max_new_tokens: int = 200
    hf: bool = True  # also time HF transformers' generate on the same weights
    # system
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = True
    seed: int = 1337
    peak_tflops: float | None = None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(cfg: BenchConfig, device: torch.device) -> dict:
    dtype = resolve_dtype(cfg.dtype, device)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    torch.set_float32_matmul_precision("high")
    if cfg.dataset:
        data = open_data(f"data/{cfg.dataset}", cfg.block_size)[0]["train"]
    else:
        data = np.random.default_rng(cfg.seed).integers(0, cfg.vocab_size, 1_000_000, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed)
    batch = lambda: get_batch(data, rng.integers(0, len(data) - cfg.block_size, cfg.batch_size), cfg.block_size, device)
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, bias=cfg.bias)).to(device)
    optimizer = model.configure_optimizers(0.1, cfg.learning_rate, (0.9, 0.95), device)
    fwd = maybe_compile(model, batch(), ctx) if cfg.compile else model

    def step():
        x, y = batch()
        with ctx:
            _, loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(cfg.warmup_iters):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    prof = torch.profiler.profile(record_shapes=True) if cfg.profile else contextlib.nullcontext()
    with prof:
        t0 = time.perf_counter()
        for _ in range(cfg.iters):
            loss = step()
        loss.item()  # waits for the device
        dt = (time.perf_counter() - t0) / cfg.iters
    if cfg.profile:
        prof.export_chrome_trace("bench_trace.json")
        print("profiler trace written to bench_trace.json (open it in chrome://tracing or perfetto.dev)")
    tok_s = cfg.batch_size * cfg.block_size / dt
    peak = cfg.peak_tflops * 1e12 if cfg.peak_tflops else device_peak_flops(device)
    flops, mfu = model.estimate_mfu(tok_s, cfg.block_size, peak)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    print(f"{model.get_num_params() / 1e6:.1f}M params, batch {cfg.batch_size}x{cfg.block_size}, {device}, {dtype}, "
          f"compile={cfg.compile}: {1000 * dt:.1f} ms/iter, {tok_s:,.0f} tok/s, {flops / 1e12:.2f} TFLOP/s"
          + (f", MFU {100 * mfu:.1f}%" if mfu is not None else " (no peak known: pass --peak_tflops for MFU)")
          + (f", peak memory {mem:.2f} GiB" if mem is not None else ""))
    return {"ms_per_iter": 1000 * dt, "tokens_per_s": tok_s, "flops": flops, "mfu": mfu, "loss": loss.item()}


def bench_generate(cfg: BenchConfig, device: torch.device) -> dict:
    """Greedy decoding of max_new_tokens after a random prompt, batch 1, on one set of random GPT-2 weights."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(cfg.seed)
    hf_config = GPT2Config(n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head,
                           vocab_size=50257, bos_token_id=None, eos_token_id=None)
    hf = GPT2LMHeadModel(hf_config).eval()
    with tempfile.TemporaryDirectory() as d:  # load ours through from_pretrained: the very same weights
        hf.save_pretrained(d)
        model = GPT.from_pretrained(d).eval().to(device)
    hf = hf.to(device)
    prompt = torch.randint(0, 50257, (1, cfg.prompt_len), device=device)
    runs = {"cached": lambda: model.generate(prompt, cfg.max_new_tokens, temperature=0),
            "uncached": lambda: model.generate(prompt, cfg.max_new_tokens, temperature=0, use_cache=False)}
    if cfg.hf:
        runs["hf"] = lambda: hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                         max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.max_new_tokens,
                                         pad_token_id=0)
    results, outputs = {}, {}
    with torch.no_grad():
        for name, run in runs.items():
            run()  # warm-up
            sync(device)
            t0 = time.perf_counter()
            outputs[name] = run()
            sync(device)
            results[name] = cfg.max_new_tokens / (time.perf_counter() - t0)
    same = all(torch.equal(o, outputs["cached"]) for o in outputs.values())
    print(f"generate: {model.get_num_params() / 1e6:.0f}M params, batch 1, prompt {cfg.prompt_len}, "
          f"{cfg.max_new_tokens} new tokens, greedy, {device}, fp32, {torch.get_num_threads()} threads")
    print("| method | tokens/s | vs uncached |\n|---|---|---|")
    for name, tps in results.items():
        print(f"| {name} | {tps:.1f} | {tps / results['uncached']:.2f}x |")
    print(f"identical tokens from every method: {same}")
    return {**results, "identical": same}


def main(argv: list[str]) -> dict:
    cfg = configure(BenchConfig, argv)
    device = resolve_device(cfg.device)
    if cfg.mode == "train":
        return bench_train(cfg, device)
    if cfg.mode == "generate":
        return bench_generate(cfg, device)
    raise UsageError(f"mode '{cfg.mode}' is not 'train' or 'generate'")


if __name__ == "__main__":
    cli(main)
