"""Read delimited text (plain or gzip) and Parquet files a chunk of rows at a time.

Text files: ``#`` lines are comments; the delimiter is a comma if the first
data line has one, otherwise whitespace; a first data line of numbers only
means there is no header (columns ``0``, ``1``, ``2`` ...). Parquet files are
read in record batches with pyarrow (imported only for Parquet).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from xdeepbedmap.survey.errors import SurveyError

__all__ = ["raw_chunks"]


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def raw_chunks(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    """Undecoded chunks of a file, ``chunksize`` rows at a time."""
    if _is_parquet(path):
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise SurveyError(
                f"{path}: reading Parquet needs pyarrow, which is not installed"
            ) from err
        import pyarrow as pa

        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as err:
            raise SurveyError(f"{path}: not a readable Parquet file ({err})") from err
        for batch in parquet.iter_batches(batch_size=chunksize):
            yield batch.to_pandas()
        return
    with pd.read_csv(
        path, sep=_delimiter(path), comment="#", chunksize=chunksize, header=_header(path)
    ) as reader:
        yield from reader


def _first_line(path: Path) -> str:
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        for line in fh:
            if line.strip() and not line.startswith("#"):
                return line
    raise SurveyError(f"{path}: the file holds no data line")


def _delimiter(path: Path) -> str:
    return "," if "," in _first_line(path) else r"\s+"


def _header(path: Path) -> int | None:
    """``None`` when the first data line is numbers only (plain x y z files)."""
    tokens = _first_line(path).replace(",", " ").split()
    try:
        [float(t) for t in tokens]
    except ValueError:
        return 0
    return None
