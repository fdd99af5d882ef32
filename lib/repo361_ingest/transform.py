"""DataFrame -> DataFrame transforms of the read path: instants as UTC timestamps, schema checks.

Instants. spark-avro already turns ``timestamp-millis``/``timestamp-micros`` longs into Spark
timestamps; ISO-8601 strings it leaves as strings. Every string field the :class:`TimestampRule`
selects (nested too: structs, arrays, map values) is parsed. A string without a zone is read as UTC
(not the session time zone); a value that does not parse fails the batch, so nothing turns into a
silent null. Two ways give exactly these values:

* **cast** (fast): each top-level column is cast once to its own type with the selected strings
  retyped as timestamps. Spark compiles a nested cast into generated code, so it costs about what
  reading the column costs. It is exact only where Spark's cast is: the session parses zone-less
  strings in ``spark.sql.session.timeZone`` (so that must be UTC) and fails on a malformed string
  only when ANSI mode is on (Spark 4.0's default). The failure names the value, not the field:
  :func:`repo361_ingest.read.find_bad_instant` finds the field with the exact way afterwards.
* **exact** (any session): rebuilds every struct on the path with ``transform`` lambdas and parses
  each string on its own, naming the field in its error. Spark evaluates higher-order functions
  without code generation, so on conversation records this costs about twice the read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from repo361_ingest.errors import SchemaConflictError

# auto: names ending in one of these (case-sensitive, so "update" or "Weekend" do not match) ...
AUTO_SUFFIXES = ("Start", "End", "Date", "Time", "Timestamp", "At")
# ... plus Genesys fields that hold instants under another name.
AUTO_NAMES = frozenset({"InactivityTimeout"})
ERROR_MARKER = "repo361-instant"
_HAS_ZONE = r"(Z|z|[+-]\d\d(:?\d\d)?)$"
_HAS_TIME = r"\d[T ]\d\d:\d\d"
_DATE_ONLY = r"^[+-]?\d{4,}(-\d{1,2}){0,2}$"


@dataclass(frozen=True)
class TimestampRule:
    """Which string fields hold instants: ``auto``, ``none`` or explicit names / dotted paths.

    In a list, a bare name (``EmitDate``) matches that field at any depth; a dotted path matches
    from the row's top level, array levels omitted (``Participants.Sessions.Segments.SegmentStart``).
    """

    mode: str = "auto"
    names: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, value: str | Sequence[str]) -> "TimestampRule":
        if isinstance(value, str):
            return cls(mode=value)
        return cls(mode="list", names=frozenset(value))

    def selects(self, path: Sequence[str]) -> bool:
        name = path[-1]
        if self.mode == "none":
            return False
        if self.mode == "auto":
            return name in AUTO_NAMES or any(
                name.endswith(s) and (name == s or len(name) > len(s)) for s in AUTO_SUFFIXES
            )
        return name in self.names or ".".join(path) in self.names


def as_utc_text(text: Column) -> Column:
    """A zone-less instant string made explicitly UTC: a time gets ``Z``; a bare date (or year,
    or year-month: Spark reads those too) becomes midnight UTC. Strings with a zone are unchanged.

    Bare dates are checked first because ``2024-03-31`` ends like a ``-31`` hour offset.
    """
    midnight = F.concat(
        text,
        F.when(text.rlike(r"^[+-]?\d{4,}$"), F.lit("-01-01"))
        .when(text.rlike(r"^[+-]?\d{4,}-\d{1,2}$"), F.lit("-01"))
        .otherwise(F.lit("")),
        F.lit("T00:00:00Z"),
    )
    return (
        F.when(text.rlike(_DATE_ONLY), midnight)
        .when(text.rlike(_HAS_TIME) & ~text.rlike(_HAS_ZONE), F.concat(text, F.lit("Z")))
        .otherwise(text)
    )


def parse_instant(col: Column, label: str) -> Column:
    """ISO-8601 string -> timestamp (UTC when the string has no zone); unparseable fails loudly."""
    parsed = F.try_to_timestamp(as_utc_text(F.trim(col)))
    failure = F.raise_error(
        F.concat(F.lit(f"{ERROR_MARKER}: field {label} holds {{"), col, F.lit("}, not an ISO-8601 instant"))
    )
    return F.when(col.isNull(), F.lit(None).cast(T.TimestampType())).when(parsed.isNull(), failure).otherwise(parsed)


def _touches(dtype: T.DataType, path: list[str], rule: TimestampRule) -> bool:
    """True when ``dtype`` (at ``path``) contains a string field the rule selects."""
    if isinstance(dtype, T.StringType):
        return bool(path) and rule.selects(path)
    if isinstance(dtype, T.StructType):
        return any(_touches(f.dataType, [*path, f.name], rule) for f in dtype.fields)
    if isinstance(dtype, T.ArrayType):
        return _touches(dtype.elementType, path, rule)
    if isinstance(dtype, T.MapType):
        return _touches(dtype.valueType, path, rule)
    return False


def _rewrite(col: Column, dtype: T.DataType, path: list[str], rule: TimestampRule) -> Column:
    if not _touches(dtype, path, rule):
        return col
    if isinstance(dtype, T.StringType):
        return parse_instant(col, ".".join(path))
    if isinstance(dtype, T.StructType):
        fields = [_rewrite(col[f.name], f.dataType, [*path, f.name], rule).alias(f.name) for f in dtype.fields]
        return F.when(col.isNull(), F.lit(None)).otherwise(F.struct(*fields))
    if isinstance(dtype, T.ArrayType):
        element = dtype.elementType
        return F.transform(col, lambda x: _rewrite(x, element, path, rule))
    if isinstance(dtype, T.MapType):
        value = dtype.valueType
        return F.transform_values(col, lambda _, v: _rewrite(v, value, path, rule))
    return col


UTC_ZONES = frozenset({
    "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu",
    "Etc/Zulu", "GMT0", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT+0", "GMT-0", "Greenwich",
    "+00:00", "-00:00",
})


def cast_is_exact(spark: SparkSession) -> bool:
    """True when a plain cast parses instants as :func:`parse_instant` does (see the module doc)."""
    # No default argument: with one, conf.get answers it for every key not set explicitly.
    try:
        ansi = str(spark.conf.get("spark.sql.ansi.enabled")).strip().lower() == "true"
        zone = str(spark.conf.get("spark.sql.session.timeZone")).strip()
    except Exception:  # a runtime that does not expose them: take the exact way
        return False
    return ansi and zone in UTC_ZONES


def with_instants(dtype: T.DataType, path: list[str], rule: TimestampRule) -> T.DataType:
    """``dtype`` with the string fields ``rule`` selects retyped as (nullable) timestamps."""
    if isinstance(dtype, T.StringType):
        return T.TimestampType() if path and rule.selects(path) else dtype
    if isinstance(dtype, T.StructType):
        return T.StructType([
            T.StructField(f.name, new, f.nullable or new != f.dataType, f.metadata)
            for f in dtype.fields
            for new in [with_instants(f.dataType, [*path, f.name], rule)]
        ])
    if isinstance(dtype, T.ArrayType):
        element = with_instants(dtype.elementType, path, rule)
        return T.ArrayType(element, dtype.containsNull or element != dtype.elementType)
    if isinstance(dtype, T.MapType):
        value = with_instants(dtype.valueType, path, rule)
        return T.MapType(dtype.keyType, value, dtype.valueContainsNull or value != dtype.valueType)
    return dtype


def cast_instants(col: Column, dtype: T.DataType, rule: TimestampRule) -> Column:
    """``col`` (of type ``dtype``, the row's top level: e.g. the ``Entities`` array) with the
    selected strings cast to timestamps in one nested cast: the fast way of the module doc.

    Casting the ``Entities`` array inside the ``explode`` builds each conversation once, where a
    cast per column after the explode builds it a second time (measured: see the README).
    """
    if rule.mode == "none" or not _touches(dtype, [], rule):
        return col
    return col.cast(with_instants(dtype, [], rule))


def normalise_instants(rule: TimestampRule, cast: bool = False) -> Callable[[DataFrame], DataFrame]:
    """A ``DataFrame.transform`` step: selected string fields (nested too) become timestamps.

    ``cast`` picks the fast way; pass :func:`cast_is_exact` of the session (the module doc says why).
    """

    def convert(f: T.StructField) -> Column:
        col = F.col(f"`{f.name}`")
        if not _touches(f.dataType, [f.name], rule):
            return col
        if cast:
            return col.cast(with_instants(f.dataType, [f.name], rule)).alias(f.name)
        return _rewrite(col, f.dataType, [f.name], rule).alias(f.name)

    def apply(df: DataFrame) -> DataFrame:
        if rule.mode == "none":
            return df
        return df.select(*[convert(f) for f in df.schema.fields])

    return apply


# ---- source vs target ----------------------------------------------------------------------------

# Widening Delta performs on append (the value fits the target column unchanged).
_WIDER = {
    (T.IntegerType, T.LongType), (T.ShortType, T.IntegerType), (T.ShortType, T.LongType),
    (T.ByteType, T.ShortType), (T.ByteType, T.IntegerType), (T.ByteType, T.LongType),
    (T.FloatType, T.DoubleType),
}


def check_against_target(source: T.StructType, target: T.StructType, table: str) -> None:
    """Fail (naming the field and both types) when ``source`` cannot be appended to ``target``.

    New fields (top level or nested) are fine: Delta's ``mergeSchema`` adds them. A field the
    source lacks is fine: it is null. Names compare case-insensitively, as Delta does.
    """
    problems: list[str] = []
    _compare(source, target, "", problems)
    if problems:
        raise SchemaConflictError(
            f"the batch cannot be appended to {table}: " + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )


def _compare(src: T.DataType, dst: T.DataType, path: str, problems: list[str]) -> None:
    if isinstance(src, T.StructType) and isinstance(dst, T.StructType):
        existing = {f.name.lower(): f for f in dst.fields}
        for f in src.fields:
            if f.name.lower() in existing:
                sub = f"{path}.{f.name}" if path else f.name
                _compare(f.dataType, existing[f.name.lower()].dataType, sub, problems)
        return
    if isinstance(src, T.ArrayType) and isinstance(dst, T.ArrayType):
        _compare(src.elementType, dst.elementType, path + "[]", problems)
        return
    if isinstance(src, T.MapType) and isinstance(dst, T.MapType):
        _compare(src.keyType, dst.keyType, path + "{key}", problems)
        _compare(src.valueType, dst.valueType, path + "{}", problems)
        return
    if src == dst or (type(src), type(dst)) in _WIDER or type(src) is T.NullType:
        return
    problems.append(
        f"field {path} is {src.simpleString()} in the batch but {dst.simpleString()} in the table"
    )


def check_appendable(spark: SparkSession, target: str, df: DataFrame) -> None:
    """:func:`check_against_target` against the existing table (nothing to check if it is new)."""
    from repo361_ingest.sink import is_table_name, table_exists

    if not table_exists(spark, target):
        return
    reader = spark.read.table(target) if is_table_name(target) else spark.read.format("delta").load(target)
    check_against_target(df.schema, reader.schema, target)


_CAST_FAILURE = re.compile(r"CAST_INVALID_INPUT\]\s*The value '(.*?)' of the type \"STRING\" cannot be cast to"
                           r" \"TIMESTAMP\"", re.S)


def cast_failure(message: str) -> str | None:
    """The value a fast instant cast (ANSI) failed on, if ``message`` is that failure."""
    match = _CAST_FAILURE.search(message)
    return match.group(1) if match else None


def instant_error(message: str) -> str | None:
    """Our own message out of a Spark error raised by :func:`parse_instant`, if it is one."""
    match = re.search(ERROR_MARKER + r": (field .*? not an ISO-8601 instant)", message)
    return match.group(1) if match else None
