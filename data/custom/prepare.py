"""
Your own data, with a char or GPT-2 BPE tokenizer. --input is one of:
  a text file                       one document (e.g. a book); the first 1 - val_fraction of its tokens train
  a folder of .txt files            each file a document (recursive, in path order); split like a text file
  an HF dataset                     a save_to_disk folder, .parquet/.jsonl/.json/.csv files or a folder of
                                    them, or a hub id; one document per row of --text_column; its validation
                                    split is val, else a random val_fraction of the documents (--seed)
The char vocabulary is the sorted unique characters of the data. Writes train.bin, val.bin and meta.json in
--out_dir (default: beside this file).

$ python data/custom/prepare.py --input=my_book.txt --tokenizer=char --out_dir=data/my_book
$ python data/custom/prepare.py --input=stories.jsonl --text_column=story --out_dir=data/stories
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import (DataError, Tokenizer, add_hf_args, char_vocab, is_hf_source, load_splits,
                         parse_args, prepare_documents, prepare_hf, read_documents, run)

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True,
                        help="text file, folder of .txt files, or HF dataset (see above)")
    parser.add_argument("--tokenizer", default="gpt2", help="char or gpt2")
    add_hf_args(parser, HERE, dataset=None, val_fraction=0.1)
    args = parse_args(parser, argv)
    if args.tokenizer not in ("char", "gpt2"):
        raise DataError(f"unknown tokenizer {args.tokenizer!r}: expected 'char' or 'gpt2'")

    if is_hf_source(args.input):
        splits = load_splits(args, args.input)
        if args.tokenizer == "char":
            chars = char_vocab(splits.values(), args.text_column)
            if not chars:
                raise DataError(f"no text in column {args.text_column!r} of {args.input}")
            tokenizer = Tokenizer.char(chars)
        else:
            tokenizer = Tokenizer.gpt2()
        return prepare_hf(splits, tokenizer, args.out_dir, args.text_column, args.num_proc)

    docs = read_documents(args.input)
    tokenizer = Tokenizer.from_text("".join(docs)) if args.tokenizer == "char" else Tokenizer.gpt2()
    return prepare_documents(docs, tokenizer, args.out_dir, args.val_fraction)


if __name__ == "__main__":
    run(main)

# Produces whatever you give it; data/shakespeare_char and data/shakespeare are this with Tiny Shakespeare.
