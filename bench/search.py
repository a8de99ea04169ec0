"""Search benchmark: our client-side search over decrypted rows against Orthanc QIDO-RS.

Run from the repository root: ``.venv/bin/python bench/search.py [--sizes 1000,10000]
[--quick] [--skip-orthanc]``. For each size (the corpus of a smaller size is a prefix of the
larger one, so both servers are filled incrementally) it measures:

- *ours, cold*: ``ApiClient.list_studies()`` plus opening every row (``load_rows``) plus
  building the ``WorklistIndex`` and one search, as the worklist does when it opens; median of
  3;
- *ours, warm*: ``WorklistIndex.search()`` alone over the rows already decrypted, for each
  query; median of 20 repeats;
- *Orthanc*: the equivalent QIDO-RS ``GET /dicom-web/studies`` query, median of 20, on a
  fresh Orthanc holding the same studies (``make_search_corpus`` files, 4 upload clients).

Our studies are made through the real API for one account, quickly: each study is sealed the
way the uploader seals it (``StudySeal``: wrapped key, metadata box, signed manifest) with one
tiny sealed blob standing for its one instance (``put_blob``), then committed; no DICOM file
is read. Bars (issue 4): warm at most the QIDO median at each size; cold under 1 s at 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

import synthetic
from accounts import _outbox_tokens, running_server
from orthanc import Orthanc

from securepacs.client.accounts import AccountFlows
from securepacs.client.api import b64
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.library import load_rows, open_row
from securepacs.client.scanned import StudyAttributes
from securepacs.client.sealing import StudySeal
from securepacs.client.search import StudyFilter, WorklistIndex
from securepacs.crypto import ManifestEntry, StreamSealer, ciphertext_hash, study_uid_tag

if TYPE_CHECKING:
    from collections.abc import Sequence

    from securepacs.client.api import ApiClient
    from securepacs.crypto import AccountKeys

EMAIL: Final = "bench-search@example.org"
# A throwaway account on a throwaway server.
PASSWORD: Final = "correct horse battery staple search bench"  # noqa: S105
SIZES: Final = (1_000, 10_000, 100_000)
CONCURRENCY: Final = 8
FILL_BATCH: Final = 500
WARM_REPEATS: Final = 20
QIDO_REPEATS_LARGE: Final = 5
COLD_REPEATS: Final = 3
COLD_BAR_SIZE: Final = 10_000
COLD_BAR_SECONDS: Final = 1.0
# The stand-in for each study's one instance: a few bytes, sealed like a real file.
TINY_PLAINTEXT: Final = b"\x00" * 64
TODAY: Final = date(2026, 1, 1)


@dataclass(frozen=True)
class Query:
    """One search, in our filter's terms and in QIDO-RS's."""

    name: str
    ours: StudyFilter
    qido: dict[str, str]


def queries(corpus: Sequence[synthetic.CorpusStudy]) -> list[Query]:
    """Four queries a worklist user makes, with targets taken from the corpus itself."""
    family = corpus[0].patient_name.split("^")[0]
    patient = corpus[len(corpus) // 2].patient_id
    accession = corpus[len(corpus) // 3].accession_number
    return [
        Query(
            f"name {family}*", StudyFilter(patient_name=f"{family}*"), {"PatientName": f"{family}*"}
        ),
        Query("patient ID", StudyFilter(patient_id=patient), {"PatientID": patient}),
        Query("accession", StudyFilter(accession_number=accession), {"AccessionNumber": accession}),
        Query(
            "CT in 2020",
            StudyFilter(modality="CT", date_from=date(2020, 1, 1), date_to=date(2020, 12, 31)),
            {"ModalitiesInStudy": "CT", "StudyDate": "20200101-20201231"},
        ),
    ]


# -- filling our server -------------------------------------------------------------------------


def attributes_of(study: synthetic.CorpusStudy) -> StudyAttributes:
    return StudyAttributes(
        study_instance_uid=study.study_instance_uid,
        patient_name=study.patient_name,
        patient_id=study.patient_id,
        patient_sex=study.patient_sex,
        accession_number=study.accession_number,
        referring_physician=study.referring_physician_name,
        study_date=study.study_date,
        study_time=study.study_time,
        study_description=study.study_description,
        modalities=(study.modality,),
    )


def seal_study(
    keys: AccountKeys, study: synthetic.CorpusStudy
) -> tuple[str, bytes, str, dict[str, object]]:
    """Seal one study as the uploader would, with one tiny blob; (blob id, blob, study id, body)."""
    seal = StudySeal(keys)
    sealer = StreamSealer.new(seal.study_key)
    payload = b"".join(sealer.seal([TINY_PLAINTEXT]))
    entry = ManifestEntry(
        file_id=sealer.file_id,
        plaintext_size=len(TINY_PLAINTEXT),
        ciphertext_size=len(payload),
        ciphertext_hash=ciphertext_hash(payload),
        series_uid=study.series_instance_uid,
        instance_uid=study.sop_instance_uid,
    )
    body = {
        "uid_tag": b64(study_uid_tag(keys.account_key, study.study_instance_uid)),
        "wrapped_key": b64(seal.wrapped_key()),
        "metadata": b64(seal.metadata(attributes_of(study), instance_count=1)),
        "manifest": b64(seal.manifest(1, [entry])),
        "manifest_version": 1,
        "blob_ids": [sealer.file_id.hex()],
    }
    return sealer.file_id.hex(), payload, seal.study_id.hex(), body


async def fill(api: ApiClient, keys: AccountKeys, studies: Sequence[synthetic.CorpusStudy]) -> None:
    """Create the studies: blobs many to a request (as the uploader sends small files), then
    one commit per study with ``CONCURRENCY`` in flight."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def commit(study_id: str, body: dict[str, object]) -> None:
        async with gate:
            await api.commit_study(study_id, body)

    for start in range(0, len(studies), FILL_BATCH):
        sealed = [seal_study(keys, study) for study in studies[start : start + FILL_BATCH]]
        await api.put_blobs(
            [(blob_id, ciphertext_hash(payload), payload) for blob_id, payload, _, _ in sealed]
        )
        async with asyncio.TaskGroup() as group:
            for _, _, study_id, body in sealed:
                group.create_task(commit(study_id, body))


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Measurement:
    size: int
    fill_seconds: float = 0.0
    cold_seconds: float = 0.0
    list_seconds: float = 0.0
    open_seconds: float = 0.0
    warm_ms: dict[str, float] | None = None
    ours_counts: dict[str, int] | None = None
    qido_ms: dict[str, float] | None = None
    qido_counts: dict[str, int] | None = None


async def measure_ours(
    api: ApiClient, keys: AccountKeys, wanted: list[Query], measurement: Measurement
) -> None:
    colds: list[float] = []
    index = WorklistIndex([])
    for _ in range(COLD_REPEATS):
        started = time.perf_counter()
        rows, failed = await load_rows(api, keys)
        index = WorklistIndex(row.attributes for row in rows)
        index.search(wanted[0].ours, TODAY)
        colds.append(time.perf_counter() - started)
        if failed or len(rows) != measurement.size:
            raise RuntimeError(f"{len(rows)} rows opened, {len(failed)} failed")
    measurement.cold_seconds = statistics.median(colds)
    # Where the cold time goes: the listing (HTTP and decoding) against opening the boxes.
    started = time.perf_counter()
    summaries = await api.list_studies()
    listed = time.perf_counter()
    for summary in summaries:
        open_row(keys, summary)
    measurement.list_seconds = listed - started
    measurement.open_seconds = time.perf_counter() - listed
    measurement.warm_ms, measurement.ours_counts = {}, {}
    for query in wanted:
        times = []
        for _ in range(WARM_REPEATS):
            started = time.perf_counter()
            found = index.search(query.ours, TODAY)
            times.append(time.perf_counter() - started)
        measurement.warm_ms[query.name] = statistics.median(times) * 1e3
        measurement.ours_counts[query.name] = len(found)


async def bench_ours(
    sizes: Sequence[int], corpus: Sequence[synthetic.CorpusStudy], scratch: Path
) -> list[Measurement]:
    server_dir = scratch / "server"
    (server_dir / "data").mkdir(parents=True)
    database_url = f"sqlite+aiosqlite:///{server_dir / 'securepacs.db'}"
    results: list[Measurement] = []
    async with (
        running_server(database_url, server_dir / "data") as server,
        HttpxTransport(server.base_url, timeout=300) as transport,
    ):
        flows = AccountFlows(transport)
        await flows.register(EMAIL, PASSWORD)
        await flows.confirm(_outbox_tokens(server.data_dir / "outbox")[EMAIL])
        unlocked = await flows.login(EMAIL, PASSWORD)
        done = 0
        for size in sizes:
            measurement = Measurement(size)
            started = time.perf_counter()
            await fill(flows.api, unlocked.keys, corpus[done:size])
            measurement.fill_seconds = time.perf_counter() - started
            print(
                f"ours: {size - done} studies added in {measurement.fill_seconds:.1f} s "
                f"({(size - done) / measurement.fill_seconds:.0f}/s)",
                flush=True,
            )
            done = size
            await measure_ours(flows.api, unlocked.keys, queries(corpus[:size]), measurement)
            results.append(measurement)
    return results


def bench_orthanc(
    sizes: Sequence[int],
    paths: Sequence[Path],
    corpus: Sequence[synthetic.CorpusStudy],
    results: Sequence[Measurement],
) -> None:
    with Orthanc() as server:
        done = 0
        for size, measurement in zip(sizes, results, strict=True):
            upload = server.upload(paths[done:size], clients=4)
            print(
                f"Orthanc: {upload.instances} studies added in {upload.seconds:.1f} s "
                f"({upload.instances_per_second:.0f}/s)",
                flush=True,
            )
            done = size
            measurement.qido_ms, measurement.qido_counts = {}, {}
            for query in queries(corpus[:size]):
                measurement.qido_counts[query.name] = len(server.find_studies(query.qido))
                # Orthanc takes seconds per wildcard query at 100,000 studies: fewer repeats.
                repeat = WARM_REPEATS if size <= 10_000 else QIDO_REPEATS_LARGE
                latencies = server.qido(query.qido, repeat=repeat)
                measurement.qido_ms[query.name] = statistics.median(latencies) * 1e3


# -- report -------------------------------------------------------------------------------------


def table(results: Sequence[Measurement]) -> str:
    lines = [
        f"{'size':>7} {'query':22} {'hits':>6} {'cold s':>7} {'warm ms':>8} {'QIDO ms':>8} "
        f"{'warm/QIDO':>9}"
    ]
    for m in results:
        for index, name in enumerate(m.warm_ms or {}):
            warm = (m.warm_ms or {})[name]
            qido = (m.qido_ms or {}).get(name)
            hits = (m.ours_counts or {})[name]
            other = (m.qido_counts or {}).get(name)
            hit_text = f"{hits}" if other in (None, hits) else f"{hits}/{other}"
            cold = f"{m.cold_seconds:7.3f}" if index == 0 else f"{'':7}"
            qido_text = f"{qido:8.2f}" if qido is not None else f"{'-':>8}"
            ratio = f"{warm / qido:9.3f}" if qido else f"{'-':>9}"
            lines.append(
                f"{m.size:7d} {name:22} {hit_text:>6} {cold} {warm:8.2f} {qido_text} {ratio}"
            )
    return "\n".join(lines)


def verdicts(results: Sequence[Measurement]) -> list[str]:
    lines = []
    for m in results:
        lines.append(
            f"{m.size:>7}: cold {m.cold_seconds:.3f} s; one pass: list_studies "
            f"{m.list_seconds:.3f} s, opening the rows {m.open_seconds:.3f} s"
        )
        if m.qido_ms:
            worst = max(
                (m.warm_ms or {})[name] / qido for name, qido in m.qido_ms.items() if qido > 0
            )
            state = "met" if worst <= 1.0 else "MISSED"
            lines.append(f"{m.size:>7}: warm <= QIDO on every query: {state} (worst {worst:.3f})")
        if m.size == COLD_BAR_SIZE:
            state = "met" if m.cold_seconds < COLD_BAR_SECONDS else "MISSED"
            lines.append(f"{m.size:>7}: cold < {COLD_BAR_SECONDS:.0f} s: {state}")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated study counts (default 1000,10000,100000)",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 studies only")
    parser.add_argument("--skip-orthanc", action="store_true", help="no QIDO-RS baseline")
    args = parser.parse_args(argv)
    sizes = [1_000] if args.quick else sorted({int(s) for s in args.sizes.split(",") if s})
    corpus = synthetic.corpus_studies(sizes[-1])
    with tempfile.TemporaryDirectory(prefix="securepacs-search-bench-") as folder:
        scratch = Path(folder)
        results = asyncio.run(bench_ours(sizes, corpus, scratch))
        if not args.skip_orthanc:
            started = time.perf_counter()
            paths = synthetic.make_search_corpus(scratch / "corpus", studies=sizes[-1])
            print(f"corpus files written in {time.perf_counter() - started:.1f} s", flush=True)
            bench_orthanc(sizes, paths, corpus, results)
    print()
    print(table(results))
    print()
    for line in verdicts(results):
        print(line)


if __name__ == "__main__":
    main()
