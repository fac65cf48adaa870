"""
Evaluate, look inside and export a trained GPT, or OpenAI's GPT-2. One script, four modes:

    python eval.py --mode=hellaswag --init_from=gpt2         # HellaSwag accuracy (prepare its data first)
    python eval.py --mode=plot --out_dir=out                 # loss curves of out/metrics.jsonl: out/loss.png
    python eval.py --mode=attention --start="To be, or not"  # every layer's and head's: out/attention.png
    python eval.py --mode=export --output=hf-model           # a HF GPT-2, Llama or Qwen3 directory

The model: init_from='resume' loads out_dir/ckpt.pt (tokenizer from its meta); 'gpt2', ... or a local HF
directory use GPT-2's BPE, or the tokenizer of an export's meta.json. Keys and defaults are in EvalConfig
(configurator.py: config files and --key=value). How HellaSwag is scored is said in core.py, beside the code,
which train.py's --eval_hellaswag runs too.
"""
import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from configurator import (UsageError, cli, configure, device_name, dtype_name, key, one_of, positive,
                          unwritable)
from core import (autocast, check_tokenizer, device_problems, hellaswag_accuracy, hf_model, init_from_problem,
                  load_model, long_call, read_metrics, resolve_device, resolve_dtype)
from data.common import Tokenizer, atomic_write, load_hellaswag
from model import GPT

if TYPE_CHECKING:  # imported where used: only an export needs transformers
    from transformers import PreTrainedTokenizerFast

MODES = ("hellaswag", "plot", "attention", "export")
DEFAULT_OUTPUT = {"plot": "loss.png", "attention": "attention.png", "export": "hf"}  # inside out_dir


@dataclass
class EvalConfig:
    mode: str = key("hellaswag", one_of(*MODES), "what to do: score HellaSwag, plot losses, draw attention, "
                                                 "export to HF")
    init_from: str = key("resume", None, "'resume' (out_dir/ckpt.pt), 'gpt2', 'gpt2-medium', ... or a local "
                                         "HF directory")
    out_dir: str = key("out", None, "the training run: ckpt.pt and metrics.jsonl")
    output: str | None = key(None, None, "PNG (plot, attention) or directory (export); None: loss.png, "
                                         "attention.png or hf in out_dir")
    device: str = key("auto", device_name, "'auto' picks cuda > mps > cpu (export always runs on the CPU)")
    dtype: str = key("auto", dtype_name, "autocast dtype of the HellaSwag forward passes")
    # hellaswag
    hellaswag_path: str = key("data/hellaswag/hellaswag_val.jsonl", None, "the examples "
                                                                          "(data/hellaswag/prepare.py)")
    limit: int | None = key(None, positive, "only the first `limit` examples")
    # attention
    start: str = key("To be, or not to be, that is the question", None, "the prompt; cropped to its last "
                                                                        "block_size tokens")
    # figures: the PNG is fig_width*dpi x fig_height*dpi pixels
    fig_width: float | None = key(None, positive, "figure width in inches; None: sized to the content")
    fig_height: float | None = key(None, positive, "figure height in inches; None: sized to the content")
    dpi: int = key(100, positive, "pixels per inch of the PNG")

    def output_path(self) -> str:
        return self.output or os.path.join(self.out_dir, DEFAULT_OUTPUT.get(self.mode, ""))

    def problems(self) -> list[str]:
        found = []
        if self.mode in ("hellaswag", "attention"):  # plot needs no device, and export runs on the CPU
            found += device_problems(self.device, self.dtype)
        if self.mode != "plot" and (problem := init_from_problem(self.init_from, "eval.py")):
            found.append(problem)
        if (self.fig_width is None) != (self.fig_height is None):
            found.append(f"fig_width={self.fig_width}: set both fig_width and fig_height, or neither")
        # plot and attention write a PNG into a folder, export writes a folder
        folder = self.output_path() if self.mode == "export" else os.path.dirname(self.output_path())
        if self.mode != "hellaswag" and (problem := unwritable(folder or ".")):
            found.append(f"output={self.output_path()!r}: {problem}")
        return found


# -----------------------------------------------------------------------------
# figures: matplotlib's Agg canvas without pyplot, so no display and no global state

def new_figure(figsize: tuple[float, float], dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return FigureCanvasAgg(Figure(figsize=figsize, dpi=dpi)).figure


def save_png(fig, path: str) -> None:
    """Written atomically: a viewer refreshing the PNG during a run never sees half a file."""
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=fig.dpi)  # no bbox_inches="tight": the size stays figsize * dpi


LOG_SCALE_SPAN = 3.0  # the loss plot's y axis is logarithmic when its losses span more than this factor


def set_y_scale(ax, log: bool, values: list[float]) -> None:
    """A log y axis with plain-number labels (3, 4, 5, 10 rather than 10^1 alone): at every tick where the
    values span up to a decade, at 1, 2, 3 and 5 times a power of 10 where they span more; or linear."""
    if not log:
        return
    from matplotlib.ticker import FuncFormatter
    shown = range(1, 10) if max(values) / min(values) <= 10 else (1, 2, 3, 5)

    def label(y: float, _) -> str:
        mantissa = round(y / 10 ** math.floor(math.log10(y) + 1e-9))  # 0.3 -> 3
        return f"{y:g}" if mantissa in shown else ""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label))


def plot_losses(train: list[dict], evals: list[dict], path: str, figsize: tuple[float, float] | None,
                dpi: int) -> None:
    """Loss against steps in one panel, tokens seen on a secondary x axis (top), from the records' tokens per
    step. The logged train loss is a curve; evals are markers only, as nothing was measured between two of
    them. The y axis is logarithmic when the losses span more than a factor LOG_SCALE_SPAN (a scratch run
    falling from 10.8 to 3), where a linear one would flatten all but the start. Eval records that carry
    bits per byte (val_bpb, train_bpb) add them as markers on a right-hand axis. figsize None: 10 x 5
    inches."""
    fig = new_figure(figsize or (10.0, 5.0), dpi)
    ax = fig.subplots()
    if train:
        ax.plot([r["iter"] for r in train], [r["loss"] for r in train], lw=1, alpha=0.8, color="C0",
                label="train loss")
    if evals:
        # hollow and larger: the val loss's dot stays visible inside it where the two are close
        ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], ls="None", marker="s", ms=8,
                mfc="none", color="C1", label="train loss (eval)")
        ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], ls="None", marker="o", ms=5,
                color="C2", label="val loss")
    losses = [y for line in ax.get_lines() for y in line.get_ydata()]
    log = min(losses) > 0 and max(losses) / min(losses) > LOG_SCALE_SPAN
    set_y_scale(ax, log, losses)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles = ax.get_lines()
    bpb = [(key, [r for r in evals if key in r]) for key in ("train_bpb", "val_bpb")]
    if any(records for _, records in bpb):
        right = ax.twinx()
        for (key, records), color in zip(bpb, ("C1", "C2")):  # hollow, in the colour of the split's loss
            if records:
                right.plot([r["iter"] for r in records], [r[key] for r in records], ls="None", marker="D",
                           ms=6, mfc="none", color=color, label=key.replace("_bpb", " bits per byte"))
        right.set_ylabel("bits per byte")
        # bits per byte are a loss over a constant: the same scale as the losses
        set_y_scale(right, log, [y for line in right.get_lines() for y in line.get_ydata()])
        handles = [*handles, *right.get_lines()]
    ax.legend(handles=handles, labels=[h.get_label() for h in handles])
    stepped = [r for r in [*train, *evals] if r["iter"] > 0]
    if stepped:  # tokens = iter * tokens per step; the latest record's, should a resume have changed it
        from matplotlib.ticker import EngFormatter
        per_step = max(stepped, key=lambda r: r["iter"])
        per_step = per_step["tokens"] / per_step["iter"]
        top = ax.secondary_xaxis("top", functions=(lambda s: s * per_step, lambda t: t / per_step))
        top.set_xlabel("tokens")
        top.xaxis.set_major_formatter(EngFormatter())
    save_png(fig, path)


@torch.no_grad()
def attention_maps(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Attention probabilities (n_layer, n_head, T, T) of the token ids idx, (T,) or (1, T): row i is how
    query i weighs keys 0..i. They are the model's own: each attention layer is asked to keep its weights
    (a masked softmax computed beside the SDPA path, model.attention_weights) for this one forward."""
    layers = [block.attn for block in model.transformer.h]
    for attn in layers:
        attn.keep_weights = True
    try:
        model(idx.view(1, -1))
        return torch.stack([attn.weights[0].float() for attn in layers])
    finally:
        for attn in layers:
            attn.keep_weights, attn.weights = False, None


# marks for the characters a tick label would show as nothing, or that would break it (DejaVu Sans has them)
VISIBLE = {" ": "\u2423", "\n": "\u23ce", "\t": "\u21e5", "\r": "\\r"}  # ␣ ⏎ ⇥; DejaVu has no ␍


def token_labels(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
    """Each token as a tick label: spaces, newlines and tabs as visible marks (VISIBLE), and '$' kept from
    starting matplotlib's mathtext."""
    labels = []
    for i in ids:
        text = tokenizer.decode([i]).replace("$", r"\$")
        labels.append("".join(VISIBLE.get(c, c) for c in text))
    return labels


def tick_rotation(labels: list[str], inches: float, fontsize: float) -> int:
    """0 (horizontal) where the longest label fits its share of an axis `inches` long, else 45 degrees. A
    character of DejaVu Sans is about 0.6 of the font size wide."""
    longest = max(map(len, labels)) * 0.6 * fontsize / 72  # inches
    return 0 if longest <= 0.9 * inches / len(labels) else 45


def plot_attention(maps: torch.Tensor, labels: list[str], path: str, figsize: tuple[float, float] | None,
                   dpi: int) -> None:
    """One heatmap per layer (rows) and head (columns), query tokens down the left column and key tokens
    along the bottom row, one colour bar of probability 0..1 for all; figsize None: sized to the tokens."""
    L, H, T, _ = maps.shape
    cell = max(1.5, 0.12 * T + 0.6)  # inches per heatmap: room for T tick labels
    margin = 1.6  # inches of width: tick labels, axis titles and the colour bar
    fig = new_figure(figsize or (H * cell + margin, L * cell + 1), dpi)
    grid = fig.add_gridspec(L, H + 1, width_ratios=[*[1] * H, 0.05])  # the last column holds the colour bar
    fontsize = 7  # of the tokens: 0.12 inches (8.6 points) apart at the figure's own size
    rotation = tick_rotation(labels, max(fig.get_figwidth() - margin, 0.1) / H, fontsize)
    for layer in range(L):
        for head in range(H):
            ax = fig.add_subplot(grid[layer, head])
            image = ax.imshow(maps[layer, head].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"layer {layer} head {head}", fontsize=9)
            ax.set_xticks(range(T), labels, fontsize=fontsize, rotation=rotation,
                          ha="right" if rotation else "center", rotation_mode="anchor")
            ax.set_yticks(range(T), labels, fontsize=fontsize)
            # token names and axis titles on the outer axes only
            ax.tick_params(labelbottom=layer == L - 1, labelleft=head == 0)
            if layer == L - 1:
                ax.set_xlabel("key", fontsize=9)
            if head == 0:
                ax.set_ylabel("query", fontsize=9)
    bar = fig.colorbar(image, cax=fig.add_subplot(grid[:, H]))
    bar.set_label("attention probability", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    save_png(fig, path)


# -----------------------------------------------------------------------------
# export to HF transformers

# tiktoken's GPT-2 BPE files, which are exactly HF's vocab.json and merges.txt
GPT2_ENCODINGS = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main"
TIKTOKEN_GPT2_FILES = {"vocab.json": f"{GPT2_ENCODINGS}/encoder.json",
                       "merges.txt": f"{GPT2_ENCODINGS}/vocab.bpe"}


def tiktoken_gpt2_files() -> dict[str, str] | None:
    """Paths of those files in tiktoken's cache, where they are named by the sha1 of their URL; None if
    absent."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or \
        os.path.join(tempfile.gettempdir(), "data-gym-cache")
    paths = {name: os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())
             for name, url in TIKTOKEN_GPT2_FILES.items()}
    return paths if all(os.path.isfile(p) for p in paths.values()) else None


def generation_ids(tokenizer: Tokenizer | None) -> dict[str, int | None]:
    """The special token ids an exported config gives HF's generate: GPT-2's <|endoftext|> begins, ends and
    pads (a lone prompt needs no padding, but generate warns where an end has no pad id). A char
    vocabulary has no such token: generation runs to its length, as sample.py's does. No char is made the
    pad token: the pipeline drops special tokens from its text, so that char would vanish from samples."""
    eot = tokenizer.eot_token if tokenizer is not None else None
    return {"bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot}


def char_tokenizer_hf(tokenizer: Tokenizer, max_length: int) -> "PreTrainedTokenizerFast":
    """A HF PreTrainedTokenizerFast with the char tokenizer's ids: every character (newlines and spaces too)
    is a piece of its own, looked up in a one-char-per-id vocabulary, and decoding joins the pieces as they
    are. A character outside the vocabulary is an error, as in this codebase."""
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer
    from transformers import PreTrainedTokenizerFast
    hf = HFTokenizer(models.WordLevel({c: i for i, c in enumerate(tokenizer.chars)}, unk_token=None))
    # [\s\S] is any one character, the newline included (the regex dialect's '.' is not)
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    hf.decoder = decoders.Fuse()  # no spaces put between the pieces
    # clean_up_tokenization_spaces would drop the space before punctuation: ' .' is two real characters here
    return PreTrainedTokenizerFast(tokenizer_object=hf, model_max_length=max_length,
                                   clean_up_tokenization_spaces=False)


def save_tokenizer(tokenizer: Tokenizer, out: str, max_length: int) -> None:
    """Write the tokenizer into the export directory out, for any exported model class: meta.json (this
    codebase's description of it, read back by load_model) and HF's tokenizer files, so AutoTokenizer and
    pipeline() load the directory as it is. A char tokenizer is rebuilt with HF's tokenizers library; GPT-2's
    BPE comes from tiktoken's cached vocab.json/merges.txt (offline), or, without them, a note on where to get
    it. max_length: the model's context, past which HF warns."""
    from transformers import AutoTokenizer
    from transformers.utils import logging
    with atomic_write(os.path.join(out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer.meta(), f, ensure_ascii=False)
    if tokenizer.kind == "char":
        char_tokenizer_hf(tokenizer, max_length).save_pretrained(out)
        return
    files = tiktoken_gpt2_files()
    if files is None:  # tiktoken's cache holds no copy: leave a note instead
        with open(os.path.join(out, "TOKENIZER.txt"), "w", encoding="utf-8") as f:
            f.write("GPT-2's BPE: use AutoTokenizer.from_pretrained('gpt2'); tiktoken's cache had no copy\n")
        return
    for name, src in files.items():
        shutil.copyfile(src, os.path.join(out, name))
    logging.set_verbosity_error()
    # HF builds its tokenizer from those two files; saving it adds tokenizer.json and tokenizer_config.json
    AutoTokenizer.from_pretrained(out, model_max_length=max_length).save_pretrained(out)


def export_hf(model: GPT, out: str, tokenizer: Tokenizer | None = None) -> str:
    """Write model as a HF directory that AutoModelForCausalLM.from_pretrained(out) loads, and return out:
    GPT2LMHeadModel, LlamaForCausalLM or Qwen3ForCausalLM, whichever computes the same (core.hf_model; a
    model no HF class computes is refused, naming its keys). With the model's tokenizer,
    pipeline("text-generation", model=out) runs on it as it is (save_tokenizer)."""
    if tokenizer is not None and tokenizer.vocab_size != model.config.real_vocab_size:
        tokenizer = None  # not the model's
    hf = hf_model(model, **generation_ids(tokenizer))
    os.makedirs(out, exist_ok=True)
    hf.save_pretrained(out)
    if tokenizer is not None:
        save_tokenizer(tokenizer, out, model.config.block_size)
    return out


# -----------------------------------------------------------------------------

def main(argv: list[str]):
    cfg = configure(EvalConfig, argv)
    output = cfg.output_path()
    figsize = (cfg.fig_width, cfg.fig_height) if cfg.fig_width is not None else None
    if cfg.mode == "plot":  # needs no model
        train_records, eval_records = read_metrics(os.path.join(cfg.out_dir, "metrics.jsonl"))
        if not train_records and not eval_records:
            raise UsageError(f"{cfg.out_dir}/metrics.jsonl has no records yet")
        plot_losses(train_records, eval_records, output, figsize, cfg.dpi)
        print(f"wrote {output}")
        return output
    # fail early
    examples = load_hellaswag(cfg.hellaswag_path, cfg.limit) if cfg.mode == "hellaswag" else None
    device = torch.device("cpu") if cfg.mode == "export" else resolve_device(cfg.device)
    model, tokenizer, _ = load_model(cfg.init_from, cfg.out_dir)
    model.to(device)
    if cfg.mode == "export":
        with long_call(f"exporting to {output}"):
            export_hf(model, output, tokenizer)
        print(f"wrote {output}: generate with transformers.pipeline('text-generation', model='{output}'), "
              f"or load it with AutoModelForCausalLM.from_pretrained('{output}') and "
              f"AutoTokenizer.from_pretrained('{output}')")
        return output
    if cfg.mode == "attention":
        check_tokenizer(model, tokenizer)
        ids = tokenizer.encode(cfg.start)[-model.config.block_size:]
        if not ids:
            raise UsageError("start is empty: give a prompt")
        maps = attention_maps(model, torch.tensor(ids, device=device))
        plot_attention(maps, token_labels(tokenizer, ids), output, figsize, cfg.dpi)
        print(f"wrote {output} ({maps.size(0)} layers x {maps.size(1)} heads, {len(ids)} tokens)")
        return maps
    dtype = resolve_dtype(cfg.dtype, device)
    result = hellaswag_accuracy(model, examples, tokenizer, device, autocast(device, dtype),
                                show_progress=True)
    print(f"hellaswag: {result['examples']} examples, acc {result['acc']:.4f} (lowest summed loss), "
          f"acc_norm {result['acc_norm']:.4f} (lowest mean loss per token)")
    return result


if __name__ == "__main__":
    cli(main)
