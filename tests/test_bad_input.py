"""Bad input to every script and preparer: a refused run exits 2 with one `error:` line per problem, naming
the key or file, prints no traceback and leaves every file it was pointed at byte for byte as it was.

The table runs in-process through configurator.cli (what `python train.py ...` runs), which is fast; the cases
marked SUB also run as real subprocesses, from the command line as a user types it."""
import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

import bench
import core
import eval as ev
import sample
import train
from configurator import configure, help_text
from conftest import in_process, preset, python, small_model, write_dataset
from data.common import Tokenizer
from data.custom import prepare as custom
from data.fineweb_edu import prepare as fineweb_edu
from data.hellaswag import prepare as hellaswag
from data.openwebtext import prepare as openwebtext
from data.shakespeare import prepare as shakespeare
from data.shakespeare_char import prepare as shakespeare_char
from data.tinystories import prepare as tinystories
from data.wikitext import prepare as wikitext

SCRIPTS = {"train.py": train.main, "sample.py": sample.main, "eval.py": ev.main, "bench.py": bench.main}
PREPARERS = {m: m.main for m in (custom, fineweb_edu, hellaswag, openwebtext, shakespeare, shakespeare_char,
                                 tinystories, wikitext)}
MAINS = {**SCRIPTS, **{f"data/{Path(m.__file__).parent.name}/prepare.py": f for m, f in PREPARERS.items()}}

# a tiny CPU run on the synthetic data, so that a bad value let through would train, and write into {out}
TRAIN = ["--device=cpu", "--compile=False", "--dtype=float32", "--n_layer=1", "--n_head=2", "--n_embd=32",
         "--block_size=16", "--batch_size=2", "--gradient_accumulation_steps=1", "--max_iters=2",
         "--lr_decay_iters=2", "--warmup_iters=1", "--eval_interval=2", "--eval_iters=1", "--dataset={data}",
         "--out_dir={out}"]
SAMPLE = ["--device=cpu", "--out_dir={out}"]
EVAL = ["--device=cpu", "--out_dir={out}"]
BENCH = ["--device=cpu", "--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=16", "--iters=1",
         "--warmup_iters=0", "--compile=False"]
SUB = "subprocess"  # also run as a real command line
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
NO_MPS = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is present here")


class Case(NamedTuple):
    script: str
    args: list[str]
    errors: list[str]  # one per expected `error:` line, in order: a part of that line
    sub: str = ""


def case(script: str, args: list[str], *errors: str, sub: str = "", marks=()):
    base = {"train.py": TRAIN, "sample.py": SAMPLE, "eval.py": EVAL, "bench.py": BENCH}.get(script, [])
    name = " ".join(args).replace("{", "").replace("}", "") or "no args"
    return pytest.param(Case(script, base + args, list(errors), sub), id=f"{script} {name}", marks=marks)


CASES = [
    # train.py: each key's range
    case("train.py", ["--batch_size=0"], "batch_size=0: must be > 0"),
    case("train.py", ["--block_size=0"], "block_size=0: must be > 0"),
    case("train.py", ["--eval_iters=0"], "eval_iters=0: must be > 0"),
    case("train.py", ["--max_iters=-1"], "max_iters=-1: must be >= 0"),
    case("train.py", ["--gradient_accumulation_steps=0"], "gradient_accumulation_steps=0: must be > 0"),
    case("train.py", ["--dropout=1.5"], "dropout=1.5: must be in [0, 1)"),
    case("train.py", ["--learning_rate=-1"], "learning_rate=-1.0: must be > 0"),
    case("train.py", ["--grad_clip=-1"], "grad_clip=-1.0: must be >= 0"),
    case("train.py", ["--eval_interval=0"], "eval_interval=0: must be > 0"),
    case("train.py", ["--log_interval=0"], "log_interval=0: must be > 0"),
    case("train.py", ["--weight_decay=-0.1"], "weight_decay=-0.1: must be >= 0"),
    case("train.py", ["--beta2=1"], "beta2=1.0: must be in [0, 1)"),
    case("train.py", ["--optimizer=sgd"], "optimizer='sgd': must be one of 'adamw', 'muon'"),
    case("train.py", ["--seed=-1"], "seed=-1: must be >= 0"),
    case("train.py", ["--peak_tflops=0"], "peak_tflops=0.0: must be > 0"),
    case("train.py", ["--eval_samples=-1"], "eval_samples=-1: must be >= 0"),
    case("train.py", ["--hellaswag_limit=0"], "hellaswag_limit=0: must be > 0"),
    case("train.py", ["--device=tpu"], "device='tpu': must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    case("train.py", ["--dtype=fp8"], "dtype='fp8': must be one of 'auto', 'float32', 'bfloat16', 'float16'"),
    # train.py: rules across keys, and the machine
    case("train.py", ["--n_head=3"], "n_head=3: must divide n_embd=32"),
    case("train.py", ["--warmup_iters=5"], "warmup_iters=5: must be <= lr_decay_iters=2"),
    case("train.py", ["--min_lr=1"], "min_lr=1.0: must be <= learning_rate=0.0006"),
    case("train.py", ["--device=cuda"], "device='cuda': CUDA is not available here", marks=NO_CUDA),
    case("train.py", ["--device=cuda:1"], "device='cuda:1': CUDA is not available here", marks=NO_CUDA),
    case("train.py", ["--device=mps"], "device='mps': MPS is not available here", marks=NO_MPS),
    case("train.py", ["--dtype=float16"], "dtype='float16': needs a CUDA device"),
    case("train.py", ["--fsdp=True", "--optimizer=muon"],
         "fsdp=True: Muon orthogonalizes whole matrices, which FSDP shards; use optimizer='adamw' with FSDP, "
         "or DDP (fsdp=False) with Muon"),
    case("train.py", ["--overwrite=True", "--init_from=resume"],
         "error: overwrite=True: starts a new run, so it cannot go with init_from='resume'"),
    # train.py: types and names
    case("train.py", ["--batch_size=x"], "config key 'batch_size' expects int, got str 'x'"),
    case("train.py", ["--batchsize=3"], "unknown config key 'batchsize' (did you mean 'batch_size'?)",
         sub=SUB),
    case("train.py", ["--batch_size"], "argument --batch_size has no value"),
    # train.py: paths
    case("train.py", ["--out_dir={afile}"], "out_dir='{afile}': {afile} is a file, not a directory"),
    case("train.py", ["--out_dir={afile}/run"], "out_dir='{afile}/run': {afile} is a file, not a directory"),
    case("train.py", ["--out_dir={ro}/run"], "out_dir='{ro}/run': {ro} is not writable", sub=SUB),
    case("train.py", ["--dataset={empty}"], "{empty}/meta.json not found: run python"),
    case("train.py", ["--dataset={nobin}"],
         "{nobin}/train.bin not found: run python {nobin}/prepare.py first"),
    case("train.py", ["--init_from=resume"], "checkpoint {out}/ckpt.pt is unreadable", sub=SUB),
    case("train.py", ["--init_from=resume", "--out_dir={foreign}"],
         "{foreign}/ckpt.pt is not a checkpoint of this codebase"),
    case("train.py", ["--init_from=resume", "--out_dir={otherarch}"],
         "cannot resume with a different architecture: n_embd=32 but the checkpoint has 64"),
    case("train.py", ["--init_from=resume", "--out_dir={otherarch}", "--n_layer=2"],
         "cannot resume with a different architecture: n_layer=2 but the checkpoint has 1, "
         "n_embd=32 but the checkpoint has 64"),
    # train.py: config files
    case("train.py", ["{syntax}"], "{syntax} line 2: ", sub=SUB),
    case("train.py", ["{raises}"], "{raises} line 3: NameError: name 'batch' is not defined"),
    case("train.py", ["{unknown}"], "{unknown}: unknown config key 'dropuot' (did you mean 'dropout'?)"),
    case("train.py", ["{tmp}/missing.py"], "cannot read config file {tmp}/missing.py"),
    case("train.py", ["{tmp}/unknwn.py"],
         "cannot read config file {tmp}/unknwn.py: No such file or directory; did you mean {unknown}"),
    # train.py: init_from names a folder that is no model, or nothing; a dataset that is not there
    case("train.py", ["--init_from={out}", "--out_dir={tmp}/new"],
         "init_from='{out}' is a training run's out_dir (it holds ckpt.pt): use python train.py "
         "--init_from=resume --out_dir={out}", sub=SUB),
    case("train.py", ["--init_from={cfgonly}"],
         "init_from='{cfgonly}' is a training run's out_dir (it holds config.json): use python train.py "
         "--init_from=resume --out_dir={cfgonly}"),
    case("train.py", ["--init_from=gpt2-med"],
         "init_from='gpt2-med': no such folder, and not one of scratch, resume, gpt2, gpt2-medium, "
         "gpt2-large, gpt2-xl; did you mean gpt2-medium"),
    case("train.py", ["--dataset={tmp}/dat"],
         "{tmp}/dat/meta.json not found: did you mean {data}? To prepare a new dataset there, run python "
         "data/custom/prepare.py --input=... --out_dir={tmp}/dat"),
    # several problems at once: one line each
    case("train.py", ["--batch_size=0", "--dropout=1.5", "--device=tpu", "--bogus=1"],
         "unknown config key 'bogus'", "dropout=1.5", "batch_size=0", "device='tpu'", sub=SUB),
    case("train.py", ["--n_head=3", "--warmup_iters=5", "--out_dir={afile}"],
         "n_head=3", "warmup_iters=5", "out_dir='{afile}'"),
    case("train.py", ["{syntax}", "--batch_size=0"], "{syntax} line 2", "batch_size=0"),
    # sample.py
    case("sample.py", ["--temperature=-1"], "temperature=-1.0: must be >= 0", sub=SUB),
    case("sample.py", ["--top_p=1.5"], "top_p=1.5: must be in (0, 1]"),
    case("sample.py", ["--top_k=0"], "top_k=0: must be > 0"),
    case("sample.py", ["--num_samples=0"], "num_samples=0: must be > 0"),
    case("sample.py", ["--max_new_tokens=-1"], "max_new_tokens=-1: must be >= 0"),
    case("sample.py", ["--device=tpu"], "device='tpu'"),
    case("sample.py", ["--dtype=float16"], "dtype='float16': needs a CUDA device"),
    case("sample.py", [], "checkpoint {out}/ckpt.pt is unreadable"),
    case("sample.py", ["--ckpt=none.pt"], "no checkpoint at {out}/none.pt"),
    case("sample.py", ["--out_dir={foreign}"], "{foreign}/ckpt.pt is not a checkpoint of this codebase"),
    case("sample.py", ["--top_k=0", "--top_p=0", "--num_samples=0"], "num_samples=0", "top_k=0", "top_p=0"),
    case("sample.py", ["--init_from={out}"],
         "init_from='{out}' is a training run's out_dir (it holds ckpt.pt): use python sample.py "
         "--out_dir={out}", sub=SUB),
    case("sample.py", ["--init_from={bert}"],
         "init_from='{bert}': a HF model of model_type 'bert'; this codebase loads model_type 'gpt2', "
         "'llama', 'qwen3'"),
    # a Llama or Qwen3 model from elsewhere speaks a tokenizer of its own: named, from what its folder holds
    case("sample.py", ["--init_from={llamatok}"],
         "init_from='{llamatok}': a HF llama model whose tokenizer this codebase does not read "
         "(tokenizer_config.json names LlamaTokenizerFast); it reads the tokenizer of a model exported by "
         "eval.py --mode=export from its meta.json"),
    case("eval.py", ["--init_from={qwenfiles}"],
         "init_from='{qwenfiles}': a HF qwen3 model whose tokenizer this codebase does not read (it holds "
         "tokenizer.json, vocab.json, merges.txt);"),
    case("train.py", ["--init_from={llamabare}"],
         "init_from='{llamabare}': a HF llama model whose tokenizer this codebase does not read (it holds no "
         "tokenizer files);"),
    case("sample.py", ["--init_from=scratch"],
         "init_from='scratch': no such folder, and not one of resume, gpt2, gpt2-medium, gpt2-large, "
         "gpt2-xl;"),
    case("sample.py", ["--out_dir={tmp}/otherarc"],
         "no checkpoint at {tmp}/otherarc/ckpt.pt: did you mean --out_dir={otherarch}? Else train one first"),
    # eval.py
    case("eval.py", ["--mode=nonsense"], "mode='nonsense': must be one of 'hellaswag', 'plot'", sub=SUB),
    case("eval.py", ["--dpi=0"], "dpi=0: must be > 0"),
    case("eval.py", ["--limit=0"], "limit=0: must be > 0"),
    case("eval.py", ["--fig_width=3"], "fig_width=3.0: set both fig_width and fig_height, or neither"),
    case("eval.py", ["--mode=plot", "--output={afile}/loss.png"],
         "output='{afile}/loss.png': {afile} is a file"),
    case("eval.py", ["--mode=export", "--output={afile}"],
         "output='{afile}': {afile} is a file, not a directory"),
    case("eval.py", ["--mode=attention", "--device=cuda"], "device='cuda': CUDA is not available",
         marks=NO_CUDA),
    case("eval.py", ["--mode=export"], "checkpoint {out}/ckpt.pt is unreadable"),
    case("eval.py", ["--mode=export", "--init_from={cfgonly}", "--output={tmp}/hf"],
         "init_from='{cfgonly}' is a training run's out_dir (it holds config.json): use python eval.py "
         "--out_dir={cfgonly}", sub=SUB),
    case("eval.py", ["--mode=export", "--out_dir={modern}", "--output={tmp}/hf"],
         "cannot export mlp='relu2', logit_softcap=15.0: no HF class computes it the same way (the nearest, "
         "Qwen3ForCausalLM, needs pos_embedding='rope', norm='rmsnorm', mlp='swiglu', qk_norm=True, "
         "logit_softcap=None, bias=False)", sub=SUB),
    case("eval.py", ["--init_from={empty}"],
         "init_from='{empty}': {empty} is neither a run of train.py (no ckpt.pt) nor a HF model directory "
         "(no config.json)"),
    case("eval.py", ["--mode=export", "--out_dir={tmp}/foriegn"],
         "no checkpoint at {tmp}/foriegn/ckpt.pt: did you mean --out_dir={foreign}? Else"),
    # bench.py
    case("bench.py", ["--iters=0"], "iters=0: must be > 0", sub=SUB),
    case("bench.py", ["--rounds=0"], "rounds=0: must be > 0"),
    case("bench.py", ["--batch_size=0"], "batch_size=0: must be > 0"),
    case("bench.py", ["--warmup_iters=-1"], "warmup_iters=-1: must be >= 0"),
    case("bench.py", ["--mode=fast"],
         "mode='fast': must be one of 'train', 'compare', 'generate', 'speedrun'"),
    case("bench.py", ["--optimizer=sgd"], "optimizer='sgd': must be one of 'adamw', 'muon', 'plain'"),
    case("bench.py", ["--n_head=5"], "n_head=5: must divide n_embd=32"),
    case("bench.py", ["--mode=generate"],
         "max_new_tokens=200: prompt_len + max_new_tokens must be <= block_size=16 for HF's generate"),
    case("bench.py", ["--dataset={empty}"], "{empty}/meta.json not found"),
    # the preparers
    case("data/custom/prepare.py", ["--input={text}", "--val_fraction=1.5", "--out_dir={out}"],
         "--val_fraction=1.5: must be in (0, 1)", sub=SUB),
    case("data/custom/prepare.py", ["--input={tmp}/missing.txt", "--out_dir={out}"],
         "input file {tmp}/missing.txt not found", sub=SUB),
    case("data/custom/prepare.py", ["--input={text}", "--tokenizer=bpe", "--out_dir={out}"],
         "unknown tokenizer 'bpe'"),
    case("data/custom/prepare.py", ["--out_dir={out}"], "the following arguments are required: --input"),
    case("data/custom/prepare.py", ["--input={text}", "--out_dir={afile}"],
         "--out_dir={afile}: {afile} is a file"),
    case("data/fineweb_edu/prepare.py", ["--val_tokens=-1", "--out_dir={out}"],
         "--val_tokens=-1: must be > 0"),
    case("data/fineweb_edu/prepare.py", ["--val_tokens=-1", "--num_proc=0", "--out_dir={afile}"],
         "--val_tokens=-1", "--num_proc=0", "--out_dir={afile}"),
    case("data/openwebtext/prepare.py", ["--seed=-1", "--out_dir={out}"], "--seed=-1: must be >= 0"),
    case("data/openwebtext/prepare.py", ["--val_fraction=0", "--out_dir={out}"], "--val_fraction=0.0"),
    case("data/tinystories/prepare.py", ["--bogus", "--out_dir={out}"], "unrecognized arguments: --bogus"),
    case("data/wikitext/prepare.py", ["--num_proc=abc", "--out_dir={out}"],
         "argument --num_proc: invalid int value: 'abc'"),
    case("data/shakespeare_char/prepare.py", ["--input={tmp}/missing.txt", "--out_dir={out}"],
         "input file {tmp}/missing.txt not found"),
    case("data/shakespeare_char/prepare.py", ["--input={text}", "--out_dir={ro}/data"],
         "--out_dir={ro}/data: {ro} is not writable"),
    case("data/shakespeare/prepare.py", ["--input={text}", "--val_fraction=1", "--out_dir={out}"],
         "--val_fraction=1.0: must be in (0, 1)"),
    case("data/hellaswag/prepare.py", ["--out_dir={afile}"], "--out_dir={afile}: {afile} is a file", sub=SUB),
]


@pytest.fixture
def world(tmp_path) -> dict[str, str]:
    """The files bad runs are pointed at, by placeholder name: a run's out_dir ({out}: a checkpoint cut
    short, best.pt, metrics, config), other runs' folders, a dataset, config files, a file where a folder
    should be, a read-only folder."""
    names = ("afile", "empty", "nobin", "ro", "out", "foreign", "otherarch", "cfgonly", "bert", "llamatok",
             "qwenfiles", "llamabare", "modern")
    w = {"tmp": tmp_path, "data": write_dataset(tmp_path / "data"), "text": tmp_path / "in.txt",
         **{name: tmp_path / name for name in names},
         **{name: tmp_path / f"{name}.py" for name in ("syntax", "raises", "unknown")}}
    for name in ("out", "foreign", "otherarch", "empty", "ro", "cfgonly", "bert", "llamatok", "qwenfiles",
                 "llamabare", "modern"):
        w[name].mkdir()
    (w["cfgonly"] / "config.json").write_text('{"init_from": "scratch", "dtype": "auto"}\n')  # a run's own
    (w["bert"] / "config.json").write_text('{"model_type": "bert"}\n')  # a HF model of a kind not loaded here
    # HF models of kinds loaded here, with tokenizers of their own, and no meta.json of an export's
    for name, model_type in (("llamatok", "llama"), ("qwenfiles", "qwen3"), ("llamabare", "llama")):
        (w[name] / "config.json").write_text(f'{{"model_type": "{model_type}"}}\n')
    (w["llamatok"] / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizerFast"}\n')
    (w["llamatok"] / "tokenizer.json").write_text("{}\n")
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (w["qwenfiles"] / name).write_text("{}\n")
    w["afile"].write_text("not a folder\n")
    w["text"].write_text("hello world\n" * 20)
    write_dataset(w["nobin"])
    os.remove(w["nobin"] / "train.bin")
    w["syntax"].write_text("batch_size = 4\nn_layer = (\n")
    w["raises"].write_text("# a typo\nbatch_size = 4\nmax_iters = batch * 2\n")
    w["unknown"].write_text("dropuot = 0.1\n")
    args = {"n_layer": 1, "n_head": 2, "n_embd": 64, "block_size": 16, "bias": True, "vocab_size": 64,
            "dropout": 0.0}
    ckpt = {"model": {"w": torch.zeros(4)}, "model_args": args, "iter_num": 2, "best_val_loss": 1.0,
            "config": {"optimizer": "adamw"}, "meta": {}, "optimizer": {}, "scaler": {}}
    core.save_checkpoint(ckpt, str(w["otherarch"] / "ckpt.pt"))
    modern = small_model(n_layer=1, **preset("modern"))  # a run of arch_modern.py, which no HF class computes
    chars = Tokenizer.char([chr(i) for i in range(48, 128)])  # 80 of them, the model's vocab_size
    core.save_checkpoint({**ckpt, "model": modern.state_dict(), "meta": chars.meta(),
                          "model_args": dataclasses.asdict(modern.config)}, str(w["modern"] / "ckpt.pt"))
    core.save_checkpoint(ckpt, str(w["out"] / "best.pt"))
    whole = (w["out"] / "best.pt").read_bytes()
    (w["out"] / "ckpt.pt").write_bytes(whole[:len(whole) // 2])  # cut short
    (w["out"] / "metrics.jsonl").write_text('{"iter": 0, "val_loss": 3.0, "train_loss": 3.0}\n')
    (w["out"] / "config.json").write_text("{}\n")
    torch.save({"state_dict": {}}, w["foreign"] / "ckpt.pt")
    return {k: str(v) for k, v in w.items()}


def snapshot(root: str) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under root: a refused run makes no folder either."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(Path(root).rglob("*"))}


@pytest.fixture
def read_only(world):
    """{ro} made read-only. Mode bits do not stop root: there, the in-process runs make os.access say what
    they would, and the command-line cases use the test's /proc folder instead."""
    os.chmod(world["ro"], 0o555)
    yield
    os.chmod(world["ro"], 0o755)


def refused(c: Case, world: dict, run) -> None:
    """Run case c through run(script, argv) -> (exit status, stdout, stderr) and check that it is refused
    as it should be."""
    argv = [a.format(**world) for a in c.args]
    before = snapshot(world["tmp"])
    status, out, err = run(c.script, argv)
    assert "Traceback" not in err, err
    assert status == 2, (status, err[-2000:])
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("error: ") for line in lines), err  # nothing but the errors
    expected = [e.format(**world) for e in c.errors]
    assert len(lines) == len(expected), err
    for line, part in zip(lines, expected):
        assert part in line, (line, part)
    assert out == ""
    assert snapshot(world["tmp"]) == before  # nothing written, nothing changed


@pytest.mark.parametrize("c", CASES)
def test_refused_in_process(c, world, read_only, monkeypatch):
    if "{ro}" in " ".join(c.args) and os.access(world["ro"], os.W_OK):  # root: pretend the bits hold
        access = os.access
        monkeypatch.setattr(os, "access",
                            lambda p, mode: not str(p).startswith(world["ro"]) and access(p, mode))

    def run(script, argv):
        r = in_process(MAINS[script], *argv)
        return r.returncode, r.stdout, r.stderr
    refused(c, world, run)


@pytest.mark.parametrize("c", [p for p in CASES if p.values[0].sub])
def test_refused_on_the_command_line(c, world, read_only):
    if "{ro}" in " ".join(c.args) and os.access(world["ro"], os.W_OK):
        # root writes through mode bits; a process's /proc folder refuses writes even to root
        world = {**world, "ro": f"/proc/{os.getpid()}"}
        assert not os.access(world["ro"], os.W_OK), "no folder here refuses writes to this user"

    def run(script, argv):
        r = python(script, *argv, timeout=120)
        return r.returncode, r.stdout, r.stderr
    refused(c, world, run)


def test_init_from_a_run_is_answered_before_the_data_and_out_dir(world, tmp_path):
    """train.py --init_from=<a run's out_dir> without --dataset: the one line says how to resume it, before
    the default dataset's (OpenWebText's) missing files are named and before out_dir is made."""
    new = tmp_path / "new"
    r = python("train.py", f"--init_from={world['out']}", f"--out_dir={new}", "--device=cpu", timeout=120)
    assert (r.returncode, r.stdout, "Traceback" in r.stderr) == (2, "", False), r.stderr
    assert r.stderr == (f"error: init_from='{world['out']}' is a training run's out_dir (it holds ckpt.pt): "
                        f"use python train.py --init_from=resume --out_dir={world['out']}\n")
    assert not new.exists()


def test_the_default_out_dir_suggests_the_runs_beside_it(tmp_path):
    """sample.py and eval.py on an out_dir with no checkpoint name the folders beside it that hold one and
    whose names start like it, the runs a user likely meant (out -> out-shakespeare-char)."""
    ckpt = {"model": {}, "model_args": {}, "iter_num": 0, "best_val_loss": 1.0, "config": {}, "meta": {}}
    for run in ("out-shakespeare-char", "other-run"):
        (tmp_path / run).mkdir()
        core.save_checkpoint(ckpt, str(tmp_path / run / "ckpt.pt"))
    (tmp_path / "out-empty").mkdir()  # no checkpoint: not suggested
    for main, args in ((sample.main, []), (ev.main, ["--mode=export"])):
        r = in_process(main, "--device=cpu", f"--out_dir={tmp_path / 'out'}", *args)
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr == (f"error: no checkpoint at {tmp_path / 'out' / 'ckpt.pt'}: did you mean "
                            f"--out_dir={tmp_path / 'out-shakespeare-char'}? Else train one first, or point "
                            f"out_dir at the run to load\n")


def test_a_config_file_that_is_not_there_suggests_the_repositorys():
    r = python("train.py", "config/train_shakespear_char.py", timeout=120)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("error: cannot read config file config/train_shakespear_char.py: No such file "
                               "or directory; did you mean config/train_shakespeare_char.py")
    assert len(r.stderr.splitlines()) == 1


def test_table_is_big_enough():
    scripts = {p.values[0].script for p in CASES}
    assert len(CASES) >= 40 and set(MAINS) <= scripts
    assert sum(1 for p in CASES if p.values[0].sub) >= 10


@pytest.mark.parametrize("cls", [train.TrainConfig, sample.SampleConfig, ev.EvalConfig, bench.BenchConfig])
def test_every_number_has_a_range_in_help(cls):
    """Every key is checked but free text (paths, names, prompts) and booleans; --help says each range."""
    text = help_text(cls)
    for f in dataclasses.fields(cls):
        check = f.metadata.get("check")
        if check is None:
            assert f.type in (str, str | None, bool) or (cls, f.name) == (sample.SampleConfig, "seed"), f.name
        else:
            assert f"--{f.name}={f.default!r}  (" in text and f"; {check.allowed})" in text
            assert getattr(cls, f.name) == f.default  # the class attribute stays the default


def test_good_values_at_the_edges_pass(world):
    """The limits themselves are allowed: nothing above is refused for being too strict."""
    cfg = configure(train.TrainConfig, [a.format(**world) for a in TRAIN] + [
        "--dropout=0", "--max_iters=0", "--grad_clip=0", "--warmup_iters=2", "--min_lr=6e-4", "--seed=0",
        "--eval_samples=0", "--weight_decay=0", "--device=auto", "--dtype=auto", "--out_dir=" + world["tmp"]
        + "/new/run"])
    assert cfg.max_iters == 0
    assert configure(sample.SampleConfig, ["--temperature=0", "--top_p=1", "--top_k=1", "--max_new_tokens=0",
                                           "--top_k=None"]).top_k is None


def test_model_keys_name_each_head_problem():
    """ModelKeys.problems (train.py's and bench.py's check, before GPTConfig) against the arithmetic of the
    heads: 36 / 4 = 9 is an odd head size, which only rope refuses; 3 does not divide 4."""
    assert core.ModelKeys(n_embd=36, n_head=4, pos_embedding="rope").problems() == \
        ["pos_embedding='rope': needs an even head size, not n_embd / n_head = 9"]
    assert core.ModelKeys(n_embd=36, n_head=4).problems() == []  # learned positions: any head size
    assert core.ModelKeys(n_embd=32, n_head=4, n_kv_head=3).problems() == \
        ["n_kv_head=3: must divide n_head=4"]
    assert core.ModelKeys(n_embd=32, n_head=4, n_kv_head=2, pos_embedding="rope").problems() == []


def test_a_missing_checkpoint_suggests_runs_in_the_working_directory(tmp_path, monkeypatch):
    """A relative out_dir's siblings are the working directory's folders; an out_dir whose parent does not
    exist has no siblings, and the error says only how to go on (no listing of a missing folder)."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("out-char")
    core.save_checkpoint({"model": {}, "model_args": {}, "iter_num": 0, "best_val_loss": 1.0, "config": {},
                          "meta": {}}, "out-char/ckpt.pt")
    with pytest.raises(core.UsageError) as e:
        core.load_checkpoint("out/ckpt.pt")
    assert str(e.value) == ("no checkpoint at out/ckpt.pt: did you mean --out_dir=out-char? Else train one "
                            "first, or point out_dir at the run to load")
    with pytest.raises(core.UsageError) as e:
        core.load_checkpoint("missing/out/ckpt.pt")
    assert str(e.value) == "no checkpoint at missing/out/ckpt.pt: train one first, or point out_dir at the " \
                           "run to load"


def test_hf_tokenizer_names_the_class_else_the_files(tmp_path):
    """What hf_tokenizer says against what the folder holds: tokenizer_config.json's tokenizer_class when the
    file is a JSON object naming one, else (unreadable, not an object, no class) the tokenizer files."""
    assert core.hf_tokenizer(str(tmp_path)) == "it holds no tokenizer files"
    (tmp_path / "tokenizer.model").write_bytes(b"")
    (tmp_path / "merges.txt").write_text("")
    for config in ("{not json", "[1, 2]", '{"tokenizer_class": null}'):
        (tmp_path / "tokenizer_config.json").write_text(config)
        assert core.hf_tokenizer(str(tmp_path)) == "it holds tokenizer.model, merges.txt", config
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizer"}')
    assert core.hf_tokenizer(str(tmp_path)) == "tokenizer_config.json names LlamaTokenizer"
