"""
Benchmarks, separate from training so that speed claims have one place to come from.

    python bench.py                                   # train steps of GPT-2 124M on synthetic data
    python bench.py --dataset=shakespeare_char --n_layer=6 --n_embd=384 --n_head=6 --block_size=256 \
                    --batch_size=64
    python bench.py --profile=True                    # also writes a torch.profiler trace to bench_trace.json
    python bench.py --mode=compare --device=cpu ...   # the same train step as fp32 eager with plain AdamW,
                                                      # fused AdamW, bf16 autocast and torch.compile, and
                                                      # with config/arch_*.py's architectures, side by side
    python bench.py --mode=generate --device=cpu      # tokens/s: cached vs uncached generate vs HF generate
    python bench.py config/arch_llama.py --mode=generate --device=cpu   # any mode, any architecture's keys
    python bench.py --mode=speedrun --device=cpu      # Tiny Shakespeare to val 1.88: the reference recipe,
                                                      # GPT-2's speedrun and ours, side by side

Train mode prints ms/iter, tokens/s, achieved TFLOP/s, MFU against the device's peak (core.PEAK_FLOPS, or
--peak_tflops on CPUs) and peak memory.
"""
import contextlib
import copy
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import (CONFIG_DIR, UsageError, check, cli, configure, device_name, dtype_name, key,
                          non_negative, one_of, positive)
from core import (ModelKeys, autocast, checkpoint_activations, choose_weight_layout, cpu_has_bf16,
                  device_problems, estimate_memory, get_batch, hf_model, init_distributed, leave_distributed,
                  load_checkpoint, maybe_compile, model_from_checkpoint, not_gpt2, open_data, peak_flops,
                  progress, read_metrics, resolve_device, resolve_dtype, shard)
from model import GPT, GPTConfig, padded_vocab


@dataclass
class BenchConfig(ModelKeys):
    # the model's keys (n_layer, n_embd, pos_embedding, mlp, ...: core.ModelKeys) come first; GPT-2 124M
    mode: str = key("train", one_of("train", "compare", "generate", "speedrun", "memory"),
                    "what to time: train steps, train-step variants, generation, the speedrun, memory")
    vocab_size: int = key(GPTConfig.vocab_size, positive, "vocabulary of the random tokens (dataset='')")
    # train mode
    dataset: str = key("", None, "train, compare: '' for random tokens, else data/<dataset>; speedrun: its "
                                 "runs' dataset when given")
    batch_size: int = key(12, positive, "sequences per timed step")
    warmup_iters: int = key(5, non_negative, "untimed steps first: compilation and allocator warm-up")
    iters: int = key(20, positive, "timed steps")
    rounds: int = key(5, positive, "compare mode: rounds of iters steps per variant; speedrun mode: runs of "
                                   "each config; taken in turns")
    learning_rate: float = key(6e-4, positive, "the optimizer's learning rate")
    optimizer: str = key("adamw", one_of("adamw", "muon", "plain"), "'plain': torch.optim.AdamW's defaults "
                                                                    "(not fused, one decay group)")
    profile: bool = key(False, None, "train mode: also write a torch.profiler trace to bench_trace.json")
    fsdp: bool = key(False, None, "memory mode under torchrun: FSDP2 instead of DDP")
    # generate mode
    prompt_len: int = key(32, positive, "tokens of the random prompt")
    max_new_tokens: int = key(200, positive, "tokens generated per timed run")
    hf: bool = key(True, None, "also time HF transformers' generate on the same weights")
    gen_batch: int = key(8, positive, "the batch size timed besides 1")
    # system
    device: str = key("auto", device_name, "'auto' picks cuda > mps > cpu")
    dtype: str = key("auto", dtype_name, "autocast dtype of train mode; 'auto': bf16 or fp16 on a GPU")
    compile: bool = key(True, None, "torch.compile the model (generate mode: also time compiled decoding)")
    seed: int = key(1337, non_negative, "of the weights and tokens (numpy takes no negative seed)")
    peak_tflops: float | None = key(None, positive, "the device's peak, for MFU where core.PEAK_FLOPS lacks "
                                                    "it")

    def problems(self) -> list[str]:
        found = device_problems(self.device, self.dtype) + super().problems()
        # HF's generate cannot go past its n_positions (ours crops its context)
        if self.mode == "generate" and self.hf and self.prompt_len + self.max_new_tokens > self.block_size:
            found.append(f"max_new_tokens={self.max_new_tokens}: prompt_len + max_new_tokens must be <= "
                         f"block_size={self.block_size} for HF's generate (or hf=False)")
        return found


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def arch(model: GPT) -> str:
    """' (pos_embedding='rope', ...)': the architecture keys in which model is not GPT-2; '' for GPT-2."""
    keys = not_gpt2(model.config)
    return f" ({', '.join(keys)})" if keys else ""


def timed(run: Callable[[], object], device: torch.device) -> tuple[object, float]:
    """(run(), the seconds it took), the device's queue drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    result = run()
    sync(device)
    return result, time.perf_counter() - t0


def make_step(cfg: BenchConfig, device: torch.device) -> tuple:
    """(step, model, compiled): step() runs one training iteration (forward, backward, clip, optimizer) and
    returns the loss; compiled says whether the forward really is compiled (compile=True that failed falls
    back to eager, with a warning)."""
    dtype = resolve_dtype(cfg.dtype, device, cfg.n_embd)
    ctx = autocast(device, dtype)
    torch.set_float32_matmul_precision("high")
    vocab_size = cfg.vocab_size
    if cfg.dataset:
        data, meta = open_data(f"data/{cfg.dataset}", cfg.block_size)
        data, vocab_size = data["train"], padded_vocab(meta["vocab_size"])
    else:
        data = np.random.default_rng(cfg.seed).integers(0, cfg.vocab_size, 1_000_000, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed)
    batch = lambda: get_batch(data, rng.integers(0, len(data) - cfg.block_size, cfg.batch_size),  # noqa: E731
                              cfg.block_size, device)
    torch.manual_seed(cfg.seed)
    model = GPT(cfg.gpt_config(vocab_size=vocab_size)).to(device)
    if cfg.optimizer == "plain":
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    else:
        optimizer = model.configure_optimizers(0.1, cfg.learning_rate, (0.9, 0.95), cfg.optimizer)
    fwd = maybe_compile(model, batch(), ctx) if cfg.compile else model

    def step() -> torch.Tensor:
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
    return step, model, fwd is not model


def time_steps(step, iters: int) -> float:
    """Seconds per iteration over iters iterations."""
    t0 = time.perf_counter()
    for _ in progress(range(iters), "timed steps"):  # tqdm costs well under a microsecond a step
        loss = step()
    loss.item()  # waits for the device
    return (time.perf_counter() - t0) / iters


def bench_train(cfg: BenchConfig, device: torch.device) -> dict:
    step, model, compiled = make_step(cfg, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with torch.profiler.profile(record_shapes=True) if cfg.profile else contextlib.nullcontext() as prof:
        dt = time_steps(step, cfg.iters)
    if cfg.profile:
        prof.export_chrome_trace("bench_trace.json")
        print("profiler trace written to bench_trace.json (open it in chrome://tracing or perfetto.dev)")
    tok_s = cfg.batch_size * cfg.block_size / dt
    peak = peak_flops(device, cfg.peak_tflops)
    flops, mfu = model.estimate_mfu(tok_s, cfg.block_size, peak)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    dtype = resolve_dtype(cfg.dtype, device, cfg.n_embd)
    print(f"{model.get_num_params() / 1e6:.2f}M params{arch(model)}, batch {cfg.batch_size}x{cfg.block_size}"
          f", {device}, {dtype}, compiled={compiled}, {cfg.optimizer}: {1000 * dt:.1f} ms/iter, "
          f"{tok_s:,.0f} tok/s, {flops / 1e12:.2f} TFLOP/s"
          + (f", MFU {100 * mfu:.1f}%" if mfu is not None else " (no peak known: pass --peak_tflops for MFU)")
          + (f", peak memory {mem:.2f} GiB" if mem is not None else ""))
    return {"ms_per_iter": 1000 * dt, "tokens_per_s": tok_s, "flops": flops, "mfu": mfu, "compiled": compiled}


def local_bytes(tensors) -> int:
    """Bytes these tensors take in this process: a sharded (DTensor) one counts its own shard only."""
    tensors = [t.to_local() if hasattr(t, "to_local") else t for t in tensors if t is not None]
    return sum(t.numel() * t.element_size() for t in tensors)


def saved_activation_bytes(model: GPT, x: torch.Tensor) -> int:
    """Bytes autograd keeps from one forward pass for the backward (each storage counted once)."""
    storages = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, x)[1].backward()
    return sum(storages.values())


def proc_status(key: str) -> int:
    """A size in /proc/self/status (Linux), in bytes: VmRSS (resident now), VmHWM (its peak)."""
    with open("/proc/self/status", encoding="utf-8") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def reset_peak(device: torch.device) -> int | None:
    """Measure the peak (peak_held) from now on; returns what the process holds now: CUDA's allocated bytes
    on a GPU, resident bytes on a CPU (Linux; None elsewhere)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")  # VmHWM starts again from VmRSS
        return proc_status("VmRSS")
    except (OSError, StopIteration):
        return None


def peak_held(device: torch.device) -> int:
    """The most the process held since reset_peak, counted as reset_peak counts it."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else proc_status("VmHWM")


def bench_memory(cfg: BenchConfig, device: torch.device) -> dict:
    """Per-process memory of parameters, gradients and AdamW state after a step, and the step time, of one
    process, or of each process under torchrun (DDP, or FSDP with --fsdp=True); what a step took at its peak
    beside core.estimate_memory's estimate; then, in one process, the activations kept for the backward at
    block_size with and without activation checkpointing. fp32. On a CPU the peak is the resident memory's
    growth, which also holds the libraries loaded on first use and blocks the allocator keeps for reuse."""
    ddp = int(os.environ.get("RANK", -1)) != -1
    with contextlib.ExitStack() as stack:
        if ddp:
            device = init_distributed(device)
            stack.push(leave_distributed)
        held = reset_peak(device)  # before the model
        torch.manual_seed(cfg.seed)
        model = GPT(cfg.gpt_config()).to(device)
        if ddp and cfg.fsdp:
            shard(model, device, torch.float32)
        optimizer = model.configure_optimizers(0.1, cfg.learning_rate, (0.9, 0.95))
        step_model = DDP(model) if ddp and not cfg.fsdp else model
        x = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.block_size), device=device)

        def step() -> torch.Tensor:
            _, loss = step_model(x, x)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # the gradients stay allocated, as during a real step
            return loss
        step()
        dt = time_steps(step, cfg.iters)
        peak = (peak_held(device) - held) / 2**20 if held is not None else None
        state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        mib = {"params": local_bytes(model.parameters()) / 2**20,
               "grads": local_bytes(p.grad for p in model.parameters()) / 2**20,
               "optimizer": local_bytes(state) / 2**20}
        world = dist.get_world_size() if ddp else 1
        estimate = estimate_memory(model, cfg.batch_size, device, torch.float32,
                                   shards=world if cfg.fsdp else 1, ddp=ddp and not cfg.fsdp)
        how = f"{world} processes, {'FSDP' if cfg.fsdp else 'DDP'}" if ddp else "one process"
        if not ddp or dist.get_rank() == 0:
            print(f"| {how} | {mib['params']:.0f} | {mib['grads']:.0f} | {mib['optimizer']:.0f} "
                  f"| {sum(mib.values()):.0f} | {1000 * dt:.0f} |")
            print(f"peak of a step, batch {cfg.batch_size}x{cfg.block_size}: "
                  f"{'unknown' if peak is None else f'{peak:.0f} MiB'} measured, {estimate} estimated")
        result = {**mib, "ms_per_iter": 1000 * dt, "peak": peak, "estimate": estimate.total / 2**20}
        if ddp:
            return result
    for name, recompute in (("activations", False), ("activations_checkpointed", True)):
        if recompute:
            checkpoint_activations(model)
        result[name] = saved_activation_bytes(model, x) / 2**20
    print(f"activations kept for the backward, batch {cfg.batch_size}x{cfg.block_size}: "
          f"{result['activations']:.0f} MiB; with activation checkpointing "
          f"{result['activations_checkpointed']:.0f} MiB")
    return result


# compare mode times each beside the model of the keys given (GPT-2 by default)
ARCH_PRESETS = [os.path.join(CONFIG_DIR, "arch_llama.py"), os.path.join(CONFIG_DIR, "arch_modern.py")]


def with_config_file(cfg: BenchConfig, path: str) -> BenchConfig:
    """cfg with the keys that the config file at path assigns (a preset: config/arch_llama.py), read as
    configure() reads any config file, then checked together with cfg's other keys."""
    given: set[str] = set()
    from_file = configure(BenchConfig, [path], given)
    cfg = replace(cfg, **{k: getattr(from_file, k) for k in given})
    check(cfg)
    return cfg


def bench_compare(cfg: BenchConfig, device: torch.device) -> list[dict]:
    """One train step, several ways, in one process; fp32 eager with plain torch.optim.AdamW is the baseline.
    The model of the keys given (GPT-2 by default) in each dtype, compiled or not, then each of ARCH_PRESETS
    on top of those keys, eager and compiled, in bf16 where the device has it. The variants take turns for
    `rounds` rounds of `iters` steps and each reports its median round, so a slow moment of a shared machine
    does not land on one variant only."""
    fast = "float32" if device.type == "cpu" and not cpu_has_bf16() else "bfloat16"
    settings = [("float32", False, "plain"), ("float32", False, "adamw"), ("float32", True, "adamw"),
                ("bfloat16", False, "adamw"), ("bfloat16", True, "adamw")]
    if fast == "float32":
        settings = [s for s in settings if s[0] != "bfloat16"]
    # (preset file, or '' for the keys given; dtype; compile; optimizer)
    variants = [("", *s) for s in settings]
    variants += [(preset, fast, c, "adamw") for preset in ARCH_PRESETS for c in (False, True)]
    made = [make_step(replace(with_config_file(cfg, p) if p else cfg, dtype=d, compile=c, optimizer=o),
                      device) for p, d, c, o in variants]
    times = [[time_steps(step, cfg.iters) for step, _, _ in made]
             for _ in progress(range(cfg.rounds), "rounds")]
    rows = [{"model": os.path.basename(p) or "keys given", "params": model.get_num_params(), "dtype": d,
             "compile": c, "compiled": compiled, "optimizer": o, "ms_per_iter": 1000 * float(np.median(col)),
             "tokens_per_s": cfg.batch_size * cfg.block_size / float(np.median(col))}
            for (p, d, c, o), (_, model, compiled), col in zip(variants, made, zip(*times))]
    base = rows[0]["tokens_per_s"]
    print(f"train step, batch {cfg.batch_size}x{cfg.block_size}, {cfg.n_layer} layers x {cfg.n_embd}"
          f"{arch(made[0][1])}, "
          f"{device}, {torch.get_num_threads()} threads; median of {cfg.rounds} rounds of {cfg.iters} steps")
    print("model 'keys given': the command line's (GPT-2 unless its keys say otherwise); a preset: those "
          "keys with the preset file's on top")
    print("| model | params | dtype | compile | optimizer | ms/iter | tokens/s | speedup |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        optimizer = "AdamW (plain)" if r["optimizer"] == "plain" else "AdamW (fused)"
        compile_ = "failed: eager" if r["compile"] and not r["compiled"] else r["compile"]
        print(f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['dtype']} | {compile_} | {optimizer} "
              f"| {r['ms_per_iter']:.1f} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base:.2f}x |")
    return rows


REFERENCE_RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                    "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                    "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0",
                    "--dtype=float32"]  # the reference codebase never autocasts on CPU
# wall time to val 1.88, side by side: GPT-2's best and the faster one, config/arch_modern.py's architecture
SPEEDRUN = {"reference recipe": REFERENCE_RECIPE,
            "speedrun, GPT-2": ["config/train_shakespeare_char_cpu_gpt2.py"],
            "speedrun": ["config/train_shakespeare_char_cpu.py"]}


@torch.no_grad()
def full_val_loss(ckpt_path: str, device: torch.device) -> float:
    """Mean loss over every token of val.bin, in consecutive block_size windows: the same number for any run,
    free of the sampling noise of train.py's random eval batches."""
    ckpt = load_checkpoint(ckpt_path, device)
    model = model_from_checkpoint(ckpt).to(device).eval()
    T = model.config.block_size
    data, _ = open_data(os.path.join("data", ckpt["config"]["dataset"]), T)
    val = torch.from_numpy(data["val"][: (len(data["val"]) - 1) // T * T + 1].astype(np.int64)).to(device)
    x, y = val[:-1].view(-1, T), val[1:].view(-1, T)
    losses = [model(x[i:i + 256], y[i:i + 256])[1] * len(x[i:i + 256]) for i in range(0, len(x), 256)]
    return (sum(losses) / len(x)).item()


def speedrun_once(args: list[str], out_dir: str, device: torch.device) -> dict:
    """One `python train.py *args` process into out_dir: its wall time from start to exit, the CPU time it
    used (user + system; 0 where the OS does not report it), its last eval and its loss on all of val.bin."""
    t0, cpu0 = time.perf_counter(), os.times()
    proc = subprocess.run([sys.executable, "train.py", *args, f"--out_dir={out_dir}"], capture_output=True,
                          text=True)
    wall, cpu1 = time.perf_counter() - t0, os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"python train.py {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    last_eval = read_metrics(f"{out_dir}/metrics.jsonl")[1][-1]
    cpu = cpu1.children_user + cpu1.children_system - cpu0.children_user - cpu0.children_system
    return {"wall_s": wall, "cpu_s": cpu, "iters": last_eval["iter"], "val_loss": last_eval["val_loss"],
            "full_val_loss": full_val_loss(f"{out_dir}/ckpt.pt", device)}


def bench_speedrun(cfg: BenchConfig, device: torch.device) -> dict:
    """Wall time to train Tiny Shakespeare chars to val 1.88: the reference CPU recipe, GPT-2's speedrun
    and config/train_shakespeare_char_cpu.py (on --dataset instead of data/shakespeare_char if it is given).
    They take turns for `rounds` rounds, so a slow moment of a shared machine does not land on one run only;
    each reports its median wall time, the range, and the losses of its last round."""
    dataset = [f"--dataset={cfg.dataset}"] if cfg.dataset else []
    rounds = {name: [] for name in SPEEDRUN}
    with tempfile.TemporaryDirectory() as tmp:
        for i in progress(range(cfg.rounds), "speedrun rounds"):
            for name, args in SPEEDRUN.items():
                out_dir = f"{tmp}/{name.replace(' ', '_').replace(',', '')}_{i}"
                rounds[name].append(speedrun_once(args + dataset, out_dir, device))
    results = {name: {**runs[-1], "wall_s": float(np.median([r["wall_s"] for r in runs])),
                      "cpu_s": float(np.median([r["cpu_s"] for r in runs])),
                      "wall_s_each": [r["wall_s"] for r in runs]} for name, runs in rounds.items()}
    ref = results["reference recipe"]["wall_s"]
    print(f"each train.py process from start to exit, the median of {cfg.rounds} round(s); CPU s: its user + "
          f"system time (on a busy machine, the steadier figure where it runs one thread)")
    print("| run | iters | wall time | range | vs reference | CPU s | val loss (train.py eval) "
          "| val loss (all of val.bin) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['iters']} | {r['wall_s']:.1f} s | {min(r['wall_s_each']):.1f}-"
              f"{max(r['wall_s_each']):.1f} s | {r['wall_s'] / ref:.2f}x | {r['cpu_s']:.1f} "
              f"| {r['val_loss']:.4f} | {r['full_val_loss']:.4f} |")
    return results


def read_bandwidth(device: torch.device, mib: int = 256) -> float:
    """Bytes per second this device reads memory at: the best of five sums over a tensor far larger than any
    cache. Batch-1 decoding reads every weight once a token, so this sets its limit."""
    x = torch.ones(mib * 2 ** 20 // 4, device=device)
    best = min(timed(x.sum, device)[1] for _ in range(5))
    return x.numel() * 4 / best


def decode_bytes(model: GPT) -> int:
    """Bytes of weights one decode step reads: all of them but the lookup tables (position embeddings, and
    token embeddings apart from the output layer), of which it reads a row."""
    return model.get_num_params(non_embedding=True) * model.lm_head.weight.element_size()


GPT2_TOKENS = 50257  # the ids of GPT-2's tokenizer: the vocabulary of generate mode's models


def generate_models(cfg: BenchConfig, device: torch.device) -> tuple[torch.nn.Module | None, dict[str, GPT]]:
    """Our model of cfg's keys with random weights, in the variants timed: fp32 and bf16, each eager and
    (with cfg.compile) with compiled decoding; and with cfg.hf the HF model that computes the same on the
    very same weights (core.hf_model), or None, said in one line, where no HF class does (arch_modern.py)."""
    torch.manual_seed(cfg.seed)
    fp32 = GPT(cfg.gpt_config(vocab_size=GPT2_TOKENS)).eval()
    hf = None
    if cfg.hf:
        try:
            hf = hf_model(fp32).to(device)
        except UsageError as e:
            print(f"no HF generate row: {e}")
    fp32.to(device)
    models = {"eager fp32": fp32, "eager bf16": copy.deepcopy(fp32).to(torch.bfloat16)}
    for dtype in ("fp32", "bf16"):
        layout, seconds = choose_weight_layout(models[f"eager {dtype}"])
        times = ", ".join(f"{name} {1000 * t:.2f} ms" for name, t in seconds.items())
        print(f"{dtype} weights stored as {layout}, the faster layout here (one token through the head: "
              f"{times})")
        if cfg.compile:
            models[f"compiled {dtype}"] = copy.deepcopy(models[f"eager {dtype}"])
            models[f"compiled {dtype}"].compile_decoding()
    return hf, models


def time_generation(runs: dict, rounds: int, n_tokens: dict, device: torch.device) -> tuple[dict, dict]:
    """(best tokens/s, last output) of each run, taking turns for rounds rounds."""
    best, outputs = {name: 0.0 for name in runs}, {}
    for _ in progress(range(rounds), "generate rounds"):
        for name, run in runs.items():
            outputs[name], seconds = timed(run, device)
            best[name] = max(best[name], n_tokens[name] / seconds)
    return best, outputs


def bench_generate(cfg: BenchConfig, device: torch.device) -> dict:
    """Greedy decoding of max_new_tokens after a random prompt, at batch 1 and gen_batch, on one set of random
    weights of cfg's model (GPT-2 124M by default): ours eager and compiled (compile=True) in fp32 and bf16,
    uncached, and HF's generate where a HF class computes the model. Methods take turns, three rounds; each
    reports its best round, so a busy moment hurts no single method. Also the machine's read bandwidth, and
    what share of its limit each run reaches."""
    hf, models = generate_models(cfg, device)
    n, batches = cfg.max_new_tokens, sorted({1, cfg.gen_batch})
    prompts = {b: torch.randint(0, GPT2_TOKENS, (b, cfg.prompt_len), device=device) for b in batches}
    runs, n_tokens = {}, {}
    for b in batches:
        for name, model in models.items():
            runs[name, b] = functools.partial(model.generate, prompts[b], n, temperature=0)
        if b == 1:
            runs["uncached fp32", b] = functools.partial(models["eager fp32"].generate, prompts[b], n,
                                                         temperature=0, use_cache=False)
        if hf is not None:
            runs["HF generate fp32", b] = functools.partial(
                hf.generate, prompts[b], attention_mask=torch.ones_like(prompts[b]), do_sample=False,
                max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        n_tokens |= {(name, bb): n * bb for name, bb in runs if bb == b}
    with torch.no_grad():
        compile_s = warm_up(runs, device)
        best, outputs = time_generation(runs, 3, n_tokens, device)
        agree = bf16_agreement(models, outputs[("eager fp32", 1)], cfg.prompt_len)
    bandwidth = read_bandwidth(device)
    limits = {dtype: bandwidth / decode_bytes(models[f"eager {dtype}"]) for dtype in ("fp32", "bf16")}
    # ours against each other; HF's generate apart (a fork's model may compute what HF's class does not)
    fp32_same = all(torch.equal(outputs[key], outputs[("eager fp32", key[1])]) for key in outputs
                    if "bf16" not in key[0] and "HF" not in key[0])
    hf_same = all(torch.equal(outputs[key], outputs[("eager fp32", key[1])]) for key in outputs
                  if "HF" in key[0]) if hf is not None else None
    bf16_same = torch.equal(outputs.get(("compiled bf16", 1), outputs[("eager bf16", 1)]),
                            outputs[("eager bf16", 1)])
    print_generate(cfg, models["eager fp32"], device, best, limits, bandwidth)
    for dtype, seconds in compile_s.items():
        gain = 1 / best[(f"eager {dtype}", 1)] - 1 / best[(f"compiled {dtype}", 1)]  # s saved per token
        pays = f"pays after {seconds / gain:,.0f} tokens" if gain > 0 else "never pays: no faster per token"
        print(f"compiling the {dtype} decode step: {seconds:.1f} s, {pays} (batch 1)")
    print(f"identical tokens from each of our fp32 methods: {fp32_same}; compiled bf16 = eager bf16: "
          f"{bf16_same}; HF generate = ours: {hf_same}")
    print(f"bf16's greedy choice agrees with fp32's at {agree:.1%} of positions (fed fp32's tokens)")
    return {"tokens_per_s": {f"{name}, batch {b}": v for (name, b), v in best.items()},
            "compile_s": compile_s, "bandwidth": bandwidth, "identical": fp32_same, "hf_identical": hf_same,
            "bf16_compiled_same": bf16_same, "bf16_agreement": agree}


def warm_up(runs: dict, device: torch.device) -> dict[str, float]:
    """Run each once; the compiled runs compile here. Returns each dtype's compile time: its compiled
    warm-up's time less the eager run's for the same tokens."""
    seconds = {name: timed(run, device)[1]
               for name, run in progress(runs.items(), "warm-up and compiling", total=len(runs))}
    return {dtype: seconds[(f"compiled {dtype}", 1)] - seconds[(f"eager {dtype}", 1)]
            for dtype in ("fp32", "bf16") if (f"compiled {dtype}", 1) in seconds}


def bf16_agreement(models: dict, tokens: torch.Tensor, prompt_len: int) -> float:
    """The share of fp32's greedy tokens that the bf16 model also ranks first, fed fp32's tokens, so that an
    early disagreement does not decide every later position."""
    tokens = tokens[:, :models["eager bf16"].config.block_size + 1]  # what fits in one forward
    logits, _ = models["eager bf16"](tokens[:, :-1], all_logits=True)
    picks = logits[:, prompt_len - 1:].argmax(dim=-1)
    return (picks == tokens[:, prompt_len:]).float().mean().item()


def print_generate(cfg: BenchConfig, model: GPT, device: torch.device, best: dict, limits: dict,
                   bandwidth: float) -> None:
    print(f"generate: {model.get_num_params() / 1e6:.0f}M params{arch(model)}, prompt {cfg.prompt_len}, "
          f"{cfg.max_new_tokens} new tokens, greedy, {device}, {torch.get_num_threads()} threads")
    print(f"memory read bandwidth: {bandwidth / 1e9:.1f} GB/s (sum over 256 MiB); weights read per token: "
          f"{decode_bytes(model) / 1e6:.0f} MB in fp32, half in bf16")
    hf = {b: best.get(("HF generate fp32", b)) for b in (1, cfg.gen_batch)}
    print("| method | batch | tokens/s | vs HF generate fp32 | share of the bandwidth limit |")
    print("|---|---|---|---|---|")
    for (name, b), tps in best.items():
        vs_hf = f"{tps / hf[b]:.2f}x" if hf[b] else "-"
        limit = limits["bf16" if "bf16" in name else "fp32"] * b  # a step reads the weights once for b rows
        print(f"| {name} | {b} | {tps:.1f} | {vs_hf} | {tps / limit:.0%} |")


def main(argv: list[str]) -> dict:
    cfg = configure(BenchConfig, argv)
    device = resolve_device(cfg.device)
    if cfg.mode == "train":
        return bench_train(cfg, device)
    if cfg.mode == "compare":
        return bench_compare(cfg, device)
    if cfg.mode == "generate":
        return bench_generate(cfg, device)
    if cfg.mode == "speedrun":
        return bench_speedrun(cfg, device)
    if cfg.mode == "memory":
        return bench_memory(cfg, device)
    raise UsageError(f"mode '{cfg.mode}' is not 'train', 'compare', 'generate', 'speedrun' or 'memory'")


if __name__ == "__main__":
    cli(main)
