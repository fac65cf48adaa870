"""
Sample text from a trained GPT or from OpenAI's GPT-2:

    python sample.py --out_dir=out-shakespeare-char                # the run's ckpt.pt (init_from='resume')
    python sample.py --out_dir=out-shakespeare --ckpt=best.pt      # the checkpoint of the best val loss
    python sample.py --init_from=gpt2-xl --start="What is the answer?" --num_samples=5 --max_new_tokens=100
    python sample.py --start=FILE:prompt.txt --num_samples=1       # prompt from a file; one sample streams

Keys and defaults are in SampleConfig below; config files and --key=value work as in train.py
(configurator.py). Samples go to stdout, each followed by a line of dashes; what was loaded goes to stderr.
All samples are one batch of the same prompt through model.generate (KV-cached); a single sample is printed as
it is generated. A seed gives the same samples on the same device, dtype and software.
"""
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from configurator import check, cli, configure, device_name, dtype_name, fraction, key, non_negative, positive
from core import (SEPARATOR, choose_weight_layout, device_problems, encode_prompt, init_from_problem,
                  load_model, resolve_device, resolve_dtype)
from data.common import Tokenizer, read_text


@dataclass
class SampleConfig:
    init_from: str = key("resume", None, "'resume' (out_dir/ckpt), 'gpt2', 'gpt2-medium', 'gpt2-large', "
                                         "'gpt2-xl' or a HF dir")
    out_dir: str = key("out", None, "the training run to load with init_from='resume'")
    ckpt: str = key("ckpt.pt", None, "checkpoint file in out_dir: 'ckpt.pt' (latest save) or 'best.pt' "
                                     "(best val loss)")
    start: str = key("\n", None, "the prompt, or 'FILE:path' to read it from a file; '' starts BPE at "
                                 "<|endoftext|>")
    num_samples: int = key(10, positive, "samples, generated as one batch; 1 streams the text as generated")
    max_new_tokens: int = key(500, non_negative, "tokens generated per sample")
    temperature: float = key(0.8, non_negative, "< 1 sharper, > 1 more random; 0 is greedy (argmax, no "
                                                "randomness)")
    top_k: int | None = key(200, positive, "sample among the k most likely tokens only; None: all of them")
    top_p: float | None = key(None, fraction, "nucleus: the fewest most likely tokens holding probability "
                                              "top_p; None: all")
    stop_at_eot: bool = key(False, None, "BPE: end a sample at <|endoftext|> (a document's end); char: no "
                                         "effect")
    seed: int = key(1337, None, "of the sampling's random generator")
    device: str = key("auto", device_name, "'auto' picks cuda > mps > cpu")
    dtype: str = key("auto", dtype_name, "the weights' dtype ('float16': CUDA only); 'auto': bf16 or fp16 "
                                         "on a GPU, fp32 on a CPU")
    compile: bool = key(False, None, "compile the one-token decode step: pays only over many tokens "
                                     "(docs/performance.md)")

    def problems(self) -> list[str]:
        found = device_problems(self.device, self.dtype)
        if problem := init_from_problem(self.init_from, "sample.py"):
            found.append(problem)
        return found


def read_prompt(start: str) -> str:
    """The prompt text: start itself, or the contents of the file named after 'FILE:'."""
    if start.startswith("FILE:"):
        return read_text(start[len("FILE:"):])  # a missing, empty or non-UTF-8 file is a one-line DataError
    return start


class TextStream:
    """Decodes token ids into text as they arrive, so that the pieces joined equal tokenizer.decode(all ids).
    A BPE token can end inside a multi-byte character (which decodes as U+FFFD): such tokens are held back
    until the character is complete, and only the ids since the last complete character are decoded at each
    step."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer, self.pending = tokenizer, []

    def push(self, ids: Iterable[int]) -> str:
        self.pending.extend(ids)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd"):  # maybe a character cut in two: wait for the next token
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text, self.pending = self.tokenizer.decode(self.pending), []
        return text


def cut_at_stop(ids: list[int], stop_token: int | None) -> list[int]:
    """ids up to, not including, the first stop_token (generate repeats it after a row has stopped)."""
    return ids[:ids.index(stop_token)] if stop_token is not None and stop_token in ids else ids


def sample(cfg: SampleConfig, out=None) -> list[str]:
    """Generate cfg.num_samples samples, write each to out (default sys.stdout) followed by a line of dashes,
    and return their texts (prompt included, without the <|endoftext|> an empty BPE prompt starts from)."""
    out = out if out is not None else sys.stdout
    check(cfg)  # as configure() does, for callers that build a SampleConfig themselves
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    model, tokenizer, source = load_model(cfg.init_from, cfg.out_dir, cfg.ckpt)
    model.to(device, dtype)  # not autocast: that would read the fp32 weights at every step
    choose_weight_layout(model)
    ids, hidden = encode_prompt(tokenizer, read_prompt(cfg.start), model.config.vocab_size)
    stop = tokenizer.eot_token if cfg.stop_at_eot else None  # None for char: it has no such token
    print(f"sampling {cfg.num_samples} x {cfg.max_new_tokens} tokens after a {len(ids)}-token prompt "
          f"from {source} on {device} ({str(dtype).removeprefix('torch.')})", file=sys.stderr)
    if cfg.compile:
        model.compile_decoding()
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # the only randomness: seed decides
    idx = torch.tensor([ids] * cfg.num_samples, dtype=torch.long, device=device)
    kwargs = dict(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p, stop_token=stop,
                  generator=generator)
    if cfg.num_samples == 1:  # stream: print each piece of text as soon as its tokens exist
        stream, new = TextStream(tokenizer), []
        out.write(stream.push(ids[hidden:]))
        out.flush()
        for nxt in model.generate_iter(idx, cfg.max_new_tokens, **kwargs):
            token = nxt[0, 0].item()
            if token == stop:
                break
            new.append(token)
            out.write(stream.push([token]))
            out.flush()
        out.write(stream.flush() + "\n" + SEPARATOR + "\n")
        out.flush()
        return [tokenizer.decode(ids[hidden:] + new)]
    rows = model.generate(idx, cfg.max_new_tokens, **kwargs).tolist()
    texts = [tokenizer.decode(ids[hidden:] + cut_at_stop(row[len(ids):], stop)) for row in rows]
    for text in texts:
        out.write(text + "\n" + SEPARATOR + "\n")
    out.flush()
    return texts


def main(argv: list[str]) -> list[str]:
    return sample(configure(SampleConfig, argv))


if __name__ == "__main__":
    cli(main)
