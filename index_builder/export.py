"""Build time only: the ONNX export of the embedding model, made once, and the torch backend.

This is the one module that uses torch and sentence-transformers (the serving runtime in
bot/index/encoder.py reads the exported files with onnxruntime and `tokenizers`).

The export is deterministic (same model files and library versions → the same bytes), so it is
made once per machine into a shared cache (``~/.cache/ohbot/models/<model>-<fingerprint>``) and
copied from there into each data directory (``DATA_DIR/models/<model>-onnx``): a fresh data
directory then builds its index without exporting again. The two steps run in child processes:
the float export needs torch (~860 MB peak), the int8 quantisation ~530 MB; neither stays in
the build process, which therefore never holds torch.

    python -m index_builder.export float SOURCE OUT     # sentence-transformers → OUT (float ONNX)
    python -m index_builder.export quantize OUT          # OUT/onnx/model.onnx → int8, as ST does it
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ModelUnavailable
from bot.index.encoder import QUANTIZED, export_folder, is_complete, resolve_model

ROOT = Path(__file__).resolve().parents[1]
FLOAT = "onnx/model.onnx"
EXPORTERS = ("sentence-transformers", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "torch")
_SKIP = {".gitattributes", "README.md", ".git"}


def shared_cache_dir() -> Path:
    """The machine-wide cache of exports (one per model and library versions)."""
    return Path.home() / ".cache" / "ohbot" / "models"


def fingerprint(source: str) -> str:
    """What the export depends on: the model's files (or its hub name) and the exporters' versions."""
    digest = hashlib.sha256()
    for package in EXPORTERS:
        try:
            digest.update(f"{package}={metadata.version(package)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=-\n".encode())
    folder = Path(source)
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _SKIP & set(p.relative_to(folder).parts)):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    else:
        digest.update(f"hub:{source}".encode())
    return digest.hexdigest()[:16]


def _child(args: list[str]) -> None:
    """Run one export step in a child process; its chatter (progress notes, tracer warnings) is
    shown only when it fails, as the last lines of the error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = subprocess.run([sys.executable, "-m", "index_builder.export", *args], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ModelUnavailable(f"exporting the embedding model failed ({args[0]}): {tail}")


def _export_into(source: str, target: Path) -> None:
    """Export `source` into `target` (float export, int8 quantisation, float file removed), via a
    temporary sibling folder renamed at the end, so an interrupted export leaves nothing usable-looking."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        _child(["float", source, str(tmp)])
        _child(["quantize", str(tmp)])
        (tmp / FLOAT).unlink(missing_ok=True)  # 90 MB nobody reads after quantisation
        (tmp / "export.json").write_text(json.dumps(
            {"source": source, "fingerprint": fingerprint(source), "file": QUANTIZED}, ensure_ascii=False))
        if target.exists():  # another build finished the same export meanwhile: keep that one
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_into(cached: Path, folder: Path) -> None:
    """Copy a finished export into the data directory (temporary folder, then rename)."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cached, tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def ensure_export(name: str, models_dir: Path | None, shared: Path | None = None) -> Path:
    """The export folder of model `name` in `models_dir` (DATA_DIR/models), made when missing:
    copied from the machine-wide cache, or exported once into it first. Without a writable shared
    cache the export is made straight into `models_dir`. Returns the folder."""
    shared = shared_cache_dir() if shared is None else shared
    folder = export_folder(name, models_dir) if models_dir is not None else None
    if folder is not None and is_complete(folder):
        return folder
    source = resolve_model(name)
    cached = export_folder(f"{name}-{fingerprint(source)}", shared)
    try:
        if not is_complete(cached):
            _export_into(source, cached)
    except OSError:  # no writable home: export into the data directory only
        if folder is None:
            raise
        _export_into(source, folder)
        return folder
    if folder is None:
        return cached
    _copy_into(cached, folder)
    return folder


# ---- the steps, run in child processes ----------------------------------------------------------


def _export_float(source: str, out: str) -> None:
    """sentence-transformers' own ONNX export (optimum, torch) of `source`, saved into `out`."""
    for name in ("sentence_transformers", "transformers", "optimum", "huggingface_hub", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch.jit
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():
        # torch's tracer notes constants in the attention-mask code: expected for a fixed graph
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        model = SentenceTransformer(source, device="cpu", backend="onnx")
    model.save(out)


def _quantize(folder: str) -> None:
    """Dynamic int8 quantisation of FOLDER/onnx/model.onnx into FOLDER/onnx/model_quint8_avx2.onnx with
    exactly the settings of sentence-transformers' `export_dynamic_quantized_onnx_model(model, "avx2")`
    (optimum's AutoQuantizationConfig.avx2(is_static=False)), called on onnxruntime directly: the same
    bytes, without importing torch and transformers again."""
    import onnx
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
    from onnxruntime.quantization.quant_utils import QuantizationMode, QuantType
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    model = onnx.load(str(Path(folder) / FLOAT))
    quantizer = ONNXQuantizer(
        model, per_channel=True, reduce_range=False, mode=QuantizationMode.IntegerOps, static=False,
        weight_qType=QuantType.QUInt8, activation_qType=QuantType.QUInt8, tensors_range=None,
        nodes_to_quantize=[], nodes_to_exclude=[], op_types_to_quantize=list(IntegerOpsRegistry.keys()),
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "EnableSubgraph": False,
                       "ForceSymmetric": False, "AddQDQPairToWeight": False, "DedicatedQDQPair": False,
                       "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}},
    )
    quantizer.quantize_model()
    quantizer.model.save_model_to_file(str(Path(folder) / QUANTIZED), False)


# ---- sentence-transformers on torch (backend "torch") and as the reference of the tests ---------


class TorchEncoder:
    """sentence-transformers itself (torch, or ONNX through optimum): the `--backend torch`
    encoder, and the reference the runtime's vectors are compared with."""

    def __init__(self, name: str, model: Any) -> None:
        """Wrap a loaded SentenceTransformer `model` recorded under `name`."""
        self.name = name
        self.model = model
        self.backend = "torch"
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())

    def encode(self, texts: list[str], progress: Callable[[int], object] | None = None) -> np.ndarray:
        """Unit-length float32 vectors, as the runtime Encoder returns them (each text alone, as it
        runs them: see `bot.index.encoder.Encoder.encode`)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        vectors = self.model.encode(texts, batch_size=1, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        if progress is not None:
            progress(len(texts))
        return np.ascontiguousarray(vectors, dtype="float32")

    def warm_up(self) -> None:
        """Run the model once."""
        self.encode(["职业健康"])


def _sentence_transformer(source: str, **kwargs: Any) -> Any:
    """SentenceTransformer(source, device="cpu", **kwargs) with its library chatter silenced."""
    for name in ("sentence_transformers", "transformers", "optimum", "huggingface_hub", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(source, device="cpu", **kwargs)


def load_torch_encoder(name: str) -> TorchEncoder:
    """sentence-transformers on torch for model `name` (the `torch` backend)."""
    try:
        return TorchEncoder(name, _sentence_transformer(resolve_model(name)))
    except Exception as exc:
        raise ModelUnavailable(f"cannot load embedding model {name!r} ({type(exc).__name__}: {exc})") from exc


def load_reference_encoder(name: str, folder: Path) -> TorchEncoder:
    """sentence-transformers running the int8 ONNX export in `folder`, as ohbot served it before the
    runtime of bot/index/encoder.py: what the tests compare the runtime's vectors with."""
    model = _sentence_transformer(str(folder), backend="onnx", model_kwargs={"file_name": QUANTIZED})
    encoder = TorchEncoder(name, model)
    encoder.backend = "onnx"
    return encoder


if __name__ == "__main__":
    step, *rest = sys.argv[1:]
    if step == "float":
        _export_float(*rest)
    elif step == "quantize":
        _quantize(*rest)
    else:
        raise SystemExit(f"unknown step {step!r}")
