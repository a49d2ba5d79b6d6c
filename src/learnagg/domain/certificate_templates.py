"""Certificate templates of a batch: selection (K2), validity and parsing (K3), score thresholds
(docs/jobs/certificates.md)."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from learnagg.domain.numbers import is_number

_CRITERIA_KEYS = ("enrollment", "assessment", "user", "users")

# docs/jobs/certificates.md#k6: the operators of a score threshold; any other operator gives false.
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "EQ": operator.eq,
    "eq": operator.eq,
    "!=": operator.ne,
    "ne": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class ScoreRule:
    """A K6 score threshold: the first ``{op: number}`` entry; ``op`` None stands for an empty map."""

    op: str | None
    threshold: float = 0.0

    def passes(self, score: float) -> bool:
        """Compare the course score with the threshold; an unknown operator or empty map gives false (K6.4)."""
        compare = _OPERATORS.get(self.op) if self.op is not None else None
        return compare is not None and compare(score, self.threshold)


@dataclass(frozen=True, slots=True)
class Template:
    """A valid certificate template (docs/reference/data-model.md#enrolment fields parsed, K3 checked)."""

    key: str
    identifier: str
    name: str
    url: str
    enrollment: Mapping[str, Any] | None
    score: ScoreRule | None
    user: Mapping[str, Any] | None
    issuer: dict[str, Any] = field(default_factory=dict)
    signatory_list: list[Any] = field(default_factory=list)
    enrollment_props: tuple[str, ...] = ()
    assessment_props: tuple[str, ...] = ()


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def svg_templates(cert_templates: object) -> list[tuple[str, Mapping[str, Any]]]:
    """K2: the batch's templates whose ``url`` contains ``.svg``, in key order (docs/reference/data-model.md#c6)."""
    if not isinstance(cert_templates, Mapping):
        return []
    return [
        (key, fields)
        for key, fields in sorted(cert_templates.items())
        if isinstance(fields, Mapping) and ".svg" in _text(fields.get("url"))
    ]


class _Invalid(Exception):
    pass


def _json_field(fields: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """A template field holding JSON text (already-decoded values are accepted); blank gives ``default``."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return default
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _Invalid(name) from exc
    if not isinstance(value, kind):
        raise _Invalid(name)
    return value


def _threshold(value: object) -> float:
    if not is_number(value):
        raise _Invalid("score")
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except OverflowError as exc:
        raise _Invalid("score") from exc
    if not math.isfinite(threshold):
        raise _Invalid("score")
    return threshold


def _score_rule(assessment: object) -> ScoreRule:
    """K3/K6.4: a bare number means equality; an object must hold only numbers; only its first entry counts."""
    if not isinstance(assessment, Mapping):
        raise _Invalid("assessment")
    score = assessment.get("score")
    if is_number(score):
        return ScoreRule("=", _threshold(score))
    if not isinstance(score, Mapping):
        raise _Invalid("score")
    thresholds = [(op, _threshold(value)) for op, value in score.items()]
    return ScoreRule(*thresholds[0]) if thresholds else ScoreRule(None)


def _criterion(criteria: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = criteria.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Invalid(key)
    return value


def _names(props: Mapping[str, Any], key: str) -> tuple[str, ...]:
    names = props.get(key)
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Invalid("additionalProps")
    return tuple(names)


def parse_template(key: str, fields: Mapping[str, Any]) -> Template | None:
    """K3: parse one template; None when it is invalid (the event then fails with `Invalid template for batch`).

    Valid means: a non-empty ``url``; ``criteria`` a JSON object with a non-null ``enrollment``, ``assessment``,
    ``user`` or ``users``; a present ``assessment`` has a numeric ``score`` or an object of numeric thresholds.
    Where the docs are silent the reference would crash, so these also make a template invalid: a criterion that is not
    an object, and ``issuer``/``signatoryList``/``additionalProps`` text that is not a JSON object/array/object.

    Args:
        key: The template's key in ``cert_templates`` (its identifier).
        fields: The template's text fields.
    """
    url = _text(fields.get("url"))
    if not url.strip():
        return None
    try:
        criteria = _json_field(fields, "criteria", dict, None)
        if criteria is None or all(criteria.get(k) is None for k in _CRITERIA_KEYS):
            return None
        assessment = criteria.get("assessment")
        # docs/jobs/certificates.md#k3: the profile criterion is `user`, or `users` when `user` is absent
        # (docs/reference/compatibility.md#14a).
        user = _criterion(criteria, "user" if criteria.get("user") is not None else "users")
        props = _json_field(fields, "additionalProps", dict, {})
        return Template(
            key=key,
            identifier=_text(fields.get("identifier")) or key,
            name=_text(fields.get("name")),
            url=url,
            enrollment=_criterion(criteria, "enrollment"),
            score=None if assessment is None else _score_rule(assessment),
            user=user,
            issuer=_json_field(fields, "issuer", dict, {}),
            signatory_list=_json_field(fields, "signatoryList", list, []),
            enrollment_props=_names(props, "enrollment"),
            assessment_props=_names(props, "assessment"),
        )
    except _Invalid:
        return None
