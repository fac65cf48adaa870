"""
Train a GPT on one device, or on many with DDP:

    python train.py config/train_shakespeare_char.py
    torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2.py

Keys and defaults are in TrainConfig below; override them with config files and --key=value (configurator.py).
A run is reproducible from its seed alone: batch i is drawn from (seed, i), whatever the number of processes,
so an interrupted run that resumes from its checkpoint continues exactly as if it had never stopped.
"""
import contextlib
import json
import math
import os
import signal
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import UsageError, cli, configure
from data.common import Tokenizer, load_meta
from model import GPT, PRETRAINED, GPTConfig, device_peak_flops, padded_vocab


@dataclass
class TrainConfig:
    # I/O
    out_dir: str = "out"
    eval_interval: int = 2000
    log_interval: int = 1
    eval_iters: int = 200
    eval_only: bool = False  # evaluate once and exit
    eval_hellaswag: bool = False  # also HellaSwag accuracy at every eval (GPT-2 BPE data; data/hellaswag/prepare.py)
    hellaswag_limit: int | None = None  # score only the first N of its 10,042 validation examples
    always_save_checkpoint: bool = True  # False: write ckpt.pt at an eval only when val loss improved
    init_from: str = "scratch"  # 'scratch', 'resume' (from out_dir), 'gpt2', 'gpt2-medium', ... or a local HF directory
    # logging
    wandb_log: bool = False
    wandb_project: str = "owt"
    wandb_run_name: str = "gpt2"
    # data: data/<dataset>/{train,val}.bin and meta.json, written by data/<dataset>/prepare.py
    dataset: str = "openwebtext"
    gradient_accumulation_steps: int = 5 * 8  # micro-steps per optimizer step, summed over all processes
    batch_size: int = 12  # sequences per micro-step per process
    block_size: int = GPTConfig.block_size
    # model (scratch); the defaults are GPTConfig's: GPT-2 124M
    n_layer: int = GPTConfig.n_layer
    n_head: int = GPTConfig.n_head
    n_embd: int = GPTConfig.n_embd
    dropout: float = GPTConfig.dropout
    bias: bool = GPTConfig.bias
    # optimizer: 'adamw', or 'muon' (Muon for the blocks' 2-D matrices, AdamW for embeddings, gains and biases)
    optimizer: str = "adamw"
    learning_rate: float = 6e-4  # peak learning rate
    max_iters: int = 600000  # optimizer steps
    weight_decay: float = 1e-1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    # learning rate schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters
    decay_lr: bool = True
    warmup_iters: int = 2000
    lr_decay_iters: int = 600000
    min_lr: float = 6e-5
    # system
    device: str = "auto"  # 'auto' picks cuda > mps > cpu; or 'cpu', 'cuda', 'cuda:1', 'mps'
    dtype: str = "auto"  # 'float32', 'bfloat16', 'float16' (CUDA only, with a GradScaler) or 'auto'
    compile: bool = True  # torch.compile the model; falls back to eager with a warning if it fails
    seed: int = 1337
    peak_tflops: float | None = None  # the device's peak, for MFU where PEAK_FLOPS does not know it (CPUs)


ARCH_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias")  # may not change on resume


def get_lr(it: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step it (0-based): linear warmup to learning_rate over warmup_iters steps,
    cosine decay to min_lr at lr_decay_iters, min_lr after that."""
    if not cfg.decay_lr:
        return cfg.learning_rate
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if it >= cfg.lr_decay_iters:  # also covers warmup_iters == lr_decay_iters, with no division by zero
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / (cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


def batch_offsets(seed: int, step: int, n: int, data_len: int, block_size: int) -> np.ndarray:
    """Start offsets of the n sequences of global batch `step`. They depend on (seed, step) only, so any split of
    the batch over processes and micro-steps trains on the same data, and a resumed run on the same batches."""
    return np.random.default_rng([seed, step]).integers(0, data_len - block_size, size=n)


def get_batch(data: np.ndarray, offsets: np.ndarray, block_size: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets (B, block_size) starting at offsets, gathered in one numpy indexing op."""
    rows = torch.from_numpy(data[offsets[:, None] + np.arange(block_size + 1)].astype(np.int64))
    if device.type == "cuda":  # pinned memory lets the copy overlap with compute
        rows = rows.pin_memory().to(device, non_blocking=True)
    else:
        rows = rows.to(device)
    return rows[:, :-1], rows[:, 1:]


def save_checkpoint(obj: dict, path: str) -> None:
    """Write atomically: a crash or kill mid-write leaves the previous file at path intact."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str, device: torch.device | str = "cpu") -> dict:
    """The one checkpoint loader (train.py and sample.py). Loads tensors and plain data only (weights_only)."""
    if not os.path.isfile(path):
        raise UsageError(f"no checkpoint at {path}: train one first, or point out_dir at the run to load")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise UsageError(f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    missing = {"model", "model_args", "iter_num", "config"} - set(ckpt if isinstance(ckpt, dict) else {})
    if missing:
        raise UsageError(f"{path} is not a checkpoint of this codebase: it lacks {sorted(missing)}")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> GPT:
    model = GPT(GPTConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    return model


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast can pay off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: assume not
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")


def resolve_dtype(name: str, device: torch.device, n_embd: int | None = None) -> torch.dtype:
    """'auto': bf16 on GPUs that have it, else fp16; on CPUs with native bf16, bf16 autocast for models at least
    128 wide (n_embd), where it measured 1.2-2x faster than fp32 (README, Performance); fp32 otherwise."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and n_embd is not None and n_embd >= 128 and cpu_has_bf16():
            return torch.bfloat16
        return torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise UsageError(f"dtype '{name}' is not one of auto, {', '.join(dtypes)}")
    if dtypes[name] == torch.float16 and device.type != "cuda":
        raise UsageError("dtype=float16 needs a CUDA device (it trains with a GradScaler); use bfloat16 or float32")
    return dtypes[name]


def open_data(data_dir: str, block_size: int) -> tuple[dict[str, np.ndarray], dict]:
    meta = load_meta(data_dir)
    data = {}
    for split in ("train", "val"):
        path = os.path.join(data_dir, f"{split}.bin")
        if not os.path.isfile(path):
            raise UsageError(f"{path} not found: run python {os.path.join(data_dir, 'prepare.py')} first")
        data[split] = np.memmap(path, dtype=meta["dtype"], mode="r")
        if len(data[split]) <= block_size:
            raise UsageError(f"{path} holds {len(data[split])} tokens, too few for block_size={block_size}: "
                             f"lower block_size or add data")
    return data, meta


def build_model(cfg: TrainConfig, meta: dict, ckpt: dict | None) -> GPT:
    vocab = meta["vocab_size"]
    if ckpt is not None:
        changed = {k: (ckpt["model_args"][k], getattr(cfg, k)) for k in ARCH_KEYS
                   if ckpt["model_args"][k] != getattr(cfg, k)}
        if changed:
            raise UsageError("cannot resume with a different architecture: " + ", ".join(
                f"{k}={new!r} but the checkpoint has {old!r}" for k, (old, new) in changed.items()))
        model = model_from_checkpoint({**ckpt, "model_args": {**ckpt["model_args"], "dropout": cfg.dropout}})
    elif cfg.init_from == "scratch":
        model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=padded_vocab(vocab), n_layer=cfg.n_layer,
                              n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                              tokenizer_vocab_size=vocab))
    else:
        if cfg.init_from not in PRETRAINED and not os.path.isdir(cfg.init_from):
            raise UsageError(f"init_from='{cfg.init_from}' is not 'scratch', 'resume', one of "
                             f"{', '.join(PRETRAINED)}, or a directory")
        try:
            model = GPT.from_pretrained(cfg.init_from, {"dropout": cfg.dropout})
            if cfg.block_size < model.config.block_size:
                model.crop_block_size(cfg.block_size)
        except (ValueError, RuntimeError) as e:
            raise UsageError(str(e)) from None
    if model.config.vocab_size < vocab:
        raise UsageError(f"the data's vocab ({vocab}) is larger than the model's ({model.config.vocab_size})")
    if cfg.block_size > model.config.block_size:
        raise UsageError(f"block_size={cfg.block_size} exceeds the model's {model.config.block_size}")
    for k in ARCH_KEYS:  # record what the model really is, e.g. gpt2-medium's shape
        setattr(cfg, k, getattr(model.config, k))
    return model


def maybe_compile(model: GPT, example: tuple[torch.Tensor, torch.Tensor], ctx) -> torch.nn.Module:
    """torch.compile the model, trying one forward/backward now so a failure falls back to eager up front."""
    compiled = torch.compile(model)
    try:
        with ctx:
            _, loss = compiled(*example)
        loss.backward()
        return compiled
    except Exception as e:
        warnings.warn(f"torch.compile failed, training eagerly instead ({type(e).__name__}: {e})")
        return model
    finally:
        model.zero_grad(set_to_none=True)


def train(cfg: TrainConfig) -> dict:
    """Run the training loop; returns the final iter_num, best_val_loss and last eval's losses."""
    ddp = int(os.environ.get("RANK", -1)) != -1
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if ddp else (0, 1)
    if cfg.gradient_accumulation_steps % world:
        raise UsageError(f"gradient_accumulation_steps={cfg.gradient_accumulation_steps} does not divide over "
                         f"{world} processes: make it a multiple of {world}")
    device = resolve_device(cfg.device)
    if ddp:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    accum = cfg.gradient_accumulation_steps // world  # micro-steps per process
    global_rows = cfg.batch_size * cfg.gradient_accumulation_steps
    tokens_per_iter = global_rows * cfg.block_size
    data, meta = open_data(os.path.join("data", cfg.dataset), cfg.block_size)

    ckpt_path, best_path = os.path.join(cfg.out_dir, "ckpt.pt"), os.path.join(cfg.out_dir, "best.pt")
    ckpt = load_checkpoint(ckpt_path, device) if cfg.init_from == "resume" else None
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    model = build_model(cfg, meta, ckpt).to(device)
    dtype = resolve_dtype(cfg.dtype, device, model.config.n_embd)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on GPUs that have them
    try:
        optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                               cfg.optimizer)
    except ValueError as e:
        raise UsageError(str(e)) from None
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    iter_num, best_val_loss = 0, float("inf")
    if ckpt is not None:
        if ckpt["config"].get("optimizer", "adamw") != cfg.optimizer:
            raise UsageError(f"the checkpoint was trained with optimizer='{ckpt['config']['optimizer']}': "
                             f"resume with the same one")
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        iter_num, best_val_loss = ckpt["iter_num"], ckpt["best_val_loss"]
    ckpt = None  # free it
    if master:
        os.makedirs(cfg.out_dir, exist_ok=True)
        print(json.dumps(asdict(cfg), indent=1))
        with open(os.path.join(cfg.out_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(asdict(cfg), f, indent=1)
        print(f"{model.get_num_params() / 1e6:.2f}M parameters; {tokens_per_iter:,} tokens per iteration; "
              f"device {device}, {dtype}, {world} process(es)")

    def micro_batch(split: str, offsets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return get_batch(data[split], offsets, cfg.block_size, device)

    def step_offsets(it: int) -> np.ndarray:  # this process's rows of global batch it, one row block per micro-step
        rows = batch_offsets(cfg.seed, it, global_rows, len(data["train"]), cfg.block_size)
        return rows.reshape(world, accum, cfg.batch_size)[rank]

    raw_model = model
    if cfg.compile:
        model = maybe_compile(model, micro_batch("train", step_offsets(iter_num)[0]), ctx)
    if ddp:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    # a fixed set of eval batches with an RNG of their own: every eval sees the same data, training sees no change
    eval_offsets = {split: np.random.default_rng([cfg.seed, 1 + i]).integers(
        0, len(data[split]) - cfg.block_size, size=(cfg.eval_iters, cfg.batch_size))
        for i, split in enumerate(("train", "val"))}

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        model.eval()
        out = {}
        for split, offsets in eval_offsets.items():
            total = torch.zeros(2, device=device)  # (sum of losses, count), this process's share of the batches
            for k in range(rank, cfg.eval_iters, world):
                with ctx:
                    total[0] += model(*micro_batch(split, offsets[k]))[1].float()
                total[1] += 1
            if ddp:
                dist.all_reduce(total)
            out[f"{split}_loss"] = (total[0] / total[1]).item()
        model.train()
        return out

    def checkpoint(path: str) -> None:
        save_checkpoint({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "model_args": asdict(raw_model.config),
                         "iter_num": iter_num, "best_val_loss": best_val_loss, "config": asdict(cfg),
                         "meta": meta,
                         # batches and dropout masks derive from (seed, iter_num): that is the RNG/data state
                         "rng": {"seed": cfg.seed, "next_batch": iter_num}}, path)

    metrics = open(os.path.join(cfg.out_dir, "metrics.jsonl"), "a", encoding="utf-8") if master else None

    def log(record: dict) -> None:
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        if wandb_run is not None:
            wandb_run.log(record, step=record["iter"])

    wandb_run = None
    if cfg.wandb_log and master:
        import wandb  # optional dependency, imported only when asked for
        wandb_run = wandb.init(project=cfg.wandb_project, name=cfg.wandb_run_name, config=asdict(cfg))

    def evaluate() -> dict[str, float]:
        out = estimate_loss()
        if cfg.eval_hellaswag:  # on every process: the examples are split between them
            hs = hellaswag_accuracy(raw_model, hellaswag, Tokenizer.from_meta(meta), device, ctx, rank, world)
            out.update(hellaswag_acc=hs["acc"], hellaswag_acc_norm=hs["acc_norm"])
        return out

    if cfg.eval_hellaswag:
        from eval import hellaswag_accuracy, load_hellaswag  # only runs that ask for it pay for the import
        hellaswag = load_hellaswag(os.path.join("data", "hellaswag", "hellaswag_val.jsonl"), cfg.hellaswag_limit)
    peak = cfg.peak_tflops * 1e12 if cfg.peak_tflops else device_peak_flops(device)
    signalled = []  # SIGTERM/SIGINT: save a checkpoint and exit 0 at the end of the current step
    previous = {s: signal.signal(s, lambda *_: signalled.append(True)) for s in (signal.SIGTERM, signal.SIGINT)}
    losses = evaluate() if cfg.eval_only else {}
    if cfg.eval_only and master:
        print(f"eval at iter {iter_num}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    train_loss, steps = torch.zeros((), device=device), 0  # summed on the device: no sync per step
    t0 = time.perf_counter()
    while not cfg.eval_only:
        if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
            t_eval = time.perf_counter()
            losses = evaluate()
            improved = losses["val_loss"] < best_val_loss
            best_val_loss = min(best_val_loss, losses["val_loss"])
            if master:
                print(f"iter {iter_num}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
                log({"iter": iter_num, "tokens": iter_num * tokens_per_iter, "lr": get_lr(iter_num, cfg), **losses})
                if iter_num > 0 and improved:
                    checkpoint(best_path)
                if iter_num > 0 and (improved or cfg.always_save_checkpoint or iter_num == cfg.max_iters):
                    checkpoint(ckpt_path)
            t0 += time.perf_counter() - t_eval  # eval time stays out of ms/iter
        if iter_num >= cfg.max_iters:
            break
        lr = get_lr(iter_num, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(cfg.seed + 1_000_003 * rank + iter_num)  # dropout masks follow (seed, rank, step) too
        offsets = step_offsets(iter_num)
        x, y = micro_batch("train", offsets[0])
        for micro in range(accum):
            # only the last micro-step all-reduces gradients across processes
            sync = contextlib.nullcontext() if not ddp or micro == accum - 1 else model.no_sync()
            with sync, ctx:
                _, loss = model(x, y)
                loss = loss / accum
            if micro + 1 < accum:
                x, y = micro_batch("train", offsets[micro + 1])  # fetch while the device works
            scaler.scale(loss).backward()
            train_loss += loss.detach()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip or float("inf"))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        iter_num += 1
        steps += 1
        stop = bool(signalled)
        if ddp:  # stop on every process together, or the others would hang in the next all-reduce
            flag = torch.tensor(float(stop), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if iter_num % cfg.log_interval == 0:
            if ddp:  # (gloo has no AVG)
                dist.all_reduce(train_loss)
                train_loss /= world
            loss_value, norm = train_loss.item() / steps, grad_norm.item()
            dt = (time.perf_counter() - t0) / steps
            tok_s = tokens_per_iter / dt
            flops, mfu = raw_model.estimate_mfu(tok_s, cfg.block_size, peak)
            if master:
                speed = f"mfu {100 * mfu:.1f}%" if mfu is not None else f"{flops / 1e12:.2f} TFLOP/s"
                print(f"iter {iter_num}: loss {loss_value:.4f}, lr {lr:.2e}, grad norm {norm:.3f}, "
                      f"{1000 * dt:.1f} ms/iter, {tok_s:,.0f} tok/s, {speed}")
                log({"iter": iter_num, "tokens": iter_num * tokens_per_iter, "loss": loss_value, "lr": lr,
                     "grad_norm": norm, "ms_per_iter": 1000 * dt, "tokens_per_s": tok_s, "mfu": mfu})
            train_loss.zero_()
            steps, t0 = 0, time.perf_counter()
        if stop:
            if master:
                checkpoint(ckpt_path)
                print(f"stopped by a signal: checkpoint of iter {iter_num} saved to {ckpt_path}")
            break
    for s, handler in previous.items():
        signal.signal(s, handler)
    if metrics:
        metrics.close()
    if wandb_run is not None:
        wandb_run.finish()
    return {"iter_num": iter_num, "best_val_loss": best_val_loss, **losses}


def main(argv: list[str]) -> None:
    try:
        train(configure(TrainConfig, argv))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    cli(main)
