"""The model card (``README.md``): rendered from the template, ``config.json``, ``card.json`` (the prose
context, :data:`CARD_CONTEXT_KEYS`) and ``eval_results.json``, so it can be re-rendered from the folder alone
(an ensemble's card also lists what its members' own repos on this machine say: their crops and licences).

The front matter carries ``library_name: ferhub``, ``pipeline_tag``, licence, base model, datasets, tags and a
``model-index`` with one entry per numeric metric of every result in ``eval_results.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferhub import eval_results as results_file
from ferhub.config import CONFIG_NAME, ModelConfig
from ferhub.eval_results import is_number as _is_number
from ferhub.fileio import atomic_write_text
from ferhub.hub._layout import (
    CARD_CONTEXT_NAME,
    CARD_NAME,
    ENSEMBLE,
    TEMPLATE_PATHS,
    TEMPLATES_DIR,
    WEIGHTS_NAME,
    read_config,
)

CARD_CONTEXT_KEYS: dict[str, str] = {
    # key: what it holds (all optional). Lists may be given where noted.
    "model_name": "the model's name (card title, model-index name); defaults to the folder name",
    "repo_id": "the Hub id the model is published under, used in the card's usage example",
    "revision": "the branch of repo_id it is published on, when not main (the usage example loads ID@REV)",
    "description": "one paragraph on what the model is",
    "license": "Hub licence id, e.g. 'mit', 'apache-2.0', 'other'",
    "license_name": "licence name when license is 'other'",
    "license_link": "licence link when license is 'other'",
    "license_text": "the licence text to reproduce with the attribution (e.g. an MIT notice)",
    "base_model": "Hub id(s) of the model(s) this was fine-tuned from (str or list)",
    "datasets": "Hub id(s) of the training data (str or list)",
    "tags": "extra Hub tags (list)",
    "intended_use": "intended and out-of-scope uses (markdown); a default is used when absent",
    "limitations": "limitations and known biases (markdown); a default is used when absent",
    "recipe": "training recipe (markdown)",
    "training_command": "the exact command that trained the model",
    "provenance": "where the weights come from (markdown)",
    "attribution": "credit to the original authors (markdown)",
    "upstream_claims": "accuracy figures claimed upstream, not measured by ferhub (str or list)",
    "citation": "BibTeX or reference text",
}
_LIST_KEYS = {"base_model", "datasets", "tags", "upstream_claims"}
# what the card's *Provenance, licence and attribution* section shows
_PROVENANCE_KEYS = ("provenance", "attribution", "license_text", "license", "citation")


def check_card_context(context: Mapping[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(context) - set(CARD_CONTEXT_KEYS))
    if unknown:
        raise ValueError(
            f"{source}: unknown card_context keys {unknown}; known keys: {sorted(CARD_CONTEXT_KEYS)}"
        )
    out: dict[str, Any] = {}
    # in CARD_CONTEXT_KEYS' order, however the caller built the mapping: card.json reads the same every time
    for key, value in sorted(context.items(), key=lambda kv: list(CARD_CONTEXT_KEYS).index(kv[0])):
        if value is None:
            continue
        if key in _LIST_KEYS and isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                raise ValueError(f"{source}: card_context[{key!r}] must be a string or a list of strings")
            value = list(value)
        elif not isinstance(value, str):
            kind = "a string or a list of strings" if key in _LIST_KEYS else "a string"
            raise ValueError(f"{source}: card_context[{key!r}] must be {kind}, got {type(value).__name__}")
        out[key] = value
    return out


_METRIC_NAMES = {
    "accuracy": "Accuracy",
    "mean_class_recall": "Mean class recall",
    "macro_f1": "Macro F1",
    "top2_accuracy": "Top-2 accuracy",
    "nll": "Negative log-likelihood",
    "ece": "Expected calibration error",
}
# Hub model-index metric types (https://hf.co/metrics ids where one fits) and their configs
_METRIC_TYPES = {
    "accuracy": ("accuracy", None),
    "mean_class_recall": ("recall", "macro"),
    "macro_f1": ("f1", "macro"),
}
_FRACTION_METRICS = {
    "accuracy",
    "accuracy_epoch_mean",  # seed 004's headline: the held-out accuracy averaged over epochs
    "mean_class_recall",
    "macro_f1",
    "top2_accuracy",
    "precision",
    "recall",
    "f1",
}


def _default_prose(name: str) -> str:
    """A card section's default text (``ferhub/templates/<name>``), used when card.json gives none."""
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8").rstrip("\n")


def _tta_suffix(result: dict[str, Any]) -> str:
    """`` (TTA: tencrop)`` for a result measured with test-time augmentation (the method named), else
    ``""``."""
    if not result.get("tta"):
        return ""
    method = result.get("tta_method")
    return f" (TTA: {method})" if isinstance(method, str) else " (TTA)"


def _metric_name(key: str) -> str:
    return _METRIC_NAMES.get(key, key.replace("_", " ").capitalize())


def format_metric(key: str, value: Any) -> str:
    """A metric's value as the card shows it: percent for a fraction of :data:`_FRACTION_METRICS`, thousands
    separators for a count, else four significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if key in _FRACTION_METRICS and 0 <= value <= 1:
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


def _eval_result_objects(results: Mapping[str, Any]) -> list:
    from huggingface_hub import EvalResult

    out = []
    for r in results.values():
        if r.get("not_held_out"):  # measured on data that trained or chose the model (eval_results.py)
            continue
        dataset = r["dataset"]
        for key, value in r["metrics"].items():
            if not _is_number(value):
                continue
            metric_type, metric_config = _METRIC_TYPES.get(key, (key, None))
            out.append(
                EvalResult(
                    task_type="image-classification",
                    task_name="Facial expression recognition",
                    dataset_type=dataset["id"],
                    dataset_name=dataset.get("name") or dataset["id"],
                    dataset_config=dataset.get("config"),
                    dataset_split=dataset.get("split"),
                    dataset_revision=dataset.get("revision"),
                    metric_type=metric_type,
                    metric_name=_metric_name(key) + _tta_suffix(r),
                    metric_config=metric_config,
                    metric_value=value,
                )
            )
    return out


def format_mean_std(key: str, mean: float, std: float) -> str:
    """``mean ± std`` of metric ``key`` over folds or repeats, in the unit the card's tables give it: percent
    for accuracy-like metrics (``35.00% ± 3.73%``), else four decimals. Only the text: the stored values
    (``eval_results.json``) stay fractions."""
    if key in _FRACTION_METRICS and 0 <= mean <= 1:
        return f"{100 * mean:.2f}% ± {100 * std:.2f}%"
    return f"{mean:.4f} ± {std:.4f}"


def _format_interval(key: str, interval: Any) -> str:
    """`` (95% CI a–b)`` for a two-number interval stored beside a metric, else nothing."""
    if not (isinstance(interval, list) and len(interval) == 2 and all(map(_is_number, interval))):
        return ""
    return f" (95% CI {format_metric(key, interval[0])}–{format_metric(key, interval[1])})"


_NO_FACE_HOW = {
    "fallback": "classified on the whole image",
    "wrong": "counted as wrong",
    "precropped": "images given as face crops",
}


def _no_face_note(no_face: Any) -> str | None:
    if not isinstance(no_face, Mapping) or not isinstance(no_face.get("count"), int) or not no_face["count"]:
        return None
    policy = no_face.get("policy")  # another tool's entry may hold a list here, which is no dict key
    how = _NO_FACE_HOW.get(policy, policy) if isinstance(policy, str) and policy else "not stated"
    return f"No face was found in {no_face['count']:,} images ({how})."


def _confusion_summary(
    labels: list[str], cm: list[list[float]], support: Sequence[float], top: int = 3
) -> list[str]:
    """The most frequent confusions, as shares of each true class's ``support``
    (:func:`ferhub.compare.entry_support`: it counts the class's images without a prediction, absent from the
    matrix)."""
    cells = []
    for i, row in enumerate(cm):
        total = max(support[i], sum(row))
        for j, count in enumerate(row):
            if i != j and count > 0 and total > 0:
                cells.append((count / total, labels[i], labels[j], int(count), int(total)))
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        f"*{t}* taken for *{p}*: {100 * share:.1f}% ({n} of {total})" for share, t, p, n, total in cells[:top]
    ]


def _results_for_template(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    from ferhub.compare import entry_support

    out = []
    for key, r in results.items():
        dataset = r["dataset"]
        where = ", ".join(
            x
            for x in (dataset.get("config"), f"split {dataset['split']}" if dataset.get("split") else None)
            if x
        )
        per_class = r.get("per_class") or {}
        columns = [
            c for c in ("precision", "recall", "f1", "support") if any(c in v for v in per_class.values())
        ]
        columns += sorted({c for v in per_class.values() for c in v} - set(columns))
        labels, cm = r.get("labels"), r.get("confusion_matrix")
        out.append(
            {
                "key": key,
                "title": (dataset.get("name") or dataset["id"]) + (f" ({where})" if where else ""),
                "dataset_id": dataset["id"],
                "tta": bool(r.get("tta")),
                "tta_method": r.get("tta_method") if isinstance(r.get("tta_method"), str) else None,
                "num_images": r.get("num_images"),
                "date": r.get("date"),
                "ferhub_version": r.get("ferhub_version"),
                "command": r.get("command"),
                "metrics": [
                    (
                        _metric_name(k),
                        format_metric(k, v) + _format_interval(k, r["metrics"].get(f"{k}_ci95")),
                    )
                    for k, v in r["metrics"].items()
                    if _is_number(v)
                ],
                "no_face": _no_face_note(r.get("no_face")),
                "notes": [n for n in r.get("notes") or [] if isinstance(n, str)],
                # on data that trained or chose the model: left out of the model-index (_eval_result_objects)
                "not_held_out": bool(r.get("not_held_out")),
                "per_class_columns": [_metric_name(c) for c in columns],
                "per_class_rows": [
                    (label, [format_metric(c, v.get(c, "")) for c in columns])
                    for label, v in per_class.items()
                ],
                "confusion_labels": labels if cm else None,
                "confusion_rows": list(zip(labels, [[int(x) for x in row] for row in cm])) if cm else None,
                "confusion_top": _confusion_summary(labels, cm, entry_support(r).tolist()) if cm else [],
            }
        )
    return out


def read_card_context(folder: Path) -> dict[str, Any]:
    path = folder / CARD_CONTEXT_NAME
    if not path.is_file():
        return {"model_name": folder.resolve().name}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-save the model with ferhub.hub.save") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of card context")
    return check_card_context(data, str(path))


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _member_folder(reference: str, *, local: bool) -> Path | None:
    """Where ensemble member ``reference``'s repo is on this machine, found without asking the Hub: a bundled
    model, a local folder (only with ``local``: an ensemble that came from the Hub names none of this
    machine's folders), or a Hub id's snapshot in the Hugging Face cache; ``None`` when it is not here."""
    from huggingface_hub import try_to_load_from_cache

    from ferhub.errors import ModelLoadError
    from ferhub.hub._repo import _parse

    try:
        folder, repo_id, revision = _parse(reference, None, local)
    except ModelLoadError:
        return None
    if folder is not None:
        return folder
    hit = try_to_load_from_cache(repo_id, CONFIG_NAME, revision=revision)
    return Path(hit).parent if isinstance(hit, str) else None


def _input_text(config: ModelConfig) -> str:
    """What a member is fed, as the card's *Input* row says it (``64×64 grayscale``)."""
    if config.architecture == ENSEMBLE:
        return "each of its own members' crops"
    return f"{config.input_size}×{config.input_size} {'grayscale' if config.channels == 1 else 'RGB'}"


def _crop_text(config: ModelConfig) -> str:
    """The member's crop in words (the steps a single model's card gives as step 2)."""
    margin = f"{100 * config.crop_margin:g}% margin"
    if config.align == "similarity":
        return f"five-landmark template, {margin}"
    box = "square box" if config.crop_square else "box"
    return f"{box}, {margin}" + (", eyes levelled" if config.align else "")


def _licence_name(context: Mapping[str, Any]) -> str | None:
    licence = context.get("license")
    return (context.get("license_name") or licence) if licence == "other" else licence


def _ensemble_members(folder: Path, config: ModelConfig) -> list[dict[str, Any]]:
    """An ensemble's members for its card: reference and vote weight, and, where the member's repo is on this
    machine (:func:`_member_folder`), its input, crop, normalisation and labels from its ``config.json`` and
    its licence from its ``card.json`` (``None`` where unknown: the card says to see the member's own).
    ``[]`` for a model that is not an ensemble."""
    if config.architecture != ENSEMBLE:
        return []
    from ferhub.hub._repo import _hub_snapshot

    local = _hub_snapshot(folder.resolve()) is None
    references = [str(m) for m in config.model_args.get("members") or []]
    weights = config.model_args.get("weights") or [1.0] * len(references)
    rows = []
    for reference, weight in zip(references, weights):
        row: dict[str, Any] = {
            "reference": reference,
            "weight": f"{weight:g}" if _is_number(weight) else str(weight),
            "input": None,
            "crop": None,
            "normalisation": None,
            "labels": None,
            "license": None,
        }
        where = _member_folder(reference, local=local)
        try:
            member = ModelConfig.load(where) if where is not None else None
            context = read_card_context(where) if where is not None else {}
        except (OSError, ValueError):  # a member ferhub cannot read: its card is the place to look
            member, context = None, {}
        if member is not None:
            row["input"] = _input_text(member)
            row["labels"] = ", ".join(member.labels)
            if member.architecture != ENSEMBLE:
                row["crop"] = _crop_text(member)
                mean, std = (", ".join(f"{v:.4g}" for v in values) for values in (member.mean, member.std))
                row["normalisation"] = f"{member.interpolation} resize; mean [{mean}], std [{std}]"
        row["license"] = _licence_name(context)
        rows.append(row)
    return rows


def _licence_text(context: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> str:
    """The card's *Licence* row: the repo's own, and an ensemble's members' (whose weights it runs)."""
    own = context.get("license")
    if not members:
        return own or "not stated"
    theirs = ", ".join(f"`{m['reference']}` {m['license'] or 'not stated (see its card)'}" for m in members)
    if own:  # the licence of the ensemble's own files; the networks it runs are its members'
        return f"{own} for this repo (its config and card); the members' weights keep theirs: {theirs}"
    return f"its members' licences (this repo holds no weights): {theirs}"


def card_text(folder: str | os.PathLike, *, eval_results: Mapping[str, Any] | None = None) -> str:
    """The ``README.md`` text of a repo folder, from the template, its config, card.json and eval results.

    ``eval_results`` (a full document) stands in for the folder's ``eval_results.json`` when given: the card
    of results about to be written. A result entry ferhub cannot show is left out of the card
    (:func:`ferhub.eval_results.usable`).
    """
    from huggingface_hub import ModelCard

    from ferhub import __version__
    from ferhub.hub._weights import num_weights

    folder = Path(folder)
    config = read_config(folder)
    context = read_card_context(folder)
    eval_data = results_file.read(folder) if eval_results is None else eval_results
    # an entry it cannot show (another tool's, malformed) is left out; the others are the card's
    results = results_file.usable(eval_data)[0]["results"] if eval_data else {}
    model_name = context.get("model_name") or folder.resolve().name
    members = _ensemble_members(folder, config)
    card = ModelCard.from_template(
        _card_data(model_name, config.architecture, context, results),
        template_path=str(_template_path()),
        model_name=model_name,
        ctx=context,
        config=config,
        model_args_json=json.dumps(config.model_args, sort_keys=True),
        gray=config.channels == 1,
        members=members,
        licence=_licence_text(context, members),
        # the *Provenance* section, and the Training section's pointer to it, only when it has something
        has_provenance=bool(members) or any(context.get(k) for k in _PROVENANCE_KEYS),
        # without a Hub id the card cannot name the model: its name is neither a folder nor an id to load
        load_id=(
            "@".join([context["repo_id"], *_as_list(context.get("revision"))])
            if context.get("repo_id")
            else "path/to/model"
        ),
        num_weights=num_weights(folder / WEIGHTS_NAME),
        intended_use=context.get("intended_use") or _default_prose("card_intended_use.md"),
        limitations=context.get("limitations") or _default_prose("card_limitations.md"),
        upstream_claims=_as_list(context.get("upstream_claims")),
        results=_results_for_template(results),
        ferhub_version=__version__,
    )
    return re.sub(r"\n{3,}", "\n\n", str(card).strip()) + "\n"


def _template_path() -> Path:
    template = next((p for p in TEMPLATE_PATHS if p.is_file()), None)
    if template is None:
        raise FileNotFoundError(
            f"the model card template is missing (looked for {', '.join(map(str, TEMPLATE_PATHS))}); "
            "reinstall ferhub"
        )
    return template


def _card_data(model_name: str, architecture: str, context: Mapping[str, Any], results: Mapping) -> Any:
    """The card's YAML front matter."""
    from huggingface_hub import ModelCardData

    tags = [
        "ferhub",
        "facial-expression-recognition",
        "pytorch",
        architecture,
        *_as_list(context.get("tags")),
    ]
    return ModelCardData(
        model_name=model_name,
        library_name="ferhub",
        pipeline_tag="image-classification",
        license=context.get("license"),
        license_name=context.get("license_name"),
        license_link=context.get("license_link"),
        base_model=context.get("base_model"),
        datasets=_as_list(context.get("datasets")) or None,
        tags=list(dict.fromkeys(tags)),
        eval_results=_eval_result_objects(results) or None,
    )


def write_card(folder: str | os.PathLike, text: str) -> str:
    """Write ``text`` as the folder's ``README.md`` atomically; returns it."""
    atomic_write_text(Path(folder) / CARD_NAME, text)
    return text


def render_card(folder: str | os.PathLike) -> str:
    """Render the folder's ``README.md`` (:func:`card_text`), write it atomically and return its text."""
    return write_card(folder, card_text(folder))


def card_is_current(folder: str | os.PathLike) -> bool:
    """Whether the folder's ``README.md`` is what :func:`render_card` would write now."""
    path = Path(folder) / CARD_NAME
    return path.is_file() and path.read_text(encoding="utf-8") == card_text(folder)
