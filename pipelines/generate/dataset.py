"""Generate one data set: simulate once, shape and break each stream, write its files."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.contract import STREAMS
from pipelines.generate.bad_rows import corrupt
from pipelines.generate.config import GeneratorConfig
from pipelines.generate.randomness import Rng
from pipelines.generate.simulation import persons_for, simulate
from pipelines.generate.streams import STREAM_BUILDERS
from pipelines.generate.writing import WrittenFile, write_stream

if TYPE_CHECKING:
    from rich.console import Console


def generate_dataset(
    out_dir: Path, config: GeneratorConfig, console: Console | None = None
) -> list[WrittenFile]:
    """Write the three streams into ``out_dir`` (created if needed) and return what was written.

    Files are ``<stream>.<ext>``, or ``<stream>-0001.<ext>`` … when ``files_per_stream`` > 1 (ingestion
    picks the stream by the file-name prefix). Each file is written under a temporary name and renamed when
    complete, so a concurrent ingest never sees half a file. With a console, a table of the files and the
    throughput is printed.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    persons = persons_for(config)
    rng = Rng(config.seed)
    sim = simulate(config, persons, rng)

    def build_and_write(stream: str) -> list[WrittenFile]:
        frame = corrupt(stream, STREAM_BUILDERS[stream](sim, config, rng), config.bad_rows_ratio, rng)
        return write_stream(out_dir, stream, frame, config)

    # events take most of the time: the small streams are built and written beside them on the other core
    with ThreadPoolExecutor(max_workers=2) as pool:
        written = [file for done in pool.map(build_and_write, STREAMS) for file in done]

    if console is not None:
        from pipelines.cli_output import print_generate_summary

        print_generate_summary(console, out_dir, written, config, persons, time.perf_counter() - started)
    return written
