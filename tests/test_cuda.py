"""The main job on a CUDA GPU: HF parity, cached and compiled generation, compiled train steps in bf16 and
fp16, fused AdamW and Muon, train.py end to end (compile, resume, NCCL under torchrun), flash attention,
what eval.py and sample.py do with a CUDA-trained run, and the memory estimate against CUDA's peak. Every
test is marked cuda: deselected (and counted) where there is no CUDA GPU; `python -m pytest -m cuda tests`
runs them alone."""
import os
import shutil
import sys
from dataclasses import replace

import pytest
import torch
from transformers import GPT2LMHeadModel

import bench
import core
import train
from conftest import cli_args, metrics, preset, python, run, small_model, write_dataset
from model import GPT

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")
# config/arch_llama.py's keys with grouped-query attention (2 key/value heads of 4): RoPE, RMSNorm, SwiGLU
LLAMA_GQA = {**preset("llama"), "n_kv_head": 2}


@pytest.fixture
def no_tf32():
    """fp32 matmuls really in fp32: TF32 would round their inputs to 10 mantissa bits."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture
def cuda_run(tiny_config):
    """cuda_run(**overrides) -> a tiny TrainConfig on the GPU, compiled, bf16."""
    return lambda **kw: tiny_config(**{"device": "cuda", "compile": True, "dtype": "bfloat16", **kw})


def train_losses(cfg) -> list[float]:
    return [r["loss"] for r in metrics(cfg) if "loss" in r and "val_loss" not in r]


@pytest.mark.hf_parity
def test_hf_parity_on_cuda(make_hf_dir, no_tf32):
    """fp32 logits within 1e-4 of HF's; bf16 autocast's loss within 1e-2 of fp32's."""
    path = make_hf_dir(seed=3, n_embd=128, n_layer=2, n_head=4, n_positions=128, vocab_size=300)
    hf = GPT2LMHeadModel.from_pretrained(path).eval().to(CUDA)
    ours = GPT.from_pretrained(path).eval().to(CUDA)
    idx = torch.randint(0, 300, (4, 128), device=CUDA)
    with torch.no_grad():
        torch.testing.assert_close(ours(idx, all_logits=True)[0], hf(idx).logits, atol=1e-4, rtol=0)
        _, fp32 = ours(idx[:, :-1], idx[:, 1:])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, bf16 = ours(idx[:, :-1], idx[:, 1:])
    assert abs(bf16.item() - fp32.item()) < 1e-2


@pytest.mark.parametrize("arch", [{}, LLAMA_GQA], ids=["gpt2", "llama_gqa"])
def test_cached_and_compiled_generation_equal_uncached_on_cuda(no_tf32, arch):
    model = small_model(n_head=4, **arch).double().to(CUDA)
    idx = torch.randint(0, 80, (3, 6), device=CUDA)
    uncached = model.generate(idx, 40, temperature=0, use_cache=False)
    assert torch.equal(model.generate(idx, 40, temperature=0), uncached)
    model.compile_decoding()
    assert torch.equal(model.generate(idx, 40, temperature=0), uncached)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_compiled_training_falls_in_each_dtype(cuda_run, dtype):
    """30 compiled steps (fp16 with its GradScaler): finite losses that fall."""
    cfg = cuda_run(dtype=dtype, max_iters=30, lr_decay_iters=30, eval_interval=30, log_interval=1)
    out = train.train(cfg)
    losses = train_losses(cfg)
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5 and out["iter_num"] == 30


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_optimizer_steps_on_cuda(optimizer):
    model = small_model().to(CUDA).train()
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), optimizer)
    adamw = opt.optimizers["adamw"] if optimizer == "muon" else opt
    assert all(g.get("fused") for g in adamw.param_groups)  # one kernel launch a step, not one per tensor
    before = [p.detach().clone() for p in model.parameters()]
    idx = torch.randint(0, 80, (4, 16), device=CUDA)
    model(idx[:, :-1], idx[:, 1:])[1].backward()
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_train_py_on_cuda_then_cpu_sampling_eval_and_export(cuda_run, tmp_path):
    """python train.py on the GPU with compile=True: the loss falls; ckpt.pt loads on the CPU; sample.py and
    eval.py's export read it."""
    cfg = cuda_run(max_iters=40, lr_decay_iters=40, eval_interval=20)
    r = python("train.py", *cli_args(cfg))
    assert r.returncode == 0, r.stderr
    evals = [rec["val_loss"] for rec in metrics(cfg) if "val_loss" in rec]
    assert evals[-1] < 0.8 * evals[0]
    ckpt = core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"), "cpu")
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())
    for device in ("cpu", "cuda"):
        r = python("sample.py", f"--out_dir={cfg.out_dir}", f"--device={device}", "--num_samples=2",
                   "--max_new_tokens=20", "--start=A")
        assert r.returncode == 0 and r.stdout.count("\n---") == 2, r.stderr
    r = python("eval.py", "--mode=export", f"--out_dir={cfg.out_dir}", f"--output={tmp_path / 'hf'}")
    assert r.returncode == 0 and (tmp_path / "hf" / "meta.json").exists(), r.stderr


def test_exact_resume_on_cuda(cuda_run):
    """Stopped at iter 10 and resumed: the same losses as an uninterrupted run. It takes the same kernels on
    both sides: eager (compile's autotuning may pick others), fp32, and cuBLAS's deterministic workspace
    (CUBLAS_WORKSPACE_CONFIG=:4096:8). Dropout is reseeded per step, as always."""
    env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    whole = cuda_run(compile=False, dtype="float32", max_iters=20, eval_interval=10, log_interval=1,
                     dropout=0.1)
    assert python("train.py", *cli_args(whole), env=env).returncode == 0
    part = replace(whole, out_dir=whole.out_dir + "-resumed", max_iters=10)
    assert python("train.py", *cli_args(part), env=env).returncode == 0
    r = python("train.py", "--init_from=resume", f"--out_dir={part.out_dir}", "--max_iters=20", env=env)
    assert r.returncode == 0, r.stderr
    assert train_losses(whole) == train_losses(replace(part, max_iters=20))


@pytest.mark.parametrize("nproc", [1, 2])
def test_torchrun_over_nccl(cuda_run, nproc):
    if torch.cuda.device_count() < nproc:
        pytest.skip(f"needs {nproc} GPUs, this machine has {torch.cuda.device_count()}")
    cfg = cuda_run(compile=False, max_iters=10, eval_interval=10, gradient_accumulation_steps=2 * nproc)
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    r = run([torchrun, "--standalone", f"--nproc_per_node={nproc}", "train.py", *cli_args(cfg)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["iter_num"] == 10


@pytest.mark.parametrize("arch", [{}, LLAMA_GQA], ids=["gpt2", "llama_gqa"])
def test_flash_attention_is_selected_for_training_shapes(arch):
    """The profiler's kernel list, not just the result: SDPA in bf16 at GPT-2's head size runs flash, with
    grouped-query attention too."""
    model = small_model(block_size=256, n_embd=256, n_head=4, n_layer=1, **arch).to(CUDA).train()
    idx = torch.randint(0, 80, (8, 256), device=CUDA)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(idx[:, :-1], idx[:, 1:])[1].backward()
        torch.cuda.synchronize()
    names = " ".join(e.key for e in prof.key_averages()).lower()
    assert "flash" in names, names[:2000]


@pytest.mark.parametrize("shape", [
    dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304, batch_size=4),  # GPT-2 124M
    dict(n_layer=4, n_head=8, n_embd=512, block_size=512, vocab_size=512, batch_size=16),  # blocks dominate
])
def test_memory_estimate_against_bench_memory_on_cuda(shape):
    """bench.py --mode=memory on the GPU (fp32, eager, AdamW): the peak of CUDA memory a step allocates
    against core.estimate_memory's, within 30%."""
    r = bench.bench_memory(bench.BenchConfig(mode="memory", device="cuda", iters=2, **shape), CUDA)
    assert r["estimate"] == pytest.approx(r["peak"], rel=0.3), f"estimate vs measured peak (MiB): {r}"


@pytest.mark.parametrize("vocab", [23, 8000])
def test_memory_estimate_against_a_bf16_run_on_cuda(cuda_run, monkeypatch, tmp_path, vocab):
    """train.py's own loop on the GPU in bf16, eager (two steps, evals, the timed micro-step): the peak of
    CUDA memory it allocates against the run's estimate, within 30%."""
    estimates, check = [], train.Run.check_memory
    monkeypatch.setattr(train.Run, "check_memory",
                        lambda self, model: (check(self, model), estimates.append(self.memory.total)))
    monkeypatch.setattr(train.Run, "save", lambda self, name: None)  # a checkpoint is no part of a step
    data = write_dataset(tmp_path / "data", n_train=100000, n_val=10000, vocab=vocab)
    cfg = cuda_run(compile=False, dataset=data, n_layer=4, n_head=8, n_embd=512, block_size=512,
                   batch_size=16, max_iters=2, lr_decay_iters=2, warmup_iters=0, eval_interval=2,
                   eval_iters=1)
    before = bench.reset_peak(CUDA)
    train.train(cfg)
    peak = bench.peak_held(CUDA) - before
    assert estimates[0] == pytest.approx(peak, rel=0.3), f"estimate {estimates[0]} vs measured peak {peak}"
