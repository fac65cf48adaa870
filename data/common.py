"""
The one data library: tokenizers, the on-disk format, atomic writing, downloads and Hugging Face datasets.

A prepared dataset is a folder with three files:
  train.bin, val.bin  flat arrays of token ids, raw (no header):
                      np.memmap(path, dtype=meta["dtype"], mode="r")
  meta.json           {"tokenizer": "char" | "gpt2", "vocab_size", "dtype": "uint16" | "uint32",
                       "chars": [...] (char only, id order), "eot_token": int | null, "train_tokens",
                       "val_tokens"}
Every data/<name>/prepare.py is a thin use of this module. Nothing here pickles: meta.json is plain UTF-8
JSON.

Documents: with gpt2 every document is preceded by the <|endoftext|> token (50256), so documents are separated
by it and each one, the first included, starts in the same "fresh document" context that sampling from a lone
<|endoftext|> prompt gives. The char tokenizer has no such token: documents are simply concatenated.
"""
import argparse
import contextlib
import glob
import json
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from configurator import Check, UsageError, cli, closest, did_you_mean, non_negative, positive, unwritable

# rough number of tokens written per memmap chunk: the chunk count follows the data size (nanoGPT used a fixed
# 1024 shards, which fails on datasets with fewer rows than that)
CHUNK_TOKENS = 1 << 24
GPT2_EOT = "<|endoftext|>"
META_KEYS = ("tokenizer", "vocab_size", "dtype", "eot_token", "train_tokens", "val_tokens")


class DataError(UsageError, ValueError):
    """Bad input or an unreachable source, said in one line. A UsageError, so the prepare.py scripts, train.py
    and sample.py report it without a traceback (exit status 2)."""


def dtype_for(vocab_size: int) -> str:
    """The smallest dtype that holds every id of a vocabulary: uint16 up to 65536 tokens, else uint32."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


# -----------------------------------------------------------------------------
# tokenizers

def _tiktoken_gpt2():
    import tiktoken
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # tiktoken downloads its BPE files on first use
        raise DataError(f"could not load tiktoken's gpt2 BPE files ({type(e).__name__}: {e}); connect once "
                        f"to cache them, or set TIKTOKEN_CACHE_DIR to a folder that holds them") from e


class Tokenizer:
    """Text <-> token ids for the two tokenizers meta.json can name: "char" (a list of characters) and
    "gpt2"."""

    def __init__(self, kind: str, chars: Sequence[str] | None = None):
        self.kind = kind
        if kind == "char":
            self.chars = list(chars or [])
            if not self.chars or any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
                raise DataError("a char vocabulary must be a non-empty list of single characters")
            if len(set(self.chars)) != len(self.chars):
                raise DataError("a char vocabulary must not repeat characters")
            self.vocab_size, self.eot_token = len(self.chars), None
            # encoding looks code points up in sorted order with numpy: fast on big texts, and any id order
            # works
            codepoints = np.array([ord(c) for c in self.chars], dtype=np.int64)
            self._order = np.argsort(codepoints)
            self._sorted = codepoints[self._order]
        elif kind == "gpt2":
            self.chars = None
            self._enc = _tiktoken_gpt2()
            self.vocab_size, self.eot_token = self._enc.n_vocab, self._enc.eot_token  # 50257, 50256
        else:
            raise DataError(f"unknown tokenizer {kind!r}: expected 'char' or 'gpt2'")
        self.dtype = dtype_for(self.vocab_size)

    @classmethod
    def char(cls, chars: Sequence[str]) -> "Tokenizer":
        return cls("char", chars)

    @classmethod
    def from_text(cls, text: str) -> "Tokenizer":
        """A char tokenizer whose vocabulary is the sorted unique characters of text."""
        return cls("char", sorted(set(text)))

    @classmethod
    def gpt2(cls) -> "Tokenizer":
        return cls("gpt2")

    @classmethod
    def from_meta(cls, meta: dict) -> "Tokenizer":
        tok = cls(meta.get("tokenizer"), meta.get("chars"))
        if meta.get("vocab_size") != tok.vocab_size:
            raise DataError(f"meta vocab_size {meta.get('vocab_size')} != {tok.vocab_size} "
                            f"of its {tok.kind} tokenizer")
        return tok

    # pickled (datasets.map workers, fingerprints) as its definition, not tiktoken internals
    def __reduce__(self):
        return Tokenizer, (self.kind, self.chars)

    def meta(self) -> dict:
        """The tokenizer's part of meta.json."""
        meta = {"tokenizer": self.kind, "vocab_size": self.vocab_size, "dtype": self.dtype}
        if self.kind == "char":
            meta["chars"] = self.chars
        meta["eot_token"] = self.eot_token
        return meta

    def _encode_chars(self, text: str) -> np.ndarray:
        codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"),
                                   dtype=np.uint32).astype(np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, codepoints), self.vocab_size - 1)
        known = self._sorted[pos] == codepoints
        if not known.all():
            unknown = sorted({chr(c) for c in codepoints[~known]})
            shown = ", ".join(repr(c) for c in unknown[:50])
            if len(unknown) > 50:
                shown += f" and {len(unknown) - 50} more"
            raise DataError(f"{len(unknown)} character(s) not in the vocabulary: {shown}")
        return self._order[pos].astype(self.dtype)

    def encode(self, text: str, allow_eot: bool = True) -> list[int]:
        """Token ids of text. gpt2: the text "<|endoftext|>" becomes the eot token unless allow_eot=False.
        char: a ValueError (DataError) lists the characters that are not in the vocabulary."""
        if self.kind == "char":
            return self._encode_chars(text).tolist()
        return self._enc.encode(text, allowed_special={GPT2_EOT} if allow_eot else set(),
                                disallowed_special=())

    def encode_document(self, text: str) -> np.ndarray:
        """One document as it is stored: gpt2 puts the eot token first, and "<|endoftext|>" inside the text
        stays plain text (only the inserted separator is the special token); char ids are just the
        characters."""
        if self.kind == "char":
            return self._encode_chars(text)
        return np.array([self.eot_token] + self._enc.encode_ordinary(text), dtype=self.dtype)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids. Never fails: ids outside 0..vocab_size-1 (e.g. rows of a model vocab padded to a
        multiple of 64) are skipped."""
        ids = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).ravel()
        ids = ids[(ids >= 0) & (ids < self.vocab_size)].tolist()
        if self.kind == "char":
            return "".join([self.chars[i] for i in ids])
        return self._enc.decode(ids)  # errors="replace": a cut multi-byte character decodes as U+FFFD

    def token_bytes(self, n: int | None = None) -> np.ndarray:
        """UTF-8 bytes of each id's text, (n,) int64 for ids 0..n-1 (n: vocab_size unless given): what bits
        per byte divide by. The special <|endoftext|> is no text (0 bytes), nor are ids past the vocabulary
        (rows of a padded model vocab). A BPE token may hold part of a character: its share of the bytes."""
        n = self.vocab_size if n is None else n
        table = np.zeros(max(n, self.vocab_size), dtype=np.int64)
        if self.kind == "char":  # surrogatepass: a lone surrogate can be a vocabulary character (3 bytes)
            table[:self.vocab_size] = [len(c.encode("utf-8", "surrogatepass")) for c in self.chars]
        else:
            table[:self.vocab_size] = [len(self._enc.decode_single_token_bytes(i))
                                       for i in range(self.vocab_size)]
            table[self.eot_token] = 0
        return table[:n]


# -----------------------------------------------------------------------------
# reading meta.json

def _meta_problem(meta) -> str | None:
    """What is wrong with a parsed meta.json, or None."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        return f"missing {', '.join(missing)}"
    if meta["tokenizer"] not in ("char", "gpt2"):
        return f"unknown tokenizer {meta['tokenizer']!r}"
    for k in ("vocab_size", "train_tokens", "val_tokens"):
        if not isinstance(meta[k], int) or isinstance(meta[k], bool) or meta[k] <= 0:
            return f"{k} must be a positive integer, not {meta[k]!r}"
    if meta["dtype"] != dtype_for(meta["vocab_size"]):
        return (f"dtype {meta['dtype']!r} does not fit vocab_size {meta['vocab_size']} "
                f"(expected {dtype_for(meta['vocab_size'])!r})")
    if meta["tokenizer"] == "char":
        chars = meta.get("chars")
        if not isinstance(chars, list) or len(chars) != meta["vocab_size"]:
            return "char meta needs 'chars', a list of vocab_size characters"
    return None


def _prepare_hint(data_dir: Path) -> str:
    script = data_dir / "prepare.py"
    if script.exists():
        return f"run python {script}"
    return f"run python data/custom/prepare.py --input=... --out_dir={data_dir}"


def _missing_hint(data_dir: Path) -> str:
    """What to do about a dataset folder without a meta.json: its own prepare.py, else the prepared datasets
    beside it (folders with a meta.json) named like it, a typo's likely fix, and how to prepare a new one."""
    prepared = [p.parent.name for p in data_dir.parent.glob("*/meta.json")] if data_dir.name else []
    near = closest(data_dir.name, [name for name in prepared if name != data_dir.name])
    if (data_dir / "prepare.py").exists() or not near:
        return f"{_prepare_hint(data_dir)} first"
    return (f"{did_you_mean([str(data_dir.parent / name) for name in near]).strip()} To prepare a new "
            f"dataset there, {_prepare_hint(data_dir)}")


def load_meta(data_dir: str | os.PathLike) -> dict:
    """The meta.json of a prepared dataset folder, checked; a missing or malformed one is a one-line
    DataError."""
    data_dir = Path(data_dir)
    path = data_dir / "meta.json"
    if not path.exists():
        raise DataError(f"{path} not found: {_missing_hint(data_dir)}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is malformed ({e}): {_prepare_hint(data_dir)} again") from e
    problem = _meta_problem(meta)
    for split in ("train", "val"):  # catches .bin files that do not belong to this meta.json
        bin_path = data_dir / f"{split}.bin"
        if problem is None and bin_path.exists():
            expected = meta[f"{split}_tokens"] * np.dtype(meta["dtype"]).itemsize
            if bin_path.stat().st_size != expected:
                problem = f"{bin_path.name} has {bin_path.stat().st_size} bytes, meta says {expected}"
    if problem:
        raise DataError(f"{path} is malformed ({problem}): {_prepare_hint(data_dir)} again")
    return meta


# -----------------------------------------------------------------------------
# writing: the one atomic writer (data files, checkpoints, figures), and the .bin/meta.json writer built on it

@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """A file to write path's new contents into. It is a temp file of its own beside path (so two writers
    never share one), flushed, fsynced and renamed over path when the block ends, and the rename is made
    durable: a crash or kill at any point leaves the previous file at path intact. On an error the temp file
    is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    # mkstemp makes the file private (0600); give it a normal file's permissions
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_split(f: IO, split: str, n_tokens: int, chunks: Iterable[np.ndarray],
                 tokenizer: Tokenizer) -> None:
    """Consume chunks of ids into a memmap of n_tokens on the open file f, checking every id."""
    if n_tokens <= 0:
        raise DataError(f"the {split} split is empty")
    arr = np.memmap(f, dtype=tokenizer.dtype, mode="w+", shape=(n_tokens,))
    pos = 0
    with tqdm(total=n_tokens, unit="tok", unit_scale=True, desc=f"writing {split}.bin",
              disable=n_tokens < CHUNK_TOKENS) as bar:
        for chunk in chunks:
            chunk = np.asarray(chunk)
            bad = chunk[(chunk < 0) | (chunk >= tokenizer.vocab_size)]
            if bad.size:  # would not fit the dtype, or the tokenizer could not decode it
                raise DataError(f"token id {bad[0]} out of range for vocab_size {tokenizer.vocab_size}")
            if pos + chunk.size > n_tokens:
                raise RuntimeError(f"{split}: more tokens than the {n_tokens} announced")
            arr[pos:pos + chunk.size] = chunk
            pos += chunk.size
            bar.update(chunk.size)
    if pos != n_tokens:
        raise RuntimeError(f"{split}: wrote {pos} tokens, expected {n_tokens}")
    arr.flush()


def write_bins(out_dir: str | os.PathLike, tokenizer: Tokenizer,
               splits: dict[str, tuple[int, Iterable[np.ndarray]]]) -> dict:
    """Write {"train": (n_tokens, chunks), "val": (n_tokens, chunks)} and meta.json into out_dir; return the
    meta.

    Each split's chunks are arrays of ids, consumed once and written in order into a memmap of n_tokens. Every
    id is checked against the vocabulary (so it fits the dtype). Until every file is complete nothing in
    out_dir is replaced; on any error the temp files are removed and previously prepared files are left as
    they were."""
    out_dir = Path(out_dir)
    meta = {**tokenizer.meta(), **{f"{split}_tokens": n for split, (n, _) in splits.items()}}
    # renamed in reverse order of opening, meta.json last: it describes them
    with contextlib.ExitStack() as files:
        meta_file = files.enter_context(atomic_write(out_dir / "meta.json", "w", encoding="utf-8"))
        for split, (n_tokens, chunks) in splits.items():
            _write_split(files.enter_context(atomic_write(out_dir / f"{split}.bin", "w+b")), split, n_tokens,
                         chunks, tokenizer)
        meta_file.write(json.dumps(meta, ensure_ascii=False) + "\n")
    print(f"wrote {out_dir}: {meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens, "
          f"{tokenizer.kind} vocab {tokenizer.vocab_size} ({tokenizer.dtype})")
    return meta


def prepare_documents(docs: Iterable[str], tokenizer: Tokenizer, out_dir: str | os.PathLike,
                      val_fraction: float = 0.1) -> dict:
    """Tokenize documents held in memory, in order, and split the token stream: the first 1 - val_fraction of
    the tokens train, the rest val (for char that is a split by characters). Returns the meta written."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    docs = list(docs)
    parts = [tokenizer.encode_document(d)
             for d in tqdm(docs, "tokenizing", unit="doc", disable=len(docs) < 1000)]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=tokenizer.dtype)
    n_train = int(len(ids) * (1 - val_fraction))
    if n_train == 0 or n_train == len(ids):
        raise DataError(f"{len(ids)} tokens are too few to split into train and val "
                        f"with val_fraction={val_fraction}")
    return write_bins(out_dir, tokenizer, {"train": (n_train, [ids[:n_train]]),
                                           "val": (len(ids) - n_train, [ids[n_train:]])})


# -----------------------------------------------------------------------------
# local text files and downloads

def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's contents; a missing, undecodable or empty file is a one-line DataError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"input file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e})") from e
    if not text:
        raise DataError(f"{path} is empty")
    return text


def read_documents(path: str | os.PathLike) -> list[str]:
    """A text file as one document, or a folder's *.txt files (recursively, sorted by path) one document
    each."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return [read_text(path)]
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    # empty files are skipped
    docs = [d for d in (read_text(f) if f.stat().st_size else "" for f in files) if d]
    if not docs:
        raise DataError(f"no text in {path}: it has no non-empty .txt files")
    return docs


def download(url: str, path: str | os.PathLike, timeout: float = 60.0) -> Path:
    """Download url to path unless path exists. The bytes go to a temp file beside path, renamed when
    complete, so a failure leaves nothing behind; it is a one-line DataError saying what to download and where
    to put it."""
    path = Path(path)
    if path.exists():
        return path
    print(f"downloading {url} to {path}")
    try:
        with atomic_write(path) as f, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                f.write(block)
    except Exception as e:
        raise DataError(f"could not download {url} ({type(e).__name__}: {e}); download it yourself and "
                        f"save it as {path.resolve()}") from e
    return path


# -----------------------------------------------------------------------------
# HellaSwag's validation examples (written by data/hellaswag/prepare.py, scored by core.hellaswag_accuracy)

def load_hellaswag(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """The (first `limit`) examples of a HellaSwag JSONL file, each checked for ctx, 4 endings and a label."""
    if not os.path.isfile(path):
        raise DataError(f"{path} not found: run python data/hellaswag/prepare.py first")
    examples = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(examples) >= limit:
                break
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
            except json.JSONDecodeError:
                ex = None
            if not (isinstance(ex, dict) and isinstance(ex.get("ctx"), str)
                    and isinstance(ex.get("endings"), list) and len(ex["endings"]) == 4
                    and all(isinstance(e, str) for e in ex["endings"]) and ex.get("label") in (0, 1, 2, 3)):
                raise DataError(f"{path}:{n} is not a HellaSwag example: "
                                f"it needs ctx, 4 endings and a label 0..3")
            examples.append(ex)
    return examples


# -----------------------------------------------------------------------------
# Hugging Face datasets: load (hub or local), split, tokenize in parallel, write

BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".txt": "text", ".csv": "csv",
            ".arrow": "arrow"}


def _builder(pattern: str) -> str:
    name = pattern.lower()
    # compressed json/text files keep their inner extension's builder
    for ext in (".gz", ".zst", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    builder = BUILDERS.get(Path(name).suffix)
    if builder is None:
        raise DataError(f"can't tell the format of {pattern}: expected one of {', '.join(BUILDERS)}")
    return builder


def _is_saved_dataset(path: Path) -> bool:  # a folder written by Dataset(Dict).save_to_disk
    return path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists())


def is_hf_source(name_or_path: str) -> bool:
    """Whether load_dataset should read this: a save_to_disk folder, a data file (.parquet/.jsonl/...), a
    folder without .txt files (data files, as `datasets` reads them), or a name that is no local path (a hub
    id)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.suffix.lower() != ".txt" and any(s in BUILDERS for s in path.suffixes)
    if path.is_dir():
        return _is_saved_dataset(path) or not any(path.rglob("*.txt"))
    return not _looks_local(name_or_path)


def _looks_local(name: str) -> bool:  # a path (that does not exist) rather than a hub id like "owner/name"
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).suffix.lower() in BUILDERS


def _network_error(e: BaseException) -> bool:
    """Whether e is a failure to reach the network, whichever HTTP library (urllib, httpx, requests) raised
    it."""
    module = type(e).__module__.split(".")[0]
    return isinstance(e, (ConnectionError, TimeoutError)) or module in ("httpx", "httpx2", "httpcore",
                                                                        "requests", "urllib3", "aiohttp")


def _rooted(data_files: str | list | dict, root: str) -> list | dict:
    """data_files with each relative pattern (or list of them, per split) made a pattern under root."""
    def under(pattern: str) -> str:
        return pattern if "://" in pattern or os.path.isabs(pattern) else f"{root}/{pattern}"
    if isinstance(data_files, dict):
        return {k: [under(p) for p in ([v] if isinstance(v, str) else v)] for k, v in data_files.items()}
    return [under(p) for p in ([data_files] if isinstance(data_files, str) else data_files)]


def _check_matches(files: list | dict, folder: str) -> None:
    """A one-line DataError unless every local pattern of files matches a file."""
    for pattern in (p for ps in (files.values() if isinstance(files, dict) else [files]) for p in ps):
        if "://" not in pattern and not any(os.path.isfile(f) for f in glob.glob(pattern, recursive=True)):
            raise DataError(f"{folder} holds no {pattern.removeprefix(folder + '/')}")


def load_dataset(name_or_path: str, config: str | None = None, split: str | None = None,
                 num_proc: int | None = None, data_files: str | list | dict | None = None):
    """A datasets.Dataset (split given) or DatasetDict from the hub or from local data, whichever name_or_path
    is: a save_to_disk folder, a data file (.parquet/.json/.jsonl/.csv/.txt/.arrow), a folder of data files,
    or a hub id. With a hub id or a folder (a local snapshot of a hub repository, say) and data_files, only
    those files, relative to it, are read, by the builder their extension names (hf://datasets/<id>/...),
    and config is not used: this works for repositories that also hold a loading script (datasets >= 4 no
    longer runs scripts) or other configs' files."""
    import datasets
    path = Path(name_or_path).expanduser()
    try:
        if _is_saved_dataset(path):
            ds = datasets.load_from_disk(str(path))
            if split is not None and isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DataError(f"{path} has no split {split!r}; it has {', '.join(ds)}")
                ds = ds[split]
            return ds
        if path.is_file():
            return datasets.load_dataset(_builder(path.name), data_files=str(path), split=split,
                                         num_proc=num_proc)
        if path.is_dir() and not data_files:
            return datasets.load_dataset(str(path), config, split=split, num_proc=num_proc)
        if not path.is_dir() and _looks_local(name_or_path):
            raise DataError(f"{name_or_path} not found")
        if data_files:  # the named files only, read by their builder: a script beside them is never run
            root = str(path) if path.is_dir() else f"hf://datasets/{name_or_path}"
            files = _rooted(data_files, root)
            if path.is_dir():
                _check_matches(files, root)
            first = next(iter(files.values()))[0] if isinstance(files, dict) else files[0]
            return datasets.load_dataset(_builder(first), data_files=files, split=split, num_proc=num_proc)
        return datasets.load_dataset(name_or_path, config, split=split, num_proc=num_proc)
    except DataError:
        raise
    except Exception as e:
        if not path.exists() and (isinstance(e, datasets.exceptions.DatasetNotFoundError)
                                  or _network_error(e)):
            raise DataError(f"{name_or_path!r} is no local path and could not be loaded from the Hugging "
                            f"Face hub ({type(e).__name__}: {e}); run this where the hub can be reached (the "
                            f"download is cached), or pass a local path: a save_to_disk folder or "
                            f".parquet/.jsonl/.txt files") from e
        if isinstance(e, RuntimeError) and "scripts are no longer supported" in str(e):
            raise DataError(f"{name_or_path!r} is a script dataset, which datasets>=4 no longer runs: pass "
                            f"data_files (e.g. 'data/*.parquet') naming its data files on the hub") from e
        if isinstance(e, (FileNotFoundError, ValueError)):  # e.g. a data_files pattern that matches nothing
            raise DataError(f"could not load {name_or_path!r} ({type(e).__name__}: {e})") from e
        raise


def train_val_splits(ds, val_fraction: float, seed: int, val_split: str = "validation") -> dict:
    """{"train": Dataset, "val": Dataset}: the dataset's own val_split when it has one, else a random
    val_fraction of the train documents held out. Both keep the documents' original order."""
    import datasets
    if isinstance(ds, datasets.DatasetDict):
        if val_split in ds and "train" in ds:
            return {"train": ds["train"], "val": ds[val_split]}
        if "train" not in ds and len(ds) != 1:
            raise DataError(f"no 'train' split among {', '.join(ds)}")
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    n_val = max(1, round(len(ds) * val_fraction))
    if n_val >= len(ds):
        raise DataError(f"{len(ds)} documents are too few to hold out {n_val} for val")
    is_val = np.zeros(len(ds), dtype=bool)
    is_val[np.random.default_rng(seed).choice(len(ds), n_val, replace=False)] = True
    return {"train": ds.select(np.flatnonzero(~is_val)), "val": ds.select(np.flatnonzero(is_val))}


def check_column(ds, text_column: str) -> None:
    if text_column not in ds.column_names:
        raise DataError(f"no column {text_column!r}: the dataset has {', '.join(map(repr, ds.column_names))}")


def char_vocab(datasets_: Iterable, text_column: str) -> list[str]:
    """The sorted unique characters of a text column over several datasets (the char tokenizer's
    vocabulary)."""
    chars: set[str] = set()
    for ds in datasets_:
        check_column(ds, text_column)
        for batch in ds.select_columns([text_column]).iter(batch_size=10_000):
            chars.update("".join(t or "" for t in batch[text_column]))
    return sorted(chars)


def _tokenize_batch(batch: dict, tokenizer: Tokenizer, text_column: str) -> dict:
    ids = [tokenizer.encode_document(t or "") for t in batch[text_column]]
    return {"ids": ids, "len": [len(x) for x in ids]}


def _chunks(tokenized, n_tokens: int) -> Iterator[np.ndarray]:
    """The ids of a tokenized dataset as arrays of about CHUNK_TOKENS, read with arrow (no Python lists)."""
    import pyarrow.compute as pc
    rows = max(1, int(len(tokenized) * CHUNK_TOKENS / max(n_tokens, 1)))
    table = tokenized.with_format("arrow")
    for start in range(0, len(tokenized), rows):
        yield pc.list_flatten(table[start:start + rows]["ids"]).to_numpy()


def prepare_hf(splits: dict, tokenizer: Tokenizer, out_dir: str | os.PathLike, text_column: str,
               num_proc: int | None) -> dict:
    """Tokenize {"train": Dataset, "val": Dataset} (one document per row) in num_proc processes, then write
    them in chunks sized by the data. Returns the meta written. datasets caches the tokenized rows, so a rerun
    after a failed write does not tokenize again."""
    import pyarrow.compute as pc
    lengths, tokenized = {}, {}
    for split, ds in splits.items():
        if len(ds) == 0:  # datasets' map of no rows has no columns to sum
            raise DataError(f"the {split} split is empty (no documents)")
        check_column(ds, text_column)
        tokenized[split] = ds.map(_tokenize_batch, batched=True, remove_columns=ds.column_names,
                                  fn_kwargs={"tokenizer": tokenizer, "text_column": text_column},
                                  num_proc=num_proc if num_proc and num_proc > 1 and len(ds) > 1 else None,
                                  desc=f"tokenizing {split}")
        lengths[split] = pc.sum(tokenized[split].with_format("arrow")["len"]).as_py()
    return write_bins(out_dir, tokenizer,
                      {s: (lengths[s], _chunks(t, lengths[s])) for s, t in tokenized.items()})


def default_num_proc() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


def add_hf_args(parser, out_dir: str | os.PathLike, dataset: str | None, config: str | None = None,
                data_files: str | None = None, val_fraction: float | None = 0.0005) -> None:
    """The arguments every HF-dataset preparer takes; the defaults are the named dataset's usual workflow.
    dataset=None leaves out --dataset, for a caller that names its source otherwise (data/custom's
    --input); val_fraction=None leaves out --val_fraction and --seed, for a caller that picks val
    otherwise."""
    if dataset is not None:
        parser.add_argument("--dataset", default=dataset,
                            help="hub id, save_to_disk folder, data file or folder of data files "
                                 "(.parquet/.jsonl/...)")
    parser.add_argument("--config", default=config,
                        help="the dataset's config (subset) name, if it has several")
    parser.add_argument("--data_files",
                        help="data files inside the dataset: 'glob[,glob...]' or 'split=glob[,...]'"
                        + (f" (default: {data_files} when --dataset is {dataset} or a local snapshot of it)"
                           if data_files else ""))
    parser.set_defaults(default_dataset=dataset, default_data_files=data_files)
    parser.add_argument("--text_column", default="text", help="the column that holds each document's text")
    if val_fraction is not None:
        parser.add_argument("--val_fraction", type=float, default=val_fraction,
                            help="share of the data for val: of the documents of a dataset without a "
                                 "validation split (picked at random), of the tokens of a text (its end)")
        parser.add_argument("--seed", type=int, default=2357, help="seed of the held-out val documents")
    parser.add_argument("--num_proc", type=int, default=default_num_proc(), help="processes for tokenizing")
    parser.add_argument("--out_dir", default=out_dir, help="where train.bin, val.bin and meta.json go")


# what the preparers' numeric flags allow (parse_args checks those a parser has)
FLAG_CHECKS = {"val_fraction": Check(lambda v: 0 < v < 1, "in (0, 1)"), "val_tokens": positive,
               "num_proc": positive, "seed": non_negative}


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parser's arguments, checked before anything is read or written: every bad flag is reported at once,
    one DataError line each (`--key=value: what is allowed`), argparse's own errors too (one line instead of
    its usage text)."""
    def error(message: str):
        raise DataError(message)
    parser.error = error
    args = parser.parse_args(argv)
    found = [f"--{name}={getattr(args, name)}: must be {rule.allowed}" for name, rule in FLAG_CHECKS.items()
             if getattr(args, name, None) is not None and not rule.ok(getattr(args, name))]
    if problem := unwritable(str(args.out_dir)):
        found.append(f"--out_dir={args.out_dir}: {problem}")
    if found:
        raise DataError(*found)
    return args


def _is_snapshot(source: str, data_files: str) -> bool:
    """Whether source is a local folder in which every glob of data_files matches a file: a snapshot of the
    hub repository those globs describe."""
    path = Path(source).expanduser()
    globs = [g.split("=", 1)[-1] for g in data_files.split(",")]
    return (path.is_dir() and not _is_saved_dataset(path)
            and all(any(p.is_file() for p in path.glob(g)) for g in globs))


def load_source(args, source: str | None = None):
    """The dataset (a DatasetDict) named by the arguments of add_hf_args (source, if given, instead of
    args.dataset). The default data_files apply to the default hub id and to a local snapshot of it."""
    source = source or args.dataset
    data_files = args.data_files
    if not data_files and args.default_data_files and (source == args.default_dataset
                                                       or _is_snapshot(source, args.default_data_files)):
        data_files = args.default_data_files
    if data_files:  # "a,b" -> [a, b]; "train=a,validation=b" -> {"train": a, "validation": b}
        globs = data_files.split(",")
        data_files = dict(g.split("=", 1) for g in globs) if all("=" in g for g in globs) else globs
    return load_dataset(source, args.config, num_proc=args.num_proc, data_files=data_files)


def load_splits(args, source: str | None = None) -> dict:
    """{"train", "val"} Datasets from the arguments of add_hf_args (source, if given, instead of
    args.dataset)."""
    return train_val_splits(load_source(args, source), args.val_fraction, args.seed)


def prepare_text_file(argv: list[str] | None, description: str, here: str | os.PathLike, url: str,
                      tokenizer_for: Callable[[str], Tokenizer]) -> dict:
    """The command line of a preparer for one text file: --input (default here/input.txt, downloaded from url
    if missing), --out_dir (default here) and --val_fraction; the text is one document, tokenized by
    tokenizer_for(text)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input",
                        help=f"a local copy of input.txt (default: {here}/input.txt, downloaded if missing)")
    parser.add_argument("--out_dir", default=here)
    parser.add_argument("--val_fraction", type=float, default=0.1)
    args = parse_args(parser, argv)
    text = read_text(args.input or download(url, os.path.join(here, "input.txt")))
    return prepare_documents([text], tokenizer_for(text), args.out_dir, args.val_fraction)


def run(main: Callable[[list[str]], object]) -> None:
    """Run a prepare.py main() on the command line's arguments, as train.py runs: a DataError is printed as
    one line "error: ..." (no traceback) and the exit status is 2."""
    cli(main)
