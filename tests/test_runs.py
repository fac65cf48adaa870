"""A run's out_dir and the user's everyday workflow around it (train.py, sample.py and eval.py as
subprocesses on a tiny model): a run never destroys another run's files, resumes from its checkpoint alone,
answers signals at once, and refuses a damaged checkpoint."""
import fcntl
import io
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import core
import eval as ev
import sample
import train
from conftest import ROOT, cli_args, in_process, kill_group, python
from configurator import UsageError


def snapshot(out_dir) -> dict[str, bytes]:
    """Every file of out_dir (its lock file aside) and its bytes."""
    return {name: open(os.path.join(out_dir, name), "rb").read() for name in sorted(os.listdir(out_dir))
            if name != ".lock"}


def wait_for_file(path: str, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not os.path.exists(path):
        assert time.monotonic() - t0 < timeout, f"no {path} within {timeout} s"
        time.sleep(0.02)
    time.sleep(0.5)  # into the work that follows


def iters(out_dir) -> tuple[list[int], list[int]]:
    """The iters of metrics.jsonl's (train, eval) records, in file order."""
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return ([r["iter"] for r in records if "loss" in r and "val_loss" not in r],
            [r["iter"] for r in records if "val_loss" in r])


class Background:
    """A script running in a process group of its own; its stdout and stderr are collected by threads, so
    that waiting for a line has a deadline. Killed with its group on exit. tty=True gives it a terminal
    (a pty) for stderr, as a user at one has: tqdm then draws its bars every 0.5 s, not every 10 s."""

    def __init__(self, *args: str, tty: bool = False):
        master, terminal = pty.openpty() if tty else (None, None)
        if tty:  # 24 x 100 characters: a new pty is 0 x 0, where tqdm's bar would be empty
            fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=terminal if tty else subprocess.PIPE, text=True,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if tty:
            os.close(terminal)  # the child holds its own copy
        err = open(master, encoding="utf-8", errors="replace") if tty else self.proc.stderr
        self.out, self.err = [], []
        self.readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.out), (err, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list) -> None:
        try:
            while ch := stream.read(1):  # by character: tqdm's bars end in '\r', not '\n'
                into.append(ch)
        except OSError:  # a pty's end: EIO once the child closed it
            pass
        finally:
            stream.close()

    def wait_for(self, text: str, where: str = "out", timeout: float = 120) -> float:
        """Seconds until text appeared in stdout ("out") or stderr ("err"); fails after timeout, or once the
        process ended without it (after reading all it wrote)."""
        t0 = time.monotonic()
        while text not in "".join(getattr(self, where)):
            if self.proc.poll() is not None:
                for reader in self.readers:
                    reader.join(timeout=10)
                assert text in "".join(getattr(self, where)), \
                    f"exited {self.proc.returncode} before {text!r}:\n{''.join(self.err)[-2000:]}"
            assert time.monotonic() - t0 < timeout, \
                f"no {text!r} within {timeout} s:\n{''.join(self.err)[-2000:]}"
            time.sleep(0.02)
        return time.monotonic() - t0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        kill_group(self.proc)


def test_a_new_run_never_replaces_another(tiny):
    """The README's quick start, then its training command into the same out_dir: refused, every file of the
    first run byte-identical; --overwrite=True then replaces the run as a whole, metrics included."""
    first = replace(tiny, max_iters=6, eval_interval=3, log_interval=1)
    r = python("train.py", *cli_args(first))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()  # a start and an end that read
    assert lines[0].startswith("model: ") and lines[1].startswith("data: ") and lines[2].startswith("device ")
    assert "{" not in r.stdout  # the config goes to config.json, not the screen (unless --verbose)
    assert f"done: {tiny.out_dir}/ckpt.pt holds iter 6" in r.stdout
    assert f"python sample.py --out_dir={tiny.out_dir}" in r.stdout
    assert "elapsed, eta 0:00:00" in r.stdout
    before = snapshot(first.out_dir)
    r = in_process(train.main, *cli_args(replace(first, max_iters=4)))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1
    assert "holds another run (ckpt.pt at iter 6, best val loss" in r.stderr
    assert "--init_from=resume" in r.stderr and "--overwrite=True" in r.stderr
    assert snapshot(first.out_dir) == before
    with pytest.raises(UsageError, match="holds another run"):  # in-process too, eval_only as well
        train.train(replace(first, eval_only=True))
    second = replace(first, max_iters=4, eval_interval=2, overwrite=True)
    r = in_process(train.main, *cli_args(second))
    assert r.returncode == 0, r.stderr
    assert iters(first.out_dir) == ([1, 2, 3, 4], [0, 2, 4])  # only the new run's records
    assert core.load_checkpoint(os.path.join(first.out_dir, "ckpt.pt"))["iter_num"] == 4
    assert core.load_checkpoint(os.path.join(first.out_dir, "best.pt"))["config"]["max_iters"] == 4
    assert json.load(open(os.path.join(first.out_dir, "config.json")))["max_iters"] == 4
    train.train(replace(first, max_iters=0, overwrite=True))  # saves no checkpoint: none of the old is left
    assert not os.path.exists(os.path.join(first.out_dir, "ckpt.pt"))
    assert not os.path.exists(os.path.join(first.out_dir, "best.pt"))
    assert iters(first.out_dir) == ([], [0])


def test_a_run_that_saved_no_checkpoint_still_owns_its_metrics(tiny):
    os.makedirs(tiny.out_dir)
    with open(os.path.join(tiny.out_dir, "metrics.jsonl"), "w") as f:
        f.write('{"iter": 1, "loss": 3.0}\n')
    with pytest.raises(UsageError, match="metrics.jsonl of a run that saved no checkpoint"):
        train.train(tiny)
    os.remove(os.path.join(tiny.out_dir, "metrics.jsonl"))
    with open(os.path.join(tiny.out_dir, "config.json"), "w") as f:  # a run that died before its first step
        f.write("{}\n")
    assert train.train(replace(tiny, max_iters=2))["iter_num"] == 2


def test_one_run_per_out_dir_at_a_time(tiny):
    """A second run on an out_dir in use is refused naming the PID that holds it; the first one finishes
    with consistent files. The lock dies with its process."""
    cfg = replace(tiny, max_iters=100000, lr_decay_iters=100000, eval_interval=5, log_interval=1)
    with Background("train.py", *cli_args(cfg)) as first:
        first.wait_for("iter 6: loss")
        r = in_process(train.main, *cli_args(replace(cfg, init_from="resume")))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert f"is in use by another run (PID {first.proc.pid})" in r.stderr
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=60) == 0, "".join(first.err)
        first.wait_for("stopped by a signal: checkpoint of iter")
    ckpt = core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))
    train_iters, eval_iters = iters(cfg.out_dir)
    assert train_iters == list(range(1, ckpt["iter_num"] + 1))
    # a signal stops the run after a step, so the checkpoint's own iter was never evaluated
    assert eval_iters == list(range(0, ckpt["iter_num"], 5))
    resume = ["train.py", "--init_from=resume", f"--out_dir={cfg.out_dir}"]
    with Background(*resume) as killed:  # SIGKILL: no handler runs, the OS drops the lock
        killed.wait_for("model:")
        os.killpg(killed.proc.pid, signal.SIGKILL)
        killed.proc.wait()
    result = train.train(replace(cfg, init_from="resume", max_iters=ckpt["iter_num"] + 1))
    assert result["iter_num"] == ckpt["iter_num"] + 1


def test_resume_from_the_checkpoint_alone_is_exact(tiny, tmp_path):
    """--init_from=resume --out_dir=X takes every other key from X's checkpoint and continues exactly as an
    uninterrupted run; a finished run says so and changes nothing; keys that would change what the
    checkpoint means are refused by name."""
    straight = replace(tiny, max_iters=8, eval_interval=4, log_interval=1, dropout=0.1)
    part = replace(straight, out_dir=str(tmp_path / "part"), max_iters=4)
    train.train(straight)
    train.train(part)
    # on one thread, as pytest runs torch here: sums over two threads round differently
    r = python("train.py", "--init_from=resume", f"--out_dir={part.out_dir}", "--max_iters=8",
               env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    a = core.load_checkpoint(os.path.join(straight.out_dir, "ckpt.pt"))
    b = core.load_checkpoint(os.path.join(part.out_dir, "ckpt.pt"))
    assert a["iter_num"] == b["iter_num"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    timeless = ("ms_per_iter", "tokens_per_s")
    losses = lambda d: [{k: v for k, v in json.loads(line).items() if k not in timeless}  # noqa: E731
                        for line in open(os.path.join(d, "metrics.jsonl"))]
    assert losses(part.out_dir) == losses(straight.out_dir)  # each iter once, the same values

    before = snapshot(part.out_dir)
    r = in_process(train.main, "--init_from=resume", f"--out_dir={part.out_dir}")
    assert r.returncode == 0, r.stderr
    assert f"{part.out_dir} is finished at iter 8 >= max_iters=8; raise --max_iters to train on" in r.stdout
    assert snapshot(part.out_dir) == before
    r = in_process(train.main, "--init_from=resume", f"--out_dir={part.out_dir}", "--n_layer=3",
                   "--max_iters=9", f"--dataset={tmp_path}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot resume with a different n_layer (3; the checkpoint has 2), dataset (" in r.stderr
    assert r.stderr.rstrip().endswith(": drop those keys, or start a new run in another out_dir")
    assert snapshot(part.out_dir) == before


# GPTConfig's fields, so a checkpoint's model_args, before the architecture keys (pos_embedding, norm, ...)
OLD_MODEL_ARGS = ("block_size", "vocab_size", "n_layer", "n_head", "n_embd", "dropout", "bias",
                  "tokenizer_vocab_size")


def test_a_checkpoint_from_before_the_architecture_keys_is_gpt2(tiny, tmp_path):
    """A checkpoint written before the architecture keys existed (its model_args and config lack them)
    samples (sample.py) as it did and resumes (train.py) as GPT-2: to the weights of an uninterrupted run."""
    straight = replace(tiny, max_iters=8, eval_interval=4, log_interval=1)
    part = replace(straight, out_dir=str(tmp_path / "old"), max_iters=4)
    train.train(straight)
    train.train(part)
    path = os.path.join(part.out_dir, "ckpt.pt")
    ckpt = core.load_checkpoint(path)
    new_keys = set(core.ARCH_KEYS) - set(OLD_MODEL_ARGS)
    assert new_keys <= ckpt["model_args"].keys() and new_keys <= ckpt["config"].keys()
    args = ("--device=cpu", "--dtype=float32", "--num_samples=2", "--max_new_tokens=20", "--start=AB")
    before = in_process(sample.main, f"--out_dir={part.out_dir}", *args)
    core.save_checkpoint({**ckpt, "model_args": {k: ckpt["model_args"][k] for k in OLD_MODEL_ARGS},
                          "config": {k: v for k, v in ckpt["config"].items() if k not in new_keys}}, path)
    after = in_process(sample.main, f"--out_dir={part.out_dir}", *args)
    assert after.returncode == 0 and after.stdout == before.stdout and after.stdout.startswith("AB")
    r = in_process(train.main, "--init_from=resume", f"--out_dir={part.out_dir}", "--max_iters=8")
    assert r.returncode == 0, r.stderr
    a = core.load_checkpoint(os.path.join(straight.out_dir, "ckpt.pt"))
    b = core.load_checkpoint(path)
    assert b["iter_num"] == 8 and b["model_args"] == a["model_args"]  # written with the keys, GPT-2's
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_refuses_data_with_another_vocabulary(tiny, tmp_path):
    from conftest import write_dataset
    train.train(replace(tiny, max_iters=2, eval_interval=2))
    other = write_dataset(tmp_path / "other", vocab=30)
    with pytest.raises(UsageError, match="has another vocabulary than the checkpoint's data"):
        train.train(replace(tiny, init_from="resume", dataset=other, max_iters=4))


def test_sigkill_then_resume_logs_each_iter_once(tiny):
    cfg = replace(tiny, max_iters=100000, lr_decay_iters=100000, eval_interval=50, log_interval=1)
    with Background("train.py", *cli_args(cfg)) as run:
        run.wait_for("iter 55: loss")  # the next checkpoint is 45 steps away
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()
    assert core.load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))["iter_num"] == 50
    assert iters(cfg.out_dir)[0][-1] >= 55  # steps past the checkpoint were logged, then lost
    r = in_process(train.main, "--init_from=resume", f"--out_dir={cfg.out_dir}", "--max_iters=60")
    assert r.returncode == 0, r.stderr
    assert iters(cfg.out_dir) == (list(range(1, 61)), [0, 50, 60])


def test_a_signal_during_an_eval_answers_at_once(tiny):
    """SIGINT in the middle of a long evaluation: acknowledged on stderr within 2 s, the evaluation is
    abandoned, exit 0; at iter 0 of a new run there is no step to save, so no checkpoint is written."""
    cfg = replace(tiny, max_iters=100, eval_iters=10 ** 5)  # the eval at iter 0 would take minutes
    with Background("train.py", *cli_args(cfg), tty=True) as run:
        wait_for_file(os.path.join(cfg.out_dir, "config.json"))  # written just before the eval at iter 0
        run.wait_for("eval train:", where="err", timeout=10)  # its progress bar, shown after 2 s
        run.proc.send_signal(signal.SIGINT)
        assert run.wait_for("SIGINT", where="err", timeout=10) < 2
        assert run.proc.wait(timeout=30) == 0, "".join(run.err)
        assert "stopped by a signal before the first step of this run: nothing new to save" in \
            "".join(run.out)
    assert not os.path.exists(os.path.join(cfg.out_dir, "ckpt.pt"))


def test_a_second_signal_quits_at_once_and_keeps_the_checkpoint(tiny):
    cfg = replace(tiny, max_iters=2, eval_interval=2)
    train.train(cfg)
    before = snapshot(cfg.out_dir)
    args = ["train.py", "--init_from=resume", f"--out_dir={cfg.out_dir}", "--max_iters=100",
            f"--eval_iters={10 ** 5}"]  # resumes into a long eval at iter 2
    os.remove(os.path.join(cfg.out_dir, "config.json"))
    with Background(*args) as run:
        wait_for_file(os.path.join(cfg.out_dir, "config.json"))
        os.kill(run.proc.pid, signal.SIGINT)
        os.kill(run.proc.pid, signal.SIGTERM)  # handled right after the SIGINT: the second request
        assert run.proc.wait(timeout=30) == 130, "".join(run.err)
        assert "Traceback" not in "".join(run.err)
    after = snapshot(cfg.out_dir)
    assert after["ckpt.pt"] == before["ckpt.pt"] and after["best.pt"] == before["best.pt"]
    assert not [name for name in after if name.endswith(".tmp")]


def test_a_damaged_checkpoint_is_refused(tiny):
    cfg = replace(tiny, max_iters=2, eval_interval=2)
    train.train(cfg)
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    weight = core.load_checkpoint(path)["model"]["lm_head.weight"].numpy().tobytes()
    raw = bytearray(open(path, "rb").read())
    at = bytes(raw).find(weight[:64])  # the weight's bytes, stored uncompressed in the zip
    assert at > 0
    raw[at + 3] ^= 0x10  # one flipped bit in one float of the weight
    open(path, "wb").write(bytes(raw))
    with pytest.raises(UsageError, match="ckpt.pt is damaged"):
        core.load_checkpoint(path)
    r = in_process(sample.main, f"--out_dir={cfg.out_dir}", "--device=cpu", "--max_new_tokens=3")
    assert r.returncode == 2 and "is damaged" in r.stderr and "Traceback" not in r.stderr


def test_a_char_export_samples_like_its_checkpoint(tiny, tmp_path):
    """eval.py's export of a char-level run carries its tokenizer: sample.py on the export decodes with the
    run's chars and samples the same text as on the checkpoint."""
    cfg = replace(tiny, max_iters=4, eval_interval=4)
    train.train(cfg)
    export = str(tmp_path / "hf")
    ev.main(["--mode=export", f"--out_dir={cfg.out_dir}", f"--output={export}"])
    common = dict(device="cpu", dtype="float32", num_samples=2, max_new_tokens=20, start="AB")
    from_ckpt = sample.sample(sample.SampleConfig(out_dir=cfg.out_dir, **common), io.StringIO())
    from_export = sample.sample(sample.SampleConfig(init_from=export, **common), io.StringIO())
    assert from_export == from_ckpt and from_ckpt[0].startswith("AB")


def test_truncate_metrics_keeps_whole_lines_before_the_resume_point(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"iter": 0, "val_loss": 3.0}, {"iter": 1, "loss": 2.9}, {"iter": 2, "loss": 2.8},
               {"iter": 2, "val_loss": 2.7}, {"iter": 3, "loss": 2.6}]
    # the last record lacks its newline, a crash cut a line short, and three lines are JSON but no record
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + '\n{"iter": 2, "lo\n[1, 2]\n{"note": 1}\n'
                    '{"iter": "2"}\n' + "\n".join(json.dumps(r) for r in records[2:]))
    core.truncate_metrics(str(path), 3)
    with open(path, "a") as f:
        f.write(json.dumps({"iter": 4, "loss": 2.5}) + "\n")  # the resumed run appends
    assert [json.loads(line) for line in path.read_text().splitlines()] == records + [
        {"iter": 4, "loss": 2.5}]
    core.truncate_metrics(str(path), 2)  # the eval at the resume point is replayed: it goes
    assert [json.loads(line) for line in path.read_text().splitlines()] == records[:3]


def test_a_run_with_some_of_its_files_is_refused_and_replaced_all_the_same(tiny, tmp_path):
    """An out_dir may hold only some of a run's files (one removed by hand, a run stopped before it saved):
    a new run names the checkpoint that is there, and --overwrite removes whatever is there."""
    train.train(replace(tiny, max_iters=2, eval_interval=2))
    ckpt = core.load_checkpoint(os.path.join(tiny.out_dir, "ckpt.pt"))
    for name in core.RUN_FILES:
        alone = tmp_path / name
        alone.mkdir()
        (alone / name).write_bytes((Path(tiny.out_dir) / name).read_bytes())
        if name in ("ckpt.pt", "best.pt"):
            held = f"holds another run ({name} at iter 2, best val loss {ckpt['best_val_loss']:.4f})"
            with pytest.raises(UsageError, match=re.escape(held)):
                core.check_new_run(str(alone), False)
        core.clear_run(str(alone))
        assert os.listdir(alone) == []


def test_clock_reads_hours_minutes_seconds():
    seconds = (0, 59.9, 61, 3723.5, 7261)
    assert [core.clock(s) for s in seconds] == ["0:00:00", "0:00:59", "0:01:01", "1:02:03", "2:01:01"]


def test_an_hf_dir_with_padded_rows_never_samples_them(make_hf_dir):
    """A GPT-2 BPE model with more rows than the tokenizer has ids (a padded vocab, as from the hub's
    finetunes) samples only ids the tokenizer can decode."""
    model, tokenizer, _ = core.load_model(make_hf_dir(vocab_size=50304, n_positions=16))
    assert tokenizer.vocab_size == 50257 and model.config.real_vocab_size == 50257
    with torch.no_grad():
        model.lm_head.weight[50257:] = 100.0  # the padded rows would win every draw
        out = model.generate(torch.zeros(2, 1, dtype=torch.long), 8, temperature=1.0, top_k=None,
                             generator=torch.Generator().manual_seed(0))
    assert out.max() < 50257


def test_progress_bars_wait_2_s_and_spare_log_files(monkeypatch):
    """core.progress: a tqdm bar that shows after 2 s, redrawn every 0.5 s on a terminal but every 10 s in a
    log file, gone when done; none on ranks other than 0, or when not wanted."""
    for tty, every in ((True, 0.5), (False, 10)):
        monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
        bar = core.progress(range(3), "work")
        assert (bar.desc, bar.total, bar.delay, bar.mininterval, bar.leave, bar.disable) == \
            ("work", 3, 2, every, False, False)
        assert list(bar) == [0, 1, 2]
    assert core.progress(iter("ab"), "work", total=2).total == 2
    assert core.progress(range(3), "work", enabled=False).disable
    monkeypatch.setenv("RANK", "1")
    assert core.progress(range(3), "work").disable


def test_any_process_is_the_flag_of_one_process_alone():
    """Outside torchrun the flag itself; in a process group of one, the same through an all-reduce (the
    torchrun tests stop several processes together with it)."""
    assert core.any_process(True, torch.device("cpu")) and not core.any_process(False, torch.device("cpu"))
    store = torch.distributed.HashStore()
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert core.any_process(True, torch.device("cpu")) is True
        assert core.any_process(False, torch.device("cpu")) is False
    finally:
        torch.distributed.destroy_process_group()


def test_a_long_call_reports_on_stderr_and_a_short_one_is_quiet(capsys, monkeypatch):
    with core.long_call("slow work", delay=0.05, every=0.1):
        time.sleep(0.4)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "slow work: 0 s so far" and len(lines) >= 4  # at 0.05, 0.15, 0.25 (, 0.35) s
    assert lines[-1].startswith("slow work: done in 0.4 s")
    with core.long_call("quick work", delay=0.5):
        time.sleep(0.05)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "1")  # under torchrun, rank 0 alone reports
    with core.long_call("slow work", delay=0.01):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""


def test_checkpoints_gpt2_loading_and_exports_report_progress(make_hf_dir, tmp_path, capsys,
                                                        monkeypatch):
    """Each long call is wrapped: with the 2 s delay set to 0, each one reports."""
    real = core.long_call
    monkeypatch.setattr(core, "long_call", lambda desc: real(desc, delay=0.0))
    monkeypatch.setattr(ev, "long_call", lambda desc: real(desc, delay=0.0))
    path = str(tmp_path / "ckpt.pt")
    model = core.load_pretrained(make_hf_dir())
    core.save_checkpoint({k: None for k in core.CHECKPOINT_KEYS} | {"model": model.state_dict()}, path)
    core.load_checkpoint(path)
    ev.main([f"--init_from={make_hf_dir()}", "--mode=export", f"--output={tmp_path / 'hf'}"])
    err = capsys.readouterr().err
    for desc in ("loading ", f"writing {path}", f"reading {path}", f"checking {path}",
                 f"exporting to {tmp_path / 'hf'}"):
        assert re.search(re.escape(desc) + r"[^\n]*: done in ", err), desc


def test_the_checksum_covers_every_key_value_and_container():
    base = {"model": {"w": torch.ones(2, 3)}, "iter_num": 5, "config": {"betas": [0.9, 0.95]}, "meta": None}
    changed = [{**base, "iter_num": 6}, {**base, "config": {"Betas": [0.9, 0.95]}},
               {**base, "config": {"betas": (0.9, 0.95)}}, {**base, "config": {"betas": [0.9, 0.96]}},
               {**base, "model": {"w": torch.ones(3, 2)}}, {**base, "model": {"w": 2 * torch.ones(2, 3)}},
               {**base, "model": {"w": torch.ones(2, 3).double()}}, {**base, "meta": {}}]
    sums = {core.checksum(obj) for obj in [base, *changed]}
    assert len(sums) == 1 + len(changed)  # every change is seen
    same = {**base, "model": {"w": torch.ones(2, 3)}}
    assert core.checksum(base) == core.checksum(same)  # and only changes
