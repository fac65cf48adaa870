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
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from configurator import (UsageError, check, cli, configure, device_name, dtype_name, key, non_negative,
                          one_of, positive, probability, unwritable)
from core import (ARCH_KEYS, SEPARATOR, Interrupted, MemoryEstimate, MetricsLog, ModelKeys, any_process,
                  autocast, check_new_run, checkpoint_activations, claim_out_dir, clock, device_problems,
                  encode_prompt, estimate_memory, free_memory, gathered_state, get_batch, hellaswag_accuracy,
                  human_bytes, init_distributed, init_from_problem, is_sharded, leave_distributed,
                  load_checkpoint, load_pretrained, load_sharded_optimizer, local_device, maybe_compile,
                  model_from_checkpoint, not_gpt2, open_data, peak_flops, prepare_out_dir, progress,
                  resolve_device, resolve_dtype, save_checkpoint, shard, stop_requests)
from data.common import DataError, Tokenizer, load_hellaswag
from model import GPT, GPTConfig, padded_vocab


@dataclass
class TrainConfig(ModelKeys):
    # the model's keys (block_size, n_layer, n_head, n_embd, dropout, bias, pos_embedding, norm, mlp, ...)
    # come first, from core.ModelKeys, with their defaults (GPT-2 124M) and ranges
    # I/O
    out_dir: str = key("out", None, "a run owns it: a new run is refused where another left a checkpoint")
    overwrite: bool = key(False, None, "True: a new run replaces the one in out_dir whole (checkpoints, "
                                       "metrics)")
    verbose: bool = key(False, None, "also print the whole config (it always goes to out_dir/config.json)")
    eval_interval: int = key(2000, positive, "steps between evals (train and val loss; then a checkpoint)")
    log_interval: int = key(1, positive, "steps between the printed and logged train loss records")
    eval_iters: int = key(200, positive, "batches per split averaged into an eval's loss")
    eval_only: bool = key(False, None, "evaluate once and exit, writing nothing")
    eval_hellaswag: bool = key(False, None, "also HellaSwag accuracy at every eval (BPE data; "
                                            "data/hellaswag/prepare.py)")
    hellaswag_limit: int | None = key(None, positive, "score only the first N of its 10,042 val examples")
    eval_samples: int = key(0, non_negative, "at every eval, print and log N samples of eval_sample_prompt")
    eval_sample_prompt: str = key("\n", None, "the samples' prompt; '' starts from <|endoftext|> (BPE data)")
    eval_sample_tokens: int = key(100, non_negative, "new tokens per sample")
    always_save_checkpoint: bool = key(True, None, "False: write ckpt.pt at an eval only when val loss "
                                                   "improved")
    init_from: str = key("scratch", None, "'scratch', 'resume' (from out_dir), 'gpt2', 'gpt2-medium', ... "
                                          "or a local HF directory")
    # logging
    wandb_log: bool = key(False, None, "also log the metrics to Weights & Biases")
    wandb_project: str = key("owt", None, "the W&B project")
    wandb_run_name: str = key("gpt2", None, "the W&B run's name")
    # data
    dataset: str = key("openwebtext", None, "data/<dataset>/{train,val}.bin and meta.json (its prepare.py "
                                            "writes them); an absolute path also works")
    gradient_accumulation_steps: int = key(5 * 8, positive, "micro-steps per step, over all processes")
    batch_size: int = key(12, positive, "sequences per micro-step per process")
    # optimizer
    optimizer: str = key("adamw", one_of("adamw", "muon"), "'muon': Muon for the blocks' 2-D matrices, "
                                                           "AdamW for embeddings, gains and biases")
    learning_rate: float = key(6e-4, positive, "peak learning rate")
    max_iters: int = key(600000, non_negative, "optimizer steps to train for")
    weight_decay: float = key(1e-1, non_negative, "AdamW's decoupled weight decay of the 2-D matrices")
    beta1: float = key(0.9, probability, "AdamW's beta1 (momentum of the gradient)")
    beta2: float = key(0.95, probability, "AdamW's beta2 (momentum of the squared gradient)")
    grad_clip: float = key(1.0, non_negative, "clip the gradient's global norm to this; 0 disables clipping")
    # learning rate schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters
    decay_lr: bool = key(True, None, "False: learning_rate at every step (no warmup, no decay)")
    warmup_iters: int = key(2000, non_negative, "steps of linear warmup from 0 to learning_rate")
    lr_decay_iters: int = key(600000, non_negative, "the step the cosine decay reaches min_lr (~max_iters)")
    min_lr: float = key(6e-5, non_negative, "the learning rate at and after lr_decay_iters "
                                            "(~learning_rate/10)")
    # system
    device: str = key("auto", device_name, "'auto' picks cuda > mps > cpu")
    dtype: str = key("auto", dtype_name, "'auto': bf16 or fp16 on a GPU (core.resolve_dtype); 'float16' is "
                                         "CUDA only, with a GradScaler")
    compile: bool = key(True, None, "torch.compile the model; falls back to eager with a warning if it fails")
    fsdp: bool = key(False, None, "under torchrun: shard weights, gradients and AdamW state (FSDP2), not DDP")
    activation_checkpointing: bool = key(False, None, "recompute each block's activations in backward: "
                                                      "less memory")
    check_memory: bool = key(True, None, "refuse a run whose memory estimate (a start line) exceeds what the "
                                         "device has free; False starts it anyway")
    seed: int = key(1337, non_negative, "of weights, batches and dropout (numpy takes no negative seed)")
    peak_tflops: float | None = key(None, positive, "the device's peak, for MFU where PEAK_FLOPS lacks it")

    def problems(self) -> list[str]:
        """What is wrong across keys (each key's own range is checked by configurator.problems first)."""
        found = device_problems(self.device, self.dtype) + super().problems()
        if self.decay_lr and self.warmup_iters > self.lr_decay_iters:
            found.append(f"warmup_iters={self.warmup_iters}: must be <= lr_decay_iters={self.lr_decay_iters} "
                         f"(or decay_lr=False)")
        if self.decay_lr and self.min_lr > self.learning_rate:
            found.append(f"min_lr={self.min_lr}: must be <= learning_rate={self.learning_rate}")
        if problem := unwritable(self.out_dir):
            found.append(f"out_dir={self.out_dir!r}: {problem}")
        if self.fsdp and self.optimizer == "muon":
            found.append("fsdp=True: Muon orthogonalizes whole matrices, which FSDP shards; use "
                         "optimizer='adamw' with FSDP, or DDP (fsdp=False) with Muon")
        if self.overwrite and self.init_from == "resume":
            found.append("overwrite=True: starts a new run, so it cannot go with init_from='resume'")
        if problem := init_from_problem(self.init_from, "train.py"):  # so, before the data and out_dir
            found.append(problem)
        return found


MEMORY_WARN = 0.8  # a run estimated to take more of the free memory than this says it is close to the limit
# taken from the command line only, never from a checkpoint's config
COMMAND_KEYS = ("init_from", "out_dir", "overwrite", "eval_only", "verbose", "check_memory")


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
    """Start offsets of the n sequences of global batch `step`. They depend on (seed, step) only, so any split
    of the batch over processes and micro-steps trains on the same data, and a resumed run on the same
    batches."""
    return np.random.default_rng([seed, step]).integers(0, data_len - block_size, size=n)


def process_offsets(cfg: TrainConfig, step: int, data_len: int, rank: int, world: int) -> np.ndarray:
    """This process's rows of global batch `step`, (micro-steps, batch_size): one row block per micro-step."""
    n_rows = cfg.batch_size * cfg.gradient_accumulation_steps
    rows = batch_offsets(cfg.seed, step, n_rows, data_len, cfg.block_size)
    return rows.reshape(world, cfg.gradient_accumulation_steps // world, cfg.batch_size)[rank]


# -----------------------------------------------------------------------------
# setup

def scratch_config(cfg: TrainConfig, meta: dict) -> GPTConfig:
    """A new model's shape: cfg's, with the data's vocabulary padded to a multiple of 64."""
    vocab = meta["vocab_size"]
    return cfg.gpt_config(vocab_size=padded_vocab(vocab), tokenizer_vocab_size=vocab)


def planned_model(cfg: TrainConfig, meta: dict) -> GPT | None:
    """The model the run will train as a skeleton on the meta device (its shapes, no memory), where the config
    tells what it is: a new model, or the checkpoint's to resume; None for pretrained weights, known once
    loaded."""
    if cfg.init_from == "scratch":
        config = scratch_config(cfg, meta)
    elif cfg.init_from == "resume":  # maps the file, reads no weights
        args = load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"), verify=False)["model_args"]
        config = GPTConfig(**{**args, "dropout": cfg.dropout})
    else:
        return None
    with torch.device("meta"):
        return GPT(config)


def build_model(cfg: TrainConfig, meta: dict, ckpt: dict | None) -> GPT:
    """The model to train: the checkpoint's (resume), a fresh one (scratch) or GPT-2's weights; cfg's shape
    keys are set to what the model really is (e.g. gpt2-medium's)."""
    vocab = meta["vocab_size"]
    if ckpt is not None:
        saved = asdict(GPTConfig(**ckpt["model_args"]))  # the keys it predates are GPT-2's
        changed = {k: (saved[k], getattr(cfg, k)) for k in ARCH_KEYS if saved[k] != getattr(cfg, k)}
        if changed:
            raise UsageError("cannot resume with a different architecture: " + ", ".join(
                f"{k}={new!r} but the checkpoint has {old!r}" for k, (old, new) in changed.items()))
        if any(ckpt["meta"].get(k) != meta.get(k) for k in ("tokenizer", "vocab_size", "chars")):
            raise UsageError(f"{os.path.join('data', cfg.dataset)} has another vocabulary than the "
                             f"checkpoint's data: {meta['vocab_size']} vs {ckpt['meta'].get('vocab_size')} "
                             f"tokens, or other chars")
        model = model_from_checkpoint({**ckpt, "model_args": {**ckpt["model_args"], "dropout": cfg.dropout}})
    elif cfg.init_from == "scratch":
        model = GPT(scratch_config(cfg, meta))
    else:
        model = load_pretrained(cfg.init_from, cfg.dropout)
        if cfg.block_size < model.config.block_size:
            model.crop_block_size(cfg.block_size)
    if model.config.vocab_size < vocab:
        raise UsageError(f"the data's vocab ({vocab}) is larger than the model's ({model.config.vocab_size})")
    if cfg.block_size > model.config.block_size:
        raise UsageError(f"block_size={cfg.block_size} exceeds the model's {model.config.block_size}")
    for k in ARCH_KEYS:  # record what the model really is, e.g. gpt2-medium's shape
        setattr(cfg, k, getattr(model.config, k))
    return model



def wrap(model: GPT, use_compile: bool, ddp: bool, example: tuple, ctx) -> torch.nn.Module:
    """The model the train step calls: compiled (falling back to eager), then in DDP under torchrun. Keep the
    plain model for saving and for evaluation."""
    if use_compile:
        model = maybe_compile(model, example, ctx)
    if ddp:
        device = example[0].device
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def finished(cfg: TrainConfig, ckpt: dict | None, master: bool) -> bool:
    """Whether the run to resume has already done its max_iters steps: then it says so, and nothing runs."""
    if ckpt is None or ckpt["iter_num"] < cfg.max_iters or cfg.eval_only:
        return False
    if master:
        print(f"{cfg.out_dir} is finished at iter {ckpt['iter_num']} >= max_iters={cfg.max_iters}; "
              f"raise --max_iters to train on")
    return True


def prepare(model: GPT, cfg: TrainConfig, device: torch.device,
            ddp: bool) -> tuple[torch.dtype, torch.optim.Optimizer, torch.amp.GradScaler]:
    """The model made ready to train (activation checkpointing, FSDP sharding, both in place), and the dtype,
    optimizer and loss scaler (fp16 only) to train it with."""
    dtype = resolve_dtype(cfg.dtype, device, model.config.n_embd)
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on GPUs that have them
    if cfg.activation_checkpointing:
        checkpoint_activations(model)
    if ddp and cfg.fsdp:
        shard(model, device, dtype)  # before the optimizer: it must hold the shards
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                           cfg.optimizer)
    return dtype, optimizer, scaler


def restore(ckpt: dict, cfg: TrainConfig, model: GPT, optimizer,
            scaler: torch.amp.GradScaler) -> tuple[int, float]:
    """Load the optimizer and scaler state of a checkpoint; (iter_num, best_val_loss) to continue from."""
    if ckpt["config"]["optimizer"] != cfg.optimizer:
        raise UsageError(f"the checkpoint was trained with optimizer='{ckpt['config']['optimizer']}': "
                         f"resume with the same one")
    if is_sharded(model):
        load_sharded_optimizer(model, optimizer, ckpt["optimizer"])
    else:
        optimizer.load_state_dict(ckpt["optimizer"])
    scaler.load_state_dict(ckpt["scaler"])
    return ckpt["iter_num"], ckpt["best_val_loss"]


# -----------------------------------------------------------------------------
# a run: what it holds from its first check to its last word

class Run:
    """One training run. Entered, it takes its out_dir (the master's claim and lock), the stop signals and
    the torchrun process group; start_writing() adds the metrics log. Whatever way the run ends, they are
    released in reverse. setup() gives it the model, optimizer and loss scaler, and it keeps where the run
    stands (iter_num, best_val_loss, the losses of the last eval); it writes the checkpoints and says at the
    end where they are."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.ddp = int(os.environ.get("RANK", -1)) != -1
        self.rank = int(os.environ["RANK"]) if self.ddp else 0
        self.world = int(os.environ["WORLD_SIZE"]) if self.ddp else 1
        if cfg.gradient_accumulation_steps % self.world:
            raise UsageError(f"gradient_accumulation_steps={cfg.gradient_accumulation_steps} does not divide "
                             f"over {self.world} processes: make it a multiple of {self.world}")
        self.master, self.accum = self.rank == 0, cfg.gradient_accumulation_steps // self.world
        self.tokens_per_iter = cfg.batch_size * cfg.gradient_accumulation_steps * cfg.block_size
        self.iter_num, self.best_val_loss, self.losses = 0, float("inf"), {}
        self.stepped = False  # whether an optimizer step ran: before one, a checkpoint holds nothing new
        # check_memory's estimate, the bytes free on the device, and how many processes share them
        self.memory, self.free, self.sharing = None, None, 1
        self.log = lambda record: None  # until start_writing
        self._held = contextlib.ExitStack()

    def __enter__(self) -> "Run":
        cfg, resume = self.cfg, self.cfg.init_from == "resume"
        self.data, self.meta = open_data(os.path.join("data", cfg.dataset), cfg.block_size)  # before the lock
        self.device = resolve_device(cfg.device)
        planned = None if cfg.eval_only else planned_model(cfg, self.meta)  # eval_only needs far less
        if planned is not None:  # before anything is written or allocated
            self.check_memory(planned)
        with contextlib.ExitStack() as held:  # should a step here fail, what it took is released at once
            if self.master:
                held.enter_context(claim_out_dir(cfg.out_dir, not resume, cfg.overwrite))
            elif not resume:
                check_new_run(cfg.out_dir, cfg.overwrite)
            self.signalled = held.enter_context(stop_requests())
            if self.ddp:
                self.device = init_distributed(self.device)
                held.push(leave_distributed)
            self._held = held.pop_all()
        return self

    def __exit__(self, *exc) -> bool:
        return self._held.__exit__(*exc)

    def setup(self) -> torch.nn.Module | None:
        """Build or load the model, its optimizer and scaler, and say what will run. Returns the model the
        steps go through (compiled, DDP), or None for a resumed run that is already finished."""
        cfg = self.cfg
        ckpt = load_checkpoint(self.path("ckpt.pt"), self.device) if cfg.init_from == "resume" else None
        torch.manual_seed(cfg.seed)  # the same initial weights on every process
        self.model = build_model(cfg, self.meta, ckpt)
        if self.memory is None and not cfg.eval_only:  # pretrained weights, whose shape is known now
            self.check_memory(self.model)
        self.model = self.model.to(self.device)
        if finished(cfg, ckpt, self.master):
            self.iter_num, self.best_val_loss = ckpt["iter_num"], ckpt["best_val_loss"]
            return None
        self.dtype, self.optimizer, self.scaler = prepare(self.model, cfg, self.device, self.ddp)
        self.ctx = autocast(self.device, self.dtype)
        if ckpt is not None:
            self.iter_num, self.best_val_loss = restore(ckpt, cfg, self.model, self.optimizer, self.scaler)
        del ckpt  # free it
        if self.master:
            announce(self)
        example = next(self.micro_batches())
        model = wrap(self.model, cfg.compile, self.ddp and not cfg.fsdp, example, self.ctx)
        if not cfg.eval_only:
            self.announce_eta(model, example)
        return model

    def check_memory(self, model: GPT) -> None:
        """Estimate what this process will hold training model (core.estimate_memory) and what its device has
        free; refuse a run that does not fit (unless check_memory is False), naming the keys with which it
        would. The processes on one machine share its RAM."""
        device = local_device(self.device)
        self.memory, self.free = self.estimate(model), free_memory(device)
        self.sharing = 1 if device.type == "cuda" else int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        if self.free is None or not self.cfg.check_memory or self.memory.total * self.sharing <= self.free:
            return
        raise UsageError(f"this run needs {memory_need(self)} but {device} has {human_bytes(self.free)} "
                         f"free: {self.what_fits(model, self.free // self.sharing)}; or --check_memory=False "
                         f"to start anyway")

    def estimate(self, model: GPT, **changes) -> MemoryEstimate:
        """core.estimate_memory of this run, or of the run with changes to its config."""
        cfg = replace(self.cfg, **changes)
        fsdp = self.ddp and cfg.fsdp
        dtype = resolve_dtype(cfg.dtype, self.device, model.config.n_embd)
        return estimate_memory(model, cfg.batch_size, self.device, dtype, cfg.optimizer,
                               cfg.activation_checkpointing, shards=self.world if fsdp else 1,
                               ddp=self.ddp and not fsdp, accum=cfg.gradient_accumulation_steps // self.world)

    def what_fits(self, model: GPT, room: int) -> str:
        """The keys with which the run would fit in room bytes: each that fits alone within MEMORY_WARN of it,
        else all of them together."""
        cfg, B, G = self.cfg, self.cfg.batch_size, self.cfg.gradient_accumulation_steps
        needs = lambda change: self.estimate(model, **change).total  # noqa: E731
        # smaller micro-batches, more of them: the same tokens per step (G stays a multiple of the processes)
        batches = [{"batch_size": b, "gradient_accumulation_steps": G * B // b} for b in range(B - 1, 0, -1)
                   if B % b == 0]
        others = [{"activation_checkpointing": True}] if not cfg.activation_checkpointing else []
        if self.ddp and not cfg.fsdp and cfg.optimizer == "adamw":
            others.append({"fsdp": True})
        if resolve_dtype(cfg.dtype, self.device, model.config.n_embd) == torch.float32:
            others.append({"dtype": "bfloat16"})
        batch = next((c for c in batches if needs(c) <= MEMORY_WARN * room), None)
        alone = [c for c in ([batch] if batch else []) + others if needs(c) <= MEMORY_WARN * room]
        if alone:
            return "it fits with " + " or ".join(flags(c, needs(c)) for c in alone)
        together = {k: v for change in others for k, v in change.items()}
        for change in [{**c, **together} for c in [{}, *batches]]:  # the largest micro-batch that then fits
            if needs(change) <= room:
                return f"it fits with {flags(change, needs(change))}"
        least = {**(batches[-1] if batches else {}), **together}
        tried = f"even with {flags(least, needs(least))}" if least else "as it is"
        return f"{tried} it does not fit: a smaller model (n_layer, n_embd, block_size) or FSDP on more GPUs"

    def announce_eta(self, model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Time one micro-step (forward and backward of a micro-batch, its gradients dropped) and say how
        long the run will take, before the first eval, which can take minutes on a big model. The weights,
        the optimizer and the RNG the steps use (reseeded each step) are untouched."""
        t = time.perf_counter()
        with self.ctx:
            _, loss = model(*example)
        loss.backward()
        loss.item()  # waits for the device
        micro = time.perf_counter() - t
        self.model.zero_grad(set_to_none=True)
        if not self.master:
            return
        cfg, steps = self.cfg, self.cfg.max_iters - self.iter_num
        evals = steps // cfg.eval_interval + 1
        eval_s = micro / 3 * 2 * math.ceil(cfg.eval_iters / self.world)  # a forward is ~1/3 of fwd + bwd
        print(f"one micro-step takes {1000 * micro:,.0f} ms: about {clock(micro * self.accum * steps)} for "
              f"{steps:,} steps and {clock(eval_s * evals)} for {evals:,} evals")

    def path(self, name: str) -> str:
        return os.path.join(self.cfg.out_dir, name)

    def micro_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's micro-batches of the current step's global batch, loaded one at a time as asked."""
        for rows in process_offsets(self.cfg, self.iter_num, len(self.data["train"]), self.rank, self.world):
            yield get_batch(self.data["train"], rows, self.cfg.block_size, self.device)

    def start_writing(self) -> None:
        """The first write into out_dir, once every check has passed: its config, and the metrics log."""
        if self.master:
            prepare_out_dir(self.cfg, self.iter_num)
        self.log = self._held.enter_context(contextlib.closing(MetricsLog(self.cfg, self.master)))
        self.peak = peak_flops(self.device, self.cfg.peak_tflops)
        self.pending_loss, self.pending_steps = torch.zeros((), device=self.device), 0  # since the last log
        self.t_start = self.t0 = time.perf_counter()

    def set_lr(self) -> float:
        lr = get_lr(self.iter_num, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def stop_requested(self) -> bool:
        """A signal reached any process: all of them stop together (the others would hang in a collective)."""
        return any_process(bool(self.signalled), self.device)

    def evaluate(self, evaluator: "Evaluator", model: torch.nn.Module) -> bool:
        """The eval of the current step: losses printed and logged, best.pt when val loss improved, ckpt.pt as
        the config asks. False when a signal abandoned it. Its time stays out of ms/iter."""
        t_eval = time.perf_counter()
        try:
            self.losses = evaluator(model)
        except Interrupted:
            return False
        check_finite("val_loss", self.losses["val_loss"], self.iter_num, self.cfg.out_dir)
        improved = self.losses["val_loss"] < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, self.losses["val_loss"])
        print_eval(f"iter {self.iter_num}", self.losses, self.master)
        self.log({"iter": self.iter_num, "tokens": self.iter_num * self.tokens_per_iter,
                  "lr": get_lr(self.iter_num, self.cfg), **self.losses})
        if self.iter_num > 0 and improved:
            self.save("best.pt")
        if self.iter_num > 0 and (improved or self.cfg.always_save_checkpoint or
                                  self.iter_num == self.cfg.max_iters):
            self.save("ckpt.pt")
        self.t0 += time.perf_counter() - t_eval
        return True

    def count_step(self, loss: torch.Tensor) -> None:
        self.iter_num, self.stepped = self.iter_num + 1, True
        self.pending_loss += loss
        self.pending_steps += 1

    def log_steps(self, grad_norm: torch.Tensor, lr: float) -> None:
        """Print and log the steps since the last log: their mean loss over the processes, and speed."""
        if dist.is_initialized():  # (gloo has no AVG)
            dist.all_reduce(self.pending_loss)
            self.pending_loss /= dist.get_world_size()
        dt = (time.perf_counter() - self.t0) / self.pending_steps
        tok_s = self.tokens_per_iter / dt
        flops, mfu = self.model.estimate_mfu(tok_s, self.cfg.block_size, self.peak)
        record = {"iter": self.iter_num, "tokens": self.iter_num * self.tokens_per_iter,
                  "loss": self.pending_loss.item() / self.pending_steps, "lr": lr,
                  "grad_norm": grad_norm.item(), "ms_per_iter": 1000 * dt, "tokens_per_s": tok_s, "mfu": mfu}
        check_finite("loss", record["loss"], self.iter_num, self.cfg.out_dir)
        print_step(record, flops, self.master, self.cfg.max_iters, self.t_start)
        self.log(record)
        self.pending_loss.zero_()
        self.pending_steps, self.t0 = 0, time.perf_counter()

    def save(self, name: str) -> None:
        """The current state into out_dir/name, written by the master. Batches and dropout masks derive from
        (seed, iter_num): that is the RNG and data state. A sharded model's state is gathered whole first
        (collective: every process takes part)."""
        if not (self.master or is_sharded(self.model)):
            return
        if is_sharded(self.model):
            model_state, optim_state = gathered_state(self.model, self.optimizer)
        else:
            model_state, optim_state = self.model.state_dict(), self.optimizer.state_dict()
        if self.master:
            state = {"model": model_state, "optimizer": optim_state, "scaler": self.scaler.state_dict(),
                     "model_args": asdict(self.model.config), "iter_num": self.iter_num,
                     "best_val_loss": self.best_val_loss, "config": asdict(self.cfg), "meta": self.meta,
                     "rng": {"seed": self.cfg.seed, "next_batch": self.iter_num}}
            save_checkpoint(state, self.path(name))

    def end(self, stopped: bool) -> None:
        """After the loop: a run stopped by a signal saves its current step (if it took one: before, the
        checkpoint would hold nothing new); then the master says where the model is and how to use it."""
        if stopped and self.stepped:
            self.save("ckpt.pt")
        if not self.master:
            return
        ckpt = self.path("ckpt.pt")
        if stopped and not self.stepped:
            kept = f"; {ckpt} still holds iter {self.iter_num}" if self.cfg.init_from == "resume" else ""
            print(f"stopped by a signal before the first step of this run: nothing new to save{kept}")
        elif stopped:
            print(f"stopped by a signal: checkpoint of iter {self.iter_num} saved to {ckpt}; continue with\n"
                  f"  python train.py --init_from=resume --out_dir={self.cfg.out_dir}")
        else:
            print(f"done: {ckpt} holds iter {self.iter_num}, best val loss {self.best_val_loss:.4f}; sample "
                  f"from it with\n  python sample.py --out_dir={self.cfg.out_dir}")

    def result(self) -> dict:
        return {"iter_num": self.iter_num, "best_val_loss": self.best_val_loss, **self.losses}


# -----------------------------------------------------------------------------
# evaluation and the train step

def target_bytes(data: np.ndarray, offsets: np.ndarray, block_size: int, table: np.ndarray) -> int:
    """UTF-8 bytes of the targets of the batches at offsets (batches, batch_size), from a per-id byte table
    (Tokenizer.token_bytes)."""
    cpu = torch.device("cpu")
    return sum(int(table[get_batch(data, rows, block_size, cpu)[1].numpy()].sum()) for rows in offsets)


class Evaluator:
    """Mean loss and bits per byte on a fixed set of train and val batches, drawn once with an RNG of their
    own (every eval sees the same data; training sees no change), split over the processes; HellaSwag and
    samples if cfg asks."""

    def __init__(self, run: Run):
        cfg, data = run.cfg, run.data
        self.cfg, self.data, self.device, self.ctx = cfg, data, run.device, run.ctx
        self.rank, self.world, self.signalled, self.model = run.rank, run.world, run.signalled, run.model
        self.offsets = {split: np.random.default_rng([cfg.seed, 1 + i]).integers(
            0, len(data[split]) - cfg.block_size, size=(cfg.eval_iters, cfg.batch_size))
            for i, split in enumerate(("train", "val"))}
        self.tokenizer, self.bytes = self.load_tokenizer(run)
        self.hellaswag = None
        if cfg.eval_hellaswag:
            path = os.path.join("data", "hellaswag", "hellaswag_val.jsonl")
            self.hellaswag = load_hellaswag(path, cfg.hellaswag_limit)
        self.prompt = None
        if cfg.eval_samples > 0:  # encoded now, so that a bad prompt fails before any training
            self.prompt = encode_prompt(self.tokenizer, cfg.eval_sample_prompt, run.model.config.vocab_size,
                                        "eval_sample_prompt")

    def load_tokenizer(self, run: Run) -> tuple[Tokenizer | None, dict[str, int]]:
        """The data's tokenizer and the UTF-8 bytes of each split's eval targets, counted once (every eval
        sees the same batches): bits per byte put char and BPE runs on one scale. GPT-2's BPE files may be
        missing (offline): only samples and HellaSwag need them, and evals go on without bits per byte."""
        try:
            tokenizer = Tokenizer.from_meta(run.meta)
        except DataError as e:
            if self.cfg.eval_hellaswag or self.cfg.eval_samples > 0:
                raise
            warnings.warn(f"evals without bits per byte: {e}")
            return None, {}
        table = tokenizer.token_bytes(run.model.config.vocab_size)
        return tokenizer, {split: target_bytes(self.data[split], offsets, self.cfg.block_size, table)
                           for split, offsets in self.offsets.items()}

    @torch.no_grad()
    def losses(self, model: torch.nn.Module) -> dict[str, float]:
        model.eval()
        out = {}
        for split, offsets in self.offsets.items():
            # (sum of losses, count), this process's share of batches
            total = torch.zeros(2, device=self.device)
            # every process takes the same number of turns, each with a forward pass (FSDP's gathers and the
            # stop checks pair up); a turn past the last batch counts nothing
            for base in progress(range(0, self.cfg.eval_iters, self.world), f"eval {split}",
                                 enabled=self.rank == 0):
                if self.stop_requested():
                    raise Interrupted
                k = base + self.rank
                with self.ctx:
                    loss = model(*get_batch(self.data[split], offsets[k % self.cfg.eval_iters],
                                            self.cfg.block_size, self.device))[1].float()
                if k < self.cfg.eval_iters:
                    total += torch.stack([loss, torch.ones_like(loss)])
            if dist.is_initialized():
                dist.all_reduce(total)
            out[f"{split}_loss"] = (total[0] / total[1]).item()
        # every batch has batch_size x block_size targets, none ignored: the mean loss times their count is
        # the summed loss in nats (<|endoftext|>'s included: where a document ends is information too)
        tokens = self.cfg.eval_iters * self.cfg.batch_size * self.cfg.block_size
        out.update({f"{split}_bpb": out[f"{split}_loss"] * tokens / (math.log(2) * self.bytes[split])
                    for split in self.bytes if self.bytes[split]})  # (0 bytes: nothing but <|endoftext|>)
        model.train()
        return out

    def stop_requested(self) -> bool:
        """A signal abandons the evaluation (a real one takes minutes), on every process alike."""
        return any_process(bool(self.signalled), self.device)

    @torch.no_grad()
    def samples(self, model: GPT) -> list[str]:
        """cfg.eval_samples continuations of the prompt, KV-cached, in eval mode, drawn from a generator of
        their own: training's RNG does not move, so a run trains the same with and without samples."""
        ids, hidden = self.prompt
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        idx = torch.tensor([ids] * self.cfg.eval_samples, dtype=torch.long, device=self.device)
        model.eval()
        with self.ctx:
            rows = model.generate(idx, self.cfg.eval_sample_tokens, generator=generator).tolist()
        model.train()
        return [self.tokenizer.decode(row[hidden:]) for row in rows]

    def __call__(self, model: torch.nn.Module) -> dict:
        """Losses through model (maybe compiled or DDP); HellaSwag and samples (rank 0's; every process
        generates them when FSDP needs all of them for each forward) through the run's plain model."""
        out = self.losses(model)
        raw_model = self.model
        if self.hellaswag is not None:  # on every process: the examples are split between them
            hella = hellaswag_accuracy(raw_model, self.hellaswag, self.tokenizer, self.device, self.ctx,
                                       self.rank, self.world, self.rank == 0, self.stop_requested)
            out.update(hellaswag_acc=hella["acc"], hellaswag_acc_norm=hella["acc_norm"])
        if self.prompt is not None and (self.rank == 0 or is_sharded(raw_model)):
            samples = self.samples(raw_model)
            if self.rank == 0:
                out["samples"] = samples
        return out


def train_step(model: torch.nn.Module, run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step of the run: forward and backward over its micro-batches (the next one fetched while
    the device works) through model (maybe compiled, DDP), gradients clipped to grad_clip (0: not clipped),
    then the step. Returns the mean micro-batch loss and the global gradient norm before clipping, on the
    device."""
    optimizer, scaler, accum = run.optimizer, run.scaler, run.accum
    total, batches = 0.0, run.micro_batches()
    x, y = next(batches)
    for micro in range(accum):
        # only the last micro-step all-reduces gradients across processes
        last = micro == accum - 1
        sync = model.no_sync() if isinstance(model, DDP) and not last else contextlib.nullcontext()
        if is_sharded(run.model):  # FSDP keeps whole gradients until the last micro-step's reduce-scatter
            run.model.set_requires_gradient_sync(last)
        with sync, run.ctx:
            _, loss = model(x, y)
            loss = loss / accum
        if not last:
            x, y = next(batches)
        scaler.scale(loss).backward()
        total = total + loss.detach()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, run.cfg.grad_clip or float("inf"))
    if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP: the norm over all the shards
        grad_norm = grad_norm.full_tensor()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm


# -----------------------------------------------------------------------------

def train(cfg: TrainConfig) -> dict:
    """Run the training loop; returns the final iter_num, best_val_loss and last eval's losses."""
    with Run(cfg) as run:
        model = run.setup()  # the model the steps go through (compiled, DDP); None: the run is finished
        if model is None:
            return run.result()
        evaluate = Evaluator(run)
        if cfg.eval_only:  # writes nothing
            run.losses = evaluate(model)
            print_eval(f"eval at iter {run.iter_num}", run.losses, run.master)
            return run.result()
        run.start_writing()
        stopped = False
        while True:
            if run.iter_num % cfg.eval_interval == 0 or run.iter_num == cfg.max_iters:
                if not run.evaluate(evaluate, model):  # and save; False: a signal abandoned it
                    stopped = True
                    break
            if run.iter_num >= cfg.max_iters:
                break
            lr = run.set_lr()
            # dropout masks follow (seed, rank, step)
            torch.manual_seed(cfg.seed + 1_000_003 * run.rank + run.iter_num)
            loss, grad_norm = train_step(model, run)
            run.count_step(loss)
            stopped = run.stop_requested()
            if run.iter_num % cfg.log_interval == 0:
                run.log_steps(grad_norm, lr)
            if stopped:
                break
        run.end(stopped)
        return run.result()


# -----------------------------------------------------------------------------
# what the run prints

def check_finite(key: str, value: float, iter_num: int, out_dir: str) -> None:
    """A NaN or inf loss stops the run before it writes a checkpoint of that model."""
    if not math.isfinite(value):
        raise UsageError(f"{key} is {value} at iter {iter_num}: the run diverged and stopped; {out_dir} "
                         f"keeps its last good checkpoint. Lower learning_rate, or raise warmup_iters")


def announce(run: Run) -> None:
    """Say in a few lines what is about to run, and how big it is against its data."""
    cfg, c = run.cfg, run.model.config
    if cfg.verbose:
        print(json.dumps(asdict(cfg), indent=1))
    # GPT-2's architecture unless said: e.g. ", pos_embedding='rope', norm='rmsnorm'" after the sizes
    arch = "".join(f", {k}" for k in not_gpt2(c))
    print(f"model: {run.model.get_num_params() / 1e6:.2f}M parameters, {c.n_layer} layers, {c.n_head} heads, "
          f"{c.n_embd} wide, context {c.block_size}{arch} ({cfg.init_from})")
    train_tokens, steps = len(run.data["train"]), cfg.max_iters - run.iter_num
    passes = steps * run.tokens_per_iter / train_tokens
    print(f"data: {os.path.join('data', cfg.dataset)}, {train_tokens:,} train and {len(run.data['val']):,} "
          f"val tokens; {run.tokens_per_iter:,} tokens per step x {steps:,} steps = {passes:,.2f} passes "
          f"over the train split")
    print(f"device {run.device}, {run.dtype}, compile={cfg.compile}, {run.world} process(es); "
          f"writing to {cfg.out_dir}/ (the whole config is in config.json)")
    if run.memory is not None:  # not for eval_only
        print(memory_line(run))


def flags(change: dict, need: int) -> str:
    """--key=value of each key changed, with the memory the run then needs."""
    return " ".join(f"--{k}={v}" for k, v in change.items()) + f" (~{human_bytes(need)})"


def memory_need(run: Run) -> str:
    """What the run needs, a process and all of them on this machine where they share its RAM."""
    return f"{run.memory}" + (f" x {run.sharing} processes" if run.sharing > 1 else "")


def memory_line(run: Run) -> str:
    """The start line of the run's memory estimate beside what its device has free."""
    device = local_device(run.device)
    if run.free is None:
        return f"memory: {memory_need(run)}; what {device} has free is unknown here: not checked"
    share = run.memory.total * run.sharing / run.free
    warn = ""
    if share > 1:  # check_memory=False
        warn = f" ({share:.0%} of it: it may not fit; started as check_memory=False asks)"
    elif share > MEMORY_WARN:
        warn = f" ({share:.0%} of it: close to the limit)"
    return f"memory: {memory_need(run)} of {human_bytes(run.free)} free on {device}{warn}"


def print_eval(prefix: str, losses: dict, master: bool) -> None:
    if not master:
        return
    print(f"{prefix}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items() if k != "samples"))
    for text in losses.get("samples", []):
        print(f"{text}\n{SEPARATOR}")


def print_step(r: dict, flops: float, master: bool, max_iters: int, t_start: float) -> None:
    if not master:
        return
    speed = f"mfu {100 * r['mfu']:.1f}%" if r["mfu"] is not None else f"{flops / 1e12:.2f} TFLOP/s"
    eta = (max_iters - r["iter"]) * r["ms_per_iter"] / 1000
    print(f"iter {r['iter']}: loss {r['loss']:.4f}, lr {r['lr']:.2e}, grad norm {r['grad_norm']:.3f}, "
          f"{r['ms_per_iter']:.1f} ms/iter, {r['tokens_per_s']:,.0f} tok/s, {speed}, "
          f"{clock(time.perf_counter() - t_start)} elapsed, eta {clock(eta)}")




def resume_config(cfg: TrainConfig, given: set[str]) -> TrainConfig:
    """For init_from='resume': the config stored in out_dir's checkpoint, with the keys given on this command
    line (config files and flags) on top. Those that would change what the checkpoint means are refused."""
    saved = load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"), verify=False)["config"]
    changed = [k for k in (*ARCH_KEYS, "dataset")
               if k in given and k in saved and getattr(cfg, k) != saved[k]]
    if changed:
        raise UsageError("cannot resume with a different " + ", ".join(
            f"{k} ({getattr(cfg, k)!r}; the checkpoint has {saved[k]!r})" for k in changed) +
            ": drop those keys, or start a new run in another out_dir")
    keys = {f.name for f in fields(TrainConfig)} - set(COMMAND_KEYS) - given
    resumed = TrainConfig(**{**asdict(cfg), **{k: v for k, v in saved.items() if k in keys}})
    check(resumed)  # the checkpoint's keys and the new ones together
    return resumed


def main(argv: list[str]) -> None:
    given: set[str] = set()
    cfg = configure(TrainConfig, argv, given)
    train(resume_config(cfg, given) if cfg.init_from == "resume" else cfg)


if __name__ == "__main__":
    cli(main)
