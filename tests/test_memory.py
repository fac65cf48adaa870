"""The memory check at the start of a run: core.estimate_memory against what training really holds (the
tensors autograd saves, the optimizer's state after a step, the peak resident memory of train.py's own loop
in a fresh process), what the device has free, the start line, and the refusal of a run that cannot fit
(exit 2, one line naming the keys that make it fit, nothing written), whatever its init_from."""
import json
import os
import sys
from dataclasses import replace

import pytest
import torch

import core
import train
from conftest import cli_args, in_process, preset, run, small_model, tiny_train_config, write_dataset
from model import GPT, GPTConfig

CPU = torch.device("cpu")


def saved_bytes(model: GPT, idx: torch.Tensor, dtype: torch.dtype) -> tuple[int, int]:
    """(activations, weight copies): the bytes of the storages autograd saves for the backward in one training
    forward of model on idx under autocast dtype, each storage once; the parameters' own storages left out,
    autocast's copies of them counted apart."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        fn = t.grad_fn
        while type(fn).__name__ in ("TBackward0", "ViewBackward0"):  # a view: of what?
            fn = fn.next_functions[0][0]
        # a cast of a parameter: a copy whose grad_fn leads straight to the parameter's AccumulateGrad
        copy = type(fn).__name__ == "ToCopyBackward0" and hasattr(fn.next_functions[0][0], "variable")
        if t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = (t.untyped_storage().nbytes(), copy)
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), core.autocast(CPU, dtype):
        model(idx, idx)
    return (sum(n for n, copy in saved.values() if not copy), sum(n for n, copy in saved.values() if copy))


@pytest.mark.parametrize("dtype,dropout,checkpointing,shape", [
    (torch.float32, 0.0, False, dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512)),
    (torch.bfloat16, 0.0, False, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512)),
    (torch.float32, 0.2, False, dict(n_layer=1, n_head=2, n_embd=96, block_size=80, vocab_size=1000)),
    (torch.bfloat16, 0.2, False, dict(n_layer=1, n_head=2, n_embd=96, block_size=80, vocab_size=1000)),
    (torch.bfloat16, 0.0, False, dict(n_layer=3, n_head=4, n_embd=256, block_size=128, vocab_size=8192)),
    (torch.float32, 0.0, True, dict(n_layer=4, n_head=2, n_embd=64, block_size=64, vocab_size=256)),
    # the architecture presets, with grouped-query attention: within 5% (fp32 RoPE and QK-norm keep 4% more
    # than the formula counts)
    (torch.float32, 0.0, False, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512,
                                     **preset("llama"), n_kv_head=2)),
    (torch.bfloat16, 0.0, False, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512,
                                      **preset("llama"), n_kv_head=2)),
    (torch.float32, 0.1, False, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512,
                                     **preset("modern"))),
    (torch.float32, 0.0, True, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512,
                                    **preset("modern"))),
    (torch.bfloat16, 0.0, False, dict(n_layer=2, n_head=4, n_embd=128, block_size=128, vocab_size=512,
                                      **preset("modern"))),
])
def test_kept_activations_are_what_autograd_saves(dtype, dropout, checkpointing, shape):
    """The estimate's kept activations (each norm's input, each matmul's, q, k, v, the MLP's hidden layer,
    dropout masks, attention's math path with dropout on a CPU, the head's log-probabilities; with activation
    checkpointing each block's input) against the storages autograd saves in a forward, within 2%;
    autocast's weight copies exactly."""
    model = small_model(dropout=dropout, **shape).train()
    if checkpointing:
        core.checkpoint_activations(model)
    B = 3
    idx = torch.randint(0, shape["vocab_size"], (B, shape["block_size"]))
    activations, copies = saved_bytes(model, idx, dtype)
    a = torch.finfo(dtype).bits // 8
    kept, _ = core.activation_bytes_per_token(model, CPU, a, checkpointing)
    rel = 0.02 if "pos_embedding" not in shape else 0.05
    assert kept * B * shape["block_size"] == pytest.approx(activations, rel=rel), "formula vs saved tensors"
    n = sum(p.numel() for p in model.parameters())
    weights = core.estimate_memory(model, B, CPU, dtype).weights
    assert weights - 4 * n == copies, "estimated autocast weight copies vs those autograd saved"


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_weights_gradients_and_optimizer_state_are_a_real_steps(optimizer):
    """fp32 weights, gradients and the optimizer's state after a real step, byte for byte (the step counts
    aside): AdamW's two moments for every parameter, or Muon's momentum for the blocks' matrices."""
    model = small_model(n_layer=2, n_embd=64, n_head=2).train()
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), optimizer)
    idx = torch.randint(0, 80, (2, 32))
    model(idx, idx)[1].backward()
    opt.step()
    parts = getattr(opt, "optimizers", {"adamw": opt})
    state = sum(t.numel() * t.element_size() for o in parts.values() for s in o.state.values()
                for name, t in s.items() if name != "step")
    est = core.estimate_memory(model, 2, CPU, torch.float32, optimizer)
    assert est.weights == sum(p.numel() * 4 for p in model.parameters()), "weights"
    assert est.grads == sum(p.grad.numel() * 4 for p in model.parameters()), "gradients"
    assert est.optimizer == state, f"{optimizer} state"


# Runs train.train on each config in a fresh process and prints, for each, the growth of its peak resident
# memory and the run's estimate. A first, tiny run loads the libraries and thread pools loaded on first use.
PEAK_DRIVER = """
import gc, json, sys
import torch
import bench, train
warm, *configs = (train.TrainConfig(**c) for c in json.loads(sys.argv[1]))
train.Run.save = lambda self, name: None  # a checkpoint's write is no part of a step
estimates, check, cpu = [], train.Run.check_memory, torch.device("cpu")
train.Run.check_memory = lambda self, model: (check(self, model), estimates.append(self.memory.total))
train.train(warm)
peaks = []
for cfg in configs:
    gc.collect()
    before = bench.reset_peak(cpu)
    train.train(cfg)
    peaks.append({"growth": bench.peak_held(cpu) - before, "estimate": estimates[-1]})
print(json.dumps(peaks))
"""
MEASURED = {  # name: (the data's vocabulary, keys)
    "fp32": (23, dict(n_layer=4, n_head=4, n_embd=128, block_size=256, batch_size=8)),
    "bf16, dropout": (23, dict(n_layer=3, n_head=3, n_embd=192, block_size=256, batch_size=4,
                               dtype="bfloat16", dropout=0.1)),
    "muon, checkpointing, vocab 8000": (8000, dict(
        n_layer=2, n_head=2, n_embd=128, block_size=128, batch_size=8, optimizer="muon",
        activation_checkpointing=True, gradient_accumulation_steps=1)),
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_estimate_within_30_percent_of_the_measured_peak(tmp_path):
    """train.py's loop (two steps, evals, the first micro-step timed) in a fresh process: the growth of its
    peak resident memory against the run's estimate, for each of three runs. glibc keeps freed blocks under a
    moving threshold (up to 32 MiB) for reuse, and these runs' tensors are that small: a fixed threshold
    returns every freed tensor, so that the resident memory follows the tensors alive, as it does for tensors
    past 32 MiB (larger runs, which the check is for)."""
    steps = dict(max_iters=2, lr_decay_iters=2, warmup_iters=0, eval_interval=2, eval_iters=1)
    configs = [tiny_train_config(tmp_path / "warm", **steps)]
    for name, (vocab, keys) in MEASURED.items():
        data = write_dataset(tmp_path / f"data{vocab}", n_train=50000, n_val=5000, vocab=vocab)
        configs.append(tiny_train_config(tmp_path / name, dataset=data, **{**steps, **keys}))
    r = run([sys.executable, "-c", PEAK_DRIVER, json.dumps([vars(cfg) for cfg in configs])],
            env={"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert r.returncode == 0, r.stderr[-3000:]
    peaks = dict(zip(MEASURED, json.loads(r.stdout.splitlines()[-1])))
    table = {name: f"{p['growth'] / 2**20:.0f} MiB measured, {p['estimate'] / 2**20:.0f} estimated"
             for name, p in peaks.items()}
    assert all(p["estimate"] == pytest.approx(p["growth"], rel=0.3) for p in peaks.values()), table


@pytest.fixture
def free(monkeypatch):
    """free(n): the device has n bytes free, as core.free_memory reports it to train.py."""
    return lambda n: monkeypatch.setattr(train, "free_memory", lambda device: n)


def run_estimate(cfg) -> core.MemoryEstimate:
    """What train.py estimates for cfg (one process, on the CPU), from a model of its shape."""
    model = GPT(GPTConfig(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                          block_size=cfg.block_size, vocab_size=64, dropout=cfg.dropout))  # 23 ids, padded
    return core.estimate_memory(model, cfg.batch_size, CPU, torch.float32, cfg.optimizer,
                                cfg.activation_checkpointing, accum=cfg.gradient_accumulation_steps)


def test_the_start_line_gives_the_estimate_beside_the_free_memory(tiny, free, capsys):
    free(8 * 2**30)
    train.train(replace(tiny, max_iters=2, eval_interval=2))
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == f"memory: {run_estimate(tiny)} of 8.0 GiB free on cpu", lines[:5]
    assert lines[2].startswith("device cpu") and lines[4].startswith("one micro-step takes")


def test_close_to_the_limit_the_start_line_says_so(tiny, free, capsys):
    need = run_estimate(tiny).total
    free(int(need / 0.9))
    train.train(replace(tiny, max_iters=1))
    assert "(90% of it: close to the limit)" in capsys.readouterr().out


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


def test_a_run_that_cannot_fit_is_refused_with_the_keys_that_make_it_fit(tiny, free, monkeypatch):
    """One line, exit 2, before the model is made or out_dir claimed; the command it suggests then starts
    (and fits: it is checked too)."""
    cfg = replace(tiny, batch_size=8, gradient_accumulation_steps=2, max_iters=1)
    need = run_estimate(cfg)
    free(need.total * 3 // 4)
    with monkeypatch.context() as m:
        for step in ("build_model", "claim_out_dir"):
            m.setattr(train, step, lambda *args, step=step: pytest.fail(f"{step} before the refusal"))
        r = in_process(train.main, *cli_args(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: this run needs "), r.stderr
    assert f"needs {need} but cpu has {core.human_bytes(need.total * 3 // 4)} free: it fits with " in r.stderr
    assert "; or --check_memory=False to start anyway" in r.stderr
    assert not os.path.exists(cfg.out_dir), "nothing written"
    # the largest smaller micro-batch that fits with a margin, the same tokens per step; then each key alone
    suggested = r.stderr.split("it fits with ")[1].split(" (~")[0].split()
    assert [flag.split("=")[0] for flag in suggested] == ["--batch_size", "--gradient_accumulation_steps"]
    b, g = (int(flag.split("=")[1]) for flag in suggested)
    assert b < 8 and b * g == 16, "the same tokens per step"
    assert run_estimate(replace(cfg, batch_size=b)).total <= 0.8 * need.total * 3 // 4
    assert in_process(train.main, *cli_args(cfg), *suggested).returncode == 0
    assert os.path.isfile(os.path.join(cfg.out_dir, "ckpt.pt"))


def test_what_does_not_fit_at_all_is_named(tiny, free):
    free(1024)  # not even the weights
    r = in_process(train.main, *cli_args(replace(tiny, dtype="float32")))
    assert r.returncode == 2
    assert ("even with --batch_size=1 --gradient_accumulation_steps=8 --activation_checkpointing=True "
            "--dtype=bfloat16 (~") in r.stderr
    assert "it does not fit: a smaller model (n_layer, n_embd, block_size) or FSDP on more GPUs" in r.stderr


def test_check_memory_false_starts_anyway_and_says_so(tiny, free, capsys):
    free(1024)
    train.train(replace(tiny, max_iters=1, check_memory=False))
    out = capsys.readouterr().out
    assert "of 0.0 MiB free on cpu (" in out
    assert "of it: it may not fit; started as check_memory=False asks)" in out


def test_a_resumed_run_is_checked_before_its_files_change(tiny, free, tmp_path):
    first = replace(tiny, max_iters=2, eval_interval=2)
    train.train(first)
    before = snapshot(tmp_path / "out")
    free(1024)
    r = in_process(train.main, "--init_from=resume", f"--out_dir={first.out_dir}", "--max_iters=4")
    assert r.returncode == 2 and r.stderr.startswith("error: this run needs "), r.stderr
    assert snapshot(tmp_path / "out") == before


def test_eval_only_is_not_checked_for_training(tiny, free):
    """An evaluation holds no gradients, optimizer state or kept activations: not refused, no memory line."""
    train.train(replace(tiny, max_iters=2, eval_interval=2))
    free(1024)
    r = in_process(train.main, "--init_from=resume", f"--out_dir={tiny.out_dir}", "--eval_only=True")
    assert r.returncode == 0 and "eval at iter 2: " in r.stdout and "memory:" not in r.stdout, r.stderr


def test_pretrained_weights_are_checked_once_loaded_leaving_no_out_dir(tiny, free, make_hf_dir):
    """A HF model's shape is known once loaded: the check comes then, before the device, and the out_dir the
    run made goes again."""
    free(1024)
    hf = make_hf_dir(n_positions=16, vocab_size=64)
    r = in_process(train.main, *cli_args(replace(tiny, init_from=hf, out_dir=tiny.out_dir + "/a/b")))
    assert r.returncode == 2 and r.stderr.startswith("error: this run needs "), r.stderr
    assert not os.path.exists(tiny.out_dir), "the folders the run made are gone"


def fake_files(monkeypatch, files: dict[str, str]) -> None:
    """open() of a path in files reads its text; of any other /proc or /sys path, fails as if missing."""
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path in files:
            import io
            return io.StringIO(files[path])
        if str(path).startswith(("/proc/", "/sys/")):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr("builtins.open", fake_open)


MEMINFO = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"


@pytest.mark.parametrize("files,free", [
    ({"/proc/meminfo": MEMINFO}, 20000000 * 1024),
    # a container's limit (cgroup v2): 8 GiB less 5 GiB in use, 1 GiB of it file cache that can be dropped
    ({"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory.max": f"{8 * 2**30}\n",
      "/sys/fs/cgroup/memory.current": f"{5 * 2**30}\n",
      "/sys/fs/cgroup/memory.stat": f"anon 1\ninactive_file {2**30}\n"}, 4 * 2**30),
    ({"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory.max": "max\n"}, 20000000 * 1024),
    # cgroup v1's "no limit" is a huge number; a limit above what the machine has available does not count
    ({"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"},
     20000000 * 1024),
    ({"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory/memory.limit_in_bytes": f"{64 * 2**30}\n",
      "/sys/fs/cgroup/memory/memory.usage_in_bytes": "0\n", "/sys/fs/cgroup/memory/memory.stat": ""},
     20000000 * 1024),
])
def test_free_memory_on_a_cpu_is_the_available_ram_within_a_containers_limit(monkeypatch, files, free):
    fake_files(monkeypatch, files)
    assert core.free_memory(CPU) == free


def test_free_memory_without_proc_falls_back_to_free_pages_or_none(monkeypatch):
    fake_files(monkeypatch, {})
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert core.free_memory(CPU) == 4096000

    def unknown(name):  # macOS has no SC_AVPHYS_PAGES
        raise ValueError(name)
    monkeypatch.setattr(os, "sysconf", unknown)
    assert core.free_memory(CPU) is None


def test_free_memory_on_cuda_is_cudas(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (123 * 2**20, 80 * 2**30))
    assert core.free_memory(torch.device("cuda", 1)) == 123 * 2**20
