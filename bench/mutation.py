"""Mutation score: ``python -m bench mutation [MODULE ...] [--report] [--max-children N]``.

mutmut (the ``[mutation]`` extra) copies the code into ``mutants/``, makes small
changes to it one at a time (an operator, a constant, a condition, a dropped
argument...) and runs, for each, the fast unit tests that call the function it
changed (``[tool.mutmut]`` in pyproject.toml names the test files). A mutant that
makes a test fail is killed; one that passes every test survived: either a bug the
tests would let through, or an equivalent mutant (same behaviour, listed below with
why). The modules scored are the ones where a silent bug costs most; for some only
the functions named here are measured (the rest of the module is other work).

Prints, per module, killed / scored (equivalent mutants are not scored) and every
survivor with file:line and its diff. ``--report`` prints the last run's results
without running. Exit 1 if a module is under the target.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.90


@dataclass(frozen=True)
class Scope:
    """One module scored: its file and the mutant names measured (mutmut's names:
    ``module.x_function__mutmut_N``, ``module.xǁClassǁmethod__mutmut_N``)."""

    path: str
    patterns: tuple[str, ...]
    what: str


def _functions(module: str, *names: str) -> tuple[str, ...]:
    out = []
    for name in names:
        cls, _, method = name.rpartition(".")
        out.append(
            f"{module}.xǁ{cls}ǁ{method}__mutmut_*" if cls else f"{module}.x_{name}__mutmut_*"
        )
    return tuple(out)


SCOPES = {
    "encoder": Scope(
        "producer/kafka/encoding.py", ("producer.kafka.encoding.*",), "the whole module"
    ),
    "ledger": Scope(
        "producer/simulation/ledger.py", ("producer.simulation.ledger.*",), "the whole module"
    ),
    "pacing": Scope(
        "producer/simulation/pacing.py", ("producer.simulation.pacing.*",), "the whole module"
    ),
    "compatibility": Scope(
        "producer/contract/compat.py", ("producer.contract.compat.*",), "the whole module"
    ),
    "config-masking": Scope(
        "producer/config.py",
        (
            "producer.config.xǁSecretǁ*",
            "producer.config.xǁClientConfigǁ*",
            *_functions(
                "producer.config",
                "is_secret",
                "mask_url",
                "_split_userinfo",
                "_reveal",
                "describe",
                "_set_aside",
            ),
        ),
        "Secret, ClientConfig, is_secret, mask_url, _split_userinfo, _reveal, describe,"
        " _set_aside (not the parsing and mapping of keys)",
    ),
    "silver-rules": Scope(
        "consumers/silver.py",
        _functions(
            "consumers.silver",
            "SilverJob._check",
            "SilverStats.count",
            "_bronze_where",
            "_last_offsets",
        ),
        "SilverJob._check (the quality rules), SilverStats.count, _bronze_where,"
        " _last_offsets (not the Delta I/O of a run)",
    ),
    "silver-dedupe": Scope("consumers/identity.py", ("consumers.identity.*",), "the whole module"),
    "silver-decode": Scope("consumers/columnar.py", ("consumers.columnar.*",), "the whole module"),
    "reconciliation": Scope(
        "consumers/reconcile.py", ("consumers.reconcile.*",), "the whole module"
    ),
}

# Survivors that behave exactly as the original code does, and why. Keyed by mutmut's
# name, which stays the same while the function is unchanged.
_AVRO_PATH = "in the locations Avro's checker gives"
EQUIVALENT: dict[str, str] = {
    **dict.fromkeys(
        [
            "producer.contract.compat.x__field_at__mutmut_3",
            "producer.contract.compat.x__field_at__mutmut_4",
        ],
        "strip() of another set: the empty parts a leading '/' leaves are filtered out anyway",
    ),
    "producer.contract.compat.x__field_at__mutmut_31": (
        f"skipping one part more after a field index: {_AVRO_PATH} that part is 'type' or the end"
    ),
    **dict.fromkeys(
        [
            "producer.contract.compat.x__field_at__mutmut_34",
            "producer.contract.compat.x__field_at__mutmut_35",
        ],
        "not recognising 'type': the loop's last step skips any other part the same way",
    ),
    "producer.contract.compat.x__field_at__mutmut_40": (
        f"'or' for 'and': {_AVRO_PATH} a union is followed by a branch index (or 'type')"
    ),
    "producer.contract.compat.x__field_at__mutmut_47": (
        f"'or' for 'and': {_AVRO_PATH} an array is followed by 'items' (or 'type')"
    ),
    "producer.contract.compat.x__field_at__mutmut_52": (
        f"'or' for 'and': {_AVRO_PATH} a map is followed by 'values' (or 'type')"
    ),
    **dict.fromkeys(
        [
            "producer.contract.compat.x_check_reader_writer__mutmut_14",
            "producer.contract.compat.x_check_reader_writer__mutmut_15",
        ],
        "the 'INCOMPATIBLE' fallback is never reached: Avro gives every incompatible result a kind",
    ),
    "producer.contract.compat.x_check_reader_writer__mutmut_39": (
        "lstrip('XX/XX') strips X and /: a path is 'fields/...', never starting with X"
    ),
    **dict.fromkeys(
        [f"producer.contract.compat.x_check_reader_writer__mutmut_{n}" for n in (42, 45, 46)],
        "zip(strict=...) of two lists of one length (paths is made from field_results)",
    ),
    **dict.fromkeys(
        [
            f"producer.contract.compat.xǁ_FieldTracingCheckerǁget_compatibility__mutmut_{n}"
            for n in (13, 14)
        ],
        "len(location) >= 3 for >= 2: a field's location starts with the root, so has 3 parts",
    ),
    **dict.fromkeys(
        ["producer.config.x__set_aside__mutmut_5", "producer.config.x__set_aside__mutmut_7"],
        "the mask of a key set aside: no key in IGNORED_KEYS is a secret (a test asserts it)",
    ),
    "producer.config.x__split_userinfo__mutmut_14": (
        "rpartition for partition on user:password: the two parts are joined again with ':'"
    ),
    "producer.config.xǁSecretǁ__hash____mutmut_1": (
        "a constant hash is still a correct hash: equal secrets hash equal"
    ),
    "producer.contract.compat.x__field_at__mutmut_44": (
        "stepping back one part after a union branch: that part ('type' or the index) is"
        " skipped again, the node being no longer a union"
    ),
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__packed__mutmut_{n}" for n in (5, 6, 7)]
        + [f"producer.kafka.encoding.x__boolean__mutmut_{n}" for n in (7, 8, 9)]
        + [f"producer.kafka.encoding.x__bytes__mutmut_{n}" for n in (3, 4, 5)]
        + [f"producer.kafka.encoding.x__string__mutmut_{n}" for n in (3, 4, 5)]
        + [f"producer.kafka.encoding.x__decimal__mutmut_{n}" for n in (56, 57, 58, 59)]
        + [f"producer.kafka.encoding.x__long__mutmut_{n}" for n in (3, 4, 5, 13, 14, 15)]
        + [f"producer.kafka.encoding.x__null__mutmut_{n}" for n in (2, 3, 4, 5)],
        "the text of an error the encoder catches (never shown): fastavro then writes"
        " the record or raises its own error",
    ),
    **dict.fromkeys(
        ["producer.simulation.ledger.x_read_ledger__mutmut_5"]
        + [f"producer.simulation.ledger.xǁLedgerǁwrite__mutmut_{n}" for n in (26,)],
        "'UTF-8' for 'utf-8': one codec",
    ),
    **dict.fromkeys(
        ["producer.simulation.ledger.x_read_ledger__mutmut_3"]
        + [f"producer.simulation.ledger.xǁLedgerǁwrite__mutmut_{n}" for n in (19, 22)],
        "the locale's encoding for UTF-8: the same where the locale is UTF-8 (here, and"
        " wherever Python runs in UTF-8 mode); a Latin-1 locale would tell them apart",
    ),
    **dict.fromkeys(
        [
            f"producer.simulation.ledger.xǁLedgerǁwrite__mutmut_{n}"
            for n in (10, 11, 13, 14, 15, 16)
        ],
        "the temporary file's name: it is renamed to the ledger or removed either way",
    ),
    **dict.fromkeys(
        [f"producer.simulation.ledger.xǁLedgerǁwrite__mutmut_{n}" for n in (41, 43)],
        "missing_ok when removing the temporary file: it exists whenever that line runs",
    ),
    "consumers.reconcile.x_merge_ledgers__mutmut_13": (
        "which of two ledgers of one run with equal totals counts: a replay writes the same"
        " records, so they are the same ledger"
    ),
    "consumers.reconcile.x_reconcile__mutmut_34": (
        "'=' for '+=' on the first addition: the list it adds to is empty"
    ),
    **dict.fromkeys(
        [f"consumers.reconcile.x__spikes__mutmut_{n}" for n in (7, 10, 14)],
        "zip(strict=...) of the minutes and their spikes: spikes_of gives one per minute",
    ),
    "producer.kafka.encoding.x__long__mutmut_21": (
        "value >> 64 for value >> 63 in the zigzag: for a long both are 0 or -1"
    ),
    "consumers.reconcile.x__spikes__mutmut_78": (
        "'>=' for '>' against the tolerance near the threshold: a z-score of 3 places is"
        " never exactly 2e-3 from 3.0 in binary floating point"
    ),
    "producer.simulation.pacing.x_paced__mutmut_4": (
        "offsets from -start_ms or +start_ms: the pacer anchors at the first event, so"
        " only differences between offsets count, and they are the same"
    ),
    # The encoder's caches: not keeping bytes that the code keeps, or keeping them for
    # values that are always written alike, changes what is kept, never what is
    # written; the mutants that keep values whose equal ones are written differently
    # (1 and 1.0, 0.0 and -0.0) are killed by test_encoder_kept.py.
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__kept_whole__mutmut_{n}" for n in (8, 9, 10)],
        "'logicalType' misspelt: the only branch with a logical type that reaches"
        " _kept_whole is a timestamp long (any other is not covered, a decimal is handled"
        " before), and a long is not kept either way",
    ),
    **dict.fromkeys(
        [
            f"producer.kafka.encoding.x__kept_whole__mutmut_{n}"
            for n in (1, 2, 3, 5, 6, 7, 11, 13, 14, 15, 16, 18, 19, 20, 21)
        ]
        + [f"producer.kafka.encoding.x__writer__mutmut_{n}" for n in (54, 58)],
        "a nullable string, bytes or enum (or some of them) not kept whole: the union's"
        " bytes are written each time instead of looked up (an enum's symbol by the enum"
        " writer, which keeps them): the same bytes",
    ),
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__writer__mutmut_{n}" for n in (44, 47)],
        "repeats=None or True for a union's branch: None is False; True keeps a string"
        " or bytes branch's bytes too, and equal strings (bytes) are written alike",
    ),
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__writer__mutmut_{n}" for n in (5, 6, 7, 8, 102)]
        + [f"producer.kafka.encoding.xǁRecordWriterǁcompile__mutmut_{n}" for n in (16, 23)],
        "a repeating field's string or bytes (or its union) not kept, or a distinct"
        " field's kept: the same bytes, written each time instead of looked up or the"
        " other way round",
    ),
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__long__mutmut_{n}" for n in (6, 7)],
        "0 left out of the table path: _varint(0) writes b'\\x00', as _SMALL[0] holds",
    ),
    "producer.kafka.encoding.x__length__mutmut_1": (
        "_long(n) for every length: _long looks a length under 4096 up in the same table"
    ),
    "producer.kafka.encoding.x__writer__mutmut_24": (
        "a nullable decimal built as the union of the bare decimal writer: the same"
        " bytes (null's index, or the branch's index and the decimal), one call more"
    ),
    "producer.kafka.encoding.xǁFramedAvroEncoderǁ__init____mutmut_9": (
        "event ids and session ids kept too: equal strings are written alike, so only"
        " what the cache holds changes"
    ),
    **dict.fromkeys(
        [f"producer.kafka.encoding.x__long__mutmut_{n}" for n in (22, 24, 25)],
        "a higher threshold for the _varint path: _varint writes every n exactly (a test"
        " checks each group boundary); the table path is only faster from 2**14",
    ),
    "producer.kafka.encoding.x__decimal__mutmut_46": (
        "schemaless_reader's reader_schema dropped: None is its default"
    ),
    "producer.kafka.encoding.xǁFramedAvroEncoderǁ__init____mutmut_10": (
        "'' for None as the values of an uncovered schema: calling '' raises TypeError,"
        " which sends each record to fastavro, where None does"
    ),
    "producer.kafka.encoding.xǁFramedAvroEncoderǁ__init____mutmut_11": (
        "None for () as the writers of an uncovered schema: they are read only when the"
        " values are set, and both are set together"
    ),
    "consumers.silver.x__last_offsets__mutmut_26": (
        "another negative start for max(): Kafka offsets are 0 or more"
    ),
    **dict.fromkeys(
        ["consumers.columnar.x__not_utf8__mutmut_15"],
        "'UTF-8' for 'utf-8': the same codec",
    ),
    **dict.fromkeys(
        ["consumers.columnar.x__symbol_map__mutmut_11"],
        "-2 for -1: only the sign of a missing symbol's index is read (index < 0)",
    ),
    **dict.fromkeys(
        ["consumers.columnar.xǁPlanǁread__mutmut_24"],
        "'and' for 'or': a reader field has a column exactly when a writer field fills it",
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.x__plan__mutmut_9",
            "consumers.columnar.x__plan__mutmut_15",
            "consumers.columnar.x__plan__mutmut_32",
            "consumers.columnar.x__plan__mutmut_34",
            "consumers.columnar.x__plan__mutmut_41",
            "consumers.columnar.x__plan__mutmut_43",
        ],
        "None for '' as a namespace: both are falsy where a namespace is joined to a name",
    ),
    **dict.fromkeys(
        ["consumers.columnar.x__plan__mutmut_102", "consumers.columnar.x__plan__mutmut_104"],
        "the type of a list of str left to Arrow: string, as given",
    ),
    **dict.fromkeys(
        ["consumers.columnar.x__plan__mutmut_105"],
        "another default of a field the writer fills: a default is read only for a field it lacks",
    ),
    **dict.fromkeys(
        ["consumers.columnar.x__plan__mutmut_171"],
        (
            "a symbol map asked for a null branch: _symbol_map gives None for any branch that is "
            "not an enum"
        ),
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.x__resolve__mutmut_7",
            "consumers.columnar.x__resolve__mutmut_9",
            "consumers.columnar.x__resolve__mutmut_10",
            "consumers.columnar.x__resolve__mutmut_12",
            "consumers.columnar.x__resolve__mutmut_13",
        ],
        (
            "a null branch or option not caught by the first test: the tests after it match no "
            "null, so the loop goes on (or ends) as before"
        ),
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Columnǁ__init____mutmut_9",
            "consumers.columnar.xǁ_Columnǁ__init____mutmut_11",
            "consumers.columnar.xǁ_Columnǁ__init____mutmut_14",
            "consumers.columnar.xǁ_Columnǁ__init____mutmut_16",
            "consumers.columnar.xǁ_Columnǁ_packed__mutmut_11",
            "consumers.columnar.xǁ_Columnǁ_packed__mutmut_13",
            "consumers.columnar.xǁ_Cursorǁ__init____mutmut_11",
            "consumers.columnar.xǁ_Cursorǁlong__mutmut_9",
            "consumers.columnar.xǁ_Cursorǁlong__mutmut_11",
        ],
        (
            "positions and lengths as float64 for int64: exact below 2**53, and stored back into "
            "int64 or int32 arrays"
        ),
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Columnǁ_packed__mutmut_62",
            "consumers.columnar.xǁ_Columnǁ_packed__mutmut_66",
            "consumers.columnar.xǁ_Columnǁarray__mutmut_12",
            "consumers.columnar.xǁ_Columnǁarray__mutmut_15",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_19",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_22",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_123",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_125",
        ],
        "a dtype or Arrow type left to inference: int64, as given",
    ),
    **dict.fromkeys(
        ["consumers.columnar.xǁ_Columnǁarray__mutmut_18"],
        "float64 for the indices of an enum column no row set: all null, taken as nulls",
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_77",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_78",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_96",
        ],
        (
            "booleans or floats kept as float64: 0/1 and float32 values are exact in it, and Arrow "
            "converts them to the column's type"
        ),
    ),
    **dict.fromkeys(
        ["consumers.columnar.xǁ_Cursorǁfail__mutmut_1"],
        "None for False in a numpy bool array: stored as False",
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Cursorǁfield__mutmut_20",
            "consumers.columnar.xǁ_Cursorǁvalue__mutmut_93",
        ],
        (
            "rows that already failed kept in (as a 2-D view): every value a failed row gets is "
            "dropped with the row"
        ),
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Cursorǁfield__mutmut_29",
            "consumers.columnar.xǁ_Cursorǁfield__mutmut_33",
            "consumers.columnar.xǁ_Cursorǁfield__mutmut_34",
        ],
        (
            "zip without strict: the branches, their rows and their symbol maps always have the "
            "same length"
        ),
    ),
    **dict.fromkeys(
        ["consumers.columnar.xǁ_Cursorǁlong__mutmut_18"],
        (
            "the loop starting at the first byte again: the same bits OR-ed in twice, the same "
            "continuation"
        ),
    ),
    **dict.fromkeys(
        [
            "consumers.columnar.xǁ_Cursorǁlong__mutmut_22",
            "consumers.columnar.xǁ_Cursorǁlong__mutmut_23",
        ],
        "loop steps over no rows: they change nothing",
    ),
}

KILLED = {1, 3, 36, -24, 24, 152, 255, 37}  # a failing test, pytest error, timeout, type check


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(SCOPES))
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in SCOPES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r} (known: {', '.join(SCOPES)})")
    chosen = {name: SCOPES[name] for name in args.modules or SCOPES}
    os.chdir(ROOT)
    if not args.report:
        mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which(
            "mutmut"
        )
        if mutmut is None:
            print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
            return 2
        patterns = [p for scope in chosen.values() for p in scope.patterns]
        log = ROOT / "mutants" / "run.log"
        log.parent.mkdir(exist_ok=True)
        started = time.monotonic()
        print(f"mutmut: running {', '.join(chosen)} (output in {log.relative_to(ROOT)})")
        with log.open("w", encoding="utf-8") as out:
            done = subprocess.run(
                [mutmut, "run", "--max-children", str(args.max_children), *patterns],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        print(f"mutmut: exit {done.returncode} in {time.monotonic() - started:.0f} s")
    return report(chosen)


def _results(path: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{path}.meta"
    if not meta.exists():
        return {}
    data: dict[str, dict[str, int | None]] = json.loads(meta.read_text(encoding="utf-8"))
    return data["exit_code_by_key"]


def report(chosen: dict[str, Scope]) -> int:
    """Print each module's score and its survivors; 1 if one is under the target."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    survivors: list[tuple[str, str]] = []
    rows = []
    below = False
    for name, scope in chosen.items():
        results = {
            key: code
            for key, code in _results(scope.path).items()
            if any(fnmatch.fnmatchcase(key, p) for p in scope.patterns)
        }
        kinds = Counter(
            "equivalent"
            if key in EQUIVALENT
            else "killed"
            if code in KILLED
            else "survived"
            if code == 0
            else "not run"
            if code is None
            else "no tests"
            if code in (5, 33)
            else f"exit {code}"
            for key, code in results.items()
        )
        scored = len(results) - kinds["equivalent"]
        score = kinds["killed"] / scored if scored else 0.0
        below |= score < TARGET
        rows.append((name, scope, kinds, scored, score))
        survivors += [
            (scope.path, key)
            for key, code in sorted(results.items())
            if key not in EQUIVALENT and code not in KILLED and code is not None
        ]
    print(f"\nmutation score (target {TARGET:.0%} killed per module)")
    for name, scope, kinds, scored, score in rows:
        other = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()) if k != "killed")
        print(
            f"  {name:<15} {kinds['killed']:>4} / {scored:<4} killed  {score:6.1%}"
            f"  {scope.path}  ({scope.what}){'  ' + other if other else ''}"
        )
    for path, key in survivors:
        diff = get_diff_for_mutant(key, path=path)
        print(f"\n{path}:{_line(path, key, diff)}  {key}")
        print(diff)
    stale = [
        key
        for scope in chosen.values()
        for key, code in _results(scope.path).items()
        if key in EQUIVALENT and code in (1, 3)  # a test failed (not a timeout under load)
    ]
    for key in stale:
        print(f"\n{key} is listed as equivalent but a test kills it: take it off the list")
    below |= bool(stale)
    listed = [
        (k, why)
        for k, why in EQUIVALENT.items()
        if any(k in _results(s.path) for s in chosen.values())
    ]
    if listed:
        print("\nequivalent (not scored):")
        for key, why in listed:
            print(f"  {key}: {why}")
    return 1 if below else 0


def _line(path: str, key: str, diff: str) -> int:
    """The line of ``path`` the mutant changes: the first removed line of its diff,
    looked up in the original function."""
    function = key.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[1]
    cls, _, name = function.removeprefix("x").strip("ǁ").partition("ǁ")
    if not name:
        cls, name = "", function.removeprefix("x_")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    start, end = 1, len((ROOT / path).read_text(encoding="utf-8").splitlines())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and cls and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    start, end = item.lineno, item.end_lineno or end
        elif (
            isinstance(node, ast.FunctionDef)
            and not cls
            and node.name == name
            and node.col_offset == 0
        ):
            start, end = node.lineno, node.end_lineno or end
    removed = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    for number in range(start, end + 1):
        if removed and lines[number - 1].strip() == removed[0]:
            return number
    return start


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
