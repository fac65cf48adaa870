"""eval.py: HellaSwag scoring against HF transformers and on memorized text, loss and attention PNGs, HF
export."""
import contextlib
import hashlib
import io
import json
import os
import signal
import struct
import urllib.request
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

import eval as ev
import sample
import train
from configurator import UsageError
from data.common import DataError, Tokenizer, load_hellaswag
from data.hellaswag import prepare as hellaswag_prepare
import core
from model import GPT, GPTConfig
from core import load_model
from conftest import in_process, preset, small_model, tiny_train_config, write_dataset
from test_arch import make_hf
from train import TrainConfig

NULL = contextlib.nullcontext()


def train_tiny(out_dir, data_dir, **kw) -> str:
    train.train(tiny_train_config(out_dir, **{"out_dir": str(out_dir), "dataset": str(data_dir),
                                              "gradient_accumulation_steps": 1, "max_iters": 10,
                                              "lr_decay_iters": 10, "warmup_iters": 2, "eval_interval": 5,
                                              "eval_iters": 2, "log_interval": 1, "seed": 0, **kw}))
    return str(out_dir)


@pytest.fixture(scope="module")
def char_runs(tmp_path_factory):
    """{bias: out_dir} of two runs on synthetic char data: 23 real ids padded to 64 rows, a few steps each;
    and under "modern" one of arch_modern.py's keys."""
    tmp = tmp_path_factory.mktemp("char")
    data = write_dataset(tmp / "data")
    runs = {bias: train_tiny(tmp / f"out-{bias}", data, bias=bias) for bias in (True, False)}
    return {**runs, "modern": train_tiny(tmp / "out-modern", data, **preset("modern"))}


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# -----------------------------------------------------------------------------
# HellaSwag

FACTS = [("The red fox lives in the", "deep green forest near the river."),
         ("My old teacher always drinks", "hot black coffee every single morning."),
         ("The tall ship sailed across", "the cold northern sea for many weeks."),
         ("Our small dog likes to", "chase yellow balls in the park."),
         ("Every winter the farmer", "sells fresh apples at the market."),
         ("A quiet student wrote", "three long letters to her brother."),
         ("The old bridge was built", "from grey stone two hundred years ago."),
         ("At night the city lights", "shine brightly over the dark water.")]


def fact_examples() -> list[dict]:
    """Each fact's context with its own ending (at index label, which cycles 0..3) among three others'
    endings."""
    examples = []
    for i, (ctx, ending) in enumerate(FACTS):
        label, wrong = i % 4, [FACTS[(i + j) % len(FACTS)][1] for j in (1, 2, 3)]
        examples.append({"ind": i, "activity_label": "Memory", "ctx_a": ctx, "ctx_b": "", "ctx": ctx,
                         "endings": wrong[:label] + [ending] + wrong[label:], "label": label,
                         "source_id": f"test~{i}", "split": "val", "split_type": "indomain"})
    return examples


def write_jsonl(path, examples) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(ex) + "\n" for ex in examples)
    return str(path)


@pytest.fixture(scope="module")
def memorizer(tmp_path_factory):
    """out_dir of a GPT-2-BPE checkpoint that has memorized FACTS. Training over the full 50257-id vocab is
    too slow for a test, so a tiny model learns the FACTS' token stream with its ids renumbered 0..K-1, then
    its embedding rows are put back at their GPT-2 ids in a full-vocab model (every other row zero)."""
    tmp = tmp_path_factory.mktemp("memorizer")
    tok = Tokenizer.gpt2()
    facts = [tok.encode(ctx) + tok.encode(" " + ending) for ctx, ending in FACTS]
    used = sorted({t for f in facts for t in f})
    renumber = {t: i for i, t in enumerate(used)}
    rng = np.random.default_rng(0)
    os.makedirs(tmp / "data")
    sizes = {}
    for split, repeats in (("train", 60), ("val", 6)):  # the facts in a shuffled order each time
        stream = [renumber[t] for _ in range(repeats) for i in rng.permutation(len(facts)) for t in facts[i]]
        np.array(stream, dtype=np.uint16).tofile(tmp / "data" / f"{split}.bin")
        sizes[f"{split}_tokens"] = len(stream)
    with open(tmp / "data" / "meta.json", "w") as f:
        json.dump({"tokenizer": "char", "vocab_size": len(used), "dtype": "uint16", "eot_token": None,
                   "chars": [chr(0x100 + i) for i in range(len(used))], **sizes}, f)
    small_dir = train_tiny(tmp / "small", tmp / "data", block_size=32, batch_size=8, max_iters=150,
                           lr_decay_iters=150, warmup_iters=10, eval_interval=150, log_interval=50,
                           learning_rate=1e-2, min_lr=1e-3, weight_decay=0.0)
    ckpt = core.load_checkpoint(os.path.join(small_dir, "ckpt.pt"))
    small = core.model_from_checkpoint(ckpt)
    big = GPT(GPTConfig(**{**asdict(small.config), "vocab_size": 50304, "tokenizer_vocab_size": 50257}))
    weights = small.state_dict()
    with torch.no_grad():
        for name, p in big.state_dict().items():
            if name in ("transformer.wte.weight", "lm_head.weight"):
                p.zero_()
                p[used] = weights[name][:len(used)]
            else:
                p.copy_(weights[name])
    out = tmp / "big"
    os.makedirs(out)
    core.save_checkpoint({**ckpt, "model": big.state_dict(), "model_args": asdict(big.config),
                           "meta": {**ckpt["meta"], "chars": None, **tok.meta()}}, str(out / "ckpt.pt"))
    return str(out)


def reference_scores(hf, tok, example, block_size) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed and mean loss of each ending, one plain HF forward pass per candidate, nothing padded."""
    sums, means = [], []
    for ending in example["endings"]:
        ctx, end = tok.encode(example["ctx"]), tok.encode(" " + ending)
        seq = (ctx + end)[-(block_size + 1):]
        n = min(len(end), len(seq) - 1)
        logp = hf(torch.tensor([seq[:-1]])).logits[0].log_softmax(-1)
        losses = [-logp[len(seq) - 1 - n + j, seq[len(seq) - n + j]] for j in range(n)]
        sums.append(sum(losses))
        means.append(sum(losses) / n)
    return torch.stack(sums), torch.stack(means)


@pytest.mark.hf_parity
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_scores_match_hf(make_hf_dir, tmp_path, kind):
    """HellaSwag's scores of each ending against HF's GPT2LMHeadModel, or LlamaForCausalLM (untied, RoPE: the
    right-padded batch of 4 changes no real token's position)."""
    from transformers import AutoModelForCausalLM
    if kind == "gpt2":
        hf_dir = make_hf_dir(seed=3, vocab_size=50257, n_positions=32)
    else:
        hf_dir = str(tmp_path / "llama")
        make_hf("llama", seed=3, vocab_size=50257, max_position_embeddings=32).save_pretrained(hf_dir)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    model, tok, _ = load_model(hf_dir)
    assert model.config.pos_embedding == ("learned" if kind == "gpt2" else "rope")
    examples = fact_examples()[:3]
    examples.append({"ctx": "A very long context, " * 12,
                     "endings": ["a", "b c", "longer ending here", "x " * 40],
                     # longer than block_size=32: cut from the left, the last ending even in itself
                     "label": 2})
    with torch.no_grad():
        for ex in examples:
            total, mean = core.score_endings(model, ex, tok, "cpu")
            ref_total, ref_mean = reference_scores(hf, tok, ex, 32)
            torch.testing.assert_close(total, ref_total, atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(mean, ref_mean, atol=1e-5, rtol=1e-5)
    # a padded vocab (50304 rows for 50257 ids) with padding rows that would win every softmax: not counted
    padded = GPT(GPTConfig(**{**asdict(model.config), "vocab_size": 50304, "tokenizer_vocab_size": 50257}))
    with torch.no_grad():
        for name, p in padded.state_dict().items():
            rows = model.state_dict()[name]
            if name in ("transformer.wte.weight", "lm_head.weight"):  # one tensor where tied
                rows = torch.cat([rows, torch.full((50304 - 50257, rows.size(1)), 3.0)])
            p.copy_(rows)
        for ex in examples[:2]:
            ours = core.score_endings(padded, ex, tok, "cpu")
            torch.testing.assert_close(ours, reference_scores(hf, tok, ex, 32), atol=1e-4, rtol=1e-5)
    # the 4 candidates share the context's tokens and differ in the ending's only
    x, y = core.candidate_batch(examples[0], tok, 32)
    n_ctx = len(tok.encode(examples[0]["ctx"]))
    assert (x[:, :n_ctx] == x[0, :n_ctx]).all() and (y[:, :n_ctx - 1] == -1).all()
    lengths = [len(tok.encode(" " + e)) for e in examples[0]["endings"]]
    assert [(row != -1).sum().item() for row in y] == lengths


def test_memorized_endings_win(memorizer, tmp_path):
    path = write_jsonl(tmp_path / "val.jsonl", fact_examples())
    result = ev.main(["--mode=hellaswag", f"--out_dir={memorizer}", f"--hellaswag_path={path}",
                      "--device=cpu"])
    assert result == {"examples": 8, "correct": 8, "correct_norm": 8, "acc": 1.0, "acc_norm": 1.0}
    assert ev.main(["--mode=hellaswag", f"--out_dir={memorizer}", f"--hellaswag_path={path}", "--device=cpu",
                    "--limit=3"])["examples"] == 3
    # the right ending's loss is far below the others' (and a shuffled label is no longer found)
    model, tok, _ = load_model("resume", memorizer)
    for ex in fact_examples():
        total, mean = core.score_endings(model, ex, tok, "cpu")
        others = [i for i in range(4) if i != ex["label"]]
        assert total[ex["label"]] < total[others].min() - 3 and mean[ex["label"]] < mean[others].min() - 0.5
    moved = [{**ex, "label": (ex["label"] + 1) % 4} for ex in fact_examples()]
    assert core.hellaswag_accuracy(model, moved, tok, "cpu", NULL)["correct"] == 0


def test_acc_is_lowest_sum_and_acc_norm_lowest_mean(monkeypatch):
    # ending 0: short and cheap in total; ending 1: long, cheapest per token
    monkeypatch.setattr(core, "score_endings", lambda *a: (torch.tensor([2.0, 6.0, 9.0, 9.0]),
                                                         torch.tensor([2.0, 0.5, 3.0, 3.0])))

    class Model(torch.nn.Module):  # just enough of a GPT for hellaswag_accuracy's checks
        config = GPTConfig(vocab_size=50304)
    examples = [{"ctx": "c", "endings": ["a"] * 4, "label": label} for label in (0, 1, 1, 2)]
    result = core.hellaswag_accuracy(Model(), examples, Tokenizer.gpt2(), "cpu", NULL)
    assert (result["correct"], result["correct_norm"], result["examples"]) == (1, 2, 4)
    assert (result["acc"], result["acc_norm"]) == (0.25, 0.5)


def test_split_over_ranks_adds_up(memorizer, monkeypatch):
    model, tok, _ = load_model("resume", memorizer)
    examples = fact_examples()[:5]
    examples[3] = {**examples[3], "label": 0}  # one wrong answer, so the counts differ between ranks
    whole = core.hellaswag_accuracy(model, examples, tok, "cpu", NULL)
    parts = [core.hellaswag_accuracy(model, examples, tok, "cpu", NULL, rank=r, world=2) for r in (0, 1)]
    assert [p["examples"] for p in parts] == [3, 2]  # examples 0, 2, 4 and 1, 3
    for key in ("examples", "correct", "correct_norm"):
        assert parts[0][key] + parts[1][key] == whole[key]
    assert whole["correct"] == 4
    # under torch.distributed, rank 0's counts are all-reduced with rank 1's: every rank then holds the total
    import torch.distributed as dist
    rank1 = torch.tensor([parts[1]["examples"], parts[1]["correct"], parts[1]["correct_norm"]])
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", lambda t, *a, **k: t.add_(rank1))
    assert core.hellaswag_accuracy(model, examples, tok, "cpu", NULL, rank=0, world=2) == whole
    monkeypatch.undo()
    model.train()
    one = core.hellaswag_accuracy(model, examples[:1], tok, "cpu", NULL)
    assert model.training is True and (one["acc"], one["acc_norm"]) == (1.0, 1.0)  # the caller's mode back
    with pytest.raises(core.Interrupted):  # also when stopped
        core.hellaswag_accuracy(model, examples, tok, "cpu", NULL, should_stop=lambda: True)
    assert model.training is True


class FakeBar:
    """What hellaswag_accuracy asks of its progress bar, recorded."""

    def __init__(self, iterable, desc, total=None, enabled=True):
        self.items, self.desc, self.enabled, self.postfixes = list(iterable), desc, enabled, []

    def __iter__(self):
        return iter(self.items)

    def set_postfix(self, refresh=True, **values):
        self.postfixes.append((values, refresh))


def test_hellaswag_shows_its_running_accuracy_and_runs_the_forward_in_ctx(monkeypatch):
    monkeypatch.setattr(core, "score_endings", lambda model, ex, tok, device, ctx: entered(ctx))
    bars = []
    monkeypatch.setattr(core, "progress", lambda *a, **k: bars.append(FakeBar(*a, **k)) or bars[-1])

    class Counting:  # a reusable context manager that counts its entries
        n = 0

        def __enter__(self):
            Counting.n += 1

        def __exit__(self, *exc):
            return False

    def entered(ctx):
        with ctx:
            return torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([4.0, 1.0, 3.0, 4.0])

    class Model(torch.nn.Module):
        config = GPTConfig(vocab_size=50304)
    examples = [{"ctx": "c", "endings": ["a"] * 4, "label": label} for label in (0, 1, 0)]
    core.hellaswag_accuracy(Model(), examples, Tokenizer.gpt2(), "cpu", Counting())
    assert bars[-1].enabled is False  # no bar unless asked for
    for show in (False, True):
        core.hellaswag_accuracy(Model(), examples, Tokenizer.gpt2(), "cpu", Counting(), show_progress=show)
        assert bars[-1].desc == "hellaswag" and bars[-1].enabled is show
    assert Counting.n == 9  # every forward pass inside ctx
    assert [values for values, _ in bars[-1].postfixes] == [  # acc: lowest sum (0); acc_norm: lowest mean (1)
        {"acc": "1.0000", "acc_norm": "0.0000"}, {"acc": "0.5000", "acc_norm": "0.5000"},
        {"acc": "0.6667", "acc_norm": "0.3333"}]
    assert not any(refresh for _, refresh in bars[-1].postfixes)  # drawn at the bar's own pace


def test_hellaswag_clear_errors(char_runs, tmp_path):
    path = write_jsonl(tmp_path / "val.jsonl", fact_examples()[:1])
    with pytest.raises(UsageError, match="GPT-2's BPE tokenizer, not the char tokenizer"):
        ev.main(["--mode=hellaswag", f"--out_dir={char_runs[True]}", f"--hellaswag_path={path}",
                 "--device=cpu"])
    with pytest.raises(UsageError, match="run python data/hellaswag/prepare.py"):
        load_hellaswag(str(tmp_path / "missing.jsonl"))
    (tmp_path / "bad.jsonl").write_text('{"ctx": "a", "endings": ["b"], "label": 0}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl:1 is not a HellaSwag example"):
        load_hellaswag(str(tmp_path / "bad.jsonl"))
    with pytest.raises(UsageError, match="mode='hellaswog': must be one of 'hellaswag', 'plot'"):
        ev.main(["--mode=hellaswog"])


def test_prepare_offline_error_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(hellaswag_prepare, "URL", "http://127.0.0.1:9/hellaswag_val.jsonl")
    dest = tmp_path / "hs"
    with pytest.raises(DataError) as e:
        hellaswag_prepare.main([f"--out_dir={dest}"])
    message = str(e.value)
    assert "http://127.0.0.1:9/hellaswag_val.jsonl" in message and "\n" not in message
    assert str((dest / "hellaswag_val.jsonl").resolve()) in message
    assert not dest.exists() or not any(dest.iterdir())
    # something that is no HellaSwag (an error page, say) is removed too; the real format is kept
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>"))
    with pytest.raises(DataError, match="is not a HellaSwag example"):
        hellaswag_prepare.main([f"--out_dir={dest}"])
    assert not any(dest.iterdir())
    lines = "".join(json.dumps(ex) + "\n" for ex in fact_examples()).encode()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(lines))
    path = hellaswag_prepare.main([f"--out_dir={dest}"])
    assert load_hellaswag(str(path)) == fact_examples()


# -----------------------------------------------------------------------------
# loss curves and attention maps

def test_loss_plot_from_growing_metrics(tmp_path):
    run = tmp_path / "run"
    os.makedirs(run)
    records = [{"iter": 0, "tokens": 0, "train_loss": 5.0, "val_loss": 5.1, "lr": 0.0}]
    records += [{"iter": i, "tokens": 64 * i, "loss": 5.0 - i / 10, "lr": 1e-3, "grad_norm": 1.0,
                 "ms_per_iter": 1.0, "tokens_per_s": 1.0, "mfu": None} for i in range(1, 9)]
    records.append({"iter": 5, "tokens": 320, "train_loss": 4.5, "val_loss": 4.6, "lr": 1e-3})  # resumed at 5
    records += [{"iter": i, "tokens": 64 * i, "loss": 1.0, "lr": 1e-3} for i in (6, 7)]
    with open(run / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
        f.write('{"iter": 8, "tokens": 512, "lo')  # the line train.py is writing right now
    train_records, evals = core.read_metrics(str(run / "metrics.jsonl"))
    # 6 and 7 are the resumed run's; 8 belonged to the old run
    assert [(r["iter"], r["loss"]) for r in train_records] == [(1, 4.9), (2, 4.8), (3, 4.7), (4, 4.6),
                                                               (5, 4.5), (6, 1.0), (7, 1.0)]
    assert [(r["iter"], r["val_loss"]) for r in evals] == [(0, 5.1), (5, 4.6)]
    out = ev.main(["--mode=plot", f"--out_dir={run}", "--fig_width=6.4", "--fig_height=3.2", "--dpi=50"])
    assert out == str(run / "loss.png") and png_size(out) == (320, 160)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # the temp file was renamed, none left
    with pytest.raises(UsageError, match="metrics.jsonl not found"):
        ev.main(["--mode=plot", f"--out_dir={tmp_path}"])


def test_plot_of_a_real_run(char_runs, tmp_path, figures):
    """A run's metrics.jsonl plotted, with the bits per byte each of its evals recorded on the right axis."""
    out = str(tmp_path / "sub" / "curves.png")
    ev.main(["--mode=plot", f"--out_dir={char_runs[True]}", f"--output={out}"])
    assert png_size(out) == (1000, 500)  # the default 10 x 5 inches at 100 dpi
    _, evals = core.read_metrics(os.path.join(char_runs[True], "metrics.jsonl"))
    assert len(evals) == 3  # iters 0, 5, 10
    right = figures[-1].axes[1]
    assert {line.get_label(): list(line.get_ydata()) for line in right.get_lines()} == \
        {f"{split} bits per byte": [r[f"{split}_bpb"] for r in evals] for split in ("train", "val")}


@pytest.mark.parametrize("run", [True, False, "modern"], ids=["bias", "no_bias", "modern"])
def test_attention_maps_are_the_models(char_runs, run):
    """The maps are the weights each layer attends with (after QK-norm and RoPE's rotation, arch_modern.py):
    causal rows of probabilities that, times the layer's values, give its output."""
    model, tok, _ = load_model("resume", char_runs[run])
    idx = torch.tensor(tok.encode("ABCDEFGHIJKLM"))
    maps = ev.attention_maps(model, idx)
    T = len(idx)
    assert maps.shape == (2, 2, T, T)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, T))
    lower = torch.ones(T, T, dtype=torch.bool).tril()
    assert (maps[..., ~lower] == 0).all() and (maps[..., lower] > 0).all()  # causal
    # those weights times each layer's values, through c_proj, are exactly what the layer outputs
    seen = []
    hooks = [b.attn.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
             for b in model.transformer.h]
    with torch.no_grad():
        model(idx[None])
        for h in hooks:
            h.remove()
        for layer, (block, (x, out)) in enumerate(zip(model.transformer.h, seen)):
            # n_embd 32: (1, nh, T, hs)
            v = block.attn.c_attn(x)[..., 2 * 32:].view(1, T, 2, 16).transpose(1, 2)
            y = (maps[layer][None] @ v).transpose(1, 2).reshape(1, T, 32)
            torch.testing.assert_close(block.attn.c_proj(y), out, atol=1e-5, rtol=1e-5)


def test_attention_png(char_runs, tmp_path):
    out = str(tmp_path / "attn.png")
    maps = ev.main(["--mode=attention", f"--out_dir={char_runs[True]}", f"--output={out}", "--start=ABCDE",
                    "--fig_width=4", "--fig_height=3", "--device=cpu"])
    assert maps.shape == (2, 2, 5, 5) and png_size(out) == (400, 300)
    ev.main(["--mode=attention", f"--out_dir={char_runs[True]}", "--start=HELLO", "--device=cpu"])
    # sized to the content: 2 x 2 heatmaps of 1.5 inches (5 tokens), plus 1.6 inches of margin and colour bar
    # across and one down, at 100 dpi
    assert png_size(os.path.join(char_runs[True], "attention.png")) == (460, 400)
    with pytest.raises(DataError, match="not in the vocabulary"):
        ev.main(["--mode=attention", f"--out_dir={char_runs[True]}", "--start=hello", "--device=cpu"])
    # BPE tokens as tick labels: '$' would start matplotlib's mathtext, a newline would break the line
    tok = Tokenizer.gpt2()
    ids = tok.encode("costs $5 or $6\n\tnow")
    labels = ev.token_labels(tok, ids)
    assert "⏎" in labels and "⇥" in labels and all("$" not in l.replace("\\$", "") for l in labels)
    ev.plot_attention(torch.rand(1, 2, len(ids), len(ids)), labels, out, None, dpi=20)
    assert png_size(out)[0] > 0


# -----------------------------------------------------------------------------
# export to HF transformers

@pytest.mark.hf_parity
@pytest.mark.parametrize("bias", [True, False])
def test_export_loads_in_hf_with_our_logits(char_runs, tmp_path, bias):
    from transformers import GPT2LMHeadModel
    model, tok, _ = load_model("resume", char_runs[bias])
    assert model.config.vocab_size == 64 and model.config.tokenizer_vocab_size == 23
    assert model.config.bias == bias
    out = ev.main(["--mode=export", f"--out_dir={char_runs[bias]}", f"--output={tmp_path / 'hf'}"])
    hf = GPT2LMHeadModel.from_pretrained(out).eval()
    cfg = hf.config
    assert (cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head) == (23, 16, 32, 2, 2)
    assert cfg.activation_function == "gelu_new" and cfg.layer_norm_epsilon == 1e-5
    assert cfg.bos_token_id is None and cfg.eos_token_id is None
    assert model.config.dropout == 0.0  # HF's default is 0.1: the run's own rate is written
    assert (cfg.resid_pdrop, cfg.embd_pdrop, cfg.attn_pdrop) == (0.0, 0.0, 0.0)
    assert hf.lm_head.weight is hf.transformer.wte.weight  # tied, as in this codebase, for finetuning in HF
    with open(os.path.join(out, "meta.json")) as f:
        assert Tokenizer.from_meta(json.load(f)).chars == tok.chars
    if not bias:
        assert all((p == 0).all() for n, p in hf.named_parameters() if n.endswith(".bias"))
    idx = torch.randint(0, 23, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(idx, all_logits=True)[0][..., :23]
        torch.testing.assert_close(hf(idx).logits, ours, atol=1e-5, rtol=0)
        back = GPT.from_pretrained(out).eval()  # and back into this codebase
        torch.testing.assert_close(back(idx, all_logits=True)[0], ours, atol=1e-5, rtol=0)


@pytest.mark.hf_parity
def test_export_gpt2_bpe_with_tokenizer(make_hf_dir, tmp_path):
    from transformers import AutoTokenizer, GPT2LMHeadModel
    hf_dir = make_hf_dir(seed=5, vocab_size=50257, n_positions=32)
    model, tok, _ = load_model(hf_dir)
    out = ev.export_hf(model, str(tmp_path / "hf"), tok)
    hf = GPT2LMHeadModel.from_pretrained(out).eval()
    assert hf.config.bos_token_id == hf.config.eos_token_id == 50256
    text = "Hello world, <|endoftext|> ünïcödé  spaces\n\nand more."
    hf_tok = AutoTokenizer.from_pretrained(out)
    assert hf_tok(text)["input_ids"] == tok.encode(text) and hf_tok.eos_token_id == 50256
    assert hf_tok.model_max_length == 32  # the model's block_size, so HF warns past it
    idx = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        torch.testing.assert_close(hf(idx).logits, model(idx, all_logits=True)[0], atol=1e-5, rtol=0)


def test_export_without_cached_bpe_files_leaves_a_note(make_hf_dir, tmp_path, monkeypatch):
    """Offline, with no copy of GPT-2's BPE files in tiktoken's cache, the export says where to get them."""
    model, tok, _ = load_model(make_hf_dir(seed=5, vocab_size=50257, n_positions=32))
    monkeypatch.setattr(ev, "tiktoken_gpt2_files", lambda: None)
    out = ev.export_hf(model, str(tmp_path / "hf"), tok)
    assert not {"vocab.json", "merges.txt", "tokenizer.json"} & set(os.listdir(out))
    with open(os.path.join(out, "TOKENIZER.txt"), encoding="utf-8") as f:
        assert f.read() == ("GPT-2's BPE: use AutoTokenizer.from_pretrained('gpt2'); tiktoken's cache had no "
                            "copy\n")


# every character the char tests use: spaces, a tab, newlines, punctuation and characters past ASCII
CHARS = sorted(set("ROMEO: JULIET.\nhello, world ünï€😀\t'"))


# the architectures a char run is exported as: GPT2LMHeadModel, LlamaForCausalLM (grouped-query attention) and
# Qwen3ForCausalLM (QK-norm)
EXPORTED = {"gpt2": {}, "llama": {**preset("llama"), "n_head": 4, "n_kv_head": 2},
            "qwen3": {**preset("llama"), "qk_norm": True, "norm_eps": 1e-6}}


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """char_run(arch='gpt2') -> out_dir of a run's checkpoint of a random char model of EXPORTED[arch] on
    CHARS (64 rows, 16 of them padding), made once. Its matrices are drawn wide (std 0.5) so that greedy
    decoding wanders over the vocabulary instead of repeating one character."""
    made = {}

    def make(arch: str = "gpt2") -> str:
        if arch in made:
            return made[arch]
        tok = Tokenizer.char(CHARS)
        model = small_model(block_size=64, vocab_size=64, tokenizer_vocab_size=len(CHARS), **EXPORTED[arch])
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0, 0.5, generator=generator)
        out = tmp_path_factory.mktemp(f"char-run-{arch}")
        core.save_checkpoint({"model": model.state_dict(), "model_args": asdict(model.config), "iter_num": 0,
                              "best_val_loss": 9.0, "config": {}, "meta": tok.meta()}, str(out / "ckpt.pt"))
        made[arch] = str(out)
        return made[arch]
    return make


def greedy_sample(*args: str) -> str:
    """sample.py's one greedy sample of 20 new tokens, prompt included."""
    texts = sample.main(["--device=cpu", "--dtype=float32", "--num_samples=1", "--max_new_tokens=20",
                         "--temperature=0", *args])
    return texts[0]


def pipeline_greedy(path: str, prompt: str) -> str:
    from transformers import pipeline
    generate = pipeline("text-generation", model=path, device="cpu")
    return generate(prompt, max_new_tokens=20, do_sample=False)[0]["generated_text"]


def test_char_export_tokenizer_has_our_ids(char_run, tmp_path):
    """AutoTokenizer loads a char export's tokenizer with our ids: every character its own token, spaces,
    newlines and characters past ASCII included, and decoding gives the text back as it was."""
    from transformers import AutoTokenizer
    model, tok, _ = load_model("resume", char_run())
    out = ev.export_hf(model, str(tmp_path / "hf"), tok)
    hf_tok = AutoTokenizer.from_pretrained(out)
    for text in ("ROMEO: hello, world.\n\n", "  ünï €😀\t'wo ", "\n", "ROMEO :\nJULIET ."):
        ids = hf_tok(text)["input_ids"]
        assert ids == tok.encode(text) and len(ids) == len(text)
        assert hf_tok.decode(ids) == text
    assert len(hf_tok) == len(CHARS) and hf_tok.model_max_length == 64
    with pytest.raises(Exception, match="UNK"):  # a character outside the vocabulary, as in ours
        hf_tok("xyz")


@pytest.mark.hf_parity
@pytest.mark.parametrize("arch, cls", [("gpt2", "GPT2LMHeadModel"), ("llama", "LlamaForCausalLM"),
                                       ("qwen3", "Qwen3ForCausalLM")])
def test_pipeline_runs_a_char_export_greedily_as_sample_py(char_run, tmp_path, arch, cls):
    """python eval.py --mode=export of a char run is a directory of the HF class that computes the same, which
    HF's text-generation pipeline runs as it is, its greedy text sample.py's with --temperature=0; and
    init_from= that directory loads it back into this codebase: the run's logits, the same text."""
    from transformers import AutoConfig
    run = char_run(arch)
    out = ev.main(["--mode=export", f"--out_dir={run}", f"--output={tmp_path / 'hf'}"])
    assert AutoConfig.from_pretrained(out).architectures == [cls]
    ours = greedy_sample(f"--out_dir={run}", "--start=ROMEO:")
    assert ours.startswith("ROMEO:") and len(ours) == len("ROMEO:") + 20
    assert len(set(ours[6:])) > 5  # the model wanders: a text worth comparing
    assert pipeline_greedy(out, "ROMEO:") == ours
    assert greedy_sample(f"--init_from={out}", "--start=ROMEO:") == ours
    (model, tok, _), (back, back_tok, _) = load_model("resume", run), load_model(out)
    assert back_tok.chars == tok.chars and back.config.real_vocab_size == len(CHARS)
    idx = torch.tensor([tok.encode("ROMEO: hello, world.\n")])
    with torch.no_grad():
        torch.testing.assert_close(back(idx, all_logits=True)[0],
                                   model(idx, all_logits=True)[0][..., :len(CHARS)], atol=1e-5, rtol=0)


@pytest.mark.hf_parity
def test_pipeline_runs_a_bpe_export_greedily_as_sample_py(make_hf_dir, tmp_path):
    """The same for GPT-2's BPE: the export has HF's tokenizer and <|endoftext|> as its end and pad token,
    where both stop (sample.py with --stop_at_eot)."""
    from transformers import GenerationConfig
    hf_dir = make_hf_dir(seed=3, vocab_size=50257, n_positions=64, initializer_range=0.5)
    out = ev.main(["--mode=export", f"--init_from={hf_dir}", f"--output={tmp_path / 'hf'}"])
    generation = GenerationConfig.from_pretrained(out)
    assert generation.eos_token_id == generation.pad_token_id == generation.bos_token_id == 50256
    prompt = "Hello world, this is"
    ours = greedy_sample(f"--init_from={hf_dir}", f"--start={prompt}", "--stop_at_eot=True")
    assert ours.startswith(prompt) and len(set(Tokenizer.gpt2().encode(ours[len(prompt):]))) > 5
    assert pipeline_greedy(out, prompt) == ours


def test_train_py_periodic_hellaswag(memorizer, tmp_path, monkeypatch):
    """eval_hellaswag in train.py scores data/hellaswag/hellaswag_val.jsonl at each eval (here: eval_only)."""
    from data.common import prepare_documents
    data = tmp_path / "facts"
    text = " ".join(c + " " + e for c, e in FACTS)
    prepare_documents([text] * 20, Tokenizer.gpt2(), data, val_fraction=0.2)
    os.makedirs(tmp_path / "data" / "hellaswag")
    examples = fact_examples()
    examples[0]["label"] = (examples[0]["label"] + 1) % 4  # a wrong answer key: the model "fails" the first
    write_jsonl(tmp_path / "data" / "hellaswag" / "hellaswag_val.jsonl", examples)
    monkeypatch.chdir(tmp_path)
    ckpt = core.load_checkpoint(os.path.join(memorizer, "ckpt.pt"))
    cfg = TrainConfig(**{**ckpt["config"], "out_dir": memorizer, "dataset": str(data), "init_from": "resume",
                         "eval_only": True, "eval_hellaswag": True})
    shown = []
    bar = core.progress

    def progress(iterable, desc, **kwargs):
        shown.append((desc, kwargs))
        return bar(iterable, desc, **kwargs)
    monkeypatch.setattr(core, "progress", progress)
    n = len(examples)
    result = train.train(cfg)
    assert (result["hellaswag_acc"], result["hellaswag_acc_norm"]) == ((n - 1) / n, (n - 1) / n)
    assert ("hellaswag", {"enabled": True}) in shown  # its progress bar, on the master process
    result = train.train(replace(cfg, hellaswag_limit=2))
    assert (result["hellaswag_acc"], result["hellaswag_acc_norm"]) == (0.5, 0.5)
    # a signal during HellaSwag stops it before the next example
    scored = []
    score = core.score_endings

    def score_then_signal(*args):
        scored.append(1)
        if len(scored) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # answered by the run's handler, as from outside
        return score(*args)
    monkeypatch.setattr(core, "score_endings", score_then_signal)
    r = in_process(lambda argv: train.train(cfg))  # eval_only has nothing to save: it ends as Ctrl-C does
    assert r.returncode == 130 and "Traceback" not in r.stderr and len(scored) == 1


@pytest.fixture
def figures(monkeypatch):
    """The figures the plots draw, each as saved (so laid out and drawn)."""
    drawn, save = [], ev.save_png
    monkeypatch.setattr(ev, "save_png", lambda fig, path: (save(fig, path), drawn.append(fig)))
    return drawn


def test_loss_plot_is_one_panel_over_steps_and_tokens(figures, tmp_path):
    """One axes: the train loss a line, the evals markers with no line between them (nothing was measured
    there), against steps; tokens on a secondary x axis at the records' 64 tokens per step."""
    train_records = [{"iter": i, "tokens": 64 * i, "loss": 5.0 - i / 10} for i in range(1, 6)]
    evals = [{"iter": i, "tokens": 64 * i, "train_loss": 4.0 - i / 9, "val_loss": 4.2 - i / 9}
             for i in (0, 5)]
    ev.plot_losses(train_records, evals, str(tmp_path / "loss.png"), None, dpi=30)
    fig = figures[-1]
    assert tuple(fig.get_size_inches()) == (10.0, 5.0) and fig.dpi == 30
    assert len(fig.axes) == 1  # no bits-per-byte records: no right-hand axis
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("step", "loss", "linear")
    assert ax.xaxis.get_gridlines()[0].get_visible() and ax.yaxis.get_gridlines()[0].get_visible()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["train loss", "train loss (eval)", "val loss"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for label, records, y in (("train loss", train_records, "loss"), ("val loss", evals, "val_loss"),
                              ("train loss (eval)", evals, "train_loss")):
        assert list(lines[label].get_xdata()) == [r["iter"] for r in records]
        assert list(lines[label].get_ydata()) == [r[y] for r in records]
    assert [(lines[k].get_linestyle(), lines[k].get_marker()) for k in lines] == \
        [("-", "None"), ("None", "s"), ("None", "o")]
    (top,) = ax.child_axes  # the secondary x axis
    assert top.get_xlabel() == "tokens"
    assert top.get_xlim() == pytest.approx(tuple(64 * x for x in ax.get_xlim()))


@pytest.mark.parametrize("first,last,labels", [(10.8, 3.0, "3 4 5 6 7 8 9 10"), (30.0, 1.5, "2 3 5 10 20 30"),
                                               (6.0, 2.0, None), (4.9, 1.7, None)])
def test_loss_plot_is_logarithmic_when_the_losses_span_more_than_a_factor_3(figures, tmp_path, first, last,
                                                                             labels):
    """The rule of plot_losses' docstring, over every loss drawn: 10.8 / 3.0 = 3.6 and 30 / 1.5 = 20 are log,
    labelled in plain numbers at every tick within a decade, at 1, 2, 3, 5 times a power of 10 beyond;
    6 / 2 = 3 (the edge) and 4.9 / 1.7 = 2.9 are linear (labels None)."""
    train_records = [{"iter": i, "tokens": 8 * i, "loss": (first + last) / 2} for i in (1, 2)]
    evals = [{"iter": 0, "tokens": 0, "train_loss": first, "val_loss": first},
             {"iter": 2, "tokens": 16, "train_loss": last, "val_loss": last + 0.05}]
    ev.plot_losses(train_records, evals, str(tmp_path / "loss.png"), None, dpi=20)
    ax = figures[-1].axes[0]
    assert ax.get_yscale() == ("linear" if labels is None else "log")
    if labels is not None:
        low, high = ax.get_ylim()
        texts = {t.get_text() for t in [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]
                 if low <= t.get_position()[1] <= high} - {""}
        assert texts == set(labels.split())


def test_loss_plot_draws_bits_per_byte_on_a_right_hand_axis(figures, tmp_path):
    """Eval records with val_bpb / train_bpb: markers on a second y axis, in the legend; records without them
    (an earlier run's) are left out of those series."""
    evals = [{"iter": 0, "tokens": 0, "train_loss": 4.0, "val_loss": 4.1},
             *({"iter": i, "tokens": 32 * i, "train_loss": 3.0, "val_loss": 3.1, "train_bpb": 1.5 - i / 100,
                "val_bpb": 1.6 - i / 100} for i in (5, 10))]
    ev.plot_losses([], evals, str(tmp_path / "loss.png"), None, dpi=20)
    ax, right = figures[-1].axes
    assert right.get_ylabel() == "bits per byte" and right.get_shared_x_axes().joined(ax, right)
    lines = {line.get_label(): line for line in right.get_lines()}
    assert list(lines) == ["train bits per byte", "val bits per byte"]
    for label, key in (("train bits per byte", "train_bpb"), ("val bits per byte", "val_bpb")):
        assert list(lines[label].get_xdata()) == [5, 10] and lines[label].get_linestyle() == "None"
        assert list(lines[label].get_ydata()) == [r[key] for r in evals[1:]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["train loss (eval)", "val loss", "train bits per byte", "val bits per byte"]


def test_attention_figure_has_every_layer_a_colour_bar_and_axis_titles(figures, tmp_path):
    """Each heatmap is its layer's (row) and head's (column) map; one colour bar of probability 0..1;
    'query' down the left, 'key' along the bottom, token names there only."""
    maps = torch.rand(3, 2, 4, 4)
    ev.plot_attention(maps, ["a", "␣", "⏎", "d"], str(tmp_path / "attn.png"), None, dpi=20)
    fig = figures[-1]
    *heatmaps, bar = fig.axes
    assert len(heatmaps) == 6 and fig.dpi == 20
    for i, ax in enumerate(heatmaps):
        layer, head = divmod(i, 2)
        assert ax.get_subplotspec().rowspan == range(layer, layer + 1)  # one row per layer
        assert ax.get_subplotspec().colspan == range(head, head + 1)
        image = ax.get_images()[0]
        assert np.array_equal(image.get_array(), maps[layer, head].numpy())
        assert image.get_clim() == (0, 1)  # one colour scale for every map: probabilities
        assert ax.get_title() == f"layer {layer} head {head}"
        assert ax.get_xlabel() == ("key" if layer == 2 else "")
        assert ax.get_ylabel() == ("query" if head == 0 else "")
        if layer == 2:
            assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "⏎", "d"]
            assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())  # one character each: room
        if head == 0:
            assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "␣", "⏎", "d"]
        # token names on the outer axes only: the bottom row and the left column
        assert ax.xaxis.get_major_ticks()[0].label1.get_visible() == (layer == 2)
        assert ax.yaxis.get_major_ticks()[0].label1.get_visible() == (head == 0)
    assert bar.get_ylabel() == "attention probability" and bar.get_ylim() == (0, 1)
    assert bar.get_subplotspec().rowspan == range(3)  # beside every row
    for T, inches in ((4, 1.5), (20, 0.12 * 20 + 0.6)):  # heatmaps grow with the tokens, from 1.5 inches
        ev.plot_attention(torch.rand(2, 3, T, T), ["a"] * T, str(tmp_path / "attn.png"), None, dpi=10)
        assert tuple(figures[-1].get_size_inches()) == pytest.approx((3 * inches + 1.6, 2 * inches + 1))


def test_attention_key_labels_turn_45_degrees_only_where_they_would_overlap(figures, tmp_path):
    words = ["␣question", "␣wonderful", "␣nothing", "␣than"]
    for labels, rotation in ((["a", "b", "c", "d"], 0), (words, 45)):
        ev.plot_attention(torch.rand(1, 1, 4, 4), labels, str(tmp_path / "attn.png"), None, dpi=10)
        assert {t.get_rotation() for t in figures[-1].axes[0].get_xticklabels()} == {rotation}
    assert {t.get_rotation() for t in figures[-1].axes[0].get_yticklabels()} == {0}  # rows have the room


def test_plot_mode_draws_whatever_records_there_are(tmp_path, monkeypatch, capsys):
    """--mode=plot: train records alone, or eval records alone, are plotted; none at all is an error."""
    figures = []
    monkeypatch.setattr(ev, "save_png", lambda fig, path: figures.append(fig))
    train_only = [{"iter": i, "tokens": 64 * i, "loss": 5.0 - i / 10} for i in (1, 2)]
    eval_only = [{"iter": 0, "tokens": 0, "train_loss": 5.0, "val_loss": 5.1}]
    for records, labels in ((train_only, ["train loss"]), (eval_only, ["train loss (eval)", "val loss"]),
                            (eval_only + train_only, ["train loss", "train loss (eval)", "val loss"])):
        with open(tmp_path / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        out = ev.main(["--mode=plot", f"--out_dir={tmp_path}"])
        assert capsys.readouterr().out == f"wrote {out}\n"
        assert [line.get_label() for line in figures[-1].axes[0].get_lines()] == labels
    open(tmp_path / "metrics.jsonl", "w").close()
    with pytest.raises(UsageError, match=f"^{tmp_path}/metrics.jsonl has no records yet$"):
        ev.main(["--mode=plot", f"--out_dir={tmp_path}"])


def test_eval_config_checks_what_each_mode_needs(tmp_path, monkeypatch):
    """HellaSwag checks the device and dtype but writes nothing, so its output folder is not checked; plot
    needs no device; a bare file name is written into the working directory."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert ev.EvalConfig(mode="hellaswag", device="cpu", out_dir=str(a_file)).problems() == []
    assert ev.EvalConfig(mode="hellaswag", device="cpu", dtype="float16").problems() == \
        ["dtype='float16': needs a CUDA device (it trains with a GradScaler): use bfloat16 or float32"]
    assert ev.EvalConfig(mode="plot", device="cpu", dtype="float16").problems() == []
    assert ev.EvalConfig(mode="plot", out_dir=str(a_file)).problems() == \
        [f"output='{a_file}/loss.png': {a_file} is a file, not a directory: choose another path"]
    monkeypatch.chdir(tmp_path)
    assert ev.EvalConfig(mode="plot", output="loss.png").problems() == []


def test_attention_needs_a_prompt(char_runs):
    with pytest.raises(UsageError, match="^start is empty: give a prompt$"):
        ev.main(["--mode=attention", f"--out_dir={char_runs[True]}", "--start=", "--device=cpu"])


def test_tiktoken_cache_is_found_where_tiktoken_keeps_it(tmp_path, monkeypatch):
    """tiktoken's own order: TIKTOKEN_CACHE_DIR, else DATA_GYM_CACHE_DIR, else <tmp>/data-gym-cache."""
    def cache_in(folder):
        folder.mkdir(parents=True, exist_ok=True)
        for url in ev.TIKTOKEN_GPT2_FILES.values():
            (folder / hashlib.sha1(url.encode()).hexdigest()).write_text("")
        return {name: str(folder / hashlib.sha1(url.encode()).hexdigest())
                for name, url in ev.TIKTOKEN_GPT2_FILES.items()}
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(ev.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert ev.tiktoken_gpt2_files() is None  # nothing cached: None, not paths to missing files
    default = cache_in(tmp_path / "tmp" / "data-gym-cache")
    assert ev.tiktoken_gpt2_files() == default
    os.remove(default["merges.txt"])
    assert ev.tiktoken_gpt2_files() is None  # both files or none
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(tmp_path / "gym"))
    gym = cache_in(tmp_path / "gym")
    assert ev.tiktoken_gpt2_files() == gym
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tk"))
    assert ev.tiktoken_gpt2_files() is None  # the first variable set wins, even over a full cache
    tk = cache_in(tmp_path / "tk")
    assert ev.tiktoken_gpt2_files() == tk


def test_export_runs_on_the_cpu_whatever_the_device(char_runs, tmp_path, capsys):
    """--mode=export ignores --device (it always runs on the CPU), so --device=cuda works on any machine."""
    out = ev.main(["--mode=export", f"--out_dir={char_runs[True]}", f"--output={tmp_path / 'hf'}",
                   "--device=cuda"])
    assert capsys.readouterr().out == (
        f"wrote {out}: generate with transformers.pipeline('text-generation', model='{out}'), or load it "
        f"with AutoModelForCausalLM.from_pretrained('{out}') and AutoTokenizer.from_pretrained('{out}')\n")
    assert os.path.isfile(os.path.join(out, "config.json"))


def test_export_carries_only_the_models_tokenizer(char_runs, tmp_path):
    """meta.json is written for the model's own tokenizer only: none given, or one of another vocab size
    (not this model's), writes none."""
    model, tok, _ = load_model("resume", char_runs[True])
    for name, tokenizer in (("none", None), ("other", Tokenizer.char(list("abc"))), ("own", tok)):
        out = ev.export_hf(model, str(tmp_path / name), tokenizer)
        assert os.path.isfile(os.path.join(out, "config.json"))
        assert os.path.isfile(os.path.join(out, "meta.json")) == (name == "own")


@pytest.mark.parametrize("bias", [True, False])
def test_export_refuses_a_model_that_lacks_a_weight(char_runs, tmp_path, monkeypatch, bias):
    """Only missing biases (bias=False) are written as zeros; any other weight HF's GPT-2 has is an error."""
    model, _, _ = load_model("resume", char_runs[bias])
    full = model.state_dict()
    monkeypatch.setattr(model, "state_dict", lambda: {k: v for k, v in full.items() if "wpe" not in k})
    with pytest.raises(RuntimeError, match='Missing key.s. in state_dict: "transformer.wpe.weight"'):
        ev.export_hf(model, str(tmp_path / "hf"))


def test_attention_mode_prints_what_it_drew(make_hf_dir, tmp_path, capsys):
    hf_dir = make_hf_dir(vocab_size=50257, n_layer=1, n_head=2, n_embd=16)
    out = str(tmp_path / "attention.png")
    maps = ev.main(["--mode=attention", f"--init_from={hf_dir}", "--start=Hello world again", "--device=cpu",
                    f"--output={out}", "--dpi=30"])
    assert maps.shape == (1, 2, 3, 3)
    assert capsys.readouterr().out == f"wrote {out} (1 layers x 2 heads, 3 tokens)\n"
    # sized to the content at --dpi: two heatmaps of 1.5 inches side by side, plus 1.6 inches of margin and
    # colour bar across and one down
    assert png_size(out) == (int(4.6 * 30), int(2.5 * 30))


def test_hellaswag_mode_scores_on_its_device_in_its_dtype(char_runs, tmp_path, monkeypatch, capsys):
    """What eval.py hands the scorer (core's hellaswag_accuracy, tested against HF above), and what it
    prints."""
    path = write_jsonl(tmp_path / "val.jsonl", fact_examples())
    seen = {}
    monkeypatch.setattr(ev, "autocast", lambda device, dtype: seen.update(autocast=(device, dtype)) or NULL)

    def accuracy(model, examples, tokenizer, device, ctx, show_progress=False):
        seen.update(device=device, examples=len(examples), ctx=ctx, show_progress=show_progress)
        return {"examples": 8, "correct": 3, "correct_norm": 5, "acc": 0.375, "acc_norm": 0.625}
    monkeypatch.setattr(ev, "hellaswag_accuracy", accuracy)
    ev.main(["--mode=hellaswag", f"--out_dir={char_runs[True]}", f"--hellaswag_path={path}", "--device=cpu",
             "--dtype=bfloat16"])
    cpu = torch.device("cpu")
    assert seen == {"autocast": (cpu, torch.bfloat16), "device": cpu, "examples": 8, "ctx": NULL,
                    "show_progress": True}
    assert capsys.readouterr().out == ("hellaswag: 8 examples, acc 0.3750 (lowest summed loss), "
                                       "acc_norm 0.6250 (lowest mean loss per token)\n")


def test_attention_labels_show_whitespace_and_dollars_literally():
    """Spaces, newlines and tabs get visible marks, which the font the labels are drawn in has glyphs for;
    '$' would start mathtext."""
    from matplotlib import font_manager, ft2font
    tok = Tokenizer.char([" ", "\n", "\t", "$", "a", "\r"])
    assert ev.token_labels(tok, [0, 1, 2, 3, 4, 5]) == ["␣", "⏎", "⇥", r"\$", "a", "\\r"]
    assert Tokenizer.gpt2().decode([262]) == " the" and ev.token_labels(Tokenizer.gpt2(), [262]) == ["␣the"]
    font = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties()))  # matplotlib's default
    assert "DejaVu" in font.family_name
    assert all(font.get_char_index(ord(c)) for mark in ev.VISIBLE.values() for c in mark)


def test_a_tokenizer_fits_a_model_of_its_vocab_or_more():
    tok = Tokenizer.char(list("abc"))
    core.check_tokenizer(GPT(GPTConfig(block_size=8, vocab_size=3, n_layer=1, n_head=1, n_embd=8)), tok)
    with pytest.raises(UsageError, match="the tokenizer's 3 ids do not fit the model's vocab of 2: this is "
                                         "not the model's tokenizer"):
        core.check_tokenizer(GPT(GPTConfig(block_size=8, vocab_size=2, n_layer=1, n_head=1, n_embd=8)), tok)


def test_a_literal_endoftext_in_an_example_is_text():
    """HellaSwag text that spells <|endoftext|> is scored as the text it is, not as the document separator."""
    tok = Tokenizer.gpt2()
    example = {"ctx": "a <|endoftext|> b", "endings": ["<|endoftext|>", "c", "d", "e"], "label": 0}
    x, y = core.candidate_batch(example, tok, 64)
    assert tok.eot_token not in x.tolist()[0] + y.tolist()[0]
    with pytest.raises(UsageError, match="a HellaSwag example has an empty context"):
        core.candidate_batch({**example, "ctx": ""}, tok, 64)
