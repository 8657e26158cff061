"""A generator exported by ``python -m gan.export``: the file's layout and its loader.

The file is safetensors: the generator's weights (its EMA, or the raw G) as tensors, and metadata
whose values are JSON texts:

``format``            ``"gan.generator"``
``format_version``    the layout's version (:data:`FORMAT_VERSION`); a newer one is refused
``generator``         the generator's config: ``_target_`` (a class in ``gan.nets``) and its arguments
``conditional``       null, or ``{num_classes, label_dim, label_std, class_norm}``: G is then a
                      :class:`gan.nets.conditional.ConditionalGenerator` around ``generator``
``noise``             the arguments of :class:`gan.noise.NoisePrior`
``dataset``           what it was trained on (``"MNIST"``, ``"FashionMNIST"``)
``output_activation`` ``"tanh"`` or ``"sigmoid"``; ``value_range`` the pixel range that gives
``weights``           ``"ema"`` or ``"raw"``; ``iteration`` the GAN iteration of the checkpoint
``template_version``  the version of gan that wrote it
``sha256``            the SHA-256 of each field's text and of the tensors (names, dtypes, shapes,
                      bytes), so a changed field or a damaged file is refused, naming the field

The loader imports torch, safetensors and the generator's own module in ``gan.nets`` (never
Lightning, Hydra or omegaconf), and imports only modules under ``gan.nets``, whatever the file
says, so a file cannot make it run other code. Unpickling is never involved.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open
from torch import Tensor, nn

from gan.nets.conditional import ConditionalGenerator
from gan.noise import NoisePrior

SUFFIX = ".safetensors"
FORMAT = "gan.generator"
FORMAT_VERSION = 1
FIELDS = ("format", "format_version", "generator", "conditional", "noise", "dataset", "output_activation",
          "value_range", "weights", "iteration", "template_version")
DIGEST = "sha256"
TENSORS = "tensors"  # the digest of the weights, beside the fields' own in ``sha256``
NETS_PACKAGE = "gan.nets."


class ExportError(ValueError):
    """A file that is not a generator exported by gan.export, or one that was changed since."""


class Exported(NamedTuple):
    generator: nn.Module
    noise: NoisePrior
    fields: dict[str, Any]  # the decoded metadata (see the module's doc)


def encode(value: Any) -> str:
    """A metadata value as canonical JSON (sorted keys, no spaces): one text for one value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(encode([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seal(fields: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, str]:
    """The metadata of an export: every field of :data:`FIELDS` as JSON, and their digests."""
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise ValueError(f"an export needs the fields {missing}")
    metadata = {f: encode(fields[f]) for f in FIELDS}
    digests = {f: text_digest(text) for f, text in metadata.items()} | {TENSORS: tensors_digest(tensors)}
    return metadata | {DIGEST: encode(digests)}


def read_export(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The decoded metadata fields and the tensors of an export, every digest checked; else
    :class:`ExportError` in one line naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # safetensors' own error, or an OS error: the file cannot be read as one
        raise ExportError(f"{path} is not a readable safetensors file ({' '.join(str(err).split())}); "
                          "write one with python -m gan.export") from None
    if metadata.get("format") != encode(FORMAT):
        raise ExportError(f"{path} is a safetensors file but not a generator exported by gan.export "
                          f"(its metadata has no format {FORMAT!r})")
    version = _decode(path, "format_version", metadata["format_version"]) if "format_version" in metadata else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ExportError(f"{path} has format version {version}, newer than this gan reads ({FORMAT_VERSION}): update gan")
    for field in (*FIELDS, DIGEST):
        if field not in metadata:
            raise ExportError(f"{path}: metadata field {field} is missing; the file was changed or is damaged")
    digests = _decode(path, DIGEST, metadata[DIGEST])
    if not isinstance(digests, dict):
        raise _changed(path, DIGEST)
    for field in FIELDS:
        if digests.get(field) != text_digest(metadata[field]):
            raise _changed(path, field)
    if digests.get(TENSORS) != tensors_digest(tensors):
        raise ExportError(f"{path}: the weights were changed or the file is damaged (their sha256 does not match)")
    return {field: _decode(path, field, metadata[field]) for field in FIELDS}, tensors


def generator_class(target: Any, where: str = "generator") -> type[nn.Module]:
    """The class ``target`` names, if it is an ``nn.Module`` defined in a module of ``gan.nets``;
    only such a module is ever imported."""
    parts = target.split(".") if isinstance(target, str) else []
    if not (parts and target.startswith(NETS_PACKAGE) and len(parts) >= 4 and all(p.isidentifier() for p in parts)
            and not parts[-1].startswith("_")):
        raise ExportError(f"{where}._target_={target!r}: an export builds only classes of gan.nets "
                          "(gan.nets.<module>.<Class>); refused")
    module, name = target.rsplit(".", 1)
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ExportError(f"{where}._target_={target}: no such class in this gan (an export from a newer version?)") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__.startswith(NETS_PACKAGE)):
        raise ExportError(f"{where}._target_={target}: not a network class of gan.nets; refused")
    return cls


def build_generator(fields: dict[str, Any], where: str = "generator") -> nn.Module:
    """The (untrained) generator the fields describe, conditional or not."""
    spec = fields["generator"]
    if not isinstance(spec, dict):
        raise ExportError(f"{where}: expected the generator's config (a mapping with _target_)")
    cls = generator_class(spec.get("_target_"), where)
    kwargs = {k: v for k, v in spec.items() if k != "_target_"}
    if _has_special_key(kwargs):
        raise ExportError(f"{where}: only plain arguments can be rebuilt (no _target_ or other _keys_ inside); refused")
    conditional = fields["conditional"]
    if not (conditional is None or isinstance(conditional, dict)):
        raise ExportError(f"{where}: conditional must be null or a mapping of the conditional options")
    try:
        if conditional is None:
            return cls(**kwargs)
        return ConditionalGenerator(functools.partial(cls, **kwargs), fields["noise"]["dim"], **conditional)
    except (TypeError, ValueError, KeyError) as err:
        raise ExportError(f"{where}: cannot build the generator its metadata describes ({' '.join(str(err).split())})") from None


def _has_special_key(value: Any) -> bool:
    """Whether a key that Hydra would act on (``_target_``, ``_partial_``...) sits anywhere in ``value``."""
    if isinstance(value, dict):
        return any(not isinstance(k, str) or k.startswith("_") or _has_special_key(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_special_key(v) for v in value)


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> Exported:
    """The generator of an export (weights loaded, eval mode, on ``device``), its noise prior and
    the decoded metadata; a bad file raises :class:`ExportError` in one line."""
    fields, tensors = read_export(path)
    generator = build_generator(fields, f"{path}: generator")
    try:
        generator.load_state_dict(tensors)
    except RuntimeError as err:
        raise ExportError(f"{path}: the weights do not fit the generator its metadata describes "
                          f"({' '.join(str(err).split())[:300]})") from None
    if getattr(generator, "output_activation", None) != fields["output_activation"]:
        raise ExportError(f"{path}: the generator ends in {getattr(generator, 'output_activation', None)!r}, "
                          f"not the output_activation {fields['output_activation']!r} its metadata states")
    noise = fields["noise"]
    try:
        prior = NoisePrior(**noise) if isinstance(noise, dict) else None
    except (TypeError, ValueError) as err:
        raise ExportError(f"{path}: noise: {' '.join(str(err).split())}") from None
    if prior is None:
        raise ExportError(f"{path}: noise must be the arguments of gan.noise.NoisePrior")
    return Exported(generator.to(device).eval(), prior, fields)


def load_exported_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, NoisePrior]:
    """``(generator, noise)`` of a file written by ``python -m gan.export``: ``generator(noise.sample(n))``
    gives ``n`` images in the export's ``value_range`` (a conditional G also takes ``(n,)`` labels)."""
    generator, noise, _ = load_exported(path, device)
    return generator, noise


def _decode(path: Path, field: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise _changed(path, field) from None


def _changed(path: Path, field: str) -> ExportError:
    why = "" if field == DIGEST else f" (it does not match its {DIGEST})"
    return ExportError(f"{path}: metadata field {field} was changed or the file is damaged{why}")
