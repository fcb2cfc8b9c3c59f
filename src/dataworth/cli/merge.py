"""``dataworth merge``: combine partial Monte Carlo runs of the same method and data.

The inputs are result files written by ``dataworth value --save-result``: they hold the
sampling statistics (the state) behind the values, which ``ValuationResult.__add__`` merges
exactly. A CSV of values does not (a mean and its standard error cannot be pooled with another
run's without the counts of every player's samples and the estimator's state), so a CSV is
refused with one line saying which files to merge instead.
"""

from __future__ import annotations

from pathlib import Path

import click

from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    catch_write_errors,
    write_values,
)
from dataworth.engine.reliability import reliability, reliability_notes
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["merge"]

#: The first bytes of an npz file (a zip archive).
_ZIP_MAGIC = b"PK\x03\x04"


@click.command()
@click.argument("results", nargs=-1, required=True, type=INPUT_FILE)
@click.option(
    "--out", "out", type=OUTPUT_FILE, default=None, help="Output CSV (default: standard output)."
)
@click.option(
    "--save-result",
    type=OUTPUT_FILE,
    default=None,
    help="Also save the merged result (npz), to merge again or report on.",
)
def merge(results: tuple[str, ...], out: str | None, save_result: str | None) -> None:
    """Merge partial runs (RESULTS: files saved with `dataworth value --save-result`) of the
    same method and data, run with different --seed, and write index,value,stderr,count.

    The values are those of one run with all their samples together. CSV outputs of `value`
    cannot be merged: they lack the sampling statistics.
    """
    if len(results) < 2:
        raise DataworthError("give at least two result files to merge.")
    loaded = [_load(path) for path in results]
    notes = Notes()
    _check_same_game(results, loaded, notes)
    merged = loaded[0]
    for path, part in zip(results[1:], loaded[1:], strict=True):
        try:
            merged = merged + part
        except DataworthError as exc:
            raise DataworthError(f"cannot merge {path} into {results[0]}: {exc}") from None
    metadata = dict(merged.metadata)
    metadata.update(reliability(merged.values, merged.stderr, None, 0))
    metadata["merged_from"] = [str(Path(p)) for p in results]
    merged = ValuationResult(
        values=merged.values,
        stderr=merged.stderr,
        counts=merged.counts,
        labels=merged.labels,
        method=merged.method,
        params=merged.params,
        metadata=metadata,
        kind=merged.kind,
        state=merged.state,
        estimator=merged.estimator,
    )
    write_values(out, merged)
    if save_result:
        with catch_write_errors(save_result):
            merged.save(save_result)
    samples = metadata.get("n_updates")
    extra = f": {samples} samples" if samples is not None else ""
    if "n_evaluations" in metadata:
        extra += f" ({metadata['n_evaluations']} utility evaluations)"
    what = "groups" if merged.kind == "group" else "rows"
    click.echo(
        f"merged {len(results)} {merged.method} results over {len(merged)} {what}{extra}"
        + (f" -> {out}" if out else ""),
        err=True,
    )
    notes.extend(metadata.get("notes", []))
    notes.extend(reliability_notes(metadata, "groups" if merged.kind == "group" else "values"))
    notes.flush()


def _load(path: str) -> ValuationResult:
    """The result saved at ``path``; a CSV (or any file that is not an npz archive) is refused
    with the way to get a file that can be merged."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise DataworthError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if head != _ZIP_MAGIC:
        raise DataworthError(
            f"{path} is not a result file: merging needs the sampling statistics that "
            "`dataworth value --save-result RUN.npz` saves, and a CSV of values does not hold "
            "them; rerun each part with --save-result (and its own --seed) and merge those files."
        )
    result = ValuationResult.load(path)
    if result.state is None:
        raise DataworthError(
            f"{path} holds {result.method} values without sampling statistics (not a Monte "
            "Carlo run): there is nothing to merge."
        )
    return result


def _check_same_game(paths: tuple[str, ...], results: list[ValuationResult], notes: Notes) -> None:
    """Refuse parts over different data or settings, or with the same seed (the same samples,
    counted twice); note when the models' settings differ."""
    first, reference = paths[0], results[0]
    seeds: dict[object, str] = {}
    for path, result in zip(paths, results, strict=True):
        seed = result.params.get("random_state")
        if seed is not None and seed in seeds:
            raise DataworthError(
                f"{seeds[seed]} and {path} were both run with random_state {seed}: they hold "
                "the same samples, which a merge would count twice; rerun one part with "
                "another --seed."
            )
        seeds.setdefault(seed, path)
        if result is reference:
            continue
        mine = reference.metadata.get("fingerprint_parts")
        theirs = result.metadata.get("fingerprint_parts")
        if isinstance(mine, dict) and isinstance(theirs, dict):
            if mine.get("data") != theirs.get("data"):
                raise DataworthError(
                    f"{path} values other data than {first} (the rows valued or the valuation "
                    "set differ; without --valid the valuation set is split off with --seed: "
                    "give every part the same --valid file)."
                )
            if mine.get("utility") != theirs.get("utility"):
                raise DataworthError(
                    f"{path} was scored otherwise than {first} (--scoring, --group, "
                    "--default-score or --catch-errors differ)."
                )
            if mine.get("model") != theirs.get("model"):
                notes.append(
                    f"the model's settings differ between {first} and {path} (as they do when "
                    "--seed sets the model's random_state); merged as runs of one model."
                )
        elif reference.metadata.get("fingerprint") != result.metadata.get("fingerprint"):
            notes.append(
                f"{first} and {path} have different fingerprints (data, model or settings) and "
                "too little detail to say which: make sure they value the same data."
            )
