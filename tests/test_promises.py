"""What the README promises besides its commands (tests/test_docs.py runs those): every config file, --help,
device='auto', --dataset=<name> under data/, wandb logging, bench.py's speedrun mode and its judge."""
import dataclasses
import os
import sys
import types

import numpy as np
import pytest
import torch

import bench
import core
import eval as ev
import train
from configurator import configure
from conftest import ROOT, cli_args, metrics, python, tiny_train_config, write_dataset
from sample import SampleConfig
from train import TrainConfig


# -----------------------------------------------------------------------------
# the quick start's judge (tests/test_docs.py runs the quick start itself, as the README writes it)

CPU_SPEEDRUN = ROOT / "config" / "train_shakespeare_char_cpu.py"


def test_cpu_speedrun_has_the_modern_presets_architecture():
    """config/train_shakespeare_char_cpu.py writes out config/arch_modern.py's keys: the preset read after it
    changes no key."""
    alone = configure(TrainConfig, [str(CPU_SPEEDRUN)])
    assert alone == configure(TrainConfig, [str(CPU_SPEEDRUN), str(ROOT / "config" / "arch_modern.py")])


def test_full_val_loss_is_every_window_of_val_bin(tiny_config):
    """bench.full_val_loss (the quick start's and speedrun's judge) against the mean loss recomputed here over
    consecutive block_size windows of all of val.bin."""
    cfg = tiny_config(max_iters=4)
    train.train(cfg)
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    model = core.model_from_checkpoint(core.load_checkpoint(ckpt_path)).eval()
    val = np.fromfile(os.path.join(cfg.dataset, "val.bin"), dtype=np.uint16).astype(np.int64)
    T, losses = cfg.block_size, []
    for start in range(0, len(val) - T - 1 + 1, T):
        x = torch.from_numpy(val[start:start + T + 1])
        with torch.no_grad():
            losses.append(model(x[None, :-1], x[None, 1:])[1].item())
    assert len(losses) == (len(val) - 1) // T
    assert bench.full_val_loss(ckpt_path, torch.device("cpu")) == pytest.approx(np.mean(losses), rel=1e-5)


# -----------------------------------------------------------------------------
# config files

CONFIGS = sorted((ROOT / "config").glob("*.py"))
TINY_SHAPE = ["--device=cpu", "--compile=False", "--dtype=float32", "--n_layer=1", "--n_head=2",
              "--n_embd=16", "--block_size=16", "--batch_size=2", "--gradient_accumulation_steps=1",
              "--max_iters=2", "--eval_interval=2", "--eval_iters=1", "--log_interval=1", "--wandb_log=False",
              "--warmup_iters=1", "--eval_hellaswag=False", "--eval_samples=0"]  # synthetic data: no BPE


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_file_loads_and_trains(path, tmp_path, make_hf_dir):
    """Each config/*.py with tiny shape overrides trains two steps (or, for the eval_only baselines,
    evaluates) on synthetic data; a pretrained init_from gets a small local random GPT-2, not a download."""
    data = write_dataset(tmp_path / "data")
    overrides = [*TINY_SHAPE, f"--dataset={data}", f"--out_dir={tmp_path / 'out'}"]
    cfg = configure(TrainConfig, [str(path), *overrides])
    assert len(CONFIGS) >= 9
    if cfg.init_from != "scratch":
        cfg.init_from = make_hf_dir(n_embd=16, n_layer=1, n_head=2)
    result = train.train(cfg)
    assert result["iter_num"] == (0 if cfg.eval_only else 2) and np.isfinite(result["val_loss"])


# -----------------------------------------------------------------------------
# command lines

# a key of each script and what its --help says of it, as a user reads it in a terminal
HELP_SAMPLES = {"train.py": ["  --batch_size=12  (int; > 0)", "      sequences per micro-step per process"],
                "sample.py": ["  --top_k=200  (int | None; > 0)",
                              "      sample among the k most likely tokens only; None: all of them"],
                "eval.py": ["  --mode='hellaswag'  (str; one of 'hellaswag', 'plot', 'attention', 'export')",
                            "      what to do: score HellaSwag, plot losses, draw attention, export to HF"],
                "bench.py": ["  --compile=True  (bool)",
                             "      torch.compile the model (generate mode: also time compiled decoding)"]}


@pytest.mark.parametrize("script,config", [("train.py", TrainConfig), ("sample.py", SampleConfig),
                                           ("eval.py", ev.EvalConfig), ("bench.py", bench.BenchConfig)])
def test_help_lists_every_key_with_its_default_and_description(script, config):
    """The real command line: per key `--key=default  (type; range)`, then its description indented under it,
    every line within 110 columns."""
    r = python(script, "--help", timeout=120)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"keys of {config.__name__} (set them in a config file or with --key=value):"
    assert max(map(len, lines)) <= 110
    keys = [i for i, line in enumerate(lines) if line.startswith("  --")]
    assert len(keys) == len(dataclasses.fields(config))
    for field, i, end in zip(dataclasses.fields(config), keys, [*keys[1:], len(lines)]):
        assert lines[i].startswith(f"  --{field.name}={field.default!r}  (")
        described = " ".join(line.strip() for line in lines[i + 1:end])
        assert described == field.metadata["doc"]
        assert all(line.startswith(" " * 6) for line in lines[i + 1:end])
    at = lines.index(HELP_SAMPLES[script][0])
    assert lines[at:at + 2] == HELP_SAMPLES[script]


def test_device_auto_picks_cuda_then_mps_then_cpu(monkeypatch):
    assert core.resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else
                                                        "mps" if torch.backends.mps.is_available() else "cpu")
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        assert core.resolve_device("auto") == torch.device(expected)
    assert core.resolve_device("cuda:1") == torch.device("cuda", 1)  # any other name is taken as it is


def test_dataset_name_is_looked_up_under_data(tmp_path, monkeypatch, capsys):
    """--dataset=mine reads data/mine/ below the working directory, as in the README's custom-data example."""
    write_dataset(tmp_path / "data" / "mine", vocab=31)
    monkeypatch.chdir(tmp_path)
    cfg = tiny_train_config(tmp_path / "run", dataset="mine", max_iters=2, eval_interval=2)
    train.train(cfg)
    assert core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["meta"]["vocab_size"] == 31
    assert "\ndata: data/mine, 20,000 train and 3,000 val tokens;" in capsys.readouterr().out


# -----------------------------------------------------------------------------
# Weights & Biases

class FakeWandb:
    """What train.py asks of the wandb module, recorded."""

    def __init__(self):
        self.calls = []

    @staticmethod
    def Table(columns, data):  # noqa: N802 (wandb's name)
        return ("table", columns, data)

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return types.SimpleNamespace(log=lambda record, step: self.calls.append(("log", record, step)),
                                     finish=lambda: self.calls.append(("finish",)))


def test_wandb_gets_every_metrics_record(tiny_config, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = tiny_config(wandb_log=True, wandb_project="proj", wandb_run_name="run-1", max_iters=10,
                      eval_samples=2, eval_sample_prompt="A", eval_sample_tokens=3)
    train.train(cfg)
    config = dataclasses.asdict(cfg)
    assert fake.calls[0] == ("init", {"project": "proj", "name": "run-1", "config": config})
    records = [{**r, "samples": ("table", ["sample"], [[s] for s in r["samples"]])} if "samples" in r else r
               for r in metrics(cfg)]  # samples as a table, one a row
    assert fake.calls[1:-1] == [("log", r, r["iter"]) for r in records]
    assert sum("samples" in r for r in records) == 2
    assert fake.calls[-1] == ("finish",) and len(fake.calls) > 4


@pytest.mark.parametrize("wandb_log,master", [(False, True), (True, False)])
def test_no_wandb_run_unless_asked_for_and_the_master(tiny_config, monkeypatch, wandb_log, master):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = tiny_config(wandb_log=wandb_log)
    os.makedirs(cfg.out_dir)
    log = core.MetricsLog(cfg, master)
    log({"iter": 1, "loss": 2.0})
    log.close()
    assert fake.calls == []
    assert os.path.exists(os.path.join(cfg.out_dir, "metrics.jsonl")) is master  # other ranks write nothing


def test_wandb_offline_run_is_written(tiny_config, tmp_path):
    """The real wandb package, offline (README: WANDB_MODE=offline works), writes its run to WANDB_DIR."""
    cfg = tiny_config(wandb_log=True, max_iters=2, eval_interval=2, eval_samples=1, eval_sample_prompt="A",
                      eval_sample_tokens=3)
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    r = python("train.py", *cli_args(cfg), env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), os.listdir(tmp_path)


# -----------------------------------------------------------------------------
# bench.py --mode=speedrun, on tiny runs

def test_speedrun_mode_times_the_runs_in_turns_and_judges_them(tmp_path, monkeypatch, capsys):
    """Each run of bench.SPEEDRUN (here the first two, with tiny shapes) once a round, in turns; its wall time
    the median of its rounds, its losses those of its last round."""
    data = write_dataset(tmp_path / "data")
    tiny = [*TINY_SHAPE, "--max_iters=4", "--eval_interval=4"]
    runs = {name: [args[0], *tiny] for name, args in list(bench.SPEEDRUN.items())[:2]}  # their config files
    monkeypatch.setattr(bench, "SPEEDRUN", runs)
    started, once = [], bench.speedrun_once
    monkeypatch.setattr(bench, "speedrun_once", lambda args, *a: started.append(args[0]) or once(args, *a))
    results = bench.main(["--mode=speedrun", "--device=cpu", f"--dataset={data}", "--rounds=2"])
    out = capsys.readouterr().out
    assert started == [args[0] for args in runs.values()] * 2, "the runs did not take turns, round by round"
    assert list(results) == list(runs) and list(runs)[0] == "reference recipe"
    for name, r in results.items():
        assert len(r["wall_s_each"]) == 2 and r["wall_s"] == pytest.approx(np.median(r["wall_s_each"]))
        # a process's CPU time: more than Python's startup (> 0.1 s), at most all cores for its wall time
        assert 0.1 < r["cpu_s"] <= os.cpu_count() * max(r["wall_s_each"]), r
        assert r["iters"] == 4 and np.isfinite(r["val_loss"]) and 0 < r["full_val_loss"] < 5
        assert (f"| {name} | 4 | {r['wall_s']:.1f} s | {min(r['wall_s_each']):.1f}-"
                f"{max(r['wall_s_each']):.1f} s | {r['wall_s'] / results['reference recipe']['wall_s']:.2f}x "
                f"| {r['cpu_s']:.1f} | {r['val_loss']:.4f} | {r['full_val_loss']:.4f} |") in out
    assert "| reference recipe | 4 |" in out and "| 1.00x |" in out

