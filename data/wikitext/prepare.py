"""
WikiText-103 (Merity et al. 2016: Wikipedia Good and Featured articles), the raw (untokenized) version, with
GPT-2's BPE, using the dataset's own train and validation splits.

The dataset's rows are lines, not documents. Here a document is a whole article: rows are joined back (each
row already ends in its newline, blank rows are "") and a new article starts at each top-level title row " =
Title = ". Section headings (" = = Section = = ") stay inside their article. Joining the documents again gives
the split's rows back exactly. It is the rows that are reproduced, not the raw files wiki.*.raw byte for
byte: the hub's rows drop the raw files' blank lines.

$ python data/wikitext/prepare.py
$ python data/wikitext/prepare.py --dataset=path/to/local/copy      # a save_to_disk folder or parquet files
"""
import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import Tokenizer, add_hf_args, check_column, load_splits, parse_args, prepare_hf, run

HERE = Path(__file__).resolve().parent
TITLE = re.compile(r" = [^=](.*[^=])? = \n?")  # " = Title = " but not " = = Section = = "


def articles(lines: Iterable[str]) -> Iterator[str]:
    """Join WikiText rows into articles; rows before the first title go with the first article."""
    article: list[str] = []
    for line in lines:
        if TITLE.fullmatch(line) and any(row.strip() for row in article):
            yield "".join(article)
            article = []
        article.append(line)
    if article:
        yield "".join(article)


def as_articles(ds, text_column: str):
    """A Dataset with one article per row (column "text") from a Dataset with one line per row."""
    from datasets import Dataset
    check_column(ds, text_column)
    lines = (t for batch in ds.select_columns([text_column]).iter(batch_size=10_000)
             for t in batch[text_column])
    return Dataset.from_dict({"text": list(articles(lines))})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_hf_args(parser, HERE, dataset="Salesforce/wikitext", config="wikitext-103-raw-v1")
    args = parse_args(parser, argv)
    splits = {name: as_articles(ds, args.text_column) for name, ds in load_splits(args).items()}
    return prepare_hf(splits, Tokenizer.gpt2(), args.out_dir, "text", args.num_proc)


if __name__ == "__main__":
    run(main)

# Not run here (no network). For scale, Merity et al. (2016, table 1) count 28,475 train and 60 validation
# articles, 103,227,021 and 217,646 words (their tokenization, not GPT-2 tokens).
