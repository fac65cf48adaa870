"""train.py: schedule, batches, checkpoints, exact resume, DDP == one process, signals, clear errors."""
import contextlib
import functools
import json
import math
import os
import re
import shutil
import signal
import time
from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bench
import core
import train
from configurator import UsageError
from conftest import ARCHS, cli_args, in_process, metrics, python, torchrun_ok, write_dataset
from core import get_batch, load_checkpoint, read_metrics, save_checkpoint
from model import GPT, GPTConfig
from train import TrainConfig, batch_offsets, get_lr


def test_get_lr_endpoints():
    cfg = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, lr_decay_iters=110)
    assert get_lr(0, cfg) == pytest.approx(1 / 11)
    assert get_lr(9, cfg) == pytest.approx(10 / 11)
    assert get_lr(10, cfg) == pytest.approx(1.0)  # the peak, where the cosine starts
    assert get_lr(60, cfg) == pytest.approx(0.55)  # halfway down
    assert get_lr(110, cfg) == pytest.approx(0.1) and get_lr(10_000, cfg) == pytest.approx(0.1)
    assert all(get_lr(i, cfg) >= get_lr(i + 1, cfg) for i in range(10, 120))
    same = replace(cfg, lr_decay_iters=10)  # warmup == decay: no division by zero
    assert [get_lr(i, same) for i in (9, 10, 11)] == [pytest.approx(10 / 11), 0.1, 0.1]
    assert get_lr(5, replace(cfg, decay_lr=False)) == 1.0


def test_batches_depend_on_seed_and_step_only():
    a = batch_offsets(1337, 5, 8, 1000, 16)
    assert np.array_equal(a, batch_offsets(1337, 5, 8, 1000, 16))
    assert not np.array_equal(a, batch_offsets(1337, 6, 8, 1000, 16))
    assert not np.array_equal(a, batch_offsets(1, 5, 8, 1000, 16))
    assert a.min() >= 0 and a.max() < 1000 - 16
    data = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(data, a, 16, torch.device("cpu"))
    assert x.shape == (8, 16) and x.dtype == torch.long and torch.equal(y, x + 1)
    assert torch.equal(x[:, 0], torch.from_numpy(a))
    # process_offsets: 2 processes with 2 micro-steps each share out exactly one process's 4 micro-batches
    cfg = TrainConfig(seed=1337, batch_size=3, gradient_accumulation_steps=4, block_size=16)
    whole = train.process_offsets(cfg, 5, 1000, 0, 1)
    assert whole.shape == (4, 3) and np.array_equal(whole.ravel(), batch_offsets(1337, 5, 12, 1000, 16))
    halves = [train.process_offsets(cfg, 5, 1000, rank, 2) for rank in (0, 1)]
    assert all(h.shape == (2, 3) for h in halves) and np.array_equal(np.concatenate(halves), whole)


def test_smoke_loss_falls_and_exact_step_count(tiny):
    result = train.train(tiny)
    records = metrics(tiny)
    evals = [r for r in records if "val_loss" in r]
    assert [r["iter"] for r in evals] == [0, 10, 20]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    for r in evals:  # one byte per token (ASCII characters): bits per byte are the loss in bits
        assert (r["train_bpb"], r["val_bpb"]) == pytest.approx(
            (r["train_loss"] / math.log(2), r["val_loss"] / math.log(2)), rel=1e-6), r
    steps = [r for r in records if "loss" in r]
    assert [r["iter"] for r in steps] == [5, 10, 15, 20]
    assert all(r["ms_per_iter"] > 0 and r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in steps)
    ckpt = load_checkpoint(os.path.join(tiny.out_dir, "ckpt.pt"))
    assert ckpt["iter_num"] == 20 == result["iter_num"]
    assert all(s["step"].item() == 20 for s in ckpt["optimizer"]["state"].values())  # exactly max_iters steps
    assert ckpt["best_val_loss"] == result["best_val_loss"] == min(r["val_loss"] for r in evals[1:])
    assert ckpt["config"]["n_layer"] == 2 and ckpt["meta"]["vocab_size"] == 23
    assert not any(k.startswith("_orig_mod") for k in ckpt["model"])
    with open(os.path.join(tiny.out_dir, "config.json")) as f:
        assert json.load(f)["batch_size"] == 4


def final_weights(cfg):
    return load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["model"]


@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_resume_is_exact(tiny, tmp_path, arch):
    """A run stopped and resumed from its checkpoint alone (python train.py --init_from=resume --out_dir=X:
    its keys, the architecture's among them, from the checkpoint) ends as the uninterrupted run does."""
    # dropout: its randomness must resume too
    tiny = replace(tiny, dropout=0.1, eval_interval=7, log_interval=1, **ARCHS[arch])
    straight = replace(tiny, out_dir=str(tmp_path / "straight"))
    train.train(straight)
    part = replace(tiny, out_dir=str(tmp_path / "parts"), max_iters=9)  # stop between evals
    assert train.train(part)["iter_num"] == 9
    r = in_process(train.main, "--init_from=resume", f"--out_dir={part.out_dir}", "--max_iters=20")
    assert r.returncode == 0, r.stderr
    a, b = final_weights(straight), final_weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda cfg: {r["iter"]: r["loss"] for r in metrics(cfg) if "loss" in r}
    assert losses(straight) == losses(part)


def test_print_step_line_and_eta(capsys):
    r = {"iter": 100, "loss": 2.5, "lr": 6e-4, "grad_norm": 0.5, "ms_per_iter": 250.0, "tokens_per_s": 1234.5,
         "mfu": None}
    train.print_step(r, 3.2e12, True, 5000, time.perf_counter() - 3725.4)
    train.print_step(r, 3.2e12, False, 5000, time.perf_counter())  # not the master: prints nothing
    assert capsys.readouterr().out == ("iter 100: loss 2.5000, lr 6.00e-04, grad norm 0.500, 250.0 ms/iter, "
                                       "1,234 tok/s, 3.20 TFLOP/s, 1:02:05 elapsed, eta 0:20:25\n")


def test_build_model_takes_the_run_dropout_and_refuses_what_does_not_fit(tiny, make_hf_dir):
    meta = core.load_meta(tiny.dataset)
    scratch = train.build_model(replace(tiny), meta, None)
    ckpt = {"model": scratch.state_dict(), "model_args": asdict(scratch.config), "meta": meta}
    resumed = train.build_model(replace(tiny, init_from="resume", dropout=0.2), meta, ckpt)
    assert resumed.config.dropout == 0.2 and scratch.config.dropout == 0.0
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in scratch.state_dict().items())
    chars = meta["chars"]
    for other in ({"vocab_size": 24}, {"chars": chars[::-1]}, {"tokenizer": "gpt2"}):  # one key at a time
        other = {**meta, **other}
        with pytest.raises(UsageError) as e:
            train.build_model(replace(tiny, init_from="resume"), other, ckpt)
        assert str(e.value) == (f"{tiny.dataset} has another vocabulary than the checkpoint's data: "
                                f"{other['vocab_size']} vs 23 tokens, or other chars")
    # GPT-2 weights (a local HF directory here, n_positions=64): the run's dropout, no crop at the full size
    for dropout in (0.0, 0.2):  # HF's own default is 0.1
        model = train.build_model(replace(tiny, init_from=make_hf_dir(vocab_size=23), block_size=64,
                                          dropout=dropout), meta, None)
        assert model.config.dropout == dropout and model.config.block_size == 64
    with pytest.raises(UsageError, match=r"^the data's vocab \(23\) is larger than the model's \(22\)$"):
        train.build_model(replace(tiny, init_from=make_hf_dir(vocab_size=22)), meta, None)
    with pytest.raises(UsageError, match="^block_size=128 exceeds the model's 64$"):
        train.build_model(replace(tiny, init_from=make_hf_dir(), block_size=128), meta, None)


def test_prepare_picks_dtype_by_model_width_and_allows_tf32(tiny, monkeypatch):
    monkeypatch.setattr(core, "cpu_has_bf16", lambda: True)  # as on a CPU with native bf16
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        for width, dtype in ((64, torch.float32), (128, torch.bfloat16)):
            model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=width, block_size=16, vocab_size=64))
            got, _, scaler = train.prepare(model, replace(tiny, dtype="auto"), torch.device("cpu"), False)
            assert got == dtype and not scaler.is_enabled()
        assert torch.get_float32_matmul_precision() == "high"
        assert not any(isinstance(b.forward, functools.partial) for b in model.transformer.h)
        train.prepare(model, replace(tiny, activation_checkpointing=True), torch.device("cpu"), False)
        assert all(b.forward.func is torch.utils.checkpoint.checkpoint for b in model.transformer.h)
    finally:
        torch.set_float32_matmul_precision(previous)


def test_what_a_run_prints(tiny, capsys, monkeypatch):
    """stdout, line by line: the config (verbose), what is about to run, each eval and logged step with the
    numbers metrics.jsonl holds, and where the model went."""
    monkeypatch.setattr(train, "free_memory", lambda device: 2**30)  # the memory line's free memory
    cfg = replace(tiny, max_iters=4, eval_interval=2, log_interval=2, verbose=True)
    train.train(cfg)
    out = capsys.readouterr().out.splitlines()
    config = json.loads("\n".join(out[:out.index("}") + 1]))
    assert config == asdict(cfg) and len(config) > 40
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    expected = [
        f"model: {model.get_num_params() / 1e6:.2f}M parameters, 2 layers, 2 heads, 32 wide, context 16 "
        f"(scratch)",
        f"data: {cfg.dataset}, 20,000 train and 3,000 val tokens; 128 tokens per step x 4 steps = 0.03 "
        f"passes over the train split",  # 128 * 4 / 20,000 = 0.0256
        f"device cpu, torch.float32, compile=False, 1 process(es); writing to {cfg.out_dir}/ (the whole "
        f"config is in config.json)",
        f"memory: {core.estimate_memory(model, 4, torch.device('cpu'), torch.float32, accum=2)} of 1.0 GiB "
        f"free on cpu",
        "one micro-step takes MS ms: about ELAPSED for 4 steps and ELAPSED for 3 evals"]  # evals at 0, 2, 4
    steps = [r for r in metrics(cfg) if "loss" in r]
    evals = [r for r in metrics(cfg) if "val_loss" in r]
    best = min(r["val_loss"] for r in evals)
    for e, r in zip(evals, steps + [None]):
        expected.append(f"iter {e['iter']}: train_loss {e['train_loss']:.4f}, val_loss {e['val_loss']:.4f}, "
                        f"train_bpb {e['train_bpb']:.4f}, val_bpb {e['val_bpb']:.4f}")
        if r:
            flops = model.flops_per_token(16) * r["tokens_per_s"]
            expected.append(
                f"iter {r['iter']}: loss {r['loss']:.4f}, lr {r['lr']:.2e}, grad norm {r['grad_norm']:.3f}, "
                f"{r['ms_per_iter']:.1f} ms/iter, {r['tokens_per_s']:,.0f} tok/s, "
                f"{flops / 1e12:.2f} TFLOP/s, ELAPSED elapsed, "
                f"eta {core.clock((4 - r['iter']) * r['ms_per_iter'] / 1000)}")
    expected += [f"done: {cfg.out_dir}/ckpt.pt holds iter 4, best val loss {best:.4f}; sample from it with",
                 f"  python sample.py --out_dir={cfg.out_dir}"]
    lines = out[out.index("}") + 1:]
    assert len(lines) == len(expected) and [r["iter"] for r in steps] == [2, 4], lines
    for line, want in zip(lines, expected):
        pattern = re.escape(want).replace("ELAPSED", r"\d:\d\d:\d\d").replace("MS", r"[\d,]+")
        assert re.fullmatch(pattern, line), (line, want)

    train.train(replace(cfg, init_from="resume", max_iters=6, peak_tflops=0.01, verbose=False))
    out = capsys.readouterr().out
    assert "context 16 (resume)" in out and "{" not in out
    r = metrics(cfg)[-2]
    assert r["iter"] == 6 and f"tok/s, mfu {100 * r['mfu']:.1f}%, " in out
    assert r["mfu"] == pytest.approx(model.flops_per_token(16) * r["tokens_per_s"] / 1e10)


def test_the_model_line_names_the_keys_that_are_not_gpt2s(tiny, capsys):
    """A preset's run says which architecture keys differ from GPT-2's, in the keys' order, values as a
    config file writes them; keys the preset sets to GPT-2's value (rope_theta, norm_eps) are not named."""
    cfg = replace(tiny, max_iters=1, eval_interval=1, eval_iters=1, **ARCHS["modern_gqa"], mlp_hidden=48)
    train.train(cfg)
    model = [line for line in capsys.readouterr().out.splitlines() if line.startswith("model: ")]
    assert model == [f"model: {train.GPT(cfg.gpt_config(vocab_size=64)).get_num_params() / 1e6:.2f}M "
                     f"parameters, 2 layers, 2 heads, 32 wide, context 16, bias=False, pos_embedding='rope', "
                     f"norm='rmsnorm', mlp='relu2', mlp_hidden=48, qk_norm=True, n_kv_head=1, "
                     f"tie_embeddings=False, logit_softcap=15.0 (scratch)"]


def test_a_signal_between_evals_stops_after_that_step(tiny, monkeypatch, capsys):
    """SIGTERM during step 3 of a run whose next eval is far: it saves iter 3 and stops there."""
    step = train.train_step
    calls = []

    def step_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # answered by the run's handler, as from outside
        return step(*args, **kwargs)
    monkeypatch.setattr(train, "train_step", step_then_signal)
    cfg = replace(tiny, max_iters=50, lr_decay_iters=50, eval_interval=100, log_interval=1)
    assert train.train(cfg)["iter_num"] == 3
    assert load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["iter_num"] == 3
    out = capsys.readouterr().out
    assert f"stopped by a signal: checkpoint of iter 3 saved to {cfg.out_dir}/ckpt.pt" in out


def test_a_signal_before_the_first_step_saves_nothing(tiny, monkeypatch, capsys):
    """SIGTERM during the eval at iter 0 of a new run, then during the first eval of a resumed one: there is
    no step to save, so no checkpoint is written (the resumed run's ckpt.pt stays byte for byte)."""
    losses = train.Evaluator.losses

    def signal_then_evaluate(self, model):
        os.kill(os.getpid(), signal.SIGTERM)  # answered by the run's handler, as from outside
        return losses(self, model)
    with monkeypatch.context() as m:
        m.setattr(train.Evaluator, "losses", signal_then_evaluate)
        assert train.train(tiny)["iter_num"] == 0
    assert not os.path.exists(os.path.join(tiny.out_dir, "ckpt.pt"))
    assert not os.path.exists(os.path.join(tiny.out_dir, "best.pt"))
    assert "stopped by a signal before the first step of this run: nothing new to save\n" in \
        capsys.readouterr().out
    cfg = replace(tiny, overwrite=True, max_iters=10, lr_decay_iters=10)
    train.train(cfg)
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    before = open(path, "rb").read()
    capsys.readouterr()
    monkeypatch.setattr(train.Evaluator, "losses", signal_then_evaluate)
    assert train.train(replace(cfg, init_from="resume", overwrite=False, max_iters=20))["iter_num"] == 10
    assert open(path, "rb").read() == before
    assert f"nothing new to save; {path} still holds iter 10\n" in capsys.readouterr().out


def optimizer_for(model: GPT, cfg: TrainConfig) -> torch.optim.Optimizer:
    return train.prepare(model, cfg, torch.device("cpu"), False)[1]


def test_prepare_makes_the_optimizer_the_config_asks_for(tiny):
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    cfg = replace(tiny, learning_rate=2e-3, beta1=0.8, beta2=0.9, weight_decay=0.05)
    adamw = optimizer_for(model, cfg)
    assert isinstance(adamw, torch.optim.AdamW)
    decayed, plain = adamw.param_groups
    assert (decayed["lr"], decayed["betas"], decayed["weight_decay"], plain["weight_decay"]) == \
        (2e-3, (0.8, 0.9), 0.05, 0.0)
    muon = optimizer_for(model, replace(cfg, optimizer="muon"))
    assert isinstance(muon.optimizers["muon"], torch.optim.Muon)


def test_train_step_returns_the_mean_loss_and_frees_the_gradients(tiny):
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    batches = [(torch.randint(0, 64, (2, 16)), torch.randint(0, 64, (2, 16))) for _ in range(3)]
    with torch.no_grad():
        mean = torch.stack([model(x, y)[1] for x, y in batches]).mean()
    run = SimpleNamespace(model=model, optimizer=optimizer_for(model, tiny), accum=3, cfg=tiny,
                          scaler=torch.amp.GradScaler("cpu", enabled=False), ctx=contextlib.nullcontext(),
                          micro_batches=lambda: iter(batches))
    loss, _ = train.train_step(model, run)
    torch.testing.assert_close(loss, mean)
    assert all(p.grad is None for p in model.parameters())  # no gradient memory held between steps


def test_resume_errors_and_eval_only(tiny, capsys):
    train.train(replace(tiny, max_iters=10))
    ckpt_path = os.path.join(tiny.out_dir, "ckpt.pt")
    before = load_checkpoint(ckpt_path)
    with pytest.raises(UsageError, match="n_embd=64 but the checkpoint has 32"):
        train.train(replace(tiny, init_from="resume", n_embd=64))
    files = lambda: {n: open(os.path.join(tiny.out_dir, n), "rb").read()  # noqa: E731
                     for n in sorted(os.listdir(tiny.out_dir))}
    run_files = files()
    finished = train.train(replace(tiny, init_from="resume", max_iters=10))
    assert finished == {"iter_num": 10, "best_val_loss": before["best_val_loss"]}
    capsys.readouterr()
    result = train.train(replace(tiny, init_from="resume", eval_only=True, eval_samples=1,
                                 eval_sample_prompt="A", eval_sample_tokens=3))
    assert result["iter_num"] == 10 and result["best_val_loss"] == before["best_val_loss"]
    assert len(result["samples"]) == 1 and result["samples"][0].startswith("A")
    assert (f"eval at iter 10: train_loss {result['train_loss']:.4f}, val_loss {result['val_loss']:.4f}, "
            f"train_bpb {result['train_bpb']:.4f}, val_bpb {result['val_bpb']:.4f}\n"
            f"{result['samples'][0]}\n") in capsys.readouterr().out
    assert files() == run_files  # evaluating writes nothing: checkpoints, metrics and config as they were
    after = load_checkpoint(ckpt_path)
    assert torch.equal(after["model"]["lm_head.weight"], before["model"]["lm_head.weight"])
    with pytest.raises(UsageError, match="no checkpoint at"):
        train.train(replace(tiny, init_from="resume", out_dir=tiny.out_dir + "-missing"))


def test_best_val_loss_only_holds_the_best(tiny):
    cfg = replace(tiny, eval_interval=5, always_save_checkpoint=False)
    result = train.train(cfg)
    evals = {r["iter"]: r["val_loss"] for r in metrics(cfg) if "val_loss" in r}
    assert result["best_val_loss"] == min(evals.values())
    best_path = os.path.join(cfg.out_dir, "best.pt")
    best = load_checkpoint(best_path)
    assert best["best_val_loss"] == min(evals.values()) == evals[best["iter_num"]]
    # a run whose best is out of reach: later (worse) evals must neither lower the record nor overwrite
    # best.pt
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    save_checkpoint({**load_checkpoint(ckpt_path), "best_val_loss": 0.01}, ckpt_path)
    result = train.train(replace(cfg, init_from="resume", max_iters=30))
    assert result["best_val_loss"] == 0.01 == load_checkpoint(ckpt_path)["best_val_loss"]
    assert load_checkpoint(ckpt_path)["iter_num"] == 30  # the end of training always saves
    assert load_checkpoint(best_path)["iter_num"] == best["iter_num"]


def test_which_evals_save_which_checkpoint(tiny, monkeypatch):
    """With always_save_checkpoint=False: never at iter 0 (the untrained model); best.pt and ckpt.pt when the
    val loss improves (a tie keeps the first to reach it); ckpt.pt at the end. Eval records carry the tokens
    seen and the learning rate; eval time stays out of the steps' timing."""
    val = iter([2.0, 1.0, 1.0, 3.0])

    def losses(self, model):
        time.sleep(0.3)  # a long eval: its time stays out of the next step's ms_per_iter
        return {"train_loss": 1.5, "val_loss": next(val)}
    monkeypatch.setattr(train.Evaluator, "losses", losses)
    saved = []
    save = train.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint",
                        lambda state, path: (saved.append((os.path.basename(path), state["iter_num"])),
                                             save(state, path)))
    cfg = replace(tiny, eval_interval=1, log_interval=1, max_iters=3, always_save_checkpoint=False)
    assert train.train(cfg)["best_val_loss"] == 1.0
    assert [r["iter"] for r in metrics(cfg) if "loss" in r] == [1, 2, 3]
    assert all(r["ms_per_iter"] < 200 for r in metrics(cfg) if "loss" in r)
    assert saved == [("best.pt", 1), ("ckpt.pt", 1), ("ckpt.pt", 3)]
    assert [r for r in metrics(cfg) if "val_loss" in r] == [
        {"iter": i, "tokens": 128 * i, "lr": get_lr(i, cfg), "train_loss": 1.5, "val_loss": v}
        for i, v in enumerate([2.0, 1.0, 1.0, 3.0])]


def test_interrupted_checkpoint_write_keeps_previous(tiny, monkeypatch):
    train.train(replace(tiny, max_iters=10))
    path = os.path.join(tiny.out_dir, "ckpt.pt")
    good = load_checkpoint(path)

    def dies_midway(obj, f):  # write part of the file, then the process "dies"
        f.write(b"PK\x03\x04 partial garbage")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {}}, path)
    assert load_checkpoint(path)["iter_num"] == good["iter_num"] == 10
    assert not [n for n in os.listdir(tiny.out_dir) if n.endswith(".tmp")]  # the half-written file is gone
    with open(path + ".tmp", "wb") as f:  # a leftover temp file from a killed run does not matter either
        f.write(b"junk")
    monkeypatch.undo()
    train.train(replace(tiny, init_from="resume", max_iters=12))
    assert load_checkpoint(path)["iter_num"] == 12


def test_clear_errors(tiny, tmp_path):
    with pytest.raises(UsageError, match=r"train.bin not found: run python .*prepare.py"):
        empty = tmp_path / "empty"
        write_dataset(empty)
        os.remove(empty / "train.bin")
        train.train(replace(tiny, dataset=str(empty)))
    with pytest.raises(UsageError, match="too few for block_size=4096"):
        train.train(replace(tiny, block_size=4096))
    with pytest.raises(UsageError, match="float16 needs a CUDA device"):
        train.train(replace(tiny, dtype="float16"))
    with pytest.raises(UsageError, match="init_from='gpt5'"):
        train.train(replace(tiny, init_from="gpt5"))


def test_compile_failure_falls_back_to_eager(tiny, no_compiler):
    with pytest.warns(UserWarning, match="torch.compile failed"):
        result = train.train(replace(tiny, compile=True, max_iters=5))
    assert result["iter_num"] == 5


def test_init_from_hf_dir_and_crop(tiny, make_hf_dir):
    hf = make_hf_dir(vocab_size=40, n_positions=64)
    result = train.train(replace(tiny, init_from=hf, block_size=16, max_iters=4, eval_interval=4))
    ckpt = load_checkpoint(os.path.join(tiny.out_dir, "ckpt.pt"))
    assert result["iter_num"] == 4
    assert ckpt["model_args"]["block_size"] == 16 and ckpt["model_args"]["n_embd"] == 64
    assert ckpt["config"]["n_embd"] == 64  # the resolved config records the model's real shape


@pytest.mark.parametrize("arch", ["gpt2", "modern_gqa"])
def test_ddp_equals_one_process(tiny, tmp_path, arch):
    # bias=False: the key bias has an exactly-zero true gradient (softmax ignores a per-row constant), so Adam
    # turns its float noise into full-size updates that no two reduction orders can agree on
    # eval_iters=5: the second process takes a turn past the last batch, which counts nothing
    cfg = replace(tiny, max_iters=6, eval_interval=6, log_interval=1, gradient_accumulation_steps=4,
                  eval_iters=5, **{**ARCHS[arch], "bias": False})
    one = replace(cfg, out_dir=str(tmp_path / "one"))
    train.train(one)
    two = replace(cfg, out_dir=str(tmp_path / "two"), overwrite=True)
    shutil.copytree(one.out_dir, two.out_dir)  # a run it replaces: every process must let it
    r = python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
               *cli_args(two))
    assert torchrun_ok(r), r.stderr[-3000:]
    a, b = final_weights(one), final_weights(two)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0)
    loss = lambda c: [r["loss"] for r in metrics(c) if "loss" in r]
    np.testing.assert_allclose(loss(two), loss(one), atol=1e-6)
    evals = lambda c: [[r[k] for k in ("train_loss", "val_loss", "train_bpb", "val_bpb")]  # noqa: E731
                       for r in metrics(c) if "val_loss" in r]
    assert len(evals(one)) == 2
    np.testing.assert_allclose(evals(two), evals(one), rtol=1e-5, err_msg="eval losses and bpb, 2 vs 1")
    if arch != "gpt2":  # the refusal below is the same for every architecture: one torchrun less
        return
    r = python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
               *cli_args(replace(two, gradient_accumulation_steps=3)))
    assert r.returncode != 0 and "does not divide over 2 processes" in r.stderr


def test_each_process_joins_on_its_own_gpu_and_leaves_after_its_peers(monkeypatch):
    """Under torchrun on CUDA each process takes the GPU of its LOCAL_RANK and joins with NCCL, on the CPU
    with gloo; it leaves after a barrier when its run ended well (so that no process tears down while a peer
    still writes the last checkpoint), at once when it failed (its peers may never reach a barrier). The
    torch.distributed calls are stand-ins: a second GPU is not to be had here."""
    import torch.distributed as dist
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(device))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(backend))
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert core.init_distributed(torch.device("cuda")) == torch.device("cuda", 1)
    assert core.init_distributed(torch.device("cpu")) == torch.device("cpu")
    assert calls == [torch.device("cuda", 1), "nccl", "gloo"]
    calls.clear()
    core.leave_distributed(None, None, None)
    core.leave_distributed(RuntimeError, RuntimeError("device lost"), None)
    assert calls == ["barrier", "destroy", "destroy"]


@pytest.fixture(scope="session")
def shakespeare_char_dir(tmp_path_factory, shakespeare_text):
    """data/shakespeare_char prepared from the real Tiny Shakespeare text, in a temp dir."""
    out = tmp_path_factory.mktemp("shakespeare_char")
    (out / "input.txt").write_text(shakespeare_text, encoding="utf-8")
    r = python("data/shakespeare_char/prepare.py", f"--input={out / 'input.txt'}", f"--out_dir={out}")
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.slow
def test_reference_cpu_recipe_reaches_val_1_90(shakespeare_char_dir, tmp_path):
    """The reference codebase's CPU recipe as bench.py runs it, in fp32 as docs/performance.md does (about 2
    minutes on 2 cores; its deadline is a backstop for a hung run, 10x that, not a speed check)."""
    r = python("train.py", *bench.REFERENCE_RECIPE, f"--dataset={shakespeare_char_dir}",
               f"--out_dir={tmp_path}", timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_metrics(str(tmp_path / "metrics.jsonl"))[1][-1]["iter"] == 2000
    # judged on every window of val.bin (docs/performance.md: 1.8865), not on the 20 random eval batches
    assert bench.full_val_loss(str(tmp_path / "ckpt.pt"), torch.device("cpu")) <= 1.90


def test_a_failing_run_releases_what_it_opened(tiny, monkeypatch):
    """train() raising mid-loop leaves no signal handler of its own behind (Ctrl-C works again in a notebook
    or pytest), and closes metrics.jsonl and the wandb run."""
    closed = []
    monkeypatch.setattr(core.MetricsLog, "close", lambda self: closed.append(self.file.close()))

    def fails(*args, **kwargs):
        raise RuntimeError("device lost")
    monkeypatch.setattr(train, "train_step", fails)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(RuntimeError, match="device lost"):
        train.train(tiny)
    assert {s: signal.getsignal(s) for s in before} == before
    assert closed == [None]


def run_of(cfg: TrainConfig, data: dict, meta: dict, vocab_size: int) -> SimpleNamespace:
    """What an Evaluator reads of its run, for one process on the CPU."""
    return SimpleNamespace(cfg=cfg, data=data, meta=meta, device=torch.device("cpu"),
                           ctx=contextlib.nullcontext(), rank=0, world=1, signalled=[],
                           model=SimpleNamespace(config=SimpleNamespace(vocab_size=vocab_size)))


def test_eval_losses_are_the_models_on_the_batches_it_names(tiny):
    """Evaluator.losses is the mean loss, in eval mode, over the fixed batches of each split it holds:
    recomputed here batch by batch. The model has dropout (so train mode would change the numbers) and is left
    training."""
    data, meta = core.open_data(tiny.dataset, tiny.block_size)
    evaluator = train.Evaluator(run_of(tiny, data, meta, 64))
    assert evaluator.offsets["val"].shape == (tiny.eval_iters, tiny.batch_size)
    again = train.Evaluator(run_of(tiny, data, meta, 64))
    assert all(np.array_equal(evaluator.offsets[s], again.offsets[s]) for s in ("train", "val"))
    model = GPT(GPTConfig(block_size=tiny.block_size, vocab_size=64, n_layer=1, n_head=2, n_embd=16,
                          dropout=0.5))
    losses = evaluator.losses(model)
    assert model.training
    model.eval()
    for split in ("train", "val"):
        batches = [get_batch(data[split], rows, tiny.block_size, torch.device("cpu"))
                   for rows in evaluator.offsets[split]]
        expected = torch.stack([model(x, y)[1] for x, y in batches]).mean().item()
        assert losses[f"{split}_loss"] == pytest.approx(expected, rel=1e-6)
    assert losses["train_loss"] != pytest.approx(losses["val_loss"], rel=1e-6)  # the splits do differ


def multibyte_dataset(path, tokenizer: str) -> str:
    """A char or gpt2 dataset of random words with 1- to 4-byte UTF-8 characters, documents split by
    <|endoftext|> in gpt2's."""
    from data.common import Tokenizer, prepare_documents
    rng = np.random.default_rng(0)
    words = ["the", "café", "5€", "😀", "naïve", "straße", "日本", "to be", "\n"]
    docs = [" ".join(rng.choice(words, size=40)) for _ in range(12)]
    tok = Tokenizer.gpt2() if tokenizer == "gpt2" else Tokenizer.from_text("".join(docs))
    prepare_documents(docs, tok, path, val_fraction=0.3)
    return str(path)


@pytest.mark.parametrize("tokenizer", ["char", "gpt2"])
def test_eval_bits_per_byte_are_the_summed_loss_over_the_decoded_texts_bytes(tiny, tmp_path, tokenizer):
    """{split}_bpb = the batches' summed cross-entropy in nats / (ln 2 x the UTF-8 bytes of their targets),
    the bytes counted here by decoding each batch's targets to text (gpt2: tiktoken's bytes, which keep the
    characters a batch edge cuts; <|endoftext|> is no text) and the nats from the model's logits."""
    import tiktoken
    from data.common import Tokenizer
    cfg = replace(tiny, dataset=multibyte_dataset(tmp_path / tokenizer, tokenizer), eval_iters=3)
    data, meta = core.open_data(cfg.dataset, cfg.block_size)
    tok, bpe = Tokenizer.from_meta(meta), tiktoken.get_encoding("gpt2")
    vocab = 50304 if tokenizer == "gpt2" else 64  # padded
    evaluator = train.Evaluator(run_of(cfg, data, meta, vocab))
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=vocab, n_layer=1, n_head=2, n_embd=16))
    losses = evaluator.losses(model)
    model.eval()
    for split in ("train", "val"):
        nats, text_bytes = 0.0, 0
        for rows in evaluator.offsets[split]:
            x, y = get_batch(data[split], rows, cfg.block_size, torch.device("cpu"))
            logits, _ = model(x, y)
            nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            for row in y.tolist():
                if tokenizer == "gpt2":
                    text_bytes += len(bpe.decode_bytes([i for i in row if i != tok.eot_token]))
                else:
                    text_bytes += len(tok.decode(row).encode("utf-8"))
        assert evaluator.bytes[split] == text_bytes, (split, "bytes counted vs the decoded targets' bytes")
        assert text_bytes > cfg.eval_iters * cfg.batch_size * cfg.block_size  # multi-byte characters in it
        assert losses[f"{split}_bpb"] == pytest.approx(nats / (math.log(2) * text_bytes), rel=1e-5), split


def test_grad_clip_bounds_the_gradient_the_optimizer_sees(tiny, monkeypatch):
    """The optimizer steps on gradients clipped to grad_clip (global norm), while grad_norm logs the norm
    before clipping; grad_clip=0 does not clip. (AdamW's first steps barely depend on the gradient's scale, so
    the weights alone would not show a missing clip.)"""
    seen = []

    prepare = train.prepare

    def recording(model, cfg, device, ddp):
        dtype, optimizer, scaler = prepare(model, cfg, device, ddp)
        step = optimizer.step

        def step_and_record(*args, **kwargs):
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            return step(*args, **kwargs)
        optimizer.step = step_and_record
        return dtype, optimizer, scaler
    monkeypatch.setattr(train, "prepare", recording)
    for clip in (0.01, 0.0):
        seen.clear()
        cfg = replace(tiny, max_iters=4, log_interval=1, grad_clip=clip, out_dir=f"{tiny.out_dir}-{clip}")
        train.train(cfg)
        logged = [r["grad_norm"] for r in metrics(cfg) if "grad_norm" in r]
        assert len(seen) == len(logged) == 4 and min(logged) > 10 * 0.01
        if clip:
            assert seen == pytest.approx([clip] * 4, rel=1e-4)
        else:
            assert seen == pytest.approx(logged, rel=1e-5)


def test_samples_during_training_change_nothing_else(tiny, tmp_path, capsys):
    """eval_samples: at each eval, samples of the prompt are printed and logged in the eval record; the run's
    weights and losses are bit-identical to a run without them (dropout on, so any RNG use would show)."""
    plain = replace(tiny, dropout=0.1, out_dir=str(tmp_path / "plain"))
    train.train(plain)
    capsys.readouterr()
    sampled = replace(plain, out_dir=str(tmp_path / "sampled"), eval_samples=2, eval_sample_prompt="BC",
                      eval_sample_tokens=7)
    train.train(sampled)
    out = capsys.readouterr().out
    evals = [r for r in metrics(sampled) if "val_loss" in r]
    assert [len(r["samples"]) for r in evals] == [2, 2, 2]
    chars = set(load_checkpoint(os.path.join(sampled.out_dir, "ckpt.pt"))["meta"]["chars"])
    for r in evals:
        assert all(s.startswith("BC") and len(s) == 2 + 7 and set(s) <= chars for s in r["samples"])
        assert all(f"{s}\n{'-' * 15}\n" in out for s in r["samples"])
    a, b = final_weights(plain), final_weights(sampled)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the last eval's samples: the final weights, the prompt, a generator seeded with the run's seed
    model = core.model_from_checkpoint(load_checkpoint(os.path.join(sampled.out_dir, "ckpt.pt"))).eval()
    tokenizer = core.Tokenizer.from_meta(load_checkpoint(os.path.join(sampled.out_dir, "ckpt.pt"))["meta"])
    rows = model.generate(torch.tensor([tokenizer.encode("BC")] * 2), 7,
                          generator=torch.Generator().manual_seed(sampled.seed))
    assert evals[-1]["samples"] == [tokenizer.decode(row) for row in rows.tolist()]
    strip = lambda cfg: [{k: v for k, v in r.items() if k not in ("samples", "ms_per_iter", "tokens_per_s")}
                         for r in metrics(cfg)]  # noqa: E731
    assert strip(plain) == strip(sampled)
    before = open(os.path.join(sampled.out_dir, "ckpt.pt"), "rb").read()
    with pytest.raises(UsageError, match="cannot encode the prompt eval_sample_prompt='hello'"):
        train.train(replace(sampled, eval_sample_prompt="hello", overwrite=True))
    assert open(os.path.join(sampled.out_dir, "ckpt.pt"), "rb").read() == before  # refused before clearing


def test_logged_step_records_are_what_the_steps_computed(tiny):
    """With learning_rate 0 the weights never move, so each logged train loss can be recomputed here: the
    mean, over the steps since the last record, of the mean loss over the micro-batches process_offsets names
    for that step. tokens, lr and the speed figures agree with each other, the config and the wall clock."""
    cfg = replace(tiny, learning_rate=0.0, min_lr=0.0, max_iters=4, log_interval=2, eval_interval=100,
                  gradient_accumulation_steps=3, peak_tflops=1.0)
    t0 = time.perf_counter()
    train.train(cfg)
    wall = time.perf_counter() - t0
    ckpt = load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))
    assert ckpt["rng"] == {"seed": cfg.seed, "next_batch": 4}  # batches and dropout derive from these
    model = core.model_from_checkpoint(ckpt).eval()
    data, _ = core.open_data(cfg.dataset, cfg.block_size)
    tokens_per_iter = cfg.batch_size * cfg.gradient_accumulation_steps * cfg.block_size

    def step_loss(step: int) -> float:
        rows = train.process_offsets(cfg, step, len(data["train"]), 0, 1)
        assert rows.shape == (3, cfg.batch_size)
        batches = [get_batch(data["train"], o, cfg.block_size, torch.device("cpu")) for o in rows]
        with torch.no_grad():
            return np.mean([model(x, y)[1].item() for x, y in batches])
    records = [r for r in metrics(cfg) if "loss" in r]
    assert [r["iter"] for r in records] == [2, 4]
    for r in records:
        assert r["loss"] == pytest.approx((step_loss(r["iter"] - 2) + step_loss(r["iter"] - 1)) / 2, rel=1e-5)
        assert r["tokens"] == r["iter"] * tokens_per_iter and r["lr"] == 0.0
        assert 0 < r["ms_per_iter"] * 2 < 1000 * wall
        assert r["tokens_per_s"] * r["ms_per_iter"] / 1000 == pytest.approx(tokens_per_iter)
        assert r["mfu"] == pytest.approx(model.flops_per_token(cfg.block_size) * r["tokens_per_s"] / 1e12)


def test_load_checkpoint_refuses_what_is_not_a_checkpoint(tiny, tmp_path):
    train.train(replace(tiny, max_iters=2, eval_interval=2))
    path = os.path.join(tiny.out_dir, "ckpt.pt")
    on_meta = load_checkpoint(path, torch.device("meta"), verify=False)
    assert on_meta["model"]["lm_head.weight"].device.type == "meta"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(path, "rb").read()[:1000])  # a file cut short
    with pytest.raises(Exception) as torch_says:
        torch.load(cut, weights_only=True)
    with pytest.raises(UsageError) as e:  # torch's reason, its first line
        load_checkpoint(str(cut))
    reason = f"{type(torch_says.value).__name__}: {str(torch_says.value).splitlines()[0]}"
    assert str(e.value) == f"checkpoint {cut} is unreadable ({reason})" and "\n" not in str(e.value)
    code = tmp_path / "code.pt"  # a pickle that would run code: weights_only refuses it
    torch.save({"model": {}, "hook": os.system}, code)
    with pytest.raises(UsageError, match="code.pt is unreadable"):
        load_checkpoint(str(code))
    other = tmp_path / "other.pt"
    for saved in ({"state_dict": {}}, 5):  # a dict of other keys, or no dict at all
        torch.save(saved, other)
        with pytest.raises(UsageError, match=r"other.pt is not a checkpoint of this codebase: it lacks "
                                             r"\['best_val"):
            load_checkpoint(str(other))


def test_bpe_samples_from_an_empty_prompt_leave_out_the_eot(tiny):
    """eval_sample_prompt='' on GPT-2 BPE data starts from <|endoftext|>, which the logged text leaves out."""
    tokenizer = core.Tokenizer.gpt2()
    meta = {**tokenizer.meta(), "train_tokens": 100, "val_tokens": 100}
    data = {split: np.arange(100, dtype=np.uint16) for split in ("train", "val")}
    cfg = replace(tiny, eval_samples=2, eval_sample_prompt="", eval_sample_tokens=3)
    evaluator = train.Evaluator(run_of(cfg, data, meta, 50304))
    model = GPT(GPTConfig(block_size=16, vocab_size=50304, n_layer=1, n_head=2, n_embd=16,
                          tokenizer_vocab_size=50257))
    generator = torch.Generator().manual_seed(cfg.seed)
    rows = model.eval().generate(torch.tensor([[50256]] * 2), 3, generator=generator)
    assert evaluator.samples(model) == [tokenizer.decode(row[1:]) for row in rows.tolist()]
    assert model.training


def test_bpe_training_needs_no_tokenizer_files(tiny, tmp_path, monkeypatch):
    """Training on prepared GPT-2 BPE data reads only token ids: without evaluation samples or HellaSwag,
    tiktoken's files (a download, offline an error) are not needed; its evals go without bits per byte,
    saying why."""
    def unavailable():
        raise core.DataError("no tiktoken files here")
    monkeypatch.setattr("data.common._tiktoken_gpt2", unavailable)
    data = tmp_path / "bpe"
    os.makedirs(data)
    ids = np.random.default_rng(0).integers(0, 50257, 3000).astype(np.uint16)
    ids[:2000].tofile(data / "train.bin")
    ids[2000:].tofile(data / "val.bin")
    meta = {"tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16", "eot_token": 50256,
            "train_tokens": 2000, "val_tokens": 1000}
    (data / "meta.json").write_text(json.dumps(meta))
    bpe = replace(tiny, dataset=str(data), n_embd=16, max_iters=2, eval_interval=2)
    with pytest.warns(UserWarning, match="^evals without bits per byte: no tiktoken files here$"):
        assert train.train(bpe)["iter_num"] == 2
    assert [sorted(r) for r in metrics(bpe) if "val_loss" in r] == [["iter", "lr", "tokens", "train_loss",
                                                                      "val_loss"]] * 2
    with pytest.raises(core.DataError, match="no tiktoken files here"):
        train.train(replace(tiny, dataset=str(data), n_embd=16, max_iters=2, eval_samples=1, overwrite=True))


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny, monkeypatch):
    """An absurd learning rate makes the loss inf or NaN: the run stops with the step named, and ckpt.pt
    still holds the last finite weights (not overwritten by a broken model)."""
    cfg = replace(tiny, max_iters=2, eval_interval=2, log_interval=1)
    train.train(cfg)
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    before = open(path, "rb").read()
    diverged = (rf"^loss is (nan|inf) at iter \d+: the run diverged and stopped; {re.escape(cfg.out_dir)} "
                rf"keeps its last good checkpoint\. Lower learning_rate, or raise warmup_iters$")
    with pytest.raises(UsageError, match=diverged) as e:
        train.train(replace(cfg, init_from="resume", learning_rate=1e12, warmup_iters=0, max_iters=40,
                            eval_interval=20))
    assert int(str(e.value).split("at iter ")[1].split(":")[0]) < 20  # the step's loss, before any eval
    assert open(path, "rb").read() == before
    assert all(torch.isfinite(w).all() for w in load_checkpoint(path)["model"].values())
    # a val loss that is not finite (the step losses were) stops the run the same way, at its eval
    nan = {"train_loss": 1.0, "val_loss": float("nan")}
    monkeypatch.setattr(train.Evaluator, "losses", lambda self, model: dict(nan))
    with pytest.raises(UsageError) as e:
        train.train(replace(cfg, init_from="resume", max_iters=4))
    assert str(e.value) == (f"val_loss is nan at iter 2: the run diverged and stopped; {cfg.out_dir} keeps "
                            f"its last good checkpoint. Lower learning_rate, or raise warmup_iters")
    assert open(path, "rb").read() == before


def test_maybe_compile_compiles_or_falls_back_with_the_reason(no_compiler_or_not, recwarn):
    model = GPT(GPTConfig(block_size=8, vocab_size=32, n_layer=1, n_head=2, n_embd=16))
    x = torch.randint(0, 32, (2, 8))
    got = core.maybe_compile(model, (x, x), contextlib.nullcontext())
    assert all(p.grad is None for p in model.parameters())  # the trial step leaves no gradient behind
    if no_compiler_or_not:
        assert got is model
        assert "torch.compile failed, training eagerly instead (RuntimeError: no compiler here)" in \
            str(recwarn.pop(UserWarning).message)
    else:
        assert got is not model and got._orig_mod is model
        assert not [w for w in recwarn.list if "compile failed" in str(w.message)]
        torch.testing.assert_close(got(x, x)[1], model(x, x)[1])


def test_compile_true_trains_and_evaluates_through_the_compiled_model(tiny, monkeypatch, recwarn):
    calls = []

    class Compiled(torch.nn.Module):  # stands for torch.compile's module: compiling takes minutes here
        def __init__(self, model):
            super().__init__()
            self._orig_mod = model

        def forward(self, x, y):
            calls.append((tuple(x.shape), torch.is_autocast_enabled("cpu")))
            return self._orig_mod(x, y)
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: Compiled(model))
    train.train(replace(tiny, compile=True, dtype="bfloat16", max_iters=2, eval_interval=2))
    assert not [w for w in recwarn.list if "compile failed" in str(w.message)]
    # the trial step, the timed micro-step, 2 steps of 2 micro-batches, 2 evals of 4 batches per split:
    # all in bf16 autocast
    assert calls == [((4, 16), True)] * (1 + 1 + 2 * 2 + 2 * 2 * 4)
    assert not any(k.startswith("_orig_mod") for k in load_checkpoint(f"{tiny.out_dir}/ckpt.pt")["model"])


@pytest.fixture(params=[False, True], ids=["compiler", "no compiler"])
def no_compiler_or_not(request):
    if request.param:
        request.getfixturevalue("no_compiler")
    return request.param


def test_open_data_maps_read_only_and_needs_one_token_past_a_block(tmp_path):
    path = write_dataset(tmp_path / "data", n_train=100, n_val=16)
    data, meta = core.open_data(path, block_size=15)
    assert [len(data["train"]), len(data["val"])] == [100, 16] and meta["vocab_size"] == 23
    assert not data["train"].flags.writeable  # a run never writes into its dataset
    with pytest.raises(UsageError, match=r"val.bin holds 16 tokens, too few for block_size=16: lower"):
        core.open_data(path, block_size=16)  # a block's targets need one token more
