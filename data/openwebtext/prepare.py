"""
OpenWebText (Gokaslan & Cohen's open reproduction of GPT-2's WebText, 8,013,769 documents) with GPT-2's BPE.
It has only a train split, so a random 0.05% of the documents (seed 2357, nanoGPT's choice) is held out for
val. Writes train.bin, val.bin and meta.json beside this file.

$ python data/openwebtext/prepare.py --num_proc=16    # downloads the parquet files from the hub first
$ python data/openwebtext/prepare.py --dataset=path/to/snapshot    # a local copy of the hub repository

The hub repository Skylion007/openwebtext keeps its parquet files under plain_text/ (80 shards,
plain_text/train-000NN-of-00080.parquet); it also holds its old loading script openwebtext.py, which
datasets>=4 refuses to run, and the raw subsets/*.tar. So by default only plain_text/*.parquet is read, with
the parquet builder, from the hub or from a local snapshot of the repository (what `huggingface-cli download
Skylion007/openwebtext --repo-type dataset` writes): the script and the tar files are never touched. A folder
of other parquet files, or a single file, is read as it is. The hub revision is not pinned: none could be
checked offline, so the repository's current main branch is read.

Disk: ~24 GB of parquet in the hub cache (HF_HUB_CACHE), the datasets cache (HF_DATASETS_CACHE: an Arrow
copy of the text and the tokenized ids; its size was not measured here), and ~17 GB for train.bin.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import Tokenizer, add_hf_args, load_splits, parse_args, prepare_hf, run

HERE = Path(__file__).resolve().parent
DATA_FILES = "plain_text/*.parquet"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_hf_args(parser, HERE, dataset="Skylion007/openwebtext", data_files=DATA_FILES, val_fraction=0.0005)
    args = parse_args(parser, argv)
    splits = load_splits(args)
    return prepare_hf(splits, Tokenizer.gpt2(), args.out_dir, args.text_column, args.num_proc)


if __name__ == "__main__":
    run(main)

# Not run here (no network). For scale, nanoGPT's data/openwebtext/readme.md reports for its own split of the
# same documents (eot after each document, same 0.0005 fraction and seed, a different selection method):
# train.bin ~17GB, 9,035,582,198 tokens; val.bin ~8.5MB, 4,434,897 tokens.
