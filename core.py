"""
What the scripts share. train.py, sample.py, eval.py and bench.py import this module and never each other; it
imports model.py, configurator.py and data/common.py, never a script:

    scripts (train, sample, eval, bench) -> core -> model, data.common -> configurator

Devices and dtypes, the memory a training process will hold against what its device has free, the dataset on
disk, checkpoints (with checksums), loading a model from a run or from GPT-2, prompts, torch.compile with a
fallback, peak FLOPs for MFU, a run's out_dir (its lock, who owns it), its metrics.jsonl (written and read),
its processes and stop signals, progress bars, and HellaSwag scoring.
"""
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.utils.checkpoint
from torch.nn import functional as F
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

try:
    import fcntl  # out_dir locks; not on Windows, which runs without them
except ImportError:
    fcntl = None

from configurator import UsageError, closest, did_you_mean, key, one_of, positive, probability
from data.common import DataError, Tokenizer, atomic_write, load_meta
from model import GPT, HF_TRANSPOSED, PRETRAINED, GPTConfig, hf_names

# -----------------------------------------------------------------------------
# the model's keys, shared by train.py and bench.py

@dataclasses.dataclass
class ModelKeys:
    """The config keys of the model: GPTConfig's fields, GPT-2 124M's values by default. train.py's and
    bench.py's configs take them all, so a new GPTConfig field is one key here, with its range."""
    block_size: int = key(GPTConfig.block_size, positive, "tokens per sequence: the model's context length")
    n_layer: int = key(GPTConfig.n_layer, positive, "transformer blocks")
    n_head: int = key(GPTConfig.n_head, positive, "attention heads per block; must divide n_embd")
    n_embd: int = key(GPTConfig.n_embd, positive, "width of the residual stream")
    dropout: float = key(GPTConfig.dropout, probability, "dropout probability (0 for pretraining, "
                                                         "0.1+ for finetuning)")
    bias: bool = key(GPTConfig.bias, None, "biases in the Linears and LayerNorms (GPT-2 has them)")
    pos_embedding: str = key(GPTConfig.pos_embedding, one_of("learned", "rope"),
                             "'learned' positions added to the tokens (GPT-2), or 'rope': rotated queries "
                             "and keys (Llama)")
    rope_theta: float = key(GPTConfig.rope_theta, positive, "RoPE's base: the slowest channel pair turns "
                                                            "once in ~2 pi rope_theta tokens")
    norm: str = key(GPTConfig.norm, one_of("layernorm", "rmsnorm"), "the blocks' and the final norm: "
                                                                   "'rmsnorm' has no mean and no bias")
    norm_eps: float = key(GPTConfig.norm_eps, positive, "the norms' epsilon (Llama: 1e-5, Qwen3: 1e-6)")
    mlp: str = key(GPTConfig.mlp, one_of("gelu", "swiglu", "relu2"), "'gelu' (GPT-2), 'swiglu' "
                                                                     "(Llama) or 'relu2' (relu(x)^2)")
    mlp_hidden: int | None = key(GPTConfig.mlp_hidden, positive, "the MLP's hidden width; None: 4 * n_embd, "
                                                                 "or 8/3 * n_embd for swiglu")
    qk_norm: bool = key(GPTConfig.qk_norm, None, "RMSNorm each head's queries and keys (Qwen3)")
    n_kv_head: int | None = key(GPTConfig.n_kv_head, positive, "grouped-query attention: key/value heads, "
                                                               "must divide n_head; None: n_head")
    tie_embeddings: bool = key(GPTConfig.tie_embeddings, None, "the output layer shares the token "
                                                               "embedding's weights (GPT-2)")
    logit_softcap: float | None = key(GPTConfig.logit_softcap, positive, "logits = c * tanh(logits / c); "
                                                                         "None: none")

    def problems(self) -> list[str]:
        found = []
        if self.n_embd % self.n_head:
            found.append(f"n_head={self.n_head}: must divide n_embd={self.n_embd}")
        elif self.pos_embedding == "rope" and self.n_embd // self.n_head % 2:
            found.append(f"pos_embedding='rope': needs an even head size, not n_embd / n_head = "
                         f"{self.n_embd // self.n_head}")
        if self.n_kv_head is not None and self.n_head % self.n_kv_head:
            found.append(f"n_kv_head={self.n_kv_head}: must divide n_head={self.n_head}")
        return found

    def gpt_config(self, **given) -> GPTConfig:
        """The GPTConfig of these keys: each of its fields that is a key here, with given on top (vocab
        sizes)."""
        ours = {f.name for f in dataclasses.fields(self)}
        return GPTConfig(**{**{f.name: getattr(self, f.name) for f in dataclasses.fields(GPTConfig)
                               if f.name in ours}, **given})


# the keys that say what a trained model is: a resumed run may not change them
ARCH_KEYS = tuple(f.name for f in dataclasses.fields(ModelKeys) if f.name != "dropout")
# those that say how big it is, which the scripts print as sizes; the others say which architecture it is
SIZE_KEYS = ("block_size", "n_layer", "n_head", "n_embd")


def not_gpt2(config: GPTConfig) -> list[str]:
    """'key=value' of each architecture key, sizes aside, in which config is not GPT-2 (GPTConfig's
    defaults): [] for GPT-2 of any size."""
    return [f"{k}={getattr(config, k)!r}" for k in ARCH_KEYS
            if k not in SIZE_KEYS and getattr(config, k) != getattr(GPTConfig, k)]


# -----------------------------------------------------------------------------
# devices, dtypes, peak FLOPs

# Dense bf16 (fp16 where the chip has no bf16) tensor-core peaks in FLOP/s from the vendors' datasheets,
# matched against torch.cuda.get_device_name(). More specific names first: "H100 PCIe" must win over "H100".
PEAK_FLOPS = {
    "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "GH200": 989e12, "B200": 2250e12,
    "A100": 312e12, "A10G": 70e12, "A10": 125e12, "L40S": 362e12, "L4": 121e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12, "T4": 65e12,
}


def peak_flops(device: torch.device, peak_tflops: float | None = None) -> float | None:
    """The device's peak FLOP/s: peak_tflops when given, else PEAK_FLOPS by GPU name; None when unknown
    (CPUs)."""
    if peak_tflops:
        return peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast can pay off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: assume not
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda > mps > cpu; any other name is taken as it is."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")


def resolve_dtype(name: str, device: torch.device, n_embd: int | None = None) -> torch.dtype:
    """'auto': bf16 on GPUs that have it, else fp16; on CPUs with native bf16, bf16 autocast for models at
    least 128 wide (n_embd), where it measured 1.2-2x faster than fp32 (docs/performance.md); fp32
    otherwise."""
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
        raise UsageError("dtype=float16 needs a CUDA device (it trains with a GradScaler); use bfloat16 or "
                         "float32")
    return dtypes[name]


def device_problems(device: str, dtype: str) -> list[str]:
    """What stops a device and dtype, both well-formed names (configurator's device_name and dtype_name), from
    working on this machine, each with its fix; [] when they work. Part of the config dataclasses' checks."""
    found = []
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if count == 0:
            why = "no CUDA GPU found" if torch.version.cuda else "this torch is built without CUDA"
            found.append(f"device={device!r}: CUDA is not available here ({why}): use --device=cpu or auto")
        elif index >= count:
            found.append(f"device={device!r}: this machine has {count} CUDA device(s): use cuda:0 to "
                         f"cuda:{count - 1}")
    elif device == "mps" and not torch.backends.mps.is_available():
        found.append("device='mps': MPS is not available here (it needs Apple silicon): use --device=cpu "
                     "or auto")
    if dtype == "float16" and resolve_device(device).type != "cuda":
        found.append("dtype='float16': needs a CUDA device (it trains with a GradScaler): use bfloat16 or "
                     "float32")
    return found


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision in dtype on device; fp32 is no autocast at all. A fresh one for each use, or one
    reused."""
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()


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


def time_linear(x: torch.Tensor, w: torch.Tensor) -> float:
    """Seconds F.linear(x, w) takes, the device's queue drained before and after."""
    sync = torch.cuda.synchronize if w.device.type == "cuda" else lambda: None
    sync()
    t0 = time.perf_counter()
    F.linear(x, w)
    sync()
    return time.perf_counter() - t0


@torch.no_grad()
def choose_weight_layout(model: GPT) -> tuple[str, dict[str, float]]:
    """Store every Linear weight of model in the memory layout that decodes faster here; return its name and
    each layout's time (s) for one token through the head.
    Decoding multiplies one token by each weight, and how fast that runs depends on the layout in ways
    that differ by CPU and dtype (on an AMD EPYC, fp32 ran faster stored as (in, out), HF's Conv1D
    layout, and bf16 in nn.Linear's (out, in); bench.py --mode=generate prints both times). So the head
    is timed both ways, here. Values, names and tying stay as they are; only strides change."""
    head = model.lm_head.weight
    x = torch.randn(1, head.size(1), dtype=head.dtype, device=head.device)
    layouts = {"(out, in)": head.contiguous(), "(in, out)": head.t().contiguous().t()}
    best = {name: float("inf") for name in layouts}
    for _ in range(5):  # in turns, so that a busy moment hurts neither
        for name, w in layouts.items():
            best[name] = min(best[name], time_linear(x, w))
    choice = min(best, key=best.get)
    del layouts
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            w = m.weight.data
            m.weight.data = w.t().contiguous().t() if choice == "(in, out)" else w.contiguous()
    return choice, best


# -----------------------------------------------------------------------------
# memory: what one training process holds, against what its device has free

@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training process holds at its peak, by part (estimate_memory)."""
    weights: int  # fp32 master weights (this process's shard under FSDP) and autocast's copies of them
    grads: int
    optimizer: int
    activations: int  # what a micro-batch's forward keeps for the backward, and the loss's backward at work
    batch: int  # the micro-batch and the next one, fetched while the device works

    @property
    def total(self) -> int:
        return sum(dataclasses.astuple(self))

    def __str__(self) -> str:
        parts = ", ".join(f"{f.name} {human_bytes(getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"~{human_bytes(self.total)} a process ({parts})"


def human_bytes(n: int) -> str:
    """Bytes as GiB, or MiB below one GiB (a decimal below 10 MiB)."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.{0 if n >= 10 * 2**20 else 1}f} MiB"


OPTIMIZER_STATES = {"adamw": 2, "muon": 1}  # fp32 tensors the size of a parameter: two moments; a momentum


def estimate_memory(model: GPT, batch_size: int, device: torch.device, dtype: torch.dtype,
                    optimizer: str = "adamw", checkpointing: bool = False, shards: int = 1, ddp: bool = False,
                    accum: int = 1) -> MemoryEstimate:
    """What one process holds at the peak of training model (real, or a skeleton on the meta device) on
    micro-batches of batch_size x block_size in autocast dtype: the backward of a micro-batch, when the
    gradients of the micro-steps before, the optimizer state and all the forward kept are there at once.
    shards: FSDP's processes (1: unsharded); ddp: DDP, whose buckets hold a second copy of the gradients;
    accum: micro-steps per step (FSDP keeps whole gradients between them).
    It counts tensors as eager PyTorch keeps them (compiled code keeps as much or less); not what a process
    holds before (libraries, the CUDA context: free_memory's figure leaves them out already), nor freed memory
    an allocator keeps for reuse: glibc keeps freed blocks under 32 MiB, which raised the resident peak of
    tests/test_memory.py's runs, whose tensors are all that small, to about 1.5x the estimate (2-core AMD
    EPYC, torch 2.13.0 CPU, 2026-12-06). Those tests compare it with the peak of train.py's loop on a CPU,
    test_cuda.py with CUDA's."""
    n = sum(p.numel() for p in model.parameters())  # tied weights once
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    a = torch.finfo(dtype).bits // 8  # bytes of an activation (4: fp32, no autocast)
    weights = 4 * n // shards
    if a != 4:  # autocast's copy of each matmul's weight, kept for the backward
        weights += a * sum(m.weight.numel() for m in linears)
    if shards > 1:  # FSDP gathers the root's parameters (embeddings, head) and a block's at a time
        blocks = model.transformer.h
        weights += 4 * (n - sum(p.numel() for p in blocks.parameters()) +
                        sum(p.numel() for p in blocks[0].parameters()))
    grads = 4 * n // (shards if accum == 1 else 1) * (2 if ddp else 1)
    opt = model.configure_optimizers(0.0, 1e-3, (0.9, 0.95), optimizer)
    parts = getattr(opt, "optimizers", {"adamw": opt})  # model.Optimizers, or AdamW alone
    states = sum(OPTIMIZER_STATES[name] * p.numel()
                 for name, o in parts.items() for g in o.param_groups for p in g["params"])
    tokens = batch_size * model.config.block_size
    activations = tokens * sum(activation_bytes_per_token(model, device, a, checkpointing))
    return MemoryEstimate(weights=weights, grads=grads, optimizer=4 * states // shards,
                          activations=activations, batch=2 * 8 * batch_size * (model.config.block_size + 1))


def activation_bytes_per_token(model: GPT, device: torch.device, a: int,
                               checkpointing: bool) -> tuple[int, int]:
    """(kept, work): bytes per token of what a micro-batch's forward keeps for the backward (the tensors
    autograd saves, as the tests count them), and of what the backward adds at its peak, the loss's gradient.
    a: bytes of an activation under autocast (4: fp32). With checkpointing, each block keeps its input only,
    and one block at a time recomputes the rest in the backward."""
    c, drop = model.config, model.config.dropout > 0
    s = 4 if device.type == "cpu" else a  # attention computes in fp32 on a CPU under autocast (model.py)
    # with dropout, attention on a CPU (and on MPS at all) takes the math path: three (T, T) matrices a head
    math_attention = device.type == "mps" or (device.type == "cpu" and drop)
    mask = 1 if device.type == "cuda" else a  # a dropout mask: bool on CUDA, else of its input's dtype

    # a norm keeps its fp32 input and 1/std (LayerNorm also its mean; RMSNorm the normalized input too)
    norm = 4 * c.n_embd + 8 if c.norm == "layernorm" else 8 * c.n_embd + 4

    def block_bytes(block: torch.nn.Module) -> int:
        """What one block keeps, from its modules: model.py's Block, its .attn and .mlp."""
        linears = [m for m in block.modules() if isinstance(m, torch.nn.Linear)]
        attn = [m.out_features for m in block.attn.modules() if isinstance(m, torch.nn.Linear)]
        mlp = [m.out_features for m in block.mlp.modules() if isinstance(m, torch.nn.Linear)]
        kept = 2 * norm  # ln_1 and ln_2
        kept += a * sum(m.in_features for m in linears)  # each matmul's input, in the autocast dtype
        hs, qk = block.attn.head_size, block.attn.n_head + block.attn.n_kv_head  # qk: heads of q and k
        if s != a and c.pos_embedding == "rope" and not c.qk_norm:
            kept += s * (attn[0] - hs * qk)  # once rotated, only v's fp32 copy is kept, not q's and k's
        else:  # q, k, v: the output of c_attn, or its fp32 copies
            kept += s * (sum(attn) - attn[-1])
        # q and k as attention gets them where they are new tensors (QK-norm's output, or RoPE's rotation);
        # QK-norm also keeps its normalized input and 1/rms
        kept += s * hs * qk * (c.qk_norm or c.pos_embedding == "rope")
        kept += (s * hs * qk + 4 * qk) * c.qk_norm
        kept += a * (sum(mlp) - mlp[-1])  # the MLP's hidden layer into its nonlinearity (ReLU^2: relu's)
        kept += a * c.mlp_width * (c.mlp == "swiglu")  # and silu(gate), beside the gate and up halves
        if drop:
            kept += mask * c.n_embd * sum(isinstance(m, torch.nn.Dropout) for m in block.modules())
        if math_attention:
            kept += 3 * 4 * block.attn.n_head * c.block_size
        else:  # its log-sum-exp; on a CPU under autocast, also its own fp32 output beside c_proj's cast
            kept += 4 * block.attn.n_head + (4 * c.n_embd if s != a else 0)
        return kept

    per_block = [block_bytes(b) for b in model.transformer.h]
    V, C = c.vocab_size, c.n_embd
    # the head keeps ln_f's, lm_head's input and cross_entropy's fp32 log-probabilities; the embeddings their
    # dropout mask (fp32 on a CPU)
    kept = norm + a * C + 4 * V + ((1 if device.type == "cuda" else 4) * C if drop else 0)
    kept += a * V * (c.logit_softcap is not None)  # the softcap's tanh keeps its output
    kept += len(per_block) * 4 * C if checkpointing else sum(per_block)
    # the loss's backward: the logits the caller still holds, and the fp32 gradients of the log-probabilities
    # and of the logits at once; with checkpointing, the block being recomputed too
    work = a * V + 8 * V + (max(per_block) if checkpointing else 0)
    return kept, work


def available_ram() -> int | None:
    """Bytes of RAM the system can give without swapping (/proc/meminfo's MemAvailable), or where that file is
    missing its free pages (which leave out the file cache it could drop); None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # in kB
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # an unknown name (macOS), or no sysconf (Windows)
        return None


# a container's memory limit and use: cgroup v2, then v1, with the file cache that can be dropped
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
                 "inactive_file"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                 "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"))


def cgroup_room() -> int | None:
    """Bytes a container's memory limit leaves (its limit less its use, the droppable file cache not counted
    as used), or None where no limit is set: above it, the OS kills the process whatever RAM is free."""
    for limit_path, usage_path, stat_path, cache_key in CGROUP_FILES:
        try:
            with open(limit_path, encoding="utf-8") as f:
                limit = f.read().strip()
            if limit == "max" or int(limit) >= 2**60:  # no limit
                return None
            with open(usage_path, encoding="utf-8") as f:
                usage = int(f.read())
            with open(stat_path, encoding="utf-8") as f:
                cache = dict(line.split()[:2] for line in f if line.strip()).get(cache_key, "0")
            return int(limit) - usage + int(cache)
        except (OSError, ValueError):
            continue
    return None


def free_memory(device: torch.device) -> int | None:
    """Bytes this process can still take on device: CUDA's free memory; elsewhere the system's available RAM
    (MPS shares it), within a container's limit; None where unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    known = [b for b in (available_ram(), cgroup_room()) if b is not None]
    return min(known) if known else None


# -----------------------------------------------------------------------------
# the dataset on disk: data/<name>/{train,val}.bin and meta.json

def open_data(data_dir: str, block_size: int) -> tuple[dict[str, np.ndarray], dict]:
    """({'train', 'val'} memmaps, meta) of a prepared dataset, each split checked to hold more than
    block_size."""
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


def get_batch(data: np.ndarray, offsets: np.ndarray, block_size: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets (B, block_size) starting at offsets, gathered in one numpy indexing
    op."""
    rows = torch.from_numpy(data[offsets[:, None] + np.arange(block_size + 1)].astype(np.int64))
    if device.type == "cuda":  # pinned memory lets the copy overlap with compute
        rows = rows.pin_memory().to(device, non_blocking=True)
    else:
        rows = rows.to(device)
    return rows[:, :-1], rows[:, 1:]


# -----------------------------------------------------------------------------
# checkpoints and models

CHECKPOINT_KEYS = {"model", "model_args", "iter_num", "best_val_loss", "config", "meta", "checksum"}


def checksum(obj) -> str:
    """SHA-256 of a checkpoint's contents: every tensor's bytes and every other value's repr, in order.
    torch's zip reader checks no CRC, so without it a flipped byte inside a weight would load silently."""
    h = hashlib.sha256()

    def visit(x) -> None:
        if isinstance(x, torch.Tensor):
            h.update(f"{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        elif isinstance(x, dict):
            for k, v in x.items():
                h.update(repr(k).encode())
                visit(v)
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__}{len(x)}".encode())
            for v in x:
                visit(v)
        else:
            h.update(repr(x).encode())
    visit(obj)
    return h.hexdigest()


def save_checkpoint(obj: dict, path: str) -> None:
    """Write atomically, with a checksum: a crash or kill mid-write leaves the previous file at path
    intact."""
    obj = {k: v for k, v in obj.items() if k != "checksum"}
    obj["checksum"] = checksum(obj)
    with long_call(f"writing {path}"), atomic_write(path) as f:
        torch.save(obj, f)


def _runs_near(path: str) -> str:
    """' did you mean --out_dir=X?' for the folders beside path's that hold a checkpoint of its name and are
    named like its folder (a typo, or the default out_dir where the run went to out-shakespeare-char), else
    ''."""
    folder, name = os.path.split(os.path.normpath(path))
    parent, run = os.path.split(folder)
    if not run or not os.path.isdir(parent or "."):
        return ""
    runs = [d for d in os.listdir(parent or ".")
            if d != run and os.path.isfile(os.path.join(parent, d, name))]
    return did_you_mean([f"--out_dir={shlex.quote(os.path.join(parent, d))}" for d in closest(run, runs)])


def load_checkpoint(path: str, device: torch.device | str = "cpu", verify: bool = True) -> dict:
    """The one checkpoint loader. Loads tensors and plain data only (weights_only). verify=False skips the
    checksum and maps the file instead of reading it: a cheap look at iter_num, config and meta."""
    if not os.path.isfile(path):
        near = _runs_near(path)
        raise UsageError(f"no checkpoint at {path}:{near} {'Else ' if near else ''}train one first, or point "
                         f"out_dir at the run to load")
    try:
        with long_call(f"reading {path}"):
            ckpt = torch.load(path, map_location=device, weights_only=True, mmap=not verify)
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        raise UsageError(f"checkpoint {path} is unreadable ({reason})") from None
    missing = CHECKPOINT_KEYS - set(ckpt if isinstance(ckpt, dict) else {})
    if missing:
        raise UsageError(f"{path} is not a checkpoint of this codebase: it lacks {sorted(missing)}")
    stored = ckpt.pop("checksum")
    with long_call(f"checking {path}"):
        intact = not verify or checksum(ckpt) == stored
    if not intact:
        raise UsageError(f"checkpoint {path} is damaged (its contents do not match their checksum): "
                         f"use best.pt or a copy")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> GPT:
    model = GPT(GPTConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    return model


def load_pretrained(init_from: str, dropout: float | None = None) -> GPT:
    """OpenAI's GPT-2 by name or a local HF directory; a bad name, directory or download is a UsageError."""
    try:
        with long_call(f"loading {init_from}"):
            return GPT.from_pretrained(init_from, None if dropout is None else {"dropout": dropout})
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"init_from='{init_from}': {e}") from None


# the model_type of each HF config.json that GPT.from_pretrained loads
HF_MODEL_TYPES = ("gpt2", "llama", "qwen3")
# how each script loads a run's out_dir: init_from='resume', which is every script's default but train.py's
RUN_ARGS = {"train.py": "--init_from=resume --out_dir={}", "sample.py": "--out_dir={}",
            "eval.py": "--out_dir={}"}


def init_from_problem(init_from: str, script: str) -> str | None:
    """What stops script ('train.py', 'sample.py' or 'eval.py') from loading a model from init_from, with the
    fix, or None. Reads at most a config.json (as JSON: no transformers), so each script checks it with its
    config, before it reads data or writes anything. A run's out_dir is no model to load (a natural mix-up
    with --out_dir): it is answered with the arguments that load it."""
    names = ("scratch", "resume", *PRETRAINED) if script == "train.py" else ("resume", *PRETRAINED)
    if init_from in names:
        return None
    if not os.path.isdir(init_from):
        return (f"init_from={init_from!r}: no such folder, and not one of {', '.join(names)};"
                f"{did_you_mean(closest(init_from, names)) or ' give one of them or a HF model directory'}")
    use = f"use python {script} {RUN_ARGS[script].format(shlex.quote(init_from))}"
    held = [name for name in RUN_FILES[:3] if os.path.isfile(os.path.join(init_from, name))]
    if held:
        return f"init_from={init_from!r} is a training run's out_dir (it holds {held[0]}): {use}"
    path = os.path.join(init_from, "config.json")
    if not os.path.isfile(path):
        return (f"init_from={init_from!r}: {init_from} is neither a run of train.py (no ckpt.pt) nor a HF "
                f"model directory (no config.json)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"init_from={init_from!r}: {path} is unreadable ({e})"
    if not isinstance(config, dict) or "model_type" not in config:  # ours: a run that saved no checkpoint yet
        return f"init_from={init_from!r} is a training run's out_dir (it holds config.json): {use}"
    if config["model_type"] not in HF_MODEL_TYPES:
        return (f"init_from={init_from!r}: a HF model of model_type {config['model_type']!r}; this codebase "
                f"loads model_type {', '.join(map(repr, HF_MODEL_TYPES))}")
    # GPT-2 models speak GPT-2's BPE; a Llama or Qwen3 model's tokenizer is its own, unless it is an export
    # of this codebase's, whose meta.json says which of ours it is
    if config["model_type"] != "gpt2" and not os.path.isfile(os.path.join(init_from, "meta.json")):
        return (f"init_from={init_from!r}: a HF {config['model_type']} model whose tokenizer this codebase "
                f"does not read ({hf_tokenizer(init_from)}); it reads the tokenizer of a model exported by "
                f"eval.py --mode=export from its meta.json")
    return None


def hf_tokenizer(folder: str) -> str:
    """What says which tokenizer a HF model directory holds: its tokenizer_config.json's tokenizer_class,
    else the tokenizer files it holds."""
    path = os.path.join(folder, "tokenizer_config.json")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        with open(path, encoding="utf-8") as f:
            if name := json.load(f).get("tokenizer_class"):
                return f"tokenizer_config.json names {name}"
    files = [name for name in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt")
             if os.path.isfile(os.path.join(folder, name))]
    return f"it holds {', '.join(files)}" if files else "it holds no tokenizer files"


def load_model(init_from: str, out_dir: str = "out",
               ckpt_name: str = "ckpt.pt") -> tuple[GPT, Tokenizer, str]:
    """The model (on the CPU, in eval mode), its tokenizer, and a short description of where it came from:
    out_dir/ckpt_name for init_from='resume', else OpenAI's GPT-2 or a HF directory (sample.py and eval.py). A
    checkpoint's tokenizer is its "meta" (the dataset's meta.json, saved by train.py); GPT-2 models use GPT-2
    BPE."""
    if init_from == "resume":
        path = os.path.join(out_dir, ckpt_name)
        ckpt = load_checkpoint(path)
        model, tokenizer = model_from_checkpoint(ckpt), Tokenizer.from_meta(ckpt["meta"])
        source = f"{path} (iter {ckpt['iter_num']}, best val loss {ckpt['best_val_loss']:.4f})"
    else:
        model, source = load_pretrained(init_from), init_from
        meta_path = os.path.join(init_from, "meta.json")  # eval.py's export of a run carries its tokenizer
        if os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                tokenizer = Tokenizer.from_meta(json.load(f))
        else:
            tokenizer = Tokenizer.gpt2()
        if model.config.tokenizer_vocab_size is None and model.config.vocab_size > tokenizer.vocab_size:
            # rows past GPT-2's vocab are never sampled
            model.config.tokenizer_vocab_size = tokenizer.vocab_size
    return model.eval(), tokenizer, source


# what each HF class computes, in this codebase's keys: an export is written as the class whose values the
# model has (HF_CLASSES), and a model of none of them is refused, naming its keys that differ
HF_SHAPES = {"gpt2": {"pos_embedding": "learned", "norm": "layernorm", "mlp": "gelu", "qk_norm": False,
                      "logit_softcap": None},
             "llama": {"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": False,
                       "logit_softcap": None},
             "qwen3": {"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": True,
                       "logit_softcap": None, "bias": False}}
HF_CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def hf_model_type(config: GPTConfig) -> str:
    """The model_type of the HF class that computes what config does: 'gpt2', 'llama' or 'qwen3'; else a
    UsageError naming the keys that no HF class of these computes as this model does."""
    near = "gpt2" if config.pos_embedding == "learned" else "qwen3" if config.qk_norm else "llama"
    shape = HF_SHAPES[near]
    differ = [f"{k}={getattr(config, k)!r}" for k, v in shape.items() if getattr(config, k) != v]
    if near == "gpt2":  # GPT-2's MLP is 4x wide, and it has no grouped-query attention
        differ += [f"mlp_hidden={config.mlp_hidden!r}"] * (config.mlp_width != 4 * config.n_embd)
        differ += [f"n_kv_head={config.n_kv_head!r}"] * (config.kv_heads != config.n_head)
    if differ:
        want = ", ".join(f"{k}={v!r}" for k, v in shape.items())
        raise UsageError(f"cannot export {', '.join(differ)}: no HF class computes it the same way (the "
                         f"nearest, {HF_CLASSES[near]}, needs {want})")
    return near


def hf_model(model: GPT, **config_args) -> torch.nn.Module:
    """model as the HF transformers model that computes the same logits (hf_model_type), on the CPU in fp32,
    its config given config_args on top (token ids for generation). Padded vocab rows are left out, so that
    HF's vocab_size is the tokenizer's. GPT-2 always has biases: bias=False is written as zeros."""
    import transformers
    c, V = model.config, model.config.real_vocab_size
    model_type = hf_model_type(c)
    if model_type == "gpt2":
        hf_config = transformers.GPT2Config(
            vocab_size=V, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
            activation_function="gelu_new", layer_norm_epsilon=c.norm_eps, resid_pdrop=c.dropout,
            embd_pdrop=c.dropout, attn_pdrop=c.dropout, tie_word_embeddings=c.tie_embeddings, **config_args)
    else:
        hf_config = getattr(transformers, {"llama": "LlamaConfig", "qwen3": "Qwen3Config"}[model_type])(
            vocab_size=V, max_position_embeddings=c.block_size, hidden_size=c.n_embd,
            intermediate_size=c.mlp_width, num_hidden_layers=c.n_layer, num_attention_heads=c.n_head,
            num_key_value_heads=c.kv_heads, head_dim=c.n_embd // c.n_head, rms_norm_eps=c.norm_eps,
            rope_theta=c.rope_theta, attention_bias=c.bias, attention_dropout=c.dropout,
            tie_word_embeddings=c.tie_embeddings, **({"mlp_bias": c.bias} if model_type == "llama" else {}),
            **config_args)
    hf = getattr(transformers, HF_CLASSES[model_type])(hf_config)
    theirs, names = hf.state_dict(), hf_names(c, model_type)
    weights = {n: torch.zeros_like(p) for n, p in theirs.items() if n.endswith(".bias")}  # GPT-2, bias=False
    for k, w in model.state_dict().items():
        w = w.detach().to("cpu", torch.float32)
        w = w.t() if model_type == "gpt2" and k.endswith(HF_TRANSPOSED) else w
        w = w[:V] if k in ("transformer.wte.weight", "lm_head.weight") else w
        pieces = names.get(k, [k])
        weights.update(zip(pieces, w.split([theirs[n].size(0) for n in pieces])))
    hf.load_state_dict({n: w.contiguous() for n, w in weights.items()}, strict=True)
    return hf.eval()


def encode_prompt(tokenizer: Tokenizer, text: str, vocab_size: int,
                  key: str = "start") -> tuple[list[int], int]:
    """(ids fed to the model, how many leading ids are not part of the printed text) of the prompt given as
    config key `key` (sample.py's start, train.py's eval_sample_prompt).
    An empty prompt starts from <|endoftext|> with BPE (the start of a fresh document, as training data has
    it), which is not printed; the char tokenizer has no such token, so an empty prompt is an error there."""
    if not text:
        if tokenizer.eot_token is None:
            raise UsageError("the prompt is empty and a char vocabulary has no <|endoftext|> token to start "
                             f"from: give a prompt, e.g. --{key}=$'\\n' (a newline)")
        return [tokenizer.eot_token], 1
    try:
        ids = tokenizer.encode(text)
    except DataError as e:  # characters outside a char vocabulary, listed
        hint = ""
        if "\\" in text:
            hint = " (a shell passes \\n as two characters: write a newline as $'\\n' in bash)"
        raise UsageError(f"cannot encode the prompt {key}={text!r}: {e}{hint}") from None
    if max(ids) >= vocab_size:
        raise UsageError(f"the prompt has token id {max(ids)}, past this model's vocab_size of {vocab_size}")
    return ids, 0


SEPARATOR = "-" * 15  # printed after every sample (sample.py, and train.py's eval samples)


# -----------------------------------------------------------------------------
# a training run's out_dir: one run owns it, one process writes it at a time

RUN_FILES = ("ckpt.pt", "best.pt", "metrics.jsonl", "config.json")  # what a run writes into its out_dir


def check_new_run(out_dir: str, overwrite: bool) -> None:
    """Refuse to start a new run in an out_dir that holds another run's checkpoint, unless overwrite. Reads
    only."""
    held = [name for name in RUN_FILES[:3] if os.path.exists(os.path.join(out_dir, name))]
    if not held or overwrite:
        return
    what = f"{held[0]} of a run that saved no checkpoint"
    if held[0] != "metrics.jsonl":
        ckpt = load_checkpoint(os.path.join(out_dir, held[0]), verify=False)
        what = f"{held[0]} at iter {ckpt['iter_num']}, best val loss {ckpt['best_val_loss']:.4f}"
    raise UsageError(f"{out_dir} holds another run ({what}): continue it with --init_from=resume, choose "
                     f"another --out_dir, or replace it with --overwrite=True")


@contextlib.contextmanager
def claim_out_dir(out_dir: str, new_run: bool, overwrite: bool) -> Iterator[None]:
    """Hold out_dir for this process, for a new run (checked by check_new_run) or a resumed one. A second run
    on it is refused, naming the PID that holds it. flock is released by the OS when the process dies, so a
    killed run leaves no stale lock; one that ends removes its lock file, and the folders it made if it
    wrote nothing into them, so a refused run leaves the disk as it was."""
    made, folder = [], os.path.abspath(out_dir)
    while not os.path.exists(folder):  # what makedirs creates, innermost first
        made.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(out_dir, exist_ok=True)
    try:
        yield from _hold(out_dir, new_run, overwrite)
    finally:
        for folder in made:
            try:
                os.rmdir(folder)  # only if empty: the run wrote nothing there
            except OSError:
                break


def _hold(out_dir: str, new_run: bool, overwrite: bool) -> Iterator[None]:
    """claim_out_dir's lock on out_dir, which exists."""
    path = os.path.join(out_dir, ".lock")
    with open(path, "a+", encoding="utf-8") as f:
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(f.fileno()).st_ino != os.stat(path).st_ino:
                raise BlockingIOError  # its holder removed the file as we opened it: another run is starting
        except (BlockingIOError, FileNotFoundError):
            f.seek(0)
            pid = f.read().strip() or "unknown"
            raise UsageError(f"{out_dir} is in use by another run (PID {pid}): wait for it to end, or choose "
                             f"another --out_dir") from None
        try:
            if new_run:
                check_new_run(out_dir, overwrite)
            f.truncate(0)
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            os.remove(path)  # while still holding it: a run that opened this file sees it gone, and stops


def clear_run(out_dir: str) -> None:
    """Remove a run's files (--overwrite=True): the new run replaces the old one as a whole, never mixed."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))


def metric_records(lines: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """(line, record) for each line of a metrics.jsonl that holds a record with an int iter; a line that is
    not one (being written right now, or cut by a crash) is skipped."""
    for line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and isinstance(r.get("iter"), int):
            yield line, r


def truncate_metrics(path: str, iter_num: int) -> None:
    """Keep what a run resumed at iter_num does not log again: records before it, and its train record (the
    eval at iter_num is replayed). Lines that are not JSON records (cut by a crash) go too."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = [line if line.endswith("\n") else line + "\n" for line, r in metric_records(lines)
            if r["iter"] < iter_num or (r["iter"] == iter_num and "val_loss" not in r)]
    if kept != lines:
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.writelines(kept)


def prepare_out_dir(cfg, iter_num: int) -> None:
    """Make out_dir ready for this run's writes (under its lock): a resumed run drops the metrics it will log
    again; --overwrite=True clears the old run as a whole. Then the resolved config goes to config.json.
    cfg: train.py's TrainConfig."""
    if cfg.init_from == "resume":
        truncate_metrics(os.path.join(cfg.out_dir, "metrics.jsonl"), iter_num)
    elif cfg.overwrite:
        clear_run(cfg.out_dir)
    with atomic_write(os.path.join(cfg.out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=1)


# -----------------------------------------------------------------------------
# a training run's metrics.jsonl (and wandb), its processes (torchrun) and its stop signals

def clock(seconds: float) -> str:
    """h:mm:ss"""
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


class MetricsLog:
    """out_dir/metrics.jsonl (one JSON record a line) and, with wandb_log, a wandb run. Only the master
    process logs; close() releases both."""

    def __init__(self, cfg, master: bool):
        """cfg: train.py's TrainConfig (out_dir, wandb_log, wandb_project, wandb_run_name)."""
        path = os.path.join(cfg.out_dir, "metrics.jsonl")
        # appends: a resumed run's file lost what it replays (truncate_metrics); a new run has none, or
        # cleared it (--overwrite)
        self.file = open(path, "a", encoding="utf-8") if master else None
        self.wandb, self.wandb_run = None, None
        if cfg.wandb_log and master:
            import wandb  # optional dependency, imported only when asked for
            self.wandb = wandb
            self.wandb_run = wandb.init(project=cfg.wandb_project, name=cfg.wandb_run_name,
                                        config=dataclasses.asdict(cfg))

    def __call__(self, record: dict) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.wandb_run is not None:
            if "samples" in record:  # text goes to wandb as a table, one sample a row
                table = self.wandb.Table(columns=["sample"], data=[[text] for text in record["samples"]])
                record = {**record, "samples": table}
            self.wandb_run.log(record, step=record["iter"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def local_device(device: torch.device) -> torch.device:
    """The device of this process: under torchrun, on CUDA, the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init_distributed(device: torch.device) -> torch.device:
    """Join the torchrun process group; on CUDA each process takes the GPU of its LOCAL_RANK."""
    device = local_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def leave_distributed(exc_type, exc, tb) -> None:
    """Exit hook: leave the process group, after a barrier when the run ended well."""
    if exc_type is None:
        # gloo can abort a process ("terminate called without an active exception") that tears down its
        # group while a peer is still busy, e.g. rank 0 writing the last checkpoint
        dist.barrier()
    dist.destroy_process_group()


def shard(model: GPT, device: torch.device, dtype: torch.dtype) -> None:
    """FSDP2, in place: each block, then the rest (embeddings with the tied head, the final norm) at the root,
    sharded over the torchrun processes; parameters become DTensors, and gradients and optimizer state follow.
    On CUDA in bf16, FSDP computes in bf16 and reduces gradients in fp32 over fp32 master weights."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    bf16 = device.type == "cuda" and dtype == torch.bfloat16
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None,
                                  reduce_dtype=torch.float32 if bf16 else None)
    for block in model.transformer.h:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def checkpoint_activations(model: GPT) -> None:
    """In place: each block recomputes its activations in the backward pass instead of keeping them from the
    forward, at the cost of running each block's forward again; losses and gradients are the same."""
    for block in model.transformer.h:
        block.forward = functools.partial(torch.utils.checkpoint.checkpoint, block.forward,
                                          use_reentrant=False)


def is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def _param_names(model: torch.nn.Module, optimizer) -> list[str]:
    """The names of optimizer's parameters, in the order optimizer.state_dict() numbers them."""
    names = {p: n for n, p in model.named_parameters()}
    return [names[p] for group in optimizer.param_groups for p in group["params"]]


def gathered_state(model: torch.nn.Module, optimizer) -> tuple[dict, dict]:
    """(model, optimizer) state dicts of a sharded model as whole tensors on the CPU, in the format of the
    plain model's state_dict() and optimizer.state_dict(), so that every script reads an FSDP run's
    checkpoint. Collective: every process calls it; all but rank 0 get empty dicts."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    optim_state = get_optimizer_state_dict(model, optimizer, options=options)
    if not optim_state:
        return model_state, optim_state
    index = {name: i for i, name in enumerate(_param_names(model, optimizer))}
    return model_state, {"state": {index[n]: v for n, v in optim_state["state"].items()},
                         "param_groups": [{**g, "params": [index[n] for n in g["params"]]}
                                          for g in optim_state["param_groups"]]}


def load_sharded_optimizer(model: torch.nn.Module, optimizer, state: dict) -> None:
    """optimizer.load_state_dict for a sharded model: state (whole tensors, as gathered_state writes it, or a
    one-process run) is cut into this process's shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    names = _param_names(model, optimizer)
    by_name = {"state": {names[i]: v for i, v in state["state"].items()},
               "param_groups": [{**g, "params": [names[i] for i in g["params"]]}
                                for g in state["param_groups"]]}
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))


def any_process(flag: bool, device: torch.device) -> bool:
    """flag on any process, so that all of them stop together (the others would hang in the next
    all-reduce)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor(float(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class Interrupted(KeyboardInterrupt):
    """A stop was requested in the middle of long work (an evaluation): abandon it. Where nothing catches it
    (eval_only has nothing to save), the program ends as after Ctrl-C: exit 130, no traceback."""


@contextlib.contextmanager
def stop_requests() -> Iterator[list]:
    """While inside, a first SIGTERM or SIGINT is acknowledged at once and appended to the yielded list
    instead of killing the process, so the run can save a checkpoint of the current step and stop; a second
    one raises KeyboardInterrupt, which quits without saving (atomic writes leave the previous checkpoint
    whole). The previous handlers come back on every exit."""
    signalled = []

    def handler(signum, frame) -> None:
        if signalled:
            raise KeyboardInterrupt
        signalled.append(signum)
        print(f"\n{signal.Signals(signum).name} (pid {os.getpid()}): saving a checkpoint of the current "
              f"step, then stopping; send it again to quit at once without saving", file=sys.stderr,
              flush=True)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield signalled
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def progress(iterable, desc: str, total: int | None = None, enabled: bool = True) -> tqdm:
    """A progress bar on stderr for work that may take long. It appears only after 2 s, so short phases stay
    quiet, and in a log file (not a terminal) it is refreshed every 10 s rather than flooding it. Under
    torchrun only rank 0 shows it."""
    enabled = enabled and os.environ.get("RANK", "0") == "0"
    return tqdm(iterable, desc=desc, total=total, disable=not enabled, delay=2, leave=False,
                mininterval=0.5 if sys.stderr.isatty() else 10)


def _report_while(desc: str, start: float, done: threading.Event, delay: float, every: float) -> None:
    wait = delay
    while not done.wait(wait):
        print(f"{desc}: {time.perf_counter() - start:.0f} s so far", file=sys.stderr, flush=True)
        wait = every


@contextlib.contextmanager
def long_call(desc: str, delay: float = 2.0, every: float = 10.0) -> Iterator[None]:
    """Progress for one long call that has no steps to count (a checkpoint write, loading or exporting GPT-2):
    quiet if it ends within delay seconds, else a line on stderr then and every `every` seconds after, and
    one with the total at the end. Rank 0 only, like progress()."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    start, done = time.perf_counter(), threading.Event()
    reporter = threading.Thread(target=_report_while, args=(desc, start, done, delay, every), daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()
        elapsed = time.perf_counter() - start
        if elapsed > delay:
            print(f"{desc}: done in {elapsed:.1f} s", file=sys.stderr, flush=True)


def read_metrics(path: str) -> tuple[list[dict], list[dict]]:
    """(train records, eval records) of a metrics.jsonl, each sorted by iter. A record with a lower iter than
    the one before it starts a resumed run: it replaces what the earlier run logged from that iter on. Lines
    that are not JSON (the one being written right now, or one cut by a crash) are skipped."""
    if not os.path.isfile(path):
        raise UsageError(f"{path} not found: train.py writes it into out_dir")
    runs = {"train": {}, "eval": {}}
    with open(path, encoding="utf-8") as f:
        for _, r in metric_records(f):
            # a resume point: what the earlier run logged after it is superseded
            for records in runs.values():
                for it in [it for it in records if it > r["iter"]]:
                    del records[it]
            if "val_loss" in r or "loss" in r:
                runs["eval" if "val_loss" in r else "train"][r["iter"]] = r
    return tuple([recs[it] for it in sorted(recs)] for recs in (runs["train"], runs["eval"]))


# -----------------------------------------------------------------------------
# HellaSwag: each of the 4 endings is appended to the context with a leading space and scored by the model's
# cross-entropy on the ending's tokens only. acc picks the ending of lowest *summed* loss, acc_norm the one of
# lowest *mean* loss per token (lm-evaluation-harness normalizes by bytes instead). Only the tokenizer's real
# ids compete in the softmax (padded vocab rows are never produced), so a model scores the same here and after
# export.

def check_tokenizer(model: GPT, tokenizer: Tokenizer) -> None:
    # e.g. a small HF dir, which we assume speaks GPT-2's BPE
    if tokenizer.vocab_size > model.config.vocab_size:
        raise UsageError(f"the tokenizer's {tokenizer.vocab_size} ids do not fit the model's vocab of "
                         f"{model.config.vocab_size}: this is not the model's tokenizer")


def candidate_batch(example: dict, tokenizer: Tokenizer,
                    block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (4, T) of the 4 context + ending sequences, right-padded. Targets are -1 except at
    the ending's tokens, so only those are scored. Context and ending are encoded apart, so all 4 share the
    context's tokens. A sequence longer than block_size + 1 (its last token is only a target) loses its
    start."""
    context = tokenizer.encode(example["ctx"], allow_eot=False)
    if not context:
        raise UsageError(f"a HellaSwag example has an empty context: {example}")
    xs, ys = [], []
    for ending in example["endings"]:
        end = tokenizer.encode(" " + ending, allow_eot=False)
        seq = torch.tensor((context + end)[-(block_size + 1):])
        target = seq[1:].clone()  # position p predicts token p + 1
        target[:-len(end)] = -1  # only the ending is scored (all of what is left of it, after a cut)
        xs.append(seq[:-1])
        ys.append(target)
    # padding goes after the end, where causal attention keeps it out of every real token's result
    return pad_sequence(xs, batch_first=True), pad_sequence(ys, batch_first=True, padding_value=-1)


@torch.no_grad()
def score_endings(model: GPT, example: dict, tokenizer: Tokenizer, device: torch.device | str,
                  ctx=contextlib.nullcontext()) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed, mean) cross-entropy of each ending's tokens, shapes (4,), from one forward pass of all 4."""
    x, y = (t.to(device) for t in candidate_batch(example, tokenizer, model.config.block_size))
    with ctx:
        logits, _ = model(x, all_logits=True)
    logits = logits[..., :model.config.real_vocab_size].float()
    # (4, T), 0 where ignored
    loss = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-1, reduction="none")
    total = loss.sum(dim=1)
    return total.cpu(), (total / (y != -1).sum(dim=1)).cpu()


def hellaswag_accuracy(model: GPT, examples: list[dict], tokenizer: Tokenizer, device: torch.device | str,
                       ctx, rank: int = 0, world: int = 1, show_progress: bool = False,
                       should_stop: Callable[[], bool] | None = None) -> dict:
    """{'examples', 'correct', 'correct_norm', 'acc', 'acc_norm'} over examples. Process `rank` of `world`
    scores examples rank, rank + world, ...; with torch.distributed initialized the counts are summed over all
    processes, so every process must call this. Pass the plain model, not a DDP or compiled wrapper (each
    example has its own length, which would recompile). The model's train/eval mode is restored afterwards.
    should_stop() is asked before each example (on every process alike); when true, Interrupted is raised."""
    if tokenizer.kind != "gpt2":
        raise UsageError(f"HellaSwag needs a model with GPT-2's BPE tokenizer, not the {tokenizer.kind} "
                         f"tokenizer")
    check_tokenizer(model, tokenizer)
    was_training = model.training
    model.eval()
    n = correct = correct_norm = 0
    # every process takes the same number of turns, so that should_stop (maybe an all-reduce) pairs up
    bar = progress(range(0, len(examples), world), "hellaswag", enabled=show_progress)
    for base in bar:
        if should_stop is not None and should_stop():
            model.train(was_training)
            raise Interrupted
        i = base + rank  # past the end: a forward pass all the same (sharded models gather in each), unscored
        total, mean = score_endings(model, examples[i % len(examples)], tokenizer, device, ctx)
        if i >= len(examples):
            continue
        n += 1
        correct += total.argmin().item() == examples[i]["label"]
        correct_norm += mean.argmin().item() == examples[i]["label"]
        bar.set_postfix(acc=f"{correct / n:.4f}", acc_norm=f"{correct_norm / n:.4f}", refresh=False)
    model.train(was_training)
    counts = torch.tensor([n, correct, correct_norm], dtype=torch.long, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(counts)
    n, correct, correct_norm = counts.tolist()
    return {"examples": n, "correct": correct, "correct_norm": correct_norm,
            "acc": correct / max(n, 1), "acc_norm": correct_norm / max(n, 1)}
