"""Shared test setup: the repo on sys.path, offline HF/tiktoken, small random-weight HF GPT-2 directories, the
one tiny training config, a small model, and the one way to run a command line (with a deadline, never
orphaned)."""
import io
import json
import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# ../shared/data beside the checkout holds Tiny Shakespeare and tiktoken's GPT-2 BPE files (see README, Tests)
SHARED = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
if (SHARED / "tiktoken-cache").is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download: models are built with random weights
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The test models are tiny: one thread runs them several times faster than two that wait on each
    other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda are deselected where there is no CUDA GPU (the count is printed, with the reason at
    the end); nothing else is ever left out silently: a test that lacks its data fails, naming what is
    missing."""
    if torch.cuda.is_available():
        return
    cuda = [item for item in items if "cuda" in item.keywords]
    if cuda:
        config.hook.pytest_deselected(items=cuda)
        items[:] = [item for item in items if "cuda" not in item.keywords]
        config.stash[CUDA_DESELECTED] = len(cuda)


CUDA_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(CUDA_DESELECTED, 0):
        n = config.stash[CUDA_DESELECTED]
        terminalreporter.write_line(f"{n} cuda test(s) deselected: no CUDA GPU here")


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    """Tiny Shakespeare as a user gets it: the copy in ../shared/data (SHARED_DATA) when there is one, else
    the one the quick start downloaded into data/shakespeare_char/, else the preparer's own download, cached
    in ~/.cache/nanogpt-tests. Never a skip: without any of them, tests fail."""
    path = SHARED / "tinyshakespeare" / "input.txt"
    if not path.exists():
        path = ROOT / "data" / "shakespeare_char" / "input.txt"
    if not path.exists():
        from data.common import DataError, download
        from data.shakespeare_char.prepare import URL
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nanogpt-tests" / "input.txt"
        try:
            path = download(URL, cache)
        except DataError as e:
            pytest.fail(f"Tiny Shakespeare is missing: no {SHARED / 'tinyshakespeare' / 'input.txt'} "
                        f"(set SHARED_DATA) and {e}", pytrace=False)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def make_hf_dir(tmp_path_factory):
    """make_hf_dir(**GPT2Config kwargs) -> directory of a random-weight GPT2LMHeadModel written by
    save_pretrained."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()

    def make(seed: int = 0, **kwargs) -> str:
        kwargs = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "vocab_size": 100,
                  "bos_token_id": None, "eos_token_id": None, **kwargs}
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp("hf")
        GPT2LMHeadModel(GPT2Config(**kwargs)).save_pretrained(path)
        return str(path)
    return make


def write_dataset(path, n_train=20000, n_val=3000, vocab=23, seed=0):
    """A learnable synthetic token stream: a noisy repeating pattern."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for split, n in (("train", n_train), ("val", n_val)):
        ids = (np.arange(n) * 7 % vocab)
        noise = rng.random(n) < 0.1
        ids[noise] = rng.integers(0, vocab, noise.sum())
        ids.astype(np.uint16).tofile(os.path.join(path, f"{split}.bin"))
    meta = {"tokenizer": "char", "vocab_size": vocab, "dtype": "uint16", "eot_token": None,
            "chars": [chr(65 + i) for i in range(vocab)], "train_tokens": n_train, "val_tokens": n_val}
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)
    return str(path)


# a tiny, fast training run on synthetic data: tiny_train_config(dir, **overrides) and the tiny_config fixture
TINY = dict(device="cpu", compile=False, dtype="float32", n_layer=2, n_head=2, n_embd=32, block_size=16,
            batch_size=4, gradient_accumulation_steps=2, max_iters=20, lr_decay_iters=20, warmup_iters=5,
            eval_interval=10, eval_iters=4, log_interval=5, learning_rate=3e-3, min_lr=3e-4, dropout=0.0)


def tiny_train_config(root, **overrides):
    """TINY with overrides, writing to root/out; synthetic data in root/data unless overrides name a
    dataset."""
    from train import TrainConfig
    root = Path(root)
    if "dataset" not in overrides:
        overrides["dataset"] = write_dataset(root / "data")
    return TrainConfig(**{"out_dir": str(root / "out"), **TINY, **overrides})


@pytest.fixture
def tiny_config(tmp_path):
    """tiny_config(**overrides) -> a tiny TrainConfig under this test's tmp_path."""
    return lambda **overrides: tiny_train_config(tmp_path, **overrides)


@pytest.fixture
def no_compiler(monkeypatch):
    """torch.compile returns a model whose every call fails, as where no compiler works."""
    def fails(*args, **kwargs):
        raise RuntimeError("no compiler here")
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: fails)


@pytest.fixture
def tiny(tiny_config):
    return tiny_config()


def preset(name: str) -> dict:
    """The keys a config/arch_*.py file sets, read as train.py reads a config file (it is plain Python)."""
    return {k: v for k, v in runpy.run_path(str(ROOT / "config" / f"arch_{name}.py")).items()
            if not k.startswith("_")}


# the architectures the run machinery (resume, DDP, FSDP, Muon, activation checkpointing) is tested with:
# GPT-2, and the presets with grouped-query attention on top (the tiny configs' 2 heads share 1 key/value
# head)
ARCHS = {"gpt2": {}, "modern_gqa": {**preset("modern"), "n_kv_head": 1},
         "llama_gqa": {**preset("llama"), "n_kv_head": 1}}


def small_model(block_size=32, vocab_size=80, seed=0, n_layer=2, n_head=2, n_embd=32, **kw):
    """A small random GPT (seeded), in eval mode."""
    from model import GPT, GPTConfig
    torch.manual_seed(seed)
    return GPT(GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=n_head,
                         n_embd=n_embd, **kw)).eval()


def metrics(cfg):
    with open(os.path.join(cfg.out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def cli_args(cfg) -> list[str]:
    """--key=value for each field of a config dataclass that differs from its default."""
    return [f"--{k}={v}" for k, v in cfg.__dict__.items() if v != getattr(type(cfg), k)]


def run(args: list[str], timeout: float = 300, env: dict | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run a command in cwd (the repo root unless given) and wait for it, at most timeout seconds. It runs
    in a process group of its own, killed as a whole when the command ends, fails or times out, so no child
    (torchrun's workers, say) outlives the test."""
    proc = subprocess.Popen(args, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL proc's whole process group (started with start_new_session=True) and reap proc."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def python(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """run() of this Python on args, e.g. python("train.py", "--help")."""
    return run([sys.executable, *args], timeout=timeout, env=env)


def tests_fail(copy: Path, args: list[str], env: dict | None = None, timeout: float = 1800) -> bool:
    """Whether pytest -x on args fails in a copy of the repository: a mutant killed (the mutation scripts
    in tests/). A run past the deadline counts as failed: the mutant made something hang."""
    try:
        r = run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args], timeout, env,
                cwd=copy)
    except subprocess.TimeoutExpired:
        return True
    return r.returncode != 0


def in_process(main: Callable[[list[str]], Any], *args: str) -> subprocess.CompletedProcess:
    """What python(script, *args) returns, with the script's main run in this process through
    configurator.cli, as its __main__ runs it: a second faster, for a command line whose start as a real
    process other tests already cover (test_bad_input's subprocess cases, test_layout)."""
    from configurator import cli
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "argv", ["script", *args]), redirect_stdout(out), redirect_stderr(err):
        try:
            cli(main)
            status = 0
        except SystemExit as e:
            status = e.code
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


# gloo, torch's CPU backend, now and then aborts a process while it tears down, after all the work is done
# (about 1 torchrun run in 30 on 2 cores): an upstream flake, not this codebase's result
GLOO_TEARDOWN = "terminate called without an active exception"


def torchrun_ok(r: subprocess.CompletedProcess) -> bool:
    """Whether a train.py run under torchrun succeeded: exit 0, or gloo's teardown abort after rank 0 said
    "done:" (its files complete: the processes met at a barrier before tearing down)."""
    return r.returncode == 0 or (GLOO_TEARDOWN in r.stderr and "done: " in r.stdout)
