"""bench.py runs on CPU and reports its figures; the Muon option groups parameters right and trains."""
import contextlib
import io
import os
from dataclasses import replace

import pytest
import torch

import bench
import core
import train
from configurator import UsageError, configure
from model import GPT, GPTConfig, Optimizers
from conftest import ARCHS, ROOT, metrics

TINY = ["--device=cpu", "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--vocab_size=128",
        "--batch_size=4", "--warmup_iters=1", "--iters=3"]


MODERN = str(ROOT / "config" / "arch_modern.py")
LLAMA = str(ROOT / "config" / "arch_llama.py")


@pytest.mark.parametrize("extra", [["--compile=False"], ["--compile=False", "--optimizer=muon"],
                                   ["--compile=False", "--dtype=bfloat16"], [MODERN, "--compile=False"]])
def test_bench_train_prints_figures(capsys, extra):
    r = bench.main(TINY + extra)
    out = capsys.readouterr().out
    assert "ms/iter" in out and "tok/s" in out and "TFLOP/s" in out and "pass --peak_tflops" in out
    # the model's architecture where it is not GPT-2's
    named = "params (bias=False, pos_embedding='rope', norm='rmsnorm', mlp='relu2'" in out
    assert named == (MODERN in extra)
    assert r["ms_per_iter"] > 0 and r["tokens_per_s"] > 0 and r["flops"] > 0 and r["mfu"] is None
    r = bench.main(TINY + extra + ["--peak_tflops=1.0"])
    assert r["mfu"] == pytest.approx(r["flops"] / 1e12)


def test_bench_profile_writes_trace(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bench.main(TINY + ["--compile=False", "--profile=True", "--iters=1"])
    assert os.path.getsize(tmp_path / "bench_trace.json") > 1000


def test_bench_compare(capsys):
    rows = bench.main(TINY + ["--mode=compare", "--iters=2", "--rounds=2"])
    assert rows[0]["optimizer"] == "plain" and len(rows) >= 3
    assert all(r["tokens_per_s"] > 0 for r in rows)
    # the compiled rows really are compiled: a silent fallback to eager would make them eager timings
    assert [r["compiled"] for r in rows] == [r["compile"] for r in rows] and any(r["compile"] for r in rows)
    table = capsys.readouterr().out
    assert all(f"| {r['tokens_per_s']:,.0f} |" in table for r in rows) and "failed: eager" not in table
    # each preset, eager and compiled, timed the model that the command line with the preset file after it
    # builds: its parameter count, which differs for each architecture here
    built = {"keys given": configure(bench.BenchConfig, TINY)}
    built |= {os.path.basename(p): configure(bench.BenchConfig, TINY + [p]) for p in bench.ARCH_PRESETS}
    assert sorted(r["model"] for r in rows) == sorted(["keys given"] * (len(rows) - 4) + 2 * list(built)[1:])
    for r in rows:
        n = GPT(built[r["model"]].gpt_config()).get_num_params()
        assert r["params"] == n, f"{r['model']}: timed a model of {r['params']} parameters, not {n}"
        assert f"| {r['model']} | {n / 1e6:.2f}M |" in table
    assert len({r["params"] for r in rows}) == 3, "the architectures compared have the same parameter count"


def test_with_config_file_is_the_file_after_the_command_line():
    """A preset applied to a config in bench.py is that config with the file read after its keys, as
    configure() reads a command line: every key equal, the preset's own and the others."""
    given = TINY + ["--mode=compare", "--n_layer=3", "--bias=False", "--mlp=swiglu"]
    for path in bench.ARCH_PRESETS:
        ours = bench.with_config_file(configure(bench.BenchConfig, given), path)
        assert ours == configure(bench.BenchConfig, given + [path]), path
    with pytest.raises(UsageError, match="rope.*even head size"):  # checked with the keys it joins
        bench.with_config_file(configure(bench.BenchConfig, TINY + ["--n_head=32"]), bench.ARCH_PRESETS[0])


def test_bench_generate(capsys):
    gen = ["--mode=generate", "--device=cpu", "--n_layer=2", "--n_head=2", "--n_embd=32", "--prompt_len=8"]
    r = bench.main(gen + ["--block_size=64", "--max_new_tokens=50", "--gen_batch=1"])
    out = capsys.readouterr().out
    rows = {"eager fp32", "compiled fp32", "eager bf16", "compiled bf16", "uncached fp32", "HF generate fp32"}
    assert set(r["tokens_per_s"]) == {f"{name}, batch 1" for name in rows}
    assert r["identical"], "our fp32 methods (eager, compiled, uncached) gave different tokens"
    assert r["bf16_compiled_same"], "compiled bf16 decoding gave other tokens than eager bf16"
    assert all(v > 0 for v in r["tokens_per_s"].values()), r["tokens_per_s"]
    # really compiled: eager takes ~0.02 s, compiling > 0.2 s
    assert min(r["compile_s"].values()) > 0.1, r["compile_s"]
    assert 1e9 < r["bandwidth"] < 1e13, r["bandwidth"]
    assert 0.5 < r["bf16_agreement"] <= 1, r["bf16_agreement"]
    assert "| compiled bf16 | 1 |" in out and "identical tokens from each of our fp32 methods: True" in out
    assert "compiling the fp32 decode step:" in out and "memory read bandwidth:" in out
    # past block_size, where HF can't go; a larger batch; no compiling
    r = bench.main(gen + ["--block_size=32", "--max_new_tokens=40", "--hf=False", "--gen_batch=3",
                          "--compile=False"])
    assert r["identical"] and r["compile_s"] == {}
    assert set(r["tokens_per_s"]) == {"eager fp32, batch 1", "eager bf16, batch 1", "uncached fp32, batch 1",
                                      "eager fp32, batch 3", "eager bf16, batch 3"}


GENERATE = ["--mode=generate", "--device=cpu", "--n_layer=2", "--n_head=2", "--n_embd=32", "--prompt_len=8",
            "--block_size=64", "--max_new_tokens=30", "--gen_batch=1", "--compile=False"]


@pytest.mark.hf_parity
@pytest.mark.parametrize("arch", [[], [LLAMA, "--n_kv_head=1"]], ids=["gpt2", "llama_gqa"])
def test_bench_generate_hf_row_gives_our_tokens(arch, capsys):
    """HF's generate, timed beside ours on the same random weights (GPT2LMHeadModel, or LlamaForCausalLM for
    arch_llama.py's keys, core.hf_model), decodes the same greedy tokens."""
    r = bench.main([*arch, *GENERATE])
    assert r["hf_identical"], "HF's generate gave other tokens than ours on the same weights"
    assert "HF generate fp32, batch 1" in r["tokens_per_s"]
    assert "no HF generate row" not in capsys.readouterr().out


def test_bench_generate_of_a_model_no_hf_class_computes(capsys):
    """python bench.py config/arch_modern.py --mode=generate: our rows as ever, and no HF row, which one line
    says why."""
    r = bench.main([MODERN, *GENERATE])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("no HF generate row: cannot export mlp='relu2', logit_softcap=15.0: no HF class "
                      "computes it the same way (the nearest, Qwen3ForCausalLM, needs pos_embedding='rope', "
                      "norm='rmsnorm', mlp='swiglu', qk_norm=True, logit_softcap=None, bias=False)")
    assert set(r["tokens_per_s"]) == {"eager fp32, batch 1", "eager bf16, batch 1", "uncached fp32, batch 1"}
    assert r["identical"] and r["hf_identical"] is None
    assert not [line for line in out if line.startswith("| HF generate")]


def test_muon_grouping():
    model = GPT(GPTConfig(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32))
    opt = model.configure_optimizers(0.05, 2e-3, (0.9, 0.95), "muon")  # not the defaults
    assert isinstance(opt, Optimizers)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = {names[id(p)] for g in opt.optimizers["muon"].param_groups for p in g["params"]}
    adamw = [{names[id(p)] for p in g["params"]} for g in opt.optimizers["adamw"].param_groups]
    assert muon == {f"transformer.h.{i}.{m}.weight" for i in range(2)
                    for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert adamw[0] == {"transformer.wte.weight", "transformer.wpe.weight"}  # wte is also the tied lm_head
    assert all(n.endswith(".bias") or ".ln_" in n or n.startswith("transformer.ln_f") for n in adamw[1])
    assert muon.isdisjoint(adamw[0] | adamw[1])
    assert len(muon) + len(adamw[0]) + len(adamw[1]) == len(names)
    assert opt.optimizers["adamw"].param_groups[1]["weight_decay"] == 0.0
    (group,) = opt.optimizers["muon"].param_groups  # one lr for both, Muon's matched to AdamW's update size
    assert (group["lr"], group["weight_decay"], group["adjust_lr_fn"]) == (2e-3, 0.05, "match_rms_adamw")
    with pytest.raises(ValueError, match="not 'adamw' or 'muon'"):
        model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "sgd")
    model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))[1].backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad()  # as torch's optimizers do by default: the gradients are freed, not zeroed
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("arch", ["gpt2", "llama_gqa"])
def test_muon_trains_and_resumes(tiny, tmp_path, arch):
    """Muon trains (with SwiGLU's gate and up in one matrix, and grouped-query attention's narrower k and v
    rows in c_attn) and resumes exactly."""
    cfg = replace(tiny, optimizer="muon", out_dir=str(tmp_path / "muon"), **ARCHS[arch])
    train.train(cfg)
    evals = [r["val_loss"] for r in metrics(cfg) if "val_loss" in r]
    assert evals[-1] < evals[0] - 0.5
    straight = core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))
    part = replace(cfg, out_dir=str(tmp_path / "part"), max_iters=10)
    train.train(part)
    train.train(replace(part, init_from="resume", max_iters=20))
    resumed = core.load_checkpoint(os.path.join(part.out_dir, "ckpt.pt"))
    assert all(torch.equal(straight["model"][k], resumed["model"][k]) for k in straight["model"])
    with pytest.raises(UsageError, match="optimizer='muon'"):
        train.train(replace(part, init_from="resume", optimizer="adamw", max_iters=30))


def test_gpu_peak_lookup(monkeypatch):
    """The GPU paths as far as a CPU machine can take them: the peak-FLOPs lookup by device name finds each
    entry of the table under the name torch reports (no shorter name shadows a longer one, e.g. "H100" and
    "H100 PCIe"), an unknown GPU and a CPU get None, and --peak_tflops overrides the table."""
    names = {"H100": "NVIDIA H100 80GB HBM3", "H100 PCIe": "NVIDIA H100 PCIe", "A10": "NVIDIA A10",
             "A10G": "NVIDIA A10G", "L4": "NVIDIA L4", "L40S": "NVIDIA L40S", "H200": "NVIDIA H200",
             "GH200": "NVIDIA GH200 480GB"}
    for key in core.PEAK_FLOPS:
        name = names.get(key, f"NVIDIA {key}")
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        assert core.peak_flops(torch.device("cuda")) == core.PEAK_FLOPS[key], name
    assert core.PEAK_FLOPS["H100"] == pytest.approx(989.4e12, rel=1e-3)  # NVIDIA's H100 SXM datasheet
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert core.peak_flops(torch.device("cuda")) is None
    assert core.peak_flops(torch.device("cpu")) is None
    assert core.peak_flops(torch.device("cpu"), peak_tflops=2.5) == 2.5e12


def test_auto_dtype_choices(monkeypatch):
    """...and the dtype that 'auto' picks on each kind of device."""
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert core.resolve_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert core.resolve_dtype("auto", cuda) == torch.float16  # with a GradScaler, in train.py
    cpu = torch.device("cpu")
    for has_bf16 in (True, False):
        monkeypatch.setattr(core, "cpu_has_bf16", lambda: has_bf16)
        assert core.resolve_dtype("auto", cpu, n_embd=64) == torch.float32  # not measured below 128 wide
        assert core.resolve_dtype("auto", cpu, n_embd=128) == (torch.bfloat16 if has_bf16 else torch.float32)
        assert core.resolve_dtype("auto", cpu, n_embd=384) == (torch.bfloat16 if has_bf16 else torch.float32)
    assert core.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(UsageError, match="float16 needs a CUDA device"):
        core.resolve_dtype("float16", cpu)
    with pytest.raises(UsageError, match="dtype 'fp8'"):
        core.resolve_dtype("fp8", cpu)


@pytest.mark.parametrize("arch", [[], [MODERN]], ids=["gpt2", "modern"])
def test_compare_says_when_compile_failed(no_compiler, capsys, arch):
    """Every variant runs where compiling fails (of GPT-2 or a preset, which the header names), its row saying
    so."""
    with pytest.warns(UserWarning, match="torch.compile failed"):
        rows = bench.main(arch + TINY + ["--mode=compare", "--iters=1", "--rounds=1", "--compile=False"])
    assert [r["compiled"] for r in rows] == [False] * len(rows)
    out = capsys.readouterr().out
    assert out.count("| failed: eager |") == sum(r["compile"] for r in rows) > 0
    named = "2 layers x 32 (bias=False, pos_embedding='rope', norm='rmsnorm', mlp='relu2'" in out
    assert named == bool(arch)


@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_memory_mode_counts_what_a_step_holds(capsys, arch):
    """One process: parameters, gradients (as many) and AdamW's two moments (twice as many) in fp32, and
    less activation memory kept for the backward when blocks recompute theirs."""
    shape = dict(n_layer=4, n_head=2, n_embd=64, block_size=64, vocab_size=64, **ARCHS[arch])
    cfg = bench.BenchConfig(mode="memory", iters=1, device="cpu", batch_size=4, **shape)
    r = bench.bench_memory(cfg, torch.device("cpu"))
    n = sum(p.numel() for p in GPT(GPTConfig(**shape)).parameters())
    assert r["params"] == pytest.approx(4 * n / 2**20) and r["grads"] == r["params"]
    assert r["optimizer"] == pytest.approx(2 * r["params"], rel=1e-3)  # exp_avg, exp_avg_sq (+ step counts)
    assert r["activations_checkpointed"] < 0.6 * r["activations"]
    assert "| one process |" in capsys.readouterr().out


@pytest.mark.parametrize("flags,native", [("fpu avx512f avx512_bf16 sse", True),
                                          ("fpu amx_bf16 amx_tile", True), ("fpu avx512f avx2", False),
                                          (None, False)])
def test_cpu_has_bf16_reads_the_cpu_flags(monkeypatch, flags, native):
    """AVX512-BF16 or AMX: either one is native bf16; a CPU with neither, or no /proc/cpuinfo, is not."""
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path != "/proc/cpuinfo":
            return real_open(path, *args, **kwargs)
        if flags is None:
            raise FileNotFoundError(path)
        return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr("builtins.open", fake_open)
    assert core.cpu_has_bf16() is native


@pytest.mark.parametrize("available,count,built,device,dtype,problem", [
    (False, 2, "12.4", "cuda", "float32",
     "device='cuda': CUDA is not available here (no CUDA GPU found): use --device=cpu or auto"),
    (False, 0, None, "cuda:0", "float32", "device='cuda:0': CUDA is not available here (this torch is built "
                                          "without CUDA): use --device=cpu or auto"),
    (True, 2, "12.4", "cuda:2", "float32",
     "device='cuda:2': this machine has 2 CUDA device(s): use cuda:0 to cuda:1"),
    (True, 2, "12.4", "cuda:1", "float16", None), (True, 1, "12.4", "cuda", "float32", None),
    (False, 0, None, "mps", "float32",
     "device='mps': MPS is not available here (it needs Apple silicon): use --device=cpu or auto"),
    (False, 0, None, "cpu", "float16",
     "dtype='float16': needs a CUDA device (it trains with a GradScaler): use bfloat16 or float32")])
def test_device_problems_name_the_fix(monkeypatch, available, count, built, device, dtype, problem):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.version, "cuda", built)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert core.device_problems(device, dtype) == ([problem] if problem else [])


def test_named_dtypes_and_their_errors():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert core.resolve_dtype("float16", cuda) == torch.float16
    assert core.resolve_dtype("float32", cpu) == torch.float32
    with pytest.raises(UsageError, match="dtype 'fp8' is not one of auto, float32, bfloat16, float16$"):
        core.resolve_dtype("fp8", cpu)
    with pytest.raises(UsageError, match=r"^dtype=float16 needs a CUDA device \(it trains with a "
                                         r"GradScaler\); use bfloat16 or float32$"):
        core.resolve_dtype("float16", cpu)


def test_autocast_computes_in_the_dtype_asked_for_and_fp32_is_no_autocast():
    a = torch.randn(4, 4)
    assert isinstance(core.autocast(torch.device("cpu"), torch.float32), contextlib.nullcontext)
    for dtype in (torch.bfloat16, torch.float16):  # fp16 is not CPU autocast's default
        with core.autocast(torch.device("cpu"), dtype):
            assert (a @ a).dtype == dtype
