"""
FineWeb-Edu (HuggingFaceFW/fineweb-edu: the web pages of FineWeb that a classifier scored as educational)
with GPT-2's BPE, one page per document. By default its sample-10BT config: 9.67M documents, about 10B GPT-2
tokens, in the hub files sample/10BT/*.parquet. --config=sample-100BT takes the bigger sample
(sample/100BT/*.parquet). Writes train.bin, val.bin and meta.json beside this file.

$ python data/fineweb_edu/prepare.py --num_proc=16    # downloads the parquet files from the hub first
$ python data/fineweb_edu/prepare.py --dataset=path/to/snapshot    # a local copy of the hub repository
$ python data/fineweb_edu/prepare.py --config=sample-100BT

Each config is read as its files, named here (sample-10BT -> sample/10BT/*.parquet), from the hub or from a
local snapshot of the repository (what `huggingface-cli download HuggingFaceFW/fineweb-edu --repo-type
dataset` writes): a snapshot holds other configs' files too (sample/100BT/, data/CC-MAIN-*/), and only the
chosen config's are read (a folder without them is an error, not read whole). --data_files names other files
instead, e.g. 'data/CC-MAIN-2024-10/*.parquet' or, for a folder of parquet files, '*.parquet'.
The hub revision is not pinned: none could be checked offline, so the repository's current main branch is
read.

Val: FineWeb-Edu has only a train split. As in the public "reproduce GPT-2" workflow (Karpathy's
build-nanogpt, which keeps its first ~100M-token shard for val), val here is the first documents in file
order, up to the first that brings them to --val_tokens (default 100M) tokens; the rest is train. Tokens are
counted as stored (the <|endoftext|> before each document plus its text), from the dataset's token_count
column when it has one, else by tokenizing. Data smaller than that gives val at most half of its documents,
at least one.

Disk: sample-10BT is about 10B tokens, so ~20 GB for train.bin (uint16); add the downloaded parquet files
(hub cache, HF_HUB_CACHE) and the datasets cache (HF_DATASETS_CACHE: an Arrow copy of the text and the
tokenized ids; its size was not measured here). sample-100BT needs about ten times as much.

Memory stays bounded (documents are tokenized into the datasets cache and written in chunks), every long phase
has a progress bar, a rerun after an interruption reuses the finished tokenization from the datasets cache,
and train.bin/val.bin are replaced only once complete.
"""
import argparse
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import (DataError, Tokenizer, add_hf_args, check_column, load_source, parse_args,
                         prepare_hf, run)

HERE = Path(__file__).resolve().parent
HUB_ID = "HuggingFaceFW/fineweb-edu"
# config -> its files in the repository; not the dataset card's, so that a local snapshot reads the same files
CONFIG_FILES = {"sample-10BT": "sample/10BT/*.parquet", "sample-100BT": "sample/100BT/*.parquet"}
VAL_TOKENS = 100_000_000


def documents(ds):
    """The one Dataset of documents in a DatasetDict (FineWeb-Edu has only a train split)."""
    import datasets
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DataError(f"expected one split of documents, got {', '.join(ds)}")
        ds = next(iter(ds.values()))
    if len(ds) < 2:
        raise DataError(f"{len(ds)} document(s) are too few to split into train and val")
    return ds


def val_documents(ds, val_tokens: int, tokenizer: Tokenizer, text_column: str) -> int:
    """How many of ds's first documents make val: up to the one that brings them to val_tokens tokens, at
    most half of them, at least one. Only those documents are counted, so the cost is bounded by
    val_tokens."""
    limit = max(1, len(ds) // 2)
    column = "token_count" if "token_count" in ds.column_names else text_column
    n, counted = 0, 0
    with tqdm(total=val_tokens, unit="tok", unit_scale=True, desc=f"counting val tokens ({column})") as bar:
        for batch in ds.select_columns([column]).iter(batch_size=1000):
            for value in batch[column]:
                if column == "token_count":
                    size = 1 + int(value or 0)  # the <|endoftext|> before the document, then its text
                else:
                    size = len(tokenizer.encode_document(value or ""))
                n, counted = n + 1, counted + size
                bar.update(size)
                if counted >= val_tokens or n >= limit:
                    return n
    return n


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_hf_args(parser, HERE, dataset=HUB_ID, config="sample-10BT", val_fraction=None)
    parser.add_argument("--val_tokens", type=int, default=VAL_TOKENS,
                        help="val is the first documents up to about this many tokens (at most half of them)")
    args = parse_args(parser, argv)
    if not args.data_files and not Path(args.dataset).expanduser().is_file():  # the hub or a snapshot
        if args.config not in CONFIG_FILES:
            raise DataError(f"unknown config {args.config!r}: expected {' or '.join(CONFIG_FILES)}, "
                            f"or name the files with --data_files")
        args.data_files = CONFIG_FILES[args.config]
    ds = documents(load_source(args))
    check_column(ds, args.text_column)
    tokenizer = Tokenizer.gpt2()
    n_val = val_documents(ds, args.val_tokens, tokenizer, args.text_column)
    splits = {"train": ds.select(range(n_val, len(ds))), "val": ds.select(range(n_val))}
    return prepare_hf(splits, tokenizer, args.out_dir, args.text_column, args.num_proc)


if __name__ == "__main__":
    run(main)

# Not run here (no network): the sizes above (9.67M documents, ~10B GPT-2 tokens in sample-10BT) are the
# hub's figures, not measured here.
