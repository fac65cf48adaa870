"""
TinyStories (Eldan & Li 2023: short stories in simple English written by GPT-3.5/GPT-4) with GPT-2's BPE, one
story per document, and the dataset's own validation split as val. Writes train.bin, val.bin and meta.json
beside this file.

The hub's parquet files (data/*.parquet), read here, hold the original stories, the GPT-3.5 and GPT-4 mix;
the GPT-4-only stories of the V2 files (TinyStoriesV2-GPT4-*.txt) are not among them.

$ python data/tinystories/prepare.py
$ python data/tinystories/prepare.py --dataset=path/to/local/copy    # a save_to_disk folder or parquet files
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import Tokenizer, add_hf_args, load_splits, parse_args, prepare_hf, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # the repo also holds the stories as .txt files: name the parquet files so only they are read
    add_hf_args(parser, HERE, dataset="roneneldan/TinyStories", val_fraction=0.01,
                data_files="train=data/train-*.parquet,validation=data/validation-*.parquet")
    args = parse_args(parser, argv)
    # uses the "validation" split; --val_fraction only matters for data without one
    splits = load_splits(args)
    return prepare_hf(splits, Tokenizer.gpt2(), args.out_dir, args.text_column, args.num_proc)


if __name__ == "__main__":
    run(main)

# Not run here (no network). For scale, from the hub (dataset info and viewer of roneneldan/TinyStories):
# 2,119,719 train stories (~1.9GB of text) and ~22k validation stories, in four train parquet files and one
# validation file.
