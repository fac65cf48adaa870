"""FSDP2 (fsdp=True under torchrun) against one process, its checkpoints against every other reader, and
activation checkpointing against plain backward. The torchrun runs are `slow`: ~8 s each on 2 cores."""
import copy
import os
import signal
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch

import core
import train
from conftest import ARCHS, GLOO_TEARDOWN, cli_args, metrics, python, small_model, torchrun_ok
from test_runs import Background

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py")


def weights(cfg) -> dict:
    return core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["model"]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=atol, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_fsdp_equals_one_process_and_its_checkpoints_go_anywhere(tiny, tmp_path, arch):
    """Two sharded processes train the weights one process does (AdamW, gradient accumulation, clipping)
    and draw its eval samples (every process takes part in each forward); an FSDP run stopped and resumed
    under FSDP equals the uninterrupted one; its checkpoint is the usual single file, which resumes in one
    process and loads for sampling."""
    # bias=False for the reason test_ddp_equals_one_process gives
    cfg = replace(tiny, max_iters=6, eval_interval=3, log_interval=1, gradient_accumulation_steps=4,
                  grad_clip=0.5, fsdp=True, eval_samples=1, eval_sample_tokens=4, eval_sample_prompt="A",
                  **{**ARCHS[arch], "bias": False})
    one = replace(cfg, out_dir=str(tmp_path / "one"))
    train.train(one)  # fsdp has no effect in one process
    whole = replace(cfg, out_dir=str(tmp_path / "whole"))
    r = python(*TORCHRUN, *cli_args(whole))
    assert torchrun_ok(r), r.stderr[-3000:]
    assert_same_weights(weights(one), weights(whole), atol=1e-5)
    loss = lambda c: [r["loss"] for r in metrics(c) if "loss" in r]  # noqa: E731
    np.testing.assert_allclose(loss(whole), loss(one), atol=1e-5)
    # the logged gradient norm is the whole model's, not one process's shard of it
    norm = lambda c: [r["grad_norm"] for r in metrics(c) if "grad_norm" in r]  # noqa: E731
    assert len(norm(one)) == 6 and min(norm(one)) > 0.5  # above grad_clip: clipping acted
    np.testing.assert_allclose(norm(whole), norm(one), rtol=1e-5)
    samples = lambda c: [r["samples"] for r in metrics(c) if "samples" in r]  # noqa: E731
    assert len(samples(one)) == 3 and samples(whole) == samples(one)
    if arch != "gpt2":  # what follows is the checkpoint's way through FSDP, the same for every architecture
        return  # (test_fsdp_in_this_process_syncs_once_a_step_and_resumes takes the preset through it)

    part = replace(cfg, out_dir=str(tmp_path / "part"), max_iters=3)
    assert torchrun_ok(python(*TORCHRUN, *cli_args(part)))
    r = python(*TORCHRUN, "--init_from=resume", f"--out_dir={part.out_dir}", "--max_iters=6")
    assert torchrun_ok(r), r.stderr[-3000:]
    assert_same_weights(weights(whole), weights(part), atol=1e-6)  # the sharded AdamW state came back
    ckpt = core.load_checkpoint(os.path.join(part.out_dir, "ckpt.pt"))
    plain = core.model_from_checkpoint(ckpt)
    assert ckpt["optimizer"]["state"].keys() == set(range(len(list(plain.parameters()))))

    result = train.train(replace(part, init_from="resume", max_iters=7))  # one process, from FSDP's file
    assert result["iter_num"] == 7
    model, tokenizer, _ = core.load_model("resume", part.out_dir)
    assert model.generate(torch.zeros(1, 1, dtype=torch.long), 3, temperature=0).shape == (1, 4)


@pytest.mark.slow
def test_sigterm_under_fsdp_saves_and_exits_zero(tiny):
    cfg = replace(tiny, max_iters=100000, lr_decay_iters=100000, eval_interval=100000, log_interval=1,
                  fsdp=True)
    with Background(*TORCHRUN, *cli_args(cfg)) as run:
        run.wait_for("iter 3: loss")
        # the workers, as a scheduler stops them (torchrun itself exits 1 on a signal of its own)
        with open(f"/proc/{run.proc.pid}/task/{run.proc.pid}/children") as f:
            workers = [int(pid) for pid in f.read().split()]
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        assert run.proc.wait(timeout=120) == 0, "".join(run.err)[-3000:]
        assert "stopped by a signal" in "".join(run.out)
    assert core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["iter_num"] >= 3


def test_fsdp_computes_in_bf16_on_cuda_only(tiny, monkeypatch):
    """Each block, then the root, is sharded; on CUDA in bf16 FSDP gathers bf16 weights and reduces gradients
    in fp32 over fp32 master weights, elsewhere it computes in the run's dtype. fully_shard is a stand-in
    here: the real one needs a process group (the tests below run it)."""
    import torch.distributed.fsdp as fsdp
    policies = []
    monkeypatch.setattr(fsdp, "fully_shard", lambda module, mp_policy: policies.append(mp_policy))
    mixed = (torch.bfloat16, torch.float32)
    for device, dtype, want in (("cuda", "bfloat16", mixed), ("cuda", "float32", (None, None)),
                                ("cpu", "bfloat16", (None, None))):
        policies.clear()
        cfg = replace(tiny, fsdp=True, dtype=dtype)
        train.prepare(small_model(n_layer=3), cfg, torch.device(device), True)
        assert [(p.param_dtype, p.reduce_dtype) for p in policies] == [want] * 4, (device, dtype)


@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_fsdp_in_this_process_syncs_once_a_step_and_resumes(tiny, tmp_path, monkeypatch, arch):
    """A one-process FSDP run in this process (torchrun's environment, world size 1): gradients stay whole
    and local until the last micro-step of each step, then are reduce-scattered once, not once a
    micro-step; its checkpoint, gathered from the shards, resumes under FSDP (the optimizer state cut into
    shards again) to the weights of an uninterrupted plain run."""
    from torch.distributed.fsdp import FSDPModule
    cfg = replace(tiny, fsdp=True, max_iters=2, gradient_accumulation_steps=3, eval_interval=2,
                  **{**ARCHS[arch], "bias": False})
    plain = replace(cfg, max_iters=4, out_dir=str(tmp_path / "plain"))
    train.train(plain)  # no process group: fsdp has no effect
    calls = []
    sync = FSDPModule.set_requires_gradient_sync
    monkeypatch.setattr(FSDPModule, "set_requires_gradient_sync",
                        lambda self, on, **kw: calls.append(on) or sync(self, on, **kw))
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", str(free_port()))):
        monkeypatch.setenv(key, value)
    assert train.train(cfg)["iter_num"] == 2 and calls == [False, False, True] * 2
    assert train.train(replace(cfg, init_from="resume", max_iters=4))["iter_num"] == 4
    assert_same_weights(weights(plain), weights(cfg), atol=1e-6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp_and_muon_are_refused_together():
    from configurator import UsageError, configure
    with pytest.raises(UsageError, match="fsdp=True: Muon orthogonalizes whole matrices"):
        configure(train.TrainConfig, ["--fsdp=True", "--optimizer=muon"])


@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(arch):
    plain = small_model(dropout=0.1, **ARCHS[arch]).train()
    recomputed = copy.deepcopy(plain)
    core.checkpoint_activations(recomputed)
    x = torch.randint(0, 80, (4, 32))
    results = []
    for model in (plain, recomputed):
        torch.manual_seed(0)  # the same dropout masks: checkpoint replays the RNG when it recomputes
        _, loss = model(x, x)
        loss.backward()
        results.append((loss, {n: p.grad for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.equal(loss_a, loss_b)
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], atol=1e-6, rtol=0)
    saved = []  # what autograd keeps for backward: far less when blocks recompute
    for model in (plain, recomputed):
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            model(x, x)[1].backward()
        saved.append(None)
    split = saved.index(None)
    assert sum(saved[split + 1:-1]) < 0.5 * sum(saved[:split])


@pytest.mark.slow
def test_fsdp_holds_half_of_what_ddp_does_per_process():
    shape = ["--mode=memory", "--device=cpu", "--iters=1", "--n_layer=2", "--n_head=2", "--n_embd=64",
             "--block_size=32", "--vocab_size=256", "--batch_size=2"]
    bench_run = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "bench.py")
    totals = {}
    for name, extra in (("DDP", []), ("FSDP", ["--fsdp=True"])):
        r = python(*bench_run, *shape, *extra)
        assert r.returncode == 0 or GLOO_TEARDOWN in r.stderr, r.stderr[-3000:]  # the row below is complete
        row = [line for line in r.stdout.splitlines() if f"2 processes, {name}" in line]
        assert len(row) == 1, r.stdout
        totals[name] = float(row[0].split("|")[5])  # params + grads + optimizer, MiB, rank 0
    assert totals["FSDP"] == pytest.approx(totals["DDP"] / 2, rel=0.1)
