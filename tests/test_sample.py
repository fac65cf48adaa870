"""sample.py: checkpoints and HF models, reproducible seeds, model.generate parity, streaming, clear
errors."""
import io
import os

import pytest
import torch

import core
import sample
import train
from configurator import UsageError, check
from conftest import ROOT, in_process, python, small_model, tiny_train_config
from data.common import Tokenizer, prepare_documents
from model import GPT
from sample import SEPARATOR, SampleConfig, TextStream
from core import load_checkpoint, save_checkpoint
from train import TrainConfig


def args(**kw) -> list[str]:
    return [f"--{k}={v}" for k, v in kw.items()]


def printed(texts) -> str:
    return "".join(t + "\n" + SEPARATOR + "\n" for t in texts)


@torch.no_grad()
def full_forward_sampling(model: GPT, ids: list[int], n: int, new: int, seed: int = 1337,
                          temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> list[list[int]]:
    """The independent side of the comparisons: the model's own uncached forward over the whole (last
    block_size tokens of the) sequence at every step, no KV cache, over the real (unpadded) vocab, HF's logits
    warpers for temperature, top-k and top-p (which do not depend on the model's architecture), and one
    torch.multinomial per step from a generator seeded with seed, as sample.py draws. It follows the model,
    so an architecture edit keeps these tests meaningful; test_model.py checks the model itself against HF."""
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)
    warpers = [TemperatureLogitsWarper(temperature)] if temperature else []
    warpers += [TopKLogitsWarper(top_k)] if top_k and temperature else []
    warpers += [TopPLogitsWarper(top_p)] if top_p is not None and temperature else []
    idx, g = torch.tensor([ids] * n), torch.Generator().manual_seed(seed)
    bs, vocab = model.config.block_size, model.config.real_vocab_size
    for _ in range(new):
        logits = model(idx[:, -bs:])[0][:, -1, :vocab]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            for warp in warpers:
                logits = warp(idx, logits)
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx.tolist()


def reference(ckpt_path: str, prompt: str, n: int, new: int, **kw) -> list[str]:
    """full_forward_sampling of a checkpoint's model, decoded."""
    model, tokenizer, _ = core.load_model("resume", os.path.dirname(ckpt_path), os.path.basename(ckpt_path))
    return [tokenizer.decode(row) for row in full_forward_sampling(model, tokenizer.encode(prompt), n, new,
                                                                   **kw)]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory, shakespeare_text):
    """A tiny char model trained on a slice of Tiny Shakespeare: out_dir with ckpt.pt (iter 30) and best.pt,
    which is made to hold the iter-10 weights so that loading it is distinguishable from loading ckpt.pt."""
    root = tmp_path_factory.mktemp("char")
    text = shakespeare_text[:20000]
    prepare_documents([text], Tokenizer.from_text(text), root / "data", val_fraction=0.1)
    cfg = tiny_train_config(root, dataset=str(root / "data"), block_size=32, batch_size=8,
                            gradient_accumulation_steps=1, max_iters=10, lr_decay_iters=30, warmup_iters=2,
                            eval_interval=10, eval_iters=2, log_interval=10)
    train.train(cfg)
    early = load_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))
    cfg.init_from, cfg.max_iters = "resume", 30
    train.train(cfg)
    save_checkpoint(early, os.path.join(cfg.out_dir, "best.pt"))
    vocab = set(Tokenizer.from_meta(early["meta"]).chars)
    return {"out_dir": cfg.out_dir, "vocab": vocab, "ckpt": os.path.join(cfg.out_dir, "ckpt.pt"),
            "best": os.path.join(cfg.out_dir, "best.pt")}


def run_char(char_run, **kw) -> list[str]:
    base = dict(init_from="resume", out_dir=char_run["out_dir"], device="cpu", dtype="float32")
    return sample.main(args(**{**base, **kw}))


@pytest.fixture(scope="module")
def hf_dir(make_hf_dir):
    """A small random-weight HF GPT-2 with GPT-2's real vocabulary size, so the BPE tokenizer fits it."""
    return make_hf_dir(seed=3, vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4)


def run_hf(hf_dir, **kw) -> list[str]:
    return sample.main(args(**{**dict(init_from=hf_dir, device="cpu", dtype="float32"), **kw}))


def own_greedy(hf_dir: str, ids: list[int], new: int, n: int = 1) -> list[list[int]]:
    """Greedy continuation of ids by the directory's model, loaded as ours, through full uncached forwards."""
    return full_forward_sampling(GPT.from_pretrained(hf_dir).eval(), ids, n, new, temperature=0)


def hf_reference(hf_dir: str, ids: list[int], new: int, n: int = 1) -> list[list[int]]:
    """Greedy continuation of ids by HF transformers' own GPT2LMHeadModel.generate."""
    from transformers import GPT2LMHeadModel
    hf = GPT2LMHeadModel.from_pretrained(hf_dir).eval()
    idx = torch.tensor([ids] * n)
    with torch.no_grad():
        out = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=new, do_sample=False,
                          pad_token_id=0)
    assert out.shape == (n, len(ids) + new)
    return out.tolist()


# ------------------------------------------------------------------------------------------------------------
# from a checkpoint (char)

def test_resume_samples_are_vocab_text_and_seeded(char_run, capsys):
    texts = run_char(char_run, start="ROMEO:", num_samples=3, max_new_tokens=60, seed=1)
    out, err = capsys.readouterr()
    assert out == printed(texts) and "sampling 3 x 60 tokens" in err and "iter 30" in err
    assert err.splitlines()[-1].endswith(" on cpu (float32)")
    assert len(texts) == 3 and len(set(texts)) == 3  # one batch, three different samples
    for t in texts:
        # one character per token: every generated id decoded, none of the padded ids (vocab 128 > chars)
        assert t.startswith("ROMEO:") and len(t) == len("ROMEO:") + 60
        assert set(t) <= char_run["vocab"]
    assert run_char(char_run, start="ROMEO:", num_samples=3, max_new_tokens=60, seed=1) == texts
    other = run_char(char_run, start="ROMEO:", num_samples=3, max_new_tokens=60, seed=2)
    assert all(a != b for a, b in zip(other, texts))


def test_greedy_and_seeded_samples_equal_model_generate(char_run):
    greedy = run_char(char_run, start="MENENIUS", num_samples=2, max_new_tokens=50, temperature=0)
    assert greedy == reference(char_run["ckpt"], "MENENIUS", 2, 50, temperature=0.0)
    sampled = run_char(char_run, start="MENENIUS", num_samples=3, max_new_tokens=50, temperature=1.2,
                       top_k=20,
                       top_p=0.95, seed=7)
    assert sampled == reference(char_run["ckpt"], "MENENIUS", 3, 50, seed=7, temperature=1.2, top_k=20,
                                top_p=0.95)
    assert len(set(sampled)) == 3 and sampled[0] != greedy[0]


def test_best_pt_selects_that_checkpoint(char_run):
    kw = dict(start="\n", num_samples=2, max_new_tokens=40, temperature=1.0, top_k=None, seed=5)
    best = run_char(char_run, ckpt="best.pt", **kw)
    latest = run_char(char_run, **kw)
    assert load_checkpoint(char_run["best"])["iter_num"] == 10
    assert best == reference(char_run["best"], "\n", 2, 40, seed=5, temperature=1.0)
    assert latest == reference(char_run["ckpt"], "\n", 2, 40, seed=5, temperature=1.0)
    assert best != latest  # the same seed through iter-10 and iter-30 weights
    with pytest.raises(UsageError, match="no checkpoint at .*nothing.pt"):
        run_char(char_run, ckpt="nothing.pt")


def test_checkpoint_without_meta_is_refused(char_run):
    ckpt = load_checkpoint(char_run["ckpt"])
    del ckpt["meta"]
    save_checkpoint(ckpt, os.path.join(char_run["out_dir"], "nometa.pt"))
    with pytest.raises(UsageError, match=r"nometa.pt is not a checkpoint of this codebase: it lacks "
                                         r"\['meta'\]"):
        run_char(char_run, ckpt="nometa.pt", start="ROMEO:")


def test_file_prompt(char_run, tmp_path):
    prompt = "First Citizen:\nBefore we proceed"
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8")
    from_file = run_char(char_run, start=f"FILE:{tmp_path / 'prompt.txt'}", num_samples=2, max_new_tokens=30,
                         temperature=0)
    assert from_file == run_char(char_run, start=prompt, num_samples=2, max_new_tokens=30, temperature=0)
    assert from_file[0].startswith(prompt)
    with pytest.raises(UsageError, match="missing.txt not found"):
        run_char(char_run, start=f"FILE:{tmp_path / 'missing.txt'}")


def test_unknown_chars_and_bad_keys_are_usage_errors(char_run):
    prompt = "Hello €uro @home"
    unknown = sorted(set(prompt) - char_run["vocab"])
    assert "€" in unknown and "@" in unknown
    with pytest.raises(UsageError, match=f"{len(unknown)} character") as e:
        run_char(char_run, start=prompt)
    assert all(repr(c) in str(e.value) for c in unknown)
    with pytest.raises(UsageError, match="prompt is empty"):
        run_char(char_run, start="")
    with pytest.raises(UsageError, match="top_k=0: must be > 0"):
        run_char(char_run, top_k=0)
    with pytest.raises(UsageError, match="top_p=1.5"):
        run_char(char_run, top_p=1.5)
    with pytest.raises(UsageError, match="init_from='gpt5'"):
        run_char(char_run, init_from="gpt5")


def test_bfloat16_autocast_on_cpu(char_run, monkeypatch):
    """dtype=bfloat16 really computes the logits in bf16, and its seeded samples read like fp32's: the first
    20 new characters agree (bf16 rounding may change a later one)."""
    dtypes = []

    def load_and_watch(*args):
        model, tokenizer, source = core.load_model(*args)
        model.lm_head.register_forward_hook(lambda m, inputs, out: dtypes.append(out.dtype))
        return model, tokenizer, source
    monkeypatch.setattr(sample, "load_model", load_and_watch)
    kw = dict(start="ROMEO:", num_samples=2, max_new_tokens=30, seed=3)
    bf16 = run_char(char_run, dtype="bfloat16", **kw)
    assert set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    fp32 = run_char(char_run, **kw)
    assert set(dtypes) == {torch.float32}
    assert all(len(t) == 36 and set(t) <= char_run["vocab"] for t in bf16)
    assert [t[:26] for t in bf16] == [t[:26] for t in fp32]


def run_cli(argv):
    return python("sample.py", *argv, timeout=120, env={"OMP_NUM_THREADS": "1"})


def test_cli_output_and_one_line_error(char_run):
    kw = dict(init_from="resume", out_dir=char_run["out_dir"], device="cpu", dtype="float32", start="ROMEO:",
              num_samples=1, max_new_tokens=40, temperature=0.9, seed=11)
    r = run_cli(args(**kw))
    assert r.returncode == 0, r.stderr
    expected = reference(char_run["ckpt"], "ROMEO:", 1, 40, seed=11, temperature=0.9, top_k=200)
    assert r.stdout == printed(expected)
    r = in_process(sample.main, *args(**{**kw, "start": "ROMEO: €@"}))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot encode the prompt")
    assert "'€'" in lines[0] and "'@'" in lines[0] and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------------------------
# streaming

def test_text_stream_holds_back_cut_characters():
    tok = Tokenizer.gpt2()
    text = "naïve café — 日本語のテキスト 🙂👍🏽 done"
    ids = tok.encode(text)
    assert any("\ufffd" in tok.decode([i]) for i in ids)  # some tokens really are parts of a character
    stream = TextStream(tok)
    pieces = [stream.push([i]) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    stream = TextStream(tok)  # bytes that never complete a character still come out, as decode has them
    broken = ids + tok.encode("日")[:1]  # the first of the two tokens of a three-byte character
    pieces = [stream.push([i]) for i in broken]
    assert pieces[-1] == "" and "".join(pieces + [stream.flush()]) == tok.decode(broken) == text + "\ufffd"


class Recorder(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, s):
        self.writes.append(s)
        return super().write(s)


def test_one_sample_streams_the_same_text(char_run):
    cfg = SampleConfig(init_from="resume", out_dir=char_run["out_dir"], device="cpu", dtype="float32",
                       start="ROMEO:", num_samples=1, max_new_tokens=50, temperature=1.0, seed=3)
    out = Recorder()
    texts = sample.sample(cfg, out=out)
    assert texts == reference(char_run["ckpt"], "ROMEO:", 1, 50, seed=3, temperature=1.0, top_k=200)
    assert out.getvalue() == printed(texts)
    assert len([w for w in out.writes if w]) >= 50  # written token by token, not at the end


def test_bpe_streaming_equals_generate(hf_dir, capsys):
    # random weights pick all sorts of tokens, byte fragments of characters among them
    texts = run_hf(hf_dir, start="Good morrow", num_samples=1, max_new_tokens=40, temperature=1.0, top_k=None,
                   seed=4)
    model, tok = GPT.from_pretrained(hf_dir).eval(), Tokenizer.gpt2()
    ids = tok.encode("Good morrow")
    ref = model.generate(torch.tensor([ids]), 40, temperature=1.0, generator=torch.Generator().manual_seed(4))
    assert texts == [tok.decode(ref[0].tolist())]
    assert capsys.readouterr().out == printed(texts)


# ------------------------------------------------------------------------------------------------------------
# from a HF directory (GPT-2 BPE)

@pytest.mark.hf_parity
def test_hf_dir_greedy_equals_transformers_generate(hf_dir):
    tok = Tokenizer.gpt2()
    prompt = "To be, or not to be, that is the question:"
    texts = run_hf(hf_dir, start=prompt, num_samples=2, max_new_tokens=30, temperature=0)
    ref = hf_reference(hf_dir, tok.encode(prompt), 30, n=2)
    assert texts == [tok.decode(row) for row in ref]
    assert texts[0].startswith(prompt) and len(texts[0]) > len(prompt)


def test_empty_bpe_prompt_starts_from_eot(hf_dir):
    tok = Tokenizer.gpt2()
    texts = run_hf(hf_dir, start="", num_samples=1, max_new_tokens=20, temperature=0)
    ref = own_greedy(hf_dir, [tok.eot_token], 20)
    assert texts == [tok.decode(ref[0][1:])]  # the <|endoftext|> it starts from is not printed


def test_stop_at_eot(hf_dir, monkeypatch):
    tok = Tokenizer.gpt2()
    prompt = "Once upon a time"
    ids = tok.encode(prompt)
    new = own_greedy(hf_dir, ids, 20)[0][len(ids):]
    stop = new[6]  # pretend the token the model makes at step 7 were <|endoftext|>
    fake = Tokenizer.gpt2()
    fake.eot_token = stop
    monkeypatch.setattr(sample.Tokenizer, "gpt2", classmethod(lambda cls: fake))
    expected = tok.decode(ids + new[:new.index(stop)])
    for n in (1, 2):  # streamed and batched
        assert run_hf(hf_dir, start=prompt, num_samples=n, max_new_tokens=20, temperature=0,
                      stop_at_eot=True) == [expected] * n
    got = run_hf(hf_dir, start=prompt, num_samples=1, max_new_tokens=20, temperature=0)
    assert got == [tok.decode(ids + new)]


# ------------------------------------------------------------------------------------------------------------
# finetune a (random, local) GPT-2 on BPE Shakespeare, then sample from its checkpoint

def test_finetune_then_sample(hf_dir, shakespeare_text, tmp_path, tiny_config, capsys):
    data = tmp_path / "shakespeare_bpe"
    meta = prepare_documents([shakespeare_text[:20000]], Tokenizer.gpt2(), data, val_fraction=0.1)
    assert meta["tokenizer"] == "gpt2" and meta["train_tokens"] > 1000
    cfg = tiny_config(init_from=hf_dir, dataset=str(data), block_size=32, batch_size=2, max_iters=4,
                      eval_interval=2, eval_iters=2, log_interval=2, learning_rate=1e-3, decay_lr=False)
    train.train(cfg)
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["iter_num"] == 4 and ckpt["meta"]["tokenizer"] == "gpt2"
    assert ckpt["model_args"]["block_size"] == 32
    capsys.readouterr()
    texts = sample.main(args(init_from="resume", out_dir=cfg.out_dir, device="cpu", dtype="float32",
                             start="ROMEO:", num_samples=2, max_new_tokens=20, seed=9))
    assert capsys.readouterr().out == printed(texts)
    assert all(t.startswith("ROMEO:") and len(t) > len("ROMEO:") for t in texts)
    assert texts == reference(ckpt_path, "ROMEO:", 2, 20, seed=9, temperature=0.8, top_k=200)


# ------------------------------------------------------------------------------------------------------------
# the config files: every key is TrainConfig's, with the batch sizes their comments state

@pytest.mark.parametrize("name,init_from,dataset,tokens_per_iter", [
    ("finetune_shakespeare", "gpt2-xl", "shakespeare", 32 * 1024),
    ("eval_gpt2", "gpt2", "openwebtext", None), ("eval_gpt2_medium", "gpt2-medium", "openwebtext", None),
    ("eval_gpt2_large", "gpt2-large", "openwebtext", None), ("eval_gpt2_xl", "gpt2-xl", "openwebtext", None),
    ("train_gpt2", "scratch", "openwebtext", 491_520),
    ("train_tinystories", "scratch", "tinystories", 65_536),
    ("train_gpt2_fineweb", "scratch", "fineweb_edu", 524_288),
    ("train_shakespeare_bpe", "scratch", "shakespeare", 4096)])
def test_config_files(name, init_from, dataset, tokens_per_iter):
    from configurator import configure
    cfg = configure(TrainConfig, [str(ROOT / "config" / f"{name}.py")])
    assert (cfg.init_from, cfg.dataset, cfg.wandb_log) == (init_from, dataset, False)
    if tokens_per_iter is None:
        assert cfg.eval_only and cfg.batch_size == 8 and cfg.eval_iters == 500
    else:
        assert not cfg.eval_only
        assert cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps == tokens_per_iter
    if name == "finetune_shakespeare":
        assert (cfg.learning_rate, cfg.decay_lr) == (3e-5, False)
        assert (cfg.max_iters, cfg.always_save_checkpoint) == (20, False)


# ------------------------------------------------------------------------------------------------------------
# the small pieces, each against hand-written cases

def test_encode_prompt_cases():
    char = Tokenizer.char(list("abc"))
    assert core.encode_prompt(char, "cab", 3) == ([2, 0, 1], 0)
    assert core.encode_prompt(Tokenizer.gpt2(), "", 50304) == ([50256], 1)  # <|endoftext|>, not printed
    with pytest.raises(UsageError) as e:
        core.encode_prompt(char, "", 3)
    assert str(e.value) == ("the prompt is empty and a char vocabulary has no <|endoftext|> token to start "
                            "from: give a prompt, e.g. --start=$'\\n' (a newline)")
    with pytest.raises(UsageError, match=r"--eval_sample_prompt=\$"):
        core.encode_prompt(char, "", 3, "eval_sample_prompt")
    with pytest.raises(UsageError) as e:
        core.encode_prompt(char, "ax", 3)
    assert str(e.value) == "cannot encode the prompt start='ax': 1 character(s) not in the vocabulary: 'x'"
    with pytest.raises(UsageError) as e:  # a shell's "\n" is two characters: the message says how to type one
        core.encode_prompt(Tokenizer.char(list("ab")), "a\\nb", 2)
    assert str(e.value).endswith("(a shell passes \\n as two characters: write a newline as $'\\n' in bash)")
    assert core.encode_prompt(char, "c", 3) == ([2], 0)  # id 2 fits a vocab of 3
    with pytest.raises(UsageError) as e:
        core.encode_prompt(char, "c", 2)
    assert str(e.value) == "the prompt has token id 2, past this model's vocab_size of 2"


def test_device_and_dtype_choices(char_run, monkeypatch):
    texts = run_char(char_run, start="ROMEO:", num_samples=2, max_new_tokens=10, seed=4)
    assert run_char(char_run, start="ROMEO:", num_samples=2, max_new_tokens=10, seed=4, dtype="auto") == texts
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError) as e:
        run_char(char_run, device="cuda")
    assert str(e.value).startswith("device='cuda': CUDA is not available here (")
    assert str(e.value).endswith("): use --device=cpu or auto")


def test_cut_at_stop():
    assert sample.cut_at_stop([1, 9, 3, 9], 9) == [1]
    assert sample.cut_at_stop([1, 2, 3], 9) == [1, 2, 3]
    assert sample.cut_at_stop([1, 2, 3], None) == [1, 2, 3]


def test_sample_config_checks(char_run):
    problems = {"num_samples": (0, "num_samples=0: must be > 0"),
                "max_new_tokens": (-1, "max_new_tokens=-1: must be >= 0"),
                "temperature": (-0.5, "temperature=-0.5: must be >= 0"),
                "top_k": (0, "top_k=0: must be > 0 or None"),
                "top_p": (0.0, "top_p=0.0: must be in (0, 1] or None")}
    for key, (value, message) in problems.items():
        with pytest.raises(UsageError) as e:
            sample.sample(SampleConfig(**{key: value}))  # checked before anything is loaded
        assert e.value.problems == [message]
    with pytest.raises(UsageError) as e:  # every problem at once
        sample.sample(SampleConfig(num_samples=0, top_k=0))
    assert e.value.problems == [problems["num_samples"][1], problems["top_k"][1]]
    check(SampleConfig(max_new_tokens=0, temperature=0, top_k=1, top_p=1.0))
    assert run_char(char_run, start="ROMEO:", num_samples=2, max_new_tokens=0) == ["ROMEO:", "ROMEO:"]


@pytest.mark.slow  # compiling costs ~5 s
def test_compile_flag_compiles_the_decode_step_and_samples_the_same(char_run, monkeypatch):
    kw = dict(start="ROMEO:", num_samples=2, max_new_tokens=30, temperature=0)
    eager = run_char(char_run, **kw)
    compiled = []
    real = GPT.compile_decoding
    monkeypatch.setattr(GPT, "compile_decoding", lambda self, **a: compiled.append(self) or real(self, **a))
    assert run_char(char_run, compile=True, **kw) == eager and len(compiled) == 1


def test_weights_take_the_layout_that_measures_faster(monkeypatch):
    """choose_weight_layout keeps values, names and tying and stores the weights as the timing says."""
    model = small_model().eval()
    idx = torch.randint(0, 80, (2, 10))
    ref, names = model(idx, all_logits=True)[0], list(model.state_dict())
    linears = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    # the (in, out) layout is a transpose of a contiguous tensor: its rows are the tensor's columns
    for faster, stride in (("(in, out)", lambda w: (1, w.size(0))), ("(out, in)", lambda w: (w.size(1), 1))):
        monkeypatch.setattr(core, "time_linear", lambda x, w: 1.0 if w.stride() != stride(w) else 0.5)
        choice, seconds = core.choose_weight_layout(model)
        assert choice == faster and seconds[faster] == 0.5 and len(seconds) == 2
        assert all(w.stride() == stride(w) for w in linears)
        assert model.transformer.wte.weight is model.lm_head.weight and list(model.state_dict()) == names
        torch.testing.assert_close(model(idx, all_logits=True)[0], ref, atol=1e-5, rtol=0)
    monkeypatch.undo()
    choice, seconds = core.choose_weight_layout(model)  # the real timing
    assert seconds[choice] == min(seconds.values()) > 0
