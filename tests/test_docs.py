"""The README and docs/ as a reader meets them: every command of README.md run as written in a copy of the
repository (or excused, with the reason, in NOT_RUN), .ci/run's test command the README's, a line of the
README for every test file, the parameter counts of docs/how-it-works.md against HF's GPT-2 and model.py,
and no markdown file telling the story of its own making."""
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

import bench
import core
from conftest import ROOT, run

README = ROOT / "README.md"
HOW_IT_WORKS = ROOT / "docs" / "how-it-works.md"
MARKDOWN = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "tests").glob("*.md"))]


def strip_comment(line: str) -> str:
    """line without its trailing shell comment: the first # outside quotes that starts a word."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def fenced_commands(markdown: str) -> list[str]:
    """The commands of the ```bash and ```sh blocks, in order: one a line, a line ending in a backslash joined
    with the next, comment lines and trailing comments left out."""
    commands, in_block, pending = [], False, ""
    for line in markdown.splitlines():
        line = line.strip()
        if not in_block:
            in_block = line in ("```bash", "```sh")
            continue
        if line == "```":
            in_block = False
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        command = strip_comment(pending + line)
        pending = ""
        if command:
            commands.append(command)
    return commands


def section(markdown: str, heading: str) -> str:
    """The text of a `## heading` section, up to the next one."""
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def fenced_block(markdown: str, language: str) -> list[str]:
    """The lines of the first ```language block."""
    return markdown.split(f"```{language}\n", 1)[1].split("\n```", 1)[0].splitlines()


QUICK_START = ("pip install -r requirements.txt && python data/shakespeare_char/prepare.py && "
               "python train.py config/train_shakespeare_char_cpu.py --device=auto && "
               "python sample.py --out_dir=out-shakespeare-char --num_samples=3 --max_new_tokens=300")

# The README's commands that a CPU runs offline in seconds. test_readme_commands_run_as_written runs them in
# the README's order, in one copy of the repository, as a reader would one after the other.
RUN = [
    QUICK_START,
    "python data/custom/prepare.py --input=my.txt --tokenizer=char --out_dir=data/mine",
    "python train.py config/train_shakespeare_char_cpu.py --dataset=mine --out_dir=out-mine --device=auto",
    "python sample.py --out_dir=out-mine --num_samples=1 --max_new_tokens=300",
    "python data/shakespeare/prepare.py",
    "python train.py config/train_shakespeare_char_cpu_gpt2.py config/arch_llama.py --out_dir=out-llama",
    "python train.py --init_from=resume --out_dir=out-shakespeare-char --max_iters=700",
    'python sample.py --out_dir=out-shakespeare-char --start="ROMEO:" --num_samples=1 --max_new_tokens=300',
    "python eval.py --mode=plot --out_dir=out-shakespeare-char",
    'python eval.py --mode=attention --out_dir=out-shakespeare-char --start="To be, or not to be"',
    "python eval.py --mode=export --out_dir=out-llama --output=hf-model",
]

GPUS = "needs 8 CUDA GPUs"
GPT2_XL = "downloads gpt2-xl (6 GB) from the HF hub and needs a large GPU"
SUITE = "the test suite itself, this test included"
# The README's other commands, none of them run by the tests, each with the reason.
NOT_RUN = {
    "python train.py config/train_shakespeare_char.py --overwrite=True":
        "sized for a GPU: about an hour on a 2-core CPU (docs/performance.md: 643 ms a step, 5,000 steps)",
    "python data/openwebtext/prepare.py": "downloads OpenWebText (tens of GB) from the HF hub",
    "torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2.py": GPUS + ", for days",
    "python data/fineweb_edu/prepare.py && python data/hellaswag/prepare.py":
        "downloads FineWeb-Edu (~10B tokens) from the HF hub",
    "torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2_fineweb.py": GPUS + ", for hours",
    "python train.py config/finetune_shakespeare.py": GPT2_XL,
    'python sample.py --out_dir=out-shakespeare --ckpt=best.pt --start="ROMEO:" --num_samples=3 '
    '--max_new_tokens=200': "samples the gpt2-xl finetune of the command before",
    "torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --master_addr=10.0.0.1 --master_port=29500 "
    "train.py config/train_gpt2.py": "needs two nodes of 8 GPUs",
    "torchrun --nnodes=2 --node_rank=1 --nproc_per_node=8 --master_addr=10.0.0.1 --master_port=29500 "
    "train.py config/train_gpt2.py": "needs two nodes of 8 GPUs",
    "torchrun --standalone --nproc_per_node=8 train.py config/finetune_shakespeare.py --fsdp=True":
        GPT2_XL + "; 8 of them",
    'python sample.py --init_from=gpt2-xl --start="What is the answer to life, the universe, and '
    'everything?" --num_samples=5 --max_new_tokens=100': GPT2_XL,
    "python data/hellaswag/prepare.py": "downloads HellaSwag's validation set",
    "python eval.py --mode=hellaswag --init_from=gpt2 --limit=500":
        "downloads gpt2 and needs HellaSwag's data",
    "pip install lm-eval && lm_eval --model hf --model_args pretrained=hf-model --tasks hellaswag":
        "installs lm-eval and downloads HellaSwag",
    'python -m pytest -m "not slow" tests': SUITE,
    'python -m pytest -m "not hf_parity" tests': SUITE,
    "python -m pytest -m cuda tests && python bench.py": "needs a CUDA GPU",
    "python -m pytest tests": SUITE + " (.ci/run runs it: test_ci_runs_the_readmes_test_command)",
}


def test_every_readme_command_is_run_or_excused():
    """Each command of the README is in RUN or NOT_RUN, and each entry of them is in the README: an edited
    command is not tested until it is listed again."""
    commands = fenced_commands(README.read_text(encoding="utf-8"))
    unlisted = [c for c in commands if c not in RUN and c not in NOT_RUN]
    assert not unlisted, f"README commands in neither RUN nor NOT_RUN of {__file__}: list each: {unlisted}"
    stale = [c for c in [*RUN, *NOT_RUN] if c not in commands]
    assert not stale, f"RUN or NOT_RUN list commands the README no longer has: {stale}"
    assert not set(RUN) & set(NOT_RUN)


def test_fenced_commands_joins_lines_and_drops_comments():
    text = ("text\n```bash\n# a comment\na \\\n  b  # c\n\nd '#e' \"#f\"  # g\n```\n```python\nx\n```\n"
            "```text\ny\n```\n  ```sh\n  z\n  ```\n")
    assert fenced_commands(text) == ["a b", "d '#e' \"#f\"", "z"]


def test_ci_runs_the_readmes_test_command():
    """.ci/run's last line is the README's test command (the first of its Tests section), comment aside."""
    readme_command = fenced_commands(section(README.read_text(encoding="utf-8"), "Tests"))[0]
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    ci_command = strip_comment(lines[-1])
    assert ci_command == readme_command, f".ci/run runs {ci_command!r}, the README {readme_command!r}"


def test_the_readme_has_a_line_for_every_test_file():
    tests = section(README.read_text(encoding="utf-8"), "Tests")
    listed = re.findall(r"^\| `(test_\w+\.py)` \|", tests, flags=re.M)
    files = sorted(p.name for p in (ROOT / "tests").glob("test_*.py"))
    assert sorted(listed) == files, f"README's Tests table lists {sorted(listed)}; tests/ has {files}"


HISTORY = [r"\bsessions?\b", r"\bperiods? \d", r"\bdevelopment (VM|machine)", r"\bthis work\b",
           r"no GPU was available", r"\.\./shared"]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_speaks_of_the_project_not_of_its_making(path):
    """No markdown file tells how or when it was written: a figure names its machine and date instead."""
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for pattern in HISTORY for m in re.finditer(pattern, text, flags=re.I)]
    assert not found, f"{path.name} speaks of its own making: {found}"


# -----------------------------------------------------------------------------
# the README's commands, run

def copy_repo(dst: Path) -> Path:
    """The repository as a reader clones it: no runs, data, caches or virtualenvs."""
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "mutants", "__pycache__", ".pytest_cache", "out*", "wandb", "hf-model*",
        "*.bin", "*.pt", "*.png", "*.jsonl", "input.txt", "meta.json", "*.tmp", ".lock", ".coverage*"))
    return dst


def check_quick_start(repo: Path, out: str) -> None:
    """What the README says the quick start prints, its val loss (the speedrun's 1.88, on all of val.bin) and
    three samples of 300 characters."""
    shown = fenced_block(section(README.read_text(encoding="utf-8"), "Quick start"), "text")
    promised = [line for line in shown if line.startswith(("model: ", "data: "))]
    assert len(promised) == 2 and all(line in out.splitlines() for line in promised), (promised, out[-3000:])
    assert "done: out-shakespeare-char/ckpt.pt holds iter 500" in out
    val_loss = bench.full_val_loss(str(repo / "out-shakespeare-char" / "ckpt.pt"), torch.device("cpu"))
    assert val_loss <= 1.88, f"the quick start's model: val loss {val_loss:.4f} on all of val.bin"
    after = out.split("  python sample.py --out_dir=out-shakespeare-char\n", 1)[1]  # train.py's last line
    samples = after.split(f"\n{core.SEPARATOR}\n")
    text = (repo / "data" / "shakespeare_char" / "input.txt").read_text(encoding="utf-8")
    assert len(samples) == 4 and samples[-1] == "", out[-3000:]  # three samples, each followed by dashes
    assert all(len(s) == 1 + 300 and set(s) <= set(text) for s in samples[:3])  # the prompt "\n" + 300


def check_export(repo: Path, out: str) -> None:
    """README, Evaluation: the Llama-shaped run's export is a LlamaForCausalLM that AutoModelForCausalLM
    loads, with the data's 65 characters."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(repo / "hf-model")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == 65, "the export's vocabulary: Tiny Shakespeare's 65 characters"


def check_llama(repo: Path, out: str) -> None:
    """README, Architecture presets: Llama's keys on top of GPT-2's CPU speedrun, in the checkpoint."""
    ckpt = core.load_checkpoint(str(repo / "out-llama" / "ckpt.pt"))
    assert {k: ckpt["model_args"][k] for k in ("pos_embedding", "norm", "mlp", "tie_embeddings")} == {
        "pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "tie_embeddings": False}
    assert ckpt["model_args"]["n_layer"] == 1 and ckpt["iter_num"] == 800, out[-2000:]


def check_bpe_data(repo: Path, out: str) -> None:
    assert "304,223 train and 33,803 val tokens" in out, f"the README's data table against prepare.py: {out}"


def check_resumed(repo: Path, out: str) -> None:
    ckpt = core.load_checkpoint(str(repo / "out-shakespeare-char" / "ckpt.pt"))
    assert ckpt["iter_num"] == 700, f"--max_iters=700 resumed to iter {ckpt['iter_num']}:\n{out}"


def check_sample(prompt: str):
    def check(repo: Path, out: str) -> None:
        assert out.startswith(prompt) and len(out) >= len(prompt) + 300, f"{prompt!r} + 300 characters: {out}"
    return check


def check_png(name: str):
    def check(repo: Path, out: str) -> None:
        path = repo / "out-shakespeare-char" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG: {out}"
    return check


CHECKS = {
    QUICK_START: check_quick_start,
    "python sample.py --out_dir=out-mine --num_samples=1 --max_new_tokens=300": check_sample("\n"),
    "python train.py config/train_shakespeare_char_cpu_gpt2.py config/arch_llama.py --out_dir=out-llama":
        check_llama,
    "python data/shakespeare/prepare.py": check_bpe_data,
    "python train.py --init_from=resume --out_dir=out-shakespeare-char --max_iters=700": check_resumed,
    'python sample.py --out_dir=out-shakespeare-char --start="ROMEO:" --num_samples=1 --max_new_tokens=300':
        check_sample("ROMEO:"),
    "python eval.py --mode=plot --out_dir=out-shakespeare-char": check_png("loss.png"),
    'python eval.py --mode=attention --out_dir=out-shakespeare-char --start="To be, or not to be"':
        check_png("attention.png"),
    "python eval.py --mode=export --out_dir=out-llama --output=hf-model": check_export,
}


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path, shakespeare_text, monkeypatch):
    """Every RUN command, as the README writes it, in the README's order, with bash in a copy of the
    repository: each exits 0, and CHECKS says what it must have done. Only the downloads are provided
    beforehand (Tiny Shakespeare where its preparers look first), and the reader's own my.txt; pip may not
    reach an index, so it only confirms that requirements.txt is installed. About a minute on 2 cores."""
    repo = copy_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)  # where the checks look for data/, as train.py does
    for name in ("shakespeare_char", "shakespeare"):
        (repo / "data" / name / "input.txt").write_text(shakespeare_text, encoding="utf-8")
    (repo / "my.txt").write_text(shakespeare_text[:300_000], encoding="utf-8")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    commands = [c for c in fenced_commands(README.read_text(encoding="utf-8")) if c in RUN]
    assert commands == RUN, "RUN is in the README's order, each command once"
    for command in commands:
        r = run(["bash", "-c", command], timeout=600, env=env, cwd=repo)
        assert r.returncode == 0, f"{command}\nexit {r.returncode}:\n{r.stderr[-3000:]}"
        if command in CHECKS:
            CHECKS[command](repo, r.stdout)


# -----------------------------------------------------------------------------
# docs/how-it-works.md: the parameter counts

def table(markdown: str, header: str) -> list[list[str]]:
    """The rows (lists of cells) of the markdown table whose header line starts with header."""
    lines = markdown.split(header, 1)[1].splitlines()[2:]  # past the header and the |---| line
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


def arithmetic(cell: str) -> int:
    """A shape cell such as '768 x 2,304 + 2,304', worked out."""
    expr = cell.replace(",", "").replace(" x ", " * ")
    assert re.fullmatch(r"[\d *+]+", expr), f"not a product and sum: {cell!r}"
    return eval(expr)


def hf_gpt2(**config):
    """HF's GPT2LMHeadModel on the meta device: shapes, no weights."""
    from transformers import GPT2Config, GPT2LMHeadModel
    with torch.device("meta"):
        return GPT2LMHeadModel(GPT2Config(**config))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.hf_parity
def test_gpt2_124m_parameter_count_term_by_term():
    """Each row of how-it-works' 124M table against the HF module of that name (a block's parts in block 0):
    its count, and the arithmetic of its shape column."""
    hf = hf_gpt2()  # GPT2Config's defaults are gpt2's: 12 layers, 12 heads, 768 wide, 1,024 positions
    rows = table(HOW_IT_WORKS.read_text(encoding="utf-8"), "| part | shape | parameters |")
    assert len(rows) == 13
    for part, shape, figure in rows:
        name = re.match(r"`([\w.]+)`", part)
        if name is None:
            assert part == "all", part
            actual = count(hf)
        elif name[1] == "lm_head":
            assert hf.lm_head.weight is hf.transformer.wte.weight  # tied: no parameters of its own
            actual = count(hf) - count(hf.transformer)
        else:
            names = dict(hf.named_modules())
            actual = count(names[name[1] if name[1] in names else f"transformer.h.0.{name[1]}"])
        assert number(figure) == actual, f"{part}: the doc says {figure}, HF's GPT-2 has {actual:,}"
        if shape and shape != "tied to `wte`":
            assert arithmetic(shape) == actual, f"{part}: {shape} is not {actual:,}"


@pytest.mark.hf_parity
def test_gpt2_sizes_parameter_counts():
    """Each row of how-it-works' table of the four GPT-2 sizes against HF's GPT-2 of that shape."""
    rows = table(HOW_IT_WORKS.read_text(encoding="utf-8"), "| model | layers | heads | width |")
    assert [row[0] for row in rows] == ["`gpt2`", "`gpt2-medium`", "`gpt2-large`", "`gpt2-xl`"]
    for name, layers, heads, width, embeddings, blocks, total in rows:
        hf = hf_gpt2(n_layer=number(layers), n_head=number(heads), n_embd=number(width))
        actual = (count(hf.transformer.wte) + count(hf.transformer.wpe), count(hf.transformer.h), count(hf))
        assert tuple(map(number, (embeddings, blocks, total))) == actual, f"{name}: HF's GPT-2 has {actual}"


def test_padded_parameter_count_is_model_py():
    """The counts how-it-works gives for the 124M shape trained from scratch here (vocabulary padded, and what
    train.py prints) against model.py's GPT of TrainConfig's default shape, on the meta device."""
    from model import GPT, GPTConfig, padded_vocab
    text = " ".join(HOW_IT_WORKS.read_text(encoding="utf-8").split())
    rows, padded, printed = re.search(r"pads the vocabulary to ([\d,]+) rows .*? the 124M shape has ([\d,]+) "
                                      r"parameters\. .*? ([\d.]+)M for that shape", text).groups()
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=padded_vocab(50257)))
    V = model.config.vocab_size
    assert number(rows) == V, f"the doc pads the vocabulary to {rows} rows, model.py to {V}"
    n = model.get_num_params(non_embedding=False)
    assert number(padded) == n, f"the doc says {padded} parameters, model.py's GPT has {n:,}"
    shown = f"{model.get_num_params() / 1e6:.2f}"
    assert printed == shown, f"the doc says train.py prints {printed}M, it prints {shown}M"
